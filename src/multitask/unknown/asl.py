"""Asymmetric loss, ASL, with the known-label mask (Ridnik et al., ICCV 2021)."""

from __future__ import annotations

import torch
from torch import Tensor

from multitask.losses import negative_term, positive_term
from multitask.unknown.base import UNKNOWNS, UnknownStrategy


def asymmetric_negative(logits: Tensor, gamma: float, clip: float) -> Tensor:
    """ASL's negative term: -p_m^γ · log(1 - p_m), with the shifted probability p_m = max(p - clip, 0)."""
    if clip <= 0:
        return torch.sigmoid(logits) ** gamma * negative_term(logits)
    shifted = (torch.sigmoid(logits) - clip).clamp(min=0)
    return -(shifted ** gamma) * torch.log1p(-shifted)  # p_m <= 1 - clip: log(1 - p_m) >= log(clip), finite


def focal_positive(logits: Tensor, gamma: float, pos_weight: Tensor | None) -> Tensor:
    """The focal positive term: -(1 - p)^γ · w · log p."""
    term = positive_term(logits, pos_weight)
    return term if gamma == 0 else torch.sigmoid(-logits) ** gamma * term


@UNKNOWNS.register("asl")
class AsymmetricLoss(UnknownStrategy):
    """ASL: focusing γ+ / γ− and a probability margin (clip) on negatives; unknown labels masked out.

    Reference: Tal Ridnik, Emanuel Ben-Baruch, Nadav Zamir, Asaf Noy, Itamar Friedman, Matan Protter,
    Lihi Zelnik-Manor, "Asymmetric Loss For Multi-Label Classification", ICCV 2021, arXiv:2009.14119.

    L+ = -(1 - p)^γ+ · log p, L− = -p_m^γ− · log(1 - p_m), p_m = max(p − m, 0): easy negatives are
    down-weighted and very confident "negatives" (likely missing positives) discarded by the margin m. The
    paper's defaults: γ+ = 0, γ− = 4, m = 0.05. Unknown labels are left out (``unknown_as_negative=True``
    reads them as negatives instead, the paper's own treatment of missing labels on Open Images).

    >>> import torch
    >>> method = AsymmetricLoss(1)
    >>> losses, _ = method(torch.tensor([[-3.0], [0.0]]), torch.zeros(2, 1), torch.ones(2, 1, dtype=torch.bool))
    >>> round(losses.item(), 5)  # p = 0.047 < m: 0; p = 0.5: 0.45^4·(-log 0.55), over 2 rows
    0.01226
    """

    def __init__(self, n_tasks: int, gamma_pos: float = 0.0, gamma_neg: float = 4.0, clip: float = 0.05,
                 unknown_as_negative: bool = False) -> None:
        super().__init__(n_tasks)
        if not 0 <= clip < 1:
            raise ValueError(f"asl: clip must lie in [0, 1), got {clip}")
        self.gamma_pos, self.gamma_neg, self.clip = float(gamma_pos), float(gamma_neg), float(clip)
        self.unknown_as_negative = bool(unknown_as_negative)

    def cells(self, logits: Tensor, targets: Tensor, known: Tensor,
              pos_weight: Tensor | None) -> tuple[Tensor, Tensor]:
        positive = focal_positive(logits, self.gamma_pos, pos_weight)
        negative = asymmetric_negative(logits, self.gamma_neg, self.clip)
        mask = torch.ones_like(known) if self.unknown_as_negative else known
        return targets * positive + (1 - targets) * negative, mask
