"""Large-loss rejection and correction, LL-R and LL-Ct (Kim et al., CVPR 2022)."""

from __future__ import annotations

import torch
from torch import Tensor

from multitask.losses import negative_term, positive_term
from multitask.unknown.base import UNKNOWNS, UnknownStrategy


class LargeLoss(UnknownStrategy):
    """Unknown labels read as negatives, except the largest of their losses in each batch.

    Reference: Youngwook Kim, Jae Myung Kim, Zeynep Akata, Jungwoo Lee, "Large Loss Matters in Weakly
    Supervised Multi-Label Classification", CVPR 2022, arXiv:2206.03740.

    In epoch t (counted from 0) the fraction r(t) = min(t · ``rate``, ``max_rate``) of the batch's unknown
    labels with the largest (assumed-negative) loss is *rejected* (left out, LL-R) or *corrected* (taken as
    positive for this step, LL-Ct); the first epoch rejects nothing, as in the paper. The paper's Δ_rel is a
    fraction of a percent per epoch on COCO (one or two positives among 80 classes); the default here
    (5 % per epoch up to 50 %) is sized for data where unknown labels are positive far more often.
    """

    correct: bool = False

    def __init__(self, n_tasks: int, rate: float = 0.05, max_rate: float = 0.5) -> None:
        super().__init__(n_tasks)
        if rate < 0 or not 0 <= max_rate <= 1:
            raise ValueError(f"rate must be >= 0 and max_rate in [0, 1], got {rate}, {max_rate}")
        self.rate, self.max_rate = float(rate), float(max_rate)

    def fraction(self) -> float:
        """r(t) for the current epoch."""
        return min(int(self.epoch) * self.rate, self.max_rate)

    def large(self, negative: Tensor, known: Tensor) -> Tensor:
        """The unknown cells whose assumed-negative loss is among the largest r(t) of the batch's unknowns."""
        unknown = ~known
        k = int(self.fraction() * int(unknown.sum()))
        chosen = torch.zeros_like(known)
        if k == 0:
            return chosen
        scores = torch.where(unknown, negative.detach(), torch.full_like(negative, -torch.inf)).flatten()
        chosen.view(-1)[torch.topk(scores, k).indices] = True
        return chosen

    def cells(self, logits: Tensor, targets: Tensor, known: Tensor,
              pos_weight: Tensor | None) -> tuple[Tensor, Tensor]:
        negative = negative_term(logits)
        positive = positive_term(logits, pos_weight)
        large = self.large(negative, known)
        if self.correct:
            targets = torch.where(large, torch.ones_like(targets), targets)
            return targets * positive + (1 - targets) * negative, torch.ones_like(known)
        return targets * positive + (1 - targets) * negative, ~large


@UNKNOWNS.register("ll_r")
class LargeLossRejection(LargeLoss):
    """LL-R: unknown as negative, the largest r(t) of their losses rejected (Kim et al., CVPR 2022).

    >>> import torch
    >>> method = LargeLossRejection(2, rate=0.5)
    >>> method.start_epoch(1, 5)  # r = 0.5: of the 2 unknown cells, the one with the larger loss is left out
    >>> logits, known = torch.tensor([[2.0, -1.0]]), torch.zeros(1, 2, dtype=torch.bool)
    >>> method(logits, torch.zeros(1, 2), known)[1].tolist()
    [0.0, 1.0]
    """


@UNKNOWNS.register("ll_ct")
class LargeLossCorrection(LargeLoss):
    """LL-Ct: unknown as negative, the largest r(t) of their losses taken as positive (Kim et al., CVPR 2022).

    >>> import torch
    >>> method = LargeLossCorrection(2, rate=0.5)
    >>> method.start_epoch(1, 5)
    >>> losses, counts = method(torch.tensor([[2.0, -1.0]]), torch.zeros(1, 2), torch.zeros(1, 2, dtype=torch.bool))
    >>> [round(v, 4) for v in losses.tolist()], counts.tolist()  # -log σ(2), -log σ(1)
    ([0.1269, 0.3133], [1.0, 1.0])
    """

    correct = True
