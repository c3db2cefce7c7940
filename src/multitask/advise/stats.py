"""Label statistics for the advisor: per-task counts, the data condition, and label correlation.

Everything here reads only the labels (no training) and uses the training split.

>>> import numpy as np
>>> from multitask.tables import label_table_from_arrays
>>> y = np.array([[1, 0], [0, np.nan], [1, 1], [np.nan, 1]])
>>> counts = task_counts(label_table_from_arrays(np.zeros((4, 1)), y))
>>> [(c["task"], c["known"], c["positives"], c["others_known"], c["ratio"]) for c in counts]
[('task_0', 3, 2, 3, 1.0), ('task_1', 3, 2, 3, 1.0)]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from multitask.tables import LabelTable

MIN_COLABELLED = 10
"""Pairs of tasks known together on fewer training rows than this get no correlation (NaN)."""

DATA_RATIO_LOW = 2.0
"""A task whose other tasks have fewer than this many times its own known labels gets little help from them."""

LARGEST_FACTOR = 2.0
"""A task is 'the largest' when it has the most labels and at least this many times the next largest task."""

FAVOURABLE_TASKS, FAVOURABLE_LABELS = 100, 1000
"""The lecture's favourable case: 100 tasks with 1,000 labels each, so each task's others have 99× its data."""


def task_counts(table: LabelTable) -> list[dict[str, Any]]:
    """Per task, on the training split: known labels, positives, fraction unknown, and the data condition.

    `others_known` is the other tasks' known labels in aggregate, `ratio` = others_known / known (NaN without
    labels); `extra_rows` counts training rows where this task is unknown but another task is known (rows a
    shared trunk sees that this task's own network would not). `flags` names the weak points:
    'no_labels', 'one_class', 'little_help' (ratio < DATA_RATIO_LOW) and 'largest'.
    """
    train = table.part("train")
    known = train.known
    positive = (train.targets > 0.5) & known
    n_known = known.sum(axis=0).astype(int)
    n_positive = positive.sum(axis=0).astype(int)
    total = int(n_known.sum())
    labelled_rows = known.any(axis=1)
    extra = ((~known) & labelled_rows[:, None]).sum(axis=0).astype(int)
    ordered = np.sort(n_known)[::-1]
    second = int(ordered[1]) if len(ordered) > 1 else 0
    rows = []
    for j, task in enumerate(table.tasks):
        k = int(n_known[j])
        others = total - k
        ratio = others / k if k else float("nan")
        flags = []
        if k == 0:
            flags.append("no_labels")
        elif n_positive[j] in (0, k):
            flags.append("one_class")
        if k and ratio < DATA_RATIO_LOW:
            flags.append("little_help")
        if table.n_tasks > 1 and k and k == ordered[0] and k >= LARGEST_FACTOR * second:
            flags.append("largest")
        rows.append({
            "task": task,
            "known": k,
            "positives": int(n_positive[j]),
            "unknown_fraction": float(1 - k / len(train)) if len(train) else 0.0,
            "others_known": others,
            "ratio": float(ratio),
            "extra_rows": int(extra[j]),
            "flags": flags,
        })
    return rows


def label_correlation(targets: np.ndarray, known: np.ndarray, min_rows: int = MIN_COLABELLED
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Phi coefficients (Pearson on 0/1) between tasks on rows where both are known.

    Returns (phi, co_labelled, both_positive), each (T, T). phi is NaN where fewer than `min_rows` rows are
    co-labelled or a task is constant on them.

    >>> y = np.array([[1, 1], [0, 0], [1, 1], [0, 1]], dtype=float)
    >>> phi, n, both = label_correlation(y, np.ones((4, 2), bool), min_rows=2)
    >>> round(float(phi[0, 1]), 4), int(n[0, 1]), int(both[0, 1])
    (0.5774, 4, 2)
    """
    k = known.astype(np.float64)
    y = ((targets > 0.5) & known).astype(np.float64)
    n = k.T @ k  # co-labelled rows
    s = y.T @ k  # s[i, j]: positives of task i on rows where i and j are known
    both = y.T @ y
    numerator = n * both - s * s.T
    spread = n * s - s * s  # n Σx² − (Σx)² with x ∈ {0, 1}
    denominator = np.sqrt(np.clip(spread * spread.T, 0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        phi = np.where((n >= min_rows) & (denominator > 0), numerator / np.where(denominator > 0, denominator, 1),
                       np.nan)
    return np.clip(phi, -1, 1), n.astype(int), both.astype(int)
