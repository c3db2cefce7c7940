"""The detector, its masked loss, the data pipeline, paired intervals and ONNX export (multitask.detection)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from multitask.config import DetectionConfig, ModelConfig, build_config
from multitask.detection.boxes import BoxTable
from multitask.detection.model import build_detector, stride_layers, trunk_body
from multitask.errors import ConfigError

SIZE = 32


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_tests_run_on_one_torch_thread() -> None:
    assert torch.get_num_threads() == 1  # the conftest fixture asked for by pytestmark


def tiny_detector(n_classes: int = 3, seed: int = 0):
    torch.manual_seed(seed)
    return build_detector(ModelConfig(trunk="small_cnn", trunk_options={"width": 8, "depth": 3}),
                          DetectionConfig(fpn_channels=32, head_convs=1), n_classes, SIZE).train()


def target(boxes, labels, known, ignore=None):
    boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    ignore = ignore if ignore is not None else [False] * len(boxes)
    return {"boxes": boxes, "labels": torch.tensor(labels, dtype=torch.int64).reshape(-1),
            "known": torch.tensor(known), "ignore": torch.tensor(ignore)}


def losses_and_logit_grad(detector, images, targets):
    """The detector's losses and the gradient of their sum w.r.t. the classification logits (N, L, C)."""
    captured = {}

    def hook(module, inputs, output):
        output.retain_grad()
        captured["logits"] = output

    handle = detector.head.classification_head.register_forward_hook(hook)
    try:
        losses = detector(images, targets)
        (losses["classification"].sum() + losses["bbox_regression"] + losses["bbox_ctrness"]).backward()
    finally:
        handle.remove()
    return {k: v.detach() for k, v in losses.items()}, captured["logits"].grad


def test_unknown_class_contributes_exactly_nothing():
    detector = tiny_detector()
    torch.manual_seed(1)
    images = [torch.rand(3, SIZE, SIZE) for _ in range(2)]
    targets = [target([[2, 2, 14, 14]], [0], [True, False, True]),  # class 1 unknown in image 0
               target([[4, 4, 20, 20], [18, 18, 30, 30]], [1, 2], [True, True, True])]
    losses, grad = losses_and_logit_grad(detector, images, targets)
    assert torch.count_nonzero(grad[0, :, 1]) == 0  # exactly zero: neither positive nor background loss
    assert torch.count_nonzero(grad[0, :, 0]) > 0 and torch.count_nonzero(grad[1, :, 1]) > 0
    # Changing the unknown class's targets (a box of class 1 in image 0) changes nothing at all.
    changed = [target([[2, 2, 14, 14], [16, 16, 30, 28]], [0, 1], [True, False, True]), targets[1]]
    again, grad_again = losses_and_logit_grad(detector, images, changed)
    for key in losses:
        assert torch.equal(losses[key], again[key]), key
    assert torch.equal(grad, grad_again)
    # The class's loss is the same as if image 0 were not there for class 1 at all: with it known (and
    # absent) the loss of class 1 grows by exactly image 0's background term.
    known, _ = losses_and_logit_grad(detector, images, [target([[2, 2, 14, 14]], [0], [True, True, True]),
                                                         targets[1]])
    assert known["classification"][1] > losses["classification"][1]
    assert torch.equal(known["classification"][[0, 2]], losses["classification"][[0, 2]])


def test_all_known_is_torchvision_fcos():
    """With every class known and no ignored box, the loss is torchvision's FCOS loss (summed over classes)."""
    from torchvision.models.detection import FCOS
    from torchvision.models.detection.fcos import FCOSHead

    detector = tiny_detector()
    stock = FCOS(copy.deepcopy(detector.backbone), 3, min_size=SIZE, max_size=SIZE,
                 anchor_generator=detector.anchor_generator,
                 head=FCOSHead(32, 1, 3, num_convs=1)).train()
    stock.load_state_dict(detector.state_dict())
    torch.manual_seed(2)
    images = [torch.rand(3, SIZE, SIZE) for _ in range(2)]
    targets = [target([[2, 2, 14, 14]], [0], [True] * 3), target([[4, 4, 20, 20], [18, 18, 30, 30]], [1, 2],
                                                                [True] * 3)]
    ours = detector(images, targets)
    theirs = stock(images, [{"boxes": t["boxes"], "labels": t["labels"]} for t in targets])
    assert torch.allclose(ours["classification"].sum(), theirs["classification"], rtol=1e-5)
    for key in ("bbox_regression", "bbox_ctrness"):
        assert torch.allclose(ours[key], theirs[key], rtol=1e-6)


