"""One shared network against T separate networks (and other approaches), per task and in cost.

Every approach trains with the same trunk, the same epochs and the same batch size on the same split; each
separate network sees only the rows where its task is known. Approaches:

- ``shared``: one network for all tasks;
- ``separate``: one network per task;
- ``groups``: one shared network per group of tasks (``groups=[["car", "bus"], ["stop", "light"]]``; tasks in
  no group train alone);
- ``shared_pretrained`` / ``separate_pretrained``: the same, with the trunk started from ``pretrained``
  (a weights file or torchvision weight name).

With several seeds every approach is trained once per seed; tables show mean ± std, and each approach's
difference from the first one comes with a 95 % bootstrap interval over test examples and seeds
(:mod:`multitask.bootstrap`); an interval that contains 0 is marked "n.s." (not significant).

>>> result = compare(config, approaches=("shared", "separate"), seeds=3)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from multitask.bootstrap import Difference, paired_ap_difference, summarize
from multitask.checks import check_options
from multitask.config import RunConfig, apply_overrides, load_config
from multitask.errors import ConfigError, RunDirError, UserError
from multitask.files import atomic_write_text
from multitask.pipeline import load_predictions, resume_run, train_run
from multitask.runs import Run, load_run, new_run_dir, read_json, read_status, write_json
from multitask.tables import LabelTable, check_trainable, read_data

APPROACHES = ("shared", "separate", "groups", "shared_pretrained", "separate_pretrained")


@dataclass
class ApproachResult:
    """Test metrics per task and the cost of one approach, for one seed."""

    name: str
    seed: int
    tasks: dict[str, dict[str, Any]]
    parameters: int
    train_seconds: float
    inference_seconds_per_example: float
    runs: dict[str, str] = field(default_factory=dict)
    """run directory of each task"""

    def metric(self, task: str, key: str = "average_precision") -> float:
        value = self.tasks.get(task, {}).get(key)
        return float("nan") if value is None else float(value)

    def macro(self, key: str = "average_precision") -> float:
        values = np.array([self.metric(t, key) for t in self.tasks], dtype=float)
        return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")

    def test_scores(self, task: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids, labels, probabilities) of the test rows where `task` is known, from the saved predictions."""
        return run_test_scores(self.runs[task], task)


def run_test_scores(run_path: str | Path, task: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, labels, probabilities) of the test rows where `task` is known, from a run's saved predictions."""
    saved = load_predictions(Path(run_path) / "predictions_test.npz")
    j = list(saved["tasks"]).index(task)
    known = saved["known"][:, j]
    return saved["ids"][known], saved["targets"][known, j], saved["probs"][known, j]


def _split_groups(tasks: Sequence[str], groups: Sequence[Sequence[str]] | None) -> list[list[str]]:
    groups = [list(g) for g in (groups or [])]
    listed = [t for g in groups for t in g]
    unknown = sorted(set(listed) - set(tasks))
    if unknown:
        raise ConfigError(f"groups name unknown task(s) {unknown}; tasks are {list(tasks)}")
    duplicated = sorted({t for t in listed if listed.count(t) > 1})
    if duplicated:
        raise ConfigError(f"task(s) {duplicated} appear in more than one group")
    return groups + [[t] for t in tasks if t not in listed]


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _restrict(config: RunConfig, tasks: list[str]) -> RunConfig:
    """The config of a network for a subset of tasks (per-task loss options kept for those tasks)."""
    values: dict[str, Any] = {"data.tasks": tasks,
                              "loss.task_weights": {k: v for k, v in config.loss.task_weights.items() if k in tasks}}
    if isinstance(config.loss.pos_weight, dict):
        values["loss.pos_weight"] = {k: v for k, v in config.loss.pos_weight.items() if k in tasks}
    return apply_overrides(config, values)


def _reuse_or_train(config: RunConfig, table: LabelTable, folder: Path, label: str, report: bool,
                    resume: bool) -> Run:
    """With `resume`: a finished run in `folder` is loaded, an unfinished one continued; otherwise train."""
    if resume and folder.is_dir():
        status = read_status(folder)
        if status is not None and status["status"] == "finished":
            return load_run(folder)
        if status is not None:
            return resume_run(folder, table, label=label, report=report)
    return train_run(config, table, run_dir=folder, label=label, report=report)


def train_groups(name: str, config: RunConfig, table: LabelTable, out: Path, groups: list[list[str]],
                 seed: int, *, report: bool = True, resume: bool = False) -> ApproachResult:
    """One network per group, each on the rows where at least one of its tasks is known."""
    tasks: dict[str, dict[str, Any]] = {}
    runs: dict[str, str] = {}
    params, seconds, infer = 0, 0.0, 0.0
    for group in groups:
        part = table if len(groups) == 1 else table.select_tasks(group, drop_unlabelled=True)
        check_trainable(part)
        label = f"[{name} {'+'.join(group)}] " if len(group) < 4 else f"[{name} {len(group)} tasks] "
        folder = out / name if len(groups) == 1 else out / name / _safe("+".join(group))[:100]
        run = _reuse_or_train(_restrict(config, group) if len(groups) > 1 else config, part, folder, label, report,
                              resume)
        m = run.metrics
        split = "test" if "test" in m else "val"
        tasks.update({t["task"]: t for t in m[split]["tasks"]})
        runs.update({t: str(run.path) for t in group})
        params += m["parameters"]
        seconds += m["train_seconds"]
        infer += m["inference_seconds_per_example"]
    return ApproachResult(name, seed, tasks, params, seconds, infer, runs)


