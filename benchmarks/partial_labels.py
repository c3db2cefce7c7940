"""Partial labels: every unknown-label strategy (`multitask unknowns`) under every hidden-label protocol.

Protocols (multitask.hiding, on the training split; validation and test labels stay complete): RPS p ∈ {0.1,
0.3, 0.5, 0.7, 0.9}, FPC (32 known labels per class), single positive; plus the full-label reference in the
same run. Data: road-sign photos (features of the frozen ImageNet MobileNetV2 trunk, computed once and cached:
fine-tuning the CNN for every cell is out of reach on two CPU cores), yeast, scene, and a generated feature set
with 24 tasks. Test mAP over seeds (mean ± std), paired bootstrap intervals against `ignore`, the accuracy of
self-training's completed labels, and the time per epoch against `ignore`.

    python benchmarks/partial_labels.py                  # the grid, resumable: finished cells are reused
    python benchmarks/partial_labels.py --quick          # a smoke run (1 seed, 2 epochs, yeast + generated)
    python benchmarks/partial_labels.py --report-only    # tables from the finished cells, written to docs

Each cell (data, protocol, strategy, seed) is a run directory under --out and one JSON in --out/cells; a rerun
skips the cells whose JSON exists. Progress: printed, and appended to --out/progress.log.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, SHARED, add_grid_options, markdown_table, write_section  # noqa: E402

ANALYSIS = (
    "### Analysis\n\n"
    'Missing at random (RPS) the known labels are an unbiased sample of the full ones, so `ignore` (the masked '
    'loss) already estimates the full-label loss without bias: the gap to full labels is the price of fewer '
    'labels, not a bias a strategy could remove. A strategy can close it only with information the known labels '
    'do not hold — correlations between labels (self-training completes unknown labels that are 94 % right, yet '
    "the 6 % it gets wrong cost about what the extra labels gain) — or with a better loss shape: `asl`'s small "
    'gains appear at p = 0.1 as well, where little is missing, which points to its focusing rather than to the '
    'unknowns. Everything that reads unknowns as negatives adds a bias that grows with p and with the positive '
    'rate, and loses. With single positive labels the bias is the other way (no negatives at all), so supplying '
    'negatives is what matters (+2 to +16 points); on these sets (4–24 tasks, far fewer positives than tasks per '
    'example) most unknowns are negatives, so plain `negative` is nearly right and the refinements (hill, splc, '
    'EPR, large-loss) add at most 1.8 points — the papers measured their gains on 20–80-class sets with '
    'fine-tuned CNNs. FPC (32 labels per class) is the one protocol where a strategy beats `ignore` significantly '
    'on real data (`asl`, road-sign and scene). Not measured: fine-tuned CNNs on the road-sign photos (the grid '
    'uses frozen features; a fine-tuned cell costs about 10 minutes on this CPU), tuned strategy options.'
)
"""The analysis of the grid as measured (docs/benchmarks.md): rewrite it when the numbers change."""

PRIORITY = ["rps:0.5", "single_positive", "rps:0.1", "rps:0.9", "rps:0.3", "rps:0.7", "fpc:32"]
RPS = ["rps:0.1", "rps:0.3", "rps:0.5", "rps:0.7", "rps:0.9"]
DATASETS = ["roadsign", "yeast", "generated", "scene"]
FULL = "full"


def log(args: argparse.Namespace, text: str) -> None:
    print(text, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "progress.log", "a") as handle:
        handle.write(f"{time.strftime('%H:%M:%S')} {text}\n")


# ------------------------------------------------------------------------------------------------- data
def roadsign_features(args: argparse.Namespace):
    """The road-sign table with each photo replaced by the frozen pretrained MobileNetV2 trunk's 1280 features
    (eval preprocessing at --image-size px), computed once and cached as .npz."""
    from torch import nn

    from multitask.config import build_config
    from multitask.data.datamodule import make_dataset
    from multitask.inference import predict_logits
    from multitask.models.network import build_network
    from multitask.tables import read_data

    data = SHARED / "data" / "roadsign"
    config = build_config({"data": {"path": str(data / "labels.csv"), "images": str(data / "images"),
                                    "image_size": args.image_size, "augment": False},
                           "model": {"trunk": "mobilenet_v2",
                                     "weights": str(SHARED / "models" / "mobilenet_v2-b0353104.pth")}})
    table = read_data(config.data)
    cache = args.out / "cache" / f"roadsign_mobilenet_v2_{args.image_size}px.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as saved:
            if saved["ids"].tolist() == [str(i) for i in table.ids]:
                features = saved["features"]
                return replace(table, images=None, features=features,
                               feature_names=tuple(f"z{i}" for i in range(features.shape[1])))
    network = build_network(config.model, table.n_tasks, 0)

    class Trunk(nn.Module):  # the shared representation through the one inference path
        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(self, x):
            return self.network.representation(x)

    start = time.perf_counter()
    features = predict_logits(Trunk(), make_dataset(table, config.data), batch_size=32, device="cpu")
    log(args, f"roadsign: {len(table)} photos through the frozen trunk in {time.perf_counter() - start:.0f} s")
    cache.parent.mkdir(parents=True, exist_ok=True)
    from multitask.files import atomic_write_with

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, ids=np.array([str(i) for i in table.ids]), features=features)

    atomic_write_with(cache, write)
    return replace(table, images=None, features=features,
                   feature_names=tuple(f"z{i}" for i in range(features.shape[1])))


def generated_table():
    """scikit-learn's make_multilabel_classification: 2400 rows, 40 count features (log1p), 24 tasks, ~3
    positives per row; a seeded 60 / 20 / 20 split (per-task logistic regression: mAP 0.61)."""
    from sklearn.datasets import make_multilabel_classification

    from multitask.tables import label_table_from_arrays

    x, y = make_multilabel_classification(n_samples=2400, n_features=40, n_classes=24, n_labels=3, length=150,
                                          allow_unlabeled=False, random_state=0)
    split = np.random.default_rng(0).choice(["train", "val", "test"], size=len(x), p=[0.6, 0.2, 0.2])
    return label_table_from_arrays(np.log1p(x), y.astype(float), split=split, source="generated")


def dataset(name: str, args: argparse.Namespace):
    if name == "roadsign":
        return roadsign_features(args)
    if name == "generated":
        return generated_table()
    from multitask.data.arff import mulan_table

    return mulan_table(name, SHARED / "data" / "mulan")


def base_config(args: argparse.Namespace, seed: int, strategy: str, options: dict):
    from multitask.config import build_config

    return build_config({
        "model": {"trunk": "mlp", "trunk_options": {"hidden": [256], "dropout": 0.2}, "select": "off"},
        "loss": {"unknown": strategy, "unknown_options": options},
        "train": {"epochs": args.epochs, "batch_size": 256, "lr": 3e-3, "weight_decay": 1e-4, "patience": 5,
                  "patience_steps": 0, "seed": seed, "progress": False, "logger": "csv"},
        "root": str(args.out)})


# ------------------------------------------------------------------------------------------------ cells
def kept_tasks(table, protocol: str) -> list[str]:
    """Tasks with a known positive in the training split (and a known negative, except for single positive)."""
    n_known, positives = table.task_counts("train")
    need_negative = protocol != "single_positive"
    return [t for j, t in enumerate(table.tasks)
            if positives[j] > 0 and (not need_negative or n_known[j] > positives[j])]


def cell_path(args: argparse.Namespace, data: str, protocol: str, strategy: str, seed: int) -> Path:
    return args.out / "cells" / f"{data}__{protocol.replace(':', '')}__{strategy}__seed{seed}.json"


def run_cell(args: argparse.Namespace, data: str, table, protocol: str, strategy: str, seed: int) -> dict:
    from multitask.hiding import hide_labels
    from multitask.pipeline import train_run

    path = cell_path(args, data, protocol, strategy, seed)
    if path.is_file():
        return json.loads(path.read_text())
    hidden = None if protocol == FULL else hide_labels(table, protocol, seed=seed, splits=("train",))
    part = table if hidden is None else hidden.table
    tasks = kept_tasks(part, protocol)
    cols = [table.tasks.index(t) for t in tasks]
    part = part.select_tasks(tasks)
    options: dict = {}
    if strategy == "epr" and protocol == "single_positive":  # Cole et al. take k as known: the true mean
        train = table.part("train").select_tasks(tasks)
        options = {"expected_positives": float(((train.targets > 0.5) & train.known).sum(axis=1).mean())}
    config = base_config(args, seed, strategy, options)
    run_dir = args.out / data / protocol.replace(":", "") / strategy / f"seed{seed}"
    start = time.perf_counter()
    run = train_run(config, part, run_dir=run_dir, quiet=True, report=False)
    wall = time.perf_counter() - start
    m = run.metrics
    row = {"data": data, "protocol": protocol, "strategy": strategy, "seed": seed, "tasks": tasks,
           "map": m["test"]["macro"]["average_precision"], "test_tasks": m["test"]["tasks"], "run": str(run_dir),
           "train_seconds": m["train_seconds"], "epochs": m["epochs"],
           "epoch_seconds": m["train_seconds"] / max(m["epochs"], 1), "wall_seconds": wall,
           "parameters": m["parameters"], "inference": m["inference_seconds_per_example"]}
    if strategy == "self_training" and hidden is not None:
        row["completion"] = completion_score(row, hidden, cols)
    path.parent.mkdir(parents=True, exist_ok=True)
    from multitask.files import atomic_write_text

    atomic_write_text(path, json.dumps(row))
    return row


def completion_score(row: dict, hidden, cols: list[int]) -> dict | None:
    """Self-training's completed labels (its last round's file) against the hidden truth of the cell."""
    from multitask.unknown.self_training import Completion

    rounds = sorted((Path(row["run"]) / "self_training").glob("round*/completed.npz"))
    if not rounds:
        return None
    with np.load(rounds[-1]) as saved:
        completed, targets = saved["completed"], saved["targets"]
    return Completion(completed, np.where(completed, targets, 0.0)).accuracy(hidden.hidden[:, cols],
                                                                             hidden.values[:, cols])


def rescore_completions(args: argparse.Namespace, rows: list[dict], tables: dict) -> None:
    """Recompute every self-training cell's completion score from its run directory (the protocol is seeded)."""
    from multitask.hiding import hide_labels

    for row in rows:
        if row["strategy"] != "self_training" or row["protocol"] == FULL:
            continue
        if row["data"] not in tables:
            tables[row["data"]] = dataset(row["data"], args)
        table = tables[row["data"]]
        hidden = hide_labels(table, row["protocol"], seed=row["seed"], splits=("train",))
        row["completion"] = completion_score(row, hidden, [table.tasks.index(t) for t in row["tasks"]])


