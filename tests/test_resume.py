"""Resuming: kill -9 in the middle of epoch 2 of 4, `multitask train --resume`, and the same final metrics as
an uninterrupted run with the same seed."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_faults_runs import cli  # in-process `multitask …` (exit code, output)

# `multitask train` with a hook in the training step: at step STOP_STEP of epoch STOP_EPOCH (1-based) it writes
# a marker file and sleeps, so that the test can kill it from outside, mid-epoch.
# SIGINT is set back to Python's handler: a shell that starts the test suite in the background (nohup, `&`)
# starts it with SIGINT ignored, which every child inherits, while a user's Ctrl-C reaches a foreground process.
LAUNCHER = """
import os, signal, sys, time
from pathlib import Path
import multitask.training as training

signal.signal(signal.SIGINT, signal.default_int_handler)

marker, epoch, step = Path(os.environ["STOP_MARKER"]), int(os.environ["STOP_EPOCH"]), int(os.environ["STOP_STEP"])
original = training.MultiTaskModule.training_step

def training_step(self, batch, batch_index):
    if self.current_epoch + 1 == epoch and batch_index == step:
        marker.write_text(str(os.getpid()))
        for _ in range(6000):  # SIGINT raises in here; SIGTERM sets Lightning's flag, checked after the step
            if self.trainer.received_sigterm:
                break
            time.sleep(0.1)
    return original(self, batch, batch_index)

training.MultiTaskModule.training_step = training_step
from multitask.cli import main
sys.argv = ["multitask", *sys.argv[1:]]
main()
"""


def multitask(*args: str, cwd: Path, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "multitask.cli", *args], capture_output=True, text=True, cwd=cwd,
                            env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def start_and_stop(tmp_path: Path, args: list[str], epoch: int, step: int) -> subprocess.Popen:
    """Start `multitask train ARGS` and return once it sits at `step` of `epoch` (killable)."""
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER)
    marker = tmp_path / f"marker-{epoch}-{step}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "STOP_MARKER": str(marker), "STOP_EPOCH": str(epoch),
           "STOP_STEP": str(step)}
    process = subprocess.Popen([sys.executable, str(launcher), "train", *args], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not marker.exists():
        if process.poll() is not None:
            raise AssertionError(f"exited early: {process.returncode}\n{process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("never reached the stop step")
        time.sleep(0.1)
    return process


def train_args(data: Path, name: str, *extra: str) -> list[str]:
    return ["--data", str(data), "--tasks", "a,b,c", "--trunk", "mlp", "--model.select", "off", "--epochs", "4",
            "--batch-size", "32",
            "--name", name, "--seed", "3", "--train.patience", "null", "--model.dropout", "0.2", *extra]


def comparable(metrics: dict) -> dict:
    """metrics.json without what depends on the clock or the machine."""
    drop = {"train_seconds", "inference_seconds_per_example", "machine"}
    return {k: v for k, v in metrics.items() if k not in drop}


def assert_same_metrics(a: dict, b: dict) -> None:
    def walk(x: object, y: object, where: str) -> None:
        if isinstance(x, dict):
            assert isinstance(y, dict) and set(x) == set(y), where
            for key in x:
                walk(x[key], y[key], f"{where}.{key}")
        elif isinstance(x, list):
            assert isinstance(y, list) and len(x) == len(y), where
            for i, (u, v) in enumerate(zip(x, y, strict=True)):
                walk(u, v, f"{where}[{i}]")
        elif isinstance(x, float) and isinstance(y, float):
            assert abs(x - y) <= 1e-6, f"{where}: {x} != {y}"
        else:
            assert x == y, f"{where}: {x!r} != {y!r}"

    walk(comparable(a), comparable(b), "metrics")


@pytest.mark.slow
def test_kill_9_in_epoch_2_then_resume_gives_the_uninterrupted_metrics(tmp_path: Path, tiny_features: Path,
                                                                       capsys: pytest.CaptureFixture) -> None:
    """DWA: its loss history of past epochs must come back with the checkpoint."""
    extra = ["--weighting", "dwa"]
    multitask("train", *train_args(tiny_features, "whole", *extra), cwd=tmp_path)
    process = start_and_stop(tmp_path, train_args(tiny_features, "killed", *extra), epoch=2, step=3)
    run = tmp_path / "runs" / "killed"
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "running" and status["pid"] == process.pid and status["epochs_done"] == 1
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert (run / "checkpoints" / "last.ckpt").exists() and not (run / "metrics.json").exists()
    # epoch 1 is saved in the checkpoint; nothing was written half
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0
    code, info = cli(capsys, "info", str(run))
    assert code == 0 and "unfinished" in info and "--resume" in info and "gone" in info
    code, refused = cli(capsys, "evaluate", str(run), "--data", str(tiny_features))
    assert code == 2 and "unfinished" in refused and "Traceback" not in refused
    resumed = multitask("train", "--resume", str(run), cwd=tmp_path)
    assert "Traceback" not in resumed.stderr
    whole = json.loads((tmp_path / "runs" / "whole" / "metrics.json").read_text())
    again = json.loads((run / "metrics.json").read_text())
    assert again["epochs"] == 4 and len(again["history"]) == 4
    assert_same_metrics(whole, again)
    final = json.loads((run / "status.json").read_text())
    assert final["status"] == "finished" and len(final["resumed"]) == 1
    code, listing = cli(capsys, "runs", "--root", str(tmp_path / "runs"))
    assert code == 0 and "killed" in listing and "whole" in listing and "finished" in listing


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "weighting"), [(signal.SIGINT, "famo"), (signal.SIGTERM, "rlw")],
                         ids=["SIGINT-famo", "SIGTERM-rlw"])
def test_a_signal_marks_the_run_interrupted_and_it_resumes(tmp_path: Path, tiny_features: Path,
                                                           signum: signal.Signals, weighting: str) -> None:
    """FAMO's per-step state and RLW's random generator must come back with the checkpoint."""
    extra = ["--weighting", weighting, "--train.weighting_options", "{seed: 1}" if weighting == "rlw" else "{}"]
    process = start_and_stop(tmp_path, train_args(tiny_features, "stopped", *extra), epoch=3, step=1)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    run = tmp_path / "runs" / "stopped"
    assert process.returncode == 130, stdout + stderr  # interrupted (the CLI's exit code for Ctrl-C / SIGTERM)
    assert "Traceback" not in stdout + stderr and "--resume" in stdout
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "interrupted" and signum.name in status["error"]
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1
    multitask("train", "--resume", str(run), cwd=tmp_path)
    multitask("train", *train_args(tiny_features, "whole", *extra), cwd=tmp_path)
    assert_same_metrics(json.loads((tmp_path / "runs" / "whole" / "metrics.json").read_text()),
                        json.loads((run / "metrics.json").read_text()))
