"""Reports of runs and comparisons: ``report.md`` with ``plots/`` and a self-contained ``report.html``.

What a report contains is in :mod:`multitask.reporting`; this module holds the small helpers every report
and the scripts share (number formatting, Markdown tables, figures on their own Agg canvas, never
``matplotlib.use`` or pyplot, so a notebook's backend is untouched) and the two entry points.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from multitask.files import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from multitask.runs import Run

METRIC_KEYS = ("average_precision", "roc_auc", "f1", "accuracy")
SHORT = {"average_precision": "AP", "roc_auc": "AUC", "f1": "F1", "accuracy": "acc"}


def fmt(value: Any, digits: int = 3) -> str:
    """A number for a table: `digits` decimals for floats, NaN and None as –.

    >>> fmt(0.91234), fmt(float("nan")), fmt(12)
    ('0.912', '–', '12')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]], cell: Callable[[Any], str] = fmt) -> str:
    """A markdown table; `cell` turns each value into text (default :func:`fmt`: 3 decimals, NaN as –).

    >>> print(markdown_table(["task", "AP"], [["car", 0.91234], ["bus", float("nan")]]))
    | task | AP |
    |---|---|
    | car | 0.912 |
    | bus | – |
    """
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def new_figure(**options: Any) -> Figure:
    """A matplotlib Figure on its own Agg canvas: no pyplot, so the caller's backend (a notebook's) is untouched.

    >>> fig = new_figure(figsize=(2, 1)); ax = fig.subplots(); _ = ax.plot([0, 1])
    >>> type(fig.canvas).__name__
    'FigureCanvasAgg'
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(**options)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path: Path, dpi: int = 100) -> Path:
    """Write a figure (format from the suffix, PNG by default) atomically; return the path."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format=path.suffix.lstrip(".") or "png", dpi=dpi)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def plot_learning_curves(history: list[dict[str, float]], path: Path, title: str = "learning curves") -> Path | None:
    """Loss and validation mean AP per epoch (:func:`multitask.reporting.plots.learning_curves`) as a PNG file."""
    from multitask.reporting.plots import learning_curves

    figure = learning_curves(history, title, ("loss", "val_map"))
    return None if figure is None else save_figure(figure, path)


def write_run_report(run: Run) -> Path:
    """runs/<name>/report.md (plots in plots/) and report.html; returns the HTML file."""
    from multitask.reporting.document import write_report
    from multitask.reporting.run import run_document

    return write_report(run_document(run), run.path)


def write_comparison_report(comparison: Any, out: Path) -> Path:
    """out/report.md (plots in plots/) and out/report.html, with out/config.yaml's settings; returns the HTML."""
    from multitask.config import load_config
    from multitask.reporting.comparison import comparison_document
    from multitask.reporting.document import write_report

    config = load_config(out / "config.yaml") if (out / "config.yaml").is_file() else None
    return write_report(comparison_document(comparison, config), out)
