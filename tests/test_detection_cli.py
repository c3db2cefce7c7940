"""Detection from the command line, end to end on tiny generated scenes: train → evaluate → predict → export,
resume, compare (multitask.cli with data.kind detection)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from multitask.cli import run_cli

TINY = ["--data.kind", "detection", "--trunk", "small_cnn", "--model.trunk_options", "{width: 8, depth: 3}",
        "--detection.fpn_channels", "32", "--detection.head_convs", "1", "--image-size", "32", "--batch-size", "8",
        "--threads", "1"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """boxes.csv of 48 generated 32-px road scenes, 30 % of the train/val (image, class) annotations unknown."""
    from multitask.data.generators import generate_road_scenes

    labels = generate_road_scenes(tmp_path_factory.mktemp("det-scenes"), n_images=48, image_size=32,
                                  unknown_fraction=0.3, seed=0)
    return labels.parent / "boxes.csv"


def test_train_evaluate_predict(scenes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    root = tmp_path / "runs"
    assert run_cli(["train", "--data", str(scenes), *TINY, "--epochs", "2", "--root", str(root), "--name", "det"]) == 0
    run = root / "det"
    for name in ("status.json", "provenance.json", "config.yaml", "classes.json", "model.safetensors",
                 "metrics.json", "report.md", "detections_test.npz", "checkpoints/last.ckpt", "logs/metrics.csv"):
        assert (run / name).is_file(), name
    assert json.loads((run / "status.json").read_text())["status"] == "finished"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["kind"] == "detection" and metrics["epochs"] == 2
    assert set(metrics["test"]["classes"]) == {"car", "pedestrian", "stop_sign", "traffic_light"}
    assert "Example detections" in (run / "report.md").read_text()
    assert "test AP" in capsys.readouterr().out

    full = scenes.parent / "boxes_full.csv"
    assert run_cli(["evaluate", str(run), "--data", str(full), "--split", "test", "--out",
                    str(tmp_path / "ev.json")]) == 0
    evaluation = json.loads((tmp_path / "ev.json").read_text())
    assert evaluation["n_images"] == int((pd.read_csv(full).drop_duplicates("image").split == "test").sum())

    images = scenes.parent / "images"
    assert run_cli(["predict", str(run), str(images), "--out", str(tmp_path / "p.csv"), "--min-score", "0"]) == 0
    boxes = pd.read_csv(tmp_path / "p.csv")
    assert list(boxes.columns) == ["image", "class", "score", "x1", "y1", "x2", "y2"]
    assert len(boxes) > 0 and boxes["class"].isin(metrics["classes"]).all()
    assert ((boxes.x2 >= boxes.x1) & (boxes.x2 <= 32) & (boxes.y2 <= 32)).all()
    one = sorted(images.glob("*.png"))[:2]
    assert run_cli(["predict", str(run), *map(str, one), "--out", str(tmp_path / "p.json"), "--min-score", "0",
                    "--draw", str(tmp_path / "drawn")]) == 0
    coco = json.loads((tmp_path / "p.json").read_text())
    assert len(coco["images"]) == 2 and {c["name"] for c in coco["categories"]} == set(metrics["classes"])
    assert sorted(p.name for p in (tmp_path / "drawn").iterdir()) == [p.name for p in one]

    assert run_cli(["info", str(run)]) == 0
    assert run_cli(["runs", "--root", str(root)]) == 0
    assert "det" in capsys.readouterr().out
    assert run_cli(["train", "--resume", str(run)]) == 2  # finished: nothing to resume
    assert run_cli(["evaluate", str(run), "--data", str(tmp_path / "missing.csv")]) == 2


def test_refusals_leave_no_folder(scenes: Path, tmp_path: Path):
    root = tmp_path / "runs"
    assert run_cli(["train", "--data", str(scenes), *TINY, "--root", str(root), "--weighting", "mgda"]) == 2
    assert run_cli(["train", "--data", str(scenes), *TINY, "--root", str(root), "--trunk", "mlp"]) == 2
    assert run_cli(["train", "--data", str(scenes), *TINY, "--root", str(root), "--detection.fpn_channels",
                    "48"]) == 2
    assert not root.exists() or not any(root.iterdir())


@pytest.mark.slow
def test_resume_continues_from_last_checkpoint(scenes: Path, tmp_path: Path):
    from multitask.config import build_config, load_config
    from multitask.files import atomic_write_text
    from multitask.pipeline import resume_run, train_run
    from multitask.runs import write_status

    config = build_config({"root": str(tmp_path), "name": "r", "data": {"path": str(scenes), "kind": "detection",
                                                                          "image_size": 32},
                           "model": {"trunk": "small_cnn", "trunk_options": {"width": 8, "depth": 3}},
                           "detection": {"fpn_channels": 32, "head_convs": 1},
                           "train": {"epochs": 1, "batch_size": 8, "progress": False, "patience": None}})
    run = train_run(config, quiet=True, report=False)
    first = torch.load(run.path / "checkpoints" / "last.ckpt", weights_only=True)
    assert first["epoch"] == 0  # Lightning counts from 0: the state after the first epoch
    longer = load_config(run.path / "config.yaml").model_copy(update={"train": config.train.model_copy(
        update={"epochs": 2})})
    atomic_write_text(run.path / "config.yaml", longer.to_yaml())  # as if it had been planned for 2 epochs
    write_status(run.path, "interrupted", error="killed")
    resumed = resume_run(run.path, quiet=True, report=False)
    assert resumed.metrics["epochs"] == 2
    assert [h["epoch"] for h in resumed.metrics["history"]] == [0, 1]  # epoch 0 from the checkpoint, 1 trained
    assert json.loads((run.path / "status.json").read_text())["status"] == "finished"
    assert len(json.loads((run.path / "status.json").read_text())["resumed"]) == 1


@pytest.mark.slow
def test_compare_and_export(scenes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    root = tmp_path / "runs"
    assert run_cli(["compare", "--data", str(scenes), *TINY, "--epochs", "1", "--root", str(root), "--name",
                    "cmp", "--n-boot", "5", "--detection.score_threshold", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "Δ separate − shared" in out and "Cost" in out
    comparison = json.loads((root / "cmp" / "comparison.json").read_text())
    assert comparison["kind"] == "detection" and set(comparison["results"]) == {"shared", "separate"}
    classes = comparison["classes"]
    separate = comparison["results"]["separate"]
    assert len(set(separate["runs"].values())) == len(classes)  # one detector per class
    assert separate["parameters"] > comparison["results"]["shared"]["parameters"]
    assert set(comparison["ap50_differences"]["separate"]) == {*classes, "macro"}
    shared_run = root / "cmp" / "shared"
    assert run_cli(["export", str(shared_run), "--out", str(tmp_path / "det.onnx")]) == 0
    import onnxruntime

    session = onnxruntime.InferenceSession(str(tmp_path / "det.onnx"))
    boxes, scores = session.run(None, {"images": torch.rand(2, 3, 32, 32).numpy()})
    assert boxes.shape[0] == 2 and boxes.shape[2] == 4 and scores.shape[2] == len(classes)


DDP_SCRIPT = """
import sys
from multitask.cli import run_cli

