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

    def comparison(config, table, approach: str, out_dir: Path) -> Comparison:
        if args.reuse and (out_dir / "comparison.json").exists():
            return Comparison.load(out_dir)
        return compare(config, table, approaches=(approach,), seeds=args.seeds, out_dir=out_dir, report=False)
    from multitask.config import build_config
    from multitask.weighting import WEIGHTINGS

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
        rows = [["separate networks", f"{np.nanmean(single):.4f}", "", "0.00 (reference)", ""]]
        for method in methods:
            config = build_config({**values, "train": {**values["train"], "weighting": method}})
            result = comparison(config, table, "shared", out / method)
            per_seed = np.array([[r.metric(t) for t in tasks] for r in result.results["shared"]])
            maps = np.nanmean(per_seed, axis=1)
            delta = 100 * np.nanmean((per_seed - single) / single, axis=1)
            seconds = np.mean([r.train_seconds for r in result.results["shared"]])
            rows.append([method, f"{maps.mean():.4f} ± {maps.std():.4f}", "",
                         f"{delta.mean():+.2f} ± {delta.std():.2f}", f"{seconds:.0f}"])
            print(rows[-1], flush=True)
        rows[0][4] = f"{np.mean([r.train_seconds for r in separate.results['separate']]):.0f}"
        for row in rows:
            row.pop(2)
        detail = (f"MobileNetV2 from ImageNet weights, {args.image_size} px, {args.image_epochs} epochs, batch 32"
                  if name == "roadsign" else f"MLP 512 (dropout 0.5), up to {args.feature_epochs} epochs with "
                  "early stopping (patience 10) on a seeded 15 % validation part of the standard training file")
        sections.append("\n\n".join([
            f"### {name}", f"{len(tasks)} tasks; {detail}; `loss.normalization: {args.normalization}`; "
            f"{args.seeds} seeds (mean ± std over seeds).",
            markdown_table(["method", "test mAP", "Δm % vs separate", "training time per run (s)"], rows)]))
    body = "\n\n".join(["## Weighting and gradient methods: quality", *sections])
    print(body)
    if args.seeds >= 3 and not args.methods:
        write_section("methods", body, "python benchmarks/methods.py")


if __name__ == "__main__":
    main()
