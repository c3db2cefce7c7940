"""Detection runs: train → evaluate → save a run directory, resume, load, evaluate on another box table.

A detection run directory has what a label run has (``status.json``, ``provenance.json``, ``config.yaml`` with
``data.kind: detection``, ``model.safetensors``, ``metrics.json``, ``logs/``, ``checkpoints/best.ckpt`` and
``last.ckpt``, ``report.md``) with ``classes.json`` (the classes, in output order) instead of ``tasks.json``,
and ``detections_test.npz`` / ``detections_val.npz`` (every detection of the split, for bootstrap intervals).

>>> from multitask.config import build_config
>>> build_config({"data": {"kind": "detection"}}).data.kind
'detection'
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from multitask.config import RunConfig, load_config
from multitask.detection.boxes import BoxTable, read_box_table
from multitask.detection.model import Detector, build_detector
from multitask.detection.predict import Detections, detect, time_detection
from multitask.detection.training import check_weighting, fit_detector
from multitask.errors import ConfigError, LabelError, RunDirError, UserError
from multitask.files import atomic_write_text, atomic_write_with
from multitask.models.network import count_parameters
from multitask.run_lifecycle import begin_resume, begin_run, recorded
from multitask.runs import (
    check_finished,
    read_json,
    read_weights,
    write_json,
    write_status,
)

log = logging.getLogger(__name__)

CLASSES_FILE = "classes.json"


@dataclass
class DetectionRun:
    """A trained detector with its config and classes, as stored in a run directory."""

    path: Path
    config: RunConfig
    classes: tuple[str, ...]
    detector: Detector
    metrics: dict[str, Any] = field(default_factory=dict)


def read_boxes(config: RunConfig, *, path: str | Path | None = None, images: str | Path | None = None) -> BoxTable:
    """The box table a config names (data.path, data.images, the seeded split, data.tasks as the classes,
    data.hide_fraction of the train/val annotations hidden), or another file read the same way."""
    data = config.data
    source = path if path is not None else data.path
    if source is None:
        raise ConfigError("data.path: give the box table (--data boxes.csv)")
    table = read_box_table(source, image_root=images if path is not None else data.images,
                           val_fraction=data.val_fraction, test_fraction=data.test_fraction,
                           split_seed=config.train.seed)
    if data.tasks:
        table = table.only_classes(data.tasks)
    if data.hide_fraction and path is None:
        table = table.hide_annotations(data.hide_fraction, seed=config.train.seed)
    return table


def check_detection_table(table: BoxTable) -> None:
    """A table a detector can train on: training images, and a box of every class among them."""
    train = table.part("train")
    if not len(train):
        raise LabelError("the box table has no training images (split 'train')", file=table.source)
    counts = train.counts()
    empty = [c for c, n in zip(table.classes, counts, strict=True) if n == 0]
    if empty:
        raise LabelError(f"class(es) {empty} have no box in the training split", file=table.source)


def prepare_detector(config: RunConfig, table: BoxTable) -> Detector:
    """Options checked and the detector built (with its starting weights) before any folder is reserved."""
    from multitask.checks import check_options

    check_detection_table(table)
    check_options(config, "images")
    check_weighting(config.train.weighting, table.n_classes, config.train.weighting_options)
    import lightning as L

    L.seed_everything(config.train.seed, workers=True, verbose=False)
    return build_detector(config.model, config.detection, table.n_classes, config.data.image_size)


def train_detection_run(config: RunConfig, table: BoxTable | None = None, *, run_dir: Path | None = None,
                        label: str = "", quiet: bool = False, report: bool = True) -> DetectionRun:
    """Read the box table (unless given), train, evaluate on val and test, save the run directory."""
    table = table if table is not None else read_boxes(config)
    detector = prepare_detector(config, table)
    run_dir = begin_run(config, run_dir, default_stem="boxes")
    return _train_in(run_dir, config, table, detector, label=label, quiet=quiet, report=report, resume_from=None)


def resume_detection_run(path: str | Path, config: RunConfig, table: BoxTable | None = None, *, label: str = "",
                         quiet: bool = False, report: bool = True) -> DetectionRun:
    """Continue an unfinished detection run from checkpoints/last.ckpt (its config already read)."""
    path = Path(path)
    table = table if table is not None else read_boxes(config)
    detector = prepare_detector(config, table)
    checkpoint = begin_resume(path)
    return _train_in(path, config, table, detector, label=label, quiet=quiet, report=report, resume_from=checkpoint)


def _train_in(run_dir: Path, config: RunConfig, table: BoxTable, detector: Detector, *, label: str, quiet: bool,
              report: bool, resume_from: Path | None) -> DetectionRun:
    """Train, evaluate and save in a reserved run directory, keeping status.json true to what happened."""

    def work() -> DetectionRun:
        result = fit_detector(config, table, detector, run_dir, label=label, quiet=quiet, resume_from=resume_from,
                              on_epoch=lambda done: write_status(run_dir, "running", epochs_done=done))
        if not result.global_zero:
            return DetectionRun(run_dir, config, table.classes, result.detector)
        run = _evaluate_and_save(run_dir, config, table, result)
        if report:
            from multitask.detection.report import write_detection_report

            write_detection_report(run, table)
        return run

    return recorded(run_dir, work, epochs_done=lambda run: run.metrics.get("epochs"))


def save_detections(path: Path, images: tuple[str, ...], detections: list[Detections]) -> None:
    """Every detection of some images as a pickle-free .npz (flat arrays; ``image`` indexes ``images``)."""
    lengths = [len(d["scores"]) for d in detections]
    cat = np.concatenate

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as file:
            np.savez_compressed(file, images=np.array(images, dtype=str),
                                image=np.repeat(np.arange(len(images)), lengths).astype(np.int64),
                                boxes=cat([*(d["boxes"] for d in detections), np.zeros((0, 4), np.float32)]),
                                scores=cat([*(d["scores"] for d in detections), np.zeros(0, np.float32)]),
                                labels=cat([*(d["labels"] for d in detections), np.zeros(0, np.int64)]))

    atomic_write_with(path, write)


def load_detections(path: Path) -> tuple[tuple[str, ...], list[Detections]]:
    """(images, detections per image) saved by :func:`save_detections`."""
    if not path.is_file():
        raise RunDirError(f"{path}: missing (the run's saved detections)")
    with np.load(path, allow_pickle=False) as data:
        images, image = tuple(str(i) for i in data["images"]), data["image"]
        out = [{"boxes": data["boxes"][image == i], "scores": data["scores"][image == i],
                "labels": data["labels"][image == i]} for i in range(len(images))]
    return images, out


def evaluate_detections(detections: list[Detections], table: BoxTable) -> dict[str, Any]:
    """AP@0.5 and AP@[.5:.95] per class and their means (unknown-aware), as a JSON-ready dict."""
    from multitask.detection.metrics import detection_scores

    return {"n_images": len(table), **detection_scores(detections, table).to_dict()}


def _evaluate_and_save(run_dir: Path, config: RunConfig, table: BoxTable, result: Any) -> DetectionRun:
    detector: Detector = result.detector
    metrics: dict[str, Any] = {"kind": "detection", "classes": list(table.classes)}
    for split in ("val", "test"):
        part = table.part(split)
        if not len(part):
            continue
        found = detect(detector, part.paths(), batch_size=config.train.batch_size)
        save_detections(run_dir / f"detections_{split}.npz", part.images, found)
        metrics[split] = evaluate_detections(found, part)
    train = table.part("train")
    metrics.update({
        "train_seconds": result.train_seconds, "epochs": result.epochs, "best_epoch": result.best_epoch,
        "best_score": result.best_score, "parameters": count_parameters(detector),
        "inference_seconds_per_example": time_detection(detector, table.paths()[0]),
        "n_train": len(train), "train_known": train.known.sum(axis=0).tolist(),
        "train_boxes": train.counts().tolist(), "history": result.history,
    })
    from multitask.pipeline import machine_description

    metrics["machine"] = machine_description()
    return save_detection_run(run_dir, config, detector, table.classes, metrics)


def save_detection_run(path: Path, config: RunConfig, detector: Detector, classes: tuple[str, ...],
                       metrics: dict[str, Any]) -> DetectionRun:
    """Weights (safetensors), classes.json and metrics.json, atomically; config.yaml unless already there."""
    from safetensors.torch import save_file

    path.mkdir(parents=True, exist_ok=True)
    if not (path / "config.yaml").exists():
        atomic_write_text(path / "config.yaml", config.to_yaml())
    state = {k: v.detach().cpu().contiguous() for k, v in detector.state_dict().items()}
    atomic_write_with(path / "model.safetensors",
                      lambda tmp: save_file(state, str(tmp), metadata={"format": "pt", "multitask": "detection"}))
    write_json(path / CLASSES_FILE, {"kind": "detection", "classes": list(classes),
                                     "image_size": config.data.image_size})
    write_json(path / "metrics.json", metrics)
    return DetectionRun(path, config, tuple(classes), detector, metrics)


def is_detection_run(path: str | Path) -> bool:
    """Whether a run directory holds a detector (its classes.json)."""
    return (Path(path) / CLASSES_FILE).is_file()


def load_detection_run(path: str | Path) -> DetectionRun:
    """Rebuild a run's detector from config.yaml and load model.safetensors, every file checked (RunDirError
    naming the file)."""
    path = Path(path)
    check_finished(path)
    for name in ("config.yaml", CLASSES_FILE, "model.safetensors"):
        if not (path / name).is_file():
            raise RunDirError(f"{path / name}: missing (a detection run needs config.yaml, {CLASSES_FILE}, "
                              "model.safetensors)")
    try:
        config = load_config(path / "config.yaml")
    except UserError as error:
        raise RunDirError(f"{path / 'config.yaml'}: {error}") from None
    info = read_json(path / CLASSES_FILE)
    classes = info.get("classes") if isinstance(info, dict) else None
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise RunDirError(f"{path / CLASSES_FILE}: \"classes\" must be a non-empty list of class names")
    state = read_weights(path / "model.safetensors")
    detector = build_detector(config.model, config.detection, len(classes), config.data.image_size,
                              load_weights=False)
    try:
        detector.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise RunDirError(f"{path / 'config.yaml'} or {path / CLASSES_FILE} disagrees with "
                          f"{path / 'model.safetensors'}: {str(error).splitlines()[0]}") from None
    detector.eval()
    metrics_path = path / "metrics.json"
    metrics = read_json(metrics_path) if metrics_path.exists() else {}
    return DetectionRun(path, config, tuple(classes), detector, metrics)


def evaluate_detection_run(run: str | Path | DetectionRun, data: str | Path, *, images: str | Path | None = None,
                           split: str = "all") -> dict[str, Any]:
    """A run's AP per class on a box table (its classes must include the run's), rows of `split` or all."""
    run = run if isinstance(run, DetectionRun) else load_detection_run(run)
    table = read_boxes(run.config, path=data, images=images)
    missing = [c for c in run.classes if c not in table.classes]
    if missing:
        raise LabelError(f"the box table has no class {missing[0]!r} of the run (classes {list(run.classes)})",
                         file=data)
    table = table.only_classes(list(run.classes))
    if split != "all":
        table = table.part(split)
        if not len(table):
            raise UserError(f"{data}: no images in split {split!r}")
    found = detect(run.detector, table.paths(), batch_size=run.config.train.batch_size)
    return evaluate_detections(found, table)

