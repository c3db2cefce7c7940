"""Cross-stitch sharing: Misra et al., "Cross-stitch Networks for Multi-task Learning", CVPR 2016.

Every task gets its own column, a copy of the trunk (so pretrained trunk weights start every column), and after
each stage a learnable cross-stitch unit mixes the columns' activations: column s continues with
sum_t alpha[s, t] · x_t. Units start at the paper's recommended convex init, `self_weight` (0.9) on the
diagonal and (1 - self_weight) / (T - 1) off it.

The T columns run together, with no Python loop over tasks: convolution activations are stacked along channels,
(N, T·C, H, W) with column t in channels [t·C, (t+1)·C), and every convolution becomes a grouped convolution
(groups = T) holding the columns' weights side by side; BatchNorm over T·C channels is per-column BatchNorm;
linear layers become (T, D_in, D_out) einsums on (N, T, D). Option `execution="loop"` runs the convolution
stages column by column instead (same parameters, same results): on a 2-core CPU it measured about 2x faster
than the grouped convolutions at T=4 and T=40, because oneDNN's grouped convolutions are slow there and one
column's activations stay in cache. Supported trunks: `small_cnn` (stages = its
`.features` split after each MaxPool2d) and `mlp` (stages = its Linear-LayerNorm-ReLU-Dropout blocks).

`shared` is all columns and units and returns one representation per task, (N, T, D); `task_block` is the
per-task heads.

>>> import torch
>>> from multitask.config import ModelConfig
>>> from multitask.models.network import build_network
>>> net = build_network(ModelConfig(trunk="small_cnn", trunk_options={"width": 4, "depth": 2},
...                                 sharing="cross_stitch"), n_tasks=3)
>>> net.representation(torch.zeros(2, 3, 16, 16)).shape
torch.Size([2, 3, 8])
>>> net(torch.zeros(2, 3, 16, 16)).shape
torch.Size([2, 3])
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from multitask.config import ModelConfig
from multitask.errors import ConfigError
from multitask.models.network import SHARING, task_heads
from multitask.models.trunks import MLP, SmallCNN


class CrossStitchUnit(nn.Module):
    """A cross-stitch unit (Misra et al., CVPR 2016): learnable linear mixing of T columns' activations.

    `alpha` is (T, T), or (T, T, C) with `per_channel`; output column s = sum_t alpha[s, t] · column t.
    Inputs are (N, T, C) or channel-stacked (N, T·C, H, W).

    >>> import torch
    >>> unit = CrossStitchUnit(n_columns=2, channels=3)
    >>> unit.alpha
    Parameter containing:
    tensor([[0.9000, 0.1000],
            [0.1000, 0.9000]], requires_grad=True)
    >>> unit(torch.zeros(5, 2 * 3, 4, 4)).shape, unit(torch.zeros(5, 2, 3)).shape
    (torch.Size([5, 6, 4, 4]), torch.Size([5, 2, 3]))
    """

    def __init__(self, n_columns: int, channels: int, self_weight: float = 0.9, per_channel: bool = False) -> None:
        super().__init__()
        self.n_columns, self.channels, self.per_channel = n_columns, channels, per_channel
        self.self_weight = self_weight
        shape = (n_columns, n_columns, channels) if per_channel else (n_columns, n_columns)
        self.alpha = nn.Parameter(torch.empty(shape))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        t = self.n_columns
        diagonal = self.self_weight if t > 1 else 1.0
        off = (1.0 - self.self_weight) / (t - 1) if t > 1 else 0.0
        matrix = torch.full((t, t), off) + torch.eye(t) * (diagonal - off)
        with torch.no_grad():
            self.alpha.copy_(matrix.unsqueeze(-1).expand_as(self.alpha) if self.per_channel else matrix)

    def forward(self, x: Tensor) -> Tensor:
        t, c = self.n_columns, self.channels
        equation = "stc,mtc->msc" if self.per_channel else "st,mtc->msc"
        if x.dim() == 3:  # (N, T, C)
            return torch.einsum(equation, self.alpha, x)
        n, _, h, w = x.shape  # (N, T·C, H, W): mix in (N·H·W, T, C), free of copies for channels-last inputs
        mixed = torch.einsum(equation, self.alpha, x.permute(0, 2, 3, 1).reshape(n * h * w, t, c))
        return mixed.reshape(n, h, w, t * c).permute(0, 3, 1, 2)


class ColumnLinear(nn.Module):
    """T independent linear layers as one einsum: (N, D_in) shared input or (N, T, D_in) → (N, T, D_out).

    Column t's weight is `weight[t]` (D_in, D_out), i.e. the transpose of an nn.Linear weight.

    >>> import torch
    >>> ColumnLinear.from_linear(torch.nn.Linear(4, 6), n_columns=3, shared_input=True)(torch.zeros(2, 4)).shape
    torch.Size([2, 3, 6])
    """

    def __init__(self, weight: Tensor, bias: Tensor | None, shared_input: bool) -> None:
        super().__init__()
        self.shared_input = shared_input
        self.weight = nn.Parameter(weight)
        self.bias = None if bias is None else nn.Parameter(bias)

    @classmethod
    def from_linear(cls, linear: nn.Linear, n_columns: int, shared_input: bool) -> ColumnLinear:
        weight = linear.weight.detach().t().unsqueeze(0).repeat(n_columns, 1, 1)
        bias = None if linear.bias is None else linear.bias.detach().unsqueeze(0).repeat(n_columns, 1)
        return cls(weight, bias, shared_input)

    def forward(self, x: Tensor) -> Tensor:
        z = torch.einsum("nd,tdo->nto" if self.shared_input else "ntd,tdo->nto", x, self.weight)
        return z if self.bias is None else z + self.bias


class ColumnLayerNorm(nn.Module):
    """T LayerNorms over the last dimension of (N, T, D), each with its own affine parameters (T, D).

    >>> import torch
    >>> ColumnLayerNorm.from_layer_norm(torch.nn.LayerNorm(6), n_columns=3)(torch.zeros(2, 3, 6)).shape
    torch.Size([2, 3, 6])
    """

    def __init__(self, size: int, eps: float, weight: Tensor | None, bias: Tensor | None) -> None:
        super().__init__()
        self.size, self.eps = size, eps
        self.weight = None if weight is None else nn.Parameter(weight)
        self.bias = None if bias is None else nn.Parameter(bias)

    @classmethod
    def from_layer_norm(cls, norm: nn.LayerNorm, n_columns: int) -> ColumnLayerNorm:
        if len(norm.normalized_shape) != 1:
            raise ValueError("cross_stitch supports LayerNorm over the last dimension only")

        def repeat(p: Tensor | None) -> Tensor | None:
            return None if p is None else p.detach().unsqueeze(0).repeat(n_columns, 1)

        return cls(norm.normalized_shape[0], norm.eps, repeat(norm.weight), repeat(norm.bias))

    def forward(self, x: Tensor) -> Tensor:
        z = F.layer_norm(x, (self.size,), eps=self.eps)
        if self.weight is not None:
            z = z * self.weight
        return z if self.bias is None else z + self.bias


def _stack_conv(conv: nn.Conv2d, n_columns: int, shared_input: bool) -> nn.Conv2d:
    """T copies of a convolution as one: grouped over stacked columns, or reading one shared input."""
    if shared_input and conv.groups != 1:
        raise ValueError("cross_stitch: the first convolution of the trunk must have groups=1")
    if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        raise ValueError("cross_stitch supports convolutions with numeric zero padding only")
    stacked = nn.Conv2d(
        conv.in_channels * (1 if shared_input else n_columns), conv.out_channels * n_columns, conv.kernel_size,
        stride=conv.stride, padding=conv.padding, dilation=conv.dilation,
        groups=conv.groups * (1 if shared_input else n_columns), bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
    )
    with torch.no_grad():
        stacked.weight.copy_(conv.weight.repeat(n_columns, 1, 1, 1))
        if conv.bias is not None:
            stacked.bias.copy_(conv.bias.repeat(n_columns))
    return stacked


def _stack_batch_norm(norm: nn.BatchNorm2d, n_columns: int) -> nn.BatchNorm2d:
    """T copies of a BatchNorm2d as one over T·C channels (BatchNorm is per channel, so per column)."""
    stacked = nn.BatchNorm2d(norm.num_features * n_columns, eps=norm.eps, momentum=norm.momentum,
                             affine=norm.affine, track_running_stats=norm.track_running_stats)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            source = getattr(norm, name)
            if source is not None:
                getattr(stacked, name).copy_(source.repeat(n_columns))
        if norm.num_batches_tracked is not None:
            stacked.num_batches_tracked.copy_(norm.num_batches_tracked)
    return stacked


_STATELESS = (nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.Dropout, nn.Identity)


def _stack_stage(stage: nn.Sequential, n_columns: int, shared_input: bool) -> tuple[nn.Sequential, int]:
    """One trunk stage → the same stage for T stacked columns, and its output width per column."""
    layers: list[nn.Module] = []
    width = 0
    for module in stage:
        if isinstance(module, nn.Conv2d):
            layers.append(_stack_conv(module, n_columns, shared_input))
            shared_input, width = False, module.out_channels
        elif isinstance(module, nn.Linear):
            layers.append(ColumnLinear.from_linear(module, n_columns, shared_input))
            shared_input, width = False, module.out_features
        elif isinstance(module, _STATELESS) and not (shared_input and isinstance(module, nn.Dropout)):
            layers.append(copy.deepcopy(module))
        elif isinstance(module, nn.BatchNorm2d) and not shared_input:
            layers.append(_stack_batch_norm(module, n_columns))
        elif isinstance(module, nn.LayerNorm) and not shared_input:
            layers.append(ColumnLayerNorm.from_layer_norm(module, n_columns))
        else:
            raise ValueError(f"cross_stitch cannot make columns of a {type(module).__name__} layer here")
    if shared_input:
        raise ValueError("cross_stitch: every trunk stage needs a Linear or Conv2d layer")
    return nn.Sequential(*layers), width


def _column_layer(module: nn.Module, x: Tensor, column: int, n_columns: int, shared_input: bool) -> Tensor:
    """Column `column` of a stacked layer applied to that column's activations (N, C, H, W) alone."""
    if isinstance(module, nn.Conv2d):
        rows = slice(column * module.out_channels // n_columns, (column + 1) * module.out_channels // n_columns)
        bias = None if module.bias is None else module.bias[rows]
        groups = module.groups if shared_input else module.groups // n_columns
        return F.conv2d(x, module.weight[rows], bias, module.stride, module.padding, module.dilation, groups)
    if isinstance(module, nn.BatchNorm2d):  # as nn.BatchNorm2d.forward, on this column's channels
        rows = slice(column * module.num_features // n_columns, (column + 1) * module.num_features // n_columns)
        factor = 0.0 if module.momentum is None else module.momentum
        if module.training and module.track_running_stats and module.num_batches_tracked is not None:
            if column == 0:
                module.num_batches_tracked.add_(1)
            if module.momentum is None:
                factor = 1.0 / float(module.num_batches_tracked)
        use_batch = module.training or module.running_mean is None
        track = not module.training or module.track_running_stats
        return F.batch_norm(
            x,
            module.running_mean[rows] if track and module.running_mean is not None else None,
            module.running_var[rows] if track and module.running_var is not None else None,
            None if module.weight is None else module.weight[rows],
            None if module.bias is None else module.bias[rows],
            use_batch, factor, module.eps,
        )
    return module(x)  # stateless: ReLU, pooling, dropout


def trunk_stages(trunk: nn.Module) -> tuple[list[nn.Sequential], nn.Module]:
    """A supported trunk as its stages (cross-stitch units go after each) and the pooling that follows them."""
    if isinstance(trunk, SmallCNN):
        stages, current = [], []
        for module in trunk.features:
            current.append(module)
            if isinstance(module, nn.MaxPool2d):
                stages.append(nn.Sequential(*current))
                current = []
        if current:
            stages.append(nn.Sequential(*current))
        return stages, trunk.pool
    if isinstance(trunk, MLP):
        stages, current = [], []
        for module in trunk.layers:
            if isinstance(module, nn.Linear) and current:
                stages.append(nn.Sequential(*current))
                current = []
            current.append(module)
        if current:
            stages.append(nn.Sequential(*current))
        return stages, nn.Identity()
    raise ConfigError(f"cross_stitch supports small_cnn and mlp trunks, not {type(trunk).__name__}"
                     f"{' ' + repr(trunk.name) if isinstance(getattr(trunk, 'name', None), str) else ''}; "
                     "use sharing 'hard' or 'mmoe' with this trunk")


class CrossStitchNetwork(nn.Module):
    """T columns of a trunk with cross-stitch units after every stage (Misra et al., CVPR 2016).

    Column t starts as a copy of `trunk` (its pretrained weights included). Returns (N, T, D): task t's
    representation is column t's output. `execution` picks how convolution stages run: "grouped" (one grouped
    convolution for all columns), "loop" (column by column: about 2× faster on the 2-core CPU this was measured
    on) or "auto" (default: "loop" for CPU tensors, "grouped" otherwise); the parameters and the results are the
    same.

    >>> import torch
    >>> from multitask.models.trunks import build_trunk
    >>> net = CrossStitchNetwork(build_trunk("mlp", in_features=7, hidden=[16, 8]), n_columns=4)
    >>> net(torch.zeros(2, 7)).shape, len(net.units)
    (torch.Size([2, 4, 8]), 2)
    """

    def __init__(self, trunk: nn.Module, n_columns: int, self_weight: float = 0.9,
                 per_channel: bool = False, execution: str = "auto") -> None:
        super().__init__()
        if execution not in ("auto", "grouped", "loop"):
            raise ConfigError(f"cross_stitch execution must be 'auto', 'grouped' or 'loop', got {execution!r}")
        self.execution = execution
        if n_columns < 1:
            raise ConfigError(f"cross_stitch needs at least one column, got {n_columns}")
        if not 0.0 <= self_weight <= 1.0:
            raise ConfigError(f"cross_stitch self_weight must be in [0, 1], got {self_weight}")
        stages, pool = trunk_stages(trunk)
        if not stages:
            raise ConfigError("cross_stitch needs a trunk with at least one stage (depth/hidden layers >= 1)")
        self.n_columns = n_columns
        self.stages = nn.ModuleList()
        self.units = nn.ModuleList()
        for index, stage in enumerate(stages):
            stacked, width = _stack_stage(stage, n_columns, shared_input=index == 0)
            self.stages.append(stacked)
            self.units.append(CrossStitchUnit(n_columns, width, self_weight=self_weight, per_channel=per_channel))
        self.pool = copy.deepcopy(pool)
        self.out_features = trunk.out_features

    def forward(self, x: Tensor) -> Tensor:
        loop = self.execution == "loop" or (self.execution == "auto" and x.device.type == "cpu")
        if loop and x.dim() == 4:
            return self._forward_loop(x)
        for stage, unit in zip(self.stages, self.units, strict=True):
            x = unit(stage(x))
        if x.dim() == 4:  # (N, T·C, H, W) → (N, T, C)
            x = self.pool(x).flatten(1).unflatten(1, (self.n_columns, -1))
        return x

    def _forward_loop(self, x: Tensor) -> Tensor:
        """Convolution stages one column at a time (a Python loop over T), mixing after each stage."""
        columns = [x] * self.n_columns
        for index, (stage, unit) in enumerate(zip(self.stages, self.units, strict=True)):
            outputs = []
            for column, h in enumerate(columns):
                for module in stage:
                    shared_input = index == 0 and h is x
                    h = _column_layer(module, h, column, self.n_columns, shared_input)
                outputs.append(h)
            columns = list(unit(torch.cat(outputs, dim=1)).chunk(self.n_columns, dim=1))
        return torch.stack([self.pool(h).flatten(1) for h in columns], dim=1)

    def extra_repr(self) -> str:
        return f"columns={self.n_columns}, execution={self.execution!r}"


@SHARING.register("cross_stitch")
def cross_stitch_sharing(trunk: nn.Module, n_tasks: int, config: ModelConfig, *, self_weight: float = 0.9,
                         per_channel: bool = False, execution: str = "auto") -> tuple[nn.Module, nn.Module]:
    """One column per task with cross-stitch units after every stage, then the configured per-task heads.

    Options: `self_weight` (initial diagonal of the units, 0.9 as in the paper), `per_channel` (one (T, T)
    mixing matrix per channel instead of per stage), `execution` ("auto", "grouped" or "loop", for convolution
    trunks).
    """
    shared = CrossStitchNetwork(trunk, n_tasks, self_weight=float(self_weight), per_channel=bool(per_channel),
                                execution=str(execution))
    return shared, task_heads(shared.out_features, n_tasks, config)

