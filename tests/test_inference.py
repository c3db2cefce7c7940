"""The one inference path (multitask.inference) and the representation-gradient step (multitask.gradients)."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import TensorDataset

from multitask.config import ModelConfig
from multitask.gradients import representation_gradients, surrogate_objective
from multitask.inference import default_device, predict_logits, predict_proba
from multitask.losses import per_task_losses
from multitask.models.network import build_network


def mlp_network(n_tasks: int = 3, n_features: int = 5, seed: int = 0):
    torch.manual_seed(seed)
    return build_network(ModelConfig(trunk="mlp", trunk_options={"hidden": [16], "dropout": 0.5}), n_tasks,
                         n_features)


def test_tensor_array_and_dataset_inputs_agree_with_a_forward_pass() -> None:
    network = mlp_network()
    x = torch.randn(37, 5)
    expected = network.eval()(x).detach().numpy()
    network.train()
    targets = torch.zeros(37, 3)
    for inputs in (x, x.numpy(), TensorDataset(x, targets, targets.bool())):
        logits = predict_logits(network, inputs, batch_size=8, device="cpu")
        assert logits.shape == (37, 3) and logits.dtype == np.float32
        np.testing.assert_allclose(logits, expected, atol=1e-5)
    assert network.training  # dropout was off for the predictions, and the caller's mode is restored


def test_float64_does_not_depend_on_the_batching() -> None:
    network = mlp_network()
    x = np.random.default_rng(0).normal(size=(50, 5)).astype(np.float32)
    whole = predict_logits(network, x, batch_size=4096, device="cpu", dtype=torch.float64)
    rows = np.concatenate([predict_logits(network, x[i:i + 1], device="cpu", dtype=torch.float64)
                           for i in range(len(x))])
    assert whole.dtype == np.float64
    np.testing.assert_allclose(rows, whole, rtol=0, atol=1e-12)
    assert next(network.parameters()).dtype == torch.float32  # a float64 copy was evaluated


def test_probabilities_are_the_stable_sigmoid_of_the_logits() -> None:
    network = torch.nn.Linear(1, 1)
    with torch.no_grad():
        network.weight.fill_(1.0)
        network.bias.zero_()
    x = torch.tensor([[-1000.0], [0.0], [1000.0]])
    np.testing.assert_array_equal(predict_proba(network, x, device="cpu").ravel(), [0.0, 0.5, 1.0])


def test_no_rows_give_an_empty_matrix_and_the_cpu_is_chosen_when_asked() -> None:
    assert predict_logits(mlp_network(), np.zeros((0, 5), np.float32), device="cpu").shape == (0, 3)
    assert default_device("cpu") == torch.device("cpu")


def test_representation_gradients_match_autograd_per_task() -> None:
    network = mlp_network(n_tasks=3)
    x = torch.randn(6, 5)
    targets = torch.randint(0, 2, (6, 3)).float()
    known = torch.ones(6, 3, dtype=torch.bool)
    known[:, 1] = False  # task 1 is absent from this batch
    z = network.representation(x)

    def losses_of(shared):
        return per_task_losses(network.task_logits(shared), targets, known, normalization="known")

    step = representation_gradients(z, losses_of)
    assert step.index.tolist() == [0, 2] and step.present.tolist() == [True, False, True]
    for row, task in enumerate((0, 2)):  # brute force: one backward per task
        shared = z.detach().requires_grad_(True)
        (reference,) = torch.autograd.grad(losses_of(shared)[0][task], shared)
        torch.testing.assert_close(step.gradients[row], reference)
    # the surrogate gives the trunk exactly the chosen direction
    direction = step.gradients.sum(0)
    z_leaf = z.detach().requires_grad_(True)
    surrogate_objective(step.selected.detach(), z_leaf, direction).backward()
    torch.testing.assert_close(z_leaf.grad, direction)


def test_no_task_present_gives_no_gradients() -> None:
    z = torch.randn(2, 4, requires_grad=True)
    step = representation_gradients(z, lambda shared: (shared.sum(0)[:2] * 0, torch.zeros(2)))
    assert step.gradients is None and len(step.index) == 0