@dataclass
class Comparison:
    """Results of several approaches (one per seed each) on the same data and tasks."""

    tasks: tuple[str, ...]
    results: dict[str, list[ApproachResult]]
    path: Path | None = None
    train_known: dict[str, int] = field(default_factory=dict)
    groups: list[list[str]] = field(default_factory=list)
    n_boot: int = 1000
    _differences: dict[tuple[str, str, str], Difference] = field(default_factory=dict, repr=False)

    @property
    def approaches(self) -> list[str]:
        return list(self.results)

    @property
    def n_seeds(self) -> int:
        return len(next(iter(self.results.values())))

    def values(self, approach: str, task: str | None, key: str = "average_precision") -> np.ndarray:
        """The metric over seeds, for a task or (task None) the macro mean."""
        return np.array([r.macro(key) if task is None else r.metric(task, key) for r in self.results[approach]])

    def mean(self, approach: str, task: str | None, key: str = "average_precision") -> float:
        values = self.values(approach, task, key)
        return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")

    def difference(self, approach: str, task: str | None, base: str | None = None) -> Difference:
        """AP(approach) − AP(base) with its bootstrap interval (base: the first approach; task None: macro mean).

        The macro interval pools the per-task bootstrap resamples (tasks resampled independently).
        """
        base = base or self.approaches[0]
        cache = (approach, task or "", base)
        if cache not in self._differences:
            if task is None:
                samples = [self._ap_samples(approach, t, base) for t in self.tasks]
                stacked = np.nanmean(np.stack([s for s, _ in samples]), axis=0)
                point = float(np.nanmean([d.mean for _, d in samples]))
                self._differences[cache] = summarize(stacked, point)
            else:
                self._differences[cache] = self._ap_samples(approach, task, base)[1]
        return self._differences[cache]

    def _ap_samples(self, approach: str, task: str, base: str) -> tuple[np.ndarray, Difference]:
        ids, y, a_scores, b_scores = None, None, [], []
        for first, second in zip(self.results[base], self.results[approach], strict=True):
            ids_a, y_a, p_a = first.test_scores(task)
            ids_b, _, p_b = second.test_scores(task)
            order = {k: i for i, k in enumerate(ids_b)}
            if set(order) != set(ids_a):
                raise ValueError(f"approaches {base} and {approach} were tested on different rows for {task}")
            ids, y = ids_a, y_a
            a_scores.append(p_a)
            b_scores.append(p_b[[order[k] for k in ids_a]])
        assert ids is not None and y is not None
        key = zlib.crc32(f"{base}/{approach}/{task}".encode())
        return paired_ap_difference(y, np.array(a_scores), np.array(b_scores), n_boot=self.n_boot, seed=key)

    def cell(self, approach: str, task: str | None, key: str) -> str:
        values = self.values(approach, task, key)
        if self.n_seeds == 1:
            return f"{values[0]:.3f}"
        return f"{np.nanmean(values):.3f} ± {np.nanstd(values):.3f}"

    def task_header(self, short: str = "AP", with_ci: bool = True) -> list[str]:
        base = self.approaches[0]
        header = ["task", "train labels"] + [f"{short} {n}" for n in self.approaches]
        if with_ci:
            header += [f"Δ {n} − {base} [95% CI]" for n in self.approaches[1:]]
        else:
            header += [f"Δ {n} − {base}" for n in self.approaches[1:]]
        return header

    def task_rows(self, key: str = "average_precision", with_ci: bool | None = None) -> list[list[str]]:
        """Per task (then the macro mean): each approach's metric and its difference from the first approach.

        For AP the difference comes with its bootstrap interval; other metrics show the mean difference.
        """
        with_ci = key == "average_precision" if with_ci is None else with_ci
        base = self.approaches[0]
        rows = []
        for task in [*self.tasks, None]:
            row = [task or "macro mean", str(self.train_known.get(task, "")) if task else ""]
            row += [self.cell(a, task, key) for a in self.approaches]
            for approach in self.approaches[1:]:
                if with_ci:
                    row.append(str(self.difference(approach, task)))
                else:
                    row.append(f"{self.mean(approach, task, key) - self.mean(base, task, key):+.3f}")
            rows.append(row)
        return rows

    def cost_rows(self) -> list[list[Any]]:
        rows = []
        for name, results in self.results.items():
            rows.append([name, results[0].parameters, float(np.mean([r.train_seconds for r in results])),
                         1000 * float(np.mean([r.inference_seconds_per_example for r in results]))])
        return rows

    def to_dict(self) -> dict[str, Any]:
        summary = {a: {"macro": {k: self.mean(a, None, k) for k in ("average_precision", "roc_auc", "f1")},
                       "tasks": {t: {k: self.mean(a, t, k) for k in ("average_precision", "roc_auc", "f1")}
                                 for t in self.tasks}} for a in self.approaches}
        differences = {a: {t or "macro": asdict(self.difference(a, t)) for t in [*self.tasks, None]}
                       for a in self.approaches[1:]}
        return {"tasks": list(self.tasks), "train_known": self.train_known, "groups": self.groups,
                "seeds": [r.seed for r in next(iter(self.results.values()))], "summary": summary,
                "ap_differences": differences,
                "results": {k: [asdict(r) for r in v] for k, v in self.results.items()}}

    def save(self, path: Path) -> None:
        write_json(path / "comparison.json", self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> Comparison:
        data = json.loads((Path(path) / "comparison.json").read_text())
        results = {k: [ApproachResult(**r) for r in v] for k, v in data["results"].items()}
        return cls(tuple(data["tasks"]), results, Path(path), data.get("train_known", {}), data.get("groups", []))


def compare(
    config: RunConfig,
    table: LabelTable | None = None,
    approaches: Sequence[str] = ("shared", "separate"),
    out_dir: Path | None = None,
    *,
    seeds: int | Sequence[int] = 1,
    groups: Sequence[Sequence[str]] | None = None,
    pretrained: str | None = None,
    report: bool = True,
    n_boot: int = 1000,
    resume: str | Path | None = None,
) -> Comparison:
    """Train every approach (for every seed) on the same data; save comparison.json and a report in out_dir.

    `seeds`: a count (config seed, +1, …) or explicit seeds. `groups`: for the ``groups`` approach.
    `pretrained`: trunk weights for the ``*_pretrained`` approaches. `report=False`: no report.md / plots (for
    the comparison nor its runs). `resume`: an unfinished comparison folder: its saved config and plan are used,
    finished runs reused, unfinished ones continued, the rest trained.
    """
    if resume is not None:
        out_dir = Path(resume)
        plan_file = out_dir / "plan.json"
        if not plan_file.is_file():
            raise RunDirError(f"{plan_file}: missing; {out_dir} is not a comparison folder that can be resumed")
        plan = read_json(plan_file)
        try:
            config = load_config(out_dir / "config.yaml")
            approaches, seeds, groups, pretrained = (plan["approaches"], plan["seeds"], plan["groups"],
                                                     plan["pretrained"])
        except (KeyError, TypeError) as error:
            raise RunDirError(f"{plan_file}: not a comparison plan (missing {error})") from None
        except UserError as error:
            raise RunDirError(f"{out_dir / 'config.yaml'}: {error}") from None
    unknown = [a for a in approaches if a not in APPROACHES]
    if unknown:
        raise ConfigError(f"unknown approach(es) {unknown}; choose from {list(APPROACHES)}")
    if any(a.endswith("_pretrained") for a in approaches) and not pretrained:
        raise ConfigError("the *_pretrained approaches need pretrained trunk weights (--pretrained FILE_OR_NAME)")
    if "groups" in approaches and not groups:
        raise ConfigError("the groups approach needs groups (--groups 'a,b;c,d')")
    if table is None:
        table = read_data(config.data, seed=config.train.seed)
    check_trainable(table)
    check_options(config, table.kind)
    seed_list = list(range(config.train.seed, config.train.seed + seeds)) if isinstance(seeds, int) else list(seeds)
    group_list = _split_groups(table.tasks, groups) if groups else []
    out = out_dir or new_run_dir(config, default_stem=(Path(config.data.path).stem if config.data.path else "data")
                                 + "-compare")
    if resume is None:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "config.yaml", config.to_yaml())
        write_json(out / "plan.json", {"approaches": list(approaches), "seeds": seed_list,
                                       "groups": [list(g) for g in groups or []], "pretrained": pretrained})
    results: dict[str, list[ApproachResult]] = {a: [] for a in approaches}
    for seed in seed_list:
        seeded = apply_overrides(config, {"train.seed": seed})
        folder = out / f"seed{seed}" if len(seed_list) > 1 else out
        for approach in approaches:
            cfg = apply_overrides(seeded, {"model.weights": pretrained}) if approach.endswith("_pretrained") \
                else seeded
            base = approach.removesuffix("_pretrained")
            plan = {"shared": [list(table.tasks)], "separate": [[t] for t in table.tasks], "groups": group_list}[base]
            results[approach].append(train_groups(approach, cfg, table, folder, plan, seed, report=report,
                                                  resume=resume is not None))
    train = table.part("train")
    known = dict(zip(table.tasks, train.known.sum(axis=0).tolist(), strict=True))
    comparison = Comparison(table.tasks, results, out, known, group_list, n_boot)
    comparison.save(out)
    if report:
        from multitask.report import write_comparison_report

        write_comparison_report(comparison, out)
    return comparison
