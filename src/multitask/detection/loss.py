"""The FCOS loss with unknown annotations: the classification loss masked per (image, class).

torchvision's FCOS head computes, per image and location, a sigmoid focal loss for every class (1 for the
class of the matched box, 0 — background — for all others), summed and divided by the number of foreground
locations in the batch. Here that per-location, per-class loss is multiplied by ``known[i, c]``: a class whose
annotation is unknown in image i contributes neither positive nor background loss there. Locations inside an
*ignored* box (VOC ``difficult``, COCO ``iscrowd``) are not background for that box's class either. The box
regression (GIoU) and centerness losses are torchvision's, over the locations matched to boxes that exist
(ignored boxes and boxes of unknown classes are left out of matching).

>>> import torch
>>> logits, targets = torch.zeros(1, 3, 2), torch.tensor([[[1.0, 0], [0, 0], [0, 0]]])
>>> weight = class_weights(torch.tensor([[True, False]]), torch.zeros(1, 3, 2, dtype=torch.bool), targets)
>>> loss = masked_focal_loss(logits, targets, weight, num_foreground=1)  # p = 0.5 everywhere
>>> round(float(loss[0]), 4), float(loss[1])  # 0.25·0.5²·ln 2 + 2 · 0.75·0.5²·ln 2; class 1 unknown: exactly 0
(0.3033, 0.0)
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.models.detection.fcos import FCOSHead
from torchvision.ops import sigmoid_focal_loss


def split_targets(target: dict[str, Tensor], num_classes: int) -> dict[str, Tensor]:
    """One image's target for matching: ``boxes`` / ``labels`` only of boxes that are targets (not ignored, of
    a known class); the others as ``ignore_boxes`` / ``ignore_labels``; ``known`` (C,) (all True if absent)."""
    boxes, labels = target["boxes"], target["labels"]
    known = target.get("known")
    if known is None:
        known = torch.ones(num_classes, dtype=torch.bool, device=boxes.device)
    ignore = target.get("ignore")
    drop = torch.zeros(len(labels), dtype=torch.bool, device=boxes.device) if ignore is None else ignore.bool()
    drop = drop | ~known[labels]
    return {"boxes": boxes[~drop], "labels": labels[~drop], "ignore_boxes": boxes[drop],
            "ignore_labels": labels[drop], "known": known}


def class_weights(known: Tensor, inside_ignored: Tensor, targets: Tensor) -> Tensor:
    """(N, L, C) weight of each location's loss for each class: ``known[n, c]``, and 0 for the background of
    class c at locations inside an ignored box of class c (a positive stays a positive)."""
    weight = known[:, None, :].to(targets.dtype).expand_as(targets)
    return weight * (1.0 - (inside_ignored & (targets == 0)).to(targets.dtype))


def masked_focal_loss(logits: Tensor, targets: Tensor, weight: Tensor, num_foreground: int,
                      alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """Per-class focal loss (C,): Σ over images and locations of weight × focal loss, / max(1, foreground).

    With every weight 1 its sum over classes is torchvision's FCOS classification loss.
    """
    loss = sigmoid_focal_loss(logits, targets, alpha=alpha, gamma=gamma, reduction="none")
    return (loss * weight).sum(dim=(0, 1)) / max(1, num_foreground)


def inside_boxes(points: Tensor, boxes: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """(L, C) bool: location l lies inside some box of class c."""
    out = torch.zeros(len(points), num_classes, dtype=torch.bool, device=points.device)
    if len(boxes) == 0:
        return out
    x, y = points[:, 0:1], points[:, 1:2]
    inside = (x > boxes[:, 0]) & (x < boxes[:, 2]) & (y > boxes[:, 1]) & (y < boxes[:, 3])  # (L, B)
    hits = inside.float() @ torch.nn.functional.one_hot(labels, num_classes).float()
    return hits > 0


class MaskedFCOSHead(FCOSHead):
    """torchvision's FCOS head; its loss has the classification part masked per (image, class) and returned per
    class (``classification``: (C,)), the box parts unchanged."""

    def compute_loss(self, targets: list[dict[str, Tensor]], head_outputs: dict[str, Tensor],
                     anchors: list[Tensor], matched_idxs: list[Tensor]) -> dict[str, Tensor]:
        losses = super().compute_loss(targets, head_outputs, anchors, matched_idxs)  # box losses: torchvision's
        cls_logits = head_outputs["cls_logits"]  # (N, L, C)
        n_classes = cls_logits.shape[-1]
        gt = torch.zeros_like(cls_logits)
        ignored = torch.zeros(cls_logits.shape, dtype=torch.bool, device=cls_logits.device)
        known = torch.stack([t["known"] for t in targets]).to(cls_logits.device)
        foreground = 0
        for i, (target, matched, points) in enumerate(zip(targets, matched_idxs, anchors, strict=True)):
            positive = matched >= 0
            foreground += int(positive.sum())
            if positive.any():
                gt[i, positive, target["labels"][matched[positive]]] = 1.0
            centres = (points[:, :2] + points[:, 2:]) / 2
            ignored[i] = inside_boxes(centres, target["ignore_boxes"], target["ignore_labels"], n_classes)
        weight = class_weights(known, ignored, gt)
        losses["classification"] = masked_focal_loss(cls_logits, gt, weight, foreground)
        return losses
