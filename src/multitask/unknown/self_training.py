"""Self-training label completion: fit, complete confident unknown training labels, refit.

This works on the :class:`~multitask.tables.LabelTable`, not inside the loss: every round is an ordinary fit
(the ``ignore`` loss) on the table completed so far, so no data set or loader changes. Only *unknown* cells of
the *training* split are ever completed; a known label, and every validation and test label, is never changed.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import Tensor

from multitask.losses import Normalization, per_task_losses
from multitask.unknown.base import UNKNOWNS, UnknownStrategy

if TYPE_CHECKING:
    from multitask.config import RunConfig
    from multitask.models.network import MultiTaskNetwork
    from multitask.tables import LabelTable

log = logging.getLogger(__name__)


@UNKNOWNS.register("self_training")
class SelfTraining(UnknownStrategy):
    """Self-training: rounds of fitting, each completing confident unknown training labels (a curriculum).

    References: the curriculum label completion of Durand, Mehrasa, Mori, "Learning a Deep ConvNet for
    Multi-label Classification with Partial Labels", CVPR 2019 (arXiv:1902.09720), after the self-training of
    Yarowsky (ACL 1995) and Lee, "Pseudo-Label", ICML workshop 2013.

    ``rounds`` fits in all. After fit r (of the first rounds − 1), the threshold on the confidence
    max(p, 1 − p) is the lowest at which the validation split's known labels reach ``precision`` (the
    predicted label right that often, p ≥ 0.5 read as positive); of the unknown training cells above it, the
    most confident fraction r / (rounds − 1) is completed with the predicted label (the curriculum: a few sure
    labels first, more as the model improves), and the next fit starts again from the initial weights. No
    threshold (no validation labels of both kinds, or none precise enough): nothing is completed. The loss of
    every round is ``ignore``'s.

    >>> import numpy as np
    >>> probs = np.array([[0.99], [0.9], [0.6], [0.2]])
    >>> round(confidence_threshold(probs, np.array([[1.0], [0.0], [1.0], [0.0]]), np.ones((4, 1), bool), 0.8), 4)
    0.945
    """

    completes_labels = True

    def __init__(self, n_tasks: int, rounds: int = 3, precision: float = 0.95) -> None:
        super().__init__(n_tasks)
        if rounds < 1 or not 0.5 <= precision <= 1:
            raise ValueError(f"self_training: rounds must be >= 1 and precision in [0.5, 1], got {rounds}, "
                             f"{precision}")
        self.rounds, self.precision = int(rounds), float(precision)

    def forward(self, logits: Tensor, targets: Tensor, known: Tensor, *, normalization: Normalization = "batch",
                pos_weight: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return per_task_losses(logits, targets, known, normalization=normalization, pos_weight=pos_weight)


def confidence_threshold(probs: np.ndarray, targets: np.ndarray, known: np.ndarray, precision: float,
                         min_support: int = 1) -> float | None:
    """The lowest confidence max(p, 1 − p) at which the predicted labels of the known cells with at least that
    confidence are right a fraction `precision` of the time; None when no such set (of `min_support` cells or
    more) exists or the known labels are all of one kind."""
    known = known.astype(bool)
    y = targets[known] > 0.5
    if not y.any() or y.all():
        return None
    p = probs[known]
    confidence = np.maximum(p, 1 - p)
    right = (p >= 0.5) == y
    order = np.argsort(-confidence, kind="mergesort")
    running = np.cumsum(right[order]) / np.arange(1, len(order) + 1)
    good = np.flatnonzero((running >= precision) & (np.arange(1, len(order) + 1) >= min_support))
    if not len(good):
        return None
    ranked = confidence[order]
    last = good[-1]
    # Halfway to the next lower confidence: a threshold between two observed values.
    below = (ranked[last] - ranked[last + 1]) / 2 if last + 1 < len(ranked) else 0.0
    return float(ranked[last] - below)


@dataclass
class Completion:
    """What self-training completed: cells (n, T) of the table and their labels, with each round's record."""

    completed: np.ndarray
    values: np.ndarray
    rounds: list[dict[str, Any]] = field(default_factory=list)

    def accuracy(self, hidden: np.ndarray, truth: np.ndarray) -> dict[str, float | int | None]:
        """Against the hidden truth (cells (n, T) hidden by a protocol, and their labels): how many completed
        cells had a hidden label, and the fraction of those completed correctly (positives and negatives)."""
        scored = self.completed & hidden
        right = scored & ((self.values > 0.5) == (truth > 0.5))
        positives = scored & (self.values > 0.5)
        return {"completed": int(self.completed.sum()), "scored": int(scored.sum()),
                "accuracy": float(right.sum() / scored.sum()) if scored.any() else None,
                "completed_positive": int(positives.sum()),
                "positive_precision": (float((positives & (truth > 0.5)).sum() / positives.sum())
                                       if positives.any() else None)}


