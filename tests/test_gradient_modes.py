"""The training step's two gradient modes against brute force: T separate backward passes."""

import numpy as np
import pytest
import torch

from multitask.config import build_config
from multitask.models.network import build_network
from multitask.training import MultiTaskModule
from multitask.weighting import GradientAggregator


class SumAggregator(GradientAggregator):
    """Returns the plain sum: must reproduce ordinary backpropagation of Σ_j L_j."""

    def aggregate(self, gradients, losses, tasks=None):
        return gradients.sum(dim=0)


class FirstTaskAggregator(GradientAggregator):
    """Follows only the first present task: a direction that differs from the sum."""

    def aggregate(self, gradients, losses, tasks=None):
        return gradients[0]


def setup(mode: str, aggregator: GradientAggregator):
    config = build_config({"model": {"trunk": "mlp", "trunk_options": {"hidden": [8], "dropout": 0.0}},
                           "train": {"gradients": mode}})
    torch.manual_seed(0)
    network = build_network(config.model, n_tasks=3, n_features=5)
    module = MultiTaskModule(network, ("a", "b", "c"), config.loss, config.train, weighting=aggregator)
    module.log = lambda *args, **kwargs: None
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.normal(size=(16, 5)), dtype=torch.float32)
    targets = torch.tensor(rng.random((16, 3)) < 0.5, dtype=torch.float32)
    known = torch.tensor(rng.random((16, 3)) < 0.7)
    known[:, 0] = False  # task a absent from this batch
    return network, module, (x, targets, known)


@pytest.mark.parametrize("mode", ["representation", "parameters"])
def test_sum_aggregation_equals_plain_backpropagation(mode: str) -> None:
    network, module, batch = setup(mode, SumAggregator(3))
    module.training_step(batch, 0).backward()
    got = {n: p.grad.clone() for n, p in network.named_parameters()}
    network.zero_grad()
    losses, _ = module.task_losses(network(batch[0]), batch[1], batch[2])
    losses.sum().backward()
    for name, parameter in network.named_parameters():
        torch.testing.assert_close(got[name], parameter.grad, msg=name)


def test_parameter_mode_follows_the_aggregated_direction_in_the_trunk_only() -> None:
    network, module, batch = setup("parameters", FirstTaskAggregator(3))
    module.training_step(batch, 0).backward()
    got = {n: p.grad.clone() for n, p in network.named_parameters()}
    # Brute force: task b is the first present task; the trunk follows its gradient alone,
    # the heads get the gradient of the sum (each head only sees its own task).
    network.zero_grad()
    losses, _ = module.task_losses(network(batch[0]), batch[1], batch[2])
    losses[1].backward(retain_graph=True)
    for name, parameter in network.trunk.named_parameters():
        torch.testing.assert_close(got[f"trunk.{name}"], parameter.grad, msg=name)
    network.zero_grad()
    losses.sum().backward()
    for name, parameter in network.task_block.named_parameters():
        torch.testing.assert_close(got[f"task_block.{name}"], parameter.grad, msg=name)


def test_representation_mode_backpropagates_the_direction_through_the_trunk() -> None:
    network, module, batch = setup("representation", FirstTaskAggregator(3))
    module.training_step(batch, 0).backward()
    got = {n: p.grad.clone() for n, p in network.trunk.named_parameters()}
    network.zero_grad()
    z = network.representation(batch[0])
    losses, _ = module.task_losses(network.task_logits(z), batch[1], batch[2])
    (direction,) = torch.autograd.grad(losses[1], z, retain_graph=True)
    z.backward(direction)
    for name, parameter in network.trunk.named_parameters():
        torch.testing.assert_close(got[name], parameter.grad, msg=name)
