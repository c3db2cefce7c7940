"""The unknown-aware COCO-style AP against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from multitask.detection.boxes import BoxTable
from multitask.detection.metrics import detection_scores

# Class A, two images, one ground-truth box each (10 x 10 at the origin). Three detections, by score:
#   d1 0.9 in image 1: the box itself                 IoU 1      -> TP at every threshold
#   d2 0.8 in image 2: [20, 20, 30, 30]               IoU 0      -> FP
#   d3 0.7 in image 2: [0, 0, 10, 6.25]               IoU 0.625  -> TP at 0.50, 0.55, 0.60; FP from 0.65 on
# At IoU 0.5: precision / recall after each detection: 1/0.5, 0.5/0.5, 2/3/1.0. COCO's interpolated precision
# (the best precision at recall >= r) is 1 for r <= 0.5 and 2/3 above, sampled at r = 0, 0.01, ..., 1:
# 51 points with 1 and 50 with 2/3:
AP50 = (51 * 1 + 50 * 2 / 3) / 101  # 0.83498...
# From IoU 0.65 on, d3 is a FP: recall stops at 0.5, so precision is 1 for the 51 points r <= 0.5, 0 above:
AP_HIGH = 51 / 101
# AP@[.5:.95] averages the 10 thresholds 0.50, 0.55, ..., 0.95: three like AP50, seven like AP_HIGH.
AP = (3 * AP50 + 7 * AP_HIGH) / 10  # 0.60396...

GT = [[0, 0, 10, 10]]


def hand_table(extra_images: int = 0, **overrides: object) -> BoxTable:
    n = 2 + extra_images
    options: dict[str, object] = {"boxes": [GT, GT] + [[]] * extra_images, "labels": [[0], [0]] + [[]] * extra_images}
    options.update(overrides)
    return BoxTable.from_arrays(["A", "B"], [f"{i}.png" for i in range(n)], **options)  # type: ignore[arg-type]


def hand_predictions() -> list[dict[str, object]]:
    return [{"boxes": np.array([[0, 0, 10, 10]]), "scores": np.array([0.9]), "labels": np.array([0])},
            {"boxes": np.array([[20, 20, 30, 30], [0, 0, 10, 6.25]]), "scores": np.array([0.8, 0.7]),
             "labels": np.array([0, 0])}]


def test_against_the_hand_computation() -> None:
    scores = detection_scores(hand_predictions(), hand_table())
    assert scores.ap50[0] == pytest.approx(AP50, abs=1e-9)
    assert scores.ap[0] == pytest.approx(AP, abs=1e-9)
    assert math.isnan(scores.ap50[1]) and math.isnan(scores.ap[1])  # B has no box: no AP, and the means skip it
    assert scores.map50 == pytest.approx(AP50) and scores.map == pytest.approx(AP)
    assert scores.n_boxes.tolist() == [2, 0] and scores.n_detections.tolist() == [3, 0]
    out = scores.to_dict()
    assert out["classes"]["B"]["ap50"] is None and out["map50"] == pytest.approx(AP50)
    fast = detection_scores(hand_predictions(), hand_table(), ap50_only=True)  # the bootstraps' evaluation
    assert fast.ap50[0] == pytest.approx(AP50, abs=1e-9) and fast.ap[0] == pytest.approx(AP50, abs=1e-9)


def test_a_detection_in_an_unknown_image_class_changes_nothing() -> None:
    # A third image where A is unknown, with a confident detection of A: dropped, so AP is unchanged.
    table = hand_table(extra_images=1, known=[[True, True], [True, True], [False, True]])
    predictions = hand_predictions() + [{"boxes": [[0, 0, 5, 5]], "scores": [0.99], "labels": [0]}]
    scores = detection_scores(predictions, table)
    assert scores.ap50[0] == pytest.approx(AP50, abs=1e-9) and scores.ap[0] == pytest.approx(AP, abs=1e-9)
    assert scores.n_dropped.tolist() == [1, 0] and scores.n_images.tolist() == [2, 3]
    # The same detection where A is known (verified absent) is a false positive ranked first: at IoU 0.5 the
    # precision is 0/1, 1/2, 1/3, 2/4 at recall 0, 0.5, 0.5, 1; interpolated: 1/2 for every r in [0, 1].
    known = detection_scores(predictions, hand_table(extra_images=1))
    assert known.ap50[0] == pytest.approx(0.5, abs=1e-9)


def test_a_detection_on_an_ignored_box_is_neither_tp_nor_fp() -> None:
    # Image 2 also holds a crowd (ignored) box of A far away, with a confident detection on it.
    table = hand_table(boxes=[GT, [*GT, [40, 40, 60, 60]]], labels=[[0], [0, 0]], ignore=[[False], [False, True]])
    predictions = hand_predictions()
    predictions[1] = {"boxes": [[40, 40, 60, 60], [20, 20, 30, 30], [0, 0, 10, 6.25]], "scores": [0.95, 0.8, 0.7],
                      "labels": [0, 0, 0]}
    scores = detection_scores(predictions, table)
    assert scores.ap50[0] == pytest.approx(AP50, abs=1e-9) and scores.n_boxes.tolist() == [2, 0]


def test_perfect_and_empty_predictions() -> None:
    table = hand_table()
    perfect = [{"boxes": GT, "scores": [1.0], "labels": [0]}] * 2
    assert detection_scores(perfect, table).map == pytest.approx(1.0)
    nothing = detection_scores([{}, {}], table)
    assert nothing.ap50[0] == 0.0 and math.isnan(nothing.ap50[1])


def test_prediction_checks() -> None:
    with pytest.raises(ValueError, match="2 images"):
        detection_scores([{}], hand_table())
    with pytest.raises(ValueError, match="class indices"):
        detection_scores([{"boxes": GT, "scores": [1.0], "labels": [5]}, {}], hand_table())
    with pytest.raises(ValueError, match="finite"):
        detection_scores([{"boxes": GT, "scores": [float("nan")], "labels": [0]}, {}], hand_table())


def test_agrees_with_pycocotools_on_the_files_write_coco_json_writes(tmp_path) -> None:
    """All known: per-class AP equals COCOeval's on the instances and results files (ids, boxes, crowd)."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from multitask.detection.coco_json import write_coco_json

    rng = np.random.default_rng(4)
    boxes, labels, ignore, predictions = [], [], [], []
    for _ in range(12):
        k = int(rng.integers(0, 4))
        xy = rng.uniform(0, 60, (k, 2))
        truth = np.concatenate([xy, xy + rng.uniform(5, 30, (k, 2))], axis=1)
        boxes.append(truth)
        labels.append(rng.integers(0, 3, k))
        ignore.append(rng.random(k) < 0.15)
        noisy = np.concatenate([truth + rng.normal(0, 3, truth.shape), rng.uniform(0, 60, (2, 4)) + [0, 0, 10, 10]])
        noisy[:, 2:] = np.maximum(noisy[:, 2:], noisy[:, :2] + 1)
        predictions.append({"boxes": noisy, "scores": rng.random(len(noisy)),
                            "labels": np.concatenate([labels[-1], rng.integers(0, 3, 2)])})
    table = BoxTable.from_arrays(["a", "b", "c"], [f"{i}.png" for i in range(12)], boxes=boxes, labels=labels,
                                 ignore=ignore)
    write_coco_json(table, tmp_path / "gt.json")
    write_coco_json(predictions, tmp_path / "dt.json", table=table)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(tmp_path / "gt.json"))
        evaluation = COCOeval(gt, gt.loadRes(str(tmp_path / "dt.json")), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
    precision = evaluation.eval["precision"][:, :, :, 0, -1]  # (IoU, recall, class); -1 undefined
    scores = detection_scores(predictions, table)
    for k in range(3):
        reference = precision[:, :, k]
        assert scores.ap[k] == pytest.approx(reference[reference > -1].mean(), abs=1e-6)
        assert scores.ap50[k] == pytest.approx(reference[0][reference[0] > -1].mean(), abs=1e-6)
