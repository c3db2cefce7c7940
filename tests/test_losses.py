"""The masked loss against a brute-force double loop over examples and tasks."""

import math

import pytest
import torch

from multitask.losses import balanced_pos_weight, masked_logistic_loss, per_task_losses


def logistic(z: float, y: float, pos_weight: float = 1.0) -> float:
    """ℓ(z, y) = -[w·y·log σ(z) + (1 - y)·log(1 - σ(z))], written out."""
    sigma = 1 / (1 + math.exp(-z))
    return -(pos_weight * y * math.log(sigma) + (1 - y) * math.log(1 - sigma))


def brute_force(logits, targets, known, normalization="batch", task_weights=None, pos_weight=None) -> float:
    m, t = logits.shape
    total = 0.0
    for j in range(t):
        task_sum, count = 0.0, 0
        for i in range(m):
            if known[i, j]:
                w = 1.0 if pos_weight is None else float(pos_weight[j])
                task_sum += logistic(float(logits[i, j]), float(targets[i, j]), w)
                count += 1
        scale = m if normalization == "batch" else max(count, 1)
        total += (1.0 if task_weights is None else float(task_weights[j])) * task_sum / scale
    return total


def random_case(seed: int, m: int = 13, t: int = 6, p_known: float = 0.6):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(m, t, generator=g, dtype=torch.float64) * 3
    targets = (torch.rand(m, t, generator=g) < 0.4).double()
    known = torch.rand(m, t, generator=g) < p_known
    return logits, targets, known


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("normalization", ["batch", "known"])
def test_matches_brute_force(seed: int, normalization: str) -> None:
    logits, targets, known = random_case(seed)
    got = masked_logistic_loss(logits, targets, known, normalization=normalization)
    assert float(got) == pytest.approx(brute_force(logits, targets, known, normalization), rel=1e-10)


def test_task_and_positive_weights_match_brute_force() -> None:
    logits, targets, known = random_case(7)
    weights = torch.rand(6, dtype=torch.float64) * 2
    pos = torch.rand(6, dtype=torch.float64) * 4 + 0.5
    got = masked_logistic_loss(logits, targets, known, task_weights=weights, pos_weight=pos)
    assert float(got) == pytest.approx(brute_force(logits, targets, known, "batch", weights, pos), rel=1e-10)


def test_lecture_objective_is_sum_over_known_divided_by_batch_size() -> None:
    logits, targets, known = random_case(3, m=9, t=4)
    expected = sum(logistic(float(logits[i, j]), float(targets[i, j]))
                   for i in range(9) for j in range(4) if known[i, j]) / 9
    assert float(masked_logistic_loss(logits, targets, known)) == pytest.approx(expected, rel=1e-10)


def test_task_without_known_label_contributes_exactly_zero_and_no_nan() -> None:
    logits, targets, known = random_case(1)
    known[:, 2] = False
    targets[:, 2] = float("nan")  # garbage where unknown must not leak
    logits.requires_grad_(True)
    for normalization in ("batch", "known"):
        losses, counts = per_task_losses(logits, targets, known, normalization=normalization)
        assert losses[2] == 0 and counts[2] == 0
        assert torch.isfinite(losses).all()
        losses.sum().backward()
        assert torch.isfinite(logits.grad).all()
        assert (logits.grad[:, 2] == 0).all()
        logits.grad = None


def test_all_unknown_batch_is_zero() -> None:
    logits = torch.randn(4, 3, requires_grad=True)
    loss = masked_logistic_loss(logits, torch.zeros(4, 3), torch.zeros(4, 3, dtype=torch.bool), normalization="known")
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert (logits.grad == 0).all()


def test_unknown_labels_do_not_change_the_loss() -> None:
    logits, targets, known = random_case(4)
    flipped = torch.where(known, targets, 1 - targets)
    assert torch.equal(masked_logistic_loss(logits, targets, known), masked_logistic_loss(logits, flipped, known))


def test_extreme_logits_stay_finite() -> None:
    logits = torch.tensor([[1000.0, -1000.0]])
    loss = masked_logistic_loss(logits, torch.tensor([[0.0, 1.0]]), torch.ones(1, 2, dtype=torch.bool))
    assert float(loss) == pytest.approx(2000.0)


def test_balanced_pos_weight_counts_known_labels_only() -> None:
    targets = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    known = torch.tensor([[True, True, True], [True, True, True], [True, False, True], [False, True, True]])
    # task 0: 1 positive, 2 negatives known -> 2; task 1: 1 pos, 2 neg -> 2; task 2: 3 pos, 1 neg -> 1/3
    assert balanced_pos_weight(targets, known).tolist() == pytest.approx([2.0, 2.0, 1 / 3])
    assert balanced_pos_weight(torch.ones(2, 1), torch.ones(2, 1, dtype=torch.bool)).tolist() == [1.0]
