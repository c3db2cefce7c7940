"""Helpers shared by the experiment scripts: one CPU thread, cached data sets, comparisons without per-run
reports, the advisor before training, the measured winner, and the sections of docs/experiments.md.

Every script imports this module first: it pins torch (and OpenMP) to ONE thread before torch is imported,
because on a busy 2-core machine two threads make small networks 15-20x slower.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

from multitask.bootstrap import Difference  # noqa: E402
from multitask.doc_sections import git_revision, machine  # noqa: E402
from multitask.doc_sections import text_table as markdown_table  # noqa: E402,F401  (the scripts' tables)
from multitask.doc_sections import write_section as write_doc_section  # noqa: E402
from multitask.report import new_figure, save_figure  # noqa: E402,F401  (new_figure: the scripts' figures)

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "runs" / "experiments"
DOC = ROOT / "docs" / "experiments.md"
PLOTS = ROOT / "docs" / "plots"
SHARED = ROOT.parent / "shared"
ROADSIGN = SHARED / "data" / "roadsign"
MOBILENET = SHARED / "models" / "mobilenet_v2-b0353104.pth"

SHARED_NET, SEPARATE, GROUPS, TRANSFER = "shared", "separate", "groups", "transfer"


# ------------------------------------------------------------------------------------------------ machine


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ------------------------------------------------------------------------------------------------ data


def scenes(name: str, **options: Any) -> Path:
    """labels.csv of a generated road-scene set in runs/experiments/data/<name>, generated once per options.

    >>> scenes("tiny", n_images=20, image_size=16)  # doctest: +SKIP
    """
    from multitask.data.generators import generate_road_scenes

    out = RUNS / "data" / name
    stamp = out / "options.json"
    wanted = json.dumps(options, sort_keys=True)
    if (out / "labels.csv").exists() and stamp.exists() and stamp.read_text() == wanted:
        return out / "labels.csv"
    start = time.perf_counter()
    path = generate_road_scenes(out, **options)
    stamp.write_text(wanted)
    log(f"generated {name}: {options.get('n_images')} images in {time.perf_counter() - start:.0f} s")
    return path


def fresh(path: Path) -> Path:
    """An empty output folder (runs of an earlier call removed, so every number comes from this call)."""
    import shutil

    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def read(path: Path, tasks: Sequence[str] | None = None):
    from multitask.config import build_config
    from multitask.tables import read_data

    config = build_config({"data": {"path": str(path), "tasks": list(tasks) if tasks else None}})
    return read_data(config.data)


def keep_known(table, task: str, fraction: float, seed: int, splits: Sequence[str] = ("train", "val")):
    """Hide all but a seeded random `fraction` of one task's known labels in `splits` (the others untouched)."""
    from dataclasses import replace

    j = table.tasks.index(task)
    rng = np.random.default_rng([seed, 97])
    eligible = table.known[:, j] & np.isin(table.split, list(splits))
    hide = eligible & (rng.random(len(table)) >= fraction)
    known = table.known.copy()
    known[:, j] &= ~hide
    targets = np.where(known, table.targets, 0.0).astype(np.float32)
    return replace(table, known=known, targets=targets)


def image_config(out: Path, *, width: int = 8, depth: int = 3, epochs: int = 10, image_size: int = 32,
                 batch_size: int = 64, **sections: dict[str, Any]):
    """The small-CNN configuration the road-scene experiments share (no augmentation: 32-px scenes, CPU)."""
    from multitask.config import build_config

    values: dict[str, Any] = {
        "root": str(out),
        "data": {"image_size": image_size, "augment": False, "num_workers": 0},
        "model": {"trunk": "small_cnn", "trunk_options": {"width": width, "depth": depth}},
        "train": {"epochs": epochs, "batch_size": batch_size, "lr": 3e-3, "patience": None, "progress": False,
                  "accelerator": "cpu", "devices": 1},
    }
    for section, extra in sections.items():
        values.setdefault(section, {}).update(extra)
    return build_config(values)


# ------------------------------------------------------------------------------------------------ training


