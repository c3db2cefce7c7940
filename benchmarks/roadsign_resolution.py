"""Road-sign photos at a higher resolution: the pretrained shared network at 224 px (and 128 px for reference).

Small objects (a traffic light is often 10–20 px in the 256-px photos) lose detail at 128 px; this measures
what resolution buys for the pretrained shared network, with the trunk at the heads' learning rate and at a
tenth of it.

    python benchmarks/roadsign_resolution.py                                   # 3 seeds, writes docs/benchmarks.md
    python benchmarks/roadsign_resolution.py --trunk-lr-scales 0.1 --no-doc    # one setting (run several at once)
    python benchmarks/roadsign_resolution.py --reuse                           # the table from finished runs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, markdown_table, write_section  # noqa: E402
from roadsign import DATA, WEIGHTS  # noqa: E402

MISSED = """Why 0.97 stays out of reach here: the same networks score about 0.98 mAP on the 175 validation photos (the
epoch kept is chosen there; see the training logs) and 0.958 on the 175 test photos. The test split holds 18 stop
signs and 25 traffic lights, so one positive ranked below a few negatives moves that task's AP by several points:
the paired differences in the table above have 95 % intervals about ±2.5 points wide on the macro mean, wider than
the 1.2 points missing. Going from 128 to 224 px bought 2.1 points; crosswalk and stop are the weak tasks. A tenth
of the learning rate for the trunk is worse (presumably too slow to adapt the ImageNet features in 12 epochs)."""


def verdict(means: dict[tuple[int, float, float], float]) -> str:
    """The best setting against the 0.97 target, and what hiding labels costs there."""
    full = {k: v for k, v in means.items() if k[2] == 0}
    if not full:
        return ""
    best = max(full, key=full.get)
    text = (f"Best: {best[0]} px with trunk lr scale {best[1]:g}, test mAP {full[best]:.3f} — the target of 0.97 is "
            f"{'met' if full[best] >= 0.97 else f'missed by {100 * (0.97 - full[best]):.1f} points'}.")
    for (size, scale, hide), value in means.items():
        if hide and (size, scale, 0.0) in full:
            text += (f" Hiding {hide:.0%} of the training and validation labels at that recipe ({size} px, scale "
                     f"{scale:g}) costs {100 * (full[(size, scale, 0.0)] - value):.2f} mAP points (target ≤ 1; "
                     "7.39 at 96 px in the hidden-labels section below).")
    return text + ("\n\n" + MISSED if full[best] < 0.97 else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--sizes", default="224")
    parser.add_argument("--trunk-lr-scales", default="1,0.1", help="trunk learning rate = lr × this (a pretrained "
                        "trunk often wants a smaller step than its new heads)")
    parser.add_argument("--hide", default="0,0.5", help="fractions of the training and validation labels hidden "
                        "(seeded per seed, as in hidden_labels.py; fractions above 0 at the first trunk lr scale "
                        "only); test labels stay known")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-roadsign-resolution")
    parser.add_argument("--reuse", action="store_true", help="load finished comparisons instead of retraining")
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args()

    from multitask.compare import Comparison, compare
    from multitask.config import build_config
    from multitask.tables import read_data

    rows, tasks, means = [], (), {}
    scales = [float(scale) for scale in args.trunk_lr_scales.split(",")]
    hides = [float(fraction) for fraction in args.hide.split(",")]
    sizes = [int(size) for size in args.sizes.split(",")]
    settings = [(size, scale, 0.0) for size in sizes for scale in scales if 0 in hides]
    settings += [(size, scales[0], hide) for hide in hides if hide for size in sizes]  # the first scale only
    for size, scale, hide in settings:
        config = build_config({
            "root": str(args.out), "data": {"path": str(DATA / "labels.csv"), "images": str(DATA / "images"),
                                            "image_size": size},
            "model": {"trunk": "mobilenet_v2", "weights": str(WEIGHTS), "dropout": 0.2},
            "train": {"epochs": args.epochs, "batch_size": 32, "lr": 1e-3, "patience": None, "warmup_epochs": 1,
                      "trunk_lr_scale": scale, "progress": False},
        })
        out = args.out / (f"{size}px-trunk{scale:g}" + (f"-hide{hide:g}" if hide else ""))
        if args.reuse and (out / "comparison.json").exists():
            result = Comparison.load(out)
        elif hide:  # one seeded hiding per seed, like hidden_labels.py
            table = read_data(config.data)
            results = [compare(config, table.hide_labels(hide, seed=seed), approaches=("shared",), seeds=[seed],
                               out_dir=out / f"hidden-seed{seed}", report=False) for seed in range(args.seeds)]
            result = Comparison(results[0].tasks, {"shared": [r for c in results for r in c.results["shared"]]}, out,
                                results[0].train_known)
            result.save(out)
        else:
            result = compare(config, approaches=("shared",), seeds=args.seeds, out_dir=out, report=False)
        per_task = [result.cell("shared", t, "average_precision") for t in result.tasks]
        maps = result.values("shared", None)
        seconds = np.mean([r.train_seconds for r in result.results["shared"]])
        rows.append([f"{size} px", f"{scale:g}", f"{hide:.0%}", *per_task, f"{maps.mean():.3f} ± {maps.std():.3f}",
                     f"{seconds:.0f}"])
        print(rows[-1], flush=True)
        tasks = result.tasks
        means[(size, scale, hide)] = maps.mean()
    body = "\n\n".join([
        "### Resolution and trunk learning rate: the pretrained shared network",
        f"Same recipe as above (MobileNetV2 from ImageNet weights, {args.epochs} epochs, lr 1e-3 for the heads), "
        f"{args.seeds} seeds; `train.trunk_lr_scale` multiplies the trunk's learning rate.",
        markdown_table(["image size", "trunk lr scale", "labels hidden", *[f"AP {t}" for t in tasks], "test mAP",
                        "training time per seed (s)"], rows), verdict(means)])
    print(body)
    if args.seeds >= 3 and not args.no_doc:
        write_section("roadsign-resolution", body, "python benchmarks/roadsign_resolution.py --sizes "
                      f"{args.sizes} --trunk-lr-scales {args.trunk_lr_scales} --hide {args.hide}")


if __name__ == "__main__":
    main()
