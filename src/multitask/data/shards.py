"""Image shards: a label table's images as Parquet files of encoded bytes, streamed while training.

For image sets that do not fit in memory (or whose millions of small files are slow to open). The format is
Parquet through pyarrow, which the project already depends on for reading tables, rather than WebDataset tar
shards (a new dependency, and tar has no index: a row can only be found by reading up to it): a Parquet file
is self-describing, checksummed per page, read by every data tool, and its row groups give cheap sequential
streaming *and* random access to one group of rows — which the validation and test splits use to predict in
table order.

Layout of a shard folder (:func:`write_shards`, ``multitask shard``): ``shard-00000.parquet``, … with columns
``id`` (the table's image column value), ``image`` (the file's bytes, unchanged: decoding a shard gives exactly
the tensor decoding the file gives) and ``split``, in row groups of :data:`GROUP_ROWS`; rows in the table's order,
train rows first, then val, then test; and ``shards.json`` listing the files. The labels stay in the label table
(read as usual; rows are matched to shard rows by id), so one shard folder serves every task selection.

Training (``data.shards``) streams the training split with :class:`ShardStream`, an IterableDataset:

- each epoch, the row groups are put in a seeded random order (seed, epoch), and the rows in that order are
  cut into equal contiguous parts, one per DDP rank (padded by repeating the first rows, as PyTorch's
  DistributedSampler does, so every rank takes the same number of steps), and each rank's part into whole
  batches per DataLoader worker: every example is read exactly once per epoch (when the rank count divides the
  number of rows), each row group by one worker;
- every worker passes its rows through a shuffle buffer of :data:`BUFFER` encoded images (seeded by seed, epoch,
  rank and worker), decodes and augments them (so decoding runs in the DataLoader workers) and yields batches;
- exact resume: the order depends only on (seed, epoch, ranks, workers), and ``last.ckpt`` is written at the end
  of an epoch, so a resumed run (same ranks and workers) streams the same batches as an uninterrupted one; a
  run stopped mid-epoch repeats that epoch from its start, as with the in-memory loader.

A broken image raises :class:`~multitask.data.datasets.UnreadableImageError` naming the shard file and the row.

>>> import tempfile, pathlib, numpy as np
>>> from PIL import Image
>>> from multitask.tables import LabelTable
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> for name in ("a.png", "b.png"):
...     Image.new("RGB", (4, 4), (200, 10, 10)).save(folder / name)
>>> table = LabelTable(tasks=("red",), targets=np.ones((2, 1), np.float32), known=np.ones((2, 1), bool),
...                    split=np.array(["train", "test"]), ids=np.array(["a.png", "b.png"], dtype=object),
...                    images=np.array([str(folder / "a.png"), str(folder / "b.png")], dtype=object))
>>> [p.name for p in write_shards(table, folder / "shards")]
['shard-00000.parquet']
>>> images = shard_dataset(table.part("test"), folder / "shards", image_size=2)
>>> images[0][0].shape, round(float(images[0][0][0, 0, 0]), 4)  # 200 / 255
(torch.Size([3, 2, 2]), 0.7843)
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from torchvision.transforms import v2

from multitask.data.datasets import UnreadableImageError, _LabelledDataset, eval_transform, squash
from multitask.data.images import read_rgb
from multitask.errors import LabelError
from multitask.files import atomic_write_text, atomic_write_with
from multitask.tables.compact import CompactLabels
from multitask.tables.table import LabelTable

MANIFEST = "shards.json"
FORMAT = "multitask-image-shards"
SHARD_ROWS = 4096
GROUP_ROWS = 64
BUFFER = 512
_SPLIT_ORDER = {"train": 0, "val": 1, "test": 2}
_SCHEMA = pa.schema([("id", pa.string()), ("image", pa.binary()), ("split", pa.string())])


# ----------------------------------------------------------------------------------------------- writing
def write_shards(table: LabelTable, out: str | Path, shard_rows: int = SHARD_ROWS,
                 group_rows: int = GROUP_ROWS) -> list[Path]:
    """Write the images of an image table as Parquet shards in `out` (layout in the module docstring); each file
    is written atomically, the manifest last. Returns the shard paths."""
    if table.kind != "images":
        raise LabelError("only an image table can be sharded (this one has feature columns)", file=table.source)
    if shard_rows < 1 or group_rows < 1:
        raise ValueError("shard_rows and group_rows must be positive")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    order = np.argsort(np.array([_SPLIT_ORDER.get(str(s), 3) for s in table.split]), kind="stable")
    order = order[~pd.Index(table.ids[order].astype(str)).duplicated()]  # an image listed twice is stored once
    paths, entries = [], []
    for number, start in enumerate(range(0, len(order), shard_rows)):
        rows = order[start:start + shard_rows]
        path = out / f"shard-{number:05d}.parquet"
        atomic_write_with(path, lambda tmp, rows=rows: _write_shard(tmp, table, rows, group_rows))
        paths.append(path)
        entries.append({"file": path.name, "rows": len(rows)})
    manifest = {"format": FORMAT, "version": 1, "source": table.source, "rows": len(order),
                "group_rows": group_rows, "shards": entries}
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return paths


def _write_shard(path: Path, table: LabelTable, rows: np.ndarray, group_rows: int) -> None:
    with pq.ParquetWriter(path, _SCHEMA, compression="none") as writer:  # JPEG / PNG bytes do not compress
        for start in range(0, len(rows), group_rows):
            group = rows[start:start + group_rows]
            data = []
            for row in group:
                try:
                    data.append(Path(table.images[row]).read_bytes())
                except OSError as error:
                    raise LabelError(f"cannot read image ({error.strerror or error})", file=table.images[row]) \
                        from None
            writer.write_table(pa.table({"id": pa.array([str(table.ids[r]) for r in group], pa.string()),
                                         "image": pa.array(data, pa.binary()),
                                         "split": pa.array([str(table.split[r]) for r in group], pa.string())},
                                        schema=_SCHEMA), row_group_size=group_rows)


# ----------------------------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class ShardIndex:
    """Where every image of a shard folder is: its file, its row in the file, and the row groups' starts."""

    folder: Path
    files: tuple[Path, ...]
    group_starts: tuple[np.ndarray, ...]  # per file: the first row of each row group, and the file's row count
    ids: pd.Index  # the images' ids, in file order
    file_of: np.ndarray  # (images,) index into files
    row_of: np.ndarray  # (images,) row within its file
    offsets: np.ndarray  # (files + 1,) position in `ids` of each file's first image

    def locate(self, ids: Sequence[str], source: str = "") -> tuple[np.ndarray, np.ndarray]:
        """(file, row) of each id; LabelError naming the first id that is in no shard."""
        position = self.ids.get_indexer(pd.Index([str(i) for i in ids]))
        if (position < 0).any():
            missing = str(ids[int(np.argmax(position < 0))])
            raise LabelError(f"image {missing!r} of the table is in none of the shards in {self.folder} (written "
                             "from another table? write them again with `multitask shard`)", file=source or None)
        return self.file_of[position], self.row_of[position]

    def group_of(self, file: int, row: int) -> tuple[int, int]:
        """(row group, offset in it) of a row of a file."""
        starts = self.group_starts[file]
        group = int(np.searchsorted(starts, row, side="right")) - 1
        return group, row - int(starts[group])