@contextlib.contextmanager
def quiet_runs(logfile: Path | None = None) -> Iterator[None]:
    """Per-epoch lines into `logfile` instead of the terminal (the runs themselves are asked for no report:
    ``report=False``, two matplotlib plots per run would cost a second each, 100 s for 100 separate networks)."""
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink):
            yield
    finally:
        if logfile is not None:
            logfile.parent.mkdir(parents=True, exist_ok=True)
            with logfile.open("a") as f:
                f.write(sink.getvalue())


def run_compare(config, table, approaches: Sequence[str], out: Path, *, seeds: Sequence[int],
                groups: Sequence[Sequence[str]] | None = None):
    """multitask.compare.compare, one call per approach (each timed, wall clock), merged into one Comparison.

    Returns (comparison, wall seconds per approach, summed over seeds).
    """
    from multitask.compare import Comparison, compare

    results, walls, first = {}, {}, None
    for approach in approaches:
        start = time.perf_counter()
        with quiet_runs(out / "epochs.log"):
            part = compare(config, table, approaches=(approach,), out_dir=out / approach, seeds=list(seeds),
                           groups=groups if approach == GROUPS else None, report=False)
        walls[approach] = time.perf_counter() - start
        results[approach] = part.results[approach]
        first = first or part
        log(f"  {approach}: mAP {part.mean(approach, None):.4f} ({walls[approach]:.0f} s)")
    assert first is not None
    comparison = Comparison(first.tasks, results, out, first.train_known, first.groups)
    comparison.save(out)
    return comparison, walls


def train_single(config, table, out: Path, seed: int, **overrides: Any):
    """One run (quiet, no report) with the seed and dotted overrides; returns the Run."""
    from multitask.config import apply_overrides
    from multitask.pipeline import train_run

    cfg = apply_overrides(config, {"train.seed": seed, **overrides})
    with quiet_runs(out.parent / "epochs.log"):
        return train_run(cfg, table, run_dir=out, quiet=True, report=False)


def paired_difference(runs_a: Sequence[Path], runs_b: Sequence[Path], task: str, n_boot: int = 1000):
    """AP(b) − AP(a) on one task with the bootstrap interval over test examples and seeds (one run per seed)."""
    import zlib

    from multitask.bootstrap import paired_ap_difference
    from multitask.compare import run_test_scores

    a_scores, b_scores, y, ids = [], [], None, None
    for ra, rb in zip(runs_a, runs_b, strict=True):
        ids_a, y_a, p_a = run_test_scores(ra, task)
        ids_b, _, p_b = run_test_scores(rb, task)
        order = {k: i for i, k in enumerate(ids_b)}
        a_scores.append(p_a)
        b_scores.append(p_b[[order[k] for k in ids_a]])
        y, ids = y_a, ids_a
    assert y is not None and ids is not None
    return paired_ap_difference(y, np.array(a_scores), np.array(b_scores), n_boot=n_boot,
                                seed=zlib.crc32(f"{task}/{runs_b[0]}".encode()))[1]


def test_ap(run_path: Path, task: str) -> float:
    from sklearn.metrics import average_precision_score

    from multitask.compare import run_test_scores

    _, y, p = run_test_scores(run_path, task)
    return float(average_precision_score(y, p))


# ------------------------------------------------------------------------------------------------ verdicts


def diff_dict(d) -> dict[str, Any]:
    return {**asdict(d), "significant": d.significant}


def fmt_diff(d: dict[str, Any] | Difference) -> str:
    """The library's way of writing a difference (Difference.__str__), also for one saved as JSON."""
    return str(d if isinstance(d, Difference) else Difference(d["mean"], d["low"], d["high"]))


def shared_vs_separate_winner(diff: dict[str, Any]) -> str:
    """The measured winner from Δ = AP(separate) − AP(shared) with its 95 % interval: separate networks win only
    when they are significantly better; otherwise the shared network wins (as good, and T times cheaper)."""
    return SEPARATE if diff["significant"] and diff["mean"] > 0 else SHARED_NET


COST_ORDER = (SHARED_NET, GROUPS, SEPARATE)
"""Approaches from the cheapest (one network) to the dearest (one network per task)."""


