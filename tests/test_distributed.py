"""Distributed data-parallel training on CPU: two processes (gloo), the same code path as a multi-GPU run, through
the command line: one run directory, its results printed once, no warnings from Lightning about unsynchronised
logging."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import sys
from multitask.cli import run_cli

data, root = sys.argv[1], sys.argv[2]
code = run_cli(["train", "--data", data, "--tasks", "a,b,c", "--trunk", "mlp", "--model.trunk_options",
                "{hidden: [16]}", "--epochs", "2", "--batch-size", "32", "--accelerator", "cpu", "--devices", "2",
                "--train.strategy", "ddp", "--train.progress", "false", "--model.select", "off", "--root", root,
                "--name", "ddp"])
print("RANK-DONE", code)
"""


@pytest.mark.slow
def test_two_process_ddp_training_writes_one_run(tmp_path: Path, tiny_features: Path) -> None:
    script = tmp_path / "train_ddp.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PL_DISABLE_FORK": "1"}
    result = subprocess.run([sys.executable, str(script), str(tiny_features), str(tmp_path / "runs")],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("RANK-DONE 0") == 2, result.stdout  # two processes trained, each finished
    assert result.stdout.count("Run saved in") == 1, result.stdout  # printed by rank 0 alone
    assert result.stdout.count("test metrics") == 1, result.stdout
    assert "sync_dist" not in result.stderr, result.stderr  # every epoch-level value is logged synchronised
    run = tmp_path / "runs" / "ddp"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 2
    assert [t["task"] for t in metrics["test"]["tasks"]] == ["a", "b", "c"]
    assert (run / "model.safetensors").exists()
    # rank 0 wrote the history of every epoch, validation mAP included
    assert len(metrics["history"]) == 2 and all("val_map" in h for h in metrics["history"])
