"""Training a detector with Lightning: the dataset of (image, target), the data module, the LightningModule and
the Trainer from :func:`multitask.trainer.run_trainer` (the same callbacks, checkpoints, progress and strategy
plumbing as label tables).

Images are squashed to ``data.image_size`` (no crop), their boxes scaled with them; training augmentation is a
horizontal flip (``data.hflip``) and mild colour jitter. A target holds ``boxes`` (k, 4) in the squashed image's
pixels, ``labels`` (k,), ``ignore`` (k,) and ``known`` (C,): the per-(image, class) mask of the loss.

>>> from multitask.detection.boxes import BoxTable
>>> table = BoxTable.from_arrays(["car"], ["a.png"], boxes=[[[0, 0, 20, 10]]], labels=[[0]], sizes=[[40, 20]])
>>> target = scaled_target(table, 0, (40, 20), 10)
>>> target["boxes"].tolist(), target["known"].tolist()
([[0.0, 0.0, 5.0, 5.0]], [True])
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from multitask.config import DataConfig, DetectionConfig, ModelConfig, RunConfig, TrainConfig
from multitask.data.datasets import UnreadableImageError
from multitask.data.images import read_rgb
from multitask.detection.boxes import BoxTable
from multitask.detection.model import Detector, build_detector
from multitask.errors import ConfigError, LabelError
from multitask.optimization import recipe_optimizer
from multitask.trainer import ShuffleState, epoch_of_score, run_trainer
from multitask.weighting import Weighting, build_weighting

log = logging.getLogger(__name__)

Target = dict[str, Tensor]


def read_image(path: str | Path, size: int) -> tuple[Tensor, tuple[int, int]]:
    """An image file as uint8 (3, size, size), squashed, and its original (width, height)."""
    try:
        array = read_rgb(path)
    except LabelError as error:
        raise UnreadableImageError(f"{error.reason}", file=path) from None
    height, width = array.shape[:2]
    image = Image.fromarray(array).resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous(), (width, height)


def scaled_target(table: BoxTable, i: int, original: tuple[int, int], size: int) -> Target:
    """Image i's target with its boxes scaled from the original (width, height) to the squashed size."""
    scale = np.array([size / original[0], size / original[1]] * 2, dtype=np.float32)
    boxes = np.asarray(table.boxes[i], np.float32).reshape(-1, 4) * scale
    boxes = np.clip(boxes, 0, size)
    return {"boxes": torch.from_numpy(boxes), "labels": torch.from_numpy(np.asarray(table.labels[i], np.int64)),
            "ignore": torch.from_numpy(np.asarray(table.ignore[i], bool)),
            "known": torch.from_numpy(np.asarray(table.known[i], bool))}


class DetectionDataset(Dataset):
    """(image float (3, S, S) in [0, 1], target, index) for each image of a BoxTable; decoded once when cached."""

    def __init__(self, table: BoxTable, image_size: int, *, augment: bool = False, hflip: bool = True,
                 cache: bool = True) -> None:
        self.table, self.size, self.augment, self.hflip = table, image_size, augment, hflip
        self.paths = table.paths()
        self.cached: list[tuple[Tensor, tuple[int, int]]] | None = None
        if cache:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(4) as pool:
                self.cached = list(pool.map(lambda p: read_image(p, image_size), self.paths))
        self.jitter = v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2)

    def __len__(self) -> int:
        return len(self.table)

    def original_size(self, index: int) -> tuple[int, int]:
        if self.cached is not None:
            return self.cached[index][1]
        return read_image(self.paths[index], self.size)[1]

    def __getitem__(self, index: int) -> tuple[Tensor, Target, int]:
        image, original = self.cached[index] if self.cached is not None else read_image(self.paths[index],
                                                                                         self.size)
        target = scaled_target(self.table, index, original, self.size)
        if self.augment:
            image = self.jitter(image)
            if self.hflip and torch.rand(()) < 0.5:
                image = image.flip(-1)
                boxes = target["boxes"].clone()
                boxes[:, [0, 2]] = self.size - target["boxes"][:, [2, 0]]
                target["boxes"] = boxes
        return image.float() / 255, target, index


def collate(batch: list[tuple[Tensor, Target, int]]) -> tuple[list[Tensor], list[Target], list[int]]:
    """Images and targets as lists (FCOS takes lists), with the images' indices."""
    images, targets, indices = zip(*batch, strict=True)
    return list(images), list(targets), list(indices)