def open_shards(folder: str | Path) -> ShardIndex:
    """The index of a shard folder (its manifest and every file's ids); LabelError naming a missing or damaged
    file. Cached per folder and manifest modification time."""
    manifest = Path(folder) / MANIFEST
    try:
        stamp = manifest.stat().st_mtime_ns
    except OSError:
        raise LabelError(f"no shard folder here (no {MANIFEST}); write one with `multitask shard`",
                         file=Path(folder)) from None
    return _open_shards(str(Path(folder).resolve()), stamp)


@lru_cache(maxsize=4)
def _open_shards(folder: str, stamp: int) -> ShardIndex:
    root = Path(folder)
    manifest = root / MANIFEST
    try:
        entries = json.loads(manifest.read_text())
        if entries.get("format") != FORMAT:
            raise ValueError(f"format is {entries.get('format')!r}, not {FORMAT!r}")
        names = [entry["file"] for entry in entries["shards"]]
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise LabelError(f"not a shard manifest ({error})", file=manifest) from None
    files, starts, ids, file_of, row_of = [], [], [], [], []
    for k, name in enumerate(names):
        path = root / name
        try:
            handle = pq.ParquetFile(path)
            sizes = [handle.metadata.row_group(g).num_rows for g in range(handle.num_row_groups)]
            column = handle.read(columns=["id"]).column("id").to_numpy(zero_copy_only=False)
        except Exception as error:  # pyarrow raises several unrelated types for a missing or damaged file
            raise LabelError(f"not a readable image shard: {error}", file=path) from None
        files.append(path)
        starts.append(np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64))
        ids.append(column.astype(object))
        file_of.append(np.full(len(column), k, dtype=np.int32))
        row_of.append(np.arange(len(column), dtype=np.int64))
    joined = pd.Index(np.concatenate(ids) if ids else np.zeros(0, object))
    if not joined.is_unique:
        raise LabelError(f"image {joined[joined.duplicated()][0]!r} is in the shards twice", file=manifest)
    offsets = np.concatenate([[0], np.cumsum([len(column) for column in ids])]).astype(np.int64)
    return ShardIndex(root, tuple(files), tuple(starts), joined,
                      np.concatenate(file_of) if file_of else np.zeros(0, np.int32),
                      np.concatenate(row_of) if row_of else np.zeros(0, np.int64), offsets)


