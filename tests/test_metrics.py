"""Tests for multitask.metrics, against scikit-learn on explicitly masked data and hand-computed values."""

from __future__ import annotations

import doctest
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    coverage_error,
    f1_score,
    hamming_loss,
    label_ranking_average_precision_score,
    label_ranking_loss,
    roc_auc_score,
)

from multitask import metrics
from multitask.metrics import (
    TaskMetrics,
    choose_thresholds,
    macro_average,
    metrics_table,
    multilabel_metrics,
    task_metrics,
)

NAN = float("nan")


def random_problem(
    seed: int, n: int, n_tasks: int, p_known: float = 0.6, decimals: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores correlated with labels (``decimals`` rounds them, making ties); targets 0 where unknown."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, n_tasks)) < rng.uniform(0.2, 0.6, n_tasks)).astype(float)
    probs = np.clip(0.35 * labels + 0.65 * rng.random((n, n_tasks)), 0.0, 1.0)
    if decimals is not None:
        probs = np.round(probs, decimals)
    known = rng.random((n, n_tasks)) < p_known
    return probs, labels * known, known


def reference(probs, targets, known, thresholds) -> list[dict]:
    """sklearn on each task's known labels, selected with explicit boolean indexing."""
    out = []
    for j in range(probs.shape[1]):
        mask = known[:, j]
        y = targets[mask, j]
        s = probs[mask, j]
        decision = s >= thresholds[j]
        out.append(
            {
                "n_known": int(mask.sum()),
                "n_positive": int((y == 1).sum()),
                "average_precision": average_precision_score(y, s),
                "roc_auc": roc_auc_score(y, s),
                "f1": f1_score(y, decision),
                "accuracy": accuracy_score(y, decision),
            }
        )
    return out


def assert_metrics_equal(a: list[TaskMetrics], b: list[TaskMetrics]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        for key, value in x.to_dict().items():
            other = y.to_dict()[key]
            if isinstance(value, float) and math.isnan(value):
                assert math.isnan(other), key
            else:
                assert value == other, key


# --------------------------------------------------------------------------- per-task metrics vs sklearn


@pytest.mark.parametrize("n_tasks", [1, 3, 8])
@pytest.mark.parametrize("decimals", [None, 1])
@pytest.mark.parametrize("seed", [0, 1])
def test_task_metrics_match_sklearn_on_known_labels(n_tasks: int, decimals: int | None, seed: int) -> None:
    probs, targets, known = random_problem(seed, 80, n_tasks, decimals=decimals)
    names = [f"task{j}" for j in range(n_tasks)]
    rng = np.random.default_rng(seed + 100)
    for thresholds in (None, rng.uniform(0.2, 0.8, n_tasks), choose_thresholds(probs, targets, known)):
        thr = np.full(n_tasks, 0.5) if thresholds is None else thresholds
        got = task_metrics(probs, targets, known, names, thresholds)
        for j, (m, ref) in enumerate(zip(got, reference(probs, targets, known, thr), strict=True)):
            assert m.task == names[j]
            assert m.n_known == ref["n_known"]
            assert m.n_positive == ref["n_positive"]
            assert m.threshold == thr[j]
            for key in ("average_precision", "roc_auc", "f1", "accuracy"):
                assert getattr(m, key) == pytest.approx(ref[key], abs=1e-12), key


def test_scalar_threshold_equals_per_task_thresholds() -> None:
    probs, targets, known = random_problem(3, 50, 4)
    names = list("abcd")
    assert_metrics_equal(
        task_metrics(probs, targets, known, names, 0.3),
        task_metrics(probs, targets, known, names, np.full(4, 0.3)),
    )


def test_values_in_unknown_cells_are_ignored() -> None:
    probs, targets, known = random_problem(4, 60, 5, decimals=2)
    names = [str(j) for j in range(5)]
    thr = choose_thresholds(probs, targets, known)
    before = task_metrics(probs, targets, known, names, thr)

    rng = np.random.default_rng(5)
    probs2, targets2 = probs.copy(), targets.copy()
    unknown = ~known
    probs2[unknown] = rng.random(unknown.sum())
    targets2[unknown] = 1.0
    probs3 = probs.copy()
    probs3[unknown] = np.nan  # NaN where unknown must not matter either
    for p, y in ((probs2, targets2), (probs3, targets)):
        np.testing.assert_array_equal(choose_thresholds(p, y, known), thr)
        assert_metrics_equal(task_metrics(p, y, known, names, thr), before)

    # ...whereas a known cell does matter
    j = 0
    i = int(np.flatnonzero(known[:, j] & (targets[:, j] == 1))[0])
    targets4 = targets.copy()
    targets4[i, j] = 0.0
    after = task_metrics(probs, targets4, known, names, thr)
    assert after[j].n_positive == before[j].n_positive - 1


# --------------------------------------------------------------------------- thresholds


def test_choose_thresholds_hand_made() -> None:
    # task 0: best F1 (0.8) at 0.35 -> tp=2, fp=1, fn=0.
    # task 1: F1 = 2/3 both at 0.9 (tp=1, fn=1) and at 0.2 (tp=2, fp=2): the tie goes to the larger, 0.9.
    # task 2: all known labels positive -> 0.5.  task 3: nothing known -> 0.5.
    probs = np.array(
        [
            [0.1, 0.9, 0.3, 0.7],
            [0.35, 0.8, 0.9, 0.2],
            [0.4, 0.7, 0.1, 0.4],
            [0.8, 0.2, 0.6, 0.9],
        ]
    )
    targets = np.array(
        [
            [0.0, 1.0, 1.0, 0.0],
            [1.0, 0.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 0.0],
            [1.0, 1.0, 1.0, 0.0],
        ]
    )
    known = np.ones_like(targets, dtype=bool)
    known[2, 2] = False  # task 2's only negative is unknown
    known[:, 3] = False
    thr = choose_thresholds(probs, targets, known)
    np.testing.assert_array_equal(thr, [0.35, 0.9, 0.5, 0.5])
    m = task_metrics(probs, targets, known, ["a", "b", "c", "d"], thr)
    assert m[0].f1 == pytest.approx(0.8)
    assert m[1].f1 == pytest.approx(2 / 3)


def test_chosen_thresholds_maximise_f1_brute_force() -> None:
    probs, targets, known = random_problem(7, 70, 6, decimals=2)
    thr = choose_thresholds(probs, targets, known)
    names = [str(j) for j in range(6)]
    at_best = task_metrics(probs, targets, known, names, thr)
    at_half = task_metrics(probs, targets, known, names)
    for j in range(6):
        mask = known[:, j]
        y, s = targets[mask, j], probs[mask, j]
        f1_by_threshold = {float(t): f1_score(y, s >= t) for t in np.unique(s)}
        best = max(f1_by_threshold.values())
        expected = max(t for t, f in f1_by_threshold.items() if f >= best - 1e-12)
        assert thr[j] == expected
        assert at_best[j].f1 == pytest.approx(best)
        assert at_best[j].f1 >= at_half[j].f1


def test_choose_thresholds_one_class_and_bad_criterion() -> None:
    probs = np.array([[0.9, 0.1], [0.8, 0.3]])
    targets = np.array([[1.0, 0.0], [1.0, 0.0]])
    known = np.ones_like(targets, dtype=bool)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(choose_thresholds(probs, targets, known), [0.5, 0.5])
    with pytest.raises(ValueError, match="criterion"):
        choose_thresholds(probs, targets, known, criterion="accuracy")


# --------------------------------------------------------------------------- edge cases


def test_edge_cases_give_nan_without_warnings() -> None:
    # task 0: nothing known; task 1: only positives; task 2: only negatives, none predicted positive;
    # task 3: only negatives, one predicted positive.
    probs = np.array([[0.9, 0.9, 0.1, 0.7], [0.2, 0.4, 0.2, 0.1], [0.6, 0.7, 0.3, 0.2]])
    targets = np.array([[0.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    known = np.ones_like(targets, dtype=bool)
    known[:, 0] = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = task_metrics(probs, targets, known, ["none", "pos", "neg", "neg_fp"])
        macro = macro_average(m)
        table = metrics_table(m)
    none, pos, neg, neg_fp = m
    assert (none.n_known, none.n_positive) == (0, 0)
    assert all(math.isnan(v) for v in (none.average_precision, none.roc_auc, none.f1, none.accuracy))
    assert (pos.n_known, pos.n_positive) == (3, 3)
    assert math.isnan(pos.average_precision) and math.isnan(pos.roc_auc)
    assert pos.f1 == pytest.approx(0.8)  # two of three predicted positive
    assert pos.accuracy == pytest.approx(2 / 3)
    assert math.isnan(neg.average_precision) and math.isnan(neg.roc_auc)
    assert math.isnan(neg.f1)  # 0/0: no positive, none predicted
    assert neg.accuracy == 1.0
    assert neg_fp.f1 == 0.0
    assert neg_fp.accuracy == pytest.approx(2 / 3)
    assert math.isnan(macro["roc_auc"]) and math.isnan(macro["average_precision"])
    assert macro["f1"] == pytest.approx(0.4)
    assert table.loc["none", "n_known"] == 0


def test_no_examples_and_no_tasks() -> None:
    m = task_metrics(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros((0, 2), bool), ["a", "b"])
    assert [x.n_known for x in m] == [0, 0]
    assert task_metrics(np.zeros((3, 0)), np.zeros((3, 0)), np.zeros((3, 0), bool), []) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert all(math.isnan(v) for v in macro_average([]).values())


def test_input_validation() -> None:
    probs, targets, known = random_problem(0, 10, 2)
    with pytest.raises(ValueError, match="task names"):
        task_metrics(probs, targets, known, ["only_one"])
    with pytest.raises(ValueError, match="same shape"):
        task_metrics(probs[:5], targets, known, ["a", "b"])
    with pytest.raises(ValueError, match="thresholds"):
        task_metrics(probs, targets, known, ["a", "b"], [0.5, 0.5, 0.5])
    bad = targets.copy()
    bad[known] = 0.5
    with pytest.raises(ValueError, match="0 or 1"):
        task_metrics(probs, bad, known, ["a", "b"])
    bad_probs = probs.copy()
    bad_probs[known] = np.nan
    with pytest.raises(ValueError, match="finite"):
        choose_thresholds(bad_probs, targets, known)


# --------------------------------------------------------------------------- macro average, table


def test_macro_average_ignores_nan() -> None:
    ms = [
        TaskMetrics("a", 4, 2, 0.5, 0.75, NAN, 0.5, 0.5),
        TaskMetrics("b", 4, 2, 1.0, NAN, NAN, 1.0, 0.5),
        TaskMetrics("c", 4, 2, NAN, 0.25, NAN, 0.0, 0.5),
    ]
    macro = macro_average(ms)
    assert set(macro) == {"average_precision", "roc_auc", "f1", "accuracy"}
    assert macro["average_precision"] == pytest.approx(0.75)
    assert macro["roc_auc"] == pytest.approx(0.5)
    assert math.isnan(macro["f1"])
    assert macro["accuracy"] == pytest.approx(0.5)


def test_metrics_table_and_to_dict() -> None:
    probs, targets, known = random_problem(2, 40, 3)
    m = task_metrics(probs, targets, known, ["x", "y", "z"])
    table = metrics_table(m)
    assert isinstance(table, pd.DataFrame)
    assert table.index.tolist() == ["x", "y", "z", "macro"]
    assert table.columns.tolist() == [
        "n_known",
        "n_positive",
        "average_precision",
        "roc_auc",
        "f1",
        "accuracy",
        "threshold",
    ]
    for row in m:
        for key, value in row.to_dict().items():
            if key != "task":
                assert table.loc[row.task, key] == value
    for key, value in macro_average(m).items():
        assert table.loc["macro", key] == pytest.approx(value)
    assert pd.isna(table.loc["macro", "n_known"])
    assert m[0].to_dict()["task"] == "x"
    with pytest.raises(ValueError, match="macro"):
        metrics_table([TaskMetrics("macro", 1, 1, NAN, NAN, 1.0, 1.0, 0.5)])


# --------------------------------------------------------------------------- multi-label benchmark measures

# 4 examples x 4 labels. Example 2 has a tie at the top score; example 3 has no relevant label;
# label 3 is never relevant and never predicted.
ML_PROBS = np.array(
    [
        [0.9, 0.6, 0.1, 0.0],
        [0.2, 0.8, 0.7, 0.1],
        [0.5, 0.5, 0.3, 0.2],
        [0.4, 0.3, 0.2, 0.1],
    ]
)
ML_TARGETS = np.array(
    [
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 0.0],
        [1.0, 0.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 0.0],
    ]
)


def brute_one_error(y: np.ndarray, s: np.ndarray) -> float:
    errors = 0
    for i in range(y.shape[0]):
        top = [j for j in range(y.shape[1]) if s[i, j] == s[i].max()]
        if not all(y[i, j] == 1 for j in top):  # pessimistic ties; no relevant label -> error
            errors += 1
    return errors / y.shape[0]


def brute_coverage(y: np.ndarray, s: np.ndarray) -> float:
    total = 0
    for i in range(y.shape[0]):
        relevant = [j for j in range(y.shape[1]) if y[i, j] == 1]
        if relevant:
            lowest = min(s[i, j] for j in relevant)
            rank = sum(1 for j in range(y.shape[1]) if s[i, j] >= lowest)  # ties: maximal rank
            total += rank - 1
    return total / y.shape[0]


def test_multilabel_metrics_hand_computed() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = multilabel_metrics(ML_PROBS, ML_TARGETS)
    # decisions at 0.5: [1,1,0,0], [0,1,1,0], [1,1,0,0], [0,0,0,0]
    assert r["hamming_loss"] == pytest.approx(4 / 16)
    assert r["subset_accuracy"] == pytest.approx(1 / 4)
    assert r["micro_f1"] == pytest.approx(6 / 10)  # tp=3, fp=3, fn=1
    assert r["macro_f1"] == pytest.approx((1 + 0 + 2 / 3 + 1) / 4)  # label 3: 0/0 -> 1 (Mulan)
    # top label relevant only in example 0 (example 2: tie with an irrelevant label; example 3: none relevant)
    assert r["one_error"] == pytest.approx(3 / 4)
    # steps to cover the relevant labels: 0, 1, 2 (tie -> maximal rank), 0 (none relevant)
    assert r["coverage"] == pytest.approx(3 / 4)
    assert r["one_error"] == pytest.approx(brute_one_error(ML_TARGETS, ML_PROBS))
    assert r["coverage"] == pytest.approx(brute_coverage(ML_TARGETS, ML_PROBS))


def test_multilabel_metrics_match_sklearn() -> None:
    for probs, targets in ((ML_PROBS, ML_TARGETS), random_problem(9, 50, 6, p_known=1.0, decimals=1)[:2]):
        r = multilabel_metrics(probs, targets, known=np.ones_like(targets, dtype=bool), threshold=0.4)
        y = targets.astype(int)
        d = (probs >= 0.4).astype(int)
        assert r["hamming_loss"] == pytest.approx(hamming_loss(y, d))
        assert r["subset_accuracy"] == pytest.approx(accuracy_score(y, d))
        assert r["micro_f1"] == pytest.approx(f1_score(y, d, average="micro", zero_division=1.0))
        assert r["macro_f1"] == pytest.approx(f1_score(y, d, average="macro", zero_division=1.0))
        assert r["ranking_loss"] == pytest.approx(label_ranking_loss(y, probs))
        assert r["average_precision"] == pytest.approx(label_ranking_average_precision_score(y, probs))
        has_relevant = y.sum(axis=1) > 0
        assert r["coverage"] == pytest.approx(coverage_error(y, probs) - has_relevant.mean())
        assert r["coverage"] == pytest.approx(brute_coverage(y, probs))
        assert r["one_error"] == pytest.approx(brute_one_error(y, probs))
        two_class = [j for j in range(y.shape[1]) if 0 < y[:, j].sum() < y.shape[0]]
        expected_map = average_precision_score(y[:, two_class], probs[:, two_class], average="macro")
        assert r["mean_ap"] == pytest.approx(expected_map)


def test_multilabel_metrics_rejects_unknown_labels() -> None:
    known = np.ones_like(ML_TARGETS, dtype=bool)
    known[0, 1] = False
    with pytest.raises(ValueError, match="fully known"):
        multilabel_metrics(ML_PROBS, ML_TARGETS, known)


# --------------------------------------------------------------------------- docs and speed


def test_docstring_examples() -> None:
    result = doctest.testmod(metrics, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
