"""Task weighting and gradient aggregation methods: known answers, absent tasks, and a toy optimisation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from multitask.weighting import WEIGHTINGS, GradientAggregator, build_weighting
from multitask.weighting.base import Weighting
from multitask.weighting.nash_mtl import nash_bargaining_weights

AGGREGATORS = [name for name in WEIGHTINGS.names() if build_weighting(name, n_tasks=2).needs_gradients]
LOSS_WEIGHTINGS = [name for name in WEIGHTINGS.names() if name not in AGGREGATORS]


def rows(*values: list[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


def conflicting_jacobian(seed: int, k: int = 3, p: int = 6) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    matrix = torch.randn(k, p, generator=generator)
    matrix[1] = -0.8 * matrix[0] + 0.3 * matrix[1]  # make sure at least one pair conflicts
    return matrix


# ------------------------------------------------------------------------------------------------ registry
def test_every_method_is_registered_with_a_one_line_description() -> None:
    expected = {"equal", "uncertainty", "gradnorm", "dwa", "rlw", "famo", "pcgrad", "mgda", "cagrad", "imtl",
                "nash_mtl", "aligned_mtl", "upgrad"}
    assert expected <= set(WEIGHTINGS.names())
    for name in WEIGHTINGS.names():
        first = (WEIGHTINGS.get(name).__doc__ or "").strip().splitlines()[0]
        assert 20 < len(first) <= 100 and "[" not in first, name  # rich would eat [markup]


def test_expected_kinds() -> None:
    assert set(AGGREGATORS) == {"gradnorm", "pcgrad", "mgda", "cagrad", "imtl", "nash_mtl", "aligned_mtl", "upgrad"}
    assert build_weighting("famo", n_tasks=2).needs_losses_after_step


def test_unknown_option_and_bad_tasks_raise() -> None:
    with pytest.raises(TypeError):
        build_weighting("mgda", n_tasks=2, nonsense=1)
    method = build_weighting("mgda", n_tasks=3)
    with pytest.raises(ValueError, match="entries"):
        method.aggregate(rows([1.0, 0.0], [0.0, 1.0]), torch.ones(2), tasks=torch.tensor([0]))
    with pytest.raises(ValueError, match="0..2"):
        method.aggregate(rows([1.0, 0.0], [0.0, 1.0]), torch.ones(2), tasks=torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="tasks="):  # stateful: rows of 2 of 3 tasks need their identity
        build_weighting("gradnorm", n_tasks=3).aggregate(rows([1.0, 0.0], [0.0, 1.0]), torch.ones(2))


# ------------------------------------------------------------------------------------------ absent tasks
@pytest.mark.parametrize("name", AGGREGATORS)
def test_absent_task_never_enters_aggregation(name: str) -> None:
    present_rows = rows([1.0, 0.5, 0.0], [-0.6, 1.0, 0.3])
    losses = torch.tensor([0.7, 0.4])
    torch.manual_seed(0)
    with_index = build_weighting(name, n_tasks=3).aggregate(present_rows, losses, tasks=torch.tensor([0, 2]))
    torch.manual_seed(0)
    alone = build_weighting(name, n_tasks=2).aggregate(present_rows, losses)
    torch.testing.assert_close(with_index, alone)
    assert torch.isfinite(with_index).all() and with_index.norm() > 0.1


def test_a_zero_row_for_an_absent_task_would_zero_mgda() -> None:
    """Why absent tasks must be dropped, not given a zero gradient: the min-norm point would be 0."""
    present_rows = rows([1.0, 0.0], [0.0, 2.0])
    padded = torch.cat([present_rows, torch.zeros(1, 2)])
    assert build_weighting("mgda", n_tasks=3).aggregate(padded, torch.ones(3)).norm() < 1e-6
    assert build_weighting("mgda", n_tasks=3).aggregate(present_rows, torch.ones(2), torch.tensor([0, 2])).norm() > 0.8


def test_last_weights_of_aggregators_are_zero_for_absent_tasks() -> None:
    method = build_weighting("imtl", n_tasks=4)
    method.aggregate(rows([1.0, 0.0], [0.0, 2.0]), torch.ones(2), tasks=torch.tensor([3, 1]))
    torch.testing.assert_close(method.last_weights, torch.tensor([0.0, 1 / 3, 0.0, 2 / 3]))


@pytest.mark.parametrize("name", LOSS_WEIGHTINGS)
def test_loss_weightings_ignore_absent_tasks(name: str) -> None:
    method = build_weighting(name, n_tasks=3)
    if name == "dwa":  # past the two equal-weight epochs
        for epoch_losses in ([1.0, 1.0, 1.0], [0.5, 1.0, 0.9]):
            method.on_epoch_end(torch.tensor(epoch_losses))
    losses = torch.tensor([0.7, 5.0, 0.3], requires_grad=True)  # the absent task's value must not matter
    present = torch.tensor([True, False, True])
    method(losses, present).backward()
    assert losses.grad is not None and losses.grad[1] == 0 and (losses.grad[[0, 2]] > 0).all()
    if method.last_weights is not None:
        assert method.last_weights[1] == 0
        if name in ("rlw", "dwa", "famo"):  # methods that normalise: over the present tasks only
            assert method.last_weights.sum().item() == pytest.approx(2.0, abs=1e-5)


@pytest.mark.parametrize("name", AGGREGATORS)
def test_a_single_present_task_keeps_its_gradient_direction(name: str) -> None:
    gradient = rows([0.3, -1.2, 0.5])
    direction = build_weighting(name, n_tasks=4).aggregate(gradient, torch.ones(1), tasks=torch.tensor([2]))
    coefficient = float(direction @ gradient[0]) / float(gradient[0] @ gradient[0])
    assert coefficient > 0
    torch.testing.assert_close(direction, coefficient * gradient[0])


@pytest.mark.parametrize("name", AGGREGATORS)
def test_zero_gradients_give_a_finite_direction(name: str) -> None:
    direction = build_weighting(name, n_tasks=3).aggregate(torch.zeros(3, 5), torch.ones(3))
    assert torch.isfinite(direction).all() and direction.abs().max() == 0


# --------------------------------------------------------------------------------------------------- mgda
def test_mgda_orthogonal_gradients_give_the_min_norm_point() -> None:
    # min_a ‖a (1,0) + (1-a) (0,2)‖² = a² + 4 (1-a)²  →  a = 4/5, point (4/5, 2/5)
    direction = build_weighting("mgda", n_tasks=2).aggregate(rows([1.0, 0.0], [0.0, 2.0]), torch.ones(2))
    torch.testing.assert_close(direction, torch.tensor([0.8, 0.4]))


def test_mgda_matches_a_brute_force_simplex_search() -> None:
    matrix = conflicting_jacobian(1)
    method = build_weighting("mgda", n_tasks=3)
    direction = method.aggregate(matrix, torch.ones(3))
    assert method.last_weights.sum().item() == pytest.approx(1.0) and (method.last_weights >= 0).all()
    grid = torch.linspace(0, 1, 201)
    best = min(float(((a * matrix[0] + b * matrix[1] + (1 - a - b) * matrix[2]) ** 2).sum())
               for a, b in itertools.product(grid, grid) if a + b <= 1)
    assert float(direction @ direction) <= best + 1e-3


# ------------------------------------------------------------------------------------------------- pcgrad
def test_pcgrad_projects_conflicting_gradients() -> None:
    # g1·g2 = -1: g1 → g1 - (-1/2) g2 = (0.5, 0.5); g2 → g2 - (-1/1) g1 = (0, 1); sum (0.5, 1.5)
    direction = build_weighting("pcgrad", n_tasks=2).aggregate(rows([1.0, 0.0], [-1.0, 1.0]), torch.ones(2))
    torch.testing.assert_close(direction, torch.tensor([0.5, 1.5]))


def test_pcgrad_leaves_agreeing_gradients_alone() -> None:
    matrix = rows([1.0, 0.2, 0.0], [0.5, 1.0, 0.1], [0.1, 0.0, 2.0])
    torch.testing.assert_close(build_weighting("pcgrad", n_tasks=3).aggregate(matrix, torch.ones(3)),
                               matrix.sum(0))


# ------------------------------------------------------------------------------------------------- upgrad
def test_upgrad_matches_torchjd_reference_value() -> None:
    # the value in torchjd's documentation (computed there with the quadprog projector)
    direction = build_weighting("upgrad", n_tasks=2).aggregate(rows([-4.0, 1.0, 1.0], [6.0, 1.0, 1.0]), torch.ones(2))
    torch.testing.assert_close(direction, torch.tensor([0.2929, 1.9004, 1.9004]), atol=1e-3, rtol=0)


@pytest.mark.parametrize("seed", range(5))
def test_upgrad_never_conflicts_with_a_task(seed: int) -> None:
    matrix = conflicting_jacobian(seed, k=4, p=7)
    direction = build_weighting("upgrad", n_tasks=4).aggregate(matrix, torch.ones(4))
    assert (matrix @ direction >= -1e-4 * matrix.norm() * direction.norm()).all()
    assert direction.norm() > 0


def test_upgrad_is_the_mean_without_conflict() -> None:
    matrix = rows([1.0, 0.2, 0.0], [0.5, 1.0, 0.1])
    torch.testing.assert_close(build_weighting("upgrad", n_tasks=2).aggregate(matrix, torch.ones(2)),
                               matrix.mean(0), atol=1e-3, rtol=0)


# --------------------------------------------------------------------------------------------------- imtl
def test_imtl_hand_computed_and_equal_projections() -> None:
    # α ∝ G⁻¹ (‖g‖) = (1/1, 2/4) → (2/3, 1/3); d = (2/3, 2/3): projection 2/3 on both unit gradients
    direction = build_weighting("imtl", n_tasks=2).aggregate(rows([1.0, 0.0], [0.0, 2.0]), torch.ones(2))
    torch.testing.assert_close(direction, torch.tensor([2 / 3, 2 / 3]))
    matrix = conflicting_jacobian(2)
    method = build_weighting("imtl", n_tasks=3)
    direction = method.aggregate(matrix, torch.ones(3))
    projections = matrix @ direction / matrix.norm(dim=1)
    torch.testing.assert_close(projections, projections.mean().expand(3), atol=1e-4, rtol=1e-4)
    assert method.last_weights.sum().item() == pytest.approx(1.0, abs=1e-5)


# ------------------------------------------------------------------------------------------------- cagrad
def test_cagrad_with_c_zero_is_the_mean_gradient() -> None:
    matrix = conflicting_jacobian(3)
    torch.testing.assert_close(build_weighting("cagrad", n_tasks=3, c=0.0).aggregate(matrix, torch.ones(3)),
                               matrix.mean(0))


@pytest.mark.parametrize("c", [0.4, 0.8])
def test_cagrad_maximises_the_worst_decrease_in_its_ball(c: float) -> None:
    matrix = rows([1.0, 0.0], [-0.5, 1.0], [0.3, 0.6]).double()
    method = build_weighting("cagrad", n_tasks=3, c=c, rescale=0)
    direction = method.aggregate(matrix.float(), torch.ones(3)).double()
    mean = matrix.mean(0)
    radius = c * mean.norm()
    assert (direction - mean).norm() <= radius * (1 + 1e-4)
    angles = torch.linspace(0, 2 * math.pi, 200_001, dtype=torch.float64)
    candidates = mean + radius * torch.stack([angles.cos(), angles.sin()], dim=1)
    best = (candidates @ matrix.T).min(dim=1).values.max()
    assert float((matrix @ direction).min()) >= float(best) - 1e-4
    rescaled = build_weighting("cagrad", n_tasks=3, c=c).aggregate(matrix.float(), torch.ones(3)).double()
    torch.testing.assert_close(rescaled, direction / (1 + c**2), atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------------------------- nash_mtl
def test_nash_mtl_orthogonal_gradients() -> None:
    # G = diag(1, 4): α_j = 1 / (α_j ‖g_j‖²) → α = (1, 1/2), d = (1, 1)
    method = build_weighting("nash_mtl", n_tasks=2)
    direction = method.aggregate(rows([1.0, 0.0], [0.0, 2.0]), torch.ones(2))
    torch.testing.assert_close(method.last_weights, torch.tensor([1.0, 0.5]), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(direction, torch.tensor([1.0, 1.0]), atol=1e-5, rtol=1e-5)


def test_nash_mtl_solves_the_bargaining_condition_and_is_scale_invariant() -> None:
    matrix = conflicting_jacobian(4, k=4, p=8)
    method = build_weighting("nash_mtl", n_tasks=4)
    direction = method.aggregate(matrix, torch.ones(4))
    alpha = method.last_weights
    torch.testing.assert_close(alpha * (matrix @ direction), torch.ones(4), atol=1e-4, rtol=1e-4)
    scaled = matrix * torch.tensor([[10.0], [1.0], [0.1], [1.0]])
    torch.testing.assert_close(build_weighting("nash_mtl", n_tasks=4).aggregate(scaled, torch.ones(4)), direction,
                               atol=1e-4, rtol=1e-4)


def test_nash_bargaining_solver_from_any_start() -> None:
    generator = torch.Generator().manual_seed(5)
    factor = torch.randn(5, 5, generator=generator, dtype=torch.float64)
    gramian = factor @ factor.T + 0.1 * torch.eye(5, dtype=torch.float64)
    for start in (None, torch.full((5,), 100.0, dtype=torch.float64), torch.full((5,), 1e-3, dtype=torch.float64)):
        alpha = nash_bargaining_weights(gramian, start)
        torch.testing.assert_close(gramian @ alpha, 1 / alpha)


def test_nash_mtl_warm_start_state_is_per_task() -> None:
    method = build_weighting("nash_mtl", n_tasks=3)
    method.aggregate(rows([1.0, 0.0], [0.0, 2.0]), torch.ones(2), tasks=torch.tensor([2, 0]))
    assert method.previous[1] == 1.0 and method.previous[0] != 1.0


def test_nash_mtl_with_a_zero_gradient_stays_finite() -> None:
    direction = build_weighting("nash_mtl", n_tasks=2).aggregate(rows([1.0, 0.0], [0.0, 0.0]), torch.ones(2))
    assert torch.isfinite(direction).all()


# -------------------------------------------------------------------------------------------- aligned_mtl
def test_aligned_mtl_orthogonal_gradients_are_equalised() -> None:
    # G = diag(9, 1): aligned rows (3,0)/3·1 = (1,0) and (0,1); their mean
    direction = build_weighting("aligned_mtl", n_tasks=2).aggregate(rows([3.0, 0.0], [0.0, 1.0]), torch.ones(2))
    torch.testing.assert_close(direction, torch.tensor([0.5, 0.5]))


def test_aligned_mtl_against_the_matrix_square_root() -> None:
    # aligned rows B J with B = √λ_min G^{-1/2}; the direction d = Jᵀ B 1/k gives J d = √λ_min G^{1/2} 1/k
    matrix = conflicting_jacobian(6).double()
    direction = build_weighting("aligned_mtl", n_tasks=3).aggregate(matrix.float(), torch.ones(3)).double()
    values, vectors = torch.linalg.eigh(matrix @ matrix.T)
    root = vectors @ torch.diag(values.sqrt()) @ vectors.T
    expected = values.min().sqrt() * root @ torch.full((3,), 1 / 3, dtype=torch.float64)
    torch.testing.assert_close(matrix @ direction, expected, atol=1e-4, rtol=1e-4)


# ----------------------------------------------------------------------------------------------- gradnorm
def test_gradnorm_moves_weight_to_the_task_with_the_smaller_gradient() -> None:
    method = build_weighting("gradnorm", n_tasks=2)
    direction = method.aggregate(rows([1.0, 0.0], [0.0, 3.0]), torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(direction, torch.tensor([1.0, 3.0]))  # the current weights (1, 1)
    # G = (1, 3), Ḡ = 2, equal rates → targets 2: w_1 up, w_2 down by lr ‖g‖/mean‖g‖, then rescaled to sum 2
    w = torch.tensor([1 + 0.025 * 0.5, 1 - 0.025 * 1.5])
    torch.testing.assert_close(method.task_weights, 2 * w / w.sum())
    for _ in range(200):
        method.aggregate(rows([1.0, 0.0], [0.0, 3.0]), torch.tensor([1.0, 1.0]))
    weights = method.task_weights
    assert weights.sum().item() == pytest.approx(2.0)
    assert weights[0] / weights[1] == pytest.approx(3.0, rel=0.1)  # w_j ‖g_j‖ equalised


def test_gradnorm_moves_weight_to_the_slower_task() -> None:
    method = build_weighting("gradnorm", n_tasks=2)
    method.aggregate(rows([1.0, 0.0], [0.0, 1.0]), torch.tensor([1.0, 1.0]))  # initial losses
    method.aggregate(rows([1.0, 0.0], [0.0, 1.0]), torch.tensor([0.2, 0.9]))  # task 1 trains slower
    assert method.task_weights[1] > 1 > method.task_weights[0]


def test_gradnorm_state_is_per_present_task() -> None:
    method = build_weighting("gradnorm", n_tasks=3)
    method.aggregate(rows([1.0, 0.0], [0.0, 3.0]), torch.tensor([1.0, 2.0]), tasks=torch.tensor([2, 0]))
    assert method.task_weights[1] == 1.0 and torch.isnan(method.initial_losses[1])
    torch.testing.assert_close(method.initial_losses[[2, 0]], torch.tensor([1.0, 2.0]))
    assert method.task_weights[2] > method.task_weights[0]
    assert method.task_weights[[0, 2]].sum().item() == pytest.approx(2.0)


# -------------------------------------------------------------------------------------------- uncertainty
def test_uncertainty_gradient_vanishes_at_the_optimum() -> None:
    losses = torch.tensor([0.3, 2.0, 0.8])
    present = torch.tensor([True, True, False])
    method = build_weighting("uncertainty", n_tasks=3)
    with torch.no_grad():
        method.log_variance.copy_(torch.log(2 * losses))  # s* = log(2L): d/ds (e^{-s} L + s/2) = 0
    method(losses, present).backward()
    torch.testing.assert_close(method.log_variance.grad, torch.zeros(3))
    torch.testing.assert_close(method.last_weights, torch.tensor([1 / 0.6, 1 / 4.0, 0.0]))
    method.log_variance.grad = None
    with torch.no_grad():
        method.log_variance.zero_()
    method(losses, present).backward()  # at s = 0: gradient -L + 1/2, nothing for the absent task
    torch.testing.assert_close(method.log_variance.grad, torch.tensor([0.2, -1.5, 0.0]))


# ---------------------------------------------------------------------------------------------------- dwa
def test_dwa_weights_from_loss_history() -> None:
    method = build_weighting("dwa", n_tasks=3)
    present = torch.tensor([True, True, True])
    method(torch.ones(3), present)
    torch.testing.assert_close(method.last_weights, torch.ones(3))  # epoch 1: equal
    method.on_epoch_end(torch.tensor([1.0, 2.0, 1.0]))
    method(torch.ones(3), present)
    torch.testing.assert_close(method.last_weights, torch.ones(3))  # epoch 2: equal
    method.on_epoch_end(torch.tensor([0.5, 2.0, 0.8]))
    method(torch.ones(3), present)
    ratios = torch.tensor([0.5, 1.0, 0.8])
    expected = 3 * torch.exp(ratios / 2) / torch.exp(ratios / 2).sum()
    torch.testing.assert_close(method.last_weights, expected)
    method(torch.ones(3), torch.tensor([True, False, True]))  # renormalised over the present tasks
    pair = torch.exp(ratios[[0, 2]] / 2)
    expected = torch.tensor([2 * pair[0] / pair.sum(), 0, 2 * pair[1] / pair.sum()])
    torch.testing.assert_close(method.last_weights, expected)


def test_dwa_task_without_history_gets_ratio_one() -> None:
    method = build_weighting("dwa", n_tasks=2, temperature=1.0)
    method.on_epoch_end(torch.tensor([0.0, 1.0]))  # task 0 absent the whole epoch
    method.on_epoch_end(torch.tensor([0.7, 0.5]))
    torch.testing.assert_close(method.ratios(), torch.tensor([1.0, 0.5]))


# ---------------------------------------------------------------------------------------------------- rlw
def test_rlw_weights_are_seeded_sum_to_k_and_vary() -> None:
    present = torch.tensor([True, True, False, True])
    first = build_weighting("rlw", n_tasks=4, seed=3)
    second = build_weighting("rlw", n_tasks=4, seed=3)
    a, b = first.sample(present), second.sample(present)
    torch.testing.assert_close(a, b)
    assert a.sum().item() == pytest.approx(3.0) and a[2] == 0 and (a[present] > 0).all()
    assert not torch.allclose(first.sample(present), a)
    losses = torch.tensor([1.0, 2.0, 0.0, 3.0])
    objective = build_weighting("rlw", n_tasks=4, seed=3)(losses, present)
    assert objective.item() == pytest.approx(float((a * losses).sum()), rel=1e-6)


# --------------------------------------------------------------------------------------------------- famo
def test_famo_weights_are_inverse_loss_times_softmax() -> None:
    method = build_weighting("famo", n_tasks=3)
    losses = torch.tensor([1.0, 2.0, 0.0], requires_grad=True)
    method(losses, torch.tensor([True, True, False])).backward()
    # z = (1/2, 1/2): w ∝ z/L = (1/2, 1/4), scaled to sum 2 → (4/3, 2/3); ∂J/∂L_j = w_j
    torch.testing.assert_close(method.last_weights, torch.tensor([4 / 3, 2 / 3, 0.0]))
    torch.testing.assert_close(losses.grad, torch.tensor([4 / 3, 2 / 3, 0.0]))


def test_famo_update_raises_the_weight_of_the_lagging_task() -> None:
    method = build_weighting("famo", n_tasks=3)
    present = torch.tensor([True, False, True])
    method.after_step(torch.tensor([1.0, 0.0, 1.0]), torch.tensor([0.5, 0.0, 1.0]), present)
    # δ = (log 2, 0), z = (1/2, 1/2): ∂(δ·z)/∂ξ = (+log2/4, -log2/4); the first Adam step moves by lr·sign
    torch.testing.assert_close(method.logits, torch.tensor([-0.025, 0.0, 0.025]))
    assert method.steps.tolist() == [1.0, 0.0, 1.0]
    method(torch.tensor([1.0, 0.0, 1.0]), present)
    assert method.last_weights[2] > 1 > method.last_weights[0]


# ---------------------------------------------------------------------------------------- toy optimisation
class Toy(nn.Module):
    def __init__(self, n_tasks: int) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(5, 8), nn.Tanh())
        self.heads = nn.Linear(8, n_tasks)


def toy_losses(logits: torch.Tensor, targets: torch.Tensor, known: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mask = known.float()
    elementwise = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    counts = mask.sum(0)
    return (elementwise * mask).sum(0) / counts.clamp(min=1), counts > 0


def toy_step(model: Toy, method: Weighting, x: torch.Tensor, targets: torch.Tensor,
             known: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One training step the way the training loop does it (gradient aggregators: one pass through the trunk)."""
    z = model.trunk(x)
    if isinstance(method, GradientAggregator):
        shared = z.detach().requires_grad_(True)
        losses, present = toy_losses(model.heads(shared), targets, known)
        index = present.nonzero().flatten()
        selected = losses[index]
        eye = torch.eye(len(index))
        (gradients,) = torch.autograd.grad(selected, shared, grad_outputs=eye, is_grads_batched=True,
                                           retain_graph=True)
        direction = method.aggregate(gradients.flatten(1), selected.detach(), index)
        objective = selected.sum() + (z * direction.view_as(z)).sum()
    else:
        losses, present = toy_losses(model.heads(z), targets, known)
        objective = method(losses, present)
    objective.backward()
    return losses.detach(), present


