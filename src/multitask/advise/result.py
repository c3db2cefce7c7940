"""The advisor's result: every number behind the advice, as JSON, Markdown, plots and rich tables."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from multitask.advise.rules import TaskAdvice
from multitask.advise.stats import FAVOURABLE_LABELS, FAVOURABLE_TASKS
from multitask.files import atomic_write_text
from multitask.runs import jsonable

if TYPE_CHECKING:
    from rich.table import Table

ANNOTATE_MAX_TASKS = 15
"""Heat maps print their values when there are at most this many tasks."""

MATRIX_MAX_TASKS = 15
"""Markdown and terminal output show full matrices up to this many tasks, else the most related pairs."""


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _underfits(c: dict[str, Any]) -> str:
    if c.get("flagged"):
        return "yes"
    if c.get("skipped"):
        return "skipped: " + c["skipped"]
    if c.get("inconclusive") or c.get("held_inconclusive"):
        return "inconclusive"
    return "no"


def _pct(value: Any) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{100 * value:.0f} %"


@dataclass
class Advice:
    """Should these tasks share one network? The call, the reasons and every number behind them.

    Matrices are (T, T) in the order of `tasks`; NaN means "not measured" (None in `to_dict`).
    """

    tasks: list[str]
    recommendation: str
    reasons: list[str]
    task_advice: list[TaskAdvice]
    groups: list[list[str]]
    counts: list[dict[str, Any]]
    n_train: int
    correlation: np.ndarray
    co_labelled: np.ndarray
    both_positive: np.ndarray
    relatedness: np.ndarray
    relatedness_source: str
    gradient_cosine: np.ndarray | None = None
    tag_affinity: np.ndarray | None = None
    probe: dict[str, Any] = field(default_factory=dict)
    capacity: list[dict[str, Any]] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    source: str = ""
    representation_width: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    """trunk, image size, seed and command line the advice was computed with (for the reports)"""
    rule_call: str = ""
    """what the rules alone read from the measurements (an explanation; the call is the evidence's)"""
    confidence: str = "rules"
    """'clear' (the evidence's interval excludes 0), 'tie' (choose by cost) or 'rules' (no evidence measured)"""
    evidence: dict[str, Any] | None = None
    """the short comparison of the approaches (:meth:`multitask.advise.evidence.Evidence.to_dict`)"""
    recipe: dict[str, Any] = field(default_factory=dict)
    """the config keys that differ from their defaults ('data.images': …): the printed command carries them"""

    # ------------------------------------------------------------------------------------------ access
    def call(self, task: str) -> str:
        """The call for one task."""
        return self.task_advice[self.tasks.index(task)].call

    def groups_option(self) -> str:
        """The suggested groups of ≥ 2 tasks in the format of `multitask compare --groups` ('a,b;c,d')."""
        return ";".join(",".join(g) for g in self.groups if len(g) > 1)

    def compare_command(self) -> str:
        """A `multitask compare` command line that checks the advice by full training, at the same recipe: it
        carries every option that differs from its default (images, input column, trunk, epochs …).

        >>> a = Advice(tasks=["a"], recommendation="", reasons=[], task_advice=[], groups=[["a"]], counts=[],
        ...            n_train=0, correlation=None, co_labelled=None, both_positive=None, relatedness=None,
        ...            relatedness_source="", source="t.csv",
        ...            recipe={"data.images": "my images", "model.trunk_options": {"hidden": [16]}})
        >>> print(a.compare_command().replace(" --", "\\n--"))
        multitask compare
        --data t.csv
        --approaches shared,separate
        --data.images 'my images'
        --model.trunk_options '{"hidden": [16]}'
        """
        import shlex

        groups = self.groups_option()
        approaches = "shared,separate" + (",groups" if groups and len(self.groups) > 1 else "")
        words = ["multitask", "compare", "--data", str(self.source), "--approaches", approaches]
        if "groups" in approaches:
            words += ["--groups", groups]
        for key, value in self.recipe.items():
            if key == "data.path" or value is None:
                continue
            words += [f"--{key}", json.dumps(value) if isinstance(value, (dict, list, bool)) else str(value)]
        return shlex.join(words)

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready values (NaN → None)."""
        return jsonable({
            "source": self.source,
            "tasks": self.tasks,
            "recommendation": self.recommendation,
            "reasons": self.reasons,
            "groups": self.groups,
            "task_advice": [a.to_dict() for a in self.task_advice],
            "n_train": self.n_train,
            "counts": self.counts,
            "label_correlation": self.correlation,
            "co_labelled": self.co_labelled,
            "both_positive": self.both_positive,
            "relatedness": self.relatedness,
            "relatedness_source": self.relatedness_source,
            "gradient_cosine": self.gradient_cosine,
            "tag_affinity": self.tag_affinity,
            "probe": self.probe,
            "capacity": self.capacity,
            "thresholds": self.thresholds,
            "representation_width": self.representation_width,
            "settings": self.settings,
            "notes": self.notes,
            "compare_command": self.compare_command(),
            "rule_call": self.rule_call,
            "confidence": self.confidence,
            "evidence": self.evidence,
            "recipe": self.recipe,
            "seconds": self.seconds,
        })

    # ------------------------------------------------------------------------------------------ text
    def top_pairs(self, matrix: np.ndarray, k: int = 10) -> list[tuple[str, str, float]]:
        """The k most related pairs (largest values off the diagonal, i < j)."""
        t = len(self.tasks)
        pairs = [(self.tasks[i], self.tasks[j], float(matrix[i, j])) for i in range(t) for j in range(i + 1, t)
                 if np.isfinite(matrix[i, j])]
        return sorted(pairs, key=lambda p: -p[2])[:k]

    def _count_rows(self) -> list[list[Any]]:
        return [[c["task"], c["known"], c["positives"], f"{100 * c['unknown_fraction']:.0f} %", c["others_known"],
                 _fmt(c["ratio"], 1), ", ".join(c["flags"]), a.call + (f" ({a.source})" if a.source else "")]
                for c, a in zip(self.counts, self.task_advice, strict=True)]

    _COUNT_HEADER = ["task", "known (train)", "positives", "unknown", "others' labels", "ratio", "flags", "call"]

    def _matrix_lines(self, matrix: np.ndarray, title: str) -> list[str]:
        from multitask.report import markdown_table

        if len(self.tasks) <= MATRIX_MAX_TASKS:
            rows = [[task] + [_fmt(float(v)) for v in matrix[i]] for i, task in enumerate(self.tasks)]
            return [markdown_table([title] + list(self.tasks), rows), ""]
        rows = [[a, b, _fmt(v)] for a, b, v in self.top_pairs(matrix, 20)]
        return ["The 20 highest pairs:", "", markdown_table(["task", "task", title], rows), ""]

    def to_markdown(self, plots: bool = False) -> str:
        """The report: the call, per-task calls with reasons, then the numbers (plots linked when `plots`)."""
        from multitask.report import markdown_table

        lines = ["# Should these tasks share one network?", "", f"**Recommendation: {self.recommendation}**", ""]
        lines += [f"- {r}" for r in self.reasons] + [""]
        if self.evidence is not None:
            from multitask.advise.evidence import describe

            lines += ["## Evidence", "", "Held-out macro AP of each approach after a short training at the stated "
                      "recipe (`multitask.advise.evidence`); intervals are 95 % paired bootstraps over held-out "
                      "rows. A call is clear when the interval excludes 0 at the full budget and the half-budget "
                      "difference has the same sign; otherwise it is a tie.", ""]
            lines += [f"- {line}" for line in describe(self.evidence)] + [""]
        if any(len(g) > 1 for g in self.groups):
            lines += ["Suggested groups (related tasks): " + "; ".join("{" + ", ".join(g) + "}" for g in self.groups
                                                                      if len(g) > 1), ""]
        lines += ["## Per task", ""]
        for a in self.task_advice:
            lines.append(f"- **{a.task}**: {a.call}" + (f" from {a.source}" if a.source else "") + " — "
                         + "; ".join(a.reasons))
        lines += ["", "## Data (training split)", "",
                  markdown_table(self._COUNT_HEADER, self._count_rows()), "",
                  f"`ratio` = the other tasks' known labels together / the task's own. The lecture's favourable "
                  f"case is {FAVOURABLE_TASKS} tasks × {FAVOURABLE_LABELS:,} labels: every task's others have "
                  f"{FAVOURABLE_TASKS - 1}× its data. Flags: `little_help` (ratio < "
                  f"{self.thresholds.get('DATA_RATIO_LOW', 2):g}), `largest` (the most labels, ≥ "
                  f"{self.thresholds.get('LARGEST_FACTOR', 2):g}× the next task).", ""]
        lines += ["## Label correlation", "",
                  f"Phi coefficient (Pearson on 0/1) on the training rows where both tasks are known; – where fewer "
                  f"than {self.thresholds.get('MIN_COLABELLED', 10):g} rows are co-labelled.", ""]
        lines += self._matrix_lines(self.correlation, "phi")
        if plots:
            lines += ["![label correlation](plots/cooccurrence.png)", ""]
        lines += ["## Task relatedness", "", f"Source: {self.relatedness_source}.", ""]
        if self.probe:
            p = self.probe
            lines += [f"Probe: {p.get('steps')} steps ({_fmt(p.get('epochs'), 1)} epochs) of the shared network on "
                      f"{p.get('rows')} training rows, batch {p.get('batch_size')}"
                      + (f", images at {p['image_size']} px" if p.get("image_size") else "")
                      + f", {_fmt(p.get('seconds'), 1)} s on {p.get('device')}; the first {p.get('warmup_steps')} "
                      f"steps are warm-up.", ""]
        lines += self._matrix_lines(self.relatedness, "relatedness")
        if plots:
            lines += ["![task relatedness](plots/relatedness.png)", ""]
        if self.tag_affinity is not None:
            lines += ["Lookahead affinity (Fifty et al. 2021): row i = the task whose gradient step is taken, "
                      "column j = the task whose loss drops (relative drop, × 1000):", ""]
            lines += self._matrix_lines(1000 * self.tag_affinity, "Z × 1000")
        if self.capacity:
            rows = [[c["task"], c["labels"], _fmt(c["baseline_loss"], 3), _fmt(c["shared_loss"], 3),
                     _fmt(c["own_loss"], 3), _pct(c["shared_explained"]), _pct(c["own_explained"]),
                     _fmt(c["shared_ap"], 3), _fmt(c["own_ap"], 3), _fmt(c.get("held_shared_ap"), 3),
                     _fmt(c.get("held_own_ap"), 3), f"{c['own_steps']}/{c['planned_steps']}",
                     _underfits(c)] for c in self.capacity]
            lines += ["## Capacity check", "",
                      "Training fit on the probe rows, the shared network against each task's own network (same "
                      "trunk, same epochs): mean logistic loss per known label, the share of the baseline loss "
                      "(always predicting the base rate) it removes, and AP; then AP on held-out probe rows that "
                      "neither network trained on. Flagged when the shared network removes more than "
                      f"{self.thresholds.get('CAPACITY_GAP', 0.3):g} less than the own one and, on the held-out "
                      f"rows, its AP is lower by more than {self.thresholds.get('CAPACITY_HELD_AP_GAP', 0.1):g}.", "",
                      markdown_table(["task", "labels", "baseline", "loss shared", "loss own", "removed shared",
                                      "removed own", "AP shared", "AP own", "held-out AP shared",
                                      "held-out AP own", "own steps", "shared underfits"], rows),
                      ""]
        if self.notes:
            lines += ["## Notes", ""] + [f"- {n}" for n in self.notes] + [""]
        lines += ["## Rules and thresholds", "",
                  "See the docstring of `multitask.advise`. Thresholds: "
                  + ", ".join(f"`{k}` = {v:g}" for k, v in self.thresholds.items()) + ".", "",
                  f"Advice computed in {self.seconds:.1f} s. Confirm it by training in full: "
                  f"`{self.compare_command()}`", ""]
        return "\n".join(lines)

    # ------------------------------------------------------------------------------------------ files
    def write(self, out_dir: str | Path) -> Path:
        """out_dir/advice.json, report.md, report.html, plots/relatedness.png and plots/cooccurrence.png; returns
        out_dir."""
        out = Path(out_dir)
        (out / "plots").mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "advice.json", json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")
        name = Path(self.source).stem if self.source else out.name
        plot_heatmap(self.relatedness, self.tasks, out / "plots" / "relatedness.png",
                     f"{name}: task relatedness ({self.relatedness_source.split(' (')[0]})", vmin=-1, vmax=1)
        plot_heatmap(self.correlation, self.tasks, out / "plots" / "cooccurrence.png",
                     f"{name}: label correlation (phi, co-labelled rows)", vmin=-1, vmax=1)
        atomic_write_text(out / "report.md", self.to_markdown(plots=True))
        from multitask.reporting.advice import write_advice_html

        write_advice_html(self, out)  # report.html: the same numbers, plots embedded
        return out

    # ------------------------------------------------------------------------------------------ terminal
    def rich_tables(self) -> list[Table]:
        """Tables for the terminal: the recommendation, per-task data and calls, relatedness, capacity."""
        from rich.table import Table

        tables = []
        call = Table(title=f"Recommendation: {self.recommendation}", show_header=False, title_justify="left")
        call.add_column("reason", overflow="fold")
        for reason in self.reasons:
            call.add_row(reason)
        tables.append(call)
        if self.evidence is not None:
            from multitask.advise.evidence import describe

            evidence = Table(title="Evidence (held-out training rows)", show_header=False, title_justify="left")
            evidence.add_column("line", overflow="fold")
            for line in describe(self.evidence):
                evidence.add_row(line)
            tables.append(evidence)

        tasks = Table(title="Per task (training split)", title_justify="left")
        for name in self._COUNT_HEADER + ["why"]:
            tasks.add_column(name, justify="right" if name in ("known (train)", "positives", "unknown",
                                                               "others' labels", "ratio") else "left",
                             overflow="fold")
        for row, a in zip(self._count_rows(), self.task_advice, strict=True):
            tasks.add_row(*[str(v) for v in row], "; ".join(a.reasons))
        tables.append(tasks)

        title = f"Task relatedness ({self.relatedness_source.split(' (')[0]})"
        if len(self.tasks) <= MATRIX_MAX_TASKS:
            matrix = Table(title=title, title_justify="left")
            matrix.add_column("")
            for task in self.tasks:
                matrix.add_column(task, justify="right")
            for i, task in enumerate(self.tasks):
                matrix.add_row(task, *[_fmt(float(v)) for v in self.relatedness[i]])
        else:
            matrix = Table(title=title + ": most related pairs", title_justify="left")
            for name in ("task", "task", "relatedness"):
                matrix.add_column(name)
            for a, b, v in self.top_pairs(self.relatedness, 15):
                matrix.add_row(a, b, _fmt(v))
        tables.append(matrix)

        if self.capacity:
            capacity = Table(title="Capacity check (training loss, probe rows)", title_justify="left")
            for name in ("task", "labels", "loss shared", "loss own", "removed shared", "removed own", "AP shared",
                         "AP own", "underfits"):
                capacity.add_column(name, justify="left" if name in ("task", "underfits") else "right")
            for c in self.capacity:
                capacity.add_row(c["task"], str(c["labels"]), _fmt(c["shared_loss"], 3), _fmt(c["own_loss"], 3),
                                 _pct(c["shared_explained"]), _pct(c["own_explained"]), _fmt(c["shared_ap"], 3),
                                 _fmt(c["own_ap"], 3), _underfits(c))
            tables.append(capacity)
        return tables


def plot_heatmap(matrix: np.ndarray, tasks: Sequence[str], path: Path, title: str, vmin: float = -1,
                 vmax: float = 1) -> Path:
    """A task × task heat map (:func:`heatmap_figure`) saved as a PNG file."""
    from multitask.report import save_figure

    return save_figure(heatmap_figure(matrix, tasks, title, vmin, vmax), path)


def heatmap_figure(matrix: np.ndarray, tasks: Sequence[str], title: str, vmin: float = -1, vmax: float = 1) -> Any:
    """A task × task heat map (NaN grey), task names on both axes, values printed when T ≤ 15."""
    import matplotlib

    from multitask.report import new_figure

    t = len(tasks)
    size = min(max(3.5, 0.45 * t + 2.0), 16.0)
    fig = new_figure(figsize=(size + 1.0, size))
    ax = fig.subplots()
    values = np.ma.masked_invalid(np.asarray(matrix, dtype=float))
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="#dddddd")
    image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if t <= 60:
        fontsize = 9 if t <= 15 else 6
        ax.set_xticks(range(t))
        ax.set_yticks(range(t))
        ax.set_xticklabels(tasks, rotation=45 if t > 3 else 0, ha="right" if t > 3 else "center", fontsize=fontsize)
        ax.set_yticklabels(tasks, fontsize=fontsize)
    if t <= ANNOTATE_MAX_TASKS:
        for i in range(t):
            for j in range(t):
                v = matrix[i, j]
                if np.isfinite(v):
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                            color="white" if abs(v) > 0.6 * max(abs(vmin), abs(vmax)) else "black")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
