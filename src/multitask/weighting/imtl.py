"""IMTL-G: impartial gradient aggregation (Liu et al. 2021), via torchjd."""

from __future__ import annotations

from torch import Tensor
from torchjd.aggregation import IMTLGWeighting

from multitask.weighting.base import WEIGHTINGS, GramianAggregator


@WEIGHTINGS.register("imtl")
class IMTLG(GramianAggregator):
    """IMTL-G: the gradient with equal projections onto every task's gradient (Liu et al. 2021).

    The combination of task gradients whose projections onto every task's unit gradient are equal.

    Reference: Liyang Liu, Yi Li, Zhanghui Kuang, Jing-Hao Xue, Yimin Chen, Wenming Yang, Qingmin Liao,
    Wayne Zhang, "Towards Impartial Multi-task Learning", ICLR 2021 (OpenReview IMPnRXEWpvr; no arXiv version).

    The gradient part of IMTL (IMTL-G; the loss part IMTL-L is not included): weights α with Σ α_j = 1 such
    that d = Σ_j α_j g_j satisfies d · g_j/‖g_j‖ equal for every present task, i.e. α ∝ G⁺ (‖g_1‖, …, ‖g_k‖) —
    torchjd's ``IMTLGWeighting``, which uses the pseudo-inverse so linearly dependent gradients are allowed
    (Quinton & Rey 2024). The direction is invariant to rescaling a task's loss, so the loss normalisation
    does not matter for the direction; the paper's closed form is the same when the gradients are independent.

    >>> import torch
    >>> IMTLG(n_tasks=2).aggregate(torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.ones(2))  # α = (2/3, 1/3)
    tensor([0.6667, 0.6667])
    """

    def __init__(self, n_tasks: int) -> None:
        super().__init__(n_tasks)
        self.solver = IMTLGWeighting()

    def weights(self, gramian: Tensor, losses: Tensor, tasks: Tensor) -> Tensor:
        return self.solver(gramian)
