"""Random loss weighting (Lin et al. 2022)."""

from __future__ import annotations

import torch
from torch import Tensor

from multitask.weighting.base import WEIGHTINGS, Weighting


@WEIGHTINGS.register("rlw")
class RandomLossWeighting(Weighting):
    """Random loss weighting: softmax of normal draws, new every step (Lin et al. 2022).

    Each step, weights = k · softmax of standard normal draws.

    Reference: Baijiong Lin, Feiyang Ye, Yu Zhang, Ivor W. Tsang, "Reasonable Effectiveness of Random
    Weighting: A Litmus Test for Multi-Task Learning", TMLR 2022, arXiv:2111.10603.

    Every training step draws λ̃ ~ N(0, I) for the k present tasks, and weights = k · softmax(λ̃): they sum to
    k, the scale of the plain sum of losses (the paper's weights sum to 1). Absent tasks get weight 0.
    With ``seed`` the draws come from the method's own generator (reproducible on its own); without it from
    torch's global generator, which the training loop seeds.

    >>> import torch
    >>> method = RandomLossWeighting(n_tasks=3, seed=0)
    >>> objective = method(torch.tensor([1.0, 0.0, 1.0]), torch.tensor([True, False, True]))
    >>> method.last_weights.sum().item(), method.last_weights[1].item()
    (2.0, 0.0)
    """

    def __init__(self, n_tasks: int, seed: int | None = None) -> None:
        super().__init__(n_tasks)
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None

    def sample(self, present: Tensor) -> Tensor:
        """Weights (T,) for one step: k · softmax(N(0, 1) draws) on the present tasks, 0 elsewhere."""
        present = present.detach().cpu().bool()
        k = int(present.sum())
        draws = torch.randn(k, generator=self.generator)
        weights = torch.zeros(self.n_tasks)
        weights[present] = k * torch.softmax(draws, dim=0)
        return weights

    def forward(self, losses: Tensor, present: Tensor) -> Tensor:
        weights = self.sample(present)
        self._remember(weights)
        return (weights.to(losses) * torch.where(present, losses, torch.zeros_like(losses))).sum()
