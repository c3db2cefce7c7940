"""Bootstrap confidence intervals for paired differences in average precision.

Average precision with integer example weights (bootstrap counts) is computed for many resamples at once:
sort by score once, then cumulative sums of the weighted positives and weights give precision and recall at
every distinct threshold.

>>> import numpy as np
>>> y, s = np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1])
>>> float(weighted_average_precision(y, s, np.ones((1, 4)))[0])  # = sklearn's 0.8333…
0.8333333333333333
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def weighted_average_precision(y: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AP of one task under each row of `weights` (B, n) — sklearn's step-wise AP with sample weights.

    NaN for a resample with no weighted positive or no weighted negative.
    """
    order = np.argsort(-scores, kind="mergesort")
    y, scores, w = y[order].astype(float), scores[order], weights[:, order].astype(float)
    # The last index of each group of tied scores: thresholds are the distinct scores.
    last = np.r_[np.flatnonzero(np.diff(scores) != 0), len(scores) - 1]
    true_pos = np.cumsum(w * y, axis=1)[:, last]
    predicted = np.cumsum(w, axis=1)[:, last]
    total_pos = true_pos[:, -1:]
    total_neg = predicted[:, -1:] - total_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, true_pos / predicted, 0.0)
        recall = true_pos / total_pos
        previous = np.c_[np.zeros((len(w), 1)), recall[:, :-1]]
        ap = np.sum((recall - previous) * precision, axis=1)
    return np.where((total_pos[:, 0] > 0) & (total_neg[:, 0] > 0), ap, np.nan)


@dataclass(frozen=True)
class Difference:
    """Mean paired difference (b − a) with a percentile bootstrap confidence interval."""

    mean: float
    low: float
    high: float

    @property
    def significant(self) -> bool:
        """The interval excludes 0."""
        return bool(self.low > 0 or self.high < 0)

    def __str__(self) -> str:
        mark = "*" if self.significant else " (n.s.)"
        return f"{self.mean:+.3f} [{self.low:+.3f}, {self.high:+.3f}]{mark}"


def paired_ap_difference(y: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray, *, n_boot: int = 1000,
                         seed: int = 0, level: float = 0.95) -> tuple[np.ndarray, Difference]:
    """Bootstrap over test examples and seeds of AP(b) − AP(a) for one task.

    `y` (n,) labels; `scores_a`, `scores_b` (S, n): one row per seed (the same examples in the same order).
    Each resample draws examples with replacement and seeds with replacement; the statistic is the mean over
    the drawn seeds of the AP difference. Returns the resampled differences and their summary.
    """
    scores_a, scores_b = np.atleast_2d(scores_a), np.atleast_2d(scores_b)
    rng = np.random.default_rng(seed)
    n, n_seeds = len(y), scores_a.shape[0]
    counts = rng.multinomial(n, np.full(n, 1 / n), size=n_boot)
    seed_draws = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    per_seed = np.stack([weighted_average_precision(y, scores_b[s], counts)
                         - weighted_average_precision(y, scores_a[s], counts) for s in range(n_seeds)], axis=1)
    drawn = np.take_along_axis(per_seed, seed_draws, axis=1)
    finite = np.isfinite(drawn)  # a resample without a positive has no AP: NaN, left out of the summary
    with np.errstate(invalid="ignore", divide="ignore"):
        samples = np.where(finite, drawn, 0.0).sum(axis=1) / finite.sum(axis=1)
    point = float(np.mean([weighted_average_precision(y, scores_b[s], np.ones((1, n)))[0]
                           - weighted_average_precision(y, scores_a[s], np.ones((1, n)))[0]
                           for s in range(n_seeds)]))
    return samples, summarize(samples, point, level)


def summarize(samples: np.ndarray, point: float, level: float = 0.95) -> Difference:
    finite = samples[np.isfinite(samples)]
    if not len(finite):
        return Difference(point, float("nan"), float("nan"))
    tail = (1 - level) / 2 * 100
    return Difference(point, float(np.percentile(finite, tail)), float(np.percentile(finite, 100 - tail)))
