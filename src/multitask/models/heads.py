"""Task heads: T outputs computed together, as batched tensor products (500 tasks cost one matmul).

The input is either one shared representation (N, D) or one representation per task (N, T, D), as produced
by mixture-of-experts sharing.

>>> import torch
>>> head = TaskHeads(in_features=8, n_tasks=3)
>>> head(torch.zeros(5, 8)).shape
torch.Size([5, 3])
>>> TaskHeads(8, 3, tower_depth=2, tower_width=4)(torch.zeros(5, 3, 8)).shape
torch.Size([5, 3])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class TaskHeads(nn.Module):
    """One logit per task, with optional per-task towers of `tower_depth` hidden ReLU layers.

    The weights of all tasks live in single tensors: a tower layer is (T, D_in, D_out) and runs as one einsum.
    """

    def __init__(self, in_features: int, n_tasks: int, tower_depth: int = 0, tower_width: int = 64,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.in_features, self.n_tasks = in_features, n_tasks
        self.dropout = nn.Dropout(dropout)
        sizes = [in_features] + [tower_width] * tower_depth
        self.tower_weights = nn.ParameterList(
            [nn.Parameter(torch.empty(n_tasks, a, b)) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
        )
        self.tower_biases = nn.ParameterList([nn.Parameter(torch.zeros(n_tasks, b)) for b in sizes[1:]])
        self.weight = nn.Parameter(torch.empty(n_tasks, sizes[-1]))
        self.bias = nn.Parameter(torch.zeros(n_tasks))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for weight in self.tower_weights:  # Kaiming-uniform per task, as nn.Linear does
            bound = 1 / math.sqrt(weight.shape[1])
            nn.init.uniform_(weight, -bound * math.sqrt(3), bound * math.sqrt(3))
        bound = 1 / math.sqrt(self.weight.shape[1])
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.zeros_(self.bias)

    def forward(self, z: Tensor) -> Tensor:
        z = self.dropout(z)
        per_task = z.dim() == 3
        for weight, bias in zip(self.tower_weights, self.tower_biases, strict=True):
            z = torch.einsum("ntd,tdw->ntw" if per_task else "nd,tdw->ntw", z, weight) + bias
            z = F.relu(z)
            per_task = True
        if per_task:
            return (z * self.weight).sum(-1) + self.bias
        return F.linear(z, self.weight, self.bias)
