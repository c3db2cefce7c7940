"""COCO-style average precision per class, unknown-aware: AP@0.5 and AP@[.5:.95] and their means over classes.

The numbers come from a maintained implementation, torchmetrics' ``MeanAveragePrecision`` on the pycocotools
backend (COCO's 101-point interpolated precision, the 100 best-scored detections of each class in an image,
area range "all").
Before it sees them, for every image i and class c whose annotation is unknown (``not table.known[i, c]``),
the detections of c in i are dropped (and the table has no box of c there): they are neither true nor false
positives, as LVIS treats the classes an image was not exhaustively annotated for. Boxes marked ``ignore``
(VOC difficult, COCO iscrowd) are passed as COCO crowd regions: a detection matching one is neither a true nor
a false positive, and missing one costs nothing.

A class with no (non-ignored) box in the evaluated images has no AP (NaN); the means skip NaN.

>>> import numpy as np
>>> from multitask.detection.boxes import BoxTable
>>> table = BoxTable.from_arrays(["car"], ["a.png"], boxes=[[[0, 0, 10, 10]]], labels=[[0]])
>>> scores = detection_scores([{"boxes": [[0, 0, 10, 10]], "scores": [0.9], "labels": [0]}], table)
>>> round(scores.map50, 3), round(scores.map, 3)
(1.0, 1.0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from multitask.detection.boxes import BoxTable

MAX_DETECTIONS = 100
# COCOeval's own thresholds, in float64: torchmetrics' defaults come from float32 torch.linspace, and a recall of
# exactly k / 100 then falls on the other side of a threshold (an AP a few thousandths off COCOeval's)
IOU_THRESHOLDS = np.linspace(0.5, 0.95, round((0.95 - 0.5) / 0.05) + 1, endpoint=True).tolist()
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, round(1.0 / 0.01) + 1, endpoint=True).tolist()


@dataclass(frozen=True)
class DetectionScores:
    """AP per class (NaN where a class has no box to find) and their NaN-aware means, with counts."""

    classes: tuple[str, ...]
    ap50: np.ndarray  # (C,) AP at IoU 0.5
    ap: np.ndarray  # (C,) AP averaged over IoU 0.5, 0.55, ..., 0.95
    n_images: np.ndarray  # (C,) images where the class is known (evaluated)
    n_boxes: np.ndarray  # (C,) non-ignored ground-truth boxes
    n_detections: np.ndarray  # (C,) detections scored (after dropping those in unknown (image, class))
    n_dropped: np.ndarray  # (C,) detections dropped because the class is unknown in their image

    @property
    def map50(self) -> float:
        return _nanmean(self.ap50)

    @property
    def map(self) -> float:
        return _nanmean(self.ap)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: means, then per class (NaN written as None)."""
        def num(x: float) -> float | None:
            return None if not np.isfinite(x) else float(x)

        return {"map50": num(self.map50), "map": num(self.map),
                "classes": {name: {"ap50": num(self.ap50[c]), "ap": num(self.ap[c]),
                                   "images": int(self.n_images[c]), "boxes": int(self.n_boxes[c]),
                                   "detections": int(self.n_detections[c]), "dropped": int(self.n_dropped[c])}
                            for c, name in enumerate(self.classes)}}


def _nanmean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else float("nan")


