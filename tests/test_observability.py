"""Observability: TensorBoard logs by default, MLflow through Lightning's logger when installed, --threads on
every command that trains."""

import importlib.util
from pathlib import Path

import pytest
import torch

from multitask.config import build_config
from multitask.errors import ConfigError
from multitask.pipeline import train_run

FEATURES = {"model": {"trunk": "mlp", "trunk_options": {"hidden": [4]}}, "data": {"tasks": ["a", "b", "c"]},
            "train": {"epochs": 1, "progress": False}}


def config(tmp_path: Path, data: Path, **train: object) -> object:
    values = {**FEATURES, "root": str(tmp_path), "data": {**FEATURES["data"], "path": str(data)},
              "train": {**FEATURES["train"], **train}}
    return build_config(values)


def test_tensorboard_logs_by_default(tmp_path: Path, tiny_features: Path) -> None:
    run = train_run(config(tmp_path, tiny_features), quiet=True, report=False)
    events = list((run.path / "logs" / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    assert (run.path / "logs" / "metrics.csv").is_file()  # the CSV log stays: the reports read it


def test_mlflow_missing_is_a_user_error_naming_the_install(tmp_path: Path, tiny_features: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(ConfigError, match=r"pip install mlflow"):
        train_run(config(tmp_path, tiny_features, logger="mlflow"), quiet=True, report=False)
    assert not any(tmp_path.iterdir())  # refused before a run directory is reserved


@pytest.mark.slow
def test_mlflow_logger_records_the_run(tmp_path: Path, tiny_features: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mlflow = pytest.importorskip("mlflow", reason="mlflow not installed (pip install 'multitask[mlflow]')")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # mlflow-skinny has no database backend
    run = train_run(config(tmp_path, tiny_features, logger="mlflow", epochs=2), quiet=True, report=False)
    client = mlflow.tracking.MlflowClient()
    experiment = client.get_experiment_by_name("multitask")
    found = client.search_runs([experiment.experiment_id])  # one per fit (an mlp trunk may fit two candidates)
    assert run.path.name in {r.info.run_name for r in found}
    histories = [[m.value for m in client.get_metric_history(r.info.run_id, "val_map")] for r in found]
    assert histories and all(len(h) == 2 for h in histories)  # one value per epoch
    assert all(0 <= v <= 1 for h in histories for v in h)


def test_every_training_command_takes_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    import typer.main

    from multitask import cli

    group = typer.main.get_command(cli.app)
    for name in ("train", "compare", "transfer", "advise", "demo"):
        options = {o for p in group.commands[name].params for o in getattr(p, "opts", [])}
        assert "--threads" in options, name
    threads = torch.get_num_threads()
    try:
        cli.use_threads(1)
        assert torch.get_num_threads() == 1
        cli.use_threads(None)  # not given: unchanged
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
