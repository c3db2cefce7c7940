"""The tables the commands print, built once from the result objects (metrics, a comparison, advice, the run
list, the method and trunk lists) and rendered by :mod:`multitask.console` in any format.

Every symbol a table prints is explained in its legend.

>>> metrics = {"tasks": [{"task": "car", "n_known": 10, "n_positive": 4, "average_precision": 0.9,
...                       "roc_auc": 0.8, "f1": 0.7, "accuracy": 0.75, "threshold": 0.4}],
...            "macro": {"average_precision": 0.9, "roc_auc": 0.8, "f1": 0.7, "accuracy": 0.75}}
>>> from multitask.console import render
>>> print(render(metrics_table(metrics, "test metrics"), width=80))
test metrics
task         known   positives      AP   ROC-AUC      F1   accuracy   threshold
car             10           4   0.900     0.800   0.700      0.750       0.400
macro mean                       0.900     0.800   0.700      0.750
–: undefined (the known labels have one class only). macro mean: the mean over
  tasks. F1, accuracy: at the threshold, chosen per task on the validation split
  (maximum F1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from multitask.console import Cell, Table

if TYPE_CHECKING:
    from multitask.advise.result import Advice
    from multitask.bootstrap import Difference
    from multitask.compare import Comparison
    from multitask.runs import Run, RunSummary

UNDEFINED = "–: undefined (the known labels have one class only)."
METRIC_KEYS = (("average_precision", "AP"), ("roc_auc", "ROC-AUC"), ("f1", "F1"))


def _number(value: Any, digits: int = 3, suffix: str = "") -> Cell:
    missing = value is None or (isinstance(value, float) and not math.isfinite(value))
    return Cell("–" if missing else f"{value:.{digits}f}{suffix}", None if missing else value)


def metrics_table(split_metrics: dict[str, Any], title: str, name: str = "metrics") -> Table:
    """Per-task metrics and their macro means (known labels only), with the thresholds used."""
    rows: list[list[Any]] = [[m["task"], m["n_known"], m["n_positive"], m["average_precision"], m["roc_auc"], m["f1"],
                              m["accuracy"], m["threshold"]] for m in split_metrics["tasks"]]
    macro = split_metrics["macro"]
    empty = Cell("", None)
    rows.append(["macro mean", empty, empty, macro["average_precision"], macro["roc_auc"], macro["f1"],
                 macro["accuracy"], empty])
    return Table(name, title, ["task", "known", "positives", "AP", "ROC-AUC", "F1", "accuracy", "threshold"], rows,
                 legend=[f"{UNDEFINED} macro mean: the mean over tasks. F1, accuracy: at the threshold, chosen per "
                         "task on the validation split (maximum F1)."])


def run_tables(metrics: dict[str, Any]) -> list[Table]:
    """What `train` and `transfer` print: validation and test metrics."""
    return [metrics_table(metrics[split], f"{split} metrics (thresholds chosen on val)", split)
            for split in ("val", "test") if split in metrics]


# ---------------------------------------------------------------------------------------------- compare


def _difference(d: Difference) -> Cell:
    return Cell(str(d), {"mean": d.mean, "low": d.low, "high": d.high, "significant": d.significant})


def comparison_legend(comparison: Comparison) -> list[str]:
    """What the symbols of the comparison tables mean."""
    seeds = " and seeds" if comparison.n_seeds > 1 else ""
    lines = [f"Δ: the approach's value minus the first approach's ({comparison.approaches[0]}). For AP, "
             f"[low, high]: its 95 % bootstrap interval over test examples{seeds}; *: significant (the interval "
             "excludes 0); (n.s.): not significant (the interval contains 0).",
             f"train labels: known labels of the task in the training split. {UNDEFINED}"]
    if comparison.n_seeds > 1:
        lines.append(f"a ± b: mean ± standard deviation over {comparison.n_seeds} seeds.")
    return lines


def comparison_tables(comparison: Comparison) -> list[Table]:
    """Per metric (AP with intervals, ROC-AUC, F1) one table of tasks × approaches, then the cost table."""
    seeds = f", mean ± std over {comparison.n_seeds} seeds" if comparison.n_seeds > 1 else ""
    base = comparison.approaches[0]
    legend = comparison_legend(comparison)
    tables = []
    for key, short in METRIC_KEYS:
        header = comparison.task_header(short, with_ci=key == "average_precision")
        rows = []
        for task in [*comparison.tasks, None]:
            known = comparison.train_known.get(task) if task else None
            row: list[Any] = [task or "macro mean", Cell("", None) if task is None else known]
            for approach in comparison.approaches:
                values = comparison.values(approach, task, key)
                mean = comparison.mean(approach, task, key)
                value = ({"mean": mean, "std": float(np.nanstd(values))} if comparison.n_seeds > 1
                         else (None if not math.isfinite(mean) else mean))
                row.append(Cell(comparison.cell(approach, task, key), value))
            for approach in comparison.approaches[1:]:
                if key == "average_precision":
                    row.append(_difference(comparison.difference(approach, task)))
                else:
                    delta = comparison.mean(approach, task, key) - comparison.mean(base, task, key)
                    row.append(Cell(f"{delta:+.3f}", delta) if math.isfinite(delta) else _number(None))
            rows.append(row)
        tables.append(Table(key, f"Test {short} per task (known labels only{seeds})", header, rows,
                            legend=legend if key == "average_precision" else ["Δ, –: as above."]))
    cost_rows = [[name, Cell(f"{params:,}", params), _number(seconds, 1), _number(ms, 3)]
                 for name, params, seconds, ms in comparison.cost_rows()]
    tables.append(Table("cost", "Cost", ["approach", "parameters", "training time (s)",
                                         "inference ms / example (all tasks)"], cost_rows,
                        legend=["parameters and times: all the approach's networks together"
                                + (f"; times: mean over {comparison.n_seeds} seeds" if comparison.n_seeds > 1
                                   else "") + "."]))
    return tables


# ----------------------------------------------------------------------------------------------- advise


def advice_tables(advice: Advice) -> list[Table]:
    """The recommendation and its reasons, per-task data and calls, each call's reasons, relatedness,
    capacity."""
    from multitask.advise.result import MATRIX_MAX_TASKS, _underfits

    th = advice.thresholds
    tables = [Table("recommendation", f"Recommendation: {advice.recommendation}",
                    ["", "reason"], [[f"reason {i}", r] for i, r in enumerate(advice.reasons, 1)], fields=True)]
    rows = []
    for c, a in zip(advice.counts, advice.task_advice, strict=True):
        rows.append([c["task"], c["known"], c["positives"], _number(100 * c["unknown_fraction"], 0, " %"),
                     c["others_known"], _number(c["ratio"], 1), ", ".join(c["flags"]),
                     a.call + (f" ({a.source})" if a.source else "")])
    tables.append(Table("tasks", "Per task (training split)",
                        ["task", "known (train)", "positives", "unknown", "others' labels", "ratio", "flags", "call"],
                        rows, legend=[
                            "ratio: the other tasks' known labels together / the task's own. Flags: little_help "
                            f"(ratio < {th.get('DATA_RATIO_LOW', 2):g}), largest (the most labels, ≥ "
                            f"{th.get('LARGEST_FACTOR', 2):g}× the next task), one_class, no_labels. –: not "
                            "measured."]))
    tables.append(Table("why", "Why, per task", ["task", "why"],
                        [[a.task, "; ".join(a.reasons)] for a in advice.task_advice], fields=True))
    title = f"Task relatedness ({advice.relatedness_source.split(' (')[0]})"
    legend = ["relatedness from -1 (conflicting) to 1 (helping each other); –: not measured."]
    if len(advice.tasks) <= MATRIX_MAX_TASKS:
        matrix = [[task, *[_number(float(v), 2) for v in advice.relatedness[i]]] for i, task in
                  enumerate(advice.tasks)]
        tables.append(Table("relatedness", title, ["task", *advice.tasks], matrix, legend=legend))
    else:
        pairs = [[a, b, _number(v, 2)] for a, b, v in advice.top_pairs(advice.relatedness, 15)]
        tables.append(Table("relatedness", title + ": the 15 most related pairs", ["task", "other task", "relatedness"],
                            pairs, legend=legend))
    if advice.capacity:
        rows = [[c["task"], c["labels"], _number(c["shared_loss"]), _number(c["own_loss"]),
                 _number(_percent(c["shared_explained"]), 0, " %"), _number(_percent(c["own_explained"]), 0, " %"),
                 _number(c["shared_ap"]), _number(c["own_ap"]), _underfits(c)] for c in advice.capacity]
        tables.append(Table("capacity", "Capacity check (training loss, probe rows)",
                            ["task", "labels", "loss shared", "loss own", "removed shared", "removed own",
                             "AP shared", "AP own", "underfits"], rows, legend=[
                                "loss: mean logistic loss per known label; removed: the share of the baseline loss "
                                "(predicting the base rate) the network removes; underfits: the shared network fits "
                                "the task clearly worse than its own network. –: not measured."]))
    others = [t for t in advice.rich_tables() if not str(t.title or "").startswith(ADVICE_TITLES)]
    extra = [from_rich(t, str(t.title or f"table {i}").split(" (")[0].lower().replace(" ", "_"))
             for i, t in enumerate(others, 1)]  # e.g. the evidence, after the recommendation
    return tables[:1] + extra + tables[1:]


ADVICE_TITLES = ("Recommendation", "Per task", "Task relatedness", "Capacity check")
"""The titles of the advisor's rich tables that :func:`advice_tables` builds itself."""