def prediction_arrays(item: Mapping[str, Any], i: int, n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes (n, 4) float32, scores (n,) float32, labels (n,) int64) of prediction i, checked."""
    boxes = np.asarray(_numpy(item.get("boxes", [])), dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(_numpy(item.get("scores", [])), dtype=np.float32).reshape(-1)
    labels = np.asarray(_numpy(item.get("labels", [])), dtype=np.int64).reshape(-1)
    if not (len(boxes) == len(scores) == len(labels)):
        raise ValueError(f"prediction {i}: {len(boxes)} boxes, {len(scores)} scores and {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"prediction {i}: labels must be class indices in [0, {n_classes})")
    if not (np.isfinite(boxes).all() and np.isfinite(scores).all()):
        raise ValueError(f"prediction {i}: boxes and scores must be finite")
    return boxes, scores, labels


def _numpy(value: Any) -> Any:
    return value.detach().cpu().numpy() if hasattr(value, "detach") else value


def detection_scores(predictions: Sequence[Mapping[str, Any]], table: BoxTable, *,
                     ap50_only: bool = False) -> DetectionScores:
    """Score detections against a box table (see the module docstring).

    `predictions`: one dict per image of `table`, in its order, with ``boxes`` (n, 4) x1, y1, x2, y2 in the
    image's pixels, ``scores`` (n,) and ``labels`` (n,) class indices (numpy arrays, tensors or lists).
    `ap50_only`: evaluate at IoU 0.5 only (``ap`` is then AP@0.5 too; 1.6× faster, for bootstrap resamples).
    """
    import torch
    from torchmetrics.detection import MeanAveragePrecision

    if len(predictions) != len(table):
        raise ValueError(f"{len(predictions)} predictions for {len(table)} images")
    c = table.n_classes
    n_detections = np.zeros(c, np.int64)
    n_dropped = np.zeros(c, np.int64)
    preds, targets = [], []
    for i, item in enumerate(predictions):
        boxes, scores, labels = prediction_arrays(item, i, c)
        keep = table.known[i][labels] if len(labels) else np.zeros(0, bool)
        np.add.at(n_dropped, labels[~keep], 1)
        np.add.at(n_detections, labels[keep], 1)
        preds.append({"boxes": torch.from_numpy(boxes[keep]), "scores": torch.from_numpy(scores[keep]),
                      "labels": torch.from_numpy(labels[keep])})
        targets.append({"boxes": torch.from_numpy(np.asarray(table.boxes[i], np.float32).reshape(-1, 4)),
                        "labels": torch.from_numpy(np.asarray(table.labels[i], np.int64)),
                        "iscrowd": torch.from_numpy(np.asarray(table.ignore[i], np.int64))})
    ap50 = np.full(c, np.nan)
    ap = np.full(c, np.nan)
    if any(len(p["labels"]) for p in preds) or any(len(t["labels"]) for t in targets):
        metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", class_metrics=True,
                                      extended_summary=True, backend="pycocotools",
                                      iou_thresholds=[0.5] if ap50_only else IOU_THRESHOLDS,
                                      rec_thresholds=RECALL_THRESHOLDS,
                                      max_detection_thresholds=[1, 10, MAX_DETECTIONS],
                                      sync_on_compute=False)  # these detections only, even inside a DDP process
        metric.warn_on_many_detections = False  # COCO keeps the best 100 per image and class
        metric.update(preds, targets)
        result = metric.compute()
        # precision: (IoU thresholds, recall thresholds, classes present, areas, max detections); -1 = undefined
        precision = result["precision"].numpy()[:, :, :, 0, -1]
        present = np.atleast_1d(result["classes"].numpy()).astype(np.int64)
        for k, cls in enumerate(present):
            per_threshold = np.array([_mean_defined(precision[t, :, k]) for t in range(precision.shape[0])])
            ap50[cls] = per_threshold[0]
            defined = precision[:, :, k]
            ap[cls] = defined[defined > -1].mean() if (defined > -1).any() else np.nan
    n_boxes = table.counts()
    ap50[n_boxes == 0] = np.nan
    ap[n_boxes == 0] = np.nan
    return DetectionScores(classes=table.classes, ap50=ap50, ap=ap, n_images=table.known.sum(axis=0),
                           n_boxes=n_boxes, n_detections=n_detections, n_dropped=n_dropped)


def _mean_defined(values: np.ndarray) -> float:
    defined = values[values > -1]
    return float(defined.mean()) if len(defined) else float("nan")
