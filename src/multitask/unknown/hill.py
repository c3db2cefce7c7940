"""The Hill loss (Zhang et al., 2021)."""

from __future__ import annotations

import torch
from torch import Tensor

from multitask.losses import negative_term
from multitask.unknown.asl import focal_positive
from multitask.unknown.base import UNKNOWNS, UnknownStrategy


@UNKNOWNS.register("hill")
class Hill(UnknownStrategy):
    """Hill: unknown labels as negatives under a hill-shaped loss that forgives confident positives.

    Reference: Youcai Zhang, Yuhao Cheng, Xinyu Huang, Fei Wen, Rui Feng, Yaqian Li, Yandong Guo, "Simple and
    Robust Loss Design for Multi-Label Learning with Missing Labels", arXiv:2112.07368, 2021.

    Known positives: the focal loss -(1 - p)^γ log p (γ = 2 as in the paper); known negatives: the logistic
    loss; unknown labels: the Hill loss (λ − p)·p² with λ = 1.5, which rises with p up to p = 1 (for
    λ = 1.5), but more gently than the logistic loss, so a missing positive the model already believes in is
    pushed down far less than by "assume negative". Every cell enters the loss.

    >>> import torch
    >>> losses, _ = Hill(1)(torch.tensor([[0.0]]), torch.zeros(1, 1), torch.zeros(1, 1, dtype=torch.bool))
    >>> losses.item()  # (1.5 - 0.5) * 0.5 ** 2
    0.25
    """

    def __init__(self, n_tasks: int, lamb: float = 1.5, gamma: float = 2.0) -> None:
        super().__init__(n_tasks)
        self.lamb, self.gamma = float(lamb), float(gamma)

    def cells(self, logits: Tensor, targets: Tensor, known: Tensor,
              pos_weight: Tensor | None) -> tuple[Tensor, Tensor]:
        p = torch.sigmoid(logits)
        known_loss = targets * focal_positive(logits, self.gamma, pos_weight) + (1 - targets) * negative_term(logits)
        hill = (self.lamb - p) * p ** 2
        return torch.where(known, known_loss, hill), torch.ones_like(known)
