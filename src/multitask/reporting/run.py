"""The report of one training run: settings, per-task metrics, learning curves, PR / ROC curves, calibration.

>>> from multitask.reporting.run import split_scores
>>> split_scores  # doctest: +ELLIPSIS
<function split_scores at ...>

(A run's report is written by :func:`multitask.report.write_run_report` after every ``train``; the tests
render one in a browser.)
"""

from __future__ import annotations

import math
import re
import shlex
from pathlib import Path
from typing import Any

import numpy as np

from multitask.report import METRIC_KEYS, fmt
from multitask.reporting import plots
from multitask.reporting.document import Bullets, Document, Facts, Gallery, Plot, Section, Table, Text
from multitask.runs import Run, read_json

TASK_HEADER = ["task", "AP", "ROC-AUC", "F1", "accuracy", "threshold", "known labels", "positives"]
"""The per-task table (the scores first: what a phone shows without scrolling); F1 and accuracy at the
threshold chosen on the validation split."""


def task_table(split_metrics: dict[str, Any], caption: str = "", main: bool = False) -> Table:
    """One row per task (metrics, threshold, known labels, positives) and the macro mean as the footer."""
    rows = [[m["task"]] + [fmt(m[k]) for k in METRIC_KEYS] + [fmt(m["threshold"]), fmt(m["n_known"]),
                                                               fmt(m["n_positive"])] for m in split_metrics["tasks"]]
    macro = split_metrics["macro"]
    footer = [["macro mean"] + [fmt(macro.get(k)) for k in METRIC_KEYS] + ["", "", ""]]
    return Table(TASK_HEADER, rows, footer, caption, main)


def split_scores(run_path: Path, split: str, thresholds: dict[str, float], label: str = "",
                 tasks: list[str] | None = None) -> dict[str, plots.Scores]:
    """Each task's known labels and probabilities on one split, from the run's predictions_<split>.npz."""
    from multitask.pipeline import load_predictions

    file = run_path / f"predictions_{split}.npz"
    if not file.is_file():
        return {}
    saved = load_predictions(file)
    out = {}
    for j, task in enumerate(str(t) for t in saved["tasks"]):
        if tasks is None or task in tasks:
            known = saved["known"][:, j].astype(bool)
            out[task] = plots.Scores(label, saved["targets"][known, j].astype(int), saved["probs"][known, j],
                                     thresholds.get(task))
    return out


def shell_command(argv: list[str]) -> str | None:
    """A command line as a shell would take it; the `multitask` program by its name.

    >>> shell_command(["/x/.venv/bin/multitask", "train", "--name", "a b"])
    "multitask train --name 'a b'"
    """
    if not argv or not argv[0]:
        return None
    if Path(argv[0]).name in ("multitask", "__main__.py", "cli.py"):
        argv = ["multitask", *argv[1:]]
    return shlex.join(str(a) for a in argv)


def command_line(path: Path) -> str | None:
    """The command line recorded in a run's provenance.json (None when absent)."""
    file = path / "provenance.json"
    return shell_command(read_json(file).get("command") or []) if file.is_file() else None


def options_text(options: dict[str, Any]) -> str:
    """Options as `` (key=value, …)``, or "" for none.

    >>> options_text({"hidden": [8], "dropout": 0.1})
    ' (hidden=[8], dropout=0.1)'
    """
    return " (" + ", ".join(f"{k}={v}" for k, v in options.items()) + ")" if options else ""