class DetectionDataModule(ShuffleState, L.LightningDataModule):
    """Train / val loaders of a BoxTable, the shuffle generator's state kept in checkpoints (as for labels)."""

    def __init__(self, table: BoxTable, data: DataConfig, batch_size: int, seed: int = 0) -> None:
        super().__init__()
        self.table, self.data, self.batch_size, self.seed = table, data, batch_size, seed
        self.train_set: DetectionDataset | None = None
        self.val_set: DetectionDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        cache = self.data.cache_images if self.data.cache_images is not None else True
        if self.train_set is None:
            self.train_set = DetectionDataset(self.table.part("train"), self.data.image_size,
                                              augment=self.data.augment, hflip=self.data.hflip, cache=cache)
        if self.val_set is None and (self.table.split == "val").any():
            self.val_set = DetectionDataset(self.table.part("val"), self.data.image_size, cache=cache)

    def train_dataloader(self) -> DataLoader:
        assert self.train_set is not None
        generator = torch.Generator().manual_seed(self.seed)
        return self.remember_loader(DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True,
                                               collate_fn=collate, generator=generator,
                                               num_workers=self.data.num_workers or 0, drop_last=False))

    def val_dataloader(self) -> DataLoader:
        if self.val_set is None:
            return DataLoader([])
        return DataLoader(self.val_set, batch_size=self.batch_size, collate_fn=collate,
                          num_workers=self.data.num_workers or 0)


def check_weighting(name: str, n_classes: int, options: dict[str, Any]) -> Weighting:
    """The weighting method of the per-class classification losses; gradient methods are refused."""
    try:
        weighting = build_weighting(name, n_classes, **options)
    except TypeError as error:
        raise ConfigError(f"train.weighting_options {options}: {error}") from None
    if weighting.needs_gradients or weighting.needs_losses_after_step:
        raise ConfigError(f"train.weighting {name!r} is not available for detection: it needs per-class gradients "
                          "or a second forward pass per step; use equal, uncertainty, dwa or rlw")
    return weighting


def to_original(detections: dict[str, Tensor], original: tuple[int, int], size: int) -> dict[str, np.ndarray]:
    """Detections of a squashed image in the original image's pixels, as numpy arrays."""
    scale = torch.tensor([original[0] / size, original[1] / size] * 2)
    return {"boxes": (detections["boxes"].detach().float().cpu() * scale).numpy(),
            "scores": detections["scores"].detach().float().cpu().numpy(),
            "labels": detections["labels"].detach().cpu().numpy().astype(np.int64)}


