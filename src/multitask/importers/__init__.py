"""Turn other datasets' annotation formats into the project's label table.

A label table is a DataFrame with one row per example: an input column (``image``, a path relative to an
image root) followed by one column per task whose values are the strings ``"1"``, ``"0"`` or ``"?"``
(unknown). Importers sort the rows by the input column and the task columns by name (or in the order of
``classes=[...]`` when given); they never add a ``split`` column.

>>> import pandas as pd
>>> frame = pd.DataFrame({"image": ["a.jpg"], "car": ["1"], "dog": ["?"]})
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "labels.csv"
>>> write_label_table(frame, path)
>>> print(path.read_text().strip())
image,car,dog
a.jpg,1,?
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from multitask.errors import LabelError

# The importer modules use the helpers below through function-level imports, so importing them first is safe.
from multitask.importers.coco import import_coco
from multitask.importers.merge import MergeSummary, merge_label_tables, read_label_frame
from multitask.importers.openimages import import_openimages
from multitask.importers.voc import import_voc

UNKNOWN = "?"
LABEL_VALUES = ("1", "0", UNKNOWN)
_CSV_SUFFIXES = (".csv",)
_PARQUET_SUFFIXES = (".parquet", ".pq")


def _cell_to_str(value: object) -> str:
    """String form of one cell: ``None``/NaN become ``""``, integral floats lose their ``.0``."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():
            return str(int(value))
    return str(value)


def frame_as_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose every cell is a ``str`` (missing cells become ``""``).

    >>> frame_as_strings(pd.DataFrame({"a": [1.0, None], "b": ["x", "y"]}))["a"].tolist()
    ['1', '']
    """
    return pd.DataFrame(
        {column: [_cell_to_str(v) for v in frame[column].tolist()] for column in frame.columns},
        index=frame.index,
        columns=frame.columns,
    )


def write_label_table(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a label table to ``.csv`` or ``.parquet``/``.pq`` (chosen by extension), every column as strings.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels.parquet"
    >>> write_label_table(pd.DataFrame({"image": ["a.jpg"], "car": ["0"]}), path)
    >>> pd.read_parquet(path)["car"].tolist()
    ['0']
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _CSV_SUFFIXES + _PARQUET_SUFFIXES:
        raise LabelError(
            "unknown label table extension; use .csv, .parquet or .pq", file=path, value=path.suffix
        )
    strings = frame_as_strings(frame).reset_index(drop=True)
    if suffix in _CSV_SUFFIXES:
        strings.to_csv(path, index=False, lineterminator="\n")
    else:
        strings.astype(str).to_parquet(path, index=False)


def check_classes(classes: Iterable[str] | None, *, file: str | Path | None = None) -> list[str] | None:
    """Validate a user's ``classes`` argument: a list of distinct, non-empty names (or ``None``)."""
    if classes is None:
        return None
    if isinstance(classes, str):
        raise LabelError("classes must be a list of names, not a single string", file=file, value=classes)
    names = [str(c) for c in classes]
    seen: set[str] = set()
    for name in names:
        if not name:
            raise LabelError("empty class name in classes", file=file)
        if name in seen:
            raise LabelError("class listed twice in classes", file=file, value=name)
        seen.add(name)
    return names


def build_label_table(
    labels: Mapping[str, Mapping[str, str]],
    tasks: Sequence[str],
    *,
    image_column: str = "image",
    default: str = "0",
    file: str | Path | None = None,
) -> pd.DataFrame:
    """Assemble ``{input: {task: value}}`` into a label table with columns ``[image_column, *tasks]``.

    Rows are sorted by input; a task missing from an input's dict gets ``default``.

    >>> build_label_table({"b.jpg": {"car": "1"}, "a.jpg": {}}, ["car", "dog"]).values.tolist()
    [['a.jpg', '0', '0'], ['b.jpg', '1', '0']]
    """
    if image_column in tasks:
        raise LabelError("a class has the same name as the input column", file=file, value=image_column)
    images = sorted(labels)
    data: dict[str, list[str]] = {image_column: images}
    for task in tasks:
        data[task] = [labels[image].get(task, default) for image in images]
    return pd.DataFrame(data, columns=[image_column, *tasks])


__all__ = [
    "LABEL_VALUES",
    "UNKNOWN",
    "MergeSummary",
    "build_label_table",
    "check_classes",
    "frame_as_strings",
    "import_coco",
    "import_openimages",
    "import_voc",
    "merge_label_tables",
    "read_label_frame",
    "write_label_table",
]