def settings(config: Any, extra: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    """What a reader needs to know to interpret or rerun: data, trunk, epochs, image size and the rest."""
    model, data, train = config.model, config.data, config.train
    trunk = f"`{model.trunk}`" + (f" from `{model.weights}`" if model.weights else "")
    trunk += options_text(model.trunk_options)
    items = [("data", f"`{data.path}`" if data.path else "given in memory"), ("trunk", trunk),
             ("sharing", f"`{model.sharing}`" + (f", towers of depth {model.tower_depth}" if model.tower_depth
                                                 else "")),
             ("epochs (planned)", str(train.epochs)), ("batch size", str(train.batch_size)),
             ("learning rate", f"{train.lr:g}"), ("weighting", f"`{train.weighting}`"),
             ("loss normalisation", f"`{config.loss.normalization}`"), ("seed", str(train.seed))]
    from multitask.models.trunks import trunk_takes_images

    if trunk_takes_images(model.trunk):
        items.insert(3, ("image size", f"{data.image_size} px"))
    return items + (extra or [])


def run_document(run: Run) -> Document:
    """The document of a finished run (see :mod:`multitask.reporting.document` for the two files it gives)."""
    m, name = run.metrics, run.path.name
    split = "test" if "test" in m else "val" if "val" in m else None
    extra = [("training examples", f"{m.get('n_train', '?'):,}" if isinstance(m.get("n_train"), int) else "?"),
             ("tasks", str(len(run.tasks))), ("parameters", f"{m.get('parameters', 0):,}"),
             ("epochs trained", f"{m.get('epochs', '?')} (kept: epoch {m.get('best_epoch', '?')})"),
             ("training time", f"{fmt(m.get('train_seconds'), 1)} s"),
             ("inference", f"{1000 * m.get('inference_seconds_per_example', math.nan):.3g} ms per example"),
             ("machine", str(m.get("machine", "?")))]
    command = command_line(run.path)
    if command:
        extra.append(("command line", f"`{command}`"))
    sections = [Section("Settings", [Facts(settings(run.config, extra))])]
    for which in ("test", "val"):
        if which in m:
            sections.append(Section(f"{'Test' if which == 'test' else 'Validation'} metrics", [
                Text("Known labels only. F1 and accuracy at each task's threshold, chosen on the validation "
                     "split (maximum F1; 0.5 without a validation split)."),
                task_table(m[which], main=which == split)]))
    figures: list[Plot] = []
    for metric, (what, _) in plots.LEARNING_METRICS.items():
        curve = plots.learning_curves(m.get("history", []), f"{name}: {what} per epoch", [metric],
                                      m.get("best_epoch"))
        if curve is not None:
            figures.append(Plot(f"learning_{metric}", f"{name}: {what} per epoch", plots.png(curve)))
    blocks: list[Any] = [Gallery(figures, min_width=420)] if figures else []
    if split:
        dots = plots.task_metrics(m[split]["tasks"], f"{name}: {split} AP, ROC-AUC and F1 per task")
        if dots is not None:
            blocks.append(Plot("task_metrics", f"{name}: {split} metrics per task", plots.png(dots)))
    if blocks:
        sections.append(Section("Training and per-task scores", blocks))
    if split:
        sections.append(curve_section(name, split, split_scores(run.path, split, m.get("thresholds", {}))))
    sections.append(Section("Files", [Bullets([
        "Rerun: `multitask train --config config.yaml`",
        "`metrics.json` (every number above), `config.yaml`, `provenance.json`, `logs/metrics.csv`, "
        f"`predictions_{split or 'test'}.npz`, `report.md` (this report in Markdown, plots in `plots/`)"])]))
    return Document(f"Run `{name}`", sections)


def curve_section(name: str, split: str, scores: dict[str, plots.Scores] | dict[str, list[plots.Scores]]) -> Section:
    """Precision–recall, ROC and reliability plots of one split; `scores`: per task one series or several."""
    panels = [(task, s if isinstance(s, list) else [s]) for task, s in scores.items()]
    blocks: list[Any] = [Text(f"On the {split} split's known labels. Markers: the decision threshold of each task "
                              "(chosen on the validation split), where a prediction counts as positive when "
                              "probability ≥ threshold.")]
    if len(panels) > plots.MAX_PANELS:
        blocks.append(Text(f"Curves of the first {plots.MAX_PANELS} of {len(panels)} tasks; the tables list all."))
    for kind, metric in (("pr", "precision–recall"), ("roc", "ROC")):
        gallery = []
        for j, (task, series) in enumerate(panels[:plots.MAX_PANELS]):
            figure = plots.curve_panel(kind, task, series, f"{name}: {metric} ({split})")
            if figure is not None:
                gallery.append(Plot(f"{kind}_{j + 1:02d}_{_file_safe(task)}", f"{name}: {metric}, {task} ({split})",
                                    plots.png(figure)))
        if gallery:
            blocks.append(Gallery(gallery))
    series = _calibration_series(panels)
    figure = plots.calibration(series, f"{name}: calibration ({split})")
    if figure is not None:
        blocks.append(Plot("calibration", f"{name}: reliability of the predicted probabilities ({split})",
                           plots.png(figure), "Points on the diagonal: of the labels predicted with probability "
                           "p, a fraction p is positive"))
    return Section("Curves and calibration", blocks)


def _file_safe(name: str) -> str:
    """A task name as part of a file name.

    >>> _file_safe("stop sign/red")
    'stop_sign_red'
    """
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:40]


def _calibration_series(panels: list[tuple[str, list[plots.Scores]]]) -> list[plots.Scores]:
    """Per approach (or, for one run, per task up to MAX_CALIBRATION_LINES) and all tasks pooled."""
    if not panels:
        return []
    labels = [s.label for s in panels[0][1]]
    if labels == [""]:
        pooled = [plots.Scores("all tasks pooled", np.concatenate([s[0].y for _, s in panels]),
                               np.concatenate([s[0].p for _, s in panels]))]
        if 1 < len(panels) <= plots.MAX_CALIBRATION_LINES:
            return [plots.Scores(task, s[0].y, s[0].p) for task, s in panels] + pooled
        return pooled
    return [plots.Scores(f"{label} (all tasks)", np.concatenate([s[k].y for _, s in panels]),
                         np.concatenate([s[k].p for _, s in panels])) for k, label in enumerate(labels)]