@dataclass
class _GroupReader:
    """Reads one row group's encoded images at a time (kept until another is asked for); file handles are
    opened in the process that reads (DataLoader workers), never pickled."""

    index: ShardIndex
    _handles: dict[int, pq.ParquetFile] = field(default_factory=dict, repr=False)
    _cached: tuple[tuple[int, int], list[bytes]] | None = field(default=None, repr=False)

    def __getstate__(self) -> dict:
        return {"index": self.index, "_handles": {}, "_cached": None}

    def image(self, file: int, row: int) -> bytes:
        group, offset = self.index.group_of(file, row)
        if self._cached is None or self._cached[0] != (file, group):
            handle = self._handles.get(file)
            if handle is None:
                handle = self._handles[file] = pq.ParquetFile(self.index.files[file])
            try:
                data = handle.read_row_group(group, columns=["image"]).column("image").to_pylist()
            except Exception as error:  # a damaged file: pyarrow's several error types
                raise LabelError(f"cannot read row group {group} ({error})", file=self.index.files[file]) from None
            self._cached = ((file, group), data)
        return self._cached[1][offset]

    def decode(self, file: int, row: int, size: int) -> Tensor:
        """The image at (file, row) as uint8 (3, size, size), decoded exactly as its file would be."""
        return self.decode_bytes(self.image(file, row), file, row, size)

    def decode_bytes(self, data: bytes, file: int, row: int, size: int) -> Tensor:
        """Encoded bytes already read from (file, row), decoded (errors name the shard file and row)."""
        try:
            array = read_rgb(io.BytesIO(data))
        except LabelError as error:
            name = self.index.ids[int(self.index.offsets[file]) + row]
            raise UnreadableImageError(f"row {row} (image {name!r}): {error.reason}",
                                       file=self.index.files[file]) from None
        return squash(array, size)


class ShardImages(_LabelledDataset):
    """A map-style dataset over shard rows (random access by row group; in table order, the validation and test
    splits read each group once)."""

    def __init__(self, index: ShardIndex, files: np.ndarray, rows: np.ndarray, labels: CompactLabels,
                 image_size: int, transform: v2.Transform | None = None) -> None:
        self.reader = _GroupReader(index)
        self.files, self.rows, self.labels = files, rows, labels
        self.image_size = image_size
        self.transform = transform or eval_transform()
        self.images = None  # never cached in memory (make_loader reads this)

    def input(self, index: int) -> Tensor:
        return self.transform(self.reader.decode(int(self.files[index]), int(self.rows[index]), self.image_size))


def shard_dataset(table: LabelTable, folder: str | Path, image_size: int,
                  transform: v2.Transform | None = None) -> ShardImages:
    """A table's images from a shard folder, in table order, with its labels."""
    index = open_shards(folder)
    files, rows = index.locate(table.ids, table.source)
    return ShardImages(index, files, rows, table.labels, image_size, transform)


# ------------------------------------------------------------------------------------------- streaming
def epoch_order(index: ShardIndex, files: np.ndarray, rows: np.ndarray, seed: int, epoch: int) -> np.ndarray:
    """The dataset's rows in the epoch's read order: row groups in a seeded random order, each group's rows in
    file order."""
    groups = np.zeros(len(rows), dtype=np.int64)
    for file in np.unique(files):
        mine = files == file
        groups[mine] = np.searchsorted(index.group_starts[int(file)], rows[mine], side="right") - 1
    unit = files.astype(np.int64) * (1 << 32) + groups
    units, which = np.unique(unit, return_inverse=True)
    rank_of_unit = np.random.default_rng([seed, epoch]).permutation(len(units))
    return np.lexsort((rows, rank_of_unit[which]))


