"""The report of a detection run: AP per class on val and test, learning curves, a few example detections.

:func:`detection_report_sections` gives the report as (heading, Markdown) sections and the image files they
show, so another renderer (the HTML report) can lay out the same content; :func:`write_detection_report`
writes them as ``report.md`` with the pictures in ``plots/``.

>>> metrics = {"test": {"n_images": 2, "map50": 0.5, "map": 0.25,
...                     "classes": {"car": {"ap50": 0.5, "ap": 0.25, "images": 2, "boxes": 3}}}}
>>> print(scores_table(metrics["test"]))
| class | images | boxes | AP@0.5 | AP@[.5:.95] |
|---|---|---|---|---|
| car | 2 | 3 | 0.500 | 0.250 |
| **mean** |  |  | 0.500 | 0.250 |
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from multitask.files import atomic_write_text
from multitask.report import fmt, markdown_table

EXAMPLES = 4
"""Example test images drawn in a report."""


def scores_table(split: dict[str, Any]) -> str:
    """AP@0.5 and AP@[.5:.95] per class of one split's metrics, and their means."""
    rows = [[name, c.get("images", ""), c.get("boxes", ""), c.get("ap50"), c.get("ap")]
            for name, c in split["classes"].items()]
    rows.append(["**mean**", "", "", split.get("map50"), split.get("map")])
    return markdown_table(["class", "images", "boxes", "AP@0.5", "AP@[.5:.95]"], rows)


def detection_report_sections(run: Any, table: Any = None) -> list[tuple[str, str, list[Path]]]:
    """(heading, Markdown text, image files) of each section of a run's report; example detections are drawn
    into ``run.path / "plots"`` (test images, else val, of `table`: the run's box table)."""
    from multitask.report import plot_learning_curves

    m, cfg = run.metrics, run.config
    plots = run.path / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    sections: list[tuple[str, str, list[Path]]] = []
    setup = (f"Data: `{cfg.data.path}` ({len(run.classes)} classes: {', '.join(run.classes)}), "
             f"{m.get('n_train', '?')} training images. Detector: FCOS (torchvision) on `{cfg.model.trunk}` + FPN "
             f"({cfg.detection.fpn_channels} channels, {cfg.detection.levels} trunk levels), "
             f"{fmt(m.get('parameters'))} parameters, images {cfg.data.image_size} px; unknown annotations: "
             f"{cfg.detection.unknown}. Training: {m.get('epochs')} epochs (best {m.get('best_epoch')}), "
             f"{fmt(m.get('train_seconds'), 1)} s on {m.get('machine')}; inference "
             f"{fmt(1000 * (m.get('inference_seconds_per_example') or float('nan')), 1)} ms / image.")
    sections.append(("Setup", setup, []))
    for split in ("test", "val"):
        if split in m:
            sections.append((f"{split} AP (unknown-aware, COCO-style)", scores_table(m[split]), []))
    curves = plot_learning_curves(m.get("history") or [], plots / "learning_curves.png")
    if curves is not None:
        sections.append(("Learning curves", "![learning curves](plots/learning_curves.png)", [curves]))
    if table is not None:
        from multitask.detection.predict import draw_detections
        from multitask.detection.run import load_detections

        for split in ("test", "val"):
            file = run.path / f"detections_{split}.npz"
            part = table.part(split)
            if not file.is_file() or not len(part):
                continue
            _, found = load_detections(file)
            pictures = []
            for i in range(min(EXAMPLES, len(part))):
                out = plots / f"example_{i}.png"
                truth = (part.boxes[i][~part.ignore[i]], part.labels[i][~part.ignore[i]])
                pictures.append(draw_detections(part.paths()[i], found[i], run.classes, out, truth=truth))
            text = (f"The first {len(pictures)} {split} images: detections with score ≥ 0.3 in colour "
                    "(class and score), the annotated boxes in white.\n\n"
                    + " ".join(f"![example {i}](plots/{p.name})" for i, p in enumerate(pictures)))
            sections.append(("Example detections", text, pictures))
            break
    return sections


def write_detection_report(run: Any, table: Any = None) -> Path:
    """runs/<name>/report.md of a detection run; returns its path."""
    sections = detection_report_sections(run, table)
    text = f"# Detection run {run.path.name}\n\n" + "\n\n".join(f"## {h}\n\n{t}" for h, t, _ in sections) + "\n"
    path = run.path / "report.md"
    atomic_write_text(path, text)
    return path
