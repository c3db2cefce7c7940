"""Unknown labels: hide 0 / 30 / 50 / 70 / 90 % of the training and validation labels at random (seeded) and
train (i) the shared network with the masked loss, (ii) the shared network treating unknown as negative,
(iii) separate networks on each task's known labels. Test labels stay known. Road-sign photos and yeast.

    python benchmarks/hidden_labels.py                 # writes docs/benchmarks.md and docs/plots/hidden_labels.png
    python benchmarks/hidden_labels.py --datasets yeast --fractions 0,0.5 --seeds 1
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, SHARED, markdown_table, write_section  # noqa: E402

APPROACHES = {"masked": "masked loss (unknown drops out)",
              "masked_known": "masked loss, each task normalised by its known labels",
              "negative": "unknown treated as negative", "separate": "separate networks (known labels)",
              "rows": "masked loss, the same label count as whole rows (all labels of fewer examples)"}

LEGEND = {"masked": "masked", "masked_known": "masked, known-label norm.", "negative": "unknown = negative",
          "separate": "separate networks", "rows": "whole rows, same label count"}

ANALYSIS = """Reading the curves: every road-sign photo has all four labels, so hiding a fraction of them removes that
fraction of the supervision, with no redundancy to fall back on (527 training photos). The whole-rows curve is the
fair reference for the masked loss: the same number of known labels, but as complete rows (what a tool without unknown
labels could use). The masked loss matches or beats it at 30 and 50 % hidden on both data sets (and at 70 % on yeast),
so the cost of hiding half the labels on road-sign is the cost of having half the labels, not of the method; the ≤
1-point target asks for more than the data hold at this recipe. Further out, with the default normalisation, it falls
behind the whole rows, for the reason below. Treating unknown as negative is far worse: it turns every hidden positive
into a wrong negative. With the default normalisation (the lecture's J: sums over known labels divided by the batch
size) a task's gradient shrinks with its fraction of known labels, which at 90 % hidden amounts to a ten-times smaller
learning rate in the same number of epochs, and separate networks (which only see rows where their task is known)
overtake the shared one; normalising each task by its own known labels (`loss.normalization: known`) keeps the step
size and is the setting to use when most labels are unknown."""


def trainable_tasks(table) -> list[str]:
    """Tasks with known positive and negative labels in the training split."""
    from multitask.tables import untrainable_tasks

    left_out = untrainable_tasks(table)
    return [t for t in table.tasks if t not in left_out]


def unknown_as_negative(hidden, original):
    """Where a label was hidden, claim it is known and 0 — what a tool without unknown labels forces."""
    was_hidden = original.known & ~hidden.known
    return replace(hidden, known=hidden.known | was_hidden,
                   targets=np.where(was_hidden, 0.0, hidden.targets).astype(np.float32))


def whole_rows(table, fraction: float, seed: int, dropped: dict[str, set[str]]):
    """Every label of a seeded random `fraction` of the train/val rows hidden (the `rows:P` protocol: as many
    known labels as `rps:P` leaves, but concentrated in fewer, fully labelled examples), leaving out (and
    recording in `dropped`) a rare task that lost every training positive."""
    from multitask.hiding import hide_labels

    rows = hide_labels(table, f"rows:{fraction}", seed=seed).table
    trainable = trainable_tasks(rows)
    if len(trainable) < rows.n_tasks:
        dropped.setdefault(f"{fraction:.0%} (whole rows)", set()).update(set(rows.tasks) - set(trainable))
        rows = rows.select_tasks(trainable)
    return rows


def dataset(name: str, args: argparse.Namespace):
    from multitask.config import build_config
    from multitask.tables import read_data

    if name == "roadsign":
        data = SHARED / "data" / "roadsign"
        config = build_config({
            "data": {"path": str(data / "labels.csv"), "images": str(data / "images"), "image_size": args.image_size},
            "model": {"trunk": "mobilenet_v2", "weights": str(SHARED / "models" / "mobilenet_v2-b0353104.pth"),
                      "dropout": 0.2},
            "train": {"epochs": args.image_epochs, "batch_size": 32, "patience": None, "warmup_epochs": 1,
                      "progress": False}, "root": str(args.out)})
        return config, read_data(config.data)
    from multitask.data.arff import mulan_table

    config = build_config({"model": {"trunk": "mlp", "trunk_options": {"hidden": [512], "dropout": 0.5}},
                           "train": {"epochs": 100, "patience": 10, "weight_decay": 1e-3, "progress": False},
                           "root": str(args.out)})
    return config, mulan_table(name, SHARED / "data" / "mulan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="roadsign,yeast")
    parser.add_argument("--fractions", default="0,0.3,0.5,0.7,0.9")
    parser.add_argument("--seeds", type=int, default=None, help="default: 2 for roadsign, 3 for yeast")
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--image-epochs", type=int, default=6)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-hidden")
    parser.add_argument("--reuse", action="store_true", help="load finished comparisons instead of retraining")
    args = parser.parse_args()

    from multitask.compare import Comparison, compare
    from multitask.hiding import hide_labels
    from multitask.report import new_figure, save_figure

    fractions = [float(f) for f in args.fractions.split(",")]
    names = args.datasets.split(",")
    fig = new_figure(figsize=(5 * len(names), 4.2))
    axes = fig.subplots(1, len(names), squeeze=False)
    sections = []
    for axis, name in zip(axes[0], names, strict=True):
        config, table = dataset(name, args)
        seeds = args.seeds or (2 if name == "roadsign" else 3)
        curves = {k: np.zeros((len(fractions), seeds)) for k in APPROACHES}
        dropped: dict[str, set[str]] = {}
        for i, fraction in enumerate(fractions):
            for seed in range(seeds):
                hidden, source = hide_labels(table, f"rps:{fraction}", seed=seed).table, table
                trainable = trainable_tasks(hidden)
                if len(trainable) < hidden.n_tasks:  # a rare task lost every positive: drop it from every approach
                    dropped.setdefault(f"{fraction:.0%}", set()).update(set(hidden.tasks) - set(trainable))
                    hidden, source = hidden.select_tasks(trainable), table.select_tasks(trainable)
                out = args.out / name / f"hide{fraction:g}" / f"seed{seed}"
                cfg = config.model_copy(update={"train": config.train.model_copy(update={"seed": seed})})
                known_cfg = cfg.model_copy(update={"loss": cfg.loss.model_copy(update={"normalization": "known"})})
                variants = {"masked": (hidden, "shared", cfg), "masked_known": (hidden, "shared", known_cfg),
                            "negative": (unknown_as_negative(hidden, source), "shared", cfg),
                            "separate": (hidden, "separate", cfg),
                            "rows": (whole_rows(source, fraction, seed, dropped), "shared", cfg)}
                for key, (variant, approach, variant_cfg) in variants.items():
                    if args.reuse and (out / key / "comparison.json").exists():
                        result = Comparison.load(out / key)
                    else:
                        result = compare(variant_cfg, variant, approaches=(approach,), out_dir=out / key,
                                         report=False)
                    curves[key][i, seed] = result.mean(approach, None)
                print(name, fraction, seed, {k: round(float(v[i, seed]), 4) for k, v in curves.items()}, flush=True)
        rows = []
        for i, fraction in enumerate(fractions):
            cells = [f"{curves[k][i].mean():.4f}" + (f" ± {curves[k][i].std():.4f}" if seeds > 1 else "")
                     for k in APPROACHES]
            rows.append([f"{fraction:.0%}", *cells,
                         f"{100 * (curves['masked'][i].mean() - curves['masked'][0].mean()):+.2f}",
                         f"{100 * (curves['masked_known'][i].mean() - curves['masked_known'][0].mean()):+.2f}"])
        for key in APPROACHES:
            axis.errorbar([100 * f for f in fractions], curves[key].mean(axis=1), yerr=curves[key].std(axis=1),
                          marker="o", capsize=3, label=LEGEND[key])
        axis.set_title(f"{name} ({seeds} seed{'s' if seeds > 1 else ''})")
        axis.set_xlabel("training labels hidden (%)")
        axis.set_ylabel("test mAP")
        half = fractions.index(0.5) if 0.5 in fractions else None
        verdict = ""
        if half is not None:
            cost = 100 * (curves["masked"][0].mean() - curves["masked"][half].mean())
            known_cost = 100 * (curves["masked_known"][0].mean() - curves["masked_known"][half].mean())
            beats = all(curves["masked"][i].mean() >= curves["negative"][i].mean() for i in range(1, len(fractions)))
            as_rows = 100 * (curves["masked"][half].mean() - curves["rows"][half].mean())
            target = " (target ≤ 1 on road-sign)" if name == "roadsign" else ""
            verdict = (f"50 % hidden costs the masked loss {cost:.2f} mAP points with the default normalisation and "
                       f"{known_cost:.2f} with `loss.normalization: known`{target}; the same number of known labels "
                       f"spread at random over all rows scores {as_rows:+.2f} points against them concentrated in "
                       "whole rows (masked − whole rows); the masked loss "
                       f"{'beats' if beats else 'does not always beat'} unknown-as-negative at every hidden "
                       "fraction above 0.")
        if dropped:
            left_out = "; ".join(f"{k}: {', '.join(sorted(v))}" for k, v in dropped.items())
            verdict += (" Tasks left out where hiding took every training positive of a rare task (from all "
                        f"approaches alike, for that seed; from the whole-rows run alone where marked): {left_out}.")
        sections.append("\n\n".join([f"### {name}", markdown_table(
            ["hidden", *APPROACHES.values(), "masked: change (mAP points)", "masked, known: change"], rows),
            verdict]))
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="lower center", ncol=len(LEGEND), fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    save_figure(fig, ROOT / "docs" / "plots" / "hidden_labels.png", dpi=110)
    body = "\n\n".join([
        "## Unknown labels: masked loss vs unknown-as-negative vs separate networks",
        "A seeded random fraction of the train and validation labels is hidden; test labels stay known. Road-sign: "
        f"MobileNetV2 from ImageNet weights, {args.image_size} px, {args.image_epochs} epochs. yeast: MLP 512 "
        "(dropout 0.5), early stopping. Test mAP (mean ± std over seeds).", *sections,
        "![mAP against the hidden fraction](plots/hidden_labels.png)", ANALYSIS])
    print(body)
    if fractions == [0, 0.3, 0.5, 0.7, 0.9] and names == ["roadsign", "yeast"]:
        write_section("hidden", body, "python benchmarks/hidden_labels.py")


if __name__ == "__main__":
    main()
