"""Hidden-label protocols: known answers per class and per example, the hidden truth, seeds, the config."""

import numpy as np
import pytest

from multitask.errors import ConfigError
from multitask.hiding import hide_labels, parse_protocol
from multitask.tables import label_table_from_arrays


def table(seed: int = 0, n: int = 200, t: int = 6, p_unknown: float = 0.2):
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, t)) < 0.35).astype(float)
    labels[rng.random((n, t)) < p_unknown] = np.nan
    split = rng.choice(["train", "val", "test"], size=n, p=[0.6, 0.2, 0.2])
    return label_table_from_arrays(rng.normal(size=(n, 2)), labels, split=split)


def check_truth(original, hidden) -> None:
    """The hidden cells were known, are unknown now, and their values are the original labels; nothing else
    changed; the test split is untouched."""
    assert not (hidden.hidden & ~original.known).any()
    assert np.array_equal(hidden.table.known, original.known & ~hidden.hidden)
    assert np.array_equal(hidden.values[hidden.hidden], original.targets[hidden.hidden])
    kept = hidden.table.known
    assert np.array_equal(hidden.table.targets[kept], original.targets[kept])
    test = original.split == "test"
    assert not hidden.hidden[test].any()


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_rps_hides_each_known_label_with_probability_p(p: float) -> None:
    original = table()
    hidden = hide_labels(original, f"rps:{p}", seed=3)
    check_truth(original, hidden)
    eligible = original.known & (original.split != "test")[:, None]
    rate = hidden.hidden.sum() / eligible.sum()
    assert abs(rate - p) < 4 * np.sqrt(p * (1 - p) / eligible.sum())


def test_rps_draws_the_same_cells_as_label_table_hide_labels() -> None:
    original = table(1)
    ours = hide_labels(original, "rps:0.5", seed=7).table
    theirs = original.hide_labels(0.5, seed=7)
    assert np.array_equal(ours.known, theirs.known) and np.array_equal(ours.targets, theirs.targets)


@pytest.mark.parametrize("k", [1, 5, 200])
def test_fpc_keeps_k_known_labels_per_class_and_split(k: int) -> None:
    original = table(2)
    hidden = hide_labels(original, f"fpc:{k}", seed=0)
    check_truth(original, hidden)
    for split in ("train", "val"):
        rows = original.split == split
        expected = np.minimum(original.known[rows].sum(axis=0), k)
        assert hidden.table.known[rows].sum(axis=0).tolist() == expected.tolist()
    test = original.split == "test"
    assert np.array_equal(hidden.table.known[test], original.known[test])


def test_single_positive_keeps_one_known_positive_per_example() -> None:
    original = table(3)
    hidden = hide_labels(original, "single_positive", seed=0)
    check_truth(original, hidden)
    rows = original.split != "test"
    has_positive = ((original.targets > 0.5) & original.known)[rows].any(axis=1)
    known = hidden.table.known[rows]
    assert known.sum(axis=1).tolist() == has_positive.astype(int).tolist()
    assert (hidden.table.targets[rows][known] == 1).all()


def test_rows_hides_whole_examples() -> None:
    original = table(4)
    hidden = hide_labels(original, "rows:0.5", seed=0)
    check_truth(original, hidden)
    touched = hidden.hidden.any(axis=1)
    assert not hidden.table.known[touched].any()


@pytest.mark.parametrize("protocol", ["rps:0.3", "fpc:4", "single_positive", "rows:0.4"])
def test_seeded(protocol: str) -> None:
    original = table(5)
    a, b = hide_labels(original, protocol, seed=11), hide_labels(original, protocol, seed=11)
    c = hide_labels(original, protocol, seed=12)
    assert np.array_equal(a.hidden, b.hidden) and not np.array_equal(a.hidden, c.hidden)


@pytest.mark.parametrize("spec", ["rps", "rps:1.5", "fpc:0", "fpc:2.5", "single_positive:3", "sigle_positive"])
def test_bad_protocols_are_refused(spec: str) -> None:
    with pytest.raises(ConfigError, match="data.hide"):
        parse_protocol(spec)


def test_config_refuses_a_bad_protocol_with_a_suggestion() -> None:
    from multitask.config import build_config

    with pytest.raises(ConfigError, match="Did you mean 'fpc'"):
        build_config({"data": {"hide": "fcp:3"}})


def test_saved_truth_round_trips(tmp_path) -> None:
    original = table(6)
    hidden = hide_labels(original, "fpc:3", seed=0)
    hidden.save(tmp_path / "hidden.npz")
    with np.load(tmp_path / "hidden.npz") as saved:
        assert np.array_equal(saved["hidden"], hidden.hidden) and np.array_equal(saved["values"], hidden.values)
        assert saved["tasks"].tolist() == list(original.tasks) and str(saved["protocol"]) == "fpc:3"