def grid(args: argparse.Namespace) -> list[tuple[str, str, str, int]]:
    """Every cell, most important first: RPS 0.5 and single positive on every data set before the rest."""
    cells = []
    for protocol in args.protocols:
        for data in args.datasets:
            for seed in range(args.seeds):
                if (data, FULL, "ignore", seed) not in cells:
                    cells.append((data, FULL, "ignore", seed))
                cells += [(data, protocol, s, seed) for s in args.strategies]
    return cells


# ---------------------------------------------------------------------------------------------- report
def approach(row: dict):
    from multitask.compare import ApproachResult

    tasks = {t["task"]: t for t in row["test_tasks"] if t["task"] in row["tasks"]}
    return ApproachResult(row["strategy"], row["seed"], tasks, row["parameters"], row["train_seconds"],
                          row["inference"], {t: row["run"] for t in tasks})


def summarize(args: argparse.Namespace, rows: list[dict]) -> tuple[str, dict]:
    from multitask.compare import Comparison

    by = {(r["data"], r["protocol"], r["strategy"], r["seed"]): r for r in rows}
    numbers: dict = {}
    sections = []
    protocols = [p for p in [*RPS, "fpc:32", "single_positive"] if p in args.protocols]
    for data in args.datasets:
        table_rows, diff_rows = [], []
        full = [by[(data, FULL, "ignore", s)] for s in range(args.seeds) if (data, FULL, "ignore", s) in by]
        for strategy in args.strategies:
            cells, diffs = [], []
            for protocol in protocols:
                got = [by[(data, protocol, strategy, s)] for s in range(args.seeds)
                       if (data, protocol, strategy, s) in by]
                base = [by[(data, protocol, "ignore", s)] for s in range(args.seeds)
                        if (data, protocol, "ignore", s) in by]
                if not got:
                    cells.append("—")
                    diffs.append("—")
                    continue
                values = np.array([r["map"] for r in got])
                numbers[(data, protocol, strategy)] = values
                cells.append(f"{values.mean():.3f} ± {values.std():.3f}" + ("" if len(got) == args.seeds
                                                                           else f" ({len(got)})"))
                if strategy == "ignore" or len(base) != len(got):
                    diffs.append("")
                    continue
                tasks = tuple(got[0]["tasks"])
                if any(tuple(r["tasks"]) != tasks for r in got + base):  # tasks dropped differ by seed
                    diffs.append("(tasks differ)")
                    continue
                comparison = Comparison(tasks, {"ignore": [approach(r) for r in base],
                                                strategy: [approach(r) for r in got]}, n_boot=args.n_boot)
                difference = comparison.difference(strategy, None, base="ignore")
                numbers[(data, protocol, strategy, "diff")] = difference
                diffs.append(str(difference))
            table_rows.append([f"`{strategy}`", *cells])
            if strategy != "ignore":
                diff_rows.append([f"`{strategy}`", *diffs])
        if full:
            values = np.array([r["map"] for r in full])
            numbers[(data, FULL)] = values
            table_rows.append(["full labels (reference)", *[f"{values.mean():.3f} ± {values.std():.3f}"] * 1,
                               *[""] * (len(protocols) - 1)])
        completion = []
        for protocol in protocols:
            scores = [by[(data, protocol, "self_training", s)].get("completion") for s in range(args.seeds)
                      if (data, protocol, "self_training", s) in by]
            scores = [s for s in scores if s]
            if scores:
                acc = [s["accuracy"] for s in scores if s["accuracy"] is not None]
                completion.append(f"{protocol}: {np.mean([s['completed'] for s in scores]):.0f} labels completed, "
                                  + (f"accuracy {np.mean(acc):.3f}" if acc else "none scored"))
        times = {}
        for strategy in args.strategies:
            ratios = []
            for (d, protocol, s, seed), r in by.items():
                if d == data and s == strategy and (d, protocol, "ignore", seed) in by and protocol != FULL:
                    ratios.append(r["epoch_seconds"] / by[(d, protocol, "ignore", seed)]["epoch_seconds"])
            walls = [r["wall_seconds"] / by[(d, p, "ignore", sd)]["wall_seconds"] for (d, p, s, sd), r in by.items()
                     if d == data and s == strategy and (d, p, "ignore", sd) in by and p != FULL]
            if ratios:
                times[strategy] = (float(np.median(ratios)), float(np.median(walls)))
                numbers[(data, "time", strategy)] = times[strategy]
        header = ["strategy", *[p.replace("single_positive", "single positive") for p in protocols]]
        parts = [f"### {data}", "Test mAP (mean ± std over seeds; the full-label reference in the first column).",
                 markdown_table(header, table_rows),
                 "Paired bootstrap difference against `ignore` (mAP, 95 % interval, * = excludes 0):",
                 markdown_table(header, diff_rows)]
        if times:
            parts.append("Time against `ignore` (median ratio over the cells, each timed on its own while other "
                         "jobs shared the two cores, so only large differences mean anything): " + "; ".join(
                f"`{s}` {e:.2f}× per epoch, {w:.2f}× per run" for s, (e, w) in times.items() if s != "ignore") + ".")
        if completion:
            parts.append("Self-training's completed labels, scored against the hidden truth: " + "; ".join(completion)
                         + ".")
        sections.append("\n\n".join(parts))
    return "\n\n".join(sections), numbers


