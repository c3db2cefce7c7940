"""The one table reader: CSV / TSV / TXT, Parquet and ARFF files (and pandas DataFrames) as a RawTable.

Every entry point that reads a table (train, compare, advise, evaluate, predict, the importers' merge, the
estimator through DataFrames) goes through :func:`read_table`. A caller says per column what it needs
(`plan`): ``"labels"`` (mapped by the vocabulary block by block as the file is read, so only int8 codes are
kept), ``"category"`` (dictionary-encoded text, e.g. the split column), ``"text"`` (strings), ``"numbers"``
(float64) or ``"skip"``. CSV files are streamed through pyarrow's parser in blocks of rows with those types, so
no cell ever becomes a Python object; a field may be any length.

Line numbers are file lines (header = line 1). For CSV they are found, only when an error is reported, by
re-scanning the file with the standard library's csv module (so blank lines and quoted newlines are counted);
for Parquet and DataFrames a row's "line" is its index + 2, as in the CSV the table would be written to; for
ARFF it is the line of the data row.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
>>> _ = path.write_text("image,car\\na.png,1\\n\\nb.png,?\\n")
>>> raw = read_table(path, lambda names, _: {"image": "text", "car": "labels"})
>>> raw.labels, raw.n_rows, raw.line(1), raw.label_column("car").tolist()
(['car'], 2, 4, [1, -1])
"""

from __future__ import annotations

import csv
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from multitask.errors import LabelError
from multitask.tables import vocabulary

