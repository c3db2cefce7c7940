"""Label tables from files, DataFrames or arrays: read once (one reader), validate once, at the boundary.

A label table has one row per example: an input (an image path or a feature vector), one column per yes/no
task, and optionally a `split` column. After :func:`read_label_table` every later stage trusts the result:
targets are 0/1 floats, `known` says which of them are real labels.

>>> import pandas as pd
>>> frame = pd.DataFrame({"image": ["a.png", "b.png"], "car": ["1", "?"], "stop": ["no", "yes"]})
>>> table = label_table_from_frame(frame, split_seed=0, check_files=False)
>>> table.tasks, table.known.tolist()
(('car', 'stop'), [[True, True], [False, True]])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from multitask.errors import LabelError
from multitask.tables.compact import CompactLabels
from multitask.tables.reader import Plan, RawTable, Role, read_table, table_from_frame
from multitask.tables.splits import seeded_split, split_codes, split_names
from multitask.tables.table import LabelTable
from multitask.tables.validate import check_feature_values, check_images, feature_values


def _roles(columns: list[str], source: str | Path, tasks: Sequence[str] | None, input_column: str | None,
           feature_columns: Sequence[str] | None, split_column: str) -> tuple[list[str], str | None, list[str]]:
    """(tasks, input column, feature columns) from the header and the options."""
    if not columns:
        raise LabelError("the table has no columns", file=source)

    def require(name: str, what: str) -> None:
        if name not in columns:
            raise LabelError(f"{what} column {name!r} not found; columns are {columns}", file=source)

    if input_column is None and feature_columns is None and "image" in columns:
        input_column = "image"
    reserved = {split_column} | ({input_column} if input_column else set()) | set(feature_columns or ())
    if tasks is None:
        if input_column is None and feature_columns is None:
            raise LabelError("cannot tell inputs from tasks: name the image column (data.input_column), "
                             "the feature columns (data.feature_columns) or the tasks (data.tasks)", file=source)
        tasks = [c for c in columns if c not in reserved]
    tasks = list(tasks)
    for task in tasks:
        require(task, "task")
    if not tasks:
        raise LabelError("no task columns", file=source)
    if input_column is None and feature_columns is None:
        feature_columns = [c for c in columns if c not in set(tasks) | {split_column}]
        if not feature_columns:
            raise LabelError("no input column: give an image column or feature columns", file=source)
    if input_column is not None:
        require(input_column, "input")
    for name in feature_columns or ():
        require(name, "feature")
    return tasks, input_column, list(feature_columns or ())


def _labels(raw: RawTable, tasks: Sequence[str]) -> CompactLabels:
    """The compact labels of `tasks` from the reader's per-block (labels, rows) int8 codes, block by block (each
    block of codes is released once converted; no float array is made)."""
    return CompactLabels.from_codes(raw.codes, [raw.labels.index(task) for task in tasks], raw.n_rows)


def _split(raw: RawTable, column: str) -> np.ndarray:
    codes = split_codes(raw.column(column))
    bad = codes < 0
    if bad.any():
        row = int(bad.argmax())
        raise LabelError("split must be train, val or test", file=raw.source, line=raw.line(row), column=column,
                         value=raw.cell(column, row))
    return split_names(codes)


def input_paths(raw: RawTable, column: str, image_root: str | Path | None) -> tuple[np.ndarray, np.ndarray]:
    """(ids, image paths) from the input column: relative paths joined to `image_root` (default: the table's
    folder), column-wise."""
    values = raw.column(column)
    if not pa.types.is_string(values.type):
        values = values.cast(pa.string())
    values = pc.utf8_trim_whitespace(values)
    empty = pc.or_(pc.is_null(values), pc.equal(values, "")).to_numpy(zero_copy_only=False)
    if empty.any():
        row = int(empty.argmax())
        raise LabelError("empty image path", file=raw.source, line=raw.line(row), column=column)
    root = str(Path(image_root) if image_root is not None else Path(raw.source).parent)
    joined = pc.binary_join_element_wise(root, values, "/")
    paths = pc.if_else(pc.starts_with(values, "/"), values, joined)
    return (values.to_numpy(zero_copy_only=False).astype(object),
            paths.to_numpy(zero_copy_only=False).astype(object))


def plan_for(tasks: Sequence[str], input_column: str | None, features: Sequence[str],
             split_column: str | None) -> dict[str, Role]:
    """The reader's roles for these columns (every other column is skipped)."""
    plan: dict[str, Role] = {name: "numbers" for name in features}
    plan.update({task: "labels" for task in tasks})
    if split_column:
        plan[split_column] = "category"
    if input_column:
        plan[input_column] = "text"
    return plan


