"""The multi-task network: input normalisation → shared trunk → task-specific block → T logits.

`representation(x)` is the last tensor shared by all tasks; `task_logits(z)` is everything task-specific.
Gradient-based weighting methods differentiate each task's loss with respect to that representation.

>>> import torch
>>> from multitask.config import ModelConfig
>>> net = build_network(ModelConfig(trunk="mlp", trunk_options={"hidden": [8]}), n_tasks=3, n_features=5)
>>> net(torch.zeros(4, 5)).shape
torch.Size([4, 3])
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from multitask.config import ModelConfig
from multitask.models.heads import TaskHeads
from multitask.models.registry import Registry
from multitask.models.trunks import build_trunk, trunk_takes_images

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

SHARING: Registry[tuple[nn.Module, nn.Module]] = Registry("sharing architecture")
"""Factories ``f(trunk, n_tasks, config: ModelConfig, **options) -> (shared, task_block)``.

`shared` maps (normalised) inputs to the representation shared by the tasks — (N, D), or (N, T, D) for
architectures with one representation per task; `task_block` maps that representation to (N, T) logits.
"""


def task_heads(in_features: int, n_tasks: int, config: ModelConfig) -> TaskHeads:
    """The per-task heads a ModelConfig describes (linear, or towers of `tower_depth` layers)."""
    return TaskHeads(in_features, n_tasks, tower_depth=config.tower_depth, tower_width=config.tower_width,
                     dropout=config.dropout)


@SHARING.register("hard")
def hard_sharing(trunk: nn.Module, n_tasks: int, config: ModelConfig) -> tuple[nn.Module, nn.Module]:
    """One trunk shared by all tasks, then per-task heads (hard parameter sharing)."""
    return trunk, task_heads(trunk.out_features, n_tasks, config)


class Standardize(nn.Module):
    """(x - mean) / std with stored statistics, so saved models take raw inputs."""

    def __init__(self, mean: Tensor, std: Tensor, channel_dim: int = 1) -> None:
        super().__init__()
        shape = [1] * (channel_dim + 1)
        shape[channel_dim] = -1
        self.shape = shape
        self.register_buffer("mean", mean.detach().clone().float())
        self.register_buffer("std", std.detach().clone().float().clamp(min=1e-6))

    def forward(self, x: Tensor) -> Tensor:
        view = self.shape + [1] * (x.dim() - len(self.shape))
        return (x - self.mean.view(view)) / self.std.view(view)


class MultiTaskNetwork(nn.Module):
    """Shared part (`trunk`) + task block. Images come in as floats in [0, 1]; feature vectors raw."""

    def __init__(self, normalize: nn.Module, trunk: nn.Module, task_block: nn.Module, n_tasks: int) -> None:
        super().__init__()
        self.normalize = normalize
        self.trunk = trunk
        self.task_block = task_block
        self.n_tasks = n_tasks

    def prepare(self, x: Tensor) -> Tensor:
        """The trunk's input: normalised (ImageNet statistics or the training features' mean and std)."""
        x = self.normalize(x)
        if x.dim() == 4:  # channels-last convolutions: about 2x faster on CPUs, and good on GPUs
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def representation(self, x: Tensor) -> Tensor:
        return self.trunk(self.prepare(x))

    def task_logits(self, z: Tensor) -> Tensor:
        return self.task_block(z)

    def forward(self, x: Tensor) -> Tensor:
        return self.task_logits(self.representation(x))

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.trunk.parameters())


def build_network(
    config: ModelConfig,
    n_tasks: int,
    n_features: int = 0,
    *,
    load_weights: bool = True,
    feature_mean: Tensor | None = None,
    feature_std: Tensor | None = None,
) -> MultiTaskNetwork:
    """Build the network a ModelConfig describes, for `n_tasks` tasks.

    `n_features` is the input width of feature-vector trunks (ignored for image trunks);
    `load_weights=False` skips the pretrained trunk weights (when a saved run's weights will be loaded).
    """
    options: dict[str, Any] = dict(config.trunk_options)
    if config.weights and load_weights:
        options["weights"] = config.weights
    images = trunk_takes_images(config.trunk)
    if images:
        normalize: nn.Module = Standardize(torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD))
    else:
        options.setdefault("in_features", n_features)
        mean = feature_mean if feature_mean is not None else torch.zeros(n_features)
        std = feature_std if feature_std is not None else torch.ones(n_features)
        normalize = Standardize(mean, std)
    trunk = build_trunk(config.trunk, **options)
    shared, task_block = SHARING.build(config.sharing, trunk, n_tasks, config, **config.sharing_options)
    if images:
        shared = shared.to(memory_format=torch.channels_last)
    return MultiTaskNetwork(normalize, shared, task_block, n_tasks)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
