"""The reports' figures: each titled with what it shows and whose it is, axes labelled, legends outside the data.

Curves come from scikit-learn (``precision_recall_curve``, ``roc_curve``, ``calibration_curve``) on the known
labels of one split; the point of each chosen decision threshold is marked. Every function returns a matplotlib
Figure on its own Agg canvas (:func:`multitask.report.new_figure`, no pyplot), or None when there is nothing to
draw; :func:`png` turns it into PNG bytes.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> y = (rng.random(200) < 0.4).astype(int)
>>> p = np.clip(0.4 * y + 0.6 * rng.random(200), 0, 1)
>>> figure = curve_panel("pr", "car", [Scores("", y, p, 0.5)], "demo: precision–recall (test)")
>>> png(figure)[:4]
b'\\x89PNG'
>>> curve_panel("roc", "car", [Scores("", np.ones(5), np.ones(5), 0.5)], "one class") is None
True
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from multitask.report import new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MAX_PANELS = 24
"""At most this many tasks get precision–recall and ROC plots (the first in table order); the tables hold all."""

MAX_CALIBRATION_LINES = 8
"""Reliability diagrams draw one line per task up to this many tasks, otherwise only all tasks pooled."""

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
           "#bcbd22")
MARKERS = ("o", "s", "D", "^", "v", "P", "X", "h")
DPI = 110


@dataclass
class Scores:
    """Known 0/1 labels and predicted probabilities of one task (one series: an approach), with its threshold."""

    label: str
    y: np.ndarray
    p: np.ndarray
    threshold: float | None = None

    @property
    def both_classes(self) -> bool:
        return len(self.y) > 0 and 0 < int(np.sum(self.y)) < len(self.y)


def png(figure: Figure, dpi: int = DPI) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _colour(k: int) -> str:
    return COLOURS[k % len(COLOURS)]


def _figure(width: float, height: float) -> Figure:
    return new_figure(figsize=(width, height), layout="constrained")


# ------------------------------------------------------------------------------------------------ training


LEARNING_METRICS = {"loss": ("loss J (masked logistic)", (("train_loss", "training loss"),
                                                         ("val_loss", "validation loss"))),
                    "val_map": ("validation mean AP", (("val_map", "validation mean AP"),))}


def learning_curves(history: Sequence[dict[str, float]], title: str, metrics: Sequence[str] = ("loss",),
                    best_epoch: int | None = None) -> Figure | None:
    """One panel per metric of LEARNING_METRICS ("loss": training and validation loss; "val_map") against the
    epoch, counted from 1; the kept (best) epoch marked. None without history."""
    if not history:
        return None
    epochs = [int(h["epoch"]) + 1 for h in history]
    fig = _figure(4.8 * len(metrics), 3.9)
    for axis, metric in zip(np.atleast_1d(fig.subplots(1, len(metrics))), metrics, strict=True):
        ylabel, keys = LEARNING_METRICS[metric]
        for k, (key, name) in enumerate(keys):
            values = [h.get(key, math.nan) for h in history]
            if np.isfinite(values).any():
                colour = _colour(2) if key == "val_map" else _colour(k)
                axis.plot(epochs, values, marker=MARKERS[k], color=colour, label=name)
        if best_epoch:
            axis.axvline(best_epoch, color="0.4", linestyle=":",
                         label="kept (best) epoch" if axis is fig.axes[-1] else None)
        axis.set(xlabel="epoch", ylabel=ylabel)
        axis.xaxis.get_major_locator().set_params(integer=True)
        axis.grid(alpha=0.3)
    fig.suptitle(title)
    fig.legend(loc="outside lower center", ncols=4, frameon=False, fontsize=9)
    return fig


def task_metrics(tasks: Sequence[dict[str, Any]], title: str) -> Figure | None:
    """AP, ROC-AUC and F1 of every task as dots on one scale (None for a single task: its table says it)."""
    if len(tasks) < 2:
        return None
    names = [t["task"] for t in tasks]
    fig = _figure(5.2, 1.5 + 0.4 * len(names))
    axis = fig.subplots()
    rows = np.arange(len(names))
    for k, (key, name) in enumerate((("average_precision", "AP"), ("roc_auc", "ROC-AUC"),
                                     ("f1", "F1 at the chosen threshold"))):
        values = [math.nan if t.get(key) is None else t[key] for t in tasks]
        axis.scatter(values, rows + 0.18 * (k - 1), marker=MARKERS[k], color=_colour(k), label=name, zorder=3, s=36)
    axis.set_yticks(rows, names)
    axis.invert_yaxis()
    axis.set(xlim=(-0.02, 1.02), xlabel="score (known labels only)", ylabel="task")
    axis.grid(axis="x", alpha=0.3)
    fig.suptitle(title)
    fig.legend(loc="outside lower center", ncols=3, frameon=False, fontsize=9)
    return fig


# ------------------------------------------------------------------------------------------------ curves


def _threshold_point(kind: str, s: Scores) -> tuple[float, float] | None:
    """(x, y) of the chosen threshold on the curve: (recall, precision) or (false-positive rate, recall)."""
    from sklearn.metrics import confusion_matrix, precision_score, recall_score

    if s.threshold is None:
        return None
    decision = (s.p >= s.threshold).astype(int)
    recall = float(recall_score(s.y, decision, zero_division=0))
    if kind == "pr":
        return recall, float(precision_score(s.y, decision, zero_division=1))
    tn, fp, _, _ = confusion_matrix(s.y, decision, labels=[0, 1]).ravel()
    return float(fp / (fp + tn)), recall


def _draw_curve(axis: Axes, kind: str, series: Sequence[Scores]) -> bool:
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

    drawn = False
    for k, s in enumerate(series):
        if not s.both_classes:
            continue
        prefix = f"{s.label}: " if s.label else ""
        if kind == "pr":
            precision, recall, _ = precision_recall_curve(s.y, s.p)
            x, y, score = recall, precision, f"AP {average_precision_score(s.y, s.p):.3f}"
            axis.plot(x, y, drawstyle="steps-post", color=_colour(k), label=prefix + score)
        else:
            fpr, tpr, _ = roc_curve(s.y, s.p)
            x, y, score = fpr, tpr, f"AUC {auc(fpr, tpr):.3f}"
            axis.plot(x, y, color=_colour(k), label=prefix + score)
        point = _threshold_point(kind, s)
        if point is not None:
            axis.plot(*point, marker=MARKERS[k % len(MARKERS)], markersize=8, color=_colour(k),
                      markeredgecolor="black", linestyle="none", label=f"{prefix}threshold {s.threshold:.2f}")
        drawn = True
    if not drawn:
        return False
    if kind == "pr":
        prevalence = float(np.mean(series[0].y))
        axis.axhline(prevalence, color="0.5", linestyle="--", linewidth=1,
                     label=f"chance (prevalence {prevalence:.2f})")
        axis.set(xlabel="recall", ylabel="precision")
    else:
        axis.plot([0, 1], [0, 1], color="0.5", linestyle="--", linewidth=1, label="chance")
        axis.set(xlabel="false-positive rate", ylabel="true-positive rate (recall)")
    axis.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.04))
    axis.grid(alpha=0.3)
    return True


def curve_panel(kind: str, task: str, series: Sequence[Scores], title: str) -> Figure | None:
    """Precision–recall (`kind` "pr") or ROC ("roc") curves of one task, one colour per series (approach), the
    chosen thresholds marked, the legend below. None when no series has both classes."""
    if not any(s.both_classes for s in series):
        return None
    # A fixed layout (no layout engine: these are drawn for every task, and constrained layout doubles the time).
    legend = 0.19 * (2 * len(series) + 1) + 0.1
    height = 3.9 + legend
    fig = new_figure(figsize=(3.9, height))
    axis = fig.subplots()
    fig.subplots_adjust(left=0.17, right=0.96, top=1 - 0.62 / height, bottom=(legend + 0.55) / height)
    _draw_curve(axis, kind, series)
    axis.set_title(task, fontsize=10)
    fig.suptitle(title, fontsize=10, y=1 - 0.06 / height, va="top")
    fig.legend(loc="lower center", frameon=False, fontsize=8.5, bbox_to_anchor=(0.5, 0.02 / height))
    return fig


def calibration(series: Sequence[Scores], title: str, n_bins: int = 10) -> Figure | None:
    """Reliability diagram (fraction of positives against mean predicted probability, ``calibration_curve``
    with `n_bins` equal-width bins) above the histogram of predicted probabilities; one line per series."""
    from sklearn.calibration import calibration_curve

    series = [s for s in series if len(s.y)]
    if not series:
        return None
    fig = _figure(5.6, 6.4 + 0.2 * math.ceil(len(series) / 2))
    reliability, counts = fig.subplots(2, 1, height_ratios=(3, 1.2))
    reliability.plot([0, 1], [0, 1], color="0.5", linestyle="--", linewidth=1, label="perfectly calibrated")
    bins = np.linspace(0, 1, n_bins + 1)
    for k, s in enumerate(series):
        fraction, predicted = calibration_curve(s.y, s.p, n_bins=n_bins, strategy="uniform")
        pooled = s.label.startswith("all tasks")
        colour, width = ("black", 2.2) if pooled else (_colour(k), 1.5)
        reliability.plot(predicted, fraction, marker=MARKERS[k % len(MARKERS)], color=colour, linewidth=width,
                         label=s.label)
        counts.hist(s.p, bins=bins, histtype="step", color=colour, linewidth=width)
    reliability.set(xlabel="mean predicted probability in the bin", ylabel="fraction of positives", xlim=(0, 1),
                    ylim=(-0.02, 1.02), title="reliability")
    counts.set(xlabel="predicted probability", ylabel="labels", xlim=(0, 1), yscale="log", title="predictions per bin")
    for axis in (reliability, counts):
        axis.grid(alpha=0.3)
    fig.suptitle(title)
    fig.legend(loc="outside lower center", ncols=2, frameon=False, fontsize=9)
    return fig


# ------------------------------------------------------------------------------------------------ comparisons


def _task_rows(axis: Axes, labels: Sequence[str]) -> None:
    axis.set_yticks(np.arange(len(labels)), labels)
    axis.set_ylabel("task")
    axis.invert_yaxis()
    axis.grid(axis="x", alpha=0.3)
    axis.axhline(len(labels) - 1.5, color="0.7", linewidth=0.8)  # the macro mean below the tasks


def _offsets(n: int) -> np.ndarray:
    return np.linspace(-0.18, 0.18, n) if n > 1 else np.zeros(1)


def comparison_ap(comparison: Any, title: str) -> Figure:
    """Every approach's test AP per task and the macro mean, one marker each."""
    names = comparison.approaches
    labels = [*comparison.tasks, "macro mean"]
    fig = _figure(5.6, 1.7 + 0.38 * len(labels))
    axis = fig.subplots()
    offsets = _offsets(len(names))
    for k, name in enumerate(names):
        values = [comparison.mean(name, t) for t in [*comparison.tasks, None]]
        axis.scatter(values, np.arange(len(labels)) + offsets[k], marker=MARKERS[k], color=_colour(k), s=40,
                     zorder=3, label=name)
    axis.set_xlabel("test average precision")
    _task_rows(axis, labels)
    fig.suptitle(title, fontsize=11)
    fig.legend(loc="outside lower center", ncols=min(len(names), 3), frameon=False, fontsize=9)
    return fig


