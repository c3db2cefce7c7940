"""Aligned-MTL: independent component alignment (Senushkin et al. 2023), via torchjd."""

from __future__ import annotations

from typing import Literal

from torch import Tensor
from torchjd.aggregation import AlignedMTLWeighting

from multitask.errors import ConfigError
from multitask.weighting.base import WEIGHTINGS, GramianAggregator


@WEIGHTINGS.register("aligned_mtl")
class AlignedMTL(GramianAggregator):
    """Aligned-MTL: orthogonalised, equal-norm task gradients, averaged (Senushkin et al. 2023).

    The task gradients are replaced by orthogonal ones of equal norm (condition number 1), then averaged.

    Reference: Dmitry Senushkin, Nikolay Patakin, Arseny Kuznetsov, Anton Konushin, "Independent Component
    Alignment for Multi-Task Learning", CVPR 2023, arXiv:2305.19000.

    With G = J Jᵀ = V Λ Vᵀ (rank r), the aligned gradient matrix is B J with B = √λ_scale V Λ^{-1/2} Vᵀ: its rows
    are orthogonal with equal norm √λ_scale (the condition number of the system becomes 1), and the direction is
    their mean, Jᵀ B (1/k, …, 1/k). ``scale_mode`` picks λ_scale: ``"min"`` (the smallest non-zero eigenvalue,
    the paper's σ_min², default), ``"median"`` or ``"rmse"`` (the mean eigenvalue, as in the authors' code).
    Weights come from torchjd's ``AlignedMTLWeighting`` (torchjd's default uniform preference vector).

    >>> import torch
    >>> AlignedMTL(n_tasks=2).aggregate(torch.tensor([[3.0, 0.0], [0.0, 1.0]]), torch.ones(2))  # rows → (1,0), (0,1)
    tensor([0.5000, 0.5000])
    """

    def __init__(self, n_tasks: int, scale_mode: Literal["min", "median", "rmse"] = "min") -> None:
        super().__init__(n_tasks)
        if scale_mode not in ("min", "median", "rmse"):
            raise ConfigError(f"scale_mode must be 'min', 'median' or 'rmse', got {scale_mode!r}")
        self.solver = AlignedMTLWeighting(scale_mode=scale_mode)

    def weights(self, gramian: Tensor, losses: Tensor, tasks: Tensor) -> Tensor:
        return self.solver(gramian)
