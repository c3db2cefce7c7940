"""Batched inference and its timing, on whatever device is available."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


def default_device() -> torch.device:
    """The first CUDA device when there is one, else the CPU."""
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


@torch.inference_mode()
def predict_logits(network: nn.Module, dataset: Dataset, batch_size: int = 256,
                   device: torch.device | str | None = None) -> np.ndarray:
    """Logits (N, T) for every item of a dataset of (x, ...) tuples."""
    device = torch.device(device) if device is not None else default_device()
    network = network.to(device).eval()
    chunks = []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        x = batch[0] if isinstance(batch, list | tuple) else batch
        chunks.append(network(x.to(device)).float().cpu())
    if not chunks:
        return np.zeros((0, getattr(network, "n_tasks", 0)), dtype=np.float32)
    return torch.cat(chunks).numpy()


def predict_proba(network: nn.Module, dataset: Dataset, batch_size: int = 256,
                  device: torch.device | str | None = None) -> np.ndarray:
    """Probabilities (N, T): the sigmoid of :func:`predict_logits`."""
    return 1.0 / (1.0 + np.exp(-predict_logits(network, dataset, batch_size, device)))


@torch.inference_mode()
def time_inference(network: nn.Module, example: torch.Tensor, batch_size: int = 64, repeats: int = 5,
                   device: torch.device | str | None = None) -> float:
    """Median seconds per example of a forward pass on a batch of copies of `example`."""
    device = torch.device(device) if device is not None else default_device()
    network = network.to(device).eval()
    batch = example.unsqueeze(0).expand(batch_size, *example.shape).contiguous().to(device)
    network(batch)  # warm-up
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        network(batch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) / batch_size