TEXT_SUFFIXES = (".csv", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
TABLE_SUFFIXES = (*TEXT_SUFFIXES, *PARQUET_SUFFIXES, ".arff")
Role = Literal["labels", "category", "text", "numbers", "skip"]
Plan = Callable[[list[str], "tuple[str, ...] | None"], Mapping[str, Role]]
_TYPES: dict[str, pa.DataType] = {"labels": pa.string(),
                                  "category": pa.dictionary(pa.int32(), pa.string()), "text": pa.string(),
                                  "numbers": pa.float64()}
_MAX_BLOCK = 1 << 31
_BLOCK = 1 << 22  # 4 MiB per block of rows


@dataclass
class RawTable:
    """A table as read: label columns already mapped by the vocabulary to int8 codes (1 / 0 / -1 unknown, one
    array per block of rows, shape (labels, rows)), the other columns as pyarrow arrays, and how to find a row's
    line in the file."""

    table: pa.Table
    source: str
    labels: list[str] = field(default_factory=list)  # names of the label columns, in the order of the codes
    codes: list[np.ndarray] = field(default_factory=list)  # (len(labels), rows of the block) per block
    lines: np.ndarray | None = None  # file line of every row (ARFF); None: computed on demand
    csv_path: Path | None = None  # set for CSV files: lines are found by re-scanning the file
    label_names: tuple[str, ...] | None = None  # ARFF: the labels named by the Mulan XML
    row_ids: np.ndarray | None = None  # ARFF: the string attribute, when there is one
    n_rows: int = 0
    _csv_lines: list[int] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        """Every column read (label columns first)."""
        return [*self.labels, *self.table.column_names]

    def column(self, name: str) -> pa.ChunkedArray:
        return self.table.column(name)

    def label_column(self, name: str) -> np.ndarray:
        """The int8 codes of one label column, all rows."""
        k = self.labels.index(name)
        return np.concatenate([part[k] for part in self.codes]) if self.codes else np.zeros(0, dtype=np.int8)

    def cell(self, name: str, row: int) -> object:
        """One cell of a non-label column as a Python value (for messages)."""
        return self.table.column(name)[row].as_py()

    def line(self, row: int) -> int:
        """The 1-based file line of data row `row` (0-based)."""
        if self.lines is not None:
            return int(self.lines[row])
        if self.csv_path is None:
            return row + 2
        if len(self._csv_lines) <= row:
            self._csv_lines = _data_lines(self.csv_path, until=row)
        return self._csv_lines[row] if row < len(self._csv_lines) else row + 2


def _codes_of(batch: pa.RecordBatch | pa.Table, labels: Sequence[str], minus_one_unknown: bool,
              source: str | Path) -> tuple[np.ndarray, tuple[int, str, object] | None]:
    """(labels, rows) codes of one block, and (row, column, value) of its first cell that is not a label."""
    codes = np.empty((len(labels), batch.num_rows), dtype=np.int8)
    for k, name in enumerate(labels):
        column = batch.column(name)
        try:
            vocabulary.label_codes(column, minus_one_unknown, out=codes[k])
        except TypeError as error:
            raise LabelError(str(error), file=source, column=name) from None
        bad = codes[k] == vocabulary.BAD
        if bad.any():
            row = int(bad.argmax())
            return codes, (row, name, column[row].as_py())
    return codes, None


def _not_a_label(name: str, value: object, line: int, source: str | Path) -> LabelError:
    hint = " (-1 means unknown only with data.minus_one_unknown=true)" if vocabulary.is_minus_one(value) else ""
    return LabelError(f"not a label: {vocabulary.HELP}{hint}", file=source, line=line, column=name, value=value)


def _map_labels(batch: pa.RecordBatch | pa.Table, labels: Sequence[str], minus_one_unknown: bool, first_row: int,
                line: Callable[[int], int], source: str | Path) -> np.ndarray:
    """(labels, rows) codes of one block; LabelError at the first cell that is not a label."""
    codes, bad = _codes_of(batch, labels, minus_one_unknown, source)
    if bad is not None:
        row, name, value = bad
        raise _not_a_label(name, value, line(first_row + row), source)
    return codes


def _finish(table: pa.Table, source: str | Path, roles: Mapping[str, Role], minus_one_unknown: bool,
            line: Callable[[int], int], **fields: object) -> RawTable:
    """A whole table read at once (Parquet, ARFF, DataFrame): map its label columns, keep the rest."""
    names = table.column_names
    labels = [n for n in names if roles.get(n) == "labels"]
    codes = _map_labels(table, labels, minus_one_unknown, 0, line, source)
    keep = [n for n in names if roles.get(n, "text") not in ("labels", "skip")]
    return RawTable(table.select(keep), str(source), labels, [codes], n_rows=table.num_rows, **fields)


def _delimiter(path: Path) -> str:
    return "\t" if path.suffix.lower() == ".tsv" else ","


@contextmanager
def _no_field_limit() -> object:
    old = csv.field_size_limit(sys.maxsize)
    try:
        yield
    finally:
        csv.field_size_limit(old)


def _rows(path: Path) -> object:
    """(start line, cells) of every non-empty CSV row, the header first."""
    with _no_field_limit(), path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        reader = csv.reader(handle, delimiter=_delimiter(path))
        start = 1
        for cells in reader:
            if cells:
                yield start, cells
            start = reader.line_num + 1


def _data_lines(path: Path, until: int) -> list[int]:
    lines: list[int] = []
    for k, (start, _) in enumerate(_rows(path)):
        if k:
            lines.append(start)
            if len(lines) > until:
                break
    return lines


def _ragged(path: Path) -> tuple[int, int, int] | None:
    """(line, cells, header cells) of the first row whose length differs from the header's."""
    width = None
    for start, cells in _rows(path):
        if width is None:
            width = len(cells)
        elif len(cells) != width:
            return start, len(cells), width
    return None


def _check_text(path: Path) -> None:
    with path.open("rb") as handle:
        head = handle.read(1 << 16)
    complete = head if len(head) < 1 << 16 else head[: head.rfind(b"\n") + 1]
    try:
        if b"\0" in head:
            raise UnicodeDecodeError("utf-8", head, 0, 1, "NUL byte")
        complete.decode("utf-8")
    except UnicodeDecodeError:
        raise LabelError("not a text table (cannot decode it as UTF-8); expected CSV, TSV, Parquet or ARFF",
                         file=path) from None


def check_names(names: Sequence[str], source: str | Path) -> list[str]:
    """Column names with surrounding spaces removed; empty, duplicate or space-different names refused.

    >>> check_names([" a", "b"], "t.csv")
    ['a', 'b']
    """
    stripped = [str(n).strip() for n in names]
    seen: dict[str, str] = {}
    for raw, name in zip(names, stripped, strict=True):
        if name in seen:
            what = "duplicate column name" if seen[name] == raw else \
                f"column names {seen[name]!r} and {raw!r} differ only in surrounding spaces"
            raise LabelError(what, file=source, line=1, column=name)
        seen[name] = str(raw)
    return stripped


def _header(path: Path) -> list[str]:
    try:
        reader = pa_csv.open_csv(path, parse_options=pa_csv.ParseOptions(delimiter=_delimiter(path)),
                                 convert_options=pa_csv.ConvertOptions(column_types={}, include_columns=[]),
                                 read_options=pa_csv.ReadOptions(block_size=1 << 20))
        names = list(reader.schema.names) if reader.schema.names else None
        reader.close()
    except pa.ArrowInvalid as error:
        if "Empty CSV file" in str(error) or "empty" in str(error).lower():
            names = None
        else:
            names = next((cells for _, cells in _rows(path)), None)
    except OSError:
        names = None
    if not names or all(not n.strip() for n in names):
        raise LabelError("the file is empty or has no header row", file=path, line=1)
    return names


def _read_text(path: Path, plan: Plan | None, minus_one_unknown: bool) -> RawTable:
    _check_text(path)
    header = _header(path)
    names = check_names(header, path)
    roles = dict(plan(names, None)) if plan else {}
    kinds = {raw: roles.get(name, "text") for raw, name in zip(header, names, strict=True)}
    rename = {raw: name for raw, name in zip(header, names, strict=True)}
    include = [raw for raw in header if kinds[raw] != "skip"]
    labels = [raw for raw in include if kinds[raw] == "labels"]
    numbers_as_text, multiline, block = False, False, _BLOCK
    ragged: list[int] = []
    finder = RawTable(pa.table({}), str(path), csv_path=path)

    def invalid(_row: object) -> str:
        ragged.append(1)
        return "error"

    rest = [raw for raw in include if kinds[raw] != "labels"]
    codes: list[np.ndarray] = []
    others: list[pa.RecordBatch] = []
    rows = 0
    schema = None
    while True:
        types = {raw: _TYPES["text" if kind == "numbers" and numbers_as_text else kind]
                 for raw, kind in kinds.items() if kind != "skip"}
        codes, others, rows = [], [], 0
        try:
            reader = pa_csv.open_csv(
                path,
                read_options=pa_csv.ReadOptions(block_size=block, use_threads=True),
                parse_options=pa_csv.ParseOptions(delimiter=_delimiter(path), newlines_in_values=multiline,
                                                  invalid_row_handler=invalid),
                convert_options=pa_csv.ConvertOptions(column_types=types, include_columns=include,
                                                      strings_can_be_null=False, quoted_strings_can_be_null=False,
                                                      null_values=[""]))
            schema = None
            for batch in reader:
                codes.append(_map_labels(batch, labels, minus_one_unknown, rows, finder.line, path))
                kept = batch.select(rest)
                schema = kept.schema
                others.append(kept)
                rows += batch.num_rows
            break
        except pa.ArrowInvalid as error:
            message = str(error)
            if ragged:
                ragged.clear()
                found = _ragged(path)
                if found is not None:
                    line, cells, width = found
                    many = "too many" if cells > width else "too few"
                    raise LabelError(f"row has {cells} cells but the header has {width} ({many}); every row needs "
                                     "one cell per column", file=path, line=line) from None
                if not multiline:  # a quoted field holds a line break
                    multiline = True
                    continue
            if "straddl" in message and block < _MAX_BLOCK:
                block *= 4
                continue
            if "conversion error to double" in message and not numbers_as_text:
                numbers_as_text = True
                continue
            if "UTF8" in message or "UTF-8" in message:
                raise LabelError("not a text table (cannot decode it as UTF-8)", file=path) from None
            if "Empty CSV" in message:
                raise LabelError("the file is empty or has no header row", file=path, line=1) from None
            raise LabelError(f"not a readable table: {message}", file=path) from None
    table = pa.Table.from_batches(others, schema=schema) if others and schema is not None else \
        pa.table({raw: pa.array([], type=_TYPES[kinds[raw]]) for raw in rest})
    table = table.rename_columns([rename[raw] for raw in table.column_names])
    if not codes:
        codes = [np.zeros((len(labels), 0), dtype=np.int8)]
    return RawTable(table, str(path), [rename[raw] for raw in labels], codes, csv_path=path, n_rows=rows)


def _read_parquet(path: Path, plan: Plan | None, minus_one_unknown: bool) -> RawTable:
    try:
        import pyarrow.parquet as pq

        header = list(pq.read_schema(path).names)
        names = check_names(header, path)
        roles = dict(plan(names, None)) if plan else {}
        include = [raw for raw, name in zip(header, names, strict=True) if roles.get(name, "text") != "skip"]
        table = pq.read_table(path, columns=include)
    except LabelError:
        raise
    except Exception as error:  # pyarrow raises several unrelated types for a damaged file
        raise LabelError(f"not a readable Parquet table: {error}", file=path) from None
    table = table.rename_columns([n.strip() for n in table.column_names])
    return _finish(table, path, roles, minus_one_unknown, lambda row: row + 2)


def _read_arff(path: Path, plan: Plan | None, minus_one_unknown: bool) -> RawTable:
    from multitask.data.arff import read_arff_rows

    frame, label_names, lines, ids = read_arff_rows(path)
    names = check_names([str(c) for c in frame.columns], path)
    roles = dict(plan(names, tuple(label_names))) if plan else {}
    lines = np.asarray(lines)
    table = _arrow_table(frame, names)
    return _finish(table, path, roles, minus_one_unknown, lambda row: int(lines[row]), lines=lines,
                   label_names=tuple(label_names), row_ids=ids)


def read_xml_root(path: str | Path) -> ET.Element:
    """The root element of an XML file (Mulan label lists, Pascal VOC annotations); malformed XML is a LabelError
    naming the file and line.

    >>> import tempfile, pathlib
    >>> bad = pathlib.Path(tempfile.mkdtemp()) / "a.xml"
    >>> _ = bad.write_text("<a>\\n<b></a>")
    >>> read_xml_root(bad)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    multitask.errors.LabelError: .../a.xml, line 2: malformed XML (...)
    """
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as error:
        line = error.position[0] if getattr(error, "position", None) else None
        raise LabelError(f"malformed XML ({error})", file=path, line=line) from None


def check_path(path: str | Path) -> Path:
    """The path of a readable table file, or a LabelError saying why not."""
    path = Path(path)
    if not path.exists():
        raise LabelError("file not found", file=path)
    if path.is_dir():
        raise LabelError("is a folder, not a label table", file=path)
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise LabelError(f"unsupported file type {path.suffix.lower()!r}; expected one of "
                         f"{', '.join(TABLE_SUFFIXES)}", file=path)
    return path


def read_table(path: str | Path, plan: Plan | None = None, minus_one_unknown: bool = False) -> RawTable:
    """Read a CSV / TSV / TXT, Parquet or ARFF table.

    `plan(names, arff_label_names)` maps the (stripped) column names to roles (default: every column "text").
    """
    path = check_path(path)
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return _read_parquet(path, plan, minus_one_unknown)
    if suffix == ".arff":
        return _read_arff(path, plan, minus_one_unknown)
    return _read_text(path, plan, minus_one_unknown)


def _arrow_table(frame: pd.DataFrame, names: list[str]) -> pa.Table:
    columns = {}
    for position, name in enumerate(names):
        series = frame.iloc[:, position]
        try:
            columns[name] = pa.array(series, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed Python objects: their text
            columns[name] = pa.array(series.map(lambda v: None if v is None or v != v else str(v)),
                                     type=pa.string(), from_pandas=True)
    return pa.table(columns) if columns else pa.table({})


def table_from_frame(frame: pd.DataFrame, source: str | Path = "<frame>", plan: Plan | None = None,
                     minus_one_unknown: bool = False) -> RawTable:
    """A DataFrame as a RawTable (columns keep their types; an object column arrow cannot type is read as text).

    >>> raw = table_from_frame(pd.DataFrame({"a": [1, 0], "b": ["x", None]}), plan=lambda n, _: {"a": "labels"})
    >>> raw.labels, raw.label_column("a").tolist(), raw.cell("b", 1)
    (['a'], [1, 0], None)
    """
    names = check_names([str(c) for c in frame.columns], source)
    roles = dict(plan(names, None)) if plan else {}
    table = _arrow_table(frame, names)
    raw = _finish(table, source, roles, minus_one_unknown, lambda row: row + 2)
    raw.n_rows = len(frame)
    return raw
