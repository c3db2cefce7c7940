"""Run directories: atomic name reservation (eight processes, one --name), status and provenance files, the
`runs` listing, Lightning checkpoints that load with `load_from_checkpoint`, torchmetrics' validation AP against
the scikit-learn metrics, progress as log records, and `compare(report=False, resume=...)`."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from multitask.config import build_config
from multitask.pipeline import train_run
from multitask.runs import config_overrides, list_runs, load_run, reserve_run_dir
from multitask.training import MultiTaskModule


def feature_config(tmp_path: Path, data: Path, **values: object) -> object:
    return build_config({"root": str(tmp_path / "runs"), "data": {"path": str(data), "tasks": ["a", "b", "c"]},
                         "model": {"trunk": "mlp", "trunk_options": {"hidden": [8]}, "select": "off"},  # the MLP alone
                         "train": {"epochs": 2, "progress": False}, **values})


def test_reserve_is_atomic_and_numbers_repeats(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()  # an existing (even empty) folder is never reused: someone may have just made it
    assert [reserve_run_dir(tmp_path, "x").name for _ in range(3)] == ["x-2", "x-3", "x-4"]


def test_status_provenance_and_listing(tmp_path: Path, tiny_features: Path) -> None:
    run = train_run(feature_config(tmp_path, tiny_features, name="p"), quiet=True, report=False)
    status = json.loads((run.path / "status.json").read_text())
    assert status["status"] == "finished" and status["pid"] == os.getpid() and status["error"] is None
    assert status["started"] <= status["ended"] and status["epochs_done"] == 2
    provenance = json.loads((run.path / "provenance.json").read_text())
    assert provenance["command"] == sys.argv
    assert provenance["overrides"]["train.epochs"] == 2 and provenance["overrides"]["name"] == "p"
    assert provenance["versions"]["torch"] == torch.__version__ and provenance["hardware"]["cpu_cores"]
    assert "git_commit" in provenance
    again = train_run(feature_config(tmp_path, tiny_features, name="p"), quiet=True, report=False)
    assert again.path.name == "p-2"
    (tmp_path / "runs" / "stray").mkdir()  # not a run: not listed
    listing = list_runs(tmp_path / "runs")
    assert [(s.name, s.status, s.epochs) for s in listing] == [("p", "finished", "2/2"), ("p-2", "finished", "2/2")]
    assert listing[0].test_map == pytest.approx(run.metrics["test"]["macro"]["average_precision"])


def test_config_overrides_lists_what_differs() -> None:
    config = build_config({"train": {"lr": 0.5}, "model": {"trunk": "mlp"}})
    assert config_overrides(config) == {"train.lr": 0.5, "model.trunk": "mlp"}


def test_best_checkpoint_loads_with_load_from_checkpoint(tmp_path: Path, tiny_features: Path) -> None:
    run = train_run(feature_config(tmp_path, tiny_features, name="ckpt"), quiet=True, report=False)
    module = MultiTaskModule.load_from_checkpoint(run.path / "checkpoints" / "best.ckpt", map_location="cpu",
                                                  weights_only=True)
    assert module.tasks == ("a", "b", "c") and module.hparams["n_features"] == 8
    x = torch.randn(5, 8)
    torch.testing.assert_close(module.eval()(x), load_run(run.path).network(x))
    last = torch.load(run.path / "checkpoints" / "last.ckpt", weights_only=True)  # nothing but plain values
    assert last["epoch"] == 1 and "multitask" in last


def test_torchmetrics_validation_map_equals_the_sklearn_metrics() -> None:
    from multitask.config import LossConfig, TrainConfig
    from multitask.metrics import macro_average, task_metrics

    rng = np.random.default_rng(0)
    module = MultiTaskModule(None, ("a", "b", "c", "d"), LossConfig(), TrainConfig(), n_features=3,
                             model={"trunk": "mlp", "trunk_options": {"hidden": [4]}})
    logits = torch.from_numpy(rng.normal(size=(90, 4)).astype(np.float32))
    targets = torch.from_numpy((rng.random((90, 4)) < 0.4).astype(np.float32))
    known = torch.from_numpy(rng.random((90, 4)) < 0.7)
    targets[:, 3] = 0  # task d: no positive among its known labels → AP undefined, left out of the mean
    for part in torch.split(torch.arange(90), 32):  # three validation batches
        module.val_ap.update(torch.sigmoid(logits[part]), torch.where(known[part], targets[part].long(), -1))
        module.val_counts.update(logits[part], targets[part], known[part])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # task d has no AP: NaN, quietly (left out of the mean below)
        ap = module.val_ap.compute()
    assert torch.isnan(ap[3])
    _, positives, counts = module.val_counts.compute()
    scores = task_metrics(torch.sigmoid(logits).numpy(), targets.numpy(), known.numpy(), ["a", "b", "c", "d"])
    expected = [s.average_precision for s in scores]
    np.testing.assert_allclose(ap[:3].numpy(), expected[:3], rtol=1e-5)
    assert np.isnan(expected[3]) and positives[3] == 0 and counts[3] == known[:, 3].sum()
    defined = (positives > 0) & (positives < counts)
    assert float(ap[defined].mean()) == pytest.approx(macro_average(scores)["average_precision"], rel=1e-5)


def test_progress_is_logged_when_there_is_no_terminal(tmp_path: Path, tiny_features: Path,
                                                      caplog: pytest.LogCaptureFixture,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import multitask.trainer as trainer_module

    monkeypatch.setattr(trainer_module.ProgressLog, "__init__",
                        lambda self, label="", every=0.0: (setattr(self, "label", label), setattr(self, "every", 0.0),
                                                           setattr(self, "start", time.perf_counter()),
                                                           setattr(self, "last", 0.0))[0])
    with caplog.at_level(logging.INFO, logger="multitask.trainer"):
        train_run(feature_config(tmp_path, tiny_features, name="log"), report=False)
    lines = [r.getMessage() for r in caplog.records if r.name == "multitask.trainer"]
    steps = [line for line in lines if " step " in line]
    ends = [line for line in lines if "val_map=" in line]
    assert steps and steps[0].startswith("epoch 1/2 step ") and " loss " in steps[0]
    assert [line.split()[1] for line in ends] == ["1/2", "2/2"]  # 1-based, as in the progress bar


def test_compare_without_reports_and_resumed(tmp_path: Path, tiny_features: Path) -> None:
    from multitask.compare import compare

    config = feature_config(tmp_path, tiny_features, name="cmp")
    first = compare(config, approaches=("shared", "separate"), out_dir=None, report=False, n_boot=50)
    out = first.path
    assert not list(out.rglob("report.md")) and (out / "plan.json").exists()
    # one separate network "unfinished": resume retrains it only, and reuses the finished ones
    shared_weights = (out / "shared" / "model.safetensors").stat().st_mtime_ns
    damaged = out / "separate" / "b"
    status = json.loads((damaged / "status.json").read_text())
    (damaged / "status.json").write_text(json.dumps({**status, "status": "interrupted"}))
    (damaged / "checkpoints" / "last.ckpt").unlink()
    again = compare(config, resume=out, report=False, n_boot=50)
    assert (out / "shared" / "model.safetensors").stat().st_mtime_ns == shared_weights
    assert json.loads((damaged / "status.json").read_text())["status"] == "finished"
    for approach in ("shared", "separate"):
        for task in "abc":
            assert again.results[approach][0].metric(task) == pytest.approx(first.results[approach][0].metric(task),
                                                                            abs=1e-6)


LAUNCHER = """
import os, sys, time
from pathlib import Path
barrier = Path(sys.argv[1])
from multitask.cli import main
(barrier / f"ready-{os.getpid()}").touch()
while not (barrier / "go").exists():
    time.sleep(0.001)
