"""Strategies for unknown labels in the loss, selectable by name (`multitask unknowns` lists them).

``ignore`` (default), ``negative``, ``partial_bce``, ``asl``, ``hill``, ``splc``, ``selective``, ``ll_r``,
``ll_ct``, ``epr``, ``self_training``. Each computes per-task losses (T,) and counts (T,) from
``(logits, targets, known)``; see :mod:`multitask.unknown.base`.
"""

from multitask.unknown import (  # noqa: F401  (importing a module registers its strategy)
    asl,
    epr,
    hill,
    ignore,
    large_loss,
    negative,
    partial_bce,
    selective,
    self_training,
    splc,
)
from multitask.unknown.base import UNKNOWNS, UnknownStrategy, build_unknown, class_priors

__all__ = ["UNKNOWNS", "UnknownStrategy", "build_unknown", "class_priors"]
