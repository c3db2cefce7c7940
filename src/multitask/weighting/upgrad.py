"""UPGrad: unconflicting projection of gradients (Quinton & Rey 2024), torchjd's, with a SciPy dual-cone solver."""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import nnls
from torch import Tensor
from torchjd.aggregation import UPGradWeighting
from torchjd.linalg import DualConeProjector

from multitask.weighting.base import WEIGHTINGS, GramianAggregator


class NNLSProjector(DualConeProjector):
    """Weights of the projection of Jᵀu onto the dual cone of J's rows: argmin_v vᵀGv subject to v ≥ u.

    Solved exactly as a non-negative least-squares problem with SciPy (Lawson-Hanson active set): with
    G = L Lᵀ and v = u + x, vᵀGv = ‖Lᵀx + Lᵀu‖², x ≥ 0. Like torchjd's quadprog projector, G is first divided by
    its trace (the projection weights are scale-free) and ``reg_eps`` · I is added so G is positive definite.
    This replaces the default projector, which needs the optional ``qpsolvers`` and ``quadprog`` packages.

    >>> import torch
    >>> G = torch.tensor([[1.0, -1.0], [-1.0, 2.0]], dtype=torch.float64)
    >>> NNLSProjector(reg_eps=0.0)(torch.tensor([1.0, 0.0], dtype=torch.float64), G)  # v = (1, 1/2)
    tensor([1.0000, 0.5000], dtype=torch.float64)
    """

    def __init__(self, *, norm_eps: float = 1e-4, reg_eps: float = 1e-4) -> None:
        self.norm_eps = norm_eps
        self.reg_eps = reg_eps

    def __repr__(self) -> str:
        return f"{type(self).__name__}(norm_eps={self.norm_eps}, reg_eps={self.reg_eps})"

    def __call__(self, U: Tensor, G: Tensor) -> Tensor:  # noqa: N803 (torchjd's names)
        gramian = G.detach().cpu().numpy().astype(np.float64)
        vectors = U.detach().cpu().numpy().astype(np.float64)
        m = gramian.shape[0]
        trace = float(np.trace(gramian))
        gramian = (gramian / trace if trace >= self.norm_eps else np.zeros_like(gramian)) + self.reg_eps * np.eye(m)
        gramian = (gramian + gramian.T) / 2
        try:
            factor = np.linalg.cholesky(gramian).T  # G = factorᵀ factor
        except np.linalg.LinAlgError:  # only with reg_eps = 0 and a singular G: a square root via eigh
            values, vectors_ = np.linalg.eigh(gramian)
            factor = (vectors_ * np.sqrt(np.clip(values, 0, None))).T
        flat = vectors.reshape(-1, m)
        out = np.empty_like(flat)
        for row, u in enumerate(flat):
            x, _ = nnls(factor, -factor @ u)
            out[row] = u + x
        return torch.as_tensor(out.reshape(vectors.shape), dtype=U.dtype, device=U.device)


@WEIGHTINGS.register("upgrad")
class UPGrad(GramianAggregator):
    """UPGrad: mean of the task gradients projected onto their dual cone (Quinton & Rey 2024).

    Each task gradient is projected onto the dual cone of all of them; the projections are averaged.

    Reference: Pierre Quinton, Valérian Rey, "Jacobian Descent for Multi-Objective Optimization", 2024,
    arXiv:2406.16232 (the TorchJD library).

    Each present task's gradient g_i is replaced by its Euclidean projection onto the dual cone
    {d : d · g_j ≥ 0 for all j}, and the direction is the mean of the projections: it never conflicts with any
    task (d · g_j ≥ 0) and equals the mean gradient when no two gradients conflict. Weights come from torchjd's
    ``UPGradWeighting``; the projection is solved by :class:`NNLSProjector` (SciPy) instead of torchjd's default,
    which would need ``qpsolvers`` and ``quadprog``.

    >>> import torch
    >>> UPGrad(n_tasks=2).aggregate(torch.tensor([[-4.0, 1.0, 1.0], [6.0, 1.0, 1.0]]), torch.ones(2))
    tensor([0.2929, 1.9004, 1.9004])
    """

    def __init__(self, n_tasks: int, norm_eps: float = 1e-4, reg_eps: float = 1e-4) -> None:
        super().__init__(n_tasks)
        self.solver = UPGradWeighting(projector=NNLSProjector(norm_eps=norm_eps, reg_eps=reg_eps))

    def weights(self, gramian: Tensor, losses: Tensor, tasks: Tensor) -> Tensor:
        return self.solver(gramian)