sys.argv = ["multitask", *sys.argv[2:]]
main()
"""


@pytest.mark.slow
def test_eight_processes_with_one_name_end_in_eight_finished_directories(tmp_path: Path,
                                                                         tiny_features: Path) -> None:
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER)
    barrier = tmp_path / "barrier"  # every process imports torch, then all go at the same moment
    barrier.mkdir()
    args = ["train", "--data", str(tiny_features), "--tasks", "a,b,c", "--trunk", "mlp", "--epochs", "1",
            "--name", "same", "--root", str(tmp_path / "runs"), "--model.trunk_options", "{hidden: [4]}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    processes = [subprocess.Popen([sys.executable, str(launcher), str(barrier), *args], cwd=tmp_path, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(8)]
    deadline = time.monotonic() + 300
    while len(list(barrier.glob("ready-*"))) < 8:
        assert time.monotonic() < deadline and all(p.poll() is None for p in processes), "a process did not start"
        time.sleep(0.05)
    (barrier / "go").touch()
    outputs = [p.communicate(timeout=600) for p in processes]
    assert [p.returncode for p in processes] == [0] * 8, outputs
    folders = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert folders == sorted(["same", *(f"same-{k}" for k in range(2, 9))])
    for folder in folders:
        status = json.loads((tmp_path / "runs" / folder / "status.json").read_text())
        assert status["status"] == "finished"
    pids = {json.loads((tmp_path / "runs" / f / "status.json").read_text())["pid"] for f in folders}
    assert pids == {p.pid for p in processes}  # one process per directory
