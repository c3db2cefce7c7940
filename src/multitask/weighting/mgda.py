"""MGDA-UB: the min-norm convex combination of representation gradients (Sener & Koltun 2018), via torchjd."""

from __future__ import annotations

from torch import Tensor
from torchjd.aggregation import MGDAWeighting

from multitask.weighting.base import WEIGHTINGS, GramianAggregator


@WEIGHTINGS.register("mgda")
class MGDA(GramianAggregator):
    """MGDA-UB: the minimum-norm convex combination of task gradients (Sener & Koltun 2018).

    The minimum-norm point of the convex hull of the task gradients.

    Reference: Ozan Sener, Vladlen Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018,
    arXiv:1810.04650.

    The *upper bound* variant: the gradients are taken with respect to the shared representation (one backward
    pass through the trunk), the paper's MGDA-UB. Weights α solve min_α ‖Σ_j α_j g_j‖² over the simplex
    (α_j ≥ 0, Σ α_j = 1) with the paper's Frank-Wolfe solver (Algorithm 2) — torchjd's ``MGDAWeighting``
    (``epsilon`` = step size below which it stops, ``max_iters``). Scaling as in the paper: the direction is the
    convex combination Σ_j α_j g_j itself (weights sum to 1, no renormalisation); it is 0 at a Pareto-stationary
    point. The paper's optional gradient normalisations are not applied. Only present tasks' rows take part: a
    zero row for an absent task would make the min-norm point 0.

    >>> import torch
    >>> MGDA(n_tasks=2).aggregate(torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.ones(2))  # α = (4/5, 1/5)
    tensor([0.8000, 0.4000])
    """

    def __init__(self, n_tasks: int, epsilon: float = 1e-3, max_iters: int = 100) -> None:
        super().__init__(n_tasks)
        self.solver = MGDAWeighting(epsilon=epsilon, max_iters=max_iters)

    def weights(self, gramian: Tensor, losses: Tensor, tasks: Tensor) -> Tensor:
        return self.solver(gramian)
