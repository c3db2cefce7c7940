"""Tests of multitask.best_epoch: which epoch's weights are kept, and the step-scaled patience in training."""

from __future__ import annotations

import numpy as np
import pytest

from multitask.best_epoch import BestEpochRule, scaled_patience

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def kept(maps: list[float], losses: list[float], tolerance: float = 0.01) -> int | None:
    rule = BestEpochRule(tolerance)
    for epoch, (m, loss) in enumerate(zip(maps, losses, strict=True)):
        rule.update(epoch, m, loss)
    return rule.best_epoch


def test_saturated_map_lets_the_falling_loss_choose() -> None:
    """The issue's case: val mAP 1.0 from epoch 2 on while val loss falls from 3.65 to 0.42."""
    losses = list(np.linspace(3.65, 0.42, 30))
    maps = [0.9] + [1.0] * 29
    assert kept(maps, losses) == 29
    assert kept(maps, losses, tolerance=0.0) == 29  # exact ties alone already go to the lower loss


def test_an_epoch_two_spike_within_noise_is_not_kept() -> None:
    maps = [0.80, 0.905, 0.89, 0.897, 0.90, 0.899, 0.898]
    losses = [3.0, 2.8, 2.2, 1.9, 1.6, 1.4, 1.3]
    assert kept(maps, losses) == 6


def test_a_real_map_gain_beats_a_lower_loss() -> None:
    assert kept([0.80, 0.90, 0.88], [0.5, 1.0, 0.4]) == 1  # 0.88 is more than 0.01 below 0.90
    assert kept([0.80, 0.90, 0.895], [0.5, 1.0, 0.4]) == 2


def test_equal_scores_go_to_the_later_epoch_and_state_round_trips() -> None:
    rule = BestEpochRule(0.01)
    for epoch in range(3):
        assert rule.update(epoch, 0.5, 1.0)
    copy = BestEpochRule()
    copy.load_state_dict(rule.state_dict())
    assert copy == rule and copy.best_epoch == 2


def test_scaled_patience() -> None:
    assert scaled_patience(10, 200, 4) == 50
    assert scaled_patience(10, 200, 1000) == 10
    assert scaled_patience(5, 0, 3) == 5


@pytest.mark.slow
def test_training_keeps_a_late_confident_epoch_where_map_saturates_early() -> None:
    """End to end: on an easy problem val mAP reaches 1.0 within a few epochs. Monitoring val mAP alone keeps
    that early, barely trained epoch; the auto rule keeps a later one with a lower val loss and more confident
    probabilities (same seed: both runs see the same epochs)."""
    from multitask.sklearn import MultiTaskClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    X = X[np.abs(X[:, 0]) > 0.5][:120]  # a margin on both tasks' features
    X[:, 1] = np.where(np.abs(X[:, 1]) < 0.5, X[:, 1] + 1, X[:, 1])
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0]).astype(float)
    common = {"hidden": (8,), "epochs": 15, "lr": 0.02, "validation_fraction": 0.25, "select": "off",
              "patience": 3, "batch_size": 32}
    old = MultiTaskClassifier(**common, monitor="val_map", patience_steps=0).fit(X, Y)
    new = MultiTaskClassifier(**common).fit(X, Y)
    history = {h["epoch"] + 1: h for h in new.history_}
    assert history[old.best_epoch_]["val_map"] == pytest.approx(1.0)  # saturated early...
    assert new.best_epoch_ == 15 > old.best_epoch_  # ...the auto rule keeps the falling loss's epoch
    assert history[new.best_epoch_]["val_loss"] < 0.8 * history[old.best_epoch_]["val_loss"]
    assert new.predict_proba(X).max() > old.predict_proba(X).max()
