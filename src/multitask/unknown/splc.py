"""Self-paced loss correction, SPLC (Zhang et al., 2021)."""

from __future__ import annotations

import torch
from torch import Tensor

from multitask.losses import negative_term
from multitask.unknown.asl import focal_positive
from multitask.unknown.base import UNKNOWNS, UnknownStrategy


@UNKNOWNS.register("splc")
class SPLC(UnknownStrategy):
    """SPLC: unknown labels as focal negatives, corrected to positives once the model is confident (p > τ).

    Reference: Youcai Zhang, Yuhao Cheng, Xinyu Huang, Fei Wen, Rui Feng, Yaqian Li, Yandong Guo, "Simple and
    Robust Loss Design for Multi-Label Learning with Missing Labels", arXiv:2112.07368, 2021.

    Known positives: focal loss -(1 - p)^γ log p (γ = 2); known negatives: the logistic loss; an unknown label
    is a negative under the focal loss -p^γ log(1 − p), unless its (detached) probability exceeds τ = 0.6 from
    epoch ``start_epoch`` on (the paper corrects after the first epoch), where it is taken as a positive
    (the same focal positive term). Every cell enters the loss.

    >>> import torch
    >>> method = SPLC(1)
    >>> method.start_epoch(1, 10)
    >>> logits = torch.tensor([[3.0], [-3.0]])  # p = 0.95: corrected to positive; p = 0.05: a negative
    >>> losses, _ = method(logits, torch.zeros(2, 1), torch.zeros(2, 1, dtype=torch.bool))
    >>> round(losses.item(), 6)
    0.000109
    """

    def __init__(self, n_tasks: int, tau: float = 0.6, gamma: float = 2.0, start_epoch: int = 1) -> None:
        super().__init__(n_tasks)
        self.tau, self.gamma, self.start = float(tau), float(gamma), int(start_epoch)

    def corrected(self, logits: Tensor, known: Tensor) -> Tensor:
        """The unknown cells taken as positives now."""
        if int(self.epoch) < self.start:
            return torch.zeros_like(known)
        return ~known & (torch.sigmoid(logits.detach()) > self.tau)

    def cells(self, logits: Tensor, targets: Tensor, known: Tensor,
              pos_weight: Tensor | None) -> tuple[Tensor, Tensor]:
        positive = focal_positive(logits, self.gamma, pos_weight)
        known_loss = targets * positive + (1 - targets) * negative_term(logits)
        focal_negative = torch.sigmoid(logits) ** self.gamma * negative_term(logits)
        unknown_loss = torch.where(self.corrected(logits, known), positive, focal_negative)
        return torch.where(known, known_loss, unknown_loss), torch.ones_like(known)