def table_from_raw(
    raw: RawTable,
    *,
    tasks: Sequence[str] | None = None,
    input_column: str | None = None,
    feature_columns: Sequence[str] | None = None,
    split_column: str = "split",
    image_root: str | Path | None = None,
    minus_one_unknown: bool = False,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    split_seed: int = 0,
    missing_images: str = "error",
    check_files: bool = True,
) -> LabelTable:
    """Validate a RawTable into a LabelTable (options as :func:`read_label_table`); consumes raw's label codes."""
    source = raw.source
    if tasks is None and raw.label_names is not None and input_column is None:
        tasks = list(raw.label_names)
    tasks, input_column, features = _roles(raw.names, source, tasks, input_column, feature_columns, split_column)
    n = raw.n_rows
    if n == 0:
        raise LabelError("the table has no rows", file=source)
    split = _split(raw, split_column) if split_column in raw.names else \
        seeded_split(n, val_fraction, test_fraction, split_seed)
    labels = _labels(raw, tasks)

    images = matrix = None
    skipped: tuple[str, ...] = ()
    if input_column is not None:
        ids, images = input_paths(raw, input_column, image_root)
        if check_files:
            ok = check_images(images, ids, file=source, column=input_column, missing=missing_images, line=raw.line)
            if not ok.all():
                skipped = tuple(ids[~ok])
                keep = np.flatnonzero(ok)
                ids, images, labels, split = ids[keep], images[keep], labels.subset(keep), split[keep]
    else:
        matrix = np.empty((n, len(features)), dtype=np.float32)
        for k, name in enumerate(features):
            matrix[:, k] = feature_values(raw.column(name), name=name, line=raw.line, file=source)
        if raw.row_ids is not None:
            ids = raw.row_ids
        elif raw.lines is not None:
            ids = raw.lines.astype(str).astype(object)
        else:
            ids = (np.arange(n) + 2).astype(str).astype(object)
    return LabelTable(tasks=tuple(tasks), labels=labels, split=split, ids=ids, images=images,
                      features=matrix, feature_names=tuple(features), source=str(source), skipped=skipped)


def _plan(options: dict[str, object], source: str | Path) -> Plan:
    """The reader's plan for a label table with these options."""
    def plan(names: list[str], arff_labels: tuple[str, ...] | None) -> dict[str, Role]:
        tasks = options.get("tasks")
        if tasks is None and arff_labels is not None and options.get("input_column") is None:
            tasks = list(arff_labels)
        split = str(options.get("split_column", "split"))
        tasks, input_column, features = _roles(names, source, tasks, options.get("input_column"),  # type: ignore
                                               options.get("feature_columns"), split)  # type: ignore[arg-type]
        return {name: "skip" for name in names} | plan_for(tasks, input_column, features, split)
    return plan


def label_table_from_frame(frame: pd.DataFrame, *, source: str | Path = "<frame>", **options: object) -> LabelTable:
    """Validate a DataFrame into a LabelTable (see the module docstring; options as :func:`read_label_table`)."""
    raw = table_from_frame(frame, source, _plan(options, source), bool(options.get("minus_one_unknown", False)))
    return table_from_raw(raw, **options)  # type: ignore[arg-type]


def read_label_table(path: str | Path, **options: object) -> LabelTable:
    """Read and validate a CSV, TSV, Parquet or ARFF label table.

    Options: tasks, input_column, feature_columns, split_column ('split'), image_root, minus_one_unknown,
    val_fraction / test_fraction / split_seed (used without a split column), missing_images ('error' | 'skip'),
    check_files. ARFF files (Mulan multi-label sets) are feature tables whose labels are named by the Mulan XML
    beside them.
    """
    raw = read_table(path, _plan(options, path), bool(options.get("minus_one_unknown", False)))
    return table_from_raw(raw, **options)  # type: ignore[arg-type]


def label_table_from_arrays(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    tasks: Sequence[str] | None = None,
    split: Sequence[str] | np.ndarray | None = None,
    feature_names: Sequence[str] | None = None,
    source: str = "<arrays>",
) -> LabelTable:
    """A feature table from arrays: `labels` holds 1, 0 or NaN (unknown); every row is 'train' by default.

    >>> table = label_table_from_arrays(np.zeros((2, 3)), np.array([[1, np.nan], [0, 1]]))
    >>> table.tasks, table.known.tolist()
    (('task_0', 'task_1'), [[True, False], [True, True]])
    """
    x64 = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if x64.ndim != 2 or y.ndim != 2 or len(x64) != len(y):
        raise ValueError(f"features (n, d) and labels (n, T) must be 2-D with the same n; got {x64.shape}, {y.shape}")
    known = ~np.isnan(y)
    bad = known & ~np.isin(y, (0.0, 1.0))
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise LabelError(f"labels must be 1, 0 or NaN (unknown); found at row {row}, label column {col}",
                         value=y[row, col], file=source)
    names = tuple(feature_names or (f"x{i}" for i in range(x64.shape[1])))
    for k in range(x64.shape[1]):
        check_feature_values(x64[:, k], name=names[k], line=None, file=source)
    task_names = tuple(tasks) if tasks is not None else tuple(f"task_{j}" for j in range(y.shape[1]))
    if len(task_names) != y.shape[1]:
        raise ValueError(f"{len(task_names)} task names for {y.shape[1]} label columns")
    split_array = np.full(len(x64), "train", dtype="<U5") if split is None else np.asarray(split, dtype="<U5")
    return LabelTable(tasks=task_names, targets=np.where(known, y, 0.0).astype(np.float32), known=known,
                      split=split_array, ids=np.arange(len(x64)).astype(str).astype(object),
                      features=x64.astype(np.float32), feature_names=names, source=source)


def read_data(config: object, seed: int = 0) -> LabelTable:
    """Read the table a DataConfig points at, with all its options; hide labels if asked."""
    from multitask.config import DataConfig

    assert isinstance(config, DataConfig)
    if config.path is None:
        raise LabelError("no label table given (data.path / --data)")
    table = read_label_table(
        config.path,
        tasks=config.tasks,
        input_column=config.input_column,
        feature_columns=config.feature_columns,
        split_column=config.split_column,
        image_root=config.images,
        minus_one_unknown=config.minus_one_unknown,
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
        split_seed=seed,
        missing_images=config.missing_images,
        check_files=config.shards is None,  # images come from the shards (checked when they are read)
    )
    if config.hide_fraction > 0:
        table = table.hide_labels(config.hide_fraction, seed=seed)
    if config.hide:
        from multitask.hiding import hide_labels

        table = hide_labels(table, config.hide, seed=seed).table
    return table
