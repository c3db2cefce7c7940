"""Multi-gate Mixture-of-Experts (MMoE) sharing: Ma et al., "Modeling Task Relationships in Multi-task
Learning with Multi-gate Mixture-of-Experts", KDD 2018.

The trunk is the shared bottom; `n_experts` expert MLPs read its output, and every task mixes the experts'
outputs with its own softmax gate before its head. All experts run as one batched tensor product and all gates
as one linear layer, so there is no Python loop over experts or tasks.

Split between `shared` and `task_block`: the experts are shared by every task, so they belong to `shared`; the
gates are task-specific, so they belong to `task_block`. Because the gates read the trunk output, `shared`
returns the trunk output and the expert outputs packed in one flat tensor (N, D + E·W), which the task block
unpacks. Gradient-based weighting methods therefore see the trunk *and* the experts as shared parameters.

>>> import torch
>>> from multitask.config import ModelConfig
>>> from multitask.models.network import build_network
>>> config = ModelConfig(trunk="mlp", trunk_options={"hidden": [16]}, sharing="mmoe",
...                      sharing_options={"n_experts": 3, "expert_width": 8})
>>> net = build_network(config, n_tasks=5, n_features=7)
>>> net.representation(torch.zeros(4, 7)).shape  # D + E·W = 16 + 3·8
torch.Size([4, 40])
>>> net(torch.zeros(4, 7)).shape
torch.Size([4, 5])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from multitask.config import ModelConfig
from multitask.errors import ConfigError
from multitask.models.network import SHARING, task_heads


class Experts(nn.Module):
    """`n_experts` ReLU MLPs of `depth` layers on one input, computed together (MMoE, Ma et al. KDD 2018).

    Layer weights are stored as (E, D_in, D_out) tensors and applied with one einsum per layer.

    >>> import torch
    >>> Experts(in_features=6, n_experts=4, width=5, depth=2)(torch.zeros(3, 6)).shape
    torch.Size([3, 4, 5])
    """

    def __init__(self, in_features: int, n_experts: int, width: int, depth: int = 1) -> None:
        super().__init__()
        if n_experts < 1 or width < 1 or depth < 1:
            raise ConfigError(f"mmoe needs n_experts, expert_width and expert_depth >= 1, "
                             f"got {n_experts}, {width}, {depth}")
        self.in_features, self.n_experts, self.width = in_features, n_experts, width
        sizes = [in_features] + [width] * depth
        self.weights = nn.ParameterList(
            [nn.Parameter(torch.empty(n_experts, a, b)) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
        )
        self.biases = nn.ParameterList([nn.Parameter(torch.empty(n_experts, b)) for b in sizes[1:]])
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for weight, bias in zip(self.weights, self.biases, strict=True):  # as nn.Linear, per expert
            bound = 1 / math.sqrt(weight.shape[1])
            nn.init.uniform_(weight, -bound, bound)
            nn.init.uniform_(bias, -bound, bound)

    def forward(self, h: Tensor) -> Tensor:
        """(N, D) → (N, E, W)."""
        z = torch.einsum("nd,edw->new", h, self.weights[0]) + self.biases[0]
        z = F.relu(z)
        for weight, bias in zip(self.weights[1:], self.biases[1:], strict=True):
            z = F.relu(torch.einsum("ned,edw->new", z, weight) + bias)
        return z


class MMoEShared(nn.Module):
    """The shared part of MMoE (Ma et al., KDD 2018): trunk (shared bottom) and experts.

    Returns the trunk output h (N, D) and the expert outputs (N, E, W) packed as one tensor (N, D + E·W),
    because the task-specific gates in `MMoETaskBlock` read h.

    >>> import torch
    >>> from multitask.models.trunks import build_trunk
    >>> shared = MMoEShared(build_trunk("mlp", in_features=7, hidden=[16]), Experts(16, n_experts=3, width=8))
    >>> shared(torch.zeros(4, 7)).shape
    torch.Size([4, 40])
    """

    def __init__(self, trunk: nn.Module, experts: Experts) -> None:
        super().__init__()
        self.trunk = trunk
        self.experts = experts
        self.out_features = trunk.out_features + experts.n_experts * experts.width

    def forward(self, x: Tensor) -> Tensor:
        h = self.trunk(x)
        return torch.cat([h, self.experts(h).flatten(1)], dim=1)


class MMoETaskBlock(nn.Module):
    """The task-specific part of MMoE (Ma et al., KDD 2018): one softmax gate per task, then per-task heads.

    Unpacks (N, D + E·W) into the trunk output h and the experts' outputs e; task t sees
    sum_e softmax(gate_t(h))_e · e_e, and its head maps that to a logit. The T gates are one (D, T·E) linear.

    >>> import torch
    >>> from multitask.models.heads import TaskHeads
    >>> block = MMoETaskBlock(16, n_experts=3, expert_width=8, n_tasks=5, heads=TaskHeads(8, 5))
    >>> block(torch.zeros(4, 16 + 3 * 8)).shape
    torch.Size([4, 5])
    >>> block.gate_weights(torch.zeros(4, 16 + 3 * 8)).shape  # (N, T, E)
    torch.Size([4, 5, 3])
    """

    def __init__(self, in_features: int, n_experts: int, expert_width: int, n_tasks: int, heads: nn.Module) -> None:
        super().__init__()
        self.in_features, self.n_experts, self.expert_width, self.n_tasks = (
            in_features, n_experts, expert_width, n_tasks)
        self.gates = nn.Linear(in_features, n_tasks * n_experts)
        self.heads = heads

    def unpack(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """(N, D + E·W) → trunk output (N, D), expert outputs (N, E, W)."""
        expected = self.in_features + self.n_experts * self.expert_width
        if z.dim() != 2 or z.shape[1] != expected:
            raise ValueError(f"mmoe task block expects (N, {expected}) inputs, got {tuple(z.shape)}")
        h, experts = z.split([self.in_features, self.n_experts * self.expert_width], dim=1)
        return h, experts.unflatten(1, (self.n_experts, self.expert_width))

    def gate_weights(self, z: Tensor) -> Tensor:
        """Each task's mixture weights over the experts, (N, T, E); they sum to 1 over E."""
        h, _ = self.unpack(z)
        return self.gates(h).unflatten(1, (self.n_tasks, self.n_experts)).softmax(dim=-1)

    def forward(self, z: Tensor) -> Tensor:
        _, experts = self.unpack(z)
        mixed = torch.einsum("nte,new->ntw", self.gate_weights(z), experts)
        return self.heads(mixed)


@SHARING.register("mmoe")
def mmoe_sharing(trunk: nn.Module, n_tasks: int, config: ModelConfig, *, n_experts: int = 4,
                 expert_width: int | None = None, expert_depth: int = 1) -> tuple[nn.Module, nn.Module]:
    """MMoE on top of the trunk: `n_experts` experts of `expert_width` (default: the trunk's width) and
    `expert_depth` ReLU layers, one softmax gate per task, then the configured per-task heads."""
    width = trunk.out_features if expert_width is None else int(expert_width)
    experts = Experts(trunk.out_features, int(n_experts), width, int(expert_depth))
    heads = task_heads(width, n_tasks, config)
    return MMoEShared(trunk, experts), MMoETaskBlock(trunk.out_features, int(n_experts), width, n_tasks, heads)
