"""Tests of the scikit-learn estimator multitask.sklearn.MultiTaskClassifier."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import average_precision_score, make_scorer
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import multitask.linear_fit
import multitask.sklearn
import multitask.tables
from multitask.sklearn import EXPECTED_FAILED_CHECKS, MultiTaskClassifier

TINY = {"hidden": (8,), "epochs": 3, "lr": 0.05}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_problem(n: int = 200, d: int = 5, t: int = 3, unknown: float = 0.3, seed: int = 0):
    """An easy linear multi-label problem with a fraction of the labels unknown (NaN)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * 3 + 1  # not standardised: the network standardises inside
    W = rng.normal(size=(d, t))
    Y = ((X - 1) @ W > 0).astype(float)
    Y[rng.random(Y.shape) < unknown] = np.nan
    return X, Y


def constant_accuracy(Y_train: np.ndarray, Y_test: np.ndarray) -> float:
    """Mean over tasks of the known-label accuracy of predicting each task's training majority class."""
    scores = []
    for j in range(Y_test.shape[1]):
        majority = float(np.nanmean(Y_train[:, j]) >= 0.5)
        known = ~np.isnan(Y_test[:, j])
        scores.append(float(np.mean(Y_test[known, j] == majority)))
    return float(np.mean(scores))


# ------------------------------------------------------------------------------------------- shapes, learning


def test_fit_predict_shapes_and_ranges() -> None:
    X, Y = make_problem()
    clf = MultiTaskClassifier(**TINY).fit(X, Y)
    proba, pred, logits = clf.predict_proba(X), clf.predict(X), clf.decision_function(X)
    assert proba.shape == pred.shape == logits.shape == (200, 3)
    assert proba.dtype.kind == "f" and ((proba > 0) & (proba < 1)).all()
    assert pred.dtype.kind == "i" and set(np.unique(pred)) <= {0, 1}
    np.testing.assert_allclose(proba, 1 / (1 + np.exp(-logits)))
    np.testing.assert_array_equal(pred, (proba >= 0.5).astype(int))
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba, rtol=1e-10)
    assert list(clf.tasks_) == ["task_0", "task_1", "task_2"]
    assert len(clf.classes_) == 3 and all(c.tolist() == [0, 1] for c in clf.classes_)
    assert clf.n_features_in_ == 5 and not hasattr(clf, "feature_names_in_")
    np.testing.assert_array_equal(clf.thresholds_, [0.5, 0.5, 0.5])
    # epochs trained by the MLP; for the linear model (fitted by L-BFGS), the values of C on its path
    limit = 3 if clf.chosen_model_ == "mlp" else len(multitask.linear_fit.C_GRID)
    assert 1 <= clf.n_epochs_ <= limit and len(clf.history_) == clf.n_epochs_
    assert {"train_loss", "val_loss", "val_map"} <= set(clf.history_[-1])


def test_learns_an_easy_linear_problem() -> None:
    X, Y = make_problem(n=400, unknown=0.3)
    train, test = slice(0, 300), slice(300, None)
    clf = MultiTaskClassifier(hidden=(16,), epochs=15, lr=0.01).fit(X[train], Y[train])
    baseline = constant_accuracy(Y[train], Y[test])
    score = clf.score(X[test], Y[test])
    assert score > 0.85 and score > baseline + 0.2, (score, baseline)


def test_dataframes_keep_task_and_feature_names() -> None:
    X, Y = make_problem(n=80)
    frame_x = pd.DataFrame(X, columns=[f"f{i}" for i in range(5)])
    frame_y = pd.DataFrame(Y, columns=["car", "stop", "person"])
    clf = MultiTaskClassifier(**TINY).fit(frame_x, frame_y)
    assert list(clf.tasks_) == ["car", "stop", "person"]
    assert list(clf.feature_names_in_) == list(frame_x.columns)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        np.testing.assert_array_equal(clf.predict_proba(X), clf.predict_proba(frame_x))
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(frame_x[list(reversed(frame_x.columns))])
    # nullable integer columns with pd.NA are read as unknown labels
    nullable = frame_y.astype("Int64")
    np.testing.assert_array_equal(MultiTaskClassifier(**TINY).fit(frame_x, nullable).predict_proba(frame_x),
                                  clf.predict_proba(frame_x))


