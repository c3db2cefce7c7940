"""ONNX export of a detector: the network up to its per-location outputs, post-processing left to the consumer.

torchvision's FCOS post-processing (score threshold, top-k per level, per-class NMS) has data-dependent
shapes; the exported graph stops just before it. It takes ``images`` (batch × 3 × S × S floats in [0, 1], S the
run's ``data.image_size``) and gives, for each of the L locations of the pyramid, ``boxes`` (batch × L × 4:
x1, y1, x2, y2 in pixels of the S × S input) and ``scores`` (batch × L × C: √(sigmoid(class logit) ×
sigmoid(centerness)), FCOS's detection score). A consumer keeps scores above a threshold and applies NMS per
class (``score_threshold`` and ``nms_threshold`` are in the metadata with the classes), then scales boxes to its
image. The tests check the graph against onnxruntime and the highest score against the eager detector's.

>>> from multitask.config import DetectionConfig, ModelConfig
>>> from multitask.detection.model import build_detector
>>> det = build_detector(ModelConfig(trunk="small_cnn", trunk_options={"width": 8, "depth": 3}),
...                      DetectionConfig(fpn_channels=32, head_convs=1), n_classes=2, image_size=32)
>>> boxes, scores = DetectorOutputs(det)(torch.rand(1, 3, 32, 32))
>>> tuple(boxes.shape), tuple(scores.shape)  # 16² + 8² + 4² + 2² locations
((1, 340, 4), (1, 340, 2))
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection.image_list import ImageList

from multitask.detection.model import Detector
from multitask.detection.run import DetectionRun, load_detection_run


class DetectorOutputs(nn.Module):
    """A detector as a plain graph: normalise → pad to a multiple of 32 (as torchvision's transform) →
    backbone + FPN → FCOS head → boxes decoded at the fixed locations of an S × S input, and scores."""

    def __init__(self, detector: Detector) -> None:
        super().__init__()
        self.detector = detector.eval()
        size = detector.image_size
        transform = detector.transform
        self.register_buffer("mean", torch.tensor(transform.image_mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(transform.image_std).view(1, 3, 1, 1))
        divisible = transform.size_divisible
        self.padded = (size + divisible - 1) // divisible * divisible
        self.size = size
        with torch.no_grad():
            probe = torch.zeros(1, 3, self.padded, self.padded)
            features = list(detector.backbone(probe).values())
            anchors = detector.anchor_generator(ImageList(probe, [(size, size)]), features)[0]
        self.register_buffer("anchors", anchors)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        x = (images - self.mean) / self.std
        pad = self.padded - self.size
        if pad:
            x = F.pad(x, (0, pad, 0, pad))
        features = list(self.detector.backbone(x).values())
        out = self.detector.head(features)
        anchors = self.anchors.unsqueeze(0).expand(images.shape[0], -1, -1)
        boxes = self.detector.box_coder.decode(out["bbox_regression"], anchors).clamp(0, self.size)
        scores = torch.sqrt(torch.sigmoid(out["cls_logits"]) * torch.sigmoid(out["bbox_ctrness"]))
        return boxes, scores


def export_detector_onnx(run: str | Path | DetectionRun, path: str | Path) -> Path:
    """Write `path` (.onnx) for a detection run: input ``images``, outputs ``boxes`` and ``scores`` (batch size
    free); metadata ``classes``, ``image_size``, ``score_threshold``, ``nms_threshold`` (JSON / numbers)."""
    import onnx

    run = run if isinstance(run, DetectionRun) else load_detection_run(run)
    path = Path(path)
    module = DetectorOutputs(run.detector).eval()
    size = run.detector.image_size
    batch = torch.export.Dim("batch", min=1)
    program = torch.onnx.export(module, (torch.rand(2, 3, size, size),), input_names=["images"],
                                output_names=["boxes", "scores"], dynamic_shapes={"images": {0: batch}},
                                dynamo=True, verbose=False)
    program.save(str(path))
    model = onnx.load(str(path))
    for key, value in (("classes", json.dumps(list(run.classes))), ("image_size", str(size)),
                       ("score_threshold", str(run.config.detection.score_threshold)),
                       ("nms_threshold", str(run.config.detection.nms_threshold)), ("kind", "detection")):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path
