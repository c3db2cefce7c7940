"""Assume negative: every unknown label is read as 0 (the "AN" baseline)."""

from __future__ import annotations

import torch
from torch import Tensor

from multitask.losses import Normalization, per_task_losses
from multitask.unknown.base import UNKNOWNS, UnknownStrategy


@UNKNOWNS.register("negative")
class Negative(UnknownStrategy):
    """Unknown read as negative: the logistic loss on every cell, target 0 where unknown.

    What a tool without unknown labels forces; the "assume negative" (AN) baseline of Cole et al., "Multi-Label
    Learning from Single Positive Labels", CVPR 2021, and of Kim et al. (CVPR 2022). Right when an unknown
    label is almost always a negative (a few positives annotated among many classes), wrong otherwise.
    Every cell enters the loss, so each task's count is the batch size.

    >>> import torch
    >>> losses, counts = Negative(1)(torch.zeros(2, 1), torch.ones(2, 1), torch.tensor([[True], [False]]))
    >>> round(losses.item(), 4), counts.tolist()
    (0.6931, [2.0])
    """

    def forward(self, logits: Tensor, targets: Tensor, known: Tensor, *, normalization: Normalization = "batch",
                pos_weight: Tensor | None = None) -> tuple[Tensor, Tensor]:
        as_negative = torch.where(known, targets.to(logits.dtype), torch.zeros_like(logits))
        return per_task_losses(logits, as_negative, torch.ones_like(known, dtype=torch.bool),
                               normalization=normalization, pos_weight=pos_weight)
