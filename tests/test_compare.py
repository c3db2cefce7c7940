"""Comparisons: approaches on the same rows, seeds, groups, and bootstrap intervals against sklearn."""

import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from multitask.bootstrap import paired_ap_difference, weighted_average_precision
from multitask.compare import Comparison, compare
from multitask.config import build_config


def test_weighted_ap_equals_sklearn_with_sample_weights() -> None:
    rng = np.random.default_rng(0)
    for _ in range(10):
        y = (rng.random(40) < 0.3).astype(int)
        scores = np.round(rng.random(40), 1)  # many ties
        weights = rng.integers(0, 4, size=(5, 40))
        expected = [average_precision_score(y, scores, sample_weight=w) if (w * y).sum() and (w * (1 - y)).sum()
                    else np.nan for w in weights]
        np.testing.assert_allclose(weighted_average_precision(y, scores, weights), expected)


def test_bootstrap_interval_detects_a_real_difference_and_not_a_null_one() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(300) < 0.4).astype(int)
    noise = rng.normal(size=(3, 300))
    good = y + 0.5 * noise
    bad = y + 3.0 * rng.normal(size=(3, 300))
    _, better = paired_ap_difference(y, bad, good, n_boot=500)
    assert better.significant and better.mean > 0.1
    _, same = paired_ap_difference(y, good, good + 1e-9 * rng.normal(size=(3, 300)), n_boot=500)
    assert not same.significant and abs(same.mean) < 1e-3


def test_bootstrap_leaves_out_resamples_without_a_positive_quietly() -> None:
    rng = np.random.default_rng(2)
    y = np.zeros(8, dtype=int)
    y[0] = 1  # one positive: about a third of the resamples draw none
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Mean of empty slice"
        samples, difference = paired_ap_difference(y, rng.random((3, 8)), rng.random((3, 8)), n_boot=300)
    drawn_none = np.isnan(samples)
    assert 0.2 < drawn_none.mean() < 0.5  # (7/8)^8 ≈ 0.34
    finite = samples[~drawn_none]
    assert difference.low == pytest.approx(np.percentile(finite, 2.5))


def config_for(tmp_path: Path, data: Path, epochs: int = 2) -> object:
    return build_config({"root": str(tmp_path), "data": {"path": str(data), "tasks": ["a", "b", "c"]},
                         "model": {"trunk": "mlp", "trunk_options": {"hidden": [8]}},
                         "train": {"epochs": epochs, "progress": False, "lr": 0.01}})


@pytest.mark.slow
def test_compare_with_seeds_and_groups(tmp_path: Path, tiny_features: Path) -> None:
    result = compare(config_for(tmp_path, tiny_features), approaches=("shared", "separate", "groups"), seeds=2,
                     groups=[["a", "b"]], out_dir=tmp_path / "cmp", n_boot=200)
    assert result.n_seeds == 2
    assert result.groups == [["a", "b"], ["c"]]
    shared = result.results["shared"]
    assert [r.seed for r in shared] == [0, 1]
    assert shared[0].runs["a"] == shared[0].runs["c"]  # one network for all tasks
    groups = result.results["groups"][0]
    assert groups.runs["a"] == groups.runs["b"] != groups.runs["c"]
    assert len(set(result.results["separate"][0].runs.values())) == 3
    # The macro mean is the mean of the per-task means.
    assert result.mean("shared", None) == pytest.approx(np.mean([result.mean("shared", t) for t in "abc"]))
    # Paired rows: each approach was tested on exactly the same examples for a task.
    ids_shared = result.results["shared"][0].test_scores("a")[0]
    ids_separate = result.results["separate"][0].test_scores("a")[0]
    assert sorted(ids_shared) == sorted(ids_separate)
    difference = result.difference("separate", "a")
    assert difference.low <= difference.mean <= difference.high
    assert result.difference("separate", "a", base="shared") == difference
    assert result.difference("shared", "a", base="separate").mean == pytest.approx(-difference.mean)
    rows = result.task_rows()
    assert [r[0] for r in rows] == ["a", "b", "c", "macro mean"] and "±" in rows[0][2]
    loaded = Comparison.load(tmp_path / "cmp")
    assert loaded.mean("separate", "b") == pytest.approx(result.mean("separate", "b"))
    assert (tmp_path / "cmp" / "report.md").read_text().count("macro mean") >= 3


def test_compare_refuses_bad_requests(tmp_path: Path, tiny_features: Path) -> None:
    config = config_for(tmp_path, tiny_features)
    with pytest.raises(ValueError, match="unknown approach"):
        compare(config, approaches=("shared", "solo"))
    with pytest.raises(ValueError, match="pretrained"):
        compare(config, approaches=("shared_pretrained",))
    with pytest.raises(ValueError, match="needs groups"):
        compare(config, approaches=("groups",))
    with pytest.raises(ValueError, match="more than one group"):
        compare(config, approaches=("groups",), groups=[["a", "b"], ["b"]])
