"""What the `multitask` commands do with detection runs and box tables (the typer app in :mod:`multitask.cli`
hands over to these when a run directory holds a detector or ``data.kind`` is ``detection``).

>>> scores = {"map50": 0.5, "map": 0.25, "classes": {"car": {"ap50": 0.5, "ap": 0.25, "images": 2, "boxes": 3}}}
>>> print(scores_text(scores, "test"))
test AP (unknown-aware, COCO-style)
| class | images | boxes | AP@0.5 | AP@[.5:.95] |
|---|---|---|---|---|
| car | 2 | 3 | 0.500 | 0.250 |
| **mean** |  |  | 0.500 | 0.250 |
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from multitask.config import RunConfig


def scores_text(split: dict[str, Any], title: str) -> str:
    from multitask.detection.report import scores_table

    return f"{title} AP (unknown-aware, COCO-style)\n{scores_table(split)}"


def print_run(metrics: dict[str, Any], path: Path, console: Any) -> None:
    """A finished detection run's val / test AP and its folder."""
    for split in ("val", "test"):
        if split in metrics:
            console.print(scores_text(metrics[split], split) + "\n", markup=False)
    console.print(f"Run saved in {path} (report: {path / 'report.md'})", markup=False)


def is_detection_comparison(config: RunConfig, resume: Path | None) -> bool:
    """`multitask compare` on a box table: data.kind detection, or resuming a detection comparison."""
    if config.data.kind == "detection":
        return True
    if resume is None:
        return False
    try:
        return json.loads((Path(resume) / "plan.json").read_text()).get("kind") == "detection"
    except (OSError, ValueError, AttributeError):
        return False


def compare(config: RunConfig, approaches: Sequence[str], resume: Path | None, console: Any, n_boot: int = 200) -> None:
    from multitask.detection.compare import compare_detection

    result = compare_detection(config, approaches=approaches, resume=resume, n_boot=n_boot)
    console.print(result.markdown(), markup=False)
    console.print(f"Comparison saved in {result.path} (report: {result.path / 'report.md'})", markup=False)


def evaluate(run: Path, data: Path, images: Path | None, split: str, out: Path | None, console: Any) -> None:
    from multitask.detection.run import evaluate_detection_run
    from multitask.runs import write_json

    scores = evaluate_detection_run(run, data, images=images, split=split)
    console.print(scores_text(scores, f"{data.name}: {split} images ({scores['n_images']})"), markup=False)
    if out:
        write_json(out, scores)
        console.print(f"Metrics written to {out}", markup=False)


def predict(run: Path, inputs: Sequence[Path], out: Path, draw: Path | None, min_score: float,
            console: Any) -> None:
    """Detections of a run for image files / folders: boxes to `out` (CSV / Parquet, or COCO JSON for .json),
    and the images with their boxes drawn into `draw`."""
    from multitask.detection.predict import detect, draw_all, image_files, write_detections
    from multitask.detection.run import load_detection_run

    trained = load_detection_run(run)
    files = image_files(inputs)
    found = detect(trained.detector, files, batch_size=trained.config.train.batch_size)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_detections(out, [str(f) for f in files], found, trained.classes, min_score=min_score)
    count = sum(int((d["scores"] >= min_score).sum()) for d in found)
    console.print(f"{count} detections in {len(files)} images written to {out}", markup=False)
    if draw is not None:
        draw_all(files, found, trained.classes, draw, min_score=min_score)
        console.print(f"Images with their boxes drawn in {draw}", markup=False)


def info(run: Path, console: Any) -> None:
    from multitask.detection.run import load_detection_run
    from multitask.report import fmt

    trained = load_detection_run(run)
    m, cfg = trained.metrics, trained.config
    console.print(f"{trained.path}\ndata: {cfg.data.path}  (detection; {len(trained.classes)} classes: "
                  f"{', '.join(trained.classes)})\nmodel: FCOS on trunk {cfg.model.trunk}, "
                  f"{m.get('parameters', 0):,} parameters; unknown annotations: {cfg.detection.unknown}\n"
                  f"training: {m.get('epochs')} epochs, best epoch {m.get('best_epoch')}, "
                  f"{fmt(m.get('train_seconds'), 1)} s on {m.get('machine')}", markup=False)
    if "test" in m:
        console.print(scores_text(m["test"], "test"), markup=False)


def export(run: Path, out: Path, console: Any) -> None:
    from multitask.detection.export import export_detector_onnx

    path = export_detector_onnx(run, out)
    console.print(f"ONNX model written to {path}: input 'images' (batch × 3 × S × S, floats in [0, 1]); outputs "
                  "'boxes' (batch × L × 4, pixels of the S × S input), 'scores' (batch × L × C) before "
                  "thresholding and NMS; classes and image size in its metadata", markup=False)
