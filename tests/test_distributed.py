"""Distributed data-parallel training on CPU: two processes (gloo), the same code path as a multi-GPU run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import sys
from multitask.config import build_config
from multitask.pipeline import train_run

data, root = sys.argv[1], sys.argv[2]
config = build_config({"root": root, "name": "ddp", "data": {"path": data, "tasks": ["a", "b", "c"]},
                       "model": {"trunk": "mlp", "trunk_options": {"hidden": [16]}},
                       "train": {"epochs": 2, "batch_size": 32, "accelerator": "cpu", "devices": 2,
                                 "strategy": "ddp", "progress": False}})
run = train_run(config, quiet=True, report=False)
print("RANK-DONE", run.path)
"""


@pytest.mark.slow
def test_two_process_ddp_training_writes_one_run(tmp_path: Path, tiny_features: Path) -> None:
    script = tmp_path / "train_ddp.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PL_DISABLE_FORK": "1"}
    result = subprocess.run([sys.executable, str(script), str(tiny_features), str(tmp_path / "runs")],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("RANK-DONE") == 2, result.stdout  # two processes trained, each finished
    run = tmp_path / "runs" / "ddp"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 2
    assert [t["task"] for t in metrics["test"]["tasks"]] == ["a", "b", "c"]
    assert (run / "model.safetensors").exists()
    # rank 0 wrote the history of every epoch, validation mAP included
    assert len(metrics["history"]) == 2 and all("val_map" in h for h in metrics["history"])