def targets(args: argparse.Namespace, numbers: dict) -> str:
    lines = []
    for data in ("roadsign", "yeast"):
        full, ignore = numbers.get((data, FULL)), numbers.get((data, "rps:0.5", "ignore"))
        if full is None or ignore is None:
            lines.append(f"- RPS p = 0.5, {data}: not measured.")
            continue
        best = max(((s, numbers[(data, "rps:0.5", s)].mean()) for s in args.strategies
                    if (data, "rps:0.5", s) in numbers), key=lambda x: x[1])
        gap = full.mean() - ignore.mean()
        recovered = (best[1] - ignore.mean()) / gap if gap > 0 else float("nan")
        met = "met" if gap > 0 and recovered >= 0.5 else "missed"
        lines.append(f"- RPS p = 0.5, {data}: gap ignore → full {100 * gap:.2f} mAP points; best `{best[0]}` "
                     f"recovers {100 * recovered:.0f} % of it — **{met}** (target ≥ 50 %).")
    for data in ("roadsign", "generated"):
        if (data, "single_positive", "ignore") not in numbers or (data, "single_positive", "negative") not in numbers:
            lines.append(f"- Single positive, {data}: not measured.")
            continue
        best = max(((s, numbers[(data, "single_positive", s)].mean()) for s in args.strategies
                    if (data, "single_positive", s) in numbers and s not in ("ignore", "negative")),
                   key=lambda x: x[1])
        margin = 100 * (best[1] - max(numbers[(data, "single_positive", "ignore")].mean(),
                                      numbers[(data, "single_positive", "negative")].mean()))
        lines.append(f"- Single positive, {data}: best `{best[0]}` is {margin:+.2f} mAP points over the better of "
                     f"ignore and negative — **{'met' if margin >= 5 else 'missed'}** (target ≥ +5).")
    timing_file = args.out / "timing.json"
    if timing_file.is_file():
        timing = json.loads(timing_file.read_text())
        worst = [(d, s, v["ratio"]) for d, row in timing.items() for s, v in row.items()]
        over = [f"`{s}` on {d} ({r:.2f}×)" for d, s, r in worst if r > 1.3]
        lines.append("- Epoch time ≤ 1.3× ignore's (training steps of every strategy interleaved in one process, "
                     "`--timing`; median step time over 300 rounds): " +
                     ("**met** for every strategy" if not over else "**missed** by " + ", ".join(over)) +
                     f"; largest ratio {max(r for _, _, r in worst):.2f}× (" + "; ".join(
                         f"{d}: " + ", ".join(f"`{s}` {v['ratio']:.2f}×" for s, v in row.items() if s != "ignore")
                         for d, row in timing.items()) + "). `self_training` has ignore's epoch but trains "
                     "`rounds` (3) times, so its whole run costs about 3× ignore's (the whole-run ratios below).")
    else:
        lines.append("- Epoch time: not measured (`python benchmarks/partial_labels.py --timing`).")
    return "\n".join(lines)


