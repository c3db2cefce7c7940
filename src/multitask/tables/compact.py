"""Compact labels: a table's known mask and 0/1 targets without a dense float per cell.

Two layouts, chosen per table by their exact size in bytes (:func:`best_format`):

- ``"packed"``: two bit-packed (n, ⌈T/8⌉) uint8 arrays (known, positive) — 2 bits per cell whatever the density;
- ``"sparse"``: CSR of the known cells — row pointers (int64, n + 1), their task indices (uint16 up to 65,536
  tasks, else int32) and whether each is positive (bool): 3 bytes per *known* cell, so it wins below about 8 %
  known (1,000,000 × 1,000 at 99 % unknown: 38 MB sparse, 250 MB packed, 5 GB as float32 targets + bool known).

The dense ``(targets float32, known bool)`` pair (the one in-code representation of unknown labels, see
docs/conventions.md) is materialised only for the rows asked for: :meth:`CompactLabels.rows` for a batch,
:meth:`CompactLabels.dense` for everything (the slow path).

>>> import numpy as np
>>> known = np.array([[True, False, True], [False, False, False]])
>>> labels = CompactLabels.from_dense(np.float32([[1, 0, 0], [0, 0, 0]]), known, "sparse")
>>> labels.format, labels.shape, labels.nbytes  # 3 row pointers + 2 known cells × (uint16 task + bool)
('sparse', (2, 3), 30)
>>> targets, mask = labels.rows(np.array([0]))
>>> targets.tolist(), mask.tolist()
([[1.0, 0.0, 0.0]], [[True, False, True]])
>>> labels.counts()[0].tolist(), labels.to("packed").rows(np.array([0]))[1].tolist()
([1, 0, 1], [[True, False, True]])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from multitask.tables import vocabulary

Format = Literal["packed", "sparse"]
BLOCK_ROWS = 1 << 14  # rows expanded at a time when converting, counting or building (a few MB per block)


def _index_dtype(n_tasks: int) -> np.dtype:
    return np.dtype(np.uint16) if n_tasks <= 1 << 16 else np.dtype(np.int32)


def format_bytes(n_rows: int, n_tasks: int, n_known: int) -> dict[str, int]:
    """The size in bytes of each layout for a table of this shape with `n_known` known cells.

    >>> format_bytes(1_000_000, 1_000, 10_000_000)
    {'packed': 250000000, 'sparse': 38000008}
    """
    packed = 2 * n_rows * ((n_tasks + 7) // 8)
    sparse = 8 * (n_rows + 1) + n_known * (_index_dtype(n_tasks).itemsize + 1)
    return {"packed": packed, "sparse": sparse}


def best_format(n_rows: int, n_tasks: int, n_known: int) -> Format:
    """The smaller layout (ties: packed, whose batches unpack without a scatter)."""
    size = format_bytes(n_rows, n_tasks, n_known)
    return "sparse" if size["sparse"] < size["packed"] else "packed"


def _gather(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions of the stored cells of `rows`, in row order; their count per row), without a Python loop."""
    starts, ends = indptr[rows], indptr[rows + 1]
    lengths = ends - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64), lengths
    offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return np.arange(total, dtype=np.int64) + offsets, lengths


