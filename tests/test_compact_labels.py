"""Compact labels (multitask.tables.compact): both layouts equal the dense (targets, known) pair on random tables,
through every operation a LabelTable and a dataset use; batches equal the dense rows."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from multitask.data.datasets import FeatureDataset
from multitask.tables import LabelTable, read_label_table
from multitask.tables.compact import CompactLabels, best_format, format_bytes

FORMATS = ("packed", "sparse")


def random_labels(seed: int, n: int = 257, t: int = 19, known_fraction: float = 0.3) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    known = rng.random((n, t)) < known_fraction
    targets = np.where(known, rng.random((n, t)) < 0.4, 0).astype(np.float32)
    return targets, known


def feature_table(targets: np.ndarray, known: np.ndarray) -> LabelTable:
    n = len(known)
    split = np.array(["train", "val", "test"])[np.arange(n) % 3]
    return LabelTable(tasks=tuple(f"t{j}" for j in range(known.shape[1])), targets=targets, known=known,
                      split=split, ids=np.arange(n).astype(str).astype(object),
                      features=np.arange(n, dtype=np.float32)[:, None])


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("seed,n,t,fraction", [(0, 257, 19, 0.3), (1, 40, 8, 0.0), (2, 33, 1, 1.0),
                                               (3, 0, 5, 0.5), (4, 20_000, 9, 0.01)])
def test_round_trip_and_operations_equal_dense(fmt: str, seed: int, n: int, t: int, fraction: float) -> None:
    targets, known = random_labels(seed, n, t, fraction)
    labels = CompactLabels.from_dense(targets + 7 * ~known, known, fmt)  # unknown cells' targets are ignored
    assert labels.format == fmt and labels.shape == (n, t)
    got_targets, got_known = labels.dense()
    assert got_targets.dtype == np.float32 and got_known.dtype == bool
    np.testing.assert_array_equal(got_targets, targets)
    np.testing.assert_array_equal(got_known, known)
    rng = np.random.default_rng(seed)
    index = rng.integers(0, max(n, 1), size=min(n, 50)) if n else np.zeros(0, np.int64)
    batch_targets, batch_known = labels.rows(index)
    np.testing.assert_array_equal(batch_targets, targets[index])
    np.testing.assert_array_equal(batch_known, known[index])
    mask = rng.random(n) < 0.5
    for rows in (mask, index[::-1]):
        sub = labels.subset(rows)
        np.testing.assert_array_equal(sub.dense()[1], known[rows])
        np.testing.assert_array_equal(sub.dense()[0], targets[rows])
    tasks = list(rng.permutation(t)[: max(t // 2, 1)])
    picked = labels.select(tasks)
    np.testing.assert_array_equal(picked.dense()[1], known[:, tasks])
    np.testing.assert_array_equal(picked.dense()[0], targets[:, tasks])
    n_known, n_positive = labels.counts()
    np.testing.assert_array_equal(n_known, known.sum(0))
    np.testing.assert_array_equal(n_positive, (targets > 0.5).sum(0))
    np.testing.assert_array_equal(labels.any_known(), known.any(1))
    other = labels.to("sparse" if fmt == "packed" else "packed")
    np.testing.assert_array_equal(other.dense()[1], known)
    assert labels.nbytes == format_bytes(n, t, int(known.sum()))[fmt]


def test_smaller_layout_is_chosen_by_size() -> None:
    assert best_format(1_000_000, 1_000, 10_000_000) == "sparse"  # 99 % unknown: 38 MB against 250 MB
    assert best_format(1_000, 100, 70_000) == "packed"  # 30 % unknown: 26 kB against 218 kB
    targets, known = random_labels(0, 2_000, 200, 0.01)
    labels = CompactLabels.from_dense(targets, known)
    assert labels.format == "sparse" and labels.nbytes < 0.05 * (targets.nbytes + known.nbytes)


def test_read_table_builds_compact_labels_equal_to_the_file(tmp_path: Path) -> None:
    targets, known = random_labels(5, 300, 200, 0.02)
    cells = np.where(known, np.where(targets > 0.5, "1", "0"), "?")
    path = tmp_path / "labels.csv"
    path.write_text("x," + ",".join(f"t{j}" for j in range(200)) + "\n"
                    + "".join(f"{i}," + ",".join(row) + "\n" for i, row in enumerate(cells)))
    table = read_label_table(path, feature_columns=["x"], val_fraction=0, test_fraction=0)
    assert table.labels.format == "sparse"
    np.testing.assert_array_equal(table.known, known)
    np.testing.assert_array_equal(table.targets, targets)
    picked = read_label_table(path, feature_columns=["x"], tasks=["t3", "t0"], val_fraction=0, test_fraction=0)
    np.testing.assert_array_equal(picked.known, known[:, [3, 0]])


def test_label_table_keeps_its_api_on_compact_labels() -> None:
    targets, known = random_labels(6, 90, 7, 0.2)
    dense = feature_table(targets, known)
    compact = LabelTable(tasks=dense.tasks, labels=dense.labels.to("sparse"), split=dense.split, ids=dense.ids,
                         features=dense.features)
    for table in (dense, compact):
        np.testing.assert_array_equal(table.part("val").known, known[1::3])
        np.testing.assert_array_equal(table.select_tasks(["t4", "t1"]).targets, targets[:, [4, 1]])
        kept = table.select_tasks(["t2"], drop_unlabelled=True)
        assert len(kept) == int(known[:, 2].sum())
        np.testing.assert_array_equal(table.positives(), (targets > 0.5).sum(0))
        np.testing.assert_array_equal(table.task_counts("train")[0], known[::3].sum(0))
    # hiding draws the same random numbers block by block as one (n, T) draw did
    rng = np.random.default_rng(3)
    hide = known & (np.arange(90) % 3 != 2)[:, None] & (rng.random(known.shape) < 0.5)
    for table in (dense, compact):
        hidden = table.hide_labels(0.5, seed=3)
        np.testing.assert_array_equal(hidden.known, known & ~hide)
        np.testing.assert_array_equal(hidden.targets, np.where(hide, 0, targets))


def test_replace_with_dense_arrays_still_works() -> None:
    from dataclasses import replace

    targets, known = random_labels(7, 10, 3)
    table = feature_table(targets, known)
    completed = replace(table, targets=np.ones_like(targets), known=np.ones_like(known))
    assert completed.known.all() and completed.labels.counts()[1].tolist() == [10, 10, 10]
    only_known = replace(table, known=np.ones_like(known))
    np.testing.assert_array_equal(only_known.targets, targets)


@pytest.mark.parametrize("fmt", FORMATS)
def test_batches_equal_the_dense_rows(fmt: str) -> None:
    targets, known = random_labels(8, 101, 13, 0.1)
    features = np.arange(101, dtype=np.float32)[:, None].repeat(2, axis=1)  # a row's features are its index
    dataset = FeatureDataset(features, CompactLabels.from_dense(targets, known, fmt))
    loader = DataLoader(dataset, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0))
    seen = 0
    for x, batch_targets, batch_known in loader:
        rows = x[:, 0].long().numpy()
        np.testing.assert_array_equal(batch_targets.numpy(), targets[rows])
        np.testing.assert_array_equal(batch_known.numpy(), known[rows])
        assert batch_targets.dtype == torch.float32 and batch_known.dtype == torch.bool
        seen += len(x)
    assert seen == 101
    x, t, k = dataset[5]
    np.testing.assert_array_equal(k.numpy(), known[5])
