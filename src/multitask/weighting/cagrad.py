"""CAGrad: conflict-averse gradient descent (Liu et al. 2021), our SciPy implementation."""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import minimize
from torch import Tensor

from multitask.errors import ConfigError
from multitask.weighting.base import WEIGHTINGS, GramianAggregator


@WEIGHTINGS.register("cagrad")
class CAGrad(GramianAggregator):
    """CAGrad: the best worst-task decrease near the mean gradient (Liu et al. 2021).

    The direction within a ball around the mean gradient that maximises the worst task's decrease.

    Reference: Bo Liu, Xingchao Liu, Xiaojie Jin, Peter Stone, Qiang Liu, "Conflict-Averse Gradient Descent for
    Multi-task Learning", NeurIPS 2021, arXiv:2110.14048.

    With g_0 the mean of the k present task gradients, CAGrad looks for d maximising min_j g_j · d subject to
    ‖d - g_0‖ ≤ c‖g_0‖. Its dual is solved over the simplex: w* = argmin_w g_wᵀg_0 + c‖g_0‖‖g_w‖ with
    g_w = Σ_j w_j g_j (SciPy SLSQP on the k × k Gramian, as in the authors' code), and
    d = g_0 + c‖g_0‖ g_w / ‖g_w‖. ``rescale`` as in the authors' code: 1 (default) returns d / (1 + c²),
    2 returns d / (1 + c), 0 returns d. With c = 0 CAGrad is the mean gradient. Default ``c=0.4``.
    This is our implementation: torchjd's ``CAGrad`` needs ``cvxpy`` and ``clarabel``.

    >>> import torch
    >>> CAGrad(n_tasks=2, c=0.0).aggregate(torch.tensor([[1.0, 0.0], [-1.0, 2.0]]), torch.ones(2))
    tensor([0., 1.])
    """

    def __init__(self, n_tasks: int, c: float = 0.4, rescale: int = 1, max_iter: int = 100) -> None:
        super().__init__(n_tasks)
        if c < 0:
            raise ConfigError(f"c must be non-negative, got {c}")
        if rescale not in (0, 1, 2):
            raise ConfigError(f"rescale must be 0, 1 or 2, got {rescale}")
        self.c = float(c)
        self.rescale = rescale
        self.max_iter = max_iter

    def weights(self, gramian: Tensor, losses: Tensor, tasks: Tensor) -> Tensor:
        k = gramian.shape[0]
        mean = torch.full((k,), 1.0 / k, dtype=torch.float64)
        trace = float(gramian.trace())
        if self.c == 0 or trace <= 0:
            return self._rescaled(mean)
        if k == 1:  # g_w = g_0 = g: d = (1 + c) g
            return self._rescaled(torch.tensor([1.0 + self.c], dtype=torch.float64))
        g = (gramian / trace).numpy()  # the weights are invariant to the scale of G
        uniform = np.full(k, 1.0 / k)
        b = g @ uniform  # b_j = g_j · g_0
        radius = self.c * float(np.sqrt(max(uniform @ b, 0.0)))  # c ‖g_0‖
        tiny = 1e-12

        def objective(w: np.ndarray) -> float:
            return float(w @ b + radius * np.sqrt(w @ g @ w + tiny))

        def gradient(w: np.ndarray) -> np.ndarray:
            return b + radius * (g @ w) / np.sqrt(w @ g @ w + tiny)

        result = minimize(objective, uniform, jac=gradient, method="SLSQP", bounds=[(0.0, 1.0)] * k,
                          constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(k)}],
                          options={"maxiter": self.max_iter, "ftol": 1e-12})
        w = np.clip(result.x, 0.0, None)
        w = w / w.sum() if w.sum() > 0 else uniform
        norm = float(np.sqrt(max(w @ g @ w, 0.0)))
        weights = uniform + (radius / norm) * w if norm > 1e-10 else uniform
        return self._rescaled(torch.from_numpy(weights))

    def _rescaled(self, weights: Tensor) -> Tensor:
        if self.rescale == 1:
            return weights / (1 + self.c**2)
        if self.rescale == 2:
            return weights / (1 + self.c)
        return weights
