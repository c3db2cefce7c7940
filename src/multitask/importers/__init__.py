"""Turn other datasets' annotation formats into the project's label table (and their boxes into a box table:
``import_*_boxes``, :mod:`multitask.detection.box_files`).

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

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from multitask.errors import LabelError

# The importer modules use the helpers below through function-level imports, so importing them first is safe.
from multitask.importers.coco import import_coco, import_coco_boxes
from multitask.importers.merge import MergeSummary, merge_box_tables, merge_label_tables
from multitask.importers.openimages import import_openimages, import_openimages_boxes
from multitask.importers.voc import import_voc, import_voc_boxes
from multitask.tables.reader import PARQUET_SUFFIXES, TEXT_SUFFIXES

UNKNOWN = "?"
LABEL_VALUES = ("1", "0", UNKNOWN)
WRITABLE_SUFFIXES = (*TEXT_SUFFIXES, *PARQUET_SUFFIXES)


def _strings(column: pd.Series) -> pd.Series:
    """One column as text: missing cells become ``""``, integral floats lose their ``.0`` (column-wise)."""
    if pd.api.types.is_bool_dtype(column):
        return column.map({True: "1", False: "0"}).astype(object).where(column.notna(), "")
    if pd.api.types.is_float_dtype(column):
        values = column.to_numpy(dtype=np.float64)
        finite = np.isfinite(values)
        integral = finite & (np.floor(np.where(finite, values, 0)) == np.where(finite, values, 0))
        text = column.astype(str).to_numpy(dtype=object)
        text[integral] = values[integral].astype(np.int64).astype(str)
        text[np.isnan(values)] = ""
        return pd.Series(text, index=column.index, dtype=object)
    return column.astype(object).where(column.notna(), "").astype(str)


def refuse_overwrite(path: str | Path, inputs: Iterable[str | Path], option: str = "--out") -> None:
    """A LabelError when `path` is one of `inputs` (an import must not overwrite what it reads)."""
    path = Path(path)
    for source in inputs:
        if Path(source).exists() and path.exists() and path.resolve() == Path(source).resolve():
            raise LabelError(f"the output would overwrite an input of this import; choose another {option}",
                             file=path)


def write_label_table(frame: pd.DataFrame, path: str | Path, *, inputs: Iterable[str | Path] = ()) -> None:
    """Write a label table to ``.csv`` / ``.tsv`` / ``.txt`` or ``.parquet`` / ``.pq`` (by extension), every column
    as strings, atomically; refuses to write over any of `inputs` (the files it was made from).

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels.parquet"
    >>> write_label_table(pd.DataFrame({"image": ["a.jpg"], "car": ["0"]}), path)
    >>> pd.read_parquet(path)["car"].tolist()
    ['0']
    """
    from multitask.files import atomic_path

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITABLE_SUFFIXES:
        raise LabelError(f"unknown label table extension; use one of {', '.join(WRITABLE_SUFFIXES)}", file=path,
                         value=path.suffix)
    refuse_overwrite(path, inputs)
    strings = pd.DataFrame({name: _strings(frame[name]) for name in frame.columns}, columns=frame.columns)
    with atomic_path(path) as tmp:
        if suffix in TEXT_SUFFIXES:
            strings.to_csv(tmp, index=False, lineterminator="\n", sep="\t" if suffix == ".tsv" else ",")
        else:
            strings.astype(str).to_parquet(tmp, index=False)


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
    "WRITABLE_SUFFIXES",
    "UNKNOWN",
    "MergeSummary",
    "build_label_table",
    "check_classes",
    "import_coco",
    "import_coco_boxes",
    "import_openimages",
    "import_openimages_boxes",
    "import_voc",
    "import_voc_boxes",
    "merge_box_tables",
    "merge_label_tables",
    "refuse_overwrite",
    "write_label_table",
]
