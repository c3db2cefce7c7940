"""Validation at the boundary: feature values, trainable tasks, image files.

Feature values must be finite numbers no larger in magnitude than :data:`FEATURE_LIMIT` (half of float32's
largest value), so that a value, the column's mean and standard deviation and a centred value all stay finite
in float32; otherwise the message names the cell.

>>> import numpy as np
>>> from multitask.tables import label_table_from_arrays
>>> t = label_table_from_arrays(np.zeros((4, 1)), np.array([[1, 0], [0, np.nan], [1, np.nan], [0, 1]]),
...                             split=np.array(["train", "train", "val", "val"]), tasks=["a", "b"])
>>> untrainable_tasks(t)["b"]
'task has only one class in the training split (all 1 known labels are negative); drop the task or add labels'
>>> list(untrainable_tasks(t.select_tasks(["a"])))
[]
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from multitask.errors import LabelError
from multitask.tables.table import LabelTable

FEATURE_LIMIT = float(np.finfo(np.float32).max) / 2
_NUMBER = r"^[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|inf|infinity|nan)$"
FEATURE_HINT = "if this column is not a feature, list the features in data.feature_columns"


def feature_values(column: pa.ChunkedArray | pa.Array, *, name: str, line: Callable[[int], int],
                   file: str | Path) -> np.ndarray:
    """A feature column as float64, or a LabelError naming the first cell that is not a usable number.

    >>> feature_values(pa.array([" 1.5", "2"]), name="x", line=lambda r: r + 2, file="t.csv").tolist()
    [1.5, 2.0]
    """
    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = kind.value_type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        text = pc.utf8_trim_whitespace(column)
        ok = pc.match_substring_regex(text, _NUMBER, ignore_case=True).fill_null(True)
        bad = ~ok.to_numpy(zero_copy_only=False)
        if bad.any():
            row = int(bad.argmax())
            value = column[row].as_py()
            what = "missing feature value (empty cell)" if not str(value).strip() else "feature values must be numbers"
            raise LabelError(f"{what}; {FEATURE_HINT}", file=file, line=line(row), column=name, value=value)
        column = pc.cast(text, pa.float64())
    elif pa.types.is_boolean(kind) or pa.types.is_integer(kind) or pa.types.is_floating(kind) or \
            pa.types.is_decimal(kind) or pa.types.is_null(kind):
        column = column.cast(pa.float64())
    else:
        raise LabelError(f"feature column of type {kind} is not numeric; {FEATURE_HINT}", file=file, column=name)
    values = column.to_numpy() if isinstance(column, pa.Array) else column.to_numpy()
    values = np.asarray(values, dtype=np.float64)
    check_feature_values(values, name=name, line=line, file=file)
    return values


def check_feature_values(values: np.ndarray, *, name: str, line: Callable[[int], int] | None,
                         file: str | Path | None) -> None:
    """Refuse NaN / missing, ±inf and |x| > FEATURE_LIMIT, naming the first such cell (by file line, or by
    0-based row when `line` is None).

    >>> check_feature_values(np.array([1.0, 3e38]), name="x", line=None, file=None)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    multitask.errors.LabelError: column 'x': value '3e+38': row 1: feature value too large...
    """
    if np.isfinite(values).all() and (np.abs(values) <= FEATURE_LIMIT).all():
        return
    finite = np.isfinite(values)
    row = int((~finite | (np.abs(np.where(finite, values, 0)) > FEATURE_LIMIT)).argmax())
    value = values[row]
    where = {"line": line(row)} if line is not None else {}
    what = "" if line is not None else f"row {row}: "
    if np.isnan(value):
        reason = "missing or NaN feature value; features must be finite numbers"
    elif np.isinf(value):
        reason = "infinite feature value (or too large for float64); features must be finite numbers"
    else:
        reason = (f"feature value too large: |x| must be at most {FEATURE_LIMIT:.3g} (half of float32's largest "
                  "value) so that its mean, standard deviation and centred values fit in float32; rescale the column")
    raise LabelError(what + reason, file=file, column=name, value=value, **where)


def feature_matrix(columns: Sequence[str], get: Callable[[str], np.ndarray], n: int) -> np.ndarray:
    """(n, d) float32 from per-column float64 arrays (each already checked)."""
    out = np.empty((n, len(columns)), dtype=np.float32)
    for k, name in enumerate(columns):
        out[:, k] = get(name)
    return out


def untrainable_tasks(table: LabelTable) -> dict[str, str]:
    """Tasks that cannot be trained, each with the reason: no known label, or only one class, in the training split.
    """
    n_known, positives = table.task_counts("train")
    reasons = {}
    for j in np.flatnonzero((n_known == 0) | (positives == 0) | (positives == n_known)):
        task = table.tasks[j]
        if n_known[j] == 0:
            reasons[task] = "task has no known label in the training split"
        else:
            only = "positive" if positives[j] else "negative"
            reasons[task] = (f"task has only one class in the training split (all {int(n_known[j])} known labels "
                             f"are {only}); drop the task or add labels")
    return reasons


def check_trainable(table: LabelTable) -> None:
    """Every task needs known labels of both classes in the training split."""
    if not (table.split == "train").any():
        raise LabelError("no training rows (split column has no 'train')", file=table.source)
    for task, reason in untrainable_tasks(table).items():
        raise LabelError(reason, file=table.source, column=task)


def check_images(paths: np.ndarray, ids: np.ndarray, *, file: str | Path, column: str, missing: str,
                 line: Callable[[int], int], threads: int = 8) -> np.ndarray:
    """Boolean mask of usable images; raise on the first bad one unless missing == 'skip'.

    With 'error' only each file's header is read (fast); a file whose data turns out broken when decoded
    during training stops the run with its name. With 'skip' every image is fully decoded here, so broken
    ones are skipped (and listed) before training starts.
    """
    from multitask.data.images import image_problem

    decode = missing == "skip"
    from PIL import Image

    with warnings.catch_warnings():  # the check itself reports images over Pillow's limit
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with ThreadPoolExecutor(max(1, min(threads, len(paths)))) as pool:
            problems = list(pool.map(lambda p: image_problem(p, decode=decode), paths))
    ok = np.array([p is None for p in problems], dtype=bool)
    if not decode and not ok.all():
        row = int(np.flatnonzero(~ok)[0])
        raise LabelError(f"{problems[row]}: {paths[row]} (use --data.missing_images skip to drop such rows)",
                         file=file, line=line(row), column=column, value=ids[row])
    return ok
