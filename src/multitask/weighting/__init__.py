"""Task weighting and gradient aggregation methods, selectable by name (`multitask methods` lists them).

Loss weighting (:class:`Weighting`): ``equal``, ``uncertainty``, ``dwa``, ``rlw``, ``famo``.
Gradient aggregation (:class:`GradientAggregator`, on the present tasks' representation gradients):
``gradnorm``, ``pcgrad``, ``mgda``, ``cagrad``, ``imtl``, ``nash_mtl``, ``aligned_mtl``, ``upgrad``.
"""

from multitask.weighting import (  # noqa: F401  (importing a module registers its methods)
    aligned_mtl,
    cagrad,
    dwa,
    equal,
    famo,
    gradnorm,
    imtl,
    mgda,
    nash_mtl,
    pcgrad,
    rlw,
    uncertainty,
    upgrad,
)
from multitask.weighting.base import (
    WEIGHTINGS,
    GradientAggregator,
    GramianAggregator,
    Weighting,
    build_weighting,
)

__all__ = ["WEIGHTINGS", "GradientAggregator", "GramianAggregator", "Weighting", "build_weighting"]