def pair_difference(comparison, a: str, b: str, task: str | None = None) -> dict[str, Any]:
    """AP(b) − AP(a) with its bootstrap interval, for any two approaches of a Comparison (macro: task None)."""
    from multitask.compare import Comparison

    sub = Comparison(comparison.tasks, {a: comparison.results[a], b: comparison.results[b]}, comparison.path,
                     comparison.train_known)
    return diff_dict(sub.difference(b, task))


def measured_winner(comparison, task: str | None = None) -> str:
    """The cheapest approach whose mAP (or AP on `task`) is not significantly below the best approach's.

    With shared and separate only: separate wins when significantly better, else the shared network.
    """
    present = [a for a in COST_ORDER if a in comparison.results]
    best = max(present, key=lambda a: comparison.mean(a, task))
    for a in present:
        if a == best:
            return a
        d = pair_difference(comparison, a, best, task)
        if not (d["significant"] and d["mean"] > 0):
            return a
    return best


def comparison_numbers(comparison, walls: dict[str, float] | None = None) -> dict[str, Any]:
    """What the docs need from a Comparison: per-approach mAP (mean and per seed), per-task AP, the difference
    of every approach from the first with its interval (macro and per task), and costs."""
    base = comparison.approaches[0]
    out: dict[str, Any] = {"tasks": list(comparison.tasks), "train_known": comparison.train_known,
                           "seeds": [r.seed for r in comparison.results[base]], "approaches": {}}
    for a in comparison.approaches:
        results = comparison.results[a]
        entry: dict[str, Any] = {
            "map": comparison.mean(a, None), "map_per_seed": comparison.values(a, None).tolist(),
            "task_ap": {t: comparison.mean(a, t) for t in comparison.tasks},
            "parameters": results[0].parameters,
            "networks": len(set(results[0].runs.values())),
            "train_seconds": float(np.mean([r.train_seconds for r in results])),
            "inference_ms_per_example": 1000 * float(np.mean([r.inference_seconds_per_example for r in results])),
        }
        if walls:
            entry["wall_seconds_all_seeds"] = walls.get(a)
        if a != base:
            entry["difference"] = diff_dict(comparison.difference(a, None))
            entry["task_difference"] = {t: diff_dict(comparison.difference(a, t)) for t in comparison.tasks}
        out["approaches"][a] = entry
    return out


# ------------------------------------------------------------------------------------------------ advisor

PROBE = {"threads": 1}
"""The advisor as shipped (probe ≤ 200 steps / 45 s, capacity check ≤ 30 s), on one thread."""


def run_advice(config, table, out: Path, **options: Any) -> dict[str, Any]:
    """advise() on the training data before any training; the call, the per-task calls and the key numbers."""
    from multitask.advise import advise

    start = time.perf_counter()
    advice = advise(config, table, out_dir=out, **{**PROBE, **options})
    r = np.array(advice.relatedness, dtype=float)
    off = r[~np.eye(len(r), dtype=bool)] if len(r) > 1 else np.array([])
    summary = {
        "recommendation": advice.recommendation,
        "calls": {a.task: a.call for a in advice.task_advice},
        "sources": {a.task: a.source for a in advice.task_advice if a.source},
        "groups": advice.groups,
        "task_groups": {a.task: a.group for a in advice.task_advice},
        "reasons": advice.reasons,
        "relatedness_median": float(np.nanmedian(off)) if np.isfinite(off).any() else None,
        "relatedness_min": float(np.nanmin(off)) if np.isfinite(off).any() else None,
        "relatedness_max": float(np.nanmax(off)) if np.isfinite(off).any() else None,
        "capacity_flagged": [c["task"] for c in advice.capacity if c.get("flagged")],
        "seconds": time.perf_counter() - start,
        "path": str(out),
    }
    log(f"  advisor: {advice.recommendation} ({summary['seconds']:.0f} s; relatedness median "
        f"{summary['relatedness_median']})")
    return summary