data, root = sys.argv[1], sys.argv[2]
code = run_cli(["train", "--data", data, "--data.kind", "detection", "--trunk", "small_cnn", "--model.trunk_options",
                "{width: 8, depth: 3}", "--detection.fpn_channels", "32", "--detection.head_convs", "1",
                "--image-size", "32", "--epochs", "2", "--batch-size", "8", "--accelerator", "cpu", "--devices", "2",
                "--train.strategy", "ddp", "--train.progress", "false", "--root", root, "--name", "ddp"])
print("RANK-DONE", code)
"""


@pytest.mark.slow
def test_two_process_ddp_detection(scenes: Path, tmp_path: Path):
    """The same DDP plumbing as label tables: two gloo processes, one run directory, validation mAP of the
    whole val split (both processes' detections gathered)."""
    import os
    import subprocess
    import sys

    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PL_DISABLE_FORK": "1"}
    result = subprocess.run([sys.executable, str(script), str(scenes), str(tmp_path / "runs")], capture_output=True,
                            text=True, env=env, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("RANK-DONE 0") == 2, result.stdout
    assert result.stdout.count("Run saved in") == 1, result.stdout
    assert "sync_dist" not in result.stderr, result.stderr
    metrics = json.loads((tmp_path / "runs" / "ddp" / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and all("val_map" in h for h in metrics["history"])
