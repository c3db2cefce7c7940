"""scikit-learn model selection when Y holds NaN (unknown labels): a splitter and scorers on known labels.

``GridSearchCV(..., cv=2)`` cannot work on such a Y: scikit-learn's ``check_cv`` calls ``type_of_target(Y)``
to decide between ``KFold`` and ``StratifiedKFold``, and that rejects NaN before any estimator is reached;
its metrics (``average_precision_score``, ``label_ranking_average_precision_score``) reject NaN too. Pass
these instead:

* :class:`KnownLabelKFold` — seeded K folds, stratified on the known positives of every task (iterative
  stratification: rows with the rarest labels are placed first), so that each training fold keeps the rare
  labels; accepts NaN in Y (and works with Y=None as a shuffled KFold).
* :data:`KNOWN_LABEL_SCORERS` — ``scoring=`` callables that read ``predict_proba`` and ignore unknown cells:
  ``"label_ranking_average_precision"`` (per row, the ranking of its known labels) and
  ``"macro_average_precision"`` (per task, the AP over its known rows; tasks without both classes left out).
  On a complete Y they equal scikit-learn's metrics (tested).

>>> import numpy as np
>>> Y = np.array([[1, 0, np.nan], [0, 1, 1], [np.nan, 0, 1], [1, 1, 0]])
>>> S = np.array([[.9, .2, .5], [.1, .8, .3], [.7, .4, .6], [.6, .3, .4]])
>>> round(known_label_ranking_average_precision(Y, S), 4), round(known_macro_average_precision(Y, S), 4)
(0.9583, 0.8889)
>>> [len(test) for _, test in KnownLabelKFold(2).split(np.zeros((4, 1)), Y)]
[2, 2]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from sklearn.model_selection import BaseCrossValidator

__all__ = ["KNOWN_LABEL_SCORERS", "KnownLabelKFold", "known_label_ranking_average_precision",
           "known_label_scorer", "known_macro_average_precision"]


def _as_labels(y: Any) -> np.ndarray:
    """(n, T) float array of 1 / 0 / NaN (a 1-D y is one task)."""
    labels = np.asarray(y, dtype=np.float64)
    return labels.reshape(-1, 1) if labels.ndim == 1 else labels


def known_label_ranking_average_precision(y_true: Any, y_score: Any) -> float:
    """Label-ranking average precision over each row's *known* labels (NaN in `y_true` = unknown).

    As scikit-learn's ``label_ranking_average_precision_score`` on a complete Y (a row whose known labels are
    all positive or all negative scores 1; ties count against, rank 'max'), with each row restricted to the
    columns it knows.
    """
    labels, scores = _as_labels(y_true), np.asarray(y_score, dtype=np.float64).reshape(_as_labels(y_true).shape)
    total = 0.0
    for row, score in zip(labels, scores, strict=True):
        known = ~np.isnan(row)
        relevant = row[known] == 1
        s = score[known]
        if not relevant.any() or relevant.all():
            total += 1.0
            continue
        # for each relevant label r: (relevant labels scored >= s_r) / (labels scored >= s_r)
        above = s[None, :] >= s[relevant][:, None]
        total += float(np.mean(above[:, relevant].sum(axis=1) / above.sum(axis=1)))
    return total / len(labels)


def known_macro_average_precision(y_true: Any, y_score: Any) -> float:
    """Mean over tasks of the average precision on each task's known rows; tasks without both classes among
    them are left out (as the project's metrics do). On a complete Y: ``average_precision_score(average="macro")``.
    """
    from sklearn.metrics import average_precision_score

    labels, scores = _as_labels(y_true), np.asarray(y_score, dtype=np.float64).reshape(_as_labels(y_true).shape)
    values = []
    for j in range(labels.shape[1]):
        known = ~np.isnan(labels[:, j])
        truth = labels[known, j]
        if 0 < truth.sum() < len(truth):
            values.append(average_precision_score(truth, scores[known, j]))
    if not values:
        raise ValueError("no task has known labels of both classes to score")
    return float(np.mean(values))


def known_label_scorer(metric: str | Callable[[Any, Any], float]) -> Callable[[Any, Any, Any], float]:
    """A ``scoring=`` callable ``(estimator, X, y) -> float`` applying `metric` (a name of
    :data:`KNOWN_LABEL_SCORERS` or a function of (y_true, y_score)) to ``estimator.predict_proba(X)``."""
    function = _METRICS[metric] if isinstance(metric, str) else metric

    def score(estimator: Any, X: Any, y: Any) -> float:
        probs = np.asarray(estimator.predict_proba(X), dtype=np.float64)
        labels = _as_labels(y)
        if probs.ndim == 2 and probs.shape[1] == 2 and labels.shape[1] == 1:  # 1-D y: column of classes_[1]
            probs = probs[:, 1:]
        return function(labels, probs)

    score.__name__ = getattr(function, "__name__", "known_label_score")
    return score


_METRICS: dict[str, Callable[[Any, Any], float]] = {
    "label_ranking_average_precision": known_label_ranking_average_precision,
    "macro_average_precision": known_macro_average_precision,
}

KNOWN_LABEL_SCORERS: dict[str, Callable[[Any, Any, Any], float]] = {name: known_label_scorer(name)
                                                                    for name in _METRICS}
"""``scoring=`` callables on known labels, e.g.
``GridSearchCV(..., scoring=KNOWN_LABEL_SCORERS["macro_average_precision"])``."""


class KnownLabelKFold(BaseCrossValidator):
    """K folds stratified on the known positives of every task; NaN in Y is unknown (see the module docstring).

    Rows are shuffled (seeded by `random_state`), then placed one by one, those whose rarest known positive
    label is rarest first, into the fold not yet full that most lacks that label (ties: the fold that most
    lacks rows, then the first). Deterministic for an int `random_state`.
    """

    def __init__(self, n_splits: int = 5, *, random_state: int | None = 0) -> None:
        if not (isinstance(n_splits, int | np.integer) and n_splits >= 2):
            raise ValueError(f"n_splits must be an int >= 2; got {n_splits!r}")
        self.n_splits = int(n_splits)
        self.random_state = random_state

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        return self.n_splits

    def _iter_test_indices(self, X: Any = None, y: Any = None, groups: Any = None) -> Iterator[np.ndarray]:
        n = len(X) if X is not None else len(y)
        if n < self.n_splits:
            raise ValueError(f"cannot split {n} rows into n_splits={self.n_splits} folds")
        order = np.random.default_rng(self.random_state).permutation(n)
        fold = np.empty(n, dtype=np.int64)
        if y is None:
            for position, row in enumerate(order):
                fold[row] = position % self.n_splits
        else:
            positive = np.nan_to_num(_as_labels(y), nan=0.0) == 1
            counts = positive.sum(axis=0)
            wanted = np.tile(counts / self.n_splits, (self.n_splits, 1))  # positives each fold still lacks
            room = np.full(self.n_splits, n / self.n_splits)  # rows each fold still lacks
            rarest = np.where(positive[order], counts[None, :], np.inf).min(axis=1)
            for row in order[np.argsort(rarest, kind="stable")]:
                labels = np.flatnonzero(positive[row])
                candidates = np.flatnonzero(room > 0)  # folds not full yet
                if len(labels):
                    need = wanted[candidates, labels[np.argmin(counts[labels])]]
                    candidates = candidates[need == need.max()]
                choice = candidates[np.argmax(room[candidates])]
                fold[row] = choice
                wanted[choice, labels] -= 1
                room[choice] -= 1
        for k in range(self.n_splits):
            yield np.flatnonzero(fold == k)
