"""The detector: torchvision's FCOS on a feature pyramid over one of the project's trunks, one output per class.

Everything but the classification loss is torchvision's: the FCOS head, the centre-sampling matching, the box
coding, the GIoU and centerness losses, the post-processing (score threshold, top-k, NMS). The classification
loss is masked per (image, class) where the class is unknown (:mod:`multitask.detection.loss`).

The trunk is built by name from the project's registry (``small_cnn``, ``mobilenet_v2`` with local ImageNet
weights, ``resnet18`` …); the layers of its convolutional body whose output has the last `levels` distinct
strides feed torchvision's FPN (which adds one max-pooled level, or P6 and P7). Images come in as floats in
[0, 1], squashed to ``image_size`` (the dataset does that); the detector normalises them with the ImageNet
statistics.

>>> from multitask.config import DetectionConfig, ModelConfig
>>> det = build_detector(ModelConfig(trunk="small_cnn", trunk_options={"width": 8, "depth": 3}),
...                      DetectionConfig(fpn_channels=32, head_convs=1), n_classes=2, image_size=64)
>>> det.strides, det.num_classes
((2, 4, 8, 16), 2)
>>> _ = det.eval()
>>> sorted(det([torch.rand(3, 64, 64)])[0])
['boxes', 'labels', 'scores']
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.models.detection import FCOS
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.ops import misc as misc_nn_ops
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

from multitask.config import DetectionConfig, ModelConfig
from multitask.errors import ConfigError
from multitask.models.network import IMAGENET_MEAN, IMAGENET_STD
from multitask.models.trunks import build_trunk, trunk_takes_images

PROBE_SIZE = 256
"""Image size of the dry forward pass that measures the strides of a trunk's layers."""


