"""Tests for multitask.models.sharing: MMoE and cross-stitch networks against brute-force loop references."""

from __future__ import annotations

import doctest

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from multitask.config import ModelConfig
from multitask.models import sharing
from multitask.models.network import SHARING, MultiTaskNetwork, build_network
from multitask.models.sharing import cross_stitch, mmoe
from multitask.models.sharing.cross_stitch import ColumnLayerNorm, ColumnLinear, CrossStitchUnit
from multitask.models.trunks import build_trunk

N_FEATURES = 7
IMAGE = (3, 16, 16)
TRUNKS = {
    "mlp": {"hidden": [16, 8], "dropout": 0.0},
    "small_cnn": {"width": 4, "depth": 2},
}


def build(trunk: str, sharing_name: str, n_tasks: int = 5, **model: object) -> MultiTaskNetwork:
    config = ModelConfig(trunk=trunk, trunk_options=TRUNKS[trunk], sharing=sharing_name, **model)
    return build_network(config, n_tasks=n_tasks, n_features=N_FEATURES)


def inputs(trunk: str, n: int = 6, seed: int = 0) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    shape = (n, N_FEATURES) if trunk == "mlp" else (n, *IMAGE)
    return torch.rand(shape, generator=generator)


@torch.no_grad()
def randomize(module: nn.Module, seed: int = 0) -> None:
    """Random values in every parameter and BatchNorm statistic, so columns / experts / tasks all differ."""
    generator = torch.Generator().manual_seed(seed)
    for name, tensor in module.state_dict().items():
        if not tensor.is_floating_point():
            continue
        noise = torch.randn(tensor.shape, generator=generator)
        if name.endswith("running_var"):
            tensor.copy_(0.5 + noise.abs())
        elif name.endswith("alpha"):
            continue
        else:
            tensor.add_(0.3 * noise)


def test_registered() -> None:
    assert {"hard", "mmoe", "cross_stitch"} <= set(SHARING.names())


def test_doctests() -> None:
    for module in (sharing, mmoe, cross_stitch):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0 and result.attempted > 0, module.__name__


@pytest.mark.parametrize("trunk", ["mlp", "small_cnn"])
@pytest.mark.parametrize("sharing_name", ["mmoe", "cross_stitch"])
@pytest.mark.parametrize("n_tasks", [1, 5])
def test_shapes_and_gradients_reach_every_parameter(trunk: str, sharing_name: str, n_tasks: int) -> None:
    torch.manual_seed(0)
    net = build(trunk, sharing_name, n_tasks=n_tasks, tower_depth=1, tower_width=6)
    x = inputs(trunk)
    z = net.representation(x)
    if sharing_name == "cross_stitch":
        assert z.shape == (6, n_tasks, net.trunk.out_features)
    else:
        assert z.shape == (6, net.trunk.out_features)
    logits = net.task_logits(z)
    assert logits.shape == (6, n_tasks)
    (logits * torch.randn(logits.shape)).sum().backward()
    for name, parameter in net.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("sharing_name", ["mmoe", "cross_stitch"])
def test_state_dict_round_trip(sharing_name: str) -> None:
    first, second = build("small_cnn", sharing_name, n_tasks=3), build("small_cnn", sharing_name, n_tasks=3)
    randomize(first)
    second.load_state_dict(first.state_dict())
    first.eval(), second.eval()
    x = inputs("small_cnn")
    torch.testing.assert_close(first(x), second(x))


@pytest.mark.parametrize("sharing_name", ["mmoe", "cross_stitch"])
def test_per_task_gradients_batched_like_the_training_step(sharing_name: str) -> None:
    """Gradient methods take each task loss's gradient w.r.t. the shared output with is_grads_batched."""
    net = build("mlp", sharing_name, n_tasks=4).eval()
    z = net.representation(inputs("mlp")).detach().requires_grad_(True)
    losses = net.task_logits(z).pow(2).mean(0)
    (batched,) = torch.autograd.grad(losses, z, grad_outputs=torch.eye(4), is_grads_batched=True, retain_graph=True)
    for task in range(4):
        (single,) = torch.autograd.grad(losses[task], z, retain_graph=True)
        torch.testing.assert_close(batched[task], single)


