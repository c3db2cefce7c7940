"""Tests of multitask.model_selection: known-label scorers (scikit-learn is the oracle on complete data) and the
splitter that accepts NaN labels."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, label_ranking_average_precision_score

from multitask.model_selection import (
    KNOWN_LABEL_SCORERS,
    KnownLabelKFold,
    known_label_ranking_average_precision,
    known_macro_average_precision,
)


def random_problem(seed: int, n: int = 60, t: int = 5, unknown: float = 0.0):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, t)) < 0.35).astype(float)
    y[0], y[1] = 0, 1  # rows with no / every label relevant
    scores = np.round(rng.random((n, t)), 1)  # ties
    if unknown:
        y[rng.random(y.shape) < unknown] = np.nan
    return y, scores


@pytest.mark.parametrize("seed", range(4))
def test_equal_to_scikit_learn_on_complete_labels(seed: int) -> None:
    y, s = random_problem(seed)
    assert known_label_ranking_average_precision(y, s) == pytest.approx(label_ranking_average_precision_score(y, s))
    assert known_macro_average_precision(y, s) == pytest.approx(average_precision_score(y, s, average="macro"))


@pytest.mark.parametrize("seed", range(4))
def test_unknown_cells_are_left_out(seed: int) -> None:
    """Brute force: each row's known columns scored by scikit-learn alone; each task's known rows likewise."""
    y, s = random_problem(seed, unknown=0.3)
    rows = []
    for truth, score in zip(y, s, strict=True):
        known = ~np.isnan(truth)
        relevant = truth[known]
        rows.append(1.0 if relevant.sum() in (0, len(relevant)) else
                    label_ranking_average_precision_score(relevant[None], score[known][None]))
    assert known_label_ranking_average_precision(y, s) == pytest.approx(np.mean(rows))
    tasks = [average_precision_score(y[~np.isnan(y[:, j]), j], s[~np.isnan(y[:, j]), j]) for j in range(y.shape[1])]
    assert known_macro_average_precision(y, s) == pytest.approx(np.mean(tasks))


def test_scorers_read_predict_proba() -> None:
    y, s = random_problem(0, unknown=0.2)

    class Fixed:
        def predict_proba(self, X):
            return s

    assert KNOWN_LABEL_SCORERS["label_ranking_average_precision"](Fixed(), None, y) == pytest.approx(
        known_label_ranking_average_precision(y, s))
    assert KNOWN_LABEL_SCORERS["macro_average_precision"](Fixed(), None, y) == pytest.approx(
        known_macro_average_precision(y, s))


def test_folds_partition_the_rows_keep_rare_labels_and_accept_nan() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random((90, 6)) < [0.5, 0.3, 0.2, 0.1, 0.05, 0.04]).astype(float)
    y[rng.random(y.shape) < 0.3] = np.nan
    splitter = KnownLabelKFold(3, random_state=1)
    folds = [test for _, test in splitter.split(np.zeros((90, 1)), y)]
    assert sorted(np.concatenate(folds).tolist()) == list(range(90))
    assert all(28 <= len(f) <= 32 for f in folds)
    positives = np.nan_to_num(y) == 1
    for j in range(y.shape[1]):
        per_fold = [int(positives[f, j].sum()) for f in folds]
        assert max(per_fold) - min(per_fold) <= 1, (j, per_fold)  # stratified on the known positives
    again = [test for _, test in KnownLabelKFold(3, random_state=1).split(np.zeros((90, 1)), y)]
    assert all(np.array_equal(a, b) for a, b in zip(folds, again, strict=True))
    plain = [test for _, test in splitter.split(np.zeros((90, 1)))]  # y=None: a shuffled KFold
    assert sorted(len(f) for f in plain) == [30, 30, 30]
    with pytest.raises(ValueError, match="n_splits"):
        KnownLabelKFold(1)