def trunk_body(trunk: nn.Module, name: str) -> nn.Sequential:
    """The convolutional body of a trunk as a Sequential whose children run one after the other: a trunk's
    ``features`` (small_cnn, MobileNet, EfficientNet, VGG, ConvNeXt …) or a ResNet's stem and stages."""
    model = getattr(trunk, "model", trunk)  # TorchvisionTrunk wraps the torchvision model
    features = getattr(model, "features", None)
    if isinstance(features, nn.Sequential):
        return features
    if all(hasattr(model, k) for k in ("conv1", "layer1", "layer4")):  # ResNet / ResNeXt / Wide ResNet
        return nn.Sequential(OrderedDict((k, getattr(model, k)) for k in
                                         ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")))
    raise ConfigError(f"model.trunk {name!r} cannot be a detection backbone: it has no convolutional body "
                      "(a 'features' Sequential or ResNet stages); use small_cnn, mobilenet_v2, mobilenet_v3_*, "
                      "efficientnet_*, resnet* …")


def stride_layers(body: nn.Sequential, levels: int) -> list[tuple[str, int, int]]:
    """(child name, stride, channels) of the last child of each of the `levels` deepest distinct strides.

    >>> body = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.Conv2d(4, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 8, 3, 2, 1))
    >>> stride_layers(body, 2)
    [('2', 4, 8), ('3', 8, 8)]
    """
    was_training = body.training
    body.eval()
    x = torch.zeros(1, 3, PROBE_SIZE, PROBE_SIZE)
    last: dict[int, tuple[str, int, int]] = {}
    with torch.no_grad():
        for name, child in body.named_children():
            x = child(x)
            if x.dim() == 4:
                stride = PROBE_SIZE // x.shape[-1]
                last[stride] = (name, stride, x.shape[1])
    body.train(was_training)
    chosen = sorted(last.values(), key=lambda item: item[1])[-levels:]
    if len(chosen) < levels:
        raise ConfigError(f"detection.levels {levels}: the trunk has only {len(chosen)} distinct strides")
    return chosen


class Detector(FCOS):
    """torchvision's FCOS with the masked classification loss; ``classes`` and the strides are attributes.

    In training mode it takes targets with ``boxes`` (k, 4), ``labels`` (k,), ``ignore`` (k,) bool and ``known``
    (C,) bool per image and returns the losses: ``classification`` (C,) — one loss per class, summed by the
    weighting method — ``bbox_regression`` and ``bbox_ctrness``.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, strides: tuple[int, ...], image_size: int,
                 config: DetectionConfig) -> None:
        from multitask.detection.loss import MaskedFCOSHead

        anchors = AnchorGenerator(tuple((s,) for s in strides), ((1.0,),) * len(strides))
        head = MaskedFCOSHead(backbone.out_channels, 1, num_classes, num_convs=config.head_convs)
        super().__init__(backbone, num_classes, min_size=image_size, max_size=image_size,
                         image_mean=list(IMAGENET_MEAN), image_std=list(IMAGENET_STD), anchor_generator=anchors,
                         head=head, center_sampling_radius=config.center_sampling_radius,
                         score_thresh=config.score_threshold, nms_thresh=config.nms_threshold,
                         detections_per_img=config.detections_per_image, topk_candidates=config.topk_candidates)
        self.num_classes = num_classes
        self.strides = tuple(int(s) for s in strides)
        self.image_size = image_size

    def compute_loss(self, targets: list[dict[str, Tensor]], head_outputs: dict[str, Tensor],
                     anchors: list[Tensor], num_anchors_per_level: list[int]) -> dict[str, Tensor]:
        """torchvision's matching on the boxes that are targets: ignored boxes, and boxes of a class unknown in
        their image, are left out of matching (they become ``ignore_boxes`` for the classification mask)."""
        from multitask.detection.loss import split_targets

        return super().compute_loss([split_targets(t, self.num_classes) for t in targets], head_outputs, anchors,
                                    num_anchors_per_level)


def _freeze(body: nn.Sequential, trainable_layers: int | None) -> None:
    if trainable_layers is None:
        return
    children = list(body.children())
    for child in children[:max(len(children) - trainable_layers, 0)]:
        for parameter in child.parameters():
            parameter.requires_grad_(False)


def _frozen_batchnorm(module: nn.Module) -> nn.Module:
    """BatchNorm layers replaced by torchvision's FrozenBatchNorm2d (pretrained statistics kept, as torchvision's
    detectors do: detection batches are small)."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = misc_nn_ops.FrozenBatchNorm2d(child.num_features, eps=child.eps)
            frozen.weight.copy_(child.weight.detach())
            frozen.bias.copy_(child.bias.detach())
            frozen.running_mean.copy_(child.running_mean)
            frozen.running_var.copy_(child.running_var)
            setattr(module, name, frozen)
        else:
            _frozen_batchnorm(child)
    return module


def build_detector(model: ModelConfig, detection: DetectionConfig, n_classes: int, image_size: int, *,
                   load_weights: bool = True) -> Detector:
    """The detector a config describes: trunk (with its weights unless `load_weights` is False) → FPN → FCOS."""
    if not trunk_takes_images(model.trunk):
        raise ConfigError(f"model.trunk {model.trunk!r} takes feature vectors; detection needs an image trunk")
    options: dict[str, Any] = dict(model.trunk_options)
    pretrained = bool(model.weights and load_weights)
    if pretrained:
        options["weights"] = model.weights
    trunk = build_trunk(model.trunk, **options)
    body = trunk_body(trunk, model.trunk)
    if model.weights:  # the same structure with or without loading, so saved weights fit
        body = _frozen_batchnorm(body)
    layers = stride_layers(body, detection.levels)
    _freeze(body, detection.trainable_layers)
    extra = LastLevelP6P7(detection.fpn_channels, detection.fpn_channels) if detection.p6p7 else None
    backbone = BackboneWithFPN(body, {name: str(k) for k, (name, _, _) in enumerate(layers)},
                               [channels for _, _, channels in layers], detection.fpn_channels, extra_blocks=extra)
    strides = [stride for _, stride, _ in layers]
    # torchvision's FPN adds levels on top: P6 and P7, or by default one max-pooled level
    strides += [strides[-1] * 2, strides[-1] * 4] if detection.p6p7 else [strides[-1] * 2]
    if detection.fpn_channels % 32:
        raise ConfigError(f"detection.fpn_channels {detection.fpn_channels}: must be a multiple of 32 "
                          "(the FCOS head's GroupNorm has 32 groups)")
    return Detector(backbone, n_classes, tuple(strides), image_size, detection)


def shared_parameters(detector: Detector) -> list[nn.Parameter]:
    """The trunk's parameters (the part every class shares before the FPN and the head)."""
    return list(detector.backbone.body.parameters())

