"""The one inference path: batched logits and probabilities of a network, on any device, and their timing.

Every caller goes through :func:`predict_logits` — ``multitask predict`` and ``evaluate`` (on a dataset), the
scikit-learn estimator (on an array, in float64 so the result does not depend on how the rows are batched),
the advisor's probe (on its in-memory rows) and ``compare`` (through the pipeline's evaluation).

>>> import torch
>>> net = torch.nn.Linear(3, 2)
>>> x = torch.randn(10, 3)
>>> logits = predict_logits(net, x, batch_size=4, device="cpu")
>>> logits.shape, bool(np.allclose(logits, net(x).detach().numpy(), atol=1e-6))
((10, 2), True)
>>> predict_proba(net, x.numpy(), device="cpu", dtype=torch.float64).dtype
dtype('float64')
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator

import numpy as np
import torch
from scipy.special import expit
from torch import nn
from torch.utils.data import DataLoader, Dataset

Inputs = Dataset | torch.Tensor | np.ndarray
"""A dataset of (x, ...) tuples or of bare inputs, or a tensor / array of inputs (first axis: examples)."""

_CUDA_ACCELERATORS = ("auto", "gpu", "cuda")


def default_device(accelerator: str = "auto") -> torch.device:
    """The first CUDA device when there is one and `accelerator` allows it ("auto", "gpu", "cuda"), else the CPU.

    >>> default_device("cpu")
    device(type='cpu')
    """
    if accelerator in _CUDA_ACCELERATORS and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def input_batches(inputs: Inputs, batch_size: int) -> Iterator[torch.Tensor]:
    """The inputs in order, `batch_size` examples at a time (the x of (x, targets, known) datasets).

    >>> [b.shape[0] for b in input_batches(np.zeros((5, 2)), 2)]
    [2, 2, 1]
    """
    if isinstance(inputs, np.ndarray):
        inputs = torch.from_numpy(inputs)
    if isinstance(inputs, torch.Tensor):
        for start in range(0, len(inputs), batch_size):
            yield inputs[start:start + batch_size]
        return
    for batch in DataLoader(inputs, batch_size=batch_size, shuffle=False):
        yield batch[0] if isinstance(batch, list | tuple) else batch


def predict_logits(network: nn.Module, inputs: Inputs, batch_size: int = 256,
                   device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> np.ndarray:
    """Logits (N, T) of every input, in eval mode (the network's mode is restored afterwards).

    `device`: default :func:`default_device` (the network is moved there). `dtype`: evaluate a copy of the
    network in that floating type (float64 makes the result independent of the batching to ~1e-15); the
    default evaluates the network as it is and returns float32.
    """
    device = torch.device(device) if device is not None else default_device()
    if dtype is not None and any(p.dtype != dtype for p in network.parameters()):
        network = copy.deepcopy(network).to(dtype)
    network = network.to(device)
    was_training = network.training
    network.eval()
    chunks = []
    try:
        with torch.inference_mode():
            for x in input_batches(inputs, batch_size):
                x = x.to(device) if dtype is None or not x.is_floating_point() else x.to(device, dtype)
                out = network(x)
                chunks.append((out.float() if dtype is None else out).cpu())
    finally:
        network.train(was_training)
    if not chunks:
        return np.zeros((0, getattr(network, "n_tasks", 0)), dtype=np.float32 if dtype is None else None)
    return torch.cat(chunks).numpy()


def predict_proba(network: nn.Module, inputs: Inputs, batch_size: int = 256,
                  device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> np.ndarray:
    """Probabilities (N, T): the sigmoid of :func:`predict_logits` (no overflow for large logits)."""
    return expit(predict_logits(network, inputs, batch_size, device, dtype))


@torch.inference_mode()
def time_inference(network: nn.Module, example: torch.Tensor, batch_size: int = 64, repeats: int = 5,
                   device: torch.device | str | None = None) -> float:
    """Median seconds per example of a forward pass on a batch of copies of `example`.

    >>> time_inference(nn.Linear(3, 2), torch.zeros(3), batch_size=4, repeats=2, device="cpu") > 0
    True
    """
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
