"""LabelTable: the validated examples every stage after the reader trusts.

The labels are held compactly (:class:`~multitask.tables.compact.CompactLabels`: bit-packed or sparse, whichever
is smaller), so a table that is 99 % unknown costs no float per cell. ``targets`` (float32 0/1) and ``known``
(bool), the one in-code representation of labels (docs/conventions.md), are materialised from it on access: the
slow path, 5 bytes per cell, kept once made for tables of up to ``DENSE_CACHE_CELLS`` cells and made again on
each access beyond. Training never takes it: its datasets unpack each batch's rows (:meth:`CompactLabels.rows`),
and the per-task counts it needs come from :meth:`LabelTable.task_counts`.

>>> import numpy as np
>>> table = LabelTable(tasks=("car",), targets=np.float32([[1], [0]]), known=np.array([[True], [False]]),
...                    split=np.array(["train", "test"]), ids=np.array(["2", "3"], dtype=object),
...                    features=np.zeros((2, 1), np.float32))
>>> len(table.part("train")), table.kind, table.positives().tolist(), table.labels.format
(1, 'features', [1], 'packed')
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from multitask.errors import LabelError
from multitask.tables.compact import CompactLabels

DENSE_CACHE_CELLS = 1 << 24  # dense targets / known made from the compact store are kept up to this size (80 MB)


@dataclass(frozen=True, eq=False, init=False)
class LabelTable:
    """Validated examples: inputs, labels (compact; dense `targets` / `known` on access), and a split per row.

    Built from dense ``targets`` and ``known`` (kept as given) or from compact ``labels``; when both are given
    (``dataclasses.replace(table, targets=..., known=...)``) the dense arrays win. Exactly one of `images`
    (absolute paths) and `features` is set.
    """

    tasks: tuple[str, ...]
    split: np.ndarray
    ids: np.ndarray
    images: np.ndarray | None = None
    features: np.ndarray | None = None
    feature_names: tuple[str, ...] = ()
    source: str = ""
    skipped: tuple[str, ...] = field(default=())
    labels: CompactLabels | None = None

    def __init__(self, tasks: Sequence[str], targets: np.ndarray | None = None, known: np.ndarray | None = None,
                 split: np.ndarray | None = None, ids: np.ndarray | None = None, images: np.ndarray | None = None,
                 features: np.ndarray | None = None, feature_names: Sequence[str] = (), source: str = "",
                 skipped: Sequence[str] = (), labels: CompactLabels | None = None) -> None:
        if targets is not None or known is not None:
            if targets is None or known is None:  # replace() with one of them: the other from the old labels
                old_targets, old_known = _require(labels).dense()
                targets = old_targets if targets is None else targets
                known = old_known if known is None else known
            dense: tuple[np.ndarray, np.ndarray] | None = (np.asarray(targets), np.asarray(known, dtype=bool))
            labels = None
        else:
            dense = None
            _require(labels)
        values = {"tasks": tuple(tasks), "split": np.asarray(split), "ids": np.asarray(ids), "images": images,
                  "features": features, "feature_names": tuple(feature_names), "source": source,
                  "skipped": tuple(skipped), "labels": labels}
        for name, value in values.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_dense", dense)
        self.__post_init__()

    def __post_init__(self) -> None:
        n, t = len(self.ids), len(self.tasks)
        shape = self._dense[1].shape if self._dense is not None else self.labels.shape
        if shape != (n, t) or (self._dense is not None and self._dense[0].shape != (n, t)) or \
                self.split.shape != (n,):
            raise ValueError("targets, known and split must match the number of rows and tasks")
        if (self.images is None) == (self.features is None):
            raise ValueError("a label table has either images or features")
        if self.labels is None:
            object.__setattr__(self, "labels", CompactLabels.from_dense(*self._dense))

    # ------------------------------------------------------------------------------------------- labels
    @property
    def targets(self) -> np.ndarray:
        """(n, T) float32 0/1 (0 where unknown); materialised from the compact labels (slow path)."""
        return self._dense_pair()[0]

    @property
    def known(self) -> np.ndarray:
        """(n, T) bool; materialised from the compact labels (slow path)."""
        return self._dense_pair()[1]

    def _dense_pair(self) -> tuple[np.ndarray, np.ndarray]:
        if self._dense is not None:
            return self._dense
        pair = self.labels.dense()
        if len(self) * self.n_tasks <= DENSE_CACHE_CELLS:
            object.__setattr__(self, "_dense", pair)
        return pair

    def task_counts(self, split: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(known labels, positive labels) per task, of one split or of every row — from the compact labels."""
        labels = self.labels if split is None else self.labels.subset(self.split == split)
        return labels.counts()

    def positives(self) -> np.ndarray:
        """Known positive labels per task."""
        return self.task_counts()[1]

    # ------------------------------------------------------------------------------------------- rows
    def __len__(self) -> int:
        return len(self.ids)

    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    @property
    def kind(self) -> str:
        """'images' or 'features'."""
        return "images" if self.images is not None else "features"

    @property
    def n_features(self) -> int:
        return 0 if self.features is None else self.features.shape[1]

    def subset(self, rows: np.ndarray | Sequence[int]) -> LabelTable:
        """The rows selected by a boolean mask or index array."""
        rows = np.asarray(rows)
        labels = {"labels": self.labels.subset(rows)} if self._dense is None else \
            {"targets": self._dense[0][rows], "known": self._dense[1][rows]}
        return replace(
            self,
            split=self.split[rows],
            ids=self.ids[rows],
            images=None if self.images is None else self.images[rows],
            features=None if self.features is None else self.features[rows],
            **labels,
        )

    def part(self, split: str) -> LabelTable:
        """The rows of one split: 'train', 'val' or 'test'."""
        return self.subset(self.split == split)

    def select_tasks(self, names: Sequence[str], drop_unlabelled: bool = False) -> LabelTable:
        """Keep only some tasks; with drop_unlabelled, also drop rows with none of them known."""
        missing = [n for n in names if n not in self.tasks]
        if missing:
            raise LabelError(f"unknown task(s) {missing}; tasks are {list(self.tasks)}", file=self.source)
        cols = [self.tasks.index(n) for n in names]
        labels = {"labels": self.labels.select(cols)} if self._dense is None else \
            {"targets": self._dense[0][:, cols], "known": self._dense[1][:, cols]}
        table = replace(self, tasks=tuple(names), **labels)
        if drop_unlabelled:
            table = table.subset(table.labels.any_known())
        return table

    def hide_labels(self, fraction: float, seed: int, splits: Sequence[str] = ("train", "val")) -> LabelTable:
        """Mark a seeded random `fraction` of the known labels in `splits` as unknown (block by block: the same
        draws as one (n, T) draw, without a dense copy of the whole table)."""
        rng = np.random.default_rng(seed)
        eligible_rows = np.isin(self.split, list(splits))

        def blocks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            start = 0
            for targets, known in self.labels.blocks():
                rows = slice(start, start + len(known))
                hide = known & eligible_rows[rows, None] & (rng.random(known.shape) < fraction)
                yield targets > 0.5, known & ~hide
                start += len(known)

        labels = CompactLabels.from_blocks(blocks(), len(self), self.n_tasks, self.labels.format).best()
        return replace(self, labels=labels)

    def to_frame(self, input_column: str = "image") -> pd.DataFrame:
        """The table in the file format: input, task columns with 1 / 0 / ?, split."""
        values = np.where(self.known, np.where(self.targets > 0.5, "1", "0"), "?")
        frame = pd.DataFrame(values, columns=list(self.tasks))
        if self.features is not None:
            inputs = pd.DataFrame(self.features, columns=list(self.feature_names))
        else:
            inputs = pd.DataFrame({input_column: self.ids})
        return pd.concat([inputs, frame, pd.DataFrame({"split": self.split})], axis=1)


def _require(labels: CompactLabels | None) -> CompactLabels:
    if labels is None:
        raise ValueError("a label table needs targets and known, or compact labels")
    return labels
