"""Image shards (multitask.data.shards): decoded shard rows equal the folder path's tensors, the epoch partition
over ranks and workers covers every example once, resume gives the same order, errors name shard and row, and
`multitask shard` + `multitask train --shards` run end to end."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from multitask.data.datasets import ImageDataset, UnreadableImageError
from multitask.data.shards import EpochLoader, open_shards, shard_dataset, shard_stream, write_shards
from multitask.errors import LabelError
from multitask.tables import read_label_table


@pytest.fixture(scope="module")
def sharded(tiny_scenes: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    table = read_label_table(tiny_scenes)
    out = tmp_path_factory.mktemp("shards")
    write_shards(table, out, shard_rows=20, group_rows=4)
    return table, out


def digest(image: torch.Tensor) -> str:
    return hashlib.sha1(image.numpy().tobytes()).hexdigest()


def test_shards_decode_to_the_folder_tensors(sharded: tuple) -> None:
    table, out = sharded
    index = open_shards(out)
    assert len(index.files) == 5 and len(index.ids) == len(table)
    from_folder = ImageDataset(table.images, table.labels, None, image_size=24)
    from_shards = shard_dataset(table, out, image_size=24)
    for row in range(len(table)):
        x, targets, known = from_shards[row]
        y, folder_targets, folder_known = from_folder[row]
        assert torch.equal(x, y)
        assert torch.equal(targets, folder_targets) and torch.equal(known, folder_known)


def test_stream_batches_hold_the_rows_labels_and_images(sharded: tuple) -> None:
    table, out = sharded
    train = table.part("train")
    stream = shard_stream(train, out, image_size=16, batch_size=8, seed=1)
    folder = {digest(ImageDataset(train.images, train.labels, None, 16)[r][0]): r for r in range(len(train))}
    targets, known = train.labels.dense()
    seen = []
    for x, batch_targets, batch_known in stream:
        rows = [folder[digest(image)] for image in x]
        assert torch.equal(batch_targets, torch.from_numpy(targets[rows]))
        assert torch.equal(batch_known, torch.from_numpy(known[rows]))
        seen += rows
    assert sorted(seen) == list(range(len(train))) or len(train) % 8 == 1
    assert len(stream) == -(-len(train) // 8)


@pytest.mark.parametrize("world,workers", [(1, 1), (1, 3), (2, 2), (3, 1), (3, 4)])
def test_partition_covers_every_example_once_per_epoch(sharded: tuple, world: int, workers: int) -> None:
    table, out = sharded
    train = table.part("train").subset(np.arange(60))  # 60: divisible by every world size above
    stream = shard_stream(train, out, image_size=8, batch_size=4, seed=0)
    stream.workers = workers
    for epoch in (0, 1):
        parts = [stream.part(rank, world, worker, epoch) for rank in range(world) for worker in range(workers)]
        assert sorted(np.concatenate(parts).tolist()) == list(range(60))
        sizes = [sum(len(stream.part(rank, world, w, epoch)) for w in range(workers)) for rank in range(world)]
        assert len(set(sizes)) == 1  # every rank takes the same number of steps
    uneven = table.part("train").subset(np.arange(61))
    padded = shard_stream(uneven, out, image_size=8, batch_size=4)
    rows = np.concatenate([padded.part(rank, 2, 0) for rank in range(2)])
    assert len(rows) == 62 and set(rows.tolist()) == set(range(61))  # padded as DistributedSampler pads


def test_epochs_differ_and_an_epoch_is_reproducible(sharded: tuple) -> None:
    table, out = sharded
    stream = shard_stream(table.part("train"), out, image_size=8, batch_size=4, seed=3)

    def order(epoch: int) -> list[str]:
        stream.epoch = epoch
        return [digest(x) for batch in stream for x in batch[0]]

    first = order(0)
    assert order(1) != first
    assert order(0) == first  # what a run resumed at epoch 0's end streams again


def test_loader_with_workers_streams_each_example_once(sharded: tuple) -> None:
    table, out = sharded
    train = table.part("train")
    stream = shard_stream(train, out, image_size=8, batch_size=5, seed=0)
    loader = EpochLoader(stream, lambda: None, num_workers=2)
    assert len(loader) == len(stream)
    expected = sorted(digest(ImageDataset(train.images, train.labels, None, 8)[r][0]) for r in range(len(train)))
    orders = []
    for _ in range(2):  # two epochs: the persistent workers count their passes
        orders.append([digest(x) for batch in loader for x in batch[0]])
        assert sorted(orders[-1]) == expected or len(train) % 5 == 1
    assert loader.passes == 2 and orders[0] != orders[1]  # the workers moved on to the next epoch's order


def test_broken_image_names_the_shard_file_and_row(sharded: tuple, tmp_path: Path) -> None:
    table, _ = sharded
    small = table.subset(np.arange(6))
    images = small.images.copy()
    broken = tmp_path / "broken.png"
    broken.write_bytes(Path(images[3]).read_bytes()[:60])  # the header, not the data
    images[3] = str(broken)
    from dataclasses import replace

    write_shards(replace(small, images=images), tmp_path / "s", shard_rows=4, group_rows=2)
    dataset = shard_dataset(small, tmp_path / "s", image_size=8)
    order = np.argsort([{"train": 0, "val": 1, "test": 2}[s] for s in small.split], kind="stable")
    position = int(np.flatnonzero(order == 3)[0])
    with pytest.raises(UnreadableImageError) as error:
        for row in range(len(small)):
            dataset[row]
    assert f"shard-{position // 4:05d}.parquet" in str(error.value) and f"row {position % 4} " in str(error.value)
    with pytest.raises(LabelError, match="in none of the shards"):
        shard_dataset(table, tmp_path / "s", image_size=8)
    with pytest.raises(LabelError, match="no shard folder"):
        open_shards(tmp_path)


@pytest.mark.slow
def test_cli_shard_then_train_from_shards(tiny_scenes: Path, tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "200"}

    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "multitask.cli", *args], cwd=tmp_path, capture_output=True,
                              text=True, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    assert "shard(s)" in cli("shard", str(tiny_scenes), "--out", str(tmp_path / "shards"), "--rows-per-shard", "30")
    cli("train", "--data", str(tiny_scenes), "--shards", str(tmp_path / "shards"), "--image-size", "32",
        "--epochs", "2", "--name", "sharded", "--model.trunk_options", "{width: 4, depth: 2}",
        "--train.batch_size=16", "--data.num_workers=1")
    assert (tmp_path / "runs" / "sharded" / "metrics.json").is_file()
