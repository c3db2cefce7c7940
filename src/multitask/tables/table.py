"""LabelTable: the validated examples every stage after the reader trusts.

>>> import numpy as np
>>> table = LabelTable(tasks=("car",), targets=np.float32([[1], [0]]), known=np.array([[True], [False]]),
...                    split=np.array(["train", "test"]), ids=np.array(["2", "3"], dtype=object),
...                    features=np.zeros((2, 1), np.float32))
>>> len(table.part("train")), table.kind, table.positives().tolist()
(1, 'features', [1])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from multitask.errors import LabelError


@dataclass(frozen=True, eq=False)
class LabelTable:
    """Validated examples: inputs, 0/1 `targets`, boolean `known`, and a split per row.

    Exactly one of `images` (absolute paths) and `features` is set.
    """

    tasks: tuple[str, ...]
    targets: np.ndarray
    known: np.ndarray
    split: np.ndarray
    ids: np.ndarray
    images: np.ndarray | None = None
    features: np.ndarray | None = None
    feature_names: tuple[str, ...] = ()
    source: str = ""
    skipped: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        n, t = len(self.ids), len(self.tasks)
        if self.targets.shape != (n, t) or self.known.shape != (n, t) or self.split.shape != (n,):
            raise ValueError("targets, known and split must match the number of rows and tasks")
        if (self.images is None) == (self.features is None):
            raise ValueError("a label table has either images or features")

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
        return replace(
            self,
            targets=self.targets[rows],
            known=self.known[rows],
            split=self.split[rows],
            ids=self.ids[rows],
            images=None if self.images is None else self.images[rows],
            features=None if self.features is None else self.features[rows],
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
        table = replace(self, tasks=tuple(names), targets=self.targets[:, cols], known=self.known[:, cols])
        if drop_unlabelled:
            table = table.subset(table.known.any(axis=1))
        return table

    def hide_labels(self, fraction: float, seed: int, splits: Sequence[str] = ("train", "val")) -> LabelTable:
        """Mark a seeded random `fraction` of the known labels in `splits` as unknown."""
        rng = np.random.default_rng(seed)
        eligible = self.known & np.isin(self.split, list(splits))[:, None]
        hide = eligible & (rng.random(self.known.shape) < fraction)
        return replace(self, known=self.known & ~hide, targets=np.where(hide, 0.0, self.targets).astype(np.float32))

    def positives(self) -> np.ndarray:
        """Known positive labels per task."""
        return ((self.targets > 0.5) & self.known).sum(axis=0)

    def to_frame(self, input_column: str = "image") -> pd.DataFrame:
        """The table in the file format: input, task columns with 1 / 0 / ?, split."""
        values = np.where(self.known, np.where(self.targets > 0.5, "1", "0"), "?")
        frame = pd.DataFrame(values, columns=list(self.tasks))
        if self.features is not None:
            inputs = pd.DataFrame(self.features, columns=list(self.feature_names))
        else:
            inputs = pd.DataFrame({input_column: self.ids})
        return pd.concat([inputs, frame, pd.DataFrame({"split": self.split})], axis=1)
