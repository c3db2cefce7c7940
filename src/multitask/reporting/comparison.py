"""The report of a comparison: settings, per-task metrics of every approach side by side with the differences
and their intervals, cost, and each task's curves of every approach overlaid.

>>> SIGNIFICANCE.split(";")[0]
'Δ: the approach minus the first approach'

(Written by :func:`multitask.report.write_comparison_report` after every ``compare``.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from multitask.reporting import plots
from multitask.reporting.document import Bullets, Document, Facts, Gallery, Plot, Section, Table, Text
from multitask.reporting.run import command_line, curve_section, settings, split_scores
from multitask.runs import read_json

SIGNIFICANCE = ("Δ: the approach minus the first approach; for AP with a 95 % paired bootstrap interval over test "
                "examples (and seeds). `*`: the interval excludes 0 — the difference is significant at the 5 % "
                "level; `(n.s.)`: not significant, the interval contains 0.")


def task_table(header: list[str], rows: list[list[str]], main: bool = False) -> Table:
    """A per-task table of the comparison: the task rows, the macro mean (the last row) as the footer, and the
    training labels moved last (the scores first: what a phone shows without scrolling).

    >>> t = task_table(["task", "train labels", "AP a"], [["x", "10", "0.5"], ["macro mean", "", "0.5"]])
    >>> t.header, t.rows, t.footer
    (['task', 'AP a', 'train labels'], [['x', '0.5', '10']], [['macro mean', '0.5', '']])
    """
    def move(row: list[str]) -> list[str]:
        return [row[0], *row[2:], row[1]]

    return Table(move(header), [move(r) for r in rows[:-1]], [move(r) for r in rows[-1:]], main=main)


def comparison_document(comparison: Any, config: Any | None = None) -> Document:
    """The document of a comparison saved in `comparison.path` (`config`: its config.yaml, for the settings)."""
    names = comparison.approaches
    out = Path(comparison.path)
    title_name = out.name
    seeds = [r.seed for r in next(iter(comparison.results.values()))]
    extra = [("approaches", ", ".join(f"`{n}`" for n in names)), ("tasks", str(len(comparison.tasks))),
             ("seeds", ", ".join(str(s) for s in seeds))]
    if comparison.groups:
        extra.append(("groups", "; ".join("{" + ", ".join(g) + "}" for g in comparison.groups)))
    first_run = Path(next(iter(comparison.results[names[0]][0].runs.values())))
    command = command_line(first_run)
    if command:
        extra.append(("command line", f"`{command}`"))
    facts = settings(config, extra) if config is not None else extra
    lead_text = ("Test metrics on known labels; thresholds chosen on each run's validation split."
                 + (f" Mean ± standard deviation over {comparison.n_seeds} seeds." if comparison.n_seeds > 1 else ""))
    sections = [Section("Settings", [Facts(facts)])]
    sections.append(Section("AP per task", [
        Text(lead_text), Text(SIGNIFICANCE),
        task_table(comparison.task_header("AP", with_ci=True), comparison.task_rows("average_precision"), True)]))
    figure = plots.comparison_ap(comparison, f"{title_name}: test AP, " + " vs ".join(names))
    gallery = [Plot("compare_ap", f"{title_name}: test AP per task and approach", plots.png(figure))]
    figure = plots.comparison_differences(comparison, f"{title_name}: Δ AP against {names[0]}")
    if figure is not None:
        gallery.append(Plot("compare_ap_difference", f"{title_name}: Δ AP against {names[0]} with 95 % intervals",
                            plots.png(figure), "Filled markers: significant (`*`); open: not (n.s.)"))
    sections[-1].blocks.append(Gallery(gallery, min_width=460))
    for key, short in (("roc_auc", "ROC-AUC"), ("f1", "F1")):
        sections.append(Section(f"{short} per task", [
            Text(f"Δ: the mean difference from `{names[0]}` (no interval)."),
            task_table(comparison.task_header(short, with_ci=False), comparison.task_rows(key))]))
    cost = [[name, f"{p:,}", f"{s:.1f}", f"{i:.3f}"] for name, p, s, i in comparison.cost_rows()]
    sections.append(Section("Cost", [Table(["approach", "parameters", "training time (s)",
                                            "inference (ms / example, all tasks)"], cost)]))
    scores = _scores_per_task(comparison)
    if scores:
        section = curve_section(title_name, "test", scores)
        section.blocks.insert(1, Text("Each colour is one approach" + (f" (seed {seeds[0]})" if len(seeds) > 1
                                                                      else "") + "."))
        sections.append(section)
    runs = sorted({(a, Path(p)) for a in names for p in comparison.results[a][0].runs.values()})
    sections.append(Section("Runs", [Bullets([
        f"`{a}`: `{_relative(path, out)}/report.html`" for a, path in runs])]))
    return Document(f"Comparison `{title_name}`: " + " vs ".join(names), sections)


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _scores_per_task(comparison: Any) -> dict[str, list[plots.Scores]]:
    """Each task's test scores under every approach (first seed), with each run's thresholds."""
    out: dict[str, list[plots.Scores]] = {t: [] for t in comparison.tasks}
    for name in comparison.approaches:
        result = comparison.results[name][0]
        for task in comparison.tasks:
            path = Path(result.runs[task])
            tasks_file = path / "tasks.json"
            thresholds = read_json(tasks_file)["thresholds"] if tasks_file.is_file() else {}
            scores = split_scores(path, "test", thresholds, label=name, tasks=[task])
            if task in scores:
                out[task].append(scores[task])
    return {t: s for t, s in out.items() if len(s) == len(comparison.approaches)}