@pytest.mark.parametrize("name", WEIGHTINGS.names())
def test_every_method_trains_a_toy_network_without_nan(name: str) -> None:
    torch.manual_seed(0)
    n_tasks = 4
    model = Toy(n_tasks)
    method = build_weighting(name, n_tasks=n_tasks)
    optimizer = torch.optim.AdamW([*model.parameters(), *method.parameters()], lr=0.05)
    x = torch.randn(24, 5)
    targets = (x[:, :n_tasks] + 0.3 * torch.randn(24, n_tasks) > 0).float()
    known = torch.rand(24, n_tasks) > 0.4
    known[:12, 1] = False  # task 1 has no label in the first batch
    first = None
    for _ in range(3):
        epoch_sum, epoch_count = torch.zeros(n_tasks), torch.zeros(n_tasks)
        for batch in (slice(0, 12), slice(12, 24)):
            optimizer.zero_grad()
            losses, present = toy_step(model, method, x[batch], targets[batch], known[batch])
            optimizer.step()
            if method.needs_losses_after_step:
                with torch.no_grad():
                    after, _ = toy_losses(model.heads(model.trunk(x[batch])), targets[batch], known[batch])
                method.after_step(losses, after, present)
            epoch_sum += torch.where(present, losses, 0.0)
            epoch_count += present.float()
            assert torch.isfinite(losses).all()
        method.on_epoch_end(epoch_sum / epoch_count.clamp(min=1))
        total = float(epoch_sum.sum())
        first = total if first is None else first
    for parameter in [*model.parameters(), *method.parameters()]:
        assert torch.isfinite(parameter).all()
    for buffer in method.buffers():  # GradNorm's initial losses are NaN for a task not seen yet
        assert not torch.isinf(buffer).any()
    assert total < first  # 3 epochs of 2 steps at lr 0.05 reduce the summed loss


def test_state_dict_round_trip_keeps_method_state() -> None:
    method = build_weighting("famo", n_tasks=2)
    method.after_step(torch.tensor([1.0, 1.0]), torch.tensor([0.5, 1.0]), torch.tensor([True, True]))
    copy = build_weighting("famo", n_tasks=2)
    copy.load_state_dict(method.state_dict())
    torch.testing.assert_close(copy.logits, method.logits)


def test_gramian_methods_accept_half_precision_rows() -> None:
    matrix = conflicting_jacobian(7).to(torch.bfloat16)
    for name in AGGREGATORS:
        direction = build_weighting(name, n_tasks=3).aggregate(matrix, torch.ones(3, dtype=torch.bfloat16))
        assert direction.dtype == torch.bfloat16 and torch.isfinite(direction.float()).all()
        assert np.isfinite(direction.float().numpy()).all()