class DetectionModule(L.LightningModule):
    """One step: FCOS losses (classification per class, masked), the weighting of the per-class losses, plus the
    box and centerness losses. Validation: mAP@0.5 on the val split (``val_map``), unknown-aware.

    The hyperparameters (classes, model, detection, train, image size) are in every checkpoint, so
    ``DetectionModule.load_from_checkpoint(path)`` rebuilds the detector (without pretrained weights).
    """

    def __init__(self, classes: tuple[str, ...] | list[str] = (), model: dict | None = None,
                 detection: dict | None = None, train: dict | None = None, image_size: int = 96,
                 detector: Detector | None = None, weighting: Weighting | None = None) -> None:
        super().__init__()
        self.save_hyperparameters({"classes": list(classes), "model": model, "detection": detection,
                                   "train": train, "image_size": int(image_size)})
        self.classes = tuple(classes)
        self.train_config = TrainConfig.model_validate(train or {})
        if detector is None:
            detector = build_detector(ModelConfig.model_validate(model or {}),
                                      DetectionConfig.model_validate(detection or {}), len(classes), image_size,
                                      load_weights=False)
        self.detector = detector
        self.weighting = weighting or check_weighting(self.train_config.weighting, len(classes),
                                                      self.train_config.weighting_options)
        self.register_buffer("_epoch_loss_sum", torch.zeros(len(classes)), persistent=False)
        self.register_buffer("_epoch_loss_count", torch.zeros(len(classes)), persistent=False)
        self._val: list[tuple[int, dict[str, np.ndarray]]] = []

    def forward(self, images: list[Tensor]) -> list[dict[str, Tensor]]:
        return self.detector(images)

    def losses(self, images: list[Tensor], targets: list[Target]) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """(objective, the detector's losses, present classes) of one batch."""
        losses = self.detector(images, targets)
        present = torch.stack([t["known"] for t in targets]).any(dim=0)
        objective = self.weighting(losses["classification"], present) + losses["bbox_regression"] \
            + losses["bbox_ctrness"]
        return objective, losses, present

    def training_step(self, batch: tuple[list[Tensor], list[Target], list[int]], batch_index: int) -> Tensor:
        images, targets, _ = batch
        objective, losses, present = self.losses(images, targets)
        per_class = losses["classification"].detach()
        self._epoch_loss_sum += torch.where(present, per_class, 0.0)
        self._epoch_loss_count += present.to(self._epoch_loss_count.dtype)
        total = per_class.sum() + losses["bbox_regression"].detach() + losses["bbox_ctrness"].detach()
        self.log("train_loss", total, prog_bar=True, on_step=False, on_epoch=True, batch_size=len(images),
                 sync_dist=True)  # the epoch mean over every process's batches
        self.log("train_box_loss", losses["bbox_regression"].detach(), on_step=False, on_epoch=True,
                 batch_size=len(images), sync_dist=True)
        return objective

    def on_train_epoch_end(self) -> None:
        mean = self._epoch_loss_sum / self._epoch_loss_count.clamp(min=1)
        self.weighting.on_epoch_end(mean.detach().cpu())
        self._epoch_loss_sum.zero_()
        self._epoch_loss_count.zero_()

    def validation_step(self, batch: tuple[list[Tensor], list[Target], list[int]], batch_index: int) -> None:
        images, _, indices = batch
        data = self.trainer.datamodule.val_set
        size = self.hparams["image_size"]
        for index, detections in zip(indices, self.detector(images), strict=True):
            self._val.append((index, to_original(detections, data.original_size(index), size)))

    def on_validation_epoch_end(self) -> None:
        """val_map: mAP@0.5 over the val split, the detections of every process gathered first (so the number
        is the whole split's under DDP too)."""
        from multitask.detection.metrics import detection_scores

        gathered = self._val
        self._val = []
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            parts: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(parts, gathered)
            gathered = [item for part in parts for item in part]
        table = self.trainer.datamodule.val_set.table
        by_index = dict(gathered)
        if len(by_index) != len(table):
            return
        scores = detection_scores([by_index[i] for i in range(len(table))], table)
        value = scores.map50 if math.isfinite(scores.map50) else 0.0
        self.log("val_map", torch.tensor(value, dtype=torch.float32), prog_bar=True,
                 sync_dist=True)  # the same value in every process (computed from the gathered detections)

    def configure_optimizers(self) -> dict:
        trainable = [p for p in self.parameters() if p.requires_grad]
        return recipe_optimizer(trainable, self.detector.backbone.body.parameters(), self.train_config,
                                self.trainer.estimated_stepping_batches, self.trainer.max_epochs or 1)


@dataclass
class DetectionFit:
    """What training a detector produced."""

    detector: Detector
    train_seconds: float
    epochs: int
    best_epoch: int | None
    best_score: float | None
    history: list[dict[str, float]] = field(default_factory=list)
    global_zero: bool = True


def fit_detector(config: RunConfig, table: BoxTable, detector: Detector, run_dir: Path, *, label: str = "",
                 quiet: bool = False, resume_from: Path | None = None, on_epoch: Any = None) -> DetectionFit:
    """Train `detector` on the train split of `table` as `config` says (the Trainer as for label tables: same
    devices, strategy, precision, checkpoints, history, random state, progress); the best val_map checkpoint is
    loaded back. ``detection.unknown: background`` trains with every unknown (image, class) taken as absent."""
    cfg = config.train
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    if config.detection.unknown == "background":
        table = table.unknown_as_background()
    module = DetectionModule(table.classes, config.model.model_dump(mode="json"),
                             config.detection.model_dump(mode="json"), cfg.model_dump(mode="json"),
                             config.data.image_size, detector=detector)
    data = DetectionDataModule(table, config.data, cfg.batch_size, seed=cfg.seed)
    has_val = bool((table.split == "val").any())
    monitor, mode = ("val_map", "max") if has_val else ("train_loss", "min")
    done = run_trainer(module, data, cfg, run_dir, watch=monitor, mode=mode, has_val=has_val, label=label,
                       quiet=quiet, resume_from=resume_from, on_epoch=on_epoch,
                       patience=cfg.patience if has_val else None,
                       deterministic=False)  # FCOS's scatter ops have no deterministic CPU/GPU versions
    done.load_best(module)
    best_epoch = epoch_of_score(done.history.epochs, monitor, done.best_score)
    module.detector.cpu().eval()
    return DetectionFit(module.detector, done.seconds, done.trainer.current_epoch, best_epoch, done.best_score,
                        done.history.epochs, done.trainer.is_global_zero)
