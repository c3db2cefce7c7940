"""One shared detector for all classes against one detector per class, per class and in cost.

Both approaches use the same trunk, detector options, image size, epochs and batch size, on the same split.
The detector of class c trains on the images where c is known (its boxes or verified absence); the shared
detector on every image, with the unknown (image, class) annotations masked. On the test images both are
scored by the same unknown-aware COCO metric (:mod:`multitask.detection.metrics`); the difference in AP@0.5 per
class (separate − shared) comes with a paired bootstrap interval over test images: each resample draws test
images with replacement and scores both approaches' detections on the same draw
(:func:`paired_detection_difference`; summaries from :mod:`multitask.bootstrap`).

>>> result = compare_detection(config, table)  # doctest: +SKIP
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from multitask.bootstrap import Difference, summarize
from multitask.config import RunConfig, apply_overrides, load_config
from multitask.detection.boxes import BoxTable
from multitask.detection.predict import Detections
from multitask.detection.run import (
    DetectionRun,
    load_detection_run,
    load_detections,
    read_boxes,
    resume_detection_run,
    train_detection_run,
)
from multitask.errors import ConfigError, RunDirError
from multitask.files import atomic_write_text
from multitask.runs import new_run_dir, read_json, read_status, write_json

APPROACHES = ("shared", "separate")


def paired_detection_difference(table: BoxTable, a: Sequence[Detections], b: Sequence[Detections], *,
                                n_boot: int = 200, seed: int = 0, level: float = 0.95,
                                key: str = "ap50") -> tuple[list[Difference], Difference]:
    """AP(b) − AP(a) per class (``key``: ``ap50`` or ``ap``) and its mean over classes, with percentile bootstrap
    intervals: each resample draws the images of `table` with replacement and scores both sets of detections
    (one per image of `table`) on it with :func:`~multitask.detection.metrics.detection_scores`.

    >>> t = BoxTable.from_arrays(["car"], ["a", "b"], boxes=[[[0, 0, 9, 9]], [[0, 0, 9, 9]]], labels=[[0], [0]])
    >>> hit = {"boxes": np.array([[0, 0, 9, 9.0]]), "scores": np.array([0.9]), "labels": np.array([0])}
    >>> miss = {"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "labels": np.zeros(0, int)}
    >>> per_class, mean = paired_detection_difference(t, [hit, miss], [hit, hit], n_boot=20)
    >>> round(per_class[0].mean, 2), per_class[0].low >= 0  # recall 1/2 → 1 (COCO's 101-point AP)
    (0.5, True)
    """
    from multitask.detection.metrics import detection_scores

    def scores(predictions: Sequence[Detections], part: BoxTable) -> np.ndarray:
        return getattr(detection_scores(predictions, part, ap50_only=key == "ap50"), key)

    point = scores(b, table) - scores(a, table)
    rng = np.random.default_rng(seed)
    n = len(table)
    samples = np.full((n_boot, table.n_classes), np.nan)
    for r in range(n_boot):
        draw = rng.integers(0, n, size=n)
        part = table.subset(draw)
        samples[r] = scores([b[i] for i in draw], part) - scores([a[i] for i in draw], part)
    per_class = [summarize(samples[:, c], float(point[c]), level) for c in range(table.n_classes)]
    with np.errstate(all="ignore"):
        means = np.array([np.nanmean(row) if np.isfinite(row).any() else np.nan for row in samples])
    finite = point[np.isfinite(point)]
    return per_class, summarize(means, float(finite.mean()) if len(finite) else float("nan"), level)


@dataclass
class DetectionApproach:
    """Test AP per class and the cost of one approach."""

    name: str
    ap50: dict[str, float | None]
    ap: dict[str, float | None]
    parameters: int
    train_seconds: float
    inference_seconds_per_image: float
    runs: dict[str, str] = field(default_factory=dict)
    """run directory of each class"""


def _separate_table(table: BoxTable, name: str) -> BoxTable:
    """Class `name` alone, on the images where it is known."""
    one = table.only_classes([name])
    return one.subset(one.known[:, 0])


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:100]


def _reuse_or_train(config: RunConfig, table: BoxTable, folder: Path, label: str, report: bool,
                    resume: bool) -> DetectionRun:
    if resume and folder.is_dir():
        status = read_status(folder)
        if status is not None and status["status"] == "finished":
            return load_detection_run(folder)
        if status is not None:
            return resume_detection_run(folder, config, table, label=label, report=report)
    return train_detection_run(config, table, run_dir=folder, label=label, report=report)


def test_detections(runs: dict[str, str], classes: Sequence[str], test: BoxTable) -> list[Detections]:
    """The detections of one approach on every test image, all classes together: each run's saved test
    detections, relabelled to the class indices of `classes` and placed at their images."""
    index = {image: i for i, image in enumerate(test.images)}
    out = [{"boxes": np.zeros((0, 4), np.float32), "scores": np.zeros(0, np.float32),
            "labels": np.zeros(0, np.int64)} for _ in range(len(test))]
    for path in dict.fromkeys(runs.values()):
        run_classes = read_json(Path(path) / "classes.json")["classes"]
        mapping = np.array([list(classes).index(c) for c in run_classes], dtype=np.int64)
        images, found = load_detections(Path(path) / "detections_test.npz")
        for image, det in zip(images, found, strict=True):
            target = out[index[image]]
            for k in ("boxes", "scores"):
                target[k] = np.concatenate([target[k], det[k].astype(np.float32)])
            target["labels"] = np.concatenate([target["labels"], mapping[det["labels"]]])
    return out


@dataclass
class DetectionComparison:
    """Shared against separate detectors on one box table."""

    classes: tuple[str, ...]
    results: dict[str, DetectionApproach]
    differences: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    """per approach after the first: per class (and "macro") the AP@0.5 difference and interval"""
    train_boxes: dict[str, int] = field(default_factory=dict)
    path: Path | None = None

    def difference(self, approach: str, name: str | None) -> Difference:
        return Difference(**self.differences[approach][name or "macro"])

    def rows(self) -> list[list[str]]:
        """Per class, then the mean: train boxes, each approach's AP@0.5, Δ from the first [95 % CI]."""
        first = self.approaches[0]
        out = []
        for name in [*self.classes, None]:
            row = [name or "mean", str(self.train_boxes.get(name, "")) if name else ""]
            for approach in self.approaches:
                values = self.results[approach].ap50
                value = values.get(name) if name else _mean(values.values())
                row.append("–" if value is None or not np.isfinite(value) else f"{value:.3f}")
            row += [str(self.difference(a, name)) for a in self.approaches if a != first]
            out.append(row)
        return out

    def header(self) -> list[str]:
        first = self.approaches[0]
        return (["class", "train boxes"] + [f"AP@0.5 {a}" for a in self.approaches]
                + [f"Δ {a} − {first} [95% CI]" for a in self.approaches if a != first])

    def cost_rows(self) -> list[list[Any]]:
        return [[r.name, r.parameters, r.train_seconds, 1000 * r.inference_seconds_per_image]
                for r in self.results.values()]

    @property
    def approaches(self) -> list[str]:
        return list(self.results)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "detection", "classes": list(self.classes), "train_boxes": self.train_boxes,
                "results": {k: asdict(v) for k, v in self.results.items()}, "ap50_differences": self.differences}

    def save(self, path: Path) -> None:
        write_json(path / "comparison.json", self.to_dict())

    def markdown(self) -> str:
        from multitask.report import markdown_table

        cost = markdown_table(["approach", "parameters", "training time (s)", "inference ms / image (all classes)"],
                              [[n, f"{p:,}", f"{s:.1f}", f"{ms:.1f}"] for n, p, s, ms in self.cost_rows()],
                              cell=str)
        return ("## Test AP@0.5 per class (unknown-aware)\n\n" + markdown_table(self.header(), self.rows(), cell=str)
                + "\n\nΔ: difference from the first approach with a 95 % paired bootstrap interval over test images; "
                "`*`: the interval excludes 0, n.s.: it contains 0.\n\n## Cost\n\n" + cost + "\n")


