"""The advisor's HTML report: the call, the reasons per task, and the evidence (label counts, correlation,
relatedness and lookahead heat maps, the capacity check, notes, thresholds).

(The Markdown report stays :meth:`multitask.advise.result.Advice.to_markdown`; this page shows the same
numbers, with the plots embedded.)

>>> from multitask.config import RunConfig
>>> advice_settings(RunConfig.model_validate({"model": {"trunk": "mlp"}}))["trunk"]
'mlp'
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from multitask.reporting import plots
from multitask.reporting.document import Bullets, Document, Facts, Plot, Section, Table, Text, write_report
from multitask.reporting.run import options_text, shell_command


def advice_settings(config: Any) -> dict[str, Any]:
    """What the advice was computed with: trunk, its options and weights, image size, seed, command line."""
    return {"trunk": config.model.trunk, "trunk_options": dict(config.model.trunk_options),
            "weights": config.model.weights, "image_size": config.data.image_size, "seed": config.train.seed,
            "command": shell_command(list(sys.argv))}


def _name(advice: Any, out: Path) -> str:
    return Path(advice.source).stem if advice.source else out.name


def _heatmap(advice: Any, matrix: np.ndarray | None, name: str, title: str, caption: str = "",
             scale: float = 1.0) -> Plot | None:
    from multitask.advise.result import heatmap_figure

    if matrix is None:
        return None
    values = scale * np.asarray(matrix, dtype=float)
    limit = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    limit = 1.0 if scale == 1.0 else max(limit, 1e-9)
    figure = heatmap_figure(values, advice.tasks, title, vmin=-limit, vmax=limit)
    return Plot(name, title, plots.png(figure), caption)


def advice_document(advice: Any, out: Path) -> Document:
    """The document of an advice written to `out`."""
    from multitask.advise.result import _pct, _underfits
    from multitask.report import fmt

    name = _name(advice, out)
    lead: list[Any] = [Text(f"**Recommendation: {advice.recommendation}**"), Bullets(list(advice.reasons))]
    if any(len(g) > 1 for g in advice.groups):
        lead.append(Text("Suggested groups (related tasks): "
                         + "; ".join("{" + ", ".join(g) + "}" for g in advice.groups if len(g) > 1)))
    s = getattr(advice, "settings", {}) or {}
    facts = [("data", f"`{advice.source}`" if advice.source else "given in memory"),
             ("training rows", f"{advice.n_train:,}"), ("tasks", str(len(advice.tasks)))]
    if s.get("trunk"):
        facts.append(("trunk", f"`{s['trunk']}`" + options_text(s.get("trunk_options") or {})
                      + (f" from `{s['weights']}`" if s.get("weights") else "")))
    if advice.representation_width:
        facts.append(("shared representation", f"{advice.representation_width} features"))
    p = advice.probe
    if p:
        facts.append(("probe", f"{p.get('steps')} steps ({fmt(p.get('epochs'), 1)} epochs) on {p.get('rows')} rows, "
                      f"batch {p.get('batch_size')}" + (f", images at {p['image_size']} px" if p.get("image_size")
                                                       else "") + f", {fmt(p.get('seconds'), 1)} s on "
                      f"{p.get('device')}"))
    elif s.get("image_size"):
        facts.append(("image size", f"{s['image_size']} px"))
    facts.append(("computed in", f"{advice.seconds:.1f} s"))
    if s.get("command"):
        facts.append(("command line", f"`{s['command']}`"))
    sections = [Section("Settings", [Facts(facts)])]

    calls = [[a.task, a.call + (f" from {a.source}" if a.source else ""), "; ".join(a.reasons)]
             for a in advice.task_advice]
    counts = [[c["task"], fmt(c["known"]), fmt(c["positives"]), _pct(c["unknown_fraction"]), fmt(c["others_known"]),
               fmt(c["ratio"], 1), ", ".join(c["flags"])] for c in advice.counts]
    sections.append(Section("Per task", [
        Table(["task", "call", "why"], calls, main=True),
        Text("Data (training split). `ratio`: the other tasks' known labels together / the task's own; "
             "`little_help`: ratio below "
             f"{advice.thresholds.get('DATA_RATIO_LOW', 2):g}; `largest`: the most labels, at least "
             f"{advice.thresholds.get('LARGEST_FACTOR', 2):g}× the next task."),
        Table(["task", "known labels", "positives", "unknown", "others' known labels", "ratio", "flags"], counts)]))

    measured = getattr(advice, "evidence", None)
    if measured:
        from multitask.advise.evidence import describe

        sections.append(Section("Evidence: short comparison", [
            Text("Held-out macro AP of each approach after a short training at the stated recipe; intervals are "
                 "95 % paired bootstraps over held-out rows. A call is clear when the interval excludes 0 at the "
                 "full budget and the half-budget difference has the same sign; otherwise it is a tie"
                 + (f" (this call: {advice.confidence})." if getattr(advice, "confidence", "") else ".")),
            Bullets(describe(measured))]))

    evidence: list[Any] = [Text(f"Relatedness source: {advice.relatedness_source}. Phi: Pearson correlation of "
                                "0/1 labels on the training rows where both tasks are known (grey: fewer than "
                                f"{advice.thresholds.get('MIN_COLABELLED', 10):g} co-labelled rows).")]
    for plot in (
        _heatmap(advice, advice.relatedness, "relatedness",
                 f"{name}: task relatedness ({advice.relatedness_source.split(' (')[0]})",
                 "+1: the tasks pull the shared features the same way; −1: they conflict"),
        _heatmap(advice, advice.correlation, "cooccurrence", f"{name}: label correlation (phi, co-labelled rows)"),
        _heatmap(advice, advice.tag_affinity, "affinity", f"{name}: lookahead affinity × 1000 (Fifty et al. 2021)",
                 "Row: the task whose gradient step is taken; column: the task whose loss drops", scale=1000.0),
    ):
        if plot is not None:
            evidence.append(plot)
    sections.append(Section("Evidence: relatedness", evidence))

    if advice.capacity:
        rows = [[c["task"], fmt(c["labels"]), fmt(c["baseline_loss"]), fmt(c["shared_loss"]), fmt(c["own_loss"]),
                 _pct(c["shared_explained"]), _pct(c["own_explained"]), fmt(c["shared_ap"]), fmt(c["own_ap"]),
                 fmt(c.get("held_shared_ap")), fmt(c.get("held_own_ap")), _underfits(c)] for c in advice.capacity]
        sections.append(Section("Evidence: capacity check", [
            Text("Training fit on the probe rows, the shared network against each task's own network (same trunk, "
                 "same epochs): mean logistic loss per known label, the share of the baseline loss it removes, and "
                 "AP; then AP on held-out probe rows. Flagged when the shared network removes more than "
                 f"{advice.thresholds.get('CAPACITY_GAP', 0.3):g} less than the own one and its held-out AP is "
                 f"lower by more than {advice.thresholds.get('CAPACITY_HELD_AP_GAP', 0.1):g}."),
            Table(["task", "labels", "baseline loss", "loss shared", "loss own", "removed shared", "removed own",
                   "AP shared", "AP own", "held-out AP shared", "held-out AP own", "shared underfits"], rows)]))
    closing: list[Any] = []
    if advice.notes:
        closing.append(Bullets(list(advice.notes)))
    closing.append(Text("Thresholds of the rules: " + ", ".join(f"`{k}` = {v:g}" for k, v in
                                                                 advice.thresholds.items()) + "."))
    closing.append(Text(f"Confirm the advice by training in full: `{advice.compare_command()}`"))
    sections.append(Section("Notes and next step", closing))
    return Document(f"Should these tasks share one network? `{name}`", sections, lead=lead)


def write_advice_html(advice: Any, out: str | Path) -> Path:
    """out/report.html (the Markdown report and its plots are written by ``Advice.write``)."""
    out = Path(out)
    return write_report(advice_document(advice, out), out, markdown=False)