@pytest.mark.parametrize("sharing_name, options", [("mmoe", {}), ("cross_stitch", {}),
                                                    ("cross_stitch", {"execution": "loop"})])
def test_per_task_gradients_of_shared_parameters_batched(sharing_name: str, options: dict) -> None:
    """The `gradients: parameters` mode takes a batched Jacobian w.r.t. every shared parameter."""
    config = ModelConfig(trunk="small_cnn", trunk_options=TRUNKS["small_cnn"], sharing=sharing_name,
                         sharing_options=options)
    net = build_network(config, n_tasks=3).train()
    losses = net(inputs("small_cnn")).pow(2).mean(0)
    params = net.shared_parameters()
    batched = torch.autograd.grad(losses, params, grad_outputs=torch.eye(3), is_grads_batched=True,
                                  retain_graph=True)
    for task in range(3):
        single = torch.autograd.grad(losses[task], params, retain_graph=True)
        for a, b in zip(batched, single, strict=True):
            torch.testing.assert_close(a[task], b)


# ------------------------------------------------------------------------------------------------------ MMoE
def mmoe_reference(net: MultiTaskNetwork, x: Tensor) -> Tensor:
    """Loops over tasks and experts, with the network's weights."""
    experts, block = net.trunk.experts, net.task_block
    h = net.trunk.trunk(net.normalize(x))
    n_experts, n_tasks = experts.n_experts, block.n_tasks
    outputs = []
    for e in range(n_experts):
        z = h
        for weight, bias in zip(experts.weights, experts.biases, strict=True):
            z = F.relu(z @ weight[e] + bias[e])
        outputs.append(z)
    logits = []
    for t in range(n_tasks):
        rows = slice(t * n_experts, (t + 1) * n_experts)
        gate = torch.softmax(h @ block.gates.weight[rows].T + block.gates.bias[rows], dim=1)
        mixed = sum(gate[:, e : e + 1] * outputs[e] for e in range(n_experts))
        heads = block.heads
        for weight, bias in zip(heads.tower_weights, heads.tower_biases, strict=True):
            mixed = F.relu(mixed @ weight[t] + bias[t])
        logits.append(mixed @ heads.weight[t] + heads.bias[t])
    return torch.stack(logits, dim=1)


@pytest.mark.parametrize("tower_depth", [0, 1])
def test_mmoe_equals_loop_reference(tower_depth: int) -> None:
    torch.manual_seed(0)
    config = ModelConfig(trunk="mlp", trunk_options=TRUNKS["mlp"], sharing="mmoe", tower_depth=tower_depth,
                         tower_width=5, sharing_options={"n_experts": 3, "expert_width": 6, "expert_depth": 2})
    net = build_network(config, n_tasks=5, n_features=N_FEATURES).eval()
    randomize(net)
    x = inputs("mlp")
    assert net.trunk.experts.weights[0].shape == (3, 8, 6) and len(net.trunk.experts.weights) == 2
    torch.testing.assert_close(net(x), mmoe_reference(net, x))


def test_mmoe_gates_sum_to_one() -> None:
    net = build("small_cnn", "mmoe", n_tasks=5)
    randomize(net)
    z = net.representation(inputs("small_cnn"))
    gates = net.task_block.gate_weights(z)
    assert gates.shape == (6, 5, 4)  # default 4 experts
    assert (gates > 0).all()
    torch.testing.assert_close(gates.sum(-1), torch.ones(6, 5))
    assert not torch.allclose(gates[:, 0], gates[:, 1])  # each task has its own gate


def test_mmoe_defaults_and_bad_options() -> None:
    net = build("small_cnn", "mmoe", n_tasks=2)
    assert net.trunk.experts.width == net.trunk.trunk.out_features == 8
    assert net.trunk.experts.n_experts == 4
    with pytest.raises(ValueError, match="n_experts"):
        build_network(ModelConfig(trunk="mlp", trunk_options=TRUNKS["mlp"], sharing="mmoe",
                                  sharing_options={"n_experts": 0}), n_tasks=2, n_features=N_FEATURES)