def step_times(args: argparse.Namespace, repeats: int = 300) -> dict:
    """Seconds per training step (forward, strategy loss, backward, AdamW step) of every strategy, interleaved
    in this one process on the same batch (a new random order every round), so that the machine's load hits all
    alike; per data set, the median over `repeats` rounds, and the ratio to ignore's."""
    import torch

    from multitask.config import ModelConfig
    from multitask.models.network import build_network
    from multitask.unknown import build_unknown

    out = {}
    for data in ("yeast", "generated"):
        table = dataset(data, args).part("train")
        hidden = np.random.default_rng(0).random(table.known.shape) < 0.5
        x = torch.from_numpy(table.features[:256])
        y = torch.from_numpy(table.targets[:256])
        known = torch.from_numpy((table.known & ~hidden)[:256])
        torch.manual_seed(0)
        network = build_network(ModelConfig(trunk="mlp", trunk_options={"hidden": [256], "dropout": 0.2}),
                                table.n_tasks, table.n_features)
        optimizer = torch.optim.AdamW(network.parameters(), lr=1e-4)
        strategies = {name: build_unknown(name, table.n_tasks) for name in args.strategies}
        for strategy in strategies.values():
            strategy.prepare(y, known)
            strategy.start_epoch(3, 15)
        times: dict[str, list[float]] = {name: [] for name in strategies}
        order = np.random.default_rng(0)
        names = list(strategies)
        for _ in range(repeats):
            for name in order.permutation(names):
                strategy = strategies[name]
                start = time.perf_counter()
                losses, _ = strategy(network(x), y, known)
                optimizer.zero_grad()
                losses.sum().backward()
                optimizer.step()
                times[name].append(time.perf_counter() - start)
        median = {name: float(np.median(v)) for name, v in times.items()}
        out[data] = {name: {"seconds": median[name], "ratio": median[name] / median["ignore"]} for name in median}
    return out


