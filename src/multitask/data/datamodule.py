"""A Lightning DataModule over a LabelTable's train / val / test splits."""

from __future__ import annotations

import os

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from multitask.config import DataConfig
from multitask.data.datasets import (
    FeatureDataset,
    ImageDataset,
    eval_transform,
    should_cache,
    train_transform,
)
from multitask.data.shards import EpochLoader, ShardStream, shard_dataset, shard_stream
from multitask.tables import LabelTable


def make_dataset(table: LabelTable, config: DataConfig, train: bool = False) -> Dataset:
    """The dataset for a table (any split), augmented when `train` and config.augment; images from
    config.shards when set (in table order)."""
    if table.kind == "features":
        return FeatureDataset(table.features, table.labels)
    transform = train_transform(config.image_size, config.hflip) if train and config.augment else eval_transform()
    if config.shards is not None:
        return shard_dataset(table, config.shards, config.image_size, transform)
    cache = should_cache(len(table), config.image_size, config.cache_images)
    return ImageDataset(table.images, table.labels, None, config.image_size, transform, cache=cache)


def default_workers(dataset: Dataset, config: DataConfig) -> int:
    """config.num_workers, or 0 for data in memory and up to 4 (one core left free) for decoded images."""
    if config.num_workers is not None:
        return config.num_workers
    cached = isinstance(dataset, FeatureDataset) or getattr(dataset, "images", None) is not None
    return 0 if cached else min(4, max((os.cpu_count() or 1) - 1, 0))


def make_loader(dataset: Dataset, config: DataConfig, batch_size: int, *, shuffle: bool = False,
                seed: int = 0, drop_last: bool = False) -> DataLoader:
    workers = default_workers(dataset, config)
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers,
                      drop_last=drop_last, generator=generator, persistent_workers=workers > 0,
                      pin_memory=torch.cuda.is_available())


class MultiTaskDataModule(L.LightningDataModule):
    """Train / val / test loaders for one LabelTable."""

    def __init__(self, table: LabelTable, config: DataConfig, batch_size: int, seed: int = 0) -> None:
        super().__init__()
        self.table, self.config, self.batch_size, self.seed = table, config, batch_size, seed
        self.datasets: dict[str, Dataset] = {}

    def setup(self, stage: str | None = None) -> None:
        for split in ("train", "val", "test"):
            if split not in self.datasets:
                part = self.table.part(split)
                if not len(part):
                    continue
                if split == "train" and self.config.shards is not None and part.kind == "images":
                    transform = train_transform(self.config.image_size, self.config.hflip) if self.config.augment \
                        else eval_transform()
                    self.datasets[split] = shard_stream(part, self.config.shards, self.config.image_size,
                                                        self.batch_size, transform, seed=self.seed)
                else:
                    self.datasets[split] = make_dataset(part, self.config, train=split == "train")

    def train_dataloader(self) -> DataLoader:
        train = self.datasets["train"]
        if isinstance(train, ShardStream):  # streamed: the stream shuffles and batches itself, per epoch
            def epoch() -> int | None:  # the trainer's (restored on resume), else the loader counts passes
                return self.trainer.current_epoch if self.trainer is not None else None

            return EpochLoader(train, epoch, num_workers=default_workers(train, self.config),
                               pin_memory=torch.cuda.is_available())
        # Dropping a last batch of one keeps BatchNorm from failing; any other remainder is used.
        drop_last = len(train) % self.batch_size == 1
        return make_loader(train, self.config, self.batch_size, shuffle=True, seed=self.seed, drop_last=drop_last)

    def val_dataloader(self) -> DataLoader | list:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader | list:
        return self._eval_loader("test")

    def _eval_loader(self, split: str) -> DataLoader | list:
        if split not in self.datasets:
            return []
        return make_loader(self.datasets[split], self.config, self.batch_size * 2)


def feature_statistics(table: LabelTable) -> tuple[torch.Tensor, torch.Tensor] | tuple[None, None]:
    """Mean and standard deviation of the training features (None for image tables); 1 for constant ones.

    The one feature standardisation: every network on feature vectors (training, the estimator, the advisor's
    probe) is built with these statistics (:class:`multitask.models.network.Standardize`).
    """
    if table.features is None:
        return None, None
    train = table.features[table.split == "train"]
    std = train.std(axis=0, dtype=np.float64)  # float64 sums: float32 squares of large values would overflow
    mean = train.mean(axis=0, dtype=np.float64)
    # a constant (or constant up to rounding) feature stays as it is, as scikit-learn's StandardScaler does
    std[std <= 1e-6 * (1 + np.abs(mean))] = 1.0
    return torch.from_numpy(mean.astype(np.float32)), torch.from_numpy(std.astype(np.float32))
