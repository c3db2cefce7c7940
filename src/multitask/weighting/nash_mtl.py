"""Nash-MTL: multi-task learning as a bargaining game (Navon et al. 2022), our Newton solver."""

from __future__ import annotations

import torch
from torch import Tensor

from multitask.weighting.base import WEIGHTINGS, GramianAggregator


def nash_bargaining_weights(gramian: Tensor, start: Tensor | None = None, *, max_iters: int = 100,
                            tol: float = 1e-12) -> Tensor:
    """The α > 0 with G α = 1/α (elementwise), for a positive definite G (k, k).

    It is the minimiser of the strictly convex f(α) = ½ αᵀGα - Σ_j log α_j, found by Newton's method with a
    backtracking line search that keeps α > 0. Without `start` it begins at α_j = 1/‖g_j‖ (exact for
    orthogonal gradients).

    >>> import torch
    >>> nash_bargaining_weights(torch.tensor([[1.0, 0.0], [0.0, 4.0]], dtype=torch.float64))  # α_j = 1/‖g_j‖
    tensor([1.0000, 0.5000], dtype=torch.float64)
    """

    def objective(a: Tensor) -> float:
        return float(a @ gramian @ a / 2 - torch.log(a).sum())

    alpha = (gramian.diagonal().clamp(min=1e-12).rsqrt() if start is None
             else start.to(gramian.dtype).clamp(min=1e-12).clone())
    value = objective(alpha)
    for _ in range(max_iters):
        gradient = gramian @ alpha - 1 / alpha
        step = torch.linalg.solve(gramian + torch.diag(1 / alpha**2), gradient)
        decrement = float(gradient @ step)  # squared Newton decrement
        if decrement / 2 < tol:
            break
        t = 1.0
        while t > 1e-12:
            candidate = alpha - t * step
            if bool((candidate > 0).all()):
                candidate_value = objective(candidate)
                if candidate_value <= value - 0.25 * t * decrement:
                    break
            t /= 2
        else:
            break
        alpha, value = candidate, candidate_value
    return alpha


@WEIGHTINGS.register("nash_mtl")
class NashMTL(GramianAggregator):
    """Nash-MTL: the Nash bargaining combination of task gradients (Navon et al. 2022).

    The Nash bargaining solution: d = Σ α_j g_j with α_j (d · g_j) = 1 for every task.

    Reference: Aviv Navon, Aviv Shamsian, Idan Achituve, Haggai Maron, Kenji Kawaguchi, Gal Chechik, Ethan Fetaya,
    "Multi-Task Learning as a Bargaining Game", ICML 2022, arXiv:2202.01017.

    The bargaining solution of max Σ_j log(d · g_j) over a ball is d = Σ_j α_j g_j with Gα = 1/α (G = J Jᵀ of
    the present tasks' representation gradients). The paper approximates it by a sequence of convex programs
    (cvxpy); we solve the equivalent smooth convex problem min ½ αᵀGα - Σ log α_j exactly with Newton's method
    (:func:`nash_bargaining_weights`), warm-started from the task's previous α (per-task state, indexed by the
    present tasks). G is scaled to unit mean diagonal and ``ridge`` · I is added so a solution exists even for
    linearly dependent or zero gradients; α is scaled back so that Gα = 1/α holds for the real G. The result is
    invariant to the scale of each task's loss (α_j scales inversely). ``max_norm`` > 0 caps ‖d‖ as the authors'
    code does for the parameter gradient; off by default, since the norm of a representation gradient depends on
    the batch size and width (and AdamW is insensitive to the overall scale). This is our implementation:
    torchjd's ``NashMTL`` needs ``cvxpy`` and ``ecos``.

    >>> import torch
    >>> NashMTL(n_tasks=2).aggregate(torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.ones(2))  # α = (1, 1/2)
    tensor([1., 1.])
    """

    def __init__(self, n_tasks: int, max_norm: float = 0.0, ridge: float = 1e-8, max_iters: int = 100) -> None:
        super().__init__(n_tasks)
        self.max_norm = float(max_norm)
        self.ridge = float(ridge)
        self.max_iters = int(max_iters)
        self.register_buffer("previous", torch.ones(n_tasks))  # α for G at unit mean diagonal

    def weights(self, gramian: Tensor, losses: Tensor, tasks: Tensor) -> Tensor:
        k = gramian.shape[0]
        scale = float(gramian.diagonal().mean())
        if not scale > 0:
            return torch.zeros(k, dtype=torch.float64)
        normalised = gramian / scale + self.ridge * torch.eye(k, dtype=torch.float64)
        index = tasks.to(self.previous.device)
        warm = self.previous[index].cpu().double()
        alpha = nash_bargaining_weights(normalised, warm if bool((warm > 0).all()) else None, max_iters=self.max_iters)
        if not torch.isfinite(alpha).all():
            alpha = nash_bargaining_weights(normalised, None, max_iters=self.max_iters)
        self.previous[index] = alpha.to(self.previous)
        weights = alpha / scale**0.5
        if self.max_norm > 0:
            norm = float(weights @ gramian @ weights) ** 0.5
            if norm > self.max_norm:
                weights = weights * (self.max_norm / norm)
        return weights
