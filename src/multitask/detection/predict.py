"""Detections of a trained detector: inference on images, boxes as CSV or COCO JSON, images with boxes drawn.

Boxes are in the original image's pixels (x1, y1, x2, y2), whatever size the detector saw.

>>> import numpy as np
>>> frame = detections_frame(["a.png"], [{"boxes": np.array([[1.0, 2, 3, 4]]), "scores": np.array([0.9]),
...                                       "labels": np.array([0])}], ("car",))
>>> frame.to_dict("records")
[{'image': 'a.png', 'class': 'car', 'score': 0.9, 'x1': 1.0, 'y1': 2.0, 'x2': 3.0, 'y2': 4.0}]
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from multitask.detection.model import Detector
from multitask.detection.training import read_image, to_original
from multitask.errors import MissingFileError, UserError
from multitask.files import atomic_write_text

Detections = dict[str, np.ndarray]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@torch.no_grad()
def detect(detector: Detector, paths: Sequence[str | Path], batch_size: int = 16,
           device: torch.device | str | None = None) -> list[Detections]:
    """Detections for each image file (boxes in its own pixels), the detector in eval mode."""
    from multitask.inference import default_device

    device = torch.device(device) if device is not None else default_device()
    detector = detector.eval().to(device)
    size = detector.image_size
    out: list[Detections] = []
    try:
        for start in range(0, len(paths), batch_size):
            loaded = [read_image(p, size) for p in paths[start:start + batch_size]]
            images = [(image.float() / 255).to(device) for image, _ in loaded]
            for (_, original), found in zip(loaded, detector(images), strict=True):
                out.append(to_original(found, original, size))
    finally:
        detector.cpu()
    return out


def time_detection(detector: Detector, path: str | Path, repeats: int = 5) -> float:
    """Seconds per image of one-image inference on the CPU (median of `repeats`, after one warm-up)."""
    detector = detector.eval()
    image = (read_image(path, detector.image_size)[0].float() / 255)
    times = []
    with torch.no_grad():
        detector([image])
        for _ in range(repeats):
            start = time.perf_counter()
            detector([image])
            times.append(time.perf_counter() - start)
    return float(np.median(times))


def image_files(inputs: Sequence[str | Path]) -> list[Path]:
    """Image files named, or found in the folders named (sorted); a path that does not exist is refused."""
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files += sorted(p for p in item.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif item.is_file():
            files.append(item)
        else:
            raise MissingFileError(f"no such image or folder: {item}")
    if not files:
        raise UserError(f"no images found in {', '.join(map(str, inputs))}")
    return files


def detections_frame(images: Sequence[str], detections: Sequence[Detections], classes: Sequence[str],
                     min_score: float = 0.0) -> pd.DataFrame:
    """One row per detection: image, class, score, x1, y1, x2, y2 (a box table with scores)."""
    rows: list[dict[str, Any]] = []
    for image, found in zip(images, detections, strict=True):
        for box, score, label in zip(found["boxes"], found["scores"], found["labels"], strict=True):
            if score >= min_score:
                rows.append({"image": str(image), "class": classes[int(label)], "score": round(float(score), 5),
                             **{k: round(float(v), 2) for k, v in zip(("x1", "y1", "x2", "y2"), box, strict=True)}})
    return pd.DataFrame(rows, columns=["image", "class", "score", "x1", "y1", "x2", "y2"])


def coco_results(images: Sequence[str], detections: Sequence[Detections], classes: Sequence[str],
                 min_score: float = 0.0) -> dict[str, Any]:
    """COCO JSON: ``images``, ``categories`` (ids from 1) and ``annotations`` with ``bbox`` [x, y, w, h] and
    ``score`` (the detection-results format, with the images and categories it refers to)."""
    annotations = []
    for image_id, found in enumerate(detections, start=1):
        for box, score, label in zip(found["boxes"], found["scores"], found["labels"], strict=True):
            if score < min_score:
                continue
            x1, y1, x2, y2 = (float(v) for v in box)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(label) + 1,
                                "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                                "area": round((x2 - x1) * (y2 - y1), 2), "score": round(float(score), 5),
                                "iscrowd": 0})
    return {"images": [{"id": k, "file_name": str(name)} for k, name in enumerate(images, start=1)],
            "categories": [{"id": k, "name": name} for k, name in enumerate(classes, start=1)],
            "annotations": annotations}


def write_detections(path: str | Path, images: Sequence[str], detections: Sequence[Detections],
                     classes: Sequence[str], min_score: float = 0.0) -> Path:
    """Detections as CSV / TSV / Parquet (by suffix) or COCO JSON (``.json``), written atomically."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        text = json.dumps(coco_results(images, detections, classes, min_score), indent=1)
        atomic_write_text(path, text + "\n")
        return path
    frame = detections_frame(images, detections, classes, min_score)
    from multitask.files import atomic_write_with

    if path.suffix.lower() in (".parquet", ".pq"):
        atomic_write_with(path, lambda tmp: frame.to_parquet(tmp, index=False))
    else:
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
        atomic_write_text(path, frame.to_csv(index=False, sep=sep))
    return path


PALETTE = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45", "#fabed4",
           "#469990")


def draw_detections(path: str | Path, found: Detections, classes: Sequence[str], out: str | Path,
                    min_score: float = 0.3, truth: tuple[np.ndarray, np.ndarray] | None = None) -> Path:
    """Save image `path` with its detections (score ≥ `min_score`) drawn, labelled "class score"; the ground
    truth (boxes, labels), when given, in white. PNG or JPEG by `out`'s suffix, written atomically."""
    from PIL import Image
    from torchvision.utils import draw_bounding_boxes

    from multitask.data.images import read_rgb
    from multitask.files import atomic_write_with

    image = torch.from_numpy(read_rgb(path).copy()).permute(2, 0, 1).contiguous()
    width = max(1, round(max(image.shape[1:]) / 200))
    if truth is not None and len(truth[0]):
        image = draw_bounding_boxes(image, torch.as_tensor(truth[0], dtype=torch.float32), colors="white",
                                    width=width)
    keep = found["scores"] >= min_score
    if keep.any():
        labels = [f"{classes[int(k)]} {s:.2f}" for k, s in zip(found["labels"][keep], found["scores"][keep],
                                                                strict=True)]
        colours = [PALETTE[int(k) % len(PALETTE)] for k in found["labels"][keep]]
        image = draw_bounding_boxes(image, torch.as_tensor(found["boxes"][keep], dtype=torch.float32), labels=labels,
                                    colors=colours, width=width)
    out = Path(out)
    picture = Image.fromarray(image.permute(1, 2, 0).numpy())
    atomic_write_with(out, lambda tmp: picture.save(tmp, format="JPEG" if out.suffix.lower() in (".jpg", ".jpeg")
                                                    else "PNG"))
    return out


def draw_all(paths: Sequence[Path], detections: Sequence[Detections], classes: Sequence[str], folder: str | Path,
             min_score: float = 0.3) -> list[Path]:
    """Every image with its detections drawn, into `folder` (same file names; a name that repeats gets its
    position as a prefix)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = [p.stem for p in paths]
    out = []
    for k, (path, found) in enumerate(zip(paths, detections, strict=True)):
        stem = path.stem if names.count(path.stem) == 1 else f"{k:05d}_{path.stem}"
        out.append(draw_detections(path, found, classes, folder / f"{stem}.png", min_score))
    return out
