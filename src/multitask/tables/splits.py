"""Splits: a table's `split` column (train / val / test and their aliases) or a seeded random assignment.

>>> import pyarrow as pa
>>> split_codes(pa.array(["train", " Validation", "TEST", "holdout"])).tolist()
[0, 1, 2, -1]
>>> seeded_split(10, 0.2, 0.1, seed=0).tolist().count("val")
2
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from multitask.errors import LabelError

SPLITS = ("train", "val", "test")
ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
           "dev": "val", "test": "test", "testing": "test"}


def _text_split_codes(values: pa.Array) -> np.ndarray:
    words = list(ALIASES)
    lookup = np.array([SPLITS.index(ALIASES[w]) for w in words] + [-1], dtype=np.int8)
    if not pa.types.is_string(values.type):
        values = values.cast(pa.string())
    normal = pc.utf8_lower(pc.utf8_trim_whitespace(values))
    return lookup[pc.index_in(normal, value_set=pa.array(words)).fill_null(len(words)).to_numpy(zero_copy_only=False)]


def split_codes(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Index into SPLITS per cell (-1: not a split name), column-wise (dictionary columns map their values once)."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    out = []
    for chunk in chunks:
        if pa.types.is_dictionary(chunk.type):
            codes = _text_split_codes(chunk.dictionary)
            index = chunk.indices.fill_null(-1).to_numpy(zero_copy_only=False)
            mapped = codes[index] if len(codes) else np.full(len(index), -1, dtype=np.int8)
            if chunk.null_count:
                mapped[chunk.is_null().to_numpy(zero_copy_only=False)] = -1
            out.append(mapped)
        else:
            out.append(_text_split_codes(chunk))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int8)


def split_names(codes: np.ndarray) -> np.ndarray:
    """Codes from :func:`split_codes` (all valid) as a '<U5' array of split names."""
    return np.array(SPLITS, dtype="<U5")[codes]


def seeded_split(n: int, val_fraction: float, test_fraction: float, seed: int) -> np.ndarray:
    """A random train/val/test assignment of n rows, the same for the same seed."""
    if val_fraction + test_fraction >= 1:
        raise LabelError(f"val_fraction + test_fraction must be < 1, got {val_fraction + test_fraction}")
    order = np.random.default_rng(seed).permutation(n)
    n_test, n_val = round(n * test_fraction), round(n * val_fraction)
    split = np.full(n, "train", dtype="<U5")
    split[order[:n_test]] = "test"
    split[order[n_test:n_test + n_val]] = "val"
    return split
