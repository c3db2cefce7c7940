"""Quality of every weighting / gradient method: mean test AP and Δm % against separate networks.

Δm % (Maninis et al. 2019; Vandenhende et al. 2021) is the mean over tasks of the relative AP change of the
multi-task network against the single-task networks: Δm = 100 · mean_j (AP_j − AP_j^single) / AP_j^single.

    python benchmarks/methods.py                  # road-sign and yeast, 3 seeds, writes docs/benchmarks.md
    python benchmarks/methods.py --reuse          # the same, loading the comparisons that already finished
    python benchmarks/methods.py --datasets yeast --seeds 1 --methods equal,mgda   # a quick look
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, SHARED, markdown_table, write_section  # noqa: E402


def dataset(name: str, args: argparse.Namespace) -> tuple[dict, object]:
    """(config values, table) of one benchmark data set."""
    if name == "roadsign":
        data = SHARED / "data" / "roadsign"
        values = {
            "data": {"path": str(data / "labels.csv"), "images": str(data / "images"), "image_size": args.image_size},
            "model": {"trunk": "mobilenet_v2", "weights": str(SHARED / "models" / "mobilenet_v2-b0353104.pth"),
                      "dropout": 0.2},
            "train": {"epochs": args.image_epochs, "batch_size": 32, "lr": 1e-3, "patience": None,
                      "warmup_epochs": 1},
        }
        return values, None
    from multitask.data.arff import mulan_table

    values = {"model": {"trunk": "mlp", "trunk_options": {"hidden": [512], "dropout": 0.5}},
              "train": {"epochs": args.feature_epochs, "batch_size": 64, "lr": 1e-3, "weight_decay": 1e-3,
                        "patience": 10}}
    return values, mulan_table(name, SHARED / "data" / "mulan")


def versus(tasks, base: str, base_results: list, method_results: list):
    """Macro AP of a method's runs minus the base's, paired by seed, with its bootstrap interval."""
    from multitask.compare import Comparison

    return Comparison(tuple(tasks), {base: base_results, "method": method_results}).difference("method", None, base)


def verdict(against_equal: dict, against_separate: dict) -> str:
    """Which methods differ significantly from equal weighting and from separate networks."""

    def names(differences: dict, sign: int) -> str:
        found = [m for m, d in differences.items() if d is not None and d.significant and np.sign(d.mean) == sign]
        return ", ".join(found) or "none"

    equal = {m: d for m, d in against_equal.items() if m != "equal"}
    return (f"Significantly better than equal weighting: {names(equal, 1)}; significantly worse: "
            f"{names(equal, -1)}. Significantly better than separate networks: {names(against_separate, 1)}; "
            f"significantly worse: {names(against_separate, -1)}.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="roadsign,yeast")
    parser.add_argument("--methods", default=None, help="comma-separated (default: every registered method)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--image-epochs", type=int, default=6)
    parser.add_argument("--feature-epochs", type=int, default=60)
    parser.add_argument("--normalization", default="known", help="loss.normalization for every method")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-methods")
    parser.add_argument("--reuse", action="store_true", help="load finished comparisons instead of retraining")
    args = parser.parse_args()

    from multitask.compare import Comparison, compare
    from multitask.config import build_config
    from multitask.weighting import WEIGHTINGS

    def comparison(config, table, approach: str, out_dir: Path) -> Comparison:
        if args.reuse and (out_dir / "comparison.json").exists():
            return Comparison.load(out_dir)
        return compare(config, table, approaches=(approach,), seeds=args.seeds, out_dir=out_dir, report=False)

    methods = args.methods.split(",") if args.methods else WEIGHTINGS.names()
    sections = []
    for name in args.datasets.split(","):
        values, table = dataset(name, args)
        values = {**values, "root": str(args.out), "loss": {"normalization": args.normalization}}
        values["train"] = {**values["train"], "progress": False}
        base = build_config(values)
        out = args.out / name
        separate = comparison(base, table, "separate", out / "separate")
        tasks = separate.tasks
        single = np.array([separate.mean("separate", t) for t in tasks])
        results = {}
        for method in methods:
            config = build_config({**values, "train": {**values["train"], "weighting": method}})
            results[method] = comparison(config, table, "shared", out / method).results["shared"]
            print(method, f"{np.mean([r.macro() for r in results[method]]):.4f}", flush=True)

        separate_seconds = np.mean([r.train_seconds for r in separate.results["separate"]])
        rows = [["separate networks", f"{np.nanmean(single):.4f}", "0.00 (reference)", "", "",
                 f"{separate_seconds:.0f}"]]
        against_equal, against_separate = {}, {}
        for method in methods:
            per_seed = np.array([[r.metric(t) for t in tasks] for r in results[method]])
            maps = np.nanmean(per_seed, axis=1)
            delta = 100 * np.nanmean((per_seed - single) / single, axis=1)
            against_separate[method] = versus(tasks, "separate", separate.results["separate"], results[method])
            against_equal[method] = versus(tasks, "equal", results["equal"], results[method]) if "equal" in results \
                else None
            rows.append([method, f"{maps.mean():.4f} ± {maps.std():.4f}", f"{delta.mean():+.2f} ± {delta.std():.2f}",
                         str(against_separate[method]),
                         "" if method == "equal" or against_equal[method] is None else str(against_equal[method]),
                         f"{np.mean([r.train_seconds for r in results[method]]):.0f}"])
        detail = (f"MobileNetV2 from ImageNet weights, {args.image_size} px, {args.image_epochs} epochs, batch 32"
                  if name == "roadsign" else f"MLP 512 (dropout 0.5), up to {args.feature_epochs} epochs with "
                  "early stopping (patience 10) on a seeded 15 % validation part of the standard training file")
        sections.append("\n\n".join([
            f"### {name}", f"{len(tasks)} tasks; {detail}; `loss.normalization: {args.normalization}`; "
            f"{args.seeds} seeds (mean ± std over seeds).",
            markdown_table(["method", "test mAP", "Δm % vs separate", "Δ mAP vs separate [95% CI]",
                            "Δ mAP vs equal [95% CI]", "training time per run (s)"], rows),
            verdict(against_equal, against_separate)]))
    body = "\n\n".join(["## Weighting and gradient methods: quality",
                         "Δm % (Maninis et al. 2019) is the mean relative AP change per task against the separate "
                         "networks; the Δ mAP columns are paired differences with 95 % bootstrap intervals over test "
                         "images and seeds (* significant, n.s. not). Training times are wall times of runs that "
                         "shared the 2 cores with another benchmark; the speed table above gives clean step costs.",
                         *sections])
    print(body)
    if args.seeds >= 3 and not args.methods:
        write_section("methods", body, "python benchmarks/methods.py")


if __name__ == "__main__":
    main()
