"""Tests of multitask.model_choice and multitask.linear_fit: linear model or MLP, chosen on the validation split,
through the estimator and `multitask train` (one code path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from multitask.config import RunConfig, build_config
from multitask.model_choice import choice_applies, decide, describe, linear_config, linear_only

COMMON = {"hidden": (16,), "epochs": 10, "lr": 0.02, "validation_fraction": 0.3, "patience_steps": 0,
          "batch_size": 32}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_decide_keeps_the_mlp_only_on_evidence() -> None:
    rows = {"linear": {"val_map": 0.80, "val_loss": 1.0}, "mlp": {"val_map": 0.85, "val_loss": 0.9}}
    assert decide(rows, 0.01, (0.01, 0.09)) == "mlp"  # a real gap
    assert decide(rows, 0.01, (-0.02, 0.12)) == "linear"  # within the noise of the validation rows
    assert decide(rows, 0.1, (0.01, 0.09)) == "linear"  # within the tolerance
    rows["mlp"]["val_map"] = 0.70
    assert decide(rows, 0.01, (-0.2, -0.01)) == "linear"


def test_when_the_choice_applies() -> None:
    from multitask.tables import label_table_from_arrays

    table = label_table_from_arrays(np.zeros((4, 2)), np.array([[0.], [1.], [0.], [1.]]),
                                    split=np.array(["train", "train", "val", "val"]))
    base = {"model": {"trunk": "mlp"}}
    assert choice_applies(build_config(base), table)
    for change in ({"model": {"trunk": "mlp", "select": "off"}}, {"model": {"trunk": "small_cnn"}},
                   {"model": {"trunk": "mlp", "trunk_options": {"hidden": []}}},
                   {"model": {"trunk": "mlp", "sharing": "mmoe"}},
                   {"model": {"trunk": "mlp"}, "train": {"freeze_trunk": True}}):
        assert not choice_applies(build_config(change), table), change
    assert not choice_applies(build_config(base), table.subset([0, 1]))  # no validation split
    linear = linear_config(build_config({"model": {"trunk": "mlp", "trunk_options": {"dropout": 0.2}}}))
    assert linear.model.trunk_options == {"dropout": 0.2, "hidden": []} and linear_only(linear)
    assert not linear_only(build_config({"model": {"trunk": "mlp", "trunk_options": {"hidden": []},
                                                   "select": "off"}}))


def test_linear_fit_matches_scikit_learn_logistic_regression() -> None:
    """The linear candidate at one C is scikit-learn's LogisticRegression(C) on standardised features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    import multitask.linear_fit as linear_fit
    from multitask.tables import label_table_from_arrays

    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 6)) * 2 + 1
    y = (x @ rng.normal(size=(6, 2)) + rng.normal(size=(120, 2)) > 0).astype(float)
    split = np.where(np.arange(120) < 90, "train", "val")
    table = label_table_from_arrays(x.astype(np.float32), y, split=split)
    config = RunConfig.model_validate({"model": {"trunk": "mlp", "trunk_options": {"hidden": []}}})
    original = linear_fit.C_GRID
    linear_fit.C_GRID = (0.5,)
    try:
        result = linear_fit.fit_linear(config, table)
    finally:
        linear_fit.C_GRID = original
    scaled = StandardScaler().fit(x[:90])
    for j in range(2):
        reference = LogisticRegression(C=0.5, tol=1e-10, max_iter=10000).fit(scaled.transform(x[:90]), y[:90, j])
        expected = reference.decision_function(scaled.transform(x[90:]))
        with torch.no_grad():
            got = result.network(torch.as_tensor(x[90:], dtype=torch.float32))[:, j].numpy()
        np.testing.assert_allclose(got, expected, atol=2e-3)


def test_picks_linear_on_a_linearly_separable_sparse_set() -> None:
    """Each task is one 0/1 column among 500 sparse ones (200 rows): the linear model finds it, the MLP
    memorises rows through the others."""
    from multitask.sklearn import MultiTaskClassifier

    rng = np.random.default_rng(0)
    X = (rng.random((200, 500)) < 0.2).astype(float)
    model = MultiTaskClassifier(**COMMON).fit(X, X[:, :3].copy())
    assert model.chosen_model_ == "linear", describe(model.model_choice_)
    assert model.model_choice_["map_difference"]["high"] < 0  # the MLP is worse beyond the noise
    assert len(model.network_.trunk.layers) == 0  # the kept network has no hidden layer


@pytest.mark.slow
def test_picks_the_mlp_on_an_xor_set() -> None:
    from multitask.sklearn import MultiTaskClassifier

    rng = np.random.default_rng(0)
    Z = rng.choice([-1.0, 1.0], size=(200, 2)) + 0.2 * rng.normal(size=(200, 2))
    Y = np.column_stack([Z[:, 0] * Z[:, 1] > 0, Z[:, 0] * Z[:, 1] < 0]).astype(float)
    model = MultiTaskClassifier(**COMMON).fit(Z, Y)
    assert model.chosen_model_ == "mlp", describe(model.model_choice_)
    assert model.model_choice_["candidates"]["linear"]["val_map"] < 0.7 < model.model_choice_["candidates"]["mlp"][
        "val_map"]
    off = MultiTaskClassifier(**COMMON, select="off").fit(Z, Y)
    assert off.model_choice_ is None and off.chosen_model_ == "mlp"
    np.testing.assert_allclose(off.predict_proba(Z), model.predict_proba(Z), atol=1e-6)  # same MLP either way


def test_train_run_records_the_choice_and_saves_the_kept_network(tmp_path: Path, tiny_features: Path) -> None:
    """`multitask train --trunk mlp` goes through the same choice; the run directory describes the kept network:
    metrics.json has the evidence, config.yaml rebuilds it, predictions after loading are the run's."""
    from multitask.pipeline import load_predictions, train_run
    from multitask.predict import predict_inputs
    from multitask.runs import load_run

    config = build_config({"root": str(tmp_path), "data": {"path": str(tiny_features), "tasks": ["a", "b", "c"]},
                           "model": {"trunk": "mlp", "trunk_options": {"hidden": [16]}},
                           "train": {"epochs": 3, "batch_size": 32, "progress": False, "patience_steps": 0}})
    run = train_run(config, quiet=True, report=False)
    choice = run.metrics["model_choice"]
    assert choice["chosen"] in ("linear", "mlp") and set(choice["candidates"]) == {"linear", "mlp"}
    loaded = load_run(run.path)
    hidden = loaded.config.model.trunk_options["hidden"]
    assert (hidden == []) == (choice["chosen"] == "linear")
    assert (run.path / "checkpoints" / "best.ckpt").exists() == (choice["chosen"] == "mlp")
    saved = load_predictions(run.path / "predictions_test.npz")
    if choice["chosen"] == "linear":  # config.yaml now says hidden: []; a resumed run refits it to the same weights
        import json

        from multitask.pipeline import resume_run

        status = json.loads((run.path / "status.json").read_text())
        (run.path / "status.json").write_text(json.dumps({**status, "status": "interrupted"}))
        again = resume_run(run.path, quiet=True, report=False)
        assert again.metrics["test"]["macro"] == pytest.approx(run.metrics["test"]["macro"], abs=1e-6)
    frame = predict_inputs(run.path, [tiny_features])
    by_id = frame.set_index(frame[frame.columns[0]].astype(str))
    got = by_id.loc[saved["ids"].astype(str), [f"{t}_prob" for t in ("a", "b", "c")]].to_numpy()
    np.testing.assert_allclose(got, saved["probs"], atol=1e-5)
