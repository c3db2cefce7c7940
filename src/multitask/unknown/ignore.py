"""Ignore unknown labels: they drop out of the loss (the project's default, the lecture's J)."""

from __future__ import annotations

from torch import Tensor

from multitask.losses import Normalization, per_task_losses
from multitask.unknown.base import UNKNOWNS, UnknownStrategy


@UNKNOWNS.register("ignore")
class Ignore(UnknownStrategy):
    """Unknown labels drop out of the loss: the masked logistic loss (default).

    Exactly :func:`multitask.losses.per_task_losses`, bit for bit: the sum over known labels of the logistic
    loss, divided by the batch size (``batch``) or by each task's known labels (``known``). The baseline of
    every paper below, called "ignore" or "IUN" (ignore unobserved) by Cole et al. (CVPR 2021).

    >>> import torch
    >>> losses, counts = Ignore(2)(torch.zeros(2, 2), torch.ones(2, 2), torch.tensor([[True, False], [True, True]]))
    >>> [round(v, 4) for v in losses.tolist()], counts.tolist()
    ([0.6931, 0.3466], [2.0, 1.0])
    """

    def forward(self, logits: Tensor, targets: Tensor, known: Tensor, *, normalization: Normalization = "batch",
                pos_weight: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return per_task_losses(logits, targets, known, normalization=normalization, pos_weight=pos_weight)