# ---------------------------------------------------------------------------------------------- cross-stitch
def set_units(net: MultiTaskNetwork, matrix: Tensor) -> None:
    with torch.no_grad():
        for unit in net.trunk.units:
            unit.alpha.copy_(matrix)


def column_trunk(net: MultiTaskNetwork, trunk: str, t: int) -> nn.Module:
    """Column t of a cross-stitch network as a plain trunk, its weights sliced out of the stacked layers."""
    single = build_trunk(trunk, in_features=N_FEATURES, **TRUNKS[trunk]) if trunk == "mlp" else build_trunk(
        trunk, **TRUNKS[trunk])
    originals = list(single.layers if trunk == "mlp" else single.features)
    stacked = [module for stage in net.trunk.stages for module in stage]
    assert len(originals) == len(stacked)
    with torch.no_grad():
        for original, module in zip(originals, stacked, strict=True):
            if isinstance(module, (ColumnLinear, ColumnLayerNorm)):
                weight = module.weight[t].T if isinstance(module, ColumnLinear) else module.weight[t]
                original.weight.copy_(weight)
                original.bias.copy_(module.bias[t])
            elif isinstance(module, (nn.Conv2d, nn.BatchNorm2d)):
                for name, tensor in original.state_dict().items():
                    source = module.state_dict()[name]
                    if name == "num_batches_tracked":
                        tensor.copy_(source)
                    else:
                        size = tensor.shape[0]
                        tensor.copy_(source[t * size : (t + 1) * size])
    return single


