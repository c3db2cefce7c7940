"""One shared network against T separate single-task networks (and other approaches), per task and in cost.

Every approach trains with the same trunk, the same epochs and the same batch size; each separate network
sees only the rows where its task is known. The result is one table: per task the test metrics of each
approach and their difference, then parameters, training time and inference time.

>>> result = compare(config, approaches=("shared", "separate"))  # doctest: +SKIP
>>> print(result.task_table())  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from multitask.config import RunConfig, apply_overrides
from multitask.labels import LabelTable, check_trainable, read_data
from multitask.pipeline import train_run
from multitask.runs import new_run_dir, write_json


@dataclass
class ApproachResult:
    """Test metrics per task and the cost of one approach."""

    name: str
    tasks: dict[str, dict[str, Any]]
    parameters: int
    train_seconds: float
    inference_seconds_per_example: float
    runs: list[str] = field(default_factory=list)

    def metric(self, task: str, key: str = "average_precision") -> float:
        value = self.tasks.get(task, {}).get(key)
        return float("nan") if value is None else float(value)

    def macro(self, key: str = "average_precision") -> float:
        values = np.array([self.metric(t, key) for t in self.tasks], dtype=float)
        return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


ApproachFn = Callable[[RunConfig, LabelTable, Path], ApproachResult]
APPROACHES: dict[str, ApproachFn] = {}


def register_approach(name: str) -> Callable[[ApproachFn], ApproachFn]:
    def decorator(function: ApproachFn) -> ApproachFn:
        APPROACHES[name] = function
        return function

    return decorator


def _test_metrics(run_metrics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    split = "test" if "test" in run_metrics else "val"
    return {m["task"]: m for m in run_metrics[split]["tasks"]}


@register_approach("shared")
def shared_network(config: RunConfig, table: LabelTable, out: Path) -> ApproachResult:
    """One network, all tasks."""
    run = train_run(config, table, run_dir=out / "shared", label="[shared] ")
    m = run.metrics
    return ApproachResult("shared", _test_metrics(m), m["parameters"], m["train_seconds"],
                          m["inference_seconds_per_example"], [str(run.path)])


@register_approach("separate")
def separate_networks(config: RunConfig, table: LabelTable, out: Path) -> ApproachResult:
    """T networks, one per task, each trained on the rows where its task is known."""
    tasks, params, seconds, infer, runs = {}, 0, 0.0, 0.0, []
    for task in table.tasks:
        single = table.select_tasks([task], drop_unlabelled=True)
        check_trainable(single)
        sub = apply_overrides(config, {"data.tasks": [task], "loss.task_weights": {
            k: v for k, v in config.loss.task_weights.items() if k == task}})
        if isinstance(config.loss.pos_weight, dict):
            sub = apply_overrides(sub, {"loss.pos_weight": {k: v for k, v in config.loss.pos_weight.items()
                                                            if k == task}})
        run = train_run(sub, single, run_dir=out / "separate" / _safe(task), label=f"[{task}] ")
        m = run.metrics
        tasks.update(_test_metrics(m))
        params += m["parameters"]
        seconds += m["train_seconds"]
        infer += m["inference_seconds_per_example"]
        runs.append(str(run.path))
    return ApproachResult("separate", tasks, params, seconds, infer, runs)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


@dataclass
class Comparison:
    """The results of several approaches on the same data and tasks."""

    tasks: tuple[str, ...]
    results: dict[str, ApproachResult]
    path: Path | None = None
    train_known: dict[str, int] = field(default_factory=dict)

    def task_rows(self, key: str = "average_precision") -> list[list[Any]]:
        """Per task: known training labels, the metric of each approach, and each approach minus the first."""
        names = list(self.results)
        rows = []
        for task in self.tasks:
            values = [self.results[n].metric(task, key) for n in names]
            rows.append([task, self.train_known.get(task, "")] + values + [v - values[0] for v in values[1:]])
        macro = [self.results[n].macro(key) for n in names]
        rows.append(["macro mean", ""] + macro + [v - macro[0] for v in macro[1:]])
        return rows

    def task_header(self, short: str = "AP") -> list[str]:
        names = list(self.results)
        return (["task", "train labels"] + [f"{short} {n}" for n in names]
                + [f"Δ {n} − {names[0]}" for n in names[1:]])

    def cost_rows(self) -> list[list[Any]]:
        return [[r.name, r.parameters, r.train_seconds, 1000 * r.inference_seconds_per_example]
                for r in self.results.values()]

    def to_dict(self) -> dict[str, Any]:
        return {"tasks": list(self.tasks), "train_known": self.train_known,
                "results": {k: asdict(v) for k, v in self.results.items()}}

    def save(self, path: Path) -> None:
        write_json(path / "comparison.json", self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> Comparison:
        data = json.loads((Path(path) / "comparison.json").read_text())
        results = {k: ApproachResult(**v) for k, v in data["results"].items()}
        return cls(tuple(data["tasks"]), results, Path(path), data.get("train_known", {}))


def compare(config: RunConfig, table: LabelTable | None = None, approaches: Sequence[str] = ("shared", "separate"),
            out_dir: Path | None = None, report: bool = True) -> Comparison:
    """Train every approach on the same data; save comparison.json (and a report) in out_dir."""
    unknown = [a for a in approaches if a not in APPROACHES]
    if unknown:
        raise ValueError(f"unknown approach(es) {unknown}; known: {sorted(APPROACHES)}")
    if table is None:
        table = read_data(config.data, seed=config.train.seed)
    check_trainable(table)
    stem = (Path(config.data.path).stem if config.data.path else "data") + "-compare"
    out = out_dir or new_run_dir(config, default_stem=stem)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(config.to_yaml())
    train = table.part("train")
    known = dict(zip(table.tasks, train.known.sum(axis=0).tolist(), strict=True))
    results = {name: APPROACHES[name](config, table, out) for name in approaches}
    comparison = Comparison(table.tasks, results, out, known)
    comparison.save(out)
    if report:
        from multitask.report import write_comparison_report

        write_comparison_report(comparison, out)
    return comparison