def complete(table: LabelTable, probs_train: np.ndarray, threshold: float | None, fraction: float) -> tuple[
        LabelTable, np.ndarray]:
    """`table` with the most confident `fraction` of its unknown training cells above `threshold` completed
    with the predicted label (p >= 0.5: positive); returns the new table and the completed mask (n, T).

    >>> import numpy as np
    >>> from multitask.tables import label_table_from_arrays
    >>> t = label_table_from_arrays(np.zeros((2, 1)), np.array([[np.nan, np.nan], [1.0, np.nan]]))
    >>> new, done = complete(t, np.array([[0.99, 0.4], [0.1, 0.02]]), 0.9, 1.0)
    >>> new.known.tolist(), new.targets.tolist(), done.tolist()
    ([[True, False], [True, True]], [[1.0, 0.0], [1.0, 0.0]], [[True, False], [False, True]])
    """
    rows = np.flatnonzero(table.split == "train")
    done = np.zeros_like(table.known)
    if threshold is None or fraction <= 0 or not len(rows):
        return table, done
    confidence = np.maximum(probs_train, 1 - probs_train)
    eligible = ~table.known[rows] & (confidence >= threshold)
    cells = np.argwhere(eligible)
    take = int(math.ceil(min(fraction, 1.0) * len(cells)))
    if take == 0:
        return table, done
    order = np.argsort(-confidence[eligible], kind="mergesort")[:take]
    r, c = rows[cells[order, 0]], cells[order, 1]
    done[r, c] = True
    known = table.known | done
    targets = table.targets.copy()
    targets[r, c] = (probs_train[cells[order, 0], c] >= 0.5).astype(np.float32)
    return replace(table, known=known, targets=targets.astype(np.float32)), done


def complete_in_rounds(config: RunConfig, table: LabelTable, network: MultiTaskNetwork, run_dir: Path, *,
                       options: dict[str, Any], quiet: bool = True, label: str = "") -> tuple[LabelTable, Completion]:
    """The first rounds − 1 fits of self-training and their completions, in `run_dir/self_training/round<r>`
    (each round's completed labels saved there, so a resumed run skips finished rounds). Returns the table the
    last fit trains on and what was completed; `network` is left untouched (every round starts from a copy)."""
    from multitask.data.datamodule import make_dataset
    from multitask.distributed import is_global_zero
    from multitask.files import atomic_write_with
    from multitask.inference import predict_proba
    from multitask.training import fit

    strategy = SelfTraining(table.n_tasks, **options)
    plain = config.model_copy(update={"loss": config.loss.model_copy(update={"unknown": "ignore",
                                                                             "unknown_options": {}})})
    original = table
    completed = np.zeros_like(table.known)
    record: list[dict[str, Any]] = []
    steps = strategy.rounds - 1
    for step in range(1, steps + 1):
        folder = run_dir / "self_training" / f"round{step}"
        saved = folder / "completed.npz"
        if saved.is_file():
            with np.load(saved) as data:
                if data["known"].shape == table.known.shape:
                    table = replace(table, known=data["known"], targets=data["targets"])
                    completed = data["completed"]
                    record.append({"round": step, "threshold": float(data["threshold"]),
                                   "completed": int(data["new"]), "reused": True})
                    continue
        result = fit(plain, table, copy.deepcopy(network), folder, quiet=True, label=label, resumable=False)
        val = table.part("val")
        threshold = None
        if len(val):
            threshold = confidence_threshold(predict_proba(result.network, make_dataset(val, config.data)),
                                             val.targets, val.known, strategy.precision)
        train_probs = predict_proba(result.network, make_dataset(table.part("train"), config.data))
        table, new = complete(table, train_probs, threshold, step / steps)
        completed |= new
        entry = {"round": step, "threshold": math.nan if threshold is None else threshold,
                 "completed": int(new.sum())}
        record.append(entry)
        if not quiet:
            log.info("%sself-training round %d/%d: threshold %s, %d labels completed", label, step, steps,
                     "none" if threshold is None else f"{threshold:.4f}", int(new.sum()))
        if is_global_zero():
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_with(saved, lambda tmp, t=table, c=completed, e=entry: _savez(tmp, t, c, e))
    assert not (completed & original.known).any(), "self-training must never change a known label"
    return table, Completion(completed=completed, values=np.where(completed, table.targets, 0.0), rounds=record)


def _savez(path: Path, table: LabelTable, completed: np.ndarray, entry: dict[str, Any]) -> None:
    with open(path, "wb") as handle:
        np.savez(handle, known=table.known, targets=table.targets, completed=completed,
                 threshold=entry["threshold"], new=entry["completed"])
