"""Road-sign photos at a higher resolution: the pretrained shared network at 224 px (and 128 px for reference).

Small objects (a traffic light is often 10–20 px in the 256-px photos) lose detail at 128 px; this measures
what resolution buys for the pretrained shared network.

    python benchmarks/roadsign_resolution.py             # 3 seeds, writes docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, markdown_table, write_section  # noqa: E402
from roadsign import DATA, WEIGHTS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--sizes", default="224")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-roadsign-resolution")
    args = parser.parse_args()

    from multitask.compare import compare
    from multitask.config import build_config

    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        config = build_config({
            "root": str(args.out), "data": {"path": str(DATA / "labels.csv"), "images": str(DATA / "images"),
                                            "image_size": size},
            "model": {"trunk": "mobilenet_v2", "weights": str(WEIGHTS), "dropout": 0.2},
            "train": {"epochs": args.epochs, "batch_size": 32, "lr": 1e-3, "patience": None, "warmup_epochs": 1,
                      "progress": False},
        })
        result = compare(config, approaches=("shared",), seeds=args.seeds, out_dir=args.out / f"{size}px",
                         report=False)
        per_task = [result.cell("shared", t, "average_precision") for t in result.tasks]
        maps = result.values("shared", None)
        seconds = np.mean([r.train_seconds for r in result.results["shared"]])
        rows.append([f"{size} px", *per_task, f"{maps.mean():.3f} ± {maps.std():.3f}", f"{seconds:.0f}"])
        print(rows[-1], flush=True)
        tasks = result.tasks
    body = "\n\n".join([
        "### Resolution: the pretrained shared network at a higher image size",
        f"Same recipe as above (MobileNetV2 from ImageNet weights, {args.epochs} epochs), {args.seeds} seeds.",
        markdown_table(["image size", *[f"AP {t}" for t in tasks], "test mAP", "training time per seed (s)"], rows)])
    print(body)
    if args.seeds >= 3:
        write_section("roadsign-resolution", body, f"python benchmarks/roadsign_resolution.py --sizes {args.sizes}")


if __name__ == "__main__":
    main()
