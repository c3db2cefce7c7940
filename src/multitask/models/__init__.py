"""Networks: trunks by name, vectorised task heads, sharing architectures."""

from multitask.models import sharing  # noqa: F401  (registers architectures)
from multitask.models.heads import TaskHeads
from multitask.models.network import SHARING, MultiTaskNetwork, build_network, count_parameters
from multitask.models.registry import Registry
from multitask.models.trunks import TRUNKS, build_trunk, register_trunk

__all__ = ["SHARING", "TRUNKS", "MultiTaskNetwork", "Registry", "TaskHeads", "build_network", "build_trunk",
           "count_parameters", "register_trunk"]