def _mean(values: Any) -> float:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def compare_detection(config: RunConfig, table: BoxTable | None = None, approaches: Sequence[str] = APPROACHES,
                      out_dir: Path | None = None, *, report: bool = True, n_boot: int = 200,
                      resume: str | Path | None = None, quiet: bool = False) -> DetectionComparison:
    """Train the shared detector and one detector per class on the same data; save comparison.json and a
    report.md in `out_dir`. `resume`: an unfinished comparison folder (finished runs reused, unfinished ones
    continued)."""
    if resume is not None:
        out_dir = Path(resume)
        plan_file = out_dir / "plan.json"
        if not plan_file.is_file():
            raise RunDirError(f"{plan_file}: missing; {out_dir} is not a comparison folder that can be resumed")
        approaches = read_json(plan_file).get("approaches", list(APPROACHES))
        config = load_config(out_dir / "config.yaml")
    unknown = [a for a in approaches if a not in APPROACHES]
    if unknown:
        raise ConfigError(f"unknown approach(es) {unknown} for detection; choose from {list(APPROACHES)}")
    table = table if table is not None else read_boxes(config)
    out = out_dir or new_run_dir(config, default_stem=(Path(config.data.path).stem if config.data.path
                                                       else "boxes") + "-compare")
    if resume is None:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "config.yaml", config.to_yaml())
        write_json(out / "plan.json", {"approaches": list(approaches), "kind": "detection"})
    results: dict[str, DetectionApproach] = {}
    for approach in approaches:
        plan = [list(table.classes)] if approach == "shared" else [[c] for c in table.classes]
        ap50: dict[str, float | None] = {}
        ap: dict[str, float | None] = {}
        runs: dict[str, str] = {}
        params, seconds, infer = 0, 0.0, 0.0
        for group in plan:
            if approach == "shared":
                part, cfg, folder, label = table, config, out / "shared", "[shared] "
            else:
                part = _separate_table(table, group[0])
                cfg = apply_overrides(config, {"data.tasks": group})
                folder, label = out / "separate" / _safe(group[0]), f"[separate {group[0]}] "
            run = _reuse_or_train(cfg, part, folder, "" if quiet else label, report, resume is not None)
            test = run.metrics.get("test", {}).get("classes", {})
            for name in group:
                ap50[name] = test.get(name, {}).get("ap50")
                ap[name] = test.get(name, {}).get("ap")
                runs[name] = str(run.path)
            params += run.metrics["parameters"]
            seconds += run.metrics["train_seconds"]
            infer += run.metrics["inference_seconds_per_example"]
        results[approach] = DetectionApproach(approach, ap50, ap, params, seconds, infer, runs)
    test = table.part("test")
    differences: dict[str, dict[str, dict[str, float]]] = {}
    first = approaches[0]
    base = test_detections(results[first].runs, table.classes, test)
    for approach in approaches[1:]:
        other = test_detections(results[approach].runs, table.classes, test)
        per_class, mean = paired_detection_difference(test, base, other, n_boot=n_boot,
                                                      seed=zlib.crc32(f"{first}/{approach}".encode()))
        differences[approach] = {**{c: asdict(d) for c, d in zip(table.classes, per_class, strict=True)},
                                 "macro": asdict(mean)}
    train = table.part("train")
    comparison = DetectionComparison(table.classes, results, differences,
                                     dict(zip(table.classes, train.counts().tolist(), strict=True)), out)
    comparison.save(out)
    if report:
        atomic_write_text(out / "report.md", f"# Detection comparison {out.name}\n\n{comparison.markdown()}")
    return comparison
