"""Markdown reports with plots: one per run, one per comparison."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from multitask.files import atomic_write_bytes
from multitask.runs import Run

if TYPE_CHECKING:
    from matplotlib.figure import Figure

METRIC_KEYS = ("average_precision", "roc_auc", "f1", "accuracy")
SHORT = {"average_precision": "AP", "roc_auc": "AUC", "f1": "F1", "accuracy": "acc"}


def fmt(value: Any, digits: int = 3) -> str:
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


def plot_learning_curves(history: list[dict[str, float]], path: Path) -> Path | None:
    if not history:
        return None
    epochs = [h["epoch"] + 1 for h in history]
    fig = new_figure(figsize=(9, 3.2))
    left, right = fig.subplots(1, 2)
    for key in ("train_loss", "val_loss"):
        values = [h.get(key, math.nan) for h in history]
        left.plot(epochs, values, marker="o", label=key)
    left.set_xlabel("epoch")
    left.set_ylabel("loss (J)")
    left.legend()
    right.plot(epochs, [h.get("val_map", math.nan) for h in history], marker="o", color="tab:green")
    right.set_xlabel("epoch")
    right.set_ylabel("validation mean AP")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_task_bars(series: dict[str, list[float]], tasks: Sequence[str], path: Path, ylabel: str) -> Path:
    """Grouped bars: one group per task, one bar per series (e.g. shared vs separate)."""
    fig = new_figure(figsize=(max(4.0, 0.9 * len(tasks) * max(len(series), 1) * 0.6 + 2), 3.4))
    ax = fig.subplots()
    width = 0.8 / max(len(series), 1)
    for k, (name, values) in enumerate(series.items()):
        ax.bar([i + k * width for i in range(len(tasks))], [0 if v is None else v for v in values], width,
               label=name)
    ax.set_xticks([i + width * (len(series) - 1) / 2 for i in range(len(tasks))])
    ax.set_xticklabels(tasks, rotation=30 if len(tasks) > 4 else 0, ha="right" if len(tasks) > 4 else "center")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(ylabel)
    if len(series) > 1:
        ax.legend(loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path)


def task_rows(split_metrics: dict[str, Any]) -> list[list[Any]]:
    rows = [[m["task"], m["n_known"], m["n_positive"]] + [m[k] for k in METRIC_KEYS] + [m["threshold"]]
            for m in split_metrics["tasks"]]
    macro = split_metrics["macro"]
    rows.append(["**macro mean**", "", ""] + [macro[k] for k in METRIC_KEYS] + [""])
    return rows


def write_run_report(run: Run) -> Path:
    """runs/<name>/report.md with learning curves and per-task test metrics."""
    m, cfg = run.metrics, run.config
    plots = run.path / "plots"
    lines = [f"# Run `{run.path.name}`", ""]
    lines += [
        f"- data: `{cfg.data.path}` ({m.get('n_train', '?')} training examples, {len(run.tasks)} tasks)",
        f"- model: trunk `{cfg.model.trunk}`" + (f" from `{cfg.model.weights}`" if cfg.model.weights else "")
        + f", sharing `{cfg.model.sharing}`, {m.get('parameters', 0):,} parameters",
        f"- training: {m.get('epochs', '?')} epochs (best: {m.get('best_epoch', '?')}), "
        f"{fmt(m.get('train_seconds'), 1)} s, weighting `{cfg.train.weighting}`, on {m.get('machine', '?')}",
        f"- inference: {fmt(1000 * m.get('inference_seconds_per_example', math.nan), 3)} ms per example",
        "",
    ]
    header = ["task", "known", "positives", "AP", "ROC-AUC", "F1", "accuracy", "threshold"]
    for split in ("test", "val"):
        if split in m:
            lines += [f"## {split.capitalize()} metrics (known labels only; thresholds chosen on val)", "",
                      markdown_table(header, task_rows(m[split])), ""]
    curves = plot_learning_curves(m.get("history", []), plots / "learning_curves.png")
    if curves:
        lines += ["## Learning curves", "", "![learning curves](plots/learning_curves.png)", ""]
    split = "test" if "test" in m else "val" if "val" in m else None
    if split:
        values = {"AP": [t["average_precision"] for t in m[split]["tasks"]]}
        plot_task_bars(values, list(run.tasks), plots / "task_ap.png", f"{split} average precision")
        lines += ["## Per-task average precision", "", "![per-task AP](plots/task_ap.png)", ""]
    lines += ["Rerun: `multitask train --config config.yaml`", ""]
    path = run.path / "report.md"
    path.write_text("\n".join(lines))
    return path


def write_comparison_report(comparison: Any, out: Path) -> Path:
    """out/report.md: per-task metrics of every approach, differences, cost, and a bar chart."""
    names = comparison.approaches
    seeds = f" Mean ± std over {comparison.n_seeds} seeds." if comparison.n_seeds > 1 else ""
    lines = [f"# Comparison: {', '.join(names)}", "",
             f"Test metrics on known labels; thresholds chosen on the validation split of each run.{seeds}",
             "Δ is the difference from the first approach; for AP with a 95 % bootstrap interval over test examples"
             + (" and seeds" if comparison.n_seeds > 1 else "") + " (n.s.: the interval contains 0).", ""]
    if comparison.groups:
        lines += ["Groups: " + "; ".join("{" + ", ".join(g) + "}" for g in comparison.groups), ""]
    for key, short in (("average_precision", "AP"), ("roc_auc", "AUC"), ("f1", "F1")):
        lines += [f"## {short} per task", "",
                  markdown_table(comparison.task_header(short, with_ci=key == "average_precision"),
                                 comparison.task_rows(key)), ""]
    lines += ["## Cost", "", markdown_table(["approach", "parameters", "training time (s)",
                                             "inference (ms / example, all tasks)"], comparison.cost_rows()), ""]
    series = {n: [comparison.mean(n, t) for t in comparison.tasks] for n in names}
    plot_task_bars(series, list(comparison.tasks), out / "plots" / "compare_ap.png", "test average precision")
    lines += ["## Average precision per task", "", "![AP per approach](plots/compare_ap.png)", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