@pytest.mark.parametrize("trunk", ["mlp", "small_cnn"])
@pytest.mark.parametrize("train", [False, True])
def test_cross_stitch_identity_units_equal_separate_columns(trunk: str, train: bool) -> None:
    net = build(trunk, "cross_stitch", n_tasks=3)
    randomize(net)  # every column, BatchNorm statistic and head different
    set_units(net, torch.eye(3))
    net.train(train)
    x = inputs(trunk)
    z = net.representation(x)
    logits = net.task_logits(z)
    for t in range(3):
        column = column_trunk(net, trunk, t).train(train)
        expected = column(net.normalize(x))
        torch.testing.assert_close(z[:, t], expected, atol=1e-5, rtol=1e-4)
        head = net.task_block
        torch.testing.assert_close(logits[:, t], expected @ head.weight[t] + head.bias[t], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("trunk", ["mlp", "small_cnn"])
def test_cross_stitch_columns_start_as_the_trunk(trunk: str) -> None:
    """With the paper's init (rows sum to 1) and identical columns, every column computes the trunk."""
    torch.manual_seed(0)
    net = build(trunk, "cross_stitch", n_tasks=4).eval()
    alpha = net.trunk.units[0].alpha
    torch.testing.assert_close(alpha.diagonal(), torch.full((4,), 0.9))
    torch.testing.assert_close(alpha.sum(1), torch.ones(4))
    x = inputs(trunk)
    reference = column_trunk(net, trunk, 0).eval()(net.normalize(x))
    z = net.representation(x)
    for t in range(4):
        torch.testing.assert_close(z[:, t], reference, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("trunk", ["mlp", "small_cnn"])
def test_cross_stitch_columns_interact(trunk: str) -> None:
    net = build(trunk, "cross_stitch", n_tasks=3).eval()
    randomize(net)
    x = inputs(trunk)
    first_layer = net.trunk.stages[0][0]

    def task_b_after_changing_column_a() -> tuple[Tensor, Tensor]:
        before = net(x)[:, 1].clone()
        with torch.no_grad():
            rows = first_layer.weight.shape[0] // 3 if trunk == "small_cnn" else None
            if rows is None:
                first_layer.weight[0].mul_(-2.0)
            else:
                first_layer.weight[:rows].mul_(-2.0)
        return before, net(x)[:, 1]

    before, after = task_b_after_changing_column_a()  # paper init: column 0 leaks into task 1
    assert (before - after).abs().max() > 1e-3
    set_units(net, torch.eye(3))
    before, after = task_b_after_changing_column_a()  # identity units: columns independent
    torch.testing.assert_close(before, after)


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
def test_cross_stitch_unit_equals_loop(per_channel: bool, channels_last: bool) -> None:
    torch.manual_seed(0)
    t, c = 3, 4
    unit = CrossStitchUnit(t, c, per_channel=per_channel)
    with torch.no_grad():
        unit.alpha.copy_(torch.randn(unit.alpha.shape))
    x = torch.randn(2, t * c, 5, 5)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    columns = x.unflatten(1, (t, c))
    alpha = unit.alpha if per_channel else unit.alpha.unsqueeze(-1).expand(t, t, c)
    expected = [sum(alpha[s, r].view(1, c, 1, 1) * columns[:, r] for r in range(t)) for s in range(t)]
    torch.testing.assert_close(unit(x), torch.cat(expected, dim=1))
    flat = torch.randn(2, t, c)
    expected_flat = torch.stack([sum(alpha[s, r] * flat[:, r] for r in range(t)) for s in range(t)], dim=1)
    torch.testing.assert_close(unit(flat), expected_flat)


def test_cross_stitch_per_channel_option() -> None:
    config = ModelConfig(trunk="small_cnn", trunk_options=TRUNKS["small_cnn"], sharing="cross_stitch",
                         sharing_options={"per_channel": True, "self_weight": 0.8})
    net = build_network(config, n_tasks=2)
    assert net.trunk.units[1].alpha.shape == (2, 2, 8)
    torch.testing.assert_close(net.trunk.units[1].alpha[:, :, 0], torch.tensor([[0.8, 0.2], [0.2, 0.8]]))
    assert net(inputs("small_cnn")).shape == (6, 2)


@pytest.mark.parametrize("n_tasks", [1, 3])
def test_cross_stitch_loop_execution_equals_grouped(n_tasks: int) -> None:
    """Same parameters, same outputs, gradients and BatchNorm statistics, column by column or grouped."""
    nets = []
    for execution in ("grouped", "loop"):
        config = ModelConfig(trunk="small_cnn", trunk_options=TRUNKS["small_cnn"], sharing="cross_stitch",
                             sharing_options={"execution": execution})
        nets.append(build_network(config, n_tasks=n_tasks))
    grouped, loop = nets
    randomize(grouped)
    with torch.no_grad():
        for unit in grouped.trunk.units:
            unit.alpha.add_(0.1 * torch.randn(unit.alpha.shape))
    loop.load_state_dict(grouped.state_dict())
    x = inputs("small_cnn")
    for net in nets:
        net.train()
        (net(x) * torch.arange(1.0, n_tasks + 1)).sum().backward()
    torch.testing.assert_close(loop(x), grouped(x), atol=1e-5, rtol=1e-4)
    for (name, a), b in zip(grouped.named_parameters(), loop.parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, atol=1e-4, rtol=1e-3, msg=name)
    for (name, a), b in zip(grouped.state_dict().items(), loop.state_dict().values(), strict=True):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4, msg=name)  # running statistics updated alike
    grouped.eval(), loop.eval()
    torch.testing.assert_close(loop(x), grouped(x), atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="execution"):
        build_network(ModelConfig(trunk="small_cnn", sharing="cross_stitch", sharing_options={"execution": "x"}), 2)


def test_cross_stitch_single_task() -> None:
    net = build("small_cnn", "cross_stitch", n_tasks=1)
    torch.testing.assert_close(net.trunk.units[0].alpha, torch.ones(1, 1))


def test_cross_stitch_rejects_torchvision_trunks() -> None:
    with pytest.raises(ValueError, match="cross_stitch supports small_cnn and mlp trunks"):
        build_network(ModelConfig(trunk="resnet18", sharing="cross_stitch"), n_tasks=3)
