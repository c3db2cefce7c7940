"""Road-sign photos (../shared/data/roadsign, its fixed split): shared vs 4 separate networks, from scratch and
from the ImageNet MobileNetV2 weights, several seeds.

    python benchmarks/roadsign.py                       # 3 seeds, writes docs/benchmarks.md
    python benchmarks/roadsign.py --seeds 1 --epochs 2  # a smoke run (nothing written to docs)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, SHARED, markdown_table, write_section  # noqa: E402

DATA = SHARED / "data" / "roadsign"
WEIGHTS = SHARED / "models" / "mobilenet_v2-b0353104.pth"
APPROACHES = ("shared", "separate", "shared_pretrained", "separate_pretrained")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-roadsign")
    parser.add_argument("--report-only", action="store_true", help="rewrite the tables from a finished run")
    args = parser.parse_args()
    if not DATA.exists() or not WEIGHTS.exists():
        sys.exit(f"needs {DATA} and {WEIGHTS}")

    from multitask.compare import Comparison, compare
    from multitask.config import build_config

    config = build_config({
        "root": str(args.out), "name": "compare",
        "data": {"path": str(DATA / "labels.csv"), "images": str(DATA / "images"), "image_size": args.image_size},
        "model": {"trunk": "mobilenet_v2", "dropout": 0.2},
        "train": {"epochs": args.epochs, "batch_size": 32, "lr": 1e-3, "patience": None, "warmup_epochs": 1,
                  "progress": False},
    })
    out = args.out / f"compare-{args.image_size}px-{args.epochs}ep-{args.seeds}seeds"
    if args.report_only:
        comparison = Comparison.load(out)
    else:
        comparison = compare(config, approaches=APPROACHES, seeds=args.seeds, pretrained=str(WEIGHTS), out_dir=out)
    header = comparison.task_header("AP")
    rows = comparison.task_rows("average_precision")
    ap_table = markdown_table(header, rows)
    cost = markdown_table(["approach", "parameters", "training time per seed (s)", "inference ms / image"],
                          [[n, f"{p:,}", f"{s:.0f}", f"{ms:.2f}"] for n, p, s, ms in comparison.cost_rows()])
    pretrained_map = comparison.mean("shared_pretrained", None)
    scratch = comparison.difference("separate", None, base="shared")
    pretrained = comparison.difference("separate_pretrained", None, base="shared_pretrained")

    def judged(difference: object) -> str:
        if not difference.significant:
            return "not significant, so the shared network matches them"
        return "the shared network is significantly better" if difference.mean < 0 else \
            "the separate networks are significantly better"

    verdict = [
        f"- Pretrained shared test mAP: {pretrained_map:.3f} (target ≥ 0.97: "
        f"{'met' if pretrained_map >= 0.97 else 'missed'}; see the resolution table below).",
        f"- Separate − shared mAP from scratch: {scratch} — {judged(scratch)}.",
        f"- Separate − shared mAP, both pretrained: {pretrained} — {judged(pretrained)}.",
        f"- Target shared ≥ separate in mAP: {'met' if pretrained.mean <= 0 else 'missed'} with pretrained "
        f"trunks, {'met' if scratch.mean <= 0 else 'missed'} from scratch in the point estimates; neither "
        "difference is significant" if not (scratch.significant or pretrained.significant) else
        "- Target shared ≥ separate: see the significant differences above",
        "- The shared network needs a quarter of the parameters and of the inference time of the four separate "
        "ones, and trains in about a quarter of their time.",
    ]
    body = "\n\n".join([
        "## Road-sign photos: shared vs separate, scratch vs pretrained",
        f"877 real photos, 4 tasks (crosswalk, speedlimit, stop, trafficlight), the fixed 527/175/175 split. "
        f"MobileNetV2 trunk at {args.image_size} px, {args.epochs} epochs, AdamW lr 1e-3 with cosine schedule, "
        f"batch 32, {args.seeds} seeds (mean ± std). `*_pretrained`: trunk started from the ImageNet weights in "
        "`../shared/models`. Test AP per task; Δ columns: difference from the shared network trained from scratch "
        "with a 95 % bootstrap interval over test images and seeds.",
        ap_table, cost, "\n".join(verdict)])
    print(body)
    if args.seeds >= 3:
        write_section("roadsign", body, f"python benchmarks/roadsign.py --seeds {args.seeds} --epochs {args.epochs} "
                                        f"--image-size {args.image_size}")


if __name__ == "__main__":
    main()
