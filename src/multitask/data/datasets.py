"""Datasets that yield (input, targets, known) triples from a LabelTable.

Labels stay compact (:class:`~multitask.tables.compact.CompactLabels`); the rows of one batch are unpacked
together when the DataLoader asks for them, so a table's dense (n, T) arrays are never made for training.

Images are squashed to a square `image_size` (no crop, so no object is cut out of the frame), kept as uint8,
optionally cached in memory, augmented with torchvision.transforms.v2 and returned as floats in [0, 1].
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.transforms import v2

from multitask.data.images import read_rgb
from multitask.errors import LabelError
from multitask.tables.compact import CompactLabels

CACHE_LIMIT_BYTES = 2 * 1024**3


class UnreadableImageError(LabelError):
    """An image that could not be decoded while training or predicting (its header was fine when checked).

    A DataLoader worker process re-raises an exception in the main process by calling its class with one
    message holding the worker's traceback; this class keeps only its own last line, so the user sees one line
    naming the file and never the worker's traceback.

    >>> str(UnreadableImageError("Caught UnreadableImageError in DataLoader worker process 0.\\nOriginal "
    ...                          "Traceback (most recent call last):\\n  File ...\\n"
    ...                          "multitask.data.datasets.UnreadableImageError: a.png: cannot decode image\\n"))
    'a.png: cannot decode image'
    """

    def __init__(self, message: str, **where: object) -> None:
        marker = f"{type(self).__name__}: "
        if not where and message.startswith("Caught ") and marker in message:
            message = message.rsplit(marker, 1)[1].strip()
        super().__init__(message, **where)  # type: ignore[arg-type]


def load_image(path: str | Path, size: int) -> Tensor:
    """An image file as a uint8 tensor (3, size, size), squashed to the square size (modes as
    :func:`multitask.data.images.to_rgb`)."""
    try:
        array = read_rgb(path)
    except LabelError as error:
        raise UnreadableImageError(f"{error.reason}; use --data.missing_images skip to decode every image "
                                   "first and skip broken ones", file=path) from None
    return squash(array, size)


def squash(array: np.ndarray, size: int) -> Tensor:
    """An (H, W, 3) uint8 image as a uint8 tensor (3, size, size), squashed to the square size (the one resize of
    every image, from a file or from a shard)."""
    image = Image.fromarray(array).resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()


def load_images(paths: Sequence[str], size: int, threads: int | None = None) -> Tensor:
    """Decode many images in parallel threads (PIL releases the GIL) into one uint8 tensor (N, 3, S, S)."""
    threads = threads or min(8, os.cpu_count() or 1)
    out = torch.empty((len(paths), 3, size, size), dtype=torch.uint8)

    def work(index: int) -> None:
        out[index] = load_image(paths[index], size)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(len(paths))))
    return out


def train_transform(size: int, hflip: bool = True) -> v2.Transform:
    """Mild augmentation that keeps every object in view: scale 80–100 %, colour jitter, optional flips.

    (No hue jitter: it costs 3× the rest on a CPU, and colour can be what a task is about.)
    """
    steps: list[v2.Transform] = [v2.RandomResizedCrop(size, scale=(0.8, 1.0), ratio=(0.9, 1.1), antialias=True)]
    if hflip:
        steps.append(v2.RandomHorizontalFlip())
    steps += [v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2),
              v2.ToDtype(torch.float32, scale=True)]
    return v2.Compose(steps)


def eval_transform() -> v2.Transform:
    return v2.ToDtype(torch.float32, scale=True)


def compact_labels(targets: np.ndarray | CompactLabels, known: np.ndarray | None) -> CompactLabels:
    """The labels a dataset holds: compact labels as given, or built from the dense pair."""
    if isinstance(targets, CompactLabels):
        return targets
    return CompactLabels.from_dense(np.asarray(targets), np.asarray(known, dtype=bool))


class _LabelledDataset(Dataset):
    """A dataset of (input, targets, known) whose labels stay compact: a batch's rows are unpacked together
    (``__getitems__``, which the DataLoader calls with a batch's indices), a single item alone."""

    labels: CompactLabels

    def input(self, index: int) -> Tensor:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, Tensor]:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[Tensor, Tensor, Tensor]]:
        targets, known = self.labels.rows(np.asarray(indices, dtype=np.int64))
        targets, known = torch.from_numpy(targets), torch.from_numpy(known)
        return [(self.input(int(i)), targets[k], known[k]) for k, i in enumerate(indices)]


class ImageDataset(_LabelledDataset):
    """Images from paths (decoded lazily, or all at once when `cache`) with their labels (compact labels, or
    dense targets and known)."""

    def __init__(self, paths: Sequence[str], targets: np.ndarray | CompactLabels, known: np.ndarray | None,
                 image_size: int, transform: v2.Transform | None = None, cache: bool = False) -> None:
        self.paths = list(paths)
        self.labels = compact_labels(targets, known)
        self.image_size = image_size
        self.transform = transform or eval_transform()
        self.images = load_images(self.paths, image_size) if cache and self.paths else None

    def input(self, index: int) -> Tensor:
        image = self.images[index] if self.images is not None else load_image(self.paths[index], self.image_size)
        return self.transform(image)


class FeatureDataset(_LabelledDataset):
    """Feature vectors with their labels (compact labels, or dense targets and known)."""

    def __init__(self, features: np.ndarray, targets: np.ndarray | CompactLabels,
                 known: np.ndarray | None = None) -> None:
        self.features = torch.as_tensor(features, dtype=torch.float32)
        self.labels = compact_labels(targets, known)

    def input(self, index: int) -> Tensor:
        return self.features[index]


def should_cache(n_images: int, image_size: int, requested: bool | None) -> bool:
    if requested is not None:
        return requested
    return n_images * 3 * image_size * image_size <= CACHE_LIMIT_BYTES