def comparison_differences(comparison: Any, title: str) -> Figure | None:
    """Each approach's AP difference from the first, per task and macro, with its 95 % bootstrap interval;
    filled markers where the interval excludes 0 (`*`), open ones where it contains 0 (n.s.)."""
    names = comparison.approaches
    if len(names) < 2:
        return None
    labels = [*comparison.tasks, "macro mean"]
    fig = _figure(5.6, 1.9 + 0.38 * len(labels) + 0.2 * len(names))
    axis = fig.subplots()
    offsets = _offsets(len(names))
    seen = set()
    for k, name in enumerate(names[1:], start=1):
        for row, task in enumerate([*comparison.tasks, None]):
            d = comparison.difference(name, task)
            y = row + offsets[k]
            axis.plot([d.low, d.high], [y, y], color=_colour(k), linewidth=2)
            label = f"{name} − {names[0]}: " + ("* (interval excludes 0)" if d.significant
                                                else "n.s. (interval contains 0)")
            axis.plot(d.mean, y, marker=MARKERS[k], markersize=7, color=_colour(k), linestyle="none",
                      markerfacecolor=_colour(k) if d.significant else "white",
                      label=None if label in seen else label)
            seen.add(label)
    axis.axvline(0, color="0.4", linewidth=1)
    axis.set_xlabel(f"Δ AP against {names[0]}, 95 % bootstrap interval")
    _task_rows(axis, labels)
    fig.suptitle(title, fontsize=11)
    fig.legend(loc="outside lower center", ncols=1, frameon=False, fontsize=9)
    return fig
