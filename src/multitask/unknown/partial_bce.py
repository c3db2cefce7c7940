"""Partial binary cross-entropy (Durand, Mehrasa and Mori, CVPR 2019)."""

from __future__ import annotations

from torch import Tensor

from multitask.losses import negative_term, positive_term
from multitask.unknown.base import UNKNOWNS, UnknownStrategy


@UNKNOWNS.register("partial_bce")
class PartialBCE(UnknownStrategy):
    """Partial-BCE: known labels only, each example scaled by g(its proportion of known labels).

    Reference: Thibaut Durand, Nazanin Mehrasa, Greg Mori, "Learning a Deep ConvNet for Multi-label
    Classification with Partial Labels", CVPR 2019, arXiv:1902.09720.

    ℓ(x, y) = g(p_y) · Σ_{c known} BCE_c, with p_y the fraction of the example's labels that are known and
    g(p) = α·p^γ + β, with α, β fixed by g(1) = 1 and g(0.1) = ``g_low``; the paper's choice is γ = −1 and
    g(0.1) = 5. An example with few known labels thus pulls as hard as one fully labelled. (The paper divides
    by the number of classes C as well; this project's J sums over tasks, so that constant is left out and
    with every label known partial-BCE is exactly ``ignore``.)

    >>> import torch
    >>> method = PartialBCE(2)
    >>> round(method.g(torch.tensor(0.1)).item(), 4), round(method.g(torch.tensor(1.0)).item(), 4)
    (5.0, 1.0)
    >>> known = torch.tensor([[True, False]])  # p = 1/2, g = 4/9 · 2 + 5/9 = 13/9
    >>> losses, _ = method(torch.zeros(1, 2), torch.ones(1, 2), known)
    >>> round(losses[0].item() / 0.693147, 4)
    1.4444
    """

    def __init__(self, n_tasks: int, gamma: float = -1.0, g_low: float = 5.0) -> None:
        super().__init__(n_tasks)
        if gamma == 0:
            raise ValueError("partial_bce: gamma must not be 0 (g would be constant)")
        self.gamma = float(gamma)
        self.alpha = (float(g_low) - 1.0) / (0.1 ** self.gamma - 1.0)
        self.beta = 1.0 - self.alpha

    def g(self, proportion: Tensor) -> Tensor:
        """g(p) = α·p^γ + β."""
        return self.alpha * proportion ** self.gamma + self.beta

    def cells(self, logits: Tensor, targets: Tensor, known: Tensor,
              pos_weight: Tensor | None) -> tuple[Tensor, Tensor]:
        bce = targets * positive_term(logits, pos_weight) + (1 - targets) * negative_term(logits)
        proportion = known.to(logits.dtype).mean(dim=1, keepdim=True).clamp(min=1 / known.shape[1])
        return bce * self.g(proportion), known