def partition(n: int, rank: int, world: int, worker: int, workers: int, batch_size: int) -> tuple[slice, int]:
    """(slice of the epoch order padded to a multiple of `world`, this rank's row count) read by one worker:
    each rank a contiguous equal part, each worker of it a contiguous run of whole batches.

    >>> partition(10, rank=1, world=2, worker=0, workers=2, batch_size=2)
    (slice(5, 9, None), 5)
    """
    per_rank = math.ceil(n / world) if n else 0
    batches = math.ceil(per_rank / batch_size) if per_rank else 0
    first = worker * (batches // workers) + min(worker, batches % workers)
    count = batches // workers + (1 if worker < batches % workers else 0)
    start = rank * per_rank + first * batch_size
    stop = rank * per_rank + min((first + count) * batch_size, per_rank)
    return slice(start, max(start, stop)), per_rank


def _rank() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class ShardStream(IterableDataset):
    """The training split streamed from shards in batches (partition, shuffle buffer, resume: module
    docstring). `workers` is the DataLoader's worker count (0: the main process), `epoch` set before each epoch."""

    def __init__(self, index: ShardIndex, files: np.ndarray, rows: np.ndarray, labels: CompactLabels,
                 image_size: int, batch_size: int, transform: v2.Transform | None = None, seed: int = 0,
                 buffer: int = BUFFER, drop_single: bool = True) -> None:
        self.reader = _GroupReader(index)
        self.files, self.rows, self.labels = files, rows, labels
        self.image_size, self.batch_size, self.seed, self.buffer = image_size, batch_size, seed, buffer
        self.transform = transform or eval_transform()
        self.drop_single = drop_single
        self.workers = 0
        self.epoch = 0
        self.images = None

    def consumers(self) -> int:
        return max(self.workers, 1)

    def part(self, rank: int, world: int, worker: int, epoch: int | None = None) -> np.ndarray:
        """The dataset rows one worker of one rank reads in an epoch, in read order (before the buffer)."""
        order = epoch_order(self.reader.index, self.files, self.rows, self.seed, self.epoch if epoch is None else
                            epoch)
        where, per_rank = partition(len(order), rank, world, worker, self.consumers(), self.batch_size)
        padded = np.resize(order, per_rank * world) if len(order) else order
        return padded[where]

    def _batches(self, n: int) -> int:
        full, rest = divmod(n, self.batch_size)
        return full + (1 if rest > 1 or (rest == 1 and not self.drop_single) else 0)

    def __len__(self) -> int:
        rank, world = _rank()
        parts = (partition(len(self.rows), rank, world, w, self.consumers(), self.batch_size)[0]
                 for w in range(self.consumers()))
        return sum(self._batches(part.stop - part.start) for part in parts)

    def _shuffled(self, part: np.ndarray, rng: np.random.Generator) -> Iterator[tuple[int, bytes]]:
        buffer: list[tuple[int, bytes]] = []
        for row in part:
            item = (int(row), self.reader.image(int(self.files[row]), int(self.rows[row])))
            if len(buffer) < self.buffer:
                buffer.append(item)
                continue
            k = int(rng.integers(len(buffer)))
            buffer[k], item = item, buffer[k]
            yield item
        for k in rng.permutation(len(buffer)):
            yield buffer[k]

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        info = get_worker_info()
        worker = info.id if info is not None else 0
        rank, world = _rank()
        epoch = self.epoch
        self.epoch += 1  # a persistent worker's copy is not told again: it counts its own passes
        part = self.part(rank, world, worker, epoch)
        rng = np.random.default_rng([self.seed, epoch, rank, worker])
        batch: list[tuple[int, bytes]] = []
        for item in self._shuffled(part, rng):  # the buffer holds the bytes: each row group is read once
            batch.append(item)
            if len(batch) == self.batch_size:
                yield self._collate(batch)
                batch = []
        if len(batch) > 1 or (batch and not self.drop_single):
            yield self._collate(batch)

    def _collate(self, batch: list[tuple[int, bytes]]) -> tuple[Tensor, Tensor, Tensor]:
        images = [self.transform(self.reader.decode_bytes(data, int(self.files[r]), int(self.rows[r]),
                                                          self.image_size)) for r, data in batch]
        targets, known = self.labels.rows(np.asarray([r for r, _ in batch]))
        return torch.stack(images), torch.from_numpy(targets), torch.from_numpy(known)


def shard_stream(table: LabelTable, folder: str | Path, image_size: int, batch_size: int,
                 transform: v2.Transform | None = None, seed: int = 0) -> ShardStream:
    """A table's (training) rows streamed from a shard folder."""
    index = open_shards(folder)
    files, rows = index.locate(table.ids, table.source)
    return ShardStream(index, files, rows, table.labels, image_size, batch_size, transform, seed)


class EpochLoader(DataLoader):
    """A DataLoader over a :class:`ShardStream` that tells the stream its epoch before each pass; `epoch_of()`
    gives the trainer's epoch (restored on resume), or None to count passes. Workers are persistent: they receive
    the epoch of their first pass, then count their passes (epochs are consecutive)."""

    def __init__(self, dataset: ShardStream, epoch_of: Callable[[], int | None], **options: object) -> None:
        dataset.workers = int(options.get("num_workers", 0))  # type: ignore[arg-type]
        super().__init__(dataset, batch_size=None, persistent_workers=dataset.workers > 0,  # type: ignore[arg-type]
                         **options)
        self.epoch_of = epoch_of
        self.passes = 0

    def __iter__(self) -> Iterator:
        epoch = self.epoch_of()
        self.dataset.epoch = self.passes if epoch is None else epoch  # type: ignore[attr-defined]
        self.passes += 1
        return super().__iter__()
