"""The label vocabulary: the one mapping from what a table holds to known positive, known negative or unknown.

Text cells (CSV, TSV, string columns of Parquet or of a DataFrame), compared ignoring case and surrounding
spaces:

- known positive: ``1``, ``true``, ``yes``; known negative: ``0``, ``false``, ``no``;
- unknown: ``?``, an empty cell, ``NA``, ``N/A``, ``NaN``, ``null``;
- ``-1`` is unknown only with ``minus_one_unknown`` (``data.minus_one_unknown``);
- anything else (``1.0``, ``t``, ``n``, ``none``, ``y``, ...) is not a label.

Typed columns (Parquet, DataFrames, ARFF): booleans; integers 0 / 1 (and -1 with ``minus_one_unknown``);
floats 0.0 / 1.0 / NaN (and -1.0); nulls are unknown. A typed column is exact, so ``1.0`` in a float column is
fine while the text ``1.0`` is not.

Columns are mapped as a whole: a dictionary-encoded column (the reader's choice for label columns) maps only
its few distinct values and then takes the codes by index.

>>> import pyarrow as pa
>>> label_codes(pa.array(["1", " Yes ", "?", "", "NA", "0", "maybe"])).tolist()
[1, 1, -1, -1, -1, 0, -2]
>>> label_codes(pa.array([True, None, False])).tolist()
[1, -1, 0]
>>> label_codes(pa.array([1.0, float("nan"), -1.0]), minus_one_unknown=True).tolist()
[1, -1, -1]
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

POSITIVE = ("1", "true", "yes")
NEGATIVE = ("0", "false", "no")
UNKNOWN = ("?", "", "na", "n/a", "nan", "null")
MINUS_ONE = "-1"
HELP = "use 1/0, true/false, yes/no, or ?/empty/NA/N/A/NaN/null for unknown"

KNOWN_POSITIVE, KNOWN_NEGATIVE, UNKNOWN_CODE, BAD = 1, 0, -1, -2
_CACHE_LIMIT = 64  # dictionaries up to this size are mapped once and remembered
_cache: dict[tuple[bool, tuple[str, ...]], np.ndarray] = {}


_BYTE = np.full(256, BAD, dtype=np.int8)
_BYTE[[ord("1"), ord("0"), ord("?")]] = (KNOWN_POSITIVE, KNOWN_NEGATIVE, UNKNOWN_CODE)


def _single_byte_codes(values: pa.Array) -> np.ndarray | None:
    """Codes of a string array whose cells are all empty or one byte long (the usual 1 / 0 / ? table), straight
    from its buffers; None for any other array."""
    if not pa.types.is_string(values.type) or values.null_count or not len(values):
        return None
    _, offsets_buffer, data_buffer = values.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32, count=len(values) + 1, offset=values.offset * 4)
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    if offsets[-1] - offsets[0] == len(values):
        lengths = np.diff(offsets)
        if (lengths == 1).all():
            return _BYTE[data[offsets[0]:offsets[-1]]]
    lengths = np.diff(offsets)
    if lengths.max() > 1:
        return None
    codes = np.full(len(values), UNKNOWN_CODE, dtype=np.int8)
    one = lengths == 1
    codes[one] = _BYTE[data[offsets[:-1][one]]]
    return codes


def _text_codes(values: pa.Array, minus_one_unknown: bool) -> np.ndarray:
    """int8 codes of a string array (null = unknown)."""
    fast = _single_byte_codes(values)
    if fast is not None:
        return fast
    words = POSITIVE + NEGATIVE + UNKNOWN + ((MINUS_ONE,) if minus_one_unknown else ())
    lookup = np.array([KNOWN_POSITIVE] * len(POSITIVE) + [KNOWN_NEGATIVE] * len(NEGATIVE)
                      + [UNKNOWN_CODE] * (len(words) - len(POSITIVE) - len(NEGATIVE)) + [BAD], dtype=np.int8)
    if pa.types.is_large_string(values.type) or pa.types.is_string_view(values.type):
        values = values.cast(pa.string())
    normal = pc.utf8_lower(pc.utf8_trim_whitespace(values))
    index = pc.index_in(normal, value_set=pa.array(words)).fill_null(len(words))
    codes = lookup[index.to_numpy(zero_copy_only=False)]
    if values.null_count:
        codes[values.is_null().to_numpy(zero_copy_only=False)] = UNKNOWN_CODE
    return codes


def _dictionary_codes(dictionary: pa.Array, minus_one_unknown: bool) -> np.ndarray:
    if len(dictionary) > _CACHE_LIMIT:
        return _text_codes(dictionary, minus_one_unknown)
    key = (minus_one_unknown, tuple(dictionary.to_pylist()))
    codes = _cache.get(key)
    if codes is None:
        codes = _cache[key] = _text_codes(dictionary, minus_one_unknown)
    return codes


def _number_codes(values: pa.Array, minus_one_unknown: bool) -> np.ndarray:
    x = values.to_numpy(zero_copy_only=False).astype(np.float64) if len(values) else np.zeros(0)
    codes = np.full(len(x), BAD, dtype=np.int8)
    codes[x == 1] = KNOWN_POSITIVE
    codes[x == 0] = KNOWN_NEGATIVE
    codes[np.isnan(x)] = UNKNOWN_CODE
    if minus_one_unknown:
        codes[x == -1] = UNKNOWN_CODE
    return codes


def _array_codes(values: pa.Array, minus_one_unknown: bool, out: np.ndarray) -> None:
    kind = values.type
    if pa.types.is_dictionary(kind) and not values.null_count and len(values.dictionary):
        np.take(_dictionary_codes(values.dictionary, minus_one_unknown), values.indices.to_numpy(), out=out)
    else:
        out[:] = _other_codes(values, minus_one_unknown)


def _other_codes(values: pa.Array, minus_one_unknown: bool) -> np.ndarray:
    kind = values.type
    if pa.types.is_dictionary(kind):
        codes = _dictionary_codes(values.dictionary, minus_one_unknown)
        index = values.indices.fill_null(0).to_numpy(zero_copy_only=False)
        out = codes[index] if len(codes) else np.full(len(index), UNKNOWN_CODE, dtype=np.int8)
        out[values.is_null().to_numpy(zero_copy_only=False)] = UNKNOWN_CODE
        return out
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return _text_codes(values, minus_one_unknown)
    if pa.types.is_null(kind):
        return np.full(len(values), UNKNOWN_CODE, dtype=np.int8)
    if pa.types.is_boolean(kind):
        codes = np.where(values.fill_null(False).to_numpy(zero_copy_only=False), KNOWN_POSITIVE, KNOWN_NEGATIVE)
        codes = codes.astype(np.int8)
        codes[values.is_null().to_numpy(zero_copy_only=False)] = UNKNOWN_CODE
        return codes
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return _number_codes(values.cast(pa.float64()), minus_one_unknown)
    raise TypeError(f"a column of type {kind} cannot hold labels")


def label_codes(column: pa.Array | pa.ChunkedArray, minus_one_unknown: bool = False,
                out: np.ndarray | None = None) -> np.ndarray:
    """int8 code per cell: 1 known positive, 0 known negative, -1 unknown, -2 not a label (into `out` if given).

    Raises TypeError for a column type that cannot hold labels (dates, lists, ...).
    """
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    if out is None:
        out = np.empty(len(column), dtype=np.int8)
    start = 0
    for chunk in chunks:
        _array_codes(chunk, minus_one_unknown, out[start:start + len(chunk)])
        start += len(chunk)
    return out


def is_minus_one(value: object) -> bool:
    """Whether a cell that is not a label is a -1 (then a hint about minus_one_unknown helps).

    >>> is_minus_one(" -1"), is_minus_one(-1.0), is_minus_one("x")
    (True, True, False)
    """
    if isinstance(value, str):
        return value.strip() in ("-1", "-1.0")
    return isinstance(value, int | float) and value == -1