def compare_groups(advice: dict[str, Any]) -> list[list[str]]:
    """The groups the advice asks to share a network (tasks whose call is shared or per-group, by group), for the
    comparison's ``groups`` approach; every other task trains alone there."""
    from multitask.advise import CALL_GROUPS, CALL_SHARED

    groups: dict[int, list[str]] = {}
    for task, call in advice["calls"].items():
        if call in (CALL_SHARED, CALL_GROUPS):
            groups.setdefault(advice["task_groups"][task], []).append(task)
    return [g for g in groups.values() if len(g) >= 2]


def plan(advice: dict[str, Any] | None) -> tuple[list[str], list[list[str]] | None]:
    """The approaches to train (shared and separate, and the advice's groups when it recommends groups)."""
    if advice and approach_of_call(advice["recommendation"]) == GROUPS and compare_groups(advice):
        return [SHARED_NET, GROUPS, SEPARATE], compare_groups(advice)
    return [SHARED_NET, SEPARATE], None


def approach_of_call(call: str) -> str:
    """The approach an advisor call stands for."""
    from multitask.advise import CALL_GROUPS, CALL_SEPARATE, CALL_SHARED, CALL_TRANSFER

    return {CALL_SHARED: SHARED_NET, CALL_SEPARATE: SEPARATE, CALL_GROUPS: GROUPS, CALL_TRANSFER: TRANSFER}[call]


# ------------------------------------------------------------------------------------------------ output


def add_doc_options(parser: Any) -> None:
    """--no-doc (run, write nothing to docs) and --doc-only (rewrite the section from the saved JSON)."""
    parser.add_argument("--no-doc", action="store_true")
    parser.add_argument("--doc-only", action="store_true", help="rewrite the doc section from the saved JSON")


def rewrite_doc_only(args: Any, name: str, write_doc: Any) -> bool:
    """With --doc-only: rewrite experiment `name`'s section from runs/experiments/NAME.json; True if it did."""
    if not args.doc_only:
        return False
    data = load_json(name)
    if data is None:
        raise SystemExit(f"no runs/experiments/{name}.json: run the experiment first")
    write_doc(data)
    return True


def save_json(name: str, data: dict[str, Any]) -> Path:
    path = RUNS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=lambda v: v.item() if hasattr(v, "item") else str(v)))
    return path


def load_json(name: str) -> dict[str, Any] | None:
    path = RUNS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def groups_note(numbers: dict[str, Any]) -> str:
    """' (groups: mAP …, Δ …)' when the groups approach was trained, else ''."""
    g = numbers["approaches"].get(GROUPS)
    return "" if not g else f" (groups {g['map']:.3f}, Δ groups − shared {fmt_diff(g['difference'])})"


DOC_HEADER = """# Experiments: when does one shared network beat separate networks?

Five experiments on the claims of the multi-task lecture, and a check of `multitask advise` against them. Every
section below was written by the script named in it (the numbers are real runs on the machine named there);
`.venv/bin/python experiments/run_all.py` reruns all of them and rewrites this page. Raw numbers: JSON in
`runs/experiments/` (not committed).
"""

ORDER = ["summary", "setup", "a", "b", "c", "d", "e", "advisor", "suite", "runtime"]


def write_section(name: str, body: str, command: str | None = None, seconds: float | None = None) -> None:
    """Replace (or insert, in ORDER) the section `name` of docs/experiments.md, with its command and machine."""
    footer = ""
    if command and command.startswith("python "):
        command = ".venv/bin/" + command
    if command:
        footer = f"\n\nReproduce: `{command}`" + (f" ({seconds / 60:.1f} min)" if seconds else "") + \
            f" — measured on {machine()}, commit {git_revision(ROOT)} + working tree."
    write_doc_section(DOC, name, body, footer, header=DOC_HEADER, order=ORDER)


def plot_path(name: str) -> Path:
    PLOTS.mkdir(parents=True, exist_ok=True)
    return PLOTS / f"experiments_{name}.png"


def save_plot(figure: Any, name: str) -> Path:
    """docs/plots/experiments_<name>.png from a figure of :func:`new_figure` (the library's Agg canvas)."""
    figure.tight_layout()
    return save_figure(figure, plot_path(name), dpi=110)
