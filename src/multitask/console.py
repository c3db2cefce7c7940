"""Printed result tables that survive any output: a wide terminal, an 80-column window, a pipe, a CI log.

One renderer for every table a command prints (compare, advise, evaluate, train, info, runs, methods, …) and
four formats (``--format``): ``table`` (text laid out for the width), ``csv``, ``json`` and ``markdown``.

The text layout never cuts a cell and never wraps a value one word per line. It tries, in order:

1. the whole table, headers wrapped over up to three lines if that is what makes it fit;
2. the same columns in several narrower tables, each repeating the key column (the task);
3. one block per row: the key on its own line, then ``column  value`` lines.

The width is the terminal's (``shutil.get_terminal_size``); output that is not a terminal (a pipe, a file, a
CI log) counts as 80 columns unless ``COLUMNS`` says otherwise.

>>> t = Table("ap", "Test AP", ["task", "AP shared", "AP separate"], [["car", 0.91234, 0.9], ["bus", None, 0.5]],
...           legend=["–: not defined (one class only)"])
>>> print(render(t, "table", width=80))
Test AP
task   AP shared   AP separate
car        0.912         0.900
bus            –         0.500
–: not defined (one class only)
>>> print(render(t, "table", width=25))  # headers wrapped
Test AP
            AP         AP
task    shared   separate
car      0.912      0.900
bus          –      0.500
–: not defined (one class
  only)
>>> print(render(t, "table", width=18))  # two narrower tables
Test AP
task   AP shared
car        0.912
bus            –
<BLANKLINE>
task   AP separate
car          0.900
bus          0.500
–: not defined
  (one class only)
>>> print(render(t, "csv"), end="")
task,AP shared,AP separate
car,0.91234,0.9
bus,,0.5
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

FORMATS = ("table", "csv", "json", "markdown")
GAP = "   "
MAX_HEADER_LINES = 3


@dataclass(frozen=True)
class Cell:
    """A value shown as `text` and given to csv / json as `value` (a number, or a mapping such as an interval's
    mean, low, high and significance: csv gives each key its own column ``<column> <key>``)."""

    text: str
    value: Any


def terminal_width() -> int:
    """The columns to lay text out for: ``COLUMNS``, else the terminal's width, else 80 (a pipe, a log)."""
    return max(shutil.get_terminal_size((80, 24)).columns, 20)


