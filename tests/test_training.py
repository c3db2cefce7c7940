"""Training end to end through the Python API: reproducible, early stopping, frozen trunk, metrics on disk."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from multitask.config import build_config
from multitask.pipeline import train_run
from multitask.runs import load_run
from multitask.tables import label_table_from_arrays


def feature_config(tmp_path: Path, data: Path, **train: object) -> object:
    return build_config({
        "root": str(tmp_path), "data": {"path": str(data), "tasks": ["a", "b", "c"]},
        "model": {"trunk": "mlp", "trunk_options": {"hidden": [16]}, "select": "off"},  # the MLP's training itself
        "train": {"epochs": 3, "batch_size": 32, "progress": False, **train},
    })


def test_same_seed_same_result(tmp_path: Path, tiny_features: Path) -> None:
    first = train_run(feature_config(tmp_path, tiny_features, seed=5), quiet=True, report=False)
    second = train_run(feature_config(tmp_path, tiny_features, seed=5), quiet=True, report=False)
    third = train_run(feature_config(tmp_path, tiny_features, seed=6), quiet=True, report=False)
    weights = [load_file(str(r.path / "model.safetensors")) for r in (first, second, third)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])
    assert first.metrics["test"] == second.metrics["test"]


def test_run_directory_contents(tmp_path: Path, tiny_features: Path) -> None:
    run = train_run(feature_config(tmp_path, tiny_features, epochs=8, lr=0.01, patience=None), quiet=True)
    for name in ("config.yaml", "tasks.json", "model.safetensors", "metrics.json", "report.md", "report.html",
                 "logs/metrics.csv", "plots/learning_loss.png"):
        assert (run.path / name).exists(), name
    metrics = json.loads((run.path / "metrics.json").read_text())
    assert [t["task"] for t in metrics["test"]["tasks"]] == ["a", "b", "c"]
    assert len(metrics["history"]) == 8
    assert metrics["test"]["macro"]["average_precision"] > 0.8  # an easy linear problem
    loaded = load_run(run.path)
    assert loaded.tasks == ("a", "b", "c") and loaded.input_kind == "features"
    np.testing.assert_allclose(loaded.thresholds, [metrics["thresholds"][t] for t in "abc"])
    x = torch.randn(4, 8)
    torch.testing.assert_close(loaded.network(x), run.network.eval()(x))


def test_early_stopping_keeps_the_best_epoch(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    y = (rng.random((200, 2)) < 0.5).astype(float)  # pure noise: validation stops improving quickly
    split = np.array(["train"] * 120 + ["val"] * 40 + ["test"] * 40)
    table = label_table_from_arrays(x, y, split=split, tasks=["p", "q"])
    config = build_config({"root": str(tmp_path), "model": {"trunk": "mlp", "trunk_options": {"hidden": [64]},
                                                            "select": "off"},
                           "train": {"epochs": 40, "patience": 2, "patience_steps": 0, "monitor": "val_loss",
                                     "lr": 0.01, "progress": False}})
    run = train_run(config, table, quiet=True, report=False)
    assert run.metrics["epochs"] < 40
    history = run.metrics["history"]
    best = min(h["val_loss"] for h in history)
    assert run.metrics["best_score"] == pytest.approx(best)
    assert history[run.metrics["best_epoch"] - 1]["val_loss"] == pytest.approx(best)


def test_frozen_trunk_does_not_move(tmp_path: Path, tiny_features: Path) -> None:
    from multitask.models.network import build_network
    from multitask.training import fit

    config = feature_config(tmp_path, tiny_features, freeze_trunk=True)
    from multitask.tables import read_data

    table = read_data(config.data)
    network = build_network(config.model, 3, table.n_features)
    before = {k: v.clone() for k, v in network.trunk.state_dict().items()}
    heads_before = network.task_block.weight.clone()
    fit(config, table, network, tmp_path / "frozen", quiet=True)
    assert all(torch.equal(before[k], v) for k, v in network.trunk.state_dict().items())
    assert not torch.equal(heads_before, network.task_block.weight)


def test_unfreeze_after_moves_the_trunk_later(tmp_path: Path, tiny_features: Path) -> None:
    from multitask.models.network import build_network
    from multitask.tables import read_data
    from multitask.training import fit

    config = feature_config(tmp_path, tiny_features, freeze_trunk=True, unfreeze_after=1, patience=None,
                            monitor="val_loss")
    table = read_data(config.data)
    network = build_network(config.model, 3, table.n_features)
    before = {k: v.clone() for k, v in network.trunk.state_dict().items()}
    fit(config, table, network, tmp_path / "unfrozen", quiet=True)
    assert not all(torch.equal(before[k], v) for k, v in network.trunk.state_dict().items())


def test_unknown_labels_are_ignored_by_training(tmp_path: Path) -> None:
    """Flipping every unknown label leaves the trained weights bit-identical."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 5))
    y = (rng.random((120, 3)) < 0.5).astype(float)
    hide = rng.random((120, 3)) < 0.4
    split = np.array(["train"] * 80 + ["val"] * 20 + ["test"] * 20)
    hide[100:] = False
    a = label_table_from_arrays(x, np.where(hide, np.nan, y), split=split)
    b_targets = np.where(hide, 1 - y, y)  # different values where unknown…
    b = label_table_from_arrays(x, b_targets, split=split)
    from dataclasses import replace

    b = replace(b, known=~hide, targets=b.targets.astype(np.float32))  # …still unknown
    config = build_config({"root": str(tmp_path), "model": {"trunk": "mlp", "trunk_options": {"hidden": [8]}},
                           "train": {"epochs": 2, "progress": False}})
    runs = [train_run(config, t, quiet=True, report=False) for t in (a, b)]
    wa, wb = (load_file(str(r.path / "model.safetensors")) for r in runs)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_a_task_without_any_known_validation_label_trains_and_is_left_out_of_val_map(tmp_path: Path) -> None:
    """Task c has no known label in the validation split (a small task can end up so): training runs (torchmetrics'
    multilabel AP used to fail on it with an IndexError) and the epoch's val_map is sklearn's mean AP over a, b."""
    from sklearn.metrics import average_precision_score

    from multitask.training import KnownLabelAP

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    y = (x[:, :3] > 0).astype(float)
    y[200:250, 2] = np.nan
    table = label_table_from_arrays(x, y, tasks=["a", "b", "c"],
                                    split=np.array(["train"] * 200 + ["val"] * 50 + ["test"] * 50))
    config = build_config({"root": str(tmp_path), "model": {"trunk": "mlp", "trunk_options": {"hidden": [8]},
                                                            "select": "off"},
                           "train": {"epochs": 2, "progress": False, "monitor": "val_map"}})
    run = train_run(config, table, quiet=True, report=False)
    assert run.metrics["epochs"] == 2 and all(np.isfinite(h["val_map"]) for h in run.metrics["history"])
    probs, targets = torch.rand(60, 3), (torch.rand(60, 3) < 0.4).long()
    targets[:, 2] = -1
    targets[:20, 1] = -1
    metric = KnownLabelAP(3)
    metric.update(probs[:25], targets[:25])
    metric.update(probs[25:], targets[25:])
    expected = [average_precision_score(targets[targets[:, j] >= 0, j], probs[targets[:, j] >= 0, j]) for j in (0, 1)]
    np.testing.assert_allclose(metric.compute()[:2].numpy(), expected, rtol=1e-5)
    assert torch.isnan(metric.compute()[2])
