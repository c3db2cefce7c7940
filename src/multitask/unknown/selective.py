"""Class-aware selective loss, CSL (Ben-Baruch et al., CVPR 2022)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from multitask.losses import negative_term, positive_term
from multitask.unknown.base import UNKNOWNS, UnknownStrategy, class_priors


@UNKNOWNS.register("selective")
class Selective(UnknownStrategy):
    """CSL: each unknown label is either ignored or a negative, from its class prior and its likelihood.

    Reference: Emanuel Ben-Baruch, Tal Ridnik, Itamar Friedman, Avi Ben-Cohen, Nadav Zamir, Asaf Noy, Lihi
    Zelnik-Manor, "Multi-label Classification with Partial Annotations using Class-aware Selective Loss",
    CVPR 2022, arXiv:2110.10955.

    Class priors are estimated from the training split's known labels (:func:`class_priors`, kept in the
    ``prior`` buffer). An unknown label is *ignored* when its class is among the ``prior_fraction`` of classes
    with the highest prior (likely present) or when it is among the ``top_likelihood`` most probable labels of
    its example under the current model (detached); every other unknown label is a *negative*, under the
    focusing term p^γ (``gamma_unknown``; 0 is the plain logistic loss). Known labels: the logistic loss.

    >>> import torch
    >>> method = Selective(3, prior_fraction=0.34, top_likelihood=0)
    >>> method.prepare(torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]), torch.ones(2, 3, dtype=torch.bool))
    >>> method.prior.tolist()
    [1.0, 0.5, 0.0]
    >>> method.selected_negative(torch.zeros(1, 3), torch.zeros(1, 3, dtype=torch.bool)).tolist()
    [[False, True, True]]
    """

    def __init__(self, n_tasks: int, prior_fraction: float = 0.2, top_likelihood: int = 1,
                 gamma_unknown: float = 0.0) -> None:
        super().__init__(n_tasks)
        if not 0 <= prior_fraction <= 1:
            raise ValueError(f"selective: prior_fraction must lie in [0, 1], got {prior_fraction}")
        self.top_prior = min(n_tasks, int(math.floor(prior_fraction * n_tasks + 0.5)))
        self.top_likelihood = min(n_tasks, max(int(top_likelihood), 0))
        self.gamma_unknown = float(gamma_unknown)
        self.register_buffer("prior", torch.zeros(n_tasks))

    def prepare(self, targets: Tensor, known: Tensor) -> None:
        self.prior.copy_(class_priors(targets, known))

    def selected_negative(self, logits: Tensor, known: Tensor) -> Tensor:
        """The unknown cells read as negatives (the others unknown are ignored)."""
        ignore = torch.zeros_like(known)
        if self.top_prior:
            ignore[:, torch.topk(self.prior, self.top_prior).indices] = True
        if self.top_likelihood:
            top = torch.topk(logits.detach(), self.top_likelihood, dim=1).indices
            ignore = ignore.scatter(1, top, True)
        return ~known & ~ignore

    def cells(self, logits: Tensor, targets: Tensor, known: Tensor,
              pos_weight: Tensor | None) -> tuple[Tensor, Tensor]:
        negative = negative_term(logits)
        known_loss = targets * positive_term(logits, pos_weight) + (1 - targets) * negative
        unknown_loss = negative if self.gamma_unknown == 0 else torch.sigmoid(logits) ** self.gamma_unknown * negative
        chosen = self.selected_negative(logits, known)
        return torch.where(known, known_loss, unknown_loss), known | chosen
