"""Uncertainty weighting: learned homoscedastic task uncertainties (Kendall, Gal & Cipolla 2018)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from multitask.weighting.base import WEIGHTINGS, Weighting


@WEIGHTINGS.register("uncertainty")
class Uncertainty(Weighting):
    """Uncertainty weighting: learned task log-variances scale the losses (Kendall et al. 2018).

    J = Σ_j exp(-s_j) L_j + s_j / 2 over the present tasks, s_j = log σ_j² learned.

    Reference: Alex Kendall, Yarin Gal, Roberto Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses
    for Scene Geometry and Semantics", CVPR 2018, arXiv:1705.07115.

    One learnable log-variance s_j = log σ_j² per task (an ``nn.Parameter``, optimised with the network by the
    training loop's AdamW, without weight decay). We use the paper's *classification* form, which suits the
    logistic loss: a Boltzmann likelihood with temperature σ² gives (1/σ²) L + log σ = exp(-s) L + s/2. Its
    minimum over s is at s = log(2L), where the task weight exp(-s) = 1/(2L). (The regression form used by some
    libraries, exp(-s) L / 2 + s/2, differs by a factor 2 on the loss.)

    A task absent from the batch contributes nothing, so its s_j receives no gradient. Because the optimum
    weight is 1/(2L), tasks are compared through their loss scale; with many unknown labels use
    ``loss.normalization: known`` so a task's loss does not shrink with its fraction of known labels.

    >>> import torch
    >>> method = Uncertainty(n_tasks=2)
    >>> method(torch.tensor([0.5, 2.0]), torch.tensor([True, True]))  # s = 0: plain sum
    tensor(2.5000, grad_fn=<SumBackward0>)
    """

    def __init__(self, n_tasks: int, init: float = 0.0) -> None:
        super().__init__(n_tasks)
        self.log_variance = nn.Parameter(torch.full((n_tasks,), float(init)))

    def forward(self, losses: Tensor, present: Tensor) -> Tensor:
        s = self.log_variance.to(losses.dtype)
        terms = torch.exp(-s) * losses + s / 2
        self._remember(torch.where(present, torch.exp(-s), torch.zeros_like(s)))
        return torch.where(present, terms, torch.zeros_like(terms)).sum()
