"""The masked multi-task logistic loss.

J = (1/m) Σ_i Σ_{j: y_ij known} ℓ(ŷ_ij, y_ij), with ℓ the logistic loss computed from logits: an unknown
label simply drops out of the sum. This is the default (``normalization="batch"``): every known label weighs
the same, so a task with more labels pulls harder, exactly as in the objective above.
``normalization="known"`` divides each task's sum by its own number of known labels in the batch instead, so
every task weighs the same whatever its fraction of unknown labels.

This is the ``ignore`` strategy for unknown labels; the others (:mod:`multitask.unknown`) build their per-cell
losses from the terms below (:func:`positive_term`, :func:`negative_term`) and reduce them with
:func:`reduce_cells`, so ``normalization`` and ``pos_weight`` mean the same for every strategy.

>>> import torch
>>> logits = torch.tensor([[0.0, 2.0], [1.0, -1.0]])
>>> targets = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
>>> known = torch.tensor([[True, False], [True, True]])
>>> round(float(masked_logistic_loss(logits, targets, known)), 4)  # (log 2 + log(1+e) + log(1+1/e)) / 2
1.1598
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

Normalization = Literal["batch", "known"]


def per_task_losses(
    logits: Tensor,
    targets: Tensor,
    known: Tensor,
    *,
    normalization: Normalization = "batch",
    pos_weight: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Each task's loss, shape (T,), and its number of known labels in the batch, shape (T,).

    A task with no known label in the batch has loss exactly 0 (never NaN) and count 0.
    """
    mask = known.to(logits.dtype)
    # Unknown targets may hold anything; zero them so they cannot leak NaN/inf through the masked product.
    safe_targets = torch.where(known, targets.to(logits.dtype), torch.zeros_like(logits))
    elementwise = F.binary_cross_entropy_with_logits(logits, safe_targets, pos_weight=pos_weight, reduction="none")
    return reduce_cells(elementwise * mask, mask.sum(dim=0), normalization)


def reduce_cells(cells: Tensor, counts: Tensor, normalization: Normalization = "batch") -> tuple[Tensor, Tensor]:
    """Per-task losses (T,) from per-cell losses (m, T) that are already 0 outside the loss, and the number of
    cells of each task that entered it: the sum over the batch divided by m ('batch') or by the count
    ('known'). Returns ``(losses, counts)``.

    >>> reduce_cells(torch.tensor([[1.0, 0.0], [3.0, 2.0]]), torch.tensor([2.0, 1.0]), "known")
    (tensor([2., 2.]), tensor([2., 1.]))
    """
    summed = cells.sum(dim=0)
    if normalization == "batch":
        return summed / max(cells.shape[0], 1), counts
    if normalization == "known":
        return summed / counts.clamp(min=1), counts
    raise ValueError(f"normalization must be 'batch' or 'known', got {normalization!r}")


def positive_term(logits: Tensor, pos_weight: Tensor | None = None) -> Tensor:
    """-w·log σ(z), elementwise and stable for large |z| (w: the task's positive weight, 1 without one)."""
    term = -F.logsigmoid(logits)
    return term if pos_weight is None else term * pos_weight


def negative_term(logits: Tensor) -> Tensor:
    """-log(1 - σ(z)) = -log σ(-z), elementwise and stable for large |z|."""
    return -F.logsigmoid(-logits)


def masked_logistic_loss(
    logits: Tensor,
    targets: Tensor,
    known: Tensor,
    *,
    normalization: Normalization = "batch",
    task_weights: Tensor | None = None,
    pos_weight: Tensor | None = None,
) -> Tensor:
    """The scalar objective: Σ_j w_j · L_j, with L_j from :func:`per_task_losses` (w_j = 1 by default)."""
    losses, _ = per_task_losses(logits, targets, known, normalization=normalization, pos_weight=pos_weight)
    if task_weights is not None:
        losses = losses * task_weights
    return losses.sum()


def balanced_pos_weight(targets: Tensor, known: Tensor) -> Tensor:
    """Negatives / positives among each task's known labels (1 where a task has no positive or negative)."""
    positives = ((targets > 0.5) & known).sum(dim=0)
    return pos_weight_from_counts(positives, known.sum(dim=0))


def pos_weight_from_counts(positives: Tensor, known: Tensor) -> Tensor:
    """:func:`balanced_pos_weight` from each task's counts of positive and of known labels (T,)."""
    positives, negatives = positives.to(torch.float32), (known - positives).to(torch.float32)
    weight = negatives / positives.clamp(min=1)
    return torch.where((positives > 0) & (negatives > 0), weight, torch.ones_like(weight))