def from_rich(table: Any, name: str) -> Table:
    """A rich table (markup removed) as a printed table, for any table of the advisor built only as rich."""
    from rich.text import Text

    def plain(cell: Any) -> str:
        return Text.from_markup(cell).plain if isinstance(cell, str) else str(cell)

    columns = [plain(c.header) or f"column {i + 1}" for i, c in enumerate(table.columns)]
    cells = [[plain(v) for v in c.cells] for c in table.columns]
    rows = [list(row) for row in zip(*cells, strict=True)] if cells else []
    return Table(name, plain(table.title or ""), columns, rows)


def _percent(value: Any) -> float | None:
    return None if value is None or not math.isfinite(value) else 100 * value


# ------------------------------------------------------------------------------------------ runs, lists


def runs_table(summaries: Sequence[RunSummary], root: Any) -> Table:
    """`multitask runs`: one row per run directory."""
    rows = [[s.name, s.status, s.data, s.epochs, s.test_map] for s in summaries]
    return Table("runs", f"runs in {root}", ["name", "status", "data", "epochs", "test mAP"], rows,
                 legend=["epochs: done / planned. test mAP: the mean test AP over tasks; –: none (unfinished)."])


def info_tables(run: Run) -> list[Table]:
    """`multitask info` of a finished run: what it is, then its test metrics."""
    m, cfg = run.metrics, run.config
    fields = [["run", str(run.path)], ["data", str(cfg.data.path)], ["input", run.input_kind],
              ["tasks", ", ".join(run.tasks)], ["trunk", cfg.model.trunk], ["sharing", cfg.model.sharing],
              ["parameters", Cell(f"{m.get('parameters', 0):,}", m.get("parameters"))],
              ["weighting", cfg.train.weighting], ["epochs", m.get("epochs")], ["best epoch", m.get("best_epoch")],
              ["training time (s)", _number(m.get("train_seconds"), 1)], ["machine", m.get("machine")]]
    tables = [Table("run", "", ["field", "value"], fields, fields=True)]
    if "test" in m:
        tables.append(metrics_table(m["test"], "test metrics", "test"))
    return tables


def methods_table() -> Table:
    """`multitask methods`: every weighting / gradient method with the first line of its docstring."""
    from multitask.weighting import WEIGHTINGS

    rows = [[name, (WEIGHTINGS.get(name).__doc__ or "").strip().splitlines()[0]] for name in WEIGHTINGS.names()]
    return Table("methods", "Task weighting and gradient methods (--weighting NAME)", ["method", "what it does"],
                 rows, fields=True)


def trunks_table() -> Table:
    """`multitask trunks`: every trunk name and the input it takes."""
    from multitask.models.trunks import IMAGE_TRUNKS, TRUNKS

    rows = [[name, "images" if name in IMAGE_TRUNKS else "feature vectors"] for name in TRUNKS.names()]
    return Table("trunks", "Trunks (--trunk NAME)", ["trunk", "input"], rows)
