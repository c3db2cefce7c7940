"""A report as data — sections of text, facts, tables and plots — written as Markdown and as one HTML file.

One document gives both files: ``report.md`` links the plots saved in ``plots/``; ``report.html`` embeds the
same PNG bytes as base64 and its CSS inline, so it opens anywhere with no network and reads on a phone (tables
scroll inside their box; the page itself never scrolls sideways).

>>> doc = Document("Run `demo`", [Section("Test metrics", [
...     Table(["task", "AP"], [["car", "0.912"]], footer=[["macro mean", "0.912"]], main=True)])])
>>> print(to_markdown(doc))
# Run `demo`
<BLANKLINE>
## Test metrics
<BLANKLINE>
| task | AP |
|---|---|
| car | 0.912 |
| **macro mean** | 0.912 |
<BLANKLINE>
>>> html = to_html(doc)
>>> '<table id="tasks"' in html and "<code>demo</code>" in html and "<script" not in html
True
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from multitask.files import atomic_write_bytes, atomic_write_text

LONG_CELL = 40
"""Table cells longer than this are sentences: they wrap, in a column of a readable width."""

_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


@dataclass
class Text:
    """A paragraph; `code` and **bold** are the only markup (escaped everywhere else)."""

    text: str


@dataclass
class Bullets:
    """A bulleted list of short texts (same markup as :class:`Text`)."""

    items: Sequence[str]


@dataclass
class Facts:
    """Label → value pairs (the settings of a run); values may use `code`."""

    items: Sequence[tuple[str, str]]


@dataclass
class Table:
    """A table of text cells. `footer`: summary rows (macro means) kept apart from the one-row-per-item body;
    `main`: the report's main table (``id="tasks"`` in HTML)."""

    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    footer: Sequence[Sequence[str]] = ()
    caption: str = ""
    main: bool = False

    def prose(self) -> bool:
        """Some cell is a sentence (longer than LONG_CELL characters): the table's cells wrap."""
        return any(len(c) > LONG_CELL for r in self.rows for c in r)

    def numeric_columns(self) -> set[int]:
        """Columns (after the first) whose every non-empty body cell is a number: right-aligned in HTML."""
        return {j for j in range(1, len(self.header))
                if any(r[j] for r in self.rows) and all(numeric(r[j]) for r in self.rows if r[j])}


@dataclass
class Plot:
    """A PNG figure: `name` is its file stem in ``plots/``; `title` its caption and alternative text."""

    name: str
    title: str
    png: bytes
    caption: str = ""

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass
class Gallery:
    """Plots side by side: as many per row as fit (one per row on a phone); in Markdown, one line of images."""

    plots: Sequence[Plot]
    min_width: int = 320
    """CSS pixels each plot gets at least (fewer per row when wider)."""


Block = Text | Bullets | Facts | Table | Plot | Gallery


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-") or "section"


@dataclass
class Document:
    title: str
    sections: list[Section]
    lead: list[Block] = field(default_factory=list)
    """Blocks above the first section (the recommendation of an advice)."""

    @property
    def plots(self) -> list[Plot]:
        """Every plot, in order (those of galleries included)."""
        blocks = [b for s in [Section("", self.lead), *self.sections] for b in s.blocks]
        return [p for b in blocks for p in (b.plots if isinstance(b, Gallery) else [b] if isinstance(b, Plot) else [])]


# ------------------------------------------------------------------------------------------------ Markdown


def _markdown_row(cells: Sequence[str], bold_first: bool = False) -> str:
    cells = [c.replace("|", "\\|") for c in cells]
    if bold_first and cells:
        cells[0] = f"**{cells[0]}**"
    return "| " + " | ".join(cells) + " |"


def _markdown_block(block: Block) -> list[str]:
    if isinstance(block, Text):
        return [block.text, ""]
    if isinstance(block, Bullets):
        return [f"- {item}" for item in block.items] + [""]
    if isinstance(block, Facts):
        return [f"- {label}: {value}" for label, value in block.items] + [""]
    if isinstance(block, Table):
        lines = [block.caption, ""] if block.caption else []
        lines += [_markdown_row(block.header), "|" + "|".join("---" for _ in block.header) + "|"]
        lines += [_markdown_row(r) for r in block.rows] + [_markdown_row(r, bold_first=True) for r in block.footer]
        return [*lines, ""]
    if isinstance(block, Gallery):
        return [" ".join(f"![{p.title}](plots/{p.name}.png)" for p in block.plots), ""]
    lines = [f"![{block.title}](plots/{block.name}.png)", ""]
    return lines + ([block.caption, ""] if block.caption else [])


def to_markdown(doc: Document) -> str:
    """The document as Markdown; plots are linked as ``plots/<name>.png`` (see :func:`write_report`)."""
    lines = [f"# {doc.title}", ""]
    for block in doc.lead:
        lines += _markdown_block(block)
    for section in doc.sections:
        lines += [f"## {section.title}", ""]
        for block in section.blocks:
            lines += _markdown_block(block)
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ HTML


def inline(text: str) -> str:
    """HTML of `text`: everything escaped, then its `code` and **bold** spans rendered (the template marks the
    result safe; nothing else is ever unescaped).

    >>> inline("a <b> & `x<y>` **now**")
    'a &lt;b&gt; &amp; <code>x&lt;y&gt;</code> <strong>now</strong>'
    """
    safe = html.escape(str(text), quote=True)
    safe = _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", safe)
    return _BOLD.sub(lambda m: f"<strong>{m.group(1)}</strong>", safe)


_NUMBER = re.compile(r"^[−+-]?(\d[\d,]*(\.\d+)?|\.\d+)( ± [\d.]+)?( %)?$|^[+-]?\d\.\d+ \[.*\].*$")


def numeric(cell: str) -> bool:
    """Right-aligned in HTML tables: numbers, "0.91 ± 0.02", "−0.13 [−0.21, −0.05]*", "–".

    >>> [numeric(c) for c in ("1,203", "0.912 ± 0.010", "+0.004 [-0.001, +0.012] (n.s.)", "car", "–")]
    [True, True, True, False, True]
    """
    return cell == "–" or bool(_NUMBER.match(cell.strip()))


@cache
def _environment():  # noqa: ANN202 (jinja2 is imported on first use)
    import jinja2

    environment = jinja2.Environment(loader=jinja2.PackageLoader("multitask.reporting", "templates"),
                                     autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                                     lstrip_blocks=True)
    environment.filters["inline"] = inline
    environment.tests["numeric"] = numeric
    environment.globals["kind"] = lambda block: type(block).__name__.lower()
    environment.globals["LONG"] = LONG_CELL
    return environment


def to_html(doc: Document) -> str:
    """The document as one self-contained HTML page (inline CSS, plots as data URIs, no script)."""
    environment = _environment()
    css = (Path(__file__).parent / "templates" / "report.css").read_text()
    return environment.get_template("page.html.j2").render(doc=doc, css=css)


def write_report(doc: Document, folder: Path, markdown: bool = True) -> Path:
    """folder/report.html, and (with `markdown`) folder/report.md with its plots in folder/plots/; returns
    the HTML file. Every file is written atomically."""
    if markdown:
        for plot in doc.plots:
            atomic_write_bytes(folder / "plots" / f"{plot.name}.png", plot.png)
        atomic_write_text(folder / "report.md", to_markdown(doc))
    path = folder / "report.html"
    atomic_write_text(path, to_html(doc))
    return path