def test_ignored_box_is_neither_target_nor_background():
    detector = tiny_detector()
    torch.manual_seed(3)
    images = [torch.rand(3, SIZE, SIZE)]
    plain = [target([[2, 2, 12, 12]], [0], [True] * 3)]
    with_ignored = [target([[2, 2, 12, 12], [16, 16, 30, 30]], [0, 2], [True] * 3, ignore=[False, True])]
    base, _ = losses_and_logit_grad(detector, images, plain)
    losses, grad = losses_and_logit_grad(detector, images, with_ignored)
    for key in ("bbox_regression", "bbox_ctrness"):  # not matched: the box losses are those without it
        assert torch.equal(base[key], losses[key])
    anchors = detector.anchor_generator(detector.transform(images)[0], list(detector.backbone(
        detector.transform(images)[0].tensors).values()))[0]
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    inside = (centres > 16).all(dim=1) & (centres < 30).all(dim=1)
    assert inside.any()
    assert torch.count_nonzero(grad[0, inside, 2]) == 0  # no background loss for class 2 inside its ignored box
    assert torch.count_nonzero(grad[0, inside, 1]) == int(inside.sum())  # other classes: background as usual
    assert losses["classification"][2] < base["classification"][2]


def test_strides_and_bodies():
    detector = tiny_detector()
    assert detector.strides == (2, 4, 8, 16)
    from multitask.models.trunks import build_trunk

    resnet = trunk_body(build_trunk("resnet18"), "resnet18")
    assert [s for _, s, _ in stride_layers(resnet, 3)] == [8, 16, 32]
    with pytest.raises(ConfigError, match="detection backbone"):
        trunk_body(build_trunk("mlp", in_features=3), "mlp")
    with pytest.raises(ConfigError, match="multiple of 32"):
        build_detector(ModelConfig(trunk="small_cnn", trunk_options={"width": 8, "depth": 3}),
                       DetectionConfig(fpn_channels=48), 2, SIZE)


def test_trainable_layers_freeze_the_start_of_the_body():
    detector = build_detector(ModelConfig(trunk="small_cnn", trunk_options={"width": 8, "depth": 3}),
                              DetectionConfig(fpn_channels=32, head_convs=1, trainable_layers=7), 2, SIZE)
    children = list(detector.backbone.body.children())
    trainable = [any(p.requires_grad for p in c.parameters()) for c in children if list(c.parameters())]
    assert trainable == [False] * (len(trainable) - sum(trainable)) + [True] * sum(trainable)
    assert 0 < sum(trainable) < len(trainable)
    assert all(p.requires_grad for p in detector.head.parameters())


def test_gradient_weightings_are_refused():
    from multitask.detection.training import check_weighting

    assert check_weighting("equal", 3, {}) is not None
    assert check_weighting("uncertainty", 3, {}) is not None
    for name in ("mgda", "famo"):
        with pytest.raises(ConfigError, match="not available for detection"):
            check_weighting(name, 3, {})


def write_scenes(folder: Path, n: int = 6) -> BoxTable:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    names, boxes, labels = [], [], []
    for i in range(n):
        array = np.full((20, 40, 3), 120, np.uint8)
        array[2:10, 4:16] = (220, 30, 30)
        Image.fromarray(array).save(folder / f"{i}.png")
        names.append(f"{i}.png")
        boxes.append([[4, 2, 16, 10]])
        labels.append([0])
    return BoxTable.from_arrays(["red", "blue"], names, boxes, labels, split=["train"] * (n - 2) + ["val", "test"],
                                image_root=folder, known=[[True, i % 2 == 0] for i in range(n)])


def test_dataset_scales_and_flips_boxes(tmp_path: Path):
    from multitask.detection.training import DetectionDataset, collate

    table = write_scenes(tmp_path)
    data = DetectionDataset(table, 16)
    image, tgt, index = data[1]
    assert image.shape == (3, 16, 16) and float(image.min()) >= 0 and float(image.max()) <= 1
    assert tgt["boxes"][0].tolist() == pytest.approx([1.6, 1.6, 6.4, 8.0])  # (4, 2, 16, 10) × (16/40, 16/20)
    assert tgt["known"].tolist() == [True, False] and index == 1
    torch.manual_seed(0)
    flipped = DetectionDataset(table, 16, augment=True)
    boxes = {tuple(np.round(flipped[0][1]["boxes"][0].double().numpy(), 4).tolist()) for _ in range(20)}
    assert boxes == {(1.6, 1.6, 6.4, 8.0), (9.6, 1.6, 14.4, 8.0)}  # as is, or mirrored: x → 16 − x
    images, targets, indices = collate([data[0], data[1]])
    assert len(images) == len(targets) == 2 and indices == [0, 1]


