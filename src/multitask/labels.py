"""Label tables: read once, validate once, at the boundary.

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

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from multitask.errors import LabelError

POSITIVE = frozenset({"1", "1.0", "true", "yes", "y", "t"})
NEGATIVE = frozenset({"0", "0.0", "false", "no", "n", "f"})
UNKNOWN = frozenset({"?", "", "na", "nan", "n/a", "null", "none", "<na>"})
SPLITS = ("train", "val", "test")
_SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val",
                  "validation": "val", "dev": "val", "test": "test", "testing": "test"}
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq", ".arff")
_HEADER_LINE = 1  # data row i (0-based) sits on file line i + 2


@dataclass(frozen=True, eq=False)
class LabelTable:
    """Validated examples: inputs, 0/1 `targets`, boolean `known`, and a split per row.

    Exactly one of `images` (absolute paths) and `features` is set.
    """

    tasks: tuple[str, ...]
    targets: np.ndarray
    known: np.ndarray
    split: np.ndarray
    ids: np.ndarray
    images: np.ndarray | None = None
    features: np.ndarray | None = None
    feature_names: tuple[str, ...] = ()
    source: str = ""
    skipped: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        n, t = len(self.ids), len(self.tasks)
        if self.targets.shape != (n, t) or self.known.shape != (n, t) or self.split.shape != (n,):
            raise ValueError("targets, known and split must match the number of rows and tasks")
        if (self.images is None) == (self.features is None):
            raise ValueError("a label table has either images or features")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    @property
    def kind(self) -> str:
        """'images' or 'features'."""
        return "images" if self.images is not None else "features"

    @property
    def n_features(self) -> int:
        return 0 if self.features is None else self.features.shape[1]

    def subset(self, rows: np.ndarray | Sequence[int]) -> LabelTable:
        """The rows selected by a boolean mask or index array."""
        rows = np.asarray(rows)
        return replace(
            self,
            targets=self.targets[rows],
            known=self.known[rows],
            split=self.split[rows],
            ids=self.ids[rows],
            images=None if self.images is None else self.images[rows],
            features=None if self.features is None else self.features[rows],
        )

    def part(self, split: str) -> LabelTable:
        """The rows of one split: 'train', 'val' or 'test'."""
        return self.subset(self.split == split)

    def select_tasks(self, names: Sequence[str], drop_unlabelled: bool = False) -> LabelTable:
        """Keep only some tasks; with drop_unlabelled, also drop rows with none of them known."""
        missing = [n for n in names if n not in self.tasks]
        if missing:
            raise LabelError(f"unknown task(s) {missing}; tasks are {list(self.tasks)}", file=self.source)
        cols = [self.tasks.index(n) for n in names]
        table = replace(self, tasks=tuple(names), targets=self.targets[:, cols], known=self.known[:, cols])
        if drop_unlabelled:
            table = table.subset(table.known.any(axis=1))
        return table

    def hide_labels(self, fraction: float, seed: int, splits: Sequence[str] = ("train", "val")) -> LabelTable:
        """Mark a seeded random `fraction` of the known labels in `splits` as unknown."""
        rng = np.random.default_rng(seed)
        eligible = self.known & np.isin(self.split, list(splits))[:, None]
        hide = eligible & (rng.random(self.known.shape) < fraction)
        return replace(self, known=self.known & ~hide, targets=np.where(hide, 0.0, self.targets).astype(np.float32))

    def positives(self) -> np.ndarray:
        """Known positive labels per task."""
        return ((self.targets > 0.5) & self.known).sum(axis=0)

    def summary(self) -> pd.DataFrame:
        """Per task and split: known labels, positives and fraction unknown."""
        rows = []
        for j, task in enumerate(self.tasks):
            row: dict[str, object] = {"task": task}
            for split in SPLITS:
                in_split = self.split == split
                known = self.known[in_split, j]
                row[f"{split}_known"] = int(known.sum())
                row[f"{split}_positive"] = int((self.targets[in_split, j][known] > 0.5).sum())
            row["unknown_fraction"] = float(1 - self.known[:, j].mean()) if len(self) else 0.0
            rows.append(row)
        return pd.DataFrame(rows)

    def to_frame(self, input_column: str = "image") -> pd.DataFrame:
        """The table in the file format: input, task columns with 1 / 0 / ?, split."""
        values = np.where(self.known, np.where(self.targets > 0.5, "1", "0"), "?")
        frame = pd.DataFrame(values, columns=list(self.tasks))
        if self.features is not None:
            inputs = pd.DataFrame(self.features, columns=list(self.feature_names))
        else:
            inputs = pd.DataFrame({input_column: self.ids})
        return pd.concat([inputs, frame, pd.DataFrame({"split": self.split})], axis=1)


# ---------------------------------------------------------------------------------------------- reading


def _read_csv_strings(path: Path) -> pd.DataFrame:
    """Every cell as the string in the file; header checked for duplicates first."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle, delimiter=delimiter), None)
    except UnicodeDecodeError:
        raise LabelError("not a text table (cannot decode it as UTF-8); expected CSV, Parquet or ARFF",
                         file=path) from None
    if not header or all(not h.strip() for h in header):
        raise LabelError("the file is empty or has no header row", file=path, line=1)
    _check_duplicates([h.strip() for h in header], path)
    try:
        frame = pd.read_csv(path, sep=delimiter, dtype=str, keep_default_na=False, na_filter=False,
                            encoding="utf-8-sig", skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        raise LabelError(f"not a readable table: {error}", file=path) from None
    frame.columns = [c.strip() for c in frame.columns]
    return frame


def _check_duplicates(columns: Sequence[str], path: Path | str) -> None:
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            raise LabelError("duplicate column name", file=path, line=1, column=name)
        seen.add(name)


def _read_parquet_strings(path: Path) -> pd.DataFrame:
    try:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
    except Exception as error:  # pyarrow raises several unrelated types
        raise LabelError(f"not a readable Parquet table: {error}", file=path) from None
    _check_duplicates(table.column_names, path)
    frame = table.to_pandas()
    out = {}
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_bool_dtype(column):
            out[name] = column.map({True: "1", False: "0"}).fillna("").astype(str)
        elif pd.api.types.is_float_dtype(column) and column.dropna().apply(float.is_integer).all():
            out[name] = column.map(lambda v: "" if pd.isna(v) else str(int(v)))
        else:
            out[name] = column.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v))
                                   else str(v))
    return pd.DataFrame(out)


