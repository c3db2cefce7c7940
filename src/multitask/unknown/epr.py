"""Expected positive regularisation, EPR (Cole et al., CVPR 2021), for single positive labels."""

from __future__ import annotations

import torch
from torch import Tensor

from multitask.losses import Normalization, per_task_losses
from multitask.unknown.base import UNKNOWNS, UnknownStrategy, class_priors


@UNKNOWNS.register("epr")
class ExpectedPositiveRegularization(UnknownStrategy):
    """EPR: the logistic loss on known labels, plus a penalty on the predicted number of positives per example.

    Reference: Elijah Cole, Oisin Mac Aodha, Titouan Lorieul, Pietro Perona, Dan Morris, Nebojsa Jojic,
    "Multi-Label Learning from Single Positive Labels", CVPR 2021, arXiv:2106.09708.

    R = λ · (k̂ − k)² / T, with k̂ = (1/m) Σ_i Σ_j p_ij the batch's mean predicted number of positives and k the
    expected number of positives per example (``expected_positives``; by default Σ_j prior_j from the
    training split's known labels, :func:`class_priors`, kept in the ``k`` buffer). This is the paper's
    ((k̂ − k)/T)² on its scale (a mean over all B·T cells) brought to this project's (a sum over tasks). The
    penalty couples all tasks: each task's loss carries 1/T of it, and every cell counts as entering the loss.
    With single positive labels the known-label estimate of k is 1 (a lower bound): give the true value when
    it is known, as the paper does.

    >>> import torch
    >>> method = ExpectedPositiveRegularization(2, expected_positives=1.0, lamb=1.0)
    >>> losses, counts = method(torch.zeros(1, 2), torch.ones(1, 2), torch.tensor([[True, False]]))
    >>> [round(v, 4) for v in losses.tolist()], counts.tolist()  # k̂ = 1 = k: no penalty
    ([0.6931, 0.0], [1.0, 1.0])
    """

    def __init__(self, n_tasks: int, expected_positives: float | None = None, lamb: float = 1.0) -> None:
        super().__init__(n_tasks)
        self.lamb = float(lamb)
        self.given = expected_positives is not None
        self.register_buffer("k", torch.tensor(float(expected_positives or 0.0), dtype=torch.float64))

    def prepare(self, targets: Tensor, known: Tensor) -> None:
        if not self.given:
            self.k.fill_(float(class_priors(targets, known).sum()))

    def forward(self, logits: Tensor, targets: Tensor, known: Tensor, *, normalization: Normalization = "batch",
                pos_weight: Tensor | None = None) -> tuple[Tensor, Tensor]:
        losses, _ = per_task_losses(logits, targets, known, normalization=normalization, pos_weight=pos_weight)
        expected = torch.sigmoid(logits).sum(dim=1).mean()
        penalty = self.lamb * (expected - self.k.to(logits.dtype)) ** 2 / self.n_tasks
        counts = torch.full((logits.shape[1],), float(logits.shape[0]), dtype=logits.dtype, device=logits.device)
        return losses + penalty / self.n_tasks, counts