def plot(args: argparse.Namespace, numbers: dict) -> Path:
    from multitask.report import new_figure, save_figure

    fig = new_figure(figsize=(4.2 * len(args.datasets), 4.0))
    axes = fig.subplots(1, len(args.datasets), squeeze=False)[0]
    xs = [float(p.split(":")[1]) for p in RPS if p in args.protocols]
    for axis, data in zip(axes, args.datasets, strict=True):
        for strategy in args.strategies:
            ys = [numbers[(data, p, strategy)].mean() if (data, p, strategy) in numbers else np.nan
                  for p in RPS if p in args.protocols]
            done = [(100 * x, y) for x, y in zip(xs, ys, strict=True) if np.isfinite(y)]  # unfinished: skipped
            axis.plot([x for x, _ in done], [y for _, y in done], marker="o", markersize=3, label=strategy,
                      linewidth=2.2 if strategy == "ignore" else 1.0)
        if (data, FULL) in numbers:
            axis.axhline(numbers[(data, FULL)].mean(), color="black", linestyle="--", linewidth=1, label="full labels")
        axis.set_title(data)
        axis.set_xlabel("RPS: training labels hidden (%)")
        axis.set_ylabel("test mAP")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=7, fontsize=7)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    path = ROOT / "docs" / "plots" / "partial_labels.png"
    save_figure(fig, path, dpi=100)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--protocols", default=",".join(PRIORITY))
    parser.add_argument("--strategies", default=None, help="default: every registered strategy")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--image-size", type=int, default=160)
    add_grid_options(parser, "bench-partial", n_boot=500)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 seed, 2 epochs, yeast + generated")
    parser.add_argument("--report-only", action="store_true", help="tables from the finished cells only")
    parser.add_argument("--timing", action="store_true", help="measure the step time of every strategy (and stop)")
    args = parser.parse_args()

    import torch

    from multitask.unknown import UNKNOWNS

    torch.set_num_threads(args.threads)
    names = UNKNOWNS.names()
    args.strategies = args.strategies.split(",") if args.strategies else ["ignore"] + [n for n in names
                                                                                      if n != "ignore"]
    args.datasets = args.datasets.split(",")
    args.protocols = args.protocols.split(",")
    if args.quick:
        args.seeds, args.epochs, args.out = 1, 2, args.out.with_name(args.out.name + "-quick")
        args.datasets = [d for d in args.datasets if d in ("yeast", "generated")]
        args.protocols = ["rps:0.5", "single_positive"]
    if args.timing:
        timing = step_times(args)
        from multitask.files import atomic_write_text

        atomic_write_text(args.out / "timing.json", json.dumps(timing, indent=1))
        print(json.dumps(timing, indent=1))
        return
    cells = grid(args)
    rows = []
    tables: dict = {}
    start = time.perf_counter()
    for number, (data, protocol, strategy, seed) in enumerate(cells, 1):
        path = cell_path(args, data, protocol, strategy, seed)
        if args.report_only or path.is_file():
            if path.is_file():
                rows.append(json.loads(path.read_text()))
            continue
        if data not in tables:
            tables[data] = dataset(data, args)
        row = run_cell(args, data, tables[data], protocol, strategy, seed)
        rows.append(row)
        log(args, f"[{number}/{len(cells)} {time.perf_counter() - start:.0f}s] {data} {protocol} {strategy} "
                  f"seed {seed}: mAP {row['map']:.4f}, {row['epochs']} epochs, {row['epoch_seconds']:.3f} s/epoch"
                  + (f", completion {row['completion']}" if "completion" in row else ""))
    rescore_completions(args, rows, tables)
    body, numbers = summarize(args, rows)
    done = sum(1 for c in cells if cell_path(args, *c).is_file())
    figure = plot(args, numbers)
    text = "\n\n".join([
        "## Partial labels: unknown-label strategies under hidden-label protocols",
        "Protocols (`multitask.hiding`) hide labels of the training split only; validation (early stopping, "
        "thresholds, self-training's confidence threshold) and test labels stay complete. Road-sign: the frozen "
        f"ImageNet MobileNetV2 trunk's features ({args.image_size} px, computed once and cached) under an MLP head, "
        "not a fine-tuned CNN (the grid of fine-tuned CNNs does not fit two CPU cores), so its numbers sit below "
        "the fine-tuned ones of the hidden-label section. Every data set: MLP 256 (dropout 0.2), batch 256, "
        f"AdamW 3e-3, at most {args.epochs} epochs, early stopping (patience 5) on validation mAP, "
        "`model.select: off`; strategies at their defaults (EPR under single positive given the true mean number "
        "of positives per example, as Cole et al. do). FPC keeps 32 known labels per class. A task left with no "
        "known positive (or, except under single positive, no known negative) in the training split is left out "
        "of that protocol for every strategy. "
        f"{done} of {len(cells)} cells finished ({args.seeds} seeds).",
        "### Targets", targets(args, numbers), ANALYSIS, body,
        f"![mAP against the hidden fraction]({figure.relative_to(ROOT / 'docs').as_posix()})"])
    print(text)
    if not args.quick:
        write_section("partial", text, "python benchmarks/partial_labels.py")


if __name__ == "__main__":
    main()
