"""Detection on the road-sign photos' VOC boxes (../shared/data/roadsign/annotations, the fixed split of
labels.csv): one shared FCOS detector against four single-class ones; then with 30 % and 50 % of the (image,
class) annotations of train/val made unknown (seeded), masked against unknown-as-background; and the training
step time of the shared detector with 4 and 80 classes against 1, measured side by side in this process.

    python benchmarks/detection.py                      # the full grid, writes docs/benchmarks.md
    python benchmarks/detection.py --reuse              # continue: finished cells (cells/*.json) are reused
    python benchmarks/detection.py --epochs 1 --smoke   # a smoke run (nothing written to docs)

It is sized for a busy 2-core CPU: one torch thread, 192-px images, MobileNetV2 from the ImageNet weights with
only its last `--trainable-layers` feature layers trained, a 64-channel FPN and 2-convolution FCOS towers.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SHARED, add_grid_options, markdown_table, write_section  # noqa: E402

DATA = SHARED / "data" / "roadsign"
WEIGHTS = SHARED / "models" / "mobilenet_v2-b0353104.pth"
log = logging.getLogger("benchmarks.detection")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--trainable-layers", type=int, default=0, help="0: the trunk frozen")
    parser.add_argument("--val", action="store_true", help="validate every epoch and keep the best epoch (default: "
                        "no validation, the last epoch is kept: saves time on a busy CPU)")
    parser.add_argument("--fractions", default="0.5", help="unknown fractions, in the order they are run "
                        "(e.g. 0.5,0.3)")
    add_grid_options(parser, "bench-detection", n_boot=100)
    parser.add_argument("--timing-repeats", type=int, default=7)
    parser.add_argument("--reuse", action="store_true", help="reuse finished cells and runs")
    parser.add_argument("--smoke", action="store_true", help="write nothing to docs")
    parser.add_argument("--limit", type=int, default=None, help="smoke runs: the first N images of each split")
    return parser.parse_args()


def config(args: argparse.Namespace, **overrides: object):
    from multitask.config import apply_overrides, build_config

    base = build_config({
        "data": {"kind": "detection", "image_size": args.image_size, "path": str(DATA / "annotations"),
                 "augment": bool(args.trainable_layers)},  # a frozen trunk: no augmentation, cached features
        "model": {"trunk": "mobilenet_v2", "weights": str(WEIGHTS)},
        "detection": {"trainable_layers": args.trainable_layers},
        "train": {"epochs": args.epochs, "batch_size": args.batch_size, "lr": 1e-3, "warmup_epochs": 0.5,
                  "patience": None, "progress": False, "accelerator": "cpu", "devices": 1},
    })
    return apply_overrides(base, dict(overrides)) if overrides else base


def cache_frozen_trunk() -> None:
    """With the trunk frozen and no augmentation, its features of an image never change: compute them once per
    image (keyed by the input's bytes) and reuse them in later epochs, at test time and in the other detectors
    (every detector here has the same frozen ImageNet trunk). The detectors, their weights and their outputs are
    unchanged (state-dict keys too); only repeated trunk passes are saved."""
    import hashlib

    import torch

    import multitask.detection.run as run_module
    from multitask.detection.model import build_detector

    cache: dict[bytes, dict] = {}

    def build(*args, **kwargs):
        detector = build_detector(*args, **kwargs)
        body = detector.backbone.body
        if any(p.requires_grad for p in body.parameters()):
            return detector
        compute = body.forward

        def forward(x):
            keys = [hashlib.blake2b(sample.detach().cpu().numpy().tobytes(), digest_size=16).digest() for sample in x]
            if not all(k in cache for k in keys):
                with torch.no_grad():
                    out = compute(x)
                for i, k in enumerate(keys):
                    cache[k] = {name: value[i].clone() for name, value in out.items()}
            return {name: torch.stack([cache[k][name] for k in keys]) for name in cache[keys[0]]}

        body.forward = forward
        return detector

    run_module.build_detector = build


def cell(args: argparse.Namespace, name: str, compute) -> dict:
    """A cell's JSON (out/cells/<name>.json): reused with --reuse, else computed and saved."""
    from multitask.runs import write_json

    path = args.out / "cells" / f"{name}.json"
    if args.reuse and path.is_file():
        log.info("cell %s: reused %s", name, path)
        return json.loads(path.read_text())
    start = time.perf_counter()
    log.info("cell %s: start", name)
    value = compute()
    value["seconds"] = time.perf_counter() - start
    write_json(path, value)
    log.info("cell %s: done in %.0f s", name, value["seconds"])
    return value


def step_times(args: argparse.Namespace, table) -> dict:
    """Median seconds of one training step (forward, backward, AdamW) of the shared detector with 1, 4 and 80
    classes on the same batch, the three interleaved so that load changes hit them alike."""
    import torch

    from multitask.detection.model import build_detector
    from multitask.detection.training import DetectionDataset, collate

    cfg = config(args)
    data = DetectionDataset(table.part("train").subset(range(args.batch_size)), args.image_size)
    images, targets, _ = collate([data[i] for i in range(args.batch_size)])
    variants = {}
    for n in (1, 4, 80):
        torch.manual_seed(0)
        detector = build_detector(cfg.model, cfg.detection, n, args.image_size).train()
        labels = [t["labels"] if n >= 4 else torch.zeros_like(t["labels"]) for t in targets]
        batch = [{**t, "labels": lab, "known": torch.ones(n, dtype=torch.bool)} for t, lab in zip(targets, labels,
                                                                                                   strict=True)]
        optimizer = torch.optim.AdamW([p for p in detector.parameters() if p.requires_grad], lr=1e-4)
        variants[n] = (detector, batch, optimizer)
    times: dict[int, list[float]] = {n: [] for n in variants}
    for repeat in range(args.timing_repeats + 1):
        for n, (detector, batch, optimizer) in variants.items():
            start = time.perf_counter()
            losses = detector(images, batch)
            (losses["classification"].sum() + losses["bbox_regression"] + losses["bbox_ctrness"]).backward()
            optimizer.step()
            optimizer.zero_grad()
            if repeat:  # the first round warms up
                times[n].append(time.perf_counter() - start)
        log.info("timing round %d/%d", repeat, args.timing_repeats)
    median = {n: statistics.median(v) for n, v in times.items()}
    return {"median_seconds": {str(n): v for n, v in median.items()},
            "ratio_4_vs_1": median[4] / median[1], "ratio_80_vs_1": median[80] / median[1],
            "batch_size": args.batch_size, "repeats": args.timing_repeats}


def train_cell(args: argparse.Namespace, table, name: str, cfg) -> dict:
    from multitask.detection.compare import _reuse_or_train

    run = _reuse_or_train(cfg, table, args.out / "runs" / name, f"[{name}] ", True, args.reuse)
    return {"run": str(run.path), "test": run.metrics["test"], "train_seconds": run.metrics["train_seconds"],
            "parameters": run.metrics["parameters"],
            "inference_seconds_per_image": run.metrics["inference_seconds_per_example"]}


def difference(args: argparse.Namespace, table, a: dict, b: dict | list[dict], seed: int) -> dict:
    """AP@0.5 of b − a on the test images, per class and mean, with paired bootstrap intervals."""
    from dataclasses import asdict

    from multitask.detection.compare import paired_detection_difference, test_detections

    test = table.part("test")
    runs_b = {c: r["run"] for c, r in zip(table.classes, b, strict=True)} if isinstance(b, list) else \
        {c: b["run"] for c in table.classes}
    first = test_detections({c: a["run"] for c in table.classes}, table.classes, test)
    second = test_detections(runs_b, table.classes, test)
    per_class, mean = paired_detection_difference(test, first, second, n_boot=args.n_boot, seed=seed)
    return {"classes": {c: asdict(d) for c, d in zip(table.classes, per_class, strict=True)}, "mean": asdict(mean),
            "n_boot": args.n_boot}


def main() -> None:
    args = parse()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s",
                        handlers=[logging.StreamHandler(sys.stdout)])
    logging.getLogger("multitask").setLevel(logging.INFO)
    if not DATA.exists() or not WEIGHTS.exists():
        sys.exit(f"needs {DATA} and {WEIGHTS}")
    import torch

    torch.set_num_threads(args.threads)
    from multitask.bootstrap import Difference
    from multitask.config import apply_overrides
    from multitask.importers.voc import import_voc_boxes

    args.out.mkdir(parents=True, exist_ok=True)
    file_log = logging.FileHandler(args.out / "benchmark.log")
    file_log.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logging.getLogger().addHandler(file_log)
    table = import_voc_boxes(DATA / "annotations", image_root=DATA / "images", splits=DATA / "labels.csv")
    if args.limit:
        import numpy as np

        table = table.subset(np.concatenate([np.flatnonzero(table.split == s)[:args.limit]
                                             for s in ("train", "val", "test")]))
    log.info("%d images (%s), %d boxes, classes %s", len(table),
             "/".join(str(int((table.split == s).sum())) for s in ("train", "val", "test")), table.n_boxes,
             dict(zip(table.classes, table.counts().tolist(), strict=True)))
    base = config(args)
    if not args.trainable_layers:
        cache_frozen_trunk()
    fit_table = table if args.val else table.subset(table.split != "val")
    timing = cell(args, "timing", lambda: step_times(args, table))
    shared = cell(args, "shared", lambda: train_cell(args, fit_table, "shared", base))
    separate = []
    for name in table.classes:
        one = fit_table.only_classes([name])
        separate.append(cell(args, f"separate_{name}", lambda one=one, name=name: train_cell(
            args, one.subset(one.known[:, 0]), f"separate_{name}", apply_overrides(base, {"data.tasks": [name]}))))
    hidden = {}
    for fraction in [float(f) for f in args.fractions.split(",") if f]:
        part = fit_table.hide_annotations(fraction, seed=0)
        for mode in ("mask", "background"):
            key = f"hide{round(fraction * 100)}_{mode}"
            hidden[key] = cell(args, key, lambda part=part, key=key, mode=mode: train_cell(
                args, part, key, apply_overrides(base, {"detection.unknown": mode})))
    combined = args.out / "cells" / "differences.json"  # an earlier version kept every comparison in one cell
    if combined.is_file():
        from multitask.runs import write_json

        for key, value in json.loads(combined.read_text()).items():
            if key != "seconds" and not (args.out / "cells" / f"difference_{key}.json").is_file():
                write_json(args.out / "cells" / f"difference_{key}.json", value)
    diffs = {"separate_vs_shared": cell(args, "difference_separate_vs_shared",
                                        lambda: difference(args, table, shared, separate, 1))}
    for key, value in hidden.items():
        level = key.split("_")[0]
        if key.endswith("_mask") and f"{level}_background" in hidden:
            diffs[f"mask_vs_background_{level}"] = cell(
                args, f"difference_mask_vs_background_{level}",
                lambda level=level, value=value: difference(args, table, hidden[f"{level}_background"], value, 2))
    rows = []
    for c, name in enumerate(table.classes):
        rows.append([name, str(int(table.part("train").counts()[c])), _f(shared["test"]["classes"][name]["ap50"]),
                     _f(separate[c]["test"]["classes"][name]["ap50"]),
                     str(Difference(**diffs["separate_vs_shared"]["classes"][name]))])
    mean_sep = statistics.mean(s["test"]["map50"] for s in separate)
    rows.append(["mean", "", _f(shared["test"]["map50"]), _f(mean_sep), str(Difference(**diffs["separate_vs_shared"]
                                                                                        ["mean"]))])
    gap = Difference(**diffs["separate_vs_shared"]["mean"])
    main_table = markdown_table(["class", "train boxes", "AP@0.5 shared", "AP@0.5 separate",
                                 "Δ separate − shared [95% CI]"], rows)
    cost = markdown_table(["approach", "parameters", "training time (s)", "inference ms / image (all classes)"], [
        ["shared", f"{shared['parameters']:,}", f"{shared['train_seconds']:.0f}",
         f"{1000 * shared['inference_seconds_per_image']:.0f}"],
        ["separate (4)", f"{sum(s['parameters'] for s in separate):,}",
         f"{sum(s['train_seconds'] for s in separate):.0f}",
         f"{1000 * sum(s['inference_seconds_per_image'] for s in separate):.0f}"]])
    hide_rows, verdicts = [], []
    for fraction in [float(f) for f in args.fractions.split(",") if f]:
        k = f"hide{round(fraction * 100)}"
        if f"mask_vs_background_{k}" not in diffs:
            continue
        d = Difference(**diffs[f"mask_vs_background_{k}"]["mean"])
        hide_rows.append([f"{fraction:.0%}", _f(hidden[f"{k}_mask"]["test"]["map50"]),
                          _f(hidden[f"{k}_background"]["test"]["map50"]), str(d),
                          _f(hidden[f"{k}_mask"]["test"]["map"]), _f(hidden[f"{k}_background"]["test"]["map"])])
        if abs(fraction - 0.5) < 1e-9:
            verdicts.append(f"- With 50 % unknown, masked − unknown-as-background mAP@0.5: {d} — target (masked "
                            f"better, significantly) {'met' if d.significant and d.mean > 0 else 'missed'}.")
        else:
            verdicts.append(f"- With {fraction:.0%} unknown (no target): masked − unknown-as-background mAP@0.5 {d}.")
    if len(hide_rows) > 1:
        verdicts.append(f"- Each fraction is its own seeded draw of the hidden annotations, trained once (one seed, "
                        f"{args.epochs} epochs): the absolute mAPs of two fractions differ by the draw and the "
                        "training noise (a smaller fraction may score lower); what each row measures is masked "
                        "against as-background on the same draw.")
    hide_table = markdown_table(["unknown (train/val)", "mAP@0.5 masked", "mAP@0.5 as background",
                                 "Δ masked − background [95% CI]", "mAP masked", "mAP as background"], hide_rows)
    r4, r80 = timing["ratio_4_vs_1"], timing["ratio_80_vs_1"]
    med = timing["median_seconds"]
    verdicts = [
        f"- Shared test mAP@0.5 {shared['test']['map50']:.3f} against the mean of the four single-class detectors "
        f"{mean_sep:.3f} (Δ separate − shared {gap}): target shared ≥ separate "
        f"{'met' if gap.mean <= 0 else 'missed'} in the point estimate"
        + (", and the interval excludes 0." if gap.significant else "; the interval contains 0 (not significant)."),
        *verdicts,
        f"- Training step (batch {timing['batch_size']}, median of {timing['repeats']}): 1 class {med['1']:.2f} s, "
        f"4 classes {med['4']:.2f} s ({r4:.2f}×, target ≤ 1.1×: {'met' if r4 <= 1.1 else 'missed'}), 80 classes "
        f"{med['80']:.2f} s ({r80:.2f}×, target ≤ 1.3×: {'met' if r80 <= 1.3 else 'missed'}).",
    ]
    body = "\n\n".join([
        "## Detection: one shared detector vs one per class, and unknown annotations (road-sign photos)",
        f"The 877 road-sign photos' VOC boxes ({table.n_boxes} boxes: "
        + ", ".join(f"{c} {n}" for c, n in zip(table.classes, table.counts().tolist(), strict=True))
        + "), the fixed 527/175/175 split of labels.csv. torchvision's FCOS (masked classification loss) on "
        "MobileNetV2 from the ImageNet weights ("
        + (f"last {args.trainable_layers} feature layers trained, the rest frozen" if args.trainable_layers
           else "frozen; no augmentation, so each image's trunk features are computed once and reused")
        + ", frozen BatchNorm) with a 64-channel FPN and 2-convolution towers, "
        f"{args.image_size}-px images, {args.epochs} epochs, AdamW lr 1e-3 with warm-up and cosine schedule, batch "
        f"{args.batch_size}, one seed, one torch thread (the CPU is shared with other jobs). "
        + ("The best validation-mAP@0.5 epoch is kept. " if args.val else
           "No validation during training (time): the last epoch is kept. ") + "AP: COCO-style "
        "(torchmetrics / pycocotools), unknown-aware; Δ with a 95 % paired bootstrap interval over test images "
        f"({' / '.join(str(d.get('n_boot', 100)) for d in diffs.values())} resamples, in the order of the "
        "comparisons below); `*`: the interval excludes 0. Each single-class detector trains on the images "
        "where its class is known (here: all).",
        main_table, cost,
        *(["Training times: the shared detector ran first and computed the cached trunk features of every training "
           "image; the single-class detectors reused them, so their times are lower than they would be alone. All "
           "times on a CPU shared with other jobs (its load varied)."] if not args.trainable_layers else []),
        "Unknown annotations: a seeded fraction of the (image, class) annotations of train and val made unknown "
        "(their boxes removed); the test split keeps every annotation. *masked*: the unknown (image, class) gives "
        "no loss; *as background*: it is taken as verified absent (`detection.unknown: background`).",
        hide_table,
        "\n".join(verdicts),
    ])
    log.info("\n%s", body)
    if not args.smoke:
        command = "python benchmarks/detection.py " + " ".join(a for a in sys.argv[1:] if a != "--reuse")
        write_section("detection", body, command.strip())


def _f(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