def test_threshold_auto_and_no_validation() -> None:
    X, Y = make_problem(n=150)
    auto = MultiTaskClassifier(**TINY, threshold="auto", validation_fraction=0.3).fit(X, Y)
    assert auto.thresholds_.shape == (3,) and ((auto.thresholds_ > 0) & (auto.thresholds_ <= 1)).all()
    np.testing.assert_array_equal(auto.predict(X), (auto.predict_proba(X) >= auto.thresholds_).astype(int))
    everything = MultiTaskClassifier(**TINY, validation_fraction=0, patience=1).fit(X, Y)
    assert everything.n_epochs_ == TINY["epochs"]  # no validation part: no early stopping
    assert {"val_loss", "val_map"}.isdisjoint(everything.history_[-1])


def test_one_dimensional_y_is_a_binary_classifier() -> None:
    X, Y = make_problem(n=120, t=1, unknown=0.0)
    y = np.where(Y[:, 0] == 1, "yes", "no").astype(object)
    y[:10] = None  # unknown
    clf = MultiTaskClassifier(**TINY).fit(X, pd.Series(y, name="is_car"))
    assert list(clf.tasks_) == ["is_car"] and clf.classes_.tolist() == ["no", "yes"]
    proba, pred = clf.predict_proba(X), clf.predict(X)
    assert proba.shape == (120, 2) and pred.shape == (120,) and clf.decision_function(X).shape == (120,)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    np.testing.assert_array_equal(pred, clf.classes_[proba.argmax(axis=1)])
    known = y != None  # noqa: E711 - elementwise on an object array
    assert clf.score(X, y) == pytest.approx(np.mean(pred[known] == y[known]))


# ------------------------------------------------------------------------------------------ unknown labels