def read_table_strings(path: str | Path) -> pd.DataFrame:
    """A label table file as a frame of strings (CSV, TSV or Parquet)."""
    path = Path(path)
    if not path.exists():
        raise LabelError("file not found", file=path)
    if path.is_dir():
        raise LabelError("is a folder, not a label table", file=path)
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return _read_parquet_strings(path)
    if suffix in (".csv", ".tsv", ".txt"):
        return _read_csv_strings(path)
    raise LabelError(f"unsupported file type {suffix!r}; expected one of {', '.join(TABLE_SUFFIXES)}",
                     file=path)


def parse_labels(
    values: pd.Series, *, file: str | Path, column: str, minus_one_unknown: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Strings → (targets float32 0/1, known bool). Any other value raises LabelError with its line."""
    text = values.astype(str).str.strip().str.lower()
    positive = text.isin(POSITIVE).to_numpy()
    negative = text.isin(NEGATIVE).to_numpy()
    unknown = text.isin(UNKNOWN).to_numpy()
    if minus_one_unknown:
        unknown = unknown | text.isin({"-1", "-1.0"}).to_numpy()
    bad = ~(positive | negative | unknown)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        value = values.iloc[row]
        hint = " (-1 means unknown only with data.minus_one_unknown=true)" if text.iloc[row] in {"-1", "-1.0"} \
            else ""
        raise LabelError(f"not a label: use 1/0, true/false, yes/no, or ?/empty/NA for unknown{hint}; "
                         f"{int(bad.sum())} such value(s) in this column",
                         file=file, line=row + _HEADER_LINE + 1, column=column, value=value)
    return positive.astype(np.float32), ~unknown


def _parse_split(values: pd.Series, file: str | Path, column: str) -> np.ndarray:
    text = values.astype(str).str.strip().str.lower()
    mapped = text.map(_SPLIT_ALIASES)
    bad = mapped.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise LabelError("split must be train, val or test", file=file, line=row + _HEADER_LINE + 1,
                         column=column, value=values.iloc[row])
    return mapped.to_numpy(dtype="<U5")


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


def _parse_features(frame: pd.DataFrame, columns: Sequence[str], file: str | Path) -> np.ndarray:
    out = np.empty((len(frame), len(columns)), dtype=np.float32)
    for k, name in enumerate(columns):
        numbers = pd.to_numeric(frame[name].astype(str).str.strip(), errors="coerce")
        bad = numbers.isna().to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise LabelError("feature values must be numbers (missing values are not supported); if this column "
                             "is not a feature, list the features in data.feature_columns",
                             file=file, line=row + _HEADER_LINE + 1, column=name, value=frame[name].iloc[row])
        out[:, k] = numbers.to_numpy(dtype=np.float32)
    return out


def _check_images(paths: np.ndarray, ids: np.ndarray, file: str | Path, column: str, missing: str) -> np.ndarray:
    """Boolean mask of readable images; raise on the first bad one unless missing == 'skip'."""
    from PIL import Image, UnidentifiedImageError

    ok = np.ones(len(paths), dtype=bool)
    for row, path in enumerate(paths):
        reason = None
        if not Path(path).is_file():
            reason = "image file not found"
        else:
            try:
                with Image.open(path) as image:
                    image.size  # noqa: B018 - reads the header only
            except (UnidentifiedImageError, OSError) as error:
                reason = f"image file unreadable ({error.__class__.__name__})"
        if reason:
            if missing != "skip":
                raise LabelError(f"{reason}: {path} (use data.missing_images=skip to drop such rows)",
                                 file=file, line=row + _HEADER_LINE + 1, column=column, value=ids[row])
            ok[row] = False
    return ok


def untrainable_tasks(table: LabelTable) -> dict[str, str]:
    """Tasks that cannot be trained, each with the reason: no known label, or only one class, in the training split.

    >>> t = label_table_from_arrays(np.zeros((4, 1)), np.array([[1, 0], [0, np.nan], [1, np.nan], [0, 1]]),
    ...                             split=np.array(["train", "train", "val", "val"]), tasks=["a", "b"])
    >>> untrainable_tasks(t)["b"]
    'task has only one class in the training split (all 1 known labels are negative); drop the task or add labels'
    >>> list(untrainable_tasks(t.select_tasks(["a"])))
    []
    """
    train = table.split == "train"
    reasons = {}
    for j, task in enumerate(table.tasks):
        known = table.known[train, j]
        positives = int((table.targets[train, j][known] > 0.5).sum())
        if not known.any():
            reasons[task] = "task has no known label in the training split"
        elif positives in (0, int(known.sum())):
            only = "positive" if positives else "negative"
            reasons[task] = (f"task has only one class in the training split (all {int(known.sum())} known labels "
                             f"are {only}); drop the task or add labels")
    return reasons


def check_trainable(table: LabelTable) -> None:
    """Every task needs known labels of both classes in the training split."""
    if not (table.split == "train").any():
        raise LabelError("no training rows (split column has no 'train')", file=table.source)
    for task, reason in untrainable_tasks(table).items():
        raise LabelError(reason, file=table.source, column=task)


def label_table_from_frame(
    frame: pd.DataFrame,
    *,
    source: str | Path = "<frame>",
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
    """Validate a frame of strings into a LabelTable (see the module docstring)."""
    columns = list(frame.columns)
    _check_duplicates(columns, source)
    if not columns:
        raise LabelError("the table has no columns", file=source)

    def require(name: str, what: str) -> None:
        if name not in columns:
            raise LabelError(f"{what} column {name!r} not found; columns are {columns}", file=source)

    has_split = split_column in columns
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

    n = len(frame)
    if n == 0:
        raise LabelError("the table has no rows", file=source)
    targets = np.zeros((n, len(tasks)), dtype=np.float32)
    known = np.zeros((n, len(tasks)), dtype=bool)
    for j, task in enumerate(tasks):
        targets[:, j], known[:, j] = parse_labels(frame[task], file=source, column=task,
                                                  minus_one_unknown=minus_one_unknown)
    split = (_parse_split(frame[split_column], source, split_column) if has_split
             else seeded_split(n, val_fraction, test_fraction, split_seed))

    images = features = None
    names: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    if input_column is not None:
        require(input_column, "input")
        ids = frame[input_column].astype(str).str.strip().to_numpy(dtype=object)
        empty = ids == ""
        if empty.any():
            row = int(np.flatnonzero(empty)[0])
            raise LabelError("empty image path", file=source, line=row + _HEADER_LINE + 1, column=input_column)
        root = Path(image_root) if image_root is not None else Path(str(source)).parent
        images = np.array([str(p if Path(p).is_absolute() else root / p) for p in ids], dtype=object)
        if check_files:
            ok = _check_images(images, ids, source, input_column, missing_images)
            if not ok.all():
                skipped = tuple(ids[~ok])
                keep = np.flatnonzero(ok)
                ids, images, targets, known, split = ids[keep], images[keep], targets[keep], known[keep], split[keep]
    else:
        for name in feature_columns or ():
            require(name, "feature")
        features = _parse_features(frame, list(feature_columns or ()), source)
        names = tuple(feature_columns or ())
        ids = np.array([str(i + _HEADER_LINE + 1) for i in range(n)], dtype=object)
    return LabelTable(tasks=tuple(tasks), targets=targets, known=known, split=split, ids=ids, images=images,
                      features=features, feature_names=names, source=str(source), skipped=skipped)


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
    x = np.asarray(features, dtype=np.float32)
    y = np.asarray(labels, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ValueError(f"features (n, d) and labels (n, T) must be 2-D with the same n; got {x.shape}, {y.shape}")
    known = ~np.isnan(y)
    bad = known & ~np.isin(y, (0.0, 1.0))
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise LabelError(f"labels must be 1, 0 or NaN (unknown); found at row {row}, label column {col}",
                         value=y[row, col], file=source)
    if not np.isfinite(x).all():
        row, col = (int(i) for i in np.argwhere(~np.isfinite(x))[0])
        raise LabelError(f"features must be finite numbers; found at row {row}, feature column {col}",
                         value=x[row, col], file=source)
    names = tuple(tasks) if tasks is not None else tuple(f"task_{j}" for j in range(y.shape[1]))
    if len(names) != y.shape[1]:
        raise ValueError(f"{len(names)} task names for {y.shape[1]} label columns")
    split_array = np.full(len(x), "train", dtype="<U5") if split is None else np.asarray(split, dtype="<U5")
    return LabelTable(tasks=names, targets=np.where(known, y, 0.0).astype(np.float32), known=known,
                      split=split_array, ids=np.array([str(i) for i in range(len(x))], dtype=object),
                      features=x, feature_names=tuple(feature_names or (f"x{i}" for i in range(x.shape[1]))),
                      source=source)


def read_label_table(path: str | Path, **options: object) -> LabelTable:
    """Read and validate a CSV, TSV, Parquet or ARFF label table (options as label_table_from_frame).

    ARFF files (Mulan multi-label sets) are feature tables whose labels are named by the Mulan XML beside them.
    """
    path = Path(path)
    if path.suffix.lower() == ".arff":
        from multitask.data.arff import read_arff

        frame, label_names = read_arff(path)
        strings = frame.astype(object).where(frame.notna(), "?").astype(str)
        for name in label_names:
            strings[name] = frame[name].map(lambda v: "?" if pd.isna(v) else str(int(v)))
        options.setdefault("tasks", options.get("tasks") or label_names)
        if options.get("feature_columns") is None:
            options["feature_columns"] = [c for c in frame.columns if c not in label_names]
        return label_table_from_frame(strings, source=path, **options)  # type: ignore[arg-type]
    return label_table_from_frame(read_table_strings(path), source=path, **options)  # type: ignore[arg-type]


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
    )
    if config.hide_fraction > 0:
        table = table.hide_labels(config.hide_fraction, seed=seed)
    return table