@dataclass(frozen=True, eq=False)
class CompactLabels:
    """(n, T) labels in one of the two layouts of the module docstring; immutable (operations return new ones)."""

    n_rows: int
    n_tasks: int
    format: Format
    known_bits: np.ndarray | None = None  # packed: (n, ⌈T/8⌉) uint8, little bit order
    positive_bits: np.ndarray | None = None
    indptr: np.ndarray | None = None  # sparse: (n + 1,) int64
    columns: np.ndarray | None = None  # sparse: (nnz,) task index of each known cell
    positive: np.ndarray | None = None  # sparse: (nnz,) bool

    # ------------------------------------------------------------------------------------------- building
    @classmethod
    def from_dense(cls, targets: np.ndarray, known: np.ndarray, format: Format | None = None) -> CompactLabels:
        """From the dense pair (unknown cells' targets are ignored); layout `format` or the smaller one."""
        known = np.asarray(known, dtype=bool)
        targets = np.asarray(targets)
        if known.ndim != 2 or targets.shape != known.shape:
            raise ValueError(f"targets and known must be (n, T) arrays of one shape; got {targets.shape}, "
                             f"{known.shape}")
        n, t = known.shape
        format = format or best_format(n, t, int(np.count_nonzero(known)))
        blocks = ((targets[s:s + BLOCK_ROWS] > 0.5, known[s:s + BLOCK_ROWS]) for s in range(0, n, BLOCK_ROWS))
        return cls.from_blocks(blocks, n, t, format)

    @classmethod
    def from_blocks(cls, blocks: Iterable[tuple[np.ndarray, np.ndarray]], n_rows: int, n_tasks: int,
                    format: Format) -> CompactLabels:
        """From consecutive row blocks of (positive bool, known bool), each (rows, T); only one block is dense at
        a time."""
        parts_a: list[np.ndarray] = []
        parts_b: list[np.ndarray] = []
        counts: list[np.ndarray] = []
        for positive, known in blocks:
            positive = positive & known
            if format == "packed":
                parts_a.append(np.packbits(known, axis=1, bitorder="little"))
                parts_b.append(np.packbits(positive, axis=1, bitorder="little"))
            else:
                rows, cols = np.nonzero(known)
                parts_a.append(cols.astype(_index_dtype(n_tasks)))
                parts_b.append(positive[rows, cols])
                counts.append(np.bincount(rows, minlength=len(known)))
        width = (n_tasks + 7) // 8
        if format == "packed":
            known_bits = np.concatenate(parts_a) if parts_a else np.zeros((0, width), np.uint8)
            positive_bits = np.concatenate(parts_b) if parts_b else np.zeros((0, width), np.uint8)
            labels = cls(n_rows, n_tasks, "packed", known_bits=known_bits.reshape(-1, width),
                         positive_bits=positive_bits.reshape(-1, width))
        else:
            indptr = np.zeros(n_rows + 1, dtype=np.int64)
            if counts:
                np.cumsum(np.concatenate(counts), out=indptr[1:])
            labels = cls(n_rows, n_tasks, "sparse", indptr=indptr,
                         columns=np.concatenate(parts_a) if parts_a else np.zeros(0, _index_dtype(n_tasks)),
                         positive=np.concatenate(parts_b) if parts_b else np.zeros(0, bool))
        labels.check()
        return labels

    @classmethod
    def from_codes(cls, codes: list[np.ndarray], order: Sequence[int], n_rows: int,
                   format: Format | None = None) -> CompactLabels:
        """From the reader's label codes (one int8 (labels, rows) array per block of rows; 1 / 0 / -1 unknown),
        taking label rows `order` as the tasks. Each block is released from `codes` once converted, so the codes
        and the result never coexist in full, and no float array is made."""
        n_tasks, order = len(order), list(order)
        identity = bool(codes) and order == list(range(len(codes[0])))

        def chunks(part: np.ndarray) -> Iterable[np.ndarray]:
            """(rows, T) C-contiguous blocks (packbits on a transposed view is 50× slower)."""
            for offset in range(0, part.shape[1], BLOCK_ROWS):
                block = part[:, offset:offset + BLOCK_ROWS] if identity else part[order, offset:offset + BLOCK_ROWS]
                yield np.ascontiguousarray(block.T)

        if format is None:
            n_known = sum(int(np.count_nonzero(part >= 0)) if identity else
                          sum(int(np.count_nonzero(part[order, s:s + BLOCK_ROWS] >= 0))
                              for s in range(0, part.shape[1], BLOCK_ROWS)) for part in codes)
            format = best_format(n_rows, n_tasks, n_known)

        def blocks() -> Iterable[tuple[np.ndarray, np.ndarray]]:
            codes.reverse()
            while codes:
                part = codes.pop()
                for block in chunks(part):
                    yield block == vocabulary.KNOWN_POSITIVE, block >= 0
                del part

        return cls.from_blocks(blocks(), n_rows, n_tasks, format)

    def check(self) -> None:
        """Shapes consistent with (n_rows, n_tasks) (ValueError otherwise)."""
        if self.format == "packed":
            width = (self.n_tasks + 7) // 8
            if self.known_bits.shape != (self.n_rows, width) or self.positive_bits.shape != (self.n_rows, width):
                raise ValueError("packed label bits do not match the table's shape")
        elif len(self.indptr) != self.n_rows + 1 or len(self.columns) != int(self.indptr[-1]) or \
                len(self.positive) != len(self.columns):
            raise ValueError("sparse label arrays do not match the table's shape")

    # ------------------------------------------------------------------------------------------- reading
    @property
    def shape(self) -> tuple[int, int]:
        return self.n_rows, self.n_tasks

    def __len__(self) -> int:
        return self.n_rows

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        arrays = (self.known_bits, self.positive_bits, self.indptr, self.columns, self.positive)
        return sum(a.nbytes for a in arrays if a is not None)

    @property
    def n_known(self) -> int:
        if self.format == "sparse":
            return len(self.columns)
        return int(self.counts()[0].sum())

    def rows(self, index: np.ndarray | Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Dense (targets float32, known bool), each (len(index), T), of the rows `index` (an index array) —
        what a batch needs, unpacked for those rows only."""
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        if self.format == "packed":
            known = np.unpackbits(self.known_bits[index], axis=1, count=self.n_tasks, bitorder="little").view(bool)
            positive = np.unpackbits(self.positive_bits[index], axis=1, count=self.n_tasks, bitorder="little")
            return positive.astype(np.float32), known
        known = np.zeros((len(index), self.n_tasks), dtype=bool)
        targets = np.zeros((len(index), self.n_tasks), dtype=np.float32)
        positions, lengths = _gather(self.indptr, index)
        if len(positions):
            row = np.repeat(np.arange(len(index)), lengths)
            col = self.columns[positions]
            known[row, col] = True
            targets[row, col] = self.positive[positions]
        return targets, known

    def blocks(self) -> Iterable[tuple[np.ndarray, np.ndarray]]:
        """Consecutive row blocks of (targets float32, known bool)."""
        for start in range(0, self.n_rows, BLOCK_ROWS):
            yield self.rows(np.arange(start, min(start + BLOCK_ROWS, self.n_rows)))

    def dense(self) -> tuple[np.ndarray, np.ndarray]:
        """The whole (targets float32, known bool) pair: 5 bytes per cell (the slow path for huge tables)."""
        return self.rows(np.arange(self.n_rows))

    def counts(self) -> tuple[np.ndarray, np.ndarray]:
        """(known labels, positive labels) per task, int64 (T,)."""
        if self.format == "sparse":
            columns = self.columns.astype(np.int64)
            return (np.bincount(columns, minlength=self.n_tasks),
                    np.bincount(columns[self.positive], minlength=self.n_tasks))
        known = np.zeros(self.n_tasks, dtype=np.int64)
        positive = np.zeros(self.n_tasks, dtype=np.int64)
        for start in range(0, self.n_rows, BLOCK_ROWS):
            part = slice(start, start + BLOCK_ROWS)
            for total, bits in ((known, self.known_bits), (positive, self.positive_bits)):
                total += np.unpackbits(bits[part], axis=1, count=self.n_tasks, bitorder="little").sum(0, np.int64)
        return known, positive

    def any_known(self) -> np.ndarray:
        """(n,) bool: rows with at least one known label."""
        if self.format == "sparse":
            return np.diff(self.indptr) > 0
        return self.known_bits.any(axis=1)

    # ------------------------------------------------------------------------------------------- deriving
    def subset(self, rows: np.ndarray | Sequence[int]) -> CompactLabels:
        """The rows selected by a boolean mask or an index array, in that order."""
        rows = np.asarray(rows)
        index = np.flatnonzero(rows) if rows.dtype == bool else rows.astype(np.int64).reshape(-1)
        if self.format == "packed":
            return CompactLabels(len(index), self.n_tasks, "packed", known_bits=self.known_bits[index],
                                 positive_bits=self.positive_bits[index])
        positions, lengths = _gather(self.indptr, index)
        indptr = np.zeros(len(index) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        return CompactLabels(len(index), self.n_tasks, "sparse", indptr=indptr, columns=self.columns[positions],
                             positive=self.positive[positions])

    def select(self, tasks: Sequence[int]) -> CompactLabels:
        """The labels of the task indices `tasks`, in that order (same layout)."""
        tasks = list(tasks)
        if self.format == "sparse" and len(set(tasks)) == len(tasks):
            new = np.full(self.n_tasks, -1, dtype=np.int64)
            new[tasks] = np.arange(len(tasks))
            mapped = new[self.columns.astype(np.int64)]
            keep = mapped >= 0
            indptr = np.zeros(self.n_rows + 1, dtype=np.int64)
            row_of = np.repeat(np.arange(self.n_rows), np.diff(self.indptr))
            np.cumsum(np.bincount(row_of[keep], minlength=self.n_rows), out=indptr[1:])
            return CompactLabels(self.n_rows, len(tasks), "sparse", indptr=indptr,
                                 columns=mapped[keep].astype(_index_dtype(len(tasks))), positive=self.positive[keep])
        blocks = ((t[:, tasks] > 0.5, k[:, tasks]) for t, k in self.blocks())
        return CompactLabels.from_blocks(blocks, self.n_rows, len(tasks), self.format)

    def to(self, format: Format) -> CompactLabels:
        """The same labels in layout `format` (converted block by block)."""
        if format == self.format:
            return self
        return CompactLabels.from_blocks(((t > 0.5, k) for t, k in self.blocks()), self.n_rows, self.n_tasks,
                                         format)

    def best(self) -> CompactLabels:
        """The same labels in the smaller layout."""
        return self.to(best_format(self.n_rows, self.n_tasks, self.n_known))