def text_of(value: Any) -> str:
    """How a cell is shown: 3 decimals for floats, – for a missing or undefined value.

    >>> text_of(0.12345), text_of(float("nan")), text_of(None), text_of(1203), text_of(Cell("1,000", 1000))
    ('0.123', '–', '–', '1203', '1,000')
    """
    if isinstance(value, Cell):
        return value.text
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def data_of(value: Any) -> Any:
    """The machine-readable value of a cell: raw numbers, None for missing or undefined values."""
    if isinstance(value, Cell):
        value = value.value
    if isinstance(value, dict):
        return {k: data_of(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return data_of(value.item())
    return value


@dataclass
class Table:
    """A printed table: `name` (its key in json / csv output), a title, column names, rows of values (str,
    numbers, None or :class:`Cell`), and the legend lines that explain its symbols.

    `fields=True`: a two-column list of ``name: value`` lines (a run's description, the reasons for a call),
    printed as such and given to json as one object.
    """

    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    legend: list[str] = field(default_factory=list)
    key_columns: int = 1
    fields: bool = False

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(f"table {self.name}: a row of {len(row)} cells for {len(self.columns)} columns")

    def texts(self) -> list[list[str]]:
        return [[text_of(v) for v in row] for row in self.rows]

    def to_dict(self) -> dict[str, Any]:
        body: Any
        if self.fields:
            body = {text_of(row[0]): data_of(row[1]) for row in self.rows}
            return {"name": self.name, "title": self.title, "fields": body, "legend": self.legend}
        body = [dict(zip(self.columns, (data_of(v) for v in row), strict=True)) for row in self.rows]
        return {"name": self.name, "title": self.title, "columns": self.columns, "rows": body,
                "legend": self.legend}


# ------------------------------------------------------------------------------------------------ text


def _wrap(text: str, width: int, indent: str = "") -> list[str]:
    """Word-wrapped lines; a word longer than the width stays whole (never cut)."""
    return textwrap.wrap(text, width=max(width, 1), subsequent_indent=indent, break_long_words=False,
                         break_on_hyphens=False) or [""]


def _header_width(header: str) -> int:
    """The narrowest width at which `header` wraps into at most MAX_HEADER_LINES lines."""
    longest = max((len(w) for w in header.split()), default=0)
    for width in range(max(longest, 1), len(header) + 1):
        if len(_wrap(header, width)) <= MAX_HEADER_LINES:
            return width
    return len(header)


def _aligned_left(table: Table, texts: list[list[str]]) -> list[bool]:
    """Left for the key columns and for text; numbers to the right."""
    left = []
    for j, _ in enumerate(table.columns):
        values = [row[j] for row in table.rows]
        numeric = all(isinstance(v, (int, float, Cell)) or v is None for v in values) and not all(
            isinstance(v, Cell) and not isinstance(v.value, (int, float, dict)) for v in values if v is not None)
        left.append(j < table.key_columns or not numeric)
    return left


def _grid(columns: list[str], texts: list[list[str]], left: list[bool], width: int) -> list[str] | None:
    """The rows as aligned text (columns three spaces apart, else two), headers wrapped when needed; None when
    it does not fit `width`."""
    cells = [max((len(r[j]) for r in texts), default=0) for j in range(len(columns))]
    full = [max(c, len(h)) for c, h in zip(cells, columns, strict=True)]
    narrow = [max(c, _header_width(h)) for c, h in zip(cells, columns, strict=True)]
    for gap in (GAP, GAP[:-1]):
        spacing = len(gap) * (len(columns) - 1)
        if sum(full) + spacing <= width:
            return _lines(columns, texts, left, full, gap)
    for gap in (GAP, GAP[:-1]):
        spacing = len(gap) * (len(columns) - 1)
        if sum(narrow) + spacing <= width:
            widths, spare = list(narrow), width - sum(narrow) - spacing
            for j in range(len(widths)):  # the room left goes back to the headers that wrap
                extra = min(spare, full[j] - widths[j])
                widths[j] += extra
                spare -= extra
            return _lines(columns, texts, left, widths, gap)
    return None


def _lines(columns: list[str], texts: list[list[str]], left: list[bool], widths: list[int], gap: str) -> list[str]:
    headers = [_wrap(h, w) for h, w in zip(columns, widths, strict=True)]
    height = max(len(h) for h in headers)
    lines = []
    for i in range(height):
        parts = []
        for j, h in enumerate(headers):
            text = h[i - (height - len(h))] if i >= height - len(h) else ""
            parts.append(text.ljust(widths[j]) if left[j] else text.rjust(widths[j]))
        lines.append(gap.join(parts).rstrip())
    for row in texts:
        lines.append(gap.join(t.ljust(w) if lf else t.rjust(w)
                              for t, w, lf in zip(row, widths, left, strict=True)).rstrip())
    return lines


def _split(table: Table, texts: list[list[str]], left: list[bool], width: int) -> list[str] | None:
    """The columns after the key columns packed into several tables that fit, each with the key columns."""
    k = table.key_columns
    groups: list[list[int]] = []
    for j in range(k, len(table.columns)):
        trial = [*groups[-1], j] if groups else [j]
        if groups and _grid(*_pick(table, texts, left, list(range(k)) + trial), width) is not None:
            groups[-1] = trial
        elif _grid(*_pick(table, texts, left, list(range(k)) + [j]), width) is not None:
            groups.append([j])
        else:
            return None
    lines: list[str] = []
    for group in groups:
        if lines:
            lines.append("")
        grid = _grid(*_pick(table, texts, left, list(range(k)) + group), width)
        assert grid is not None
        lines += grid
    return lines


def _pick(table: Table, texts: list[list[str]], left: list[bool],
          index: list[int]) -> tuple[list[str], list[list[str]], list[bool]]:
    return [table.columns[j] for j in index], [[r[j] for j in index] for r in texts], [left[j] for j in index]


def _blocks(table: Table, texts: list[list[str]], width: int) -> list[str]:
    """One block per row: its key columns on one line, then one `column  value` line per other column (the
    value under its column name when it does not fit beside it)."""
    k = table.key_columns
    names = table.columns[k:]
    label = max((len(n) for n in names if len(n) <= max(width // 2, 8)), default=0)
    lines = []
    for row in texts:
        lines += _wrap(" ".join(t for t in row[:k] if t), width)
        for name, value in zip(names, row[k:], strict=True):
            beside = f"  {name.ljust(label)}  {value}"
            if len(name) <= label and (len(beside) <= width or len(value) > width - 4):
                lines += _wrap(beside, width, " " * (label + 4))
            else:
                lines += _wrap(f"  {name}", width, "    ") + _wrap(f"    {value}", width, "    ")
    return lines


def _fields(table: Table, texts: list[list[str]], width: int) -> list[str]:
    """`name: value` lines, the value wrapped under itself; under the name, indented, when the names are long
    or a word of the value (a path) does not fit beside it."""
    label = max((len(r[0]) for r in texts), default=0) + 2
    lines = []
    for name, value in texts:
        longest = max((len(w) for w in value.split()), default=0)
        if label > width // 3 or label + longest > width:
            lines += _wrap(f"{name}:", width, "    ")
            lines += _wrap(f"    {value}", width, "    ") if value else []
        else:
            lines += _wrap(f"{(name + ':').ljust(label)}{value}", width, " " * label)
    return lines


def render_text(table: Table, width: int | None = None) -> str:
    """The table laid out for `width` columns (see the module docstring for the layouts tried)."""
    width = width or terminal_width()
    texts = table.texts()
    lines = _wrap(table.title, width) if table.title else []
    if table.fields:
        body = _fields(table, texts, width)
    else:
        left = _aligned_left(table, texts)
        body = _grid(table.columns, texts, left, width) or _split(table, texts, left, width) or \
            _blocks(table, texts, width)
    lines += body
    for note in table.legend:
        lines += _wrap(note, width, "  ")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ other formats


def _escape_markdown(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(table: Table) -> str:
    """A Markdown section: the title in bold, a pipe table (or a list for fields), the legend."""
    from multitask.report import markdown_table

    lines = [f"**{table.title}**", ""] if table.title else []
    texts = [[_escape_markdown(t) for t in row] for row in table.texts()]
    if table.fields:
        lines += [f"- {name}: {value}" for name, value in texts]
    else:
        lines.append(markdown_table([_escape_markdown(c) for c in table.columns], texts, cell=str))
    if table.legend:
        lines += [""] + table.legend
    return "\n".join(lines) + "\n"


def _csv_header_and_rows(table: Table) -> tuple[list[str], list[list[Any]]]:
    """Mapping cells (intervals) spread over one column per key."""
    header: list[str] = []
    expand: list[list[str] | None] = []
    for j, column in enumerate(table.columns):
        sample = next((data_of(r[j]) for r in table.rows if isinstance(data_of(r[j]), dict)), None)
        keys = list(sample) if isinstance(sample, dict) else None
        expand.append(keys)
        header += [f"{column} {key}" for key in keys] if keys else [column]
    rows = []
    for row in table.rows:
        out: list[Any] = []
        for value, keys in zip(row, expand, strict=True):
            data = data_of(value)
            out += [data.get(key) if isinstance(data, dict) else None for key in keys] if keys else [data]
        rows.append(out)
    return header, rows


def render_csv(table: Table) -> str:
    """The table as CSV (header row, raw values; empty for missing values)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header, rows = _csv_header_and_rows(table) if not table.fields else (["field", "value"], table.rows)
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in (data_of(v) for v in row)])
    return buffer.getvalue()


def render(table: Table, fmt: str = "table", width: int | None = None) -> str:
    """One table in one of FORMATS (json: the table's object)."""
    if fmt == "table":
        return render_text(table, width)
    if fmt == "markdown":
        return render_markdown(table)
    if fmt == "csv":
        return render_csv(table)
    if fmt == "json":
        return json.dumps(table.to_dict(), indent=2, ensure_ascii=False, allow_nan=False)
    raise ValueError(f"unknown format {fmt!r}; choose from {list(FORMATS)}")


# ------------------------------------------------------------------------------------------------- output


class Output:
    """What one command prints: its tables and messages, in one format.

    ``table`` and ``markdown`` print both as they come. ``csv`` prints the tables on stdout (several tables:
    each headed by a ``# name: title`` line and followed by an empty line) and the messages on stderr.
    ``json`` prints one object at the end, ``{"tables": [...], "messages": [...]}``, and nothing else on stdout.

    >>> out = Output("json", stream=sys.stdout)
    >>> out.table(Table("t", "T", ["task", "AP"], [["car", 0.5]]))
    >>> out.message("saved in runs/x")
    >>> out.close()  # doctest: +NORMALIZE_WHITESPACE
    {"tables": [{"name": "t", "title": "T", "columns": ["task", "AP"], "rows": [{"task": "car", "AP": 0.5}],
      "legend": []}], "messages": ["saved in runs/x"]}
    """

    def __init__(self, fmt: str = "table", stream: TextIO | None = None, errors: TextIO | None = None,
                 width: int | None = None) -> None:
        if fmt not in FORMATS:
            from multitask.errors import ConfigError

            raise ConfigError(f"--format {fmt!r}: choose from {', '.join(FORMATS)}")
        self.fmt, self.width = fmt, width
        self._stream, self._errors = stream, errors
        self._tables: list[Table] = []
        self._messages: list[str] = []
        self._csv_blocks = 0

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stdout

    @property
    def errors(self) -> TextIO:
        return self._errors or sys.stderr

    def table(self, table: Table) -> None:
        """Print a table now (json and csv: at close, to know whether there are several)."""
        if self.fmt in ("json", "csv"):
            self._tables.append(table)
        else:
            text = render(table, self.fmt, self.width)
            self.stream.write(text + ("\n" if self.fmt == "table" else "") + ("\n" if not text.endswith("\n") else ""))
            self.stream.flush()

    def tables(self, tables: Sequence[Table]) -> None:
        for table in tables:
            self.table(table)

    def message(self, text: str) -> None:
        """A line for a person ("Run saved in …"): stdout for table / markdown, stderr for csv, json's list."""
        if self.fmt == "json":
            self._messages.append(text)
        elif self.fmt == "csv":
            self.errors.write(text + "\n")
        else:
            self.stream.write("\n".join(_wrap(text, self.width or terminal_width(), "  ")) + "\n")
            self.stream.flush()

    def command(self, text: str) -> None:
        """A command line to copy: never wrapped (a wrapped command does not run as printed); else as `message`."""
        if self.fmt in ("json", "csv"):
            self.message(text)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def close(self) -> None:
        """Print what waits for the end (json's object, csv's tables)."""
        if self.fmt == "json":
            json.dump({"tables": [t.to_dict() for t in self._tables], "messages": self._messages}, self.stream,
                      ensure_ascii=False, allow_nan=False)
            self.stream.write("\n")
        elif self.fmt == "csv":
            several = len(self._tables) > 1
            for i, table in enumerate(self._tables):
                if several:
                    self.stream.write(("\n" if i else "") + f"# {table.name}: {table.title}\n")
                self.stream.write(render_csv(table))
        self._tables.clear()
        self.stream.flush()


def split_csv(text: str) -> dict[str, list[dict[str, str]]]:
    """Read the output of ``--format csv`` back: each table's rows as dicts, by table name (one table: "").

    >>> split_csv("# a: A\\nx,y\\n1,2\\n\\n# b: B\\nz\\n3\\n")
    {'a': [{'x': '1', 'y': '2'}], 'b': [{'z': '3'}]}
    """
    tables: dict[str, list[dict[str, str]]] = {}
    for block in text.strip("\n").split("\n\n"):
        lines = block.split("\n")
        name = ""
        if lines[0].startswith("# "):
            name = lines[0][2:].split(":", 1)[0]
            lines = lines[1:]
        tables[name] = list(csv.DictReader(io.StringIO("\n".join(lines) + "\n")))
    return tables
