"""What every unknown-label strategy is, and their registry.

A strategy turns a batch's ``(logits, targets, known)`` into each task's loss (shape (T,)) and the number of
cells of each task that entered it (shape (T,); a task with count 0 is *absent* for the weighting methods).
That is the one contract the training step, every weighting and gradient method, the sharing architectures,
DDP, `compare`, `advise`, transfer and the estimator rely on, so any strategy works with all of them.

A strategy writes its per-cell losses (m, T) and the mask of the cells that enter the loss; the base class
reduces them with the project's one normalisation (:func:`multitask.losses.reduce_cells`): ``batch`` divides
each task's sum by the batch size, ``known`` by its count. ``pos_weight`` multiplies every positive term.

State: :meth:`UnknownStrategy.prepare` sees the training split's labels once before training (class priors),
:meth:`UnknownStrategy.start_epoch` is called at the start of every epoch (curricula). Both are kept in
buffers (``epoch``, ``max_epochs`` and a strategy's own), so they are in every checkpoint and a run resumed
from ``last.ckpt`` continues with the same state.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from multitask.losses import Normalization, reduce_cells
from multitask.models.registry import Registry

UNKNOWNS: Registry[nn.Module] = Registry("unknown-label strategy")


class UnknownStrategy(nn.Module):
    """``forward(logits, targets, known, normalization=, pos_weight=) -> (losses (T,), counts (T,))``.

    Subclasses implement :meth:`cells`. ``completes_labels`` marks a strategy that completes the training
    labels between rounds of fitting (self-training) instead of changing the loss.
    """

    completes_labels: ClassVar[bool] = False

    def __init__(self, n_tasks: int) -> None:
        super().__init__()
        if n_tasks < 1:
            raise ValueError(f"n_tasks must be at least 1, got {n_tasks}")
        self.n_tasks = n_tasks
        self.register_buffer("epoch", torch.zeros((), dtype=torch.long))
        self.register_buffer("max_epochs", torch.ones((), dtype=torch.long))

    def prepare(self, targets: Tensor, known: Tensor) -> None:
        """The training split's labels (n, T), once before the first epoch (e.g. class priors)."""

    def start_epoch(self, epoch: int, max_epochs: int) -> None:
        """Called at the start of every epoch (0-based)."""
        self.epoch.fill_(int(epoch))
        self.max_epochs.fill_(max(int(max_epochs), 1))

    def cells(self, logits: Tensor, targets: Tensor, known: Tensor,
              pos_weight: Tensor | None) -> tuple[Tensor, Tensor]:
        """Per-cell losses (m, T) and the boolean mask (m, T) of the cells that enter the loss.

        `targets` are 0 where unknown (the base class zeroes them, whatever they held)."""
        raise NotImplementedError

    def forward(self, logits: Tensor, targets: Tensor, known: Tensor, *, normalization: Normalization = "batch",
                pos_weight: Tensor | None = None) -> tuple[Tensor, Tensor]:
        safe = torch.where(known, targets.to(logits.dtype), torch.zeros_like(logits))
        cells, mask = self.cells(logits, safe, known, pos_weight)
        return reduce_cells(torch.where(mask, cells, torch.zeros_like(cells)), mask.to(logits.dtype).sum(dim=0),
                            normalization)


def class_priors(targets: Tensor, known: Tensor) -> Tensor:
    """Each task's positive rate estimated from known labels: positives / known where the task has known
    negatives, otherwise positives / rows (a lower bound, e.g. with single positive labels).

    >>> class_priors(torch.tensor([[1.0, 1.0], [0.0, 0.0], [1.0, 0.0]]),
    ...              torch.tensor([[True, True], [True, False], [False, False]]))
    tensor([0.5000, 0.3333])
    """
    known = known.bool()
    positives = ((targets > 0.5) & known).sum(dim=0).double()
    negatives = ((targets <= 0.5) & known).sum(dim=0).double()
    rows = max(targets.shape[0], 1)
    with_negatives = positives / (positives + negatives).clamp(min=1)
    return torch.where(negatives > 0, with_negatives, positives / rows).float()


def build_unknown(name: str, n_tasks: int, **options: Any) -> UnknownStrategy:
    """A strategy by registry name (`multitask unknowns` lists them)."""
    return UNKNOWNS.build(name, n_tasks=n_tasks, **options)  # type: ignore[return-value]


def single_positive_labels(table: Any) -> bool:
    """Whether the training split holds single positive labels: at most one known label per row, all positive.

    >>> import numpy as np
    >>> from multitask.tables import label_table_from_arrays
    >>> single_positive_labels(label_table_from_arrays(np.zeros((2, 1)), np.array([[1, np.nan], [np.nan, 1]])))
    True
    """
    train = table.part("train")
    known = train.known
    return bool(len(train)) and bool((known.sum(axis=1) <= 1).all()) and bool((train.targets[known] > 0.5).all())


def check_trainable_for(table: Any, unknown: str) -> None:
    """:func:`multitask.tables.check_trainable`, except where unknown labels carry information: with a strategy
    other than ``ignore``, or with single positive labels, a task whose known training labels are all positive
    is accepted (the strategy supplies its negatives) — it still needs one known positive.
    """
    import logging

    from multitask.errors import LabelError
    from multitask.tables import check_trainable

    if (unknown == "ignore" and not single_positive_labels(table)) or not (table.split == "train").any():
        check_trainable(table)
        return
    n_known, positives = table.task_counts("train")
    for j, task in enumerate(table.tasks):
        if positives[j] == 0:
            raise LabelError("task has no known positive label in the training split", file=table.source,
                             column=task)
        if positives[j] == n_known[j]:
            logging.getLogger(__name__).info("task %s: every known training label is positive; loss.unknown %s "
                                             "supplies the negatives", task, unknown)