def test_targets_under_unknown_cells_do_not_matter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside the core an unknown cell is known=False plus some target: put random 0/1 there, same model."""
    X, Y = make_problem(n=150, unknown=0.4)
    params = {**TINY, "pos_weight": "balanced", "threshold": "auto", "validation_fraction": 0.3}
    reference = MultiTaskClassifier(**params).fit(X, Y)

    original = multitask.tables.label_table_from_arrays
    rng = np.random.default_rng(1)
    calls = []

    def scrambled(*args, **kwargs):
        calls.append(1)
        table = original(*args, **kwargs)
        noise = rng.integers(0, 2, size=table.targets.shape).astype(np.float32)
        assert (~table.known).any()
        table.targets[~table.known] = noise[~table.known]
        return table

    monkeypatch.setattr(multitask.tables, "label_table_from_arrays", scrambled)
    other = MultiTaskClassifier(**params).fit(X, Y)
    assert calls == [1]  # the scrambled table was the one trained on
    np.testing.assert_array_equal(other.predict_proba(X), reference.predict_proba(X))
    np.testing.assert_array_equal(other.thresholds_, reference.thresholds_)


def test_score_ignores_unknown_cells() -> None:
    X, Y = make_problem(n=100)
    clf = MultiTaskClassifier(**TINY).fit(X, Y)
    pred = clf.predict(X)
    by_hand = []
    for j in range(3):
        rows = [i for i in range(100) if not np.isnan(Y[i, j])]
        by_hand.append(sum(pred[i, j] == Y[i, j] for i in rows) / len(rows))
    assert clf.score(X, Y) == pytest.approx(sum(by_hand) / 3)
    weights = np.arange(100) % 3 + 1.0
    weighted = [np.average(pred[~np.isnan(Y[:, j]), j] == Y[~np.isnan(Y[:, j]), j],
                           weights=weights[~np.isnan(Y[:, j])]) for j in range(3)]
    assert clf.score(X, Y, sample_weight=weights) == pytest.approx(np.mean(weighted))
    only_first = Y.copy()
    only_first[:, 1:] = np.nan  # tasks without a known label leave the mean
    assert clf.score(X, only_first) == pytest.approx(by_hand[0])
    with pytest.raises(ValueError, match="no known label"):
        clf.score(X, np.full_like(Y, np.nan))


# ------------------------------------------------------------------------------- scikit-learn integration


def test_clone_get_params_set_params() -> None:
    clf = MultiTaskClassifier(hidden=(4, 2), threshold="auto", pos_weight={"task_0": 2.0}, random_state=3)
    params = clf.get_params()
    assert params["hidden"] == (4, 2) and params["threshold"] == "auto" and params["random_state"] == 3
    copy = clone(clf)
    assert copy is not clf and copy.get_params() == params
    assert copy.set_params(epochs=7, lr=0.5) is copy
    assert copy.get_params() == {**params, "epochs": 7, "lr": 0.5}
    assert MultiTaskClassifier(**params).get_params() == params
    with pytest.raises(ValueError, match="Invalid parameter"):
        copy.set_params(depth=3)


def test_pipeline_and_grid_search_with_unknown_labels() -> None:
    X, Y = make_problem(n=120)
    pipe = Pipeline([("scale", StandardScaler()), ("clf", MultiTaskClassifier(epochs=2, hidden=(8,), lr=0.05))])
    # A splitter, not cv=2: sklearn's check_cv calls type_of_target(Y), which rejects NaN.
    search = GridSearchCV(pipe, {"clf__hidden": [(4,), (8,)]}, cv=KFold(2, shuffle=True, random_state=0))
    search.fit(X, Y)
    assert search.best_params_["clf__hidden"] in [(4,), (8,)]
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.predict_proba(X).shape == (120, 3)


def test_predict_proba_scorer_sees_multilabel_output() -> None:
    X, Y = make_problem(n=100, unknown=0.0)
    clf = MultiTaskClassifier(**TINY).fit(X, Y)
    scorer = make_scorer(average_precision_score, response_method="predict_proba")
    assert scorer(clf, X, Y) == pytest.approx(average_precision_score(Y, clf.predict_proba(X)))


def test_same_random_state_same_model_and_global_state_untouched() -> None:
    X, Y = make_problem(n=100)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    first = MultiTaskClassifier(**TINY, random_state=5).fit(X, Y).predict_proba(X)
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    second = MultiTaskClassifier(**TINY, random_state=5).fit(X, Y).predict_proba(X)
    np.testing.assert_array_equal(first, second)
    # the MLP alone: a kept linear model is refitted on every row, the same whatever the seed
    mlp = MultiTaskClassifier(**TINY, select="off", random_state=5).fit(X, Y).predict_proba(X)
    other = MultiTaskClassifier(**TINY, select="off", random_state=6).fit(X, Y).predict_proba(X)
    assert not np.array_equal(mlp, other)


def test_pickle_round_trip() -> None:
    X, Y = make_problem(n=100)
    clf = MultiTaskClassifier(**TINY, threshold="auto").fit(X, Y)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(restored.thresholds_, clf.thresholds_)
    assert list(restored.tasks_) == list(clf.tasks_)


# ------------------------------------------------------------------------------------------------- errors


def test_a_task_without_known_labels_is_named() -> None:
    X, Y = make_problem(n=60)
    frame = pd.DataFrame(Y, columns=["car", "ghost", "stop"])
    frame["ghost"] = np.nan
    with pytest.raises(ValueError, match="task 'ghost' has no known label"):
        MultiTaskClassifier(**TINY).fit(X, frame)
    frame["ghost"] = np.where(np.arange(60) % 2, 1.0, np.nan)
    with pytest.raises(ValueError, match="task 'ghost' has only one class"):
        MultiTaskClassifier(**TINY).fit(X, frame)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda X, Y: (np.where(np.arange(X.size).reshape(X.shape) == 7, np.nan, X), Y), "NaN"),
        (lambda X, Y: (X, np.where(Y == 1, 2.0, Y)), "1, 0 or NaN"),
        (lambda X, Y: (X, Y[:-1]), "inconsistent numbers of samples"),
        (lambda X, Y: (X, None), "requires y"),
        (lambda X, Y: (X, np.arange(len(X)) % 3), "Only binary classification is supported"),
    ],
    ids=["nan-in-X", "label-2", "length", "no-Y", "multiclass-y"],
)
def test_bad_input_raises_value_error(change, match) -> None:
    X, Y = make_problem(n=60)
    X, Y = change(X, Y)
    with pytest.raises(ValueError, match=match):
        MultiTaskClassifier(**TINY).fit(X, Y)


@pytest.mark.parametrize(
    ("params", "match"),
    [({"validation_fraction": 1.0}, "validation_fraction"), ({"threshold": 0}, "threshold"),
     ({"hidden": (8, 0)}, "hidden"), ({"epochs": 0}, "epochs"), ({"loss_normalization": "x"}, "loss_norm"),
     ({"weighting": "nope"}, "weighting must be one of")],
)
def test_bad_parameters_raise_at_fit(params, match) -> None:
    X, Y = make_problem(n=40)
    clf = MultiTaskClassifier(**params)  # no validation in __init__
    with pytest.raises(ValueError, match=match):
        clf.fit(X, Y)


def test_predict_checks_fitted_and_n_features() -> None:
    X, Y = make_problem(n=60)
    with pytest.raises(NotFittedError):
        MultiTaskClassifier().predict(X)
    clf = MultiTaskClassifier(**TINY).fit(X, Y)
    for method in (clf.predict, clf.predict_proba, clf.decision_function):
        with pytest.raises(ValueError, match="X has 4 features, but MultiTaskClassifier is expecting 5"):
            method(X[:, :4])


# ----------------------------------------------------------------------------------------- check_estimator


def test_expected_failures_are_documented() -> None:
    doc = multitask.sklearn.__doc__
    section = doc[doc.index("Checks that do not apply"):]
    for name in EXPECTED_FAILED_CHECKS:
        assert f"``{name}``" in section


@pytest.mark.slow
@parametrize_with_checks(
    [MultiTaskClassifier(epochs=2, hidden=(8,), lr=0.05)],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
    xfail_strict=True,
)
def test_sklearn_estimator_checks(estimator, check) -> None:
    check(estimator)


def test_constant_up_to_rounding_features_are_not_blown_up() -> None:
    """A column constant but for float rounding keeps std 1 (the one feature standardisation,
    multitask.data.datamodule.feature_statistics), so it cannot dominate the standardised input."""
    from multitask.data.datamodule import feature_statistics
    from multitask.tables import label_table_from_arrays

    X, Y = make_problem(n=120, d=3, t=2, unknown=0.0)
    X = np.column_stack([X, np.full(len(X), 1e6) + np.random.default_rng(1).normal(size=len(X)) * 1e-3])
    table = label_table_from_arrays(X, Y, split=np.array(["train"] * len(X)))
    _, std = feature_statistics(table)
    assert float(std[3]) == 1.0 and float(std[0]) != 1.0
    proba = MultiTaskClassifier(**TINY).fit(X, Y).predict_proba(X)
    assert np.isfinite(proba).all()


# --------------------------------------------------------------------------- model selection with NaN labels


def test_grid_search_and_cross_val_score_with_unknown_labels() -> None:
    """GridSearchCV / cross_val_score on a Y with NaN: the project's splitter and known-label scorers."""
    from sklearn.model_selection import cross_val_score

    from multitask.model_selection import KNOWN_LABEL_SCORERS, KnownLabelKFold

    X, Y = make_problem(n=120, unknown=0.3)
    with pytest.raises(ValueError, match="NaN"):  # scikit-learn's own check_cv, before any fit
        GridSearchCV(MultiTaskClassifier(**TINY), {"lr": [0.05]}, cv=2).fit(X, Y)
    search = GridSearchCV(MultiTaskClassifier(**TINY), {"hidden": [(4,), (8,)]}, cv=KnownLabelKFold(2),
                          scoring=KNOWN_LABEL_SCORERS["label_ranking_average_precision"])
    search.fit(X, Y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all() and 0 < search.best_score_ <= 1
    scores = cross_val_score(MultiTaskClassifier(**TINY), X, Y, cv=KnownLabelKFold(2),
                             scoring=KNOWN_LABEL_SCORERS["macro_average_precision"])
    assert scores.shape == (2,) and ((scores > 0.5) & (scores <= 1)).all()


def test_choice_attributes_and_parameters() -> None:
    X, Y = make_problem(n=100)
    auto = MultiTaskClassifier(**TINY).fit(X, Y)
    assert auto.chosen_model_ in ("linear", "mlp") and set(auto.model_choice_["candidates"]) == {"linear", "mlp"}
    off = MultiTaskClassifier(**TINY, select="off").fit(X, Y)
    assert off.chosen_model_ == "mlp" and off.model_choice_ is None
    for params, match in (({"select": "yes"}, "select"), ({"monitor": "acc"}, "monitor"),
                          ({"patience_steps": -1}, "patience_steps")):
        with pytest.raises(ValueError, match=match):
            MultiTaskClassifier(**params).fit(X, Y)