def test_detections_files(tmp_path: Path):
    import json

    import pandas as pd

    from multitask.detection.predict import draw_detections, write_detections

    table = write_scenes(tmp_path / "img", n=2)
    found = [{"boxes": np.array([[4.0, 2, 16, 10], [0, 0, 5, 5]]), "scores": np.array([0.9, 0.1]),
              "labels": np.array([0, 1])}, {"boxes": np.zeros((0, 4)), "scores": np.zeros(0),
                                            "labels": np.zeros(0, int)}]
    write_detections(tmp_path / "d.csv", list(table.images), found, table.classes, min_score=0.2)
    frame = pd.read_csv(tmp_path / "d.csv")
    assert frame.to_dict("records") == [{"image": "0.png", "class": "red", "score": 0.9, "x1": 4.0, "y1": 2.0,
                                         "x2": 16.0, "y2": 10.0}]
    write_detections(tmp_path / "d.json", list(table.images), found, table.classes)
    coco = json.loads((tmp_path / "d.json").read_text())
    assert [a["bbox"] for a in coco["annotations"]] == [[4.0, 2.0, 12.0, 8.0], [0.0, 0.0, 5.0, 5.0]]
    assert [c["name"] for c in coco["categories"]] == ["red", "blue"] and len(coco["images"]) == 2
    out = draw_detections(table.paths()[0], found[0], table.classes, tmp_path / "drawn.png")
    from PIL import Image

    drawn = np.asarray(Image.open(out))
    assert drawn.shape == (20, 40, 3) and (drawn != np.asarray(Image.open(table.paths()[0]))).any()


def test_paired_difference_known_answer():
    from multitask.detection.compare import paired_detection_difference

    table = BoxTable.from_arrays(["car"], ["a", "b", "c", "d"], boxes=[[[0, 0, 9, 9]]] * 4, labels=[[0]] * 4)
    hit = {"boxes": np.array([[0, 0, 9, 9.0]]), "scores": np.array([0.9]), "labels": np.array([0])}
    miss = {"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "labels": np.zeros(0, int)}
    same, mean = paired_detection_difference(table, [hit] * 4, [hit] * 4, n_boot=10)
    assert (same[0].mean, same[0].low, same[0].high) == (0.0, 0.0, 0.0) and not mean.significant
    per_class, _ = paired_detection_difference(table, [hit, miss, miss, miss], [hit] * 4, n_boot=20)
    assert per_class[0].mean > 0.7 and per_class[0].low > 0  # recall 1/4 → 1: AP +0.75 (101-point COCO)


@pytest.mark.slow
def test_onnx_export_matches_eager(tmp_path: Path):
    import onnxruntime

    from multitask.detection.export import DetectorOutputs, export_detector_onnx
    from multitask.detection.run import DetectionRun

    detector = tiny_detector(2).eval()
    config = build_config({"data": {"kind": "detection", "image_size": SIZE},
                           "model": {"trunk": "small_cnn", "trunk_options": {"width": 8, "depth": 3}},
                           "detection": {"fpn_channels": 32, "head_convs": 1}})
    path = export_detector_onnx(DetectionRun(tmp_path, config, ("a", "b"), detector), tmp_path / "det.onnx")
    images = torch.rand(3, 3, SIZE, SIZE)
    session = onnxruntime.InferenceSession(str(path))
    boxes, scores = session.run(None, {"images": images.numpy()})
    with torch.no_grad():
        want_boxes, want_scores = DetectorOutputs(detector)(images)
        eager = detector(list(images))
    np.testing.assert_allclose(scores, want_scores.numpy(), atol=1e-5)
    np.testing.assert_allclose(boxes, want_boxes.numpy(), atol=1e-3)
    for k in range(3):  # the eager detector's best detection is the graph's highest score
        assert abs(float(eager[k]["scores"].max()) - float(scores[k].max())) < 1e-5
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["classes"] == '["a", "b"]' and meta["image_size"] == str(SIZE)
