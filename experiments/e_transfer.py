"""(e) Transfer vs multi-task: task A with much data, related task B with little. For B's test AP:
(1) pretrain on A, then fine-tune on B (`model.init_from`); (2) train A and B together (one shared network);
(3) B alone.

Road scenes: A = car (all labels), B = car_large (a car at least as tall as the middle of the car sizes), B
keeps 5 % of its train/val labels. Road-sign photos (/work/shared/data/roadsign, MobileNetV2 from ImageNet
weights, 128 px): A = speedlimit (all labels), B = stop, keeping 20 % of its training labels (validation labels
kept, so that model selection is not pure noise). The advisor runs before training, on A and B.

    .venv/bin/python experiments/e_transfer.py             # writes docs/experiments.md (section e)
    .venv/bin/python experiments/e_transfer.py --skip-photos --seeds 1 --no-doc
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as C  # noqa: E402  (first: one torch thread)

JOINT, ALONE = "joint", "B alone"
COST_TIERS = [[JOINT], [C.TRANSFER, ALONE]]
"""Joint training needs one network for A and B; transfer and B alone need two (A's and B's) and cost the same."""


def winner(runs: dict[str, list[Path]], task: str) -> tuple[str, dict[str, float], dict[str, dict]]:
    """The cheapest tier holding an approach whose AP on B is not significantly below the best one's; in a tier,
    the better mean. Returns the winner, mean AP per approach and the differences from the joint network."""
    ap = {a: sum(C.test_ap(r, task) for r in rs) / len(rs) for a, rs in runs.items()}
    best = max(ap, key=ap.get)
    diffs = {a: C.diff_dict(C.paired_difference(runs[JOINT], runs[a], task)) for a in runs if a != JOINT}
    for tier in COST_TIERS:
        ok = []
        for a in tier:
            d = C.diff_dict(C.paired_difference(runs[a], runs[best], task)) if a != best else None
            if d is None or not (d["significant"] and d["mean"] > 0):
                ok.append(a)
        if ok:
            return max(ok, key=ap.get), ap, diffs
    return best, ap, diffs


def run_setting(name: str, config, table, a: str, b: str, out: Path, seeds: int, b_epochs: int,
                finetune: dict) -> dict:
    C.log(f"(e) {name}: A = {a}, B = {b}")
    advice = C.run_advice(config, table, out / "advice")
    runs: dict[str, list[Path]] = {C.TRANSFER: [], JOINT: [], ALONE: []}
    costs: dict[str, float] = {k: 0.0 for k in runs}
    only_a = table.select_tasks([a], drop_unlabelled=True)
    only_b = table.select_tasks([b], drop_unlabelled=True)
    for seed in range(seeds):
        pre = C.train_single(config, only_a, out / f"seed{seed}" / "pretrain_A", seed)
        fine = C.train_single(config, only_b, out / f"seed{seed}" / "finetune_B", seed,
                              **{"model.init_from": str(pre.path), "train.epochs": b_epochs, **finetune})
        joint = C.train_single(config, table, out / f"seed{seed}" / "joint", seed)
        alone = C.train_single(config, only_b, out / f"seed{seed}" / "B_alone", seed, **{"train.epochs": b_epochs})
        runs[C.TRANSFER].append(fine.path)
        runs[JOINT].append(joint.path)
        runs[ALONE].append(alone.path)
        costs[C.TRANSFER] += pre.metrics["train_seconds"] + fine.metrics["train_seconds"]
        costs[JOINT] += joint.metrics["train_seconds"]
        costs[ALONE] += alone.metrics["train_seconds"]
        C.log(f"  seed {seed}: B AP transfer {C.test_ap(fine.path, b):.3f}, joint {C.test_ap(joint.path, b):.3f}, "
              f"alone {C.test_ap(alone.path, b):.3f}; A AP pretrain {C.test_ap(pre.path, a):.3f}, joint "
              f"{C.test_ap(joint.path, a):.3f}")
    best, ap, diffs = winner(runs, b)
    a_ap = {"pretrain (A alone)": sum(C.test_ap(out / f"seed{s}" / "pretrain_A", a) for s in range(seeds)) / seeds,
            "joint": sum(C.test_ap(r, a) for r in runs[JOINT]) / seeds}
    call_b = advice["calls"][b]
    approach = {"one shared network": JOINT, "shared network per group": JOINT,
                "transfer from a related, larger task": C.TRANSFER, "separate networks": ALONE}[call_b]
    train = table.part("train")
    known = dict(zip(table.tasks, train.known.sum(axis=0).tolist(), strict=True))
    return {"name": name, "a": a, "b": b, "known": known, "ap_b": ap, "ap_a": a_ap, "differences_vs_joint": diffs,
            "winner": best, "advice": advice, "advisor_call_b": call_b, "advisor_approach_b": approach,
            "train_seconds": {k: v / seeds for k, v in costs.items()}, "runs": {k: [str(p) for p in v]
                                                                               for k, v in runs.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--keep", type=float, default=0.05, help="fraction of B's labels kept (road scenes)")
    parser.add_argument("--keep-photos", type=float, default=0.2, help="fraction of stop's training labels kept")
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--b-epochs", type=int, default=30, help="epochs of the networks trained on B only")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--photo-size", type=int, default=128)
    parser.add_argument("--photo-epochs", type=int, default=5)
    parser.add_argument("--photo-b-epochs", type=int, default=8)
    parser.add_argument("--photo-seeds", type=int, default=2)
    parser.add_argument("--skip-photos", action="store_true")
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()

    out = C.fresh(C.RUNS / "e")
    path = C.scenes("e_scenes", n_images=args.images, image_size=32, extra_tasks=12, seed=4)
    table = C.keep_known(C.read(path, ["car", "car_large"]), "car_large", args.keep, seed=5)
    config = C.image_config(out, width=args.width, epochs=args.epochs)
    settings = [run_setting("road scenes", config, table, "car", "car_large", out / "scenes", args.seeds,
                            args.b_epochs, {"train.trunk_lr_scale": 0.1})]
    if not args.skip_photos and C.ROADSIGN.exists() and C.MOBILENET.exists():
        from multitask.config import build_config

        photo_config = build_config({
            "root": str(out),
            "data": {"path": str(C.ROADSIGN / "labels.csv"), "images": str(C.ROADSIGN / "images"),
                     "image_size": args.photo_size, "num_workers": 0},
            "model": {"trunk": "mobilenet_v2", "weights": str(C.MOBILENET), "dropout": 0.2},
            "train": {"epochs": args.photo_epochs, "batch_size": 32, "patience": None, "warmup_epochs": 1,
                      "progress": False, "accelerator": "cpu", "devices": 1}})
        from multitask.tables import read_data

        photos = read_data(photo_config.data).select_tasks(["speedlimit", "stop"])
        photos = C.keep_known(photos, "stop", args.keep_photos, seed=5, splits=("train",))
        settings.append(run_setting("road-sign photos", photo_config, photos, "speedlimit", "stop",
                                    out / "photos", args.photo_seeds, args.photo_b_epochs,
                                    {"train.trunk_lr_scale": 0.1}))
    checks = [{"setting": f"(e) transfer, {s['name']}: call for B = {s['b']}", "advisor": s["advisor_call_b"],
               "advisor_approach": s["advisor_approach_b"], "winner": s["winner"],
               "match": s["advisor_approach_b"] == s["winner"], "overall": s["advice"]["recommendation"],
               "relatedness_median": s["advice"]["relatedness_median"],
               "capacity_flagged": s["advice"]["capacity_flagged"]}
              for s in settings]

    fig = C.new_figure(figsize=(4.6 * len(settings), 3.3))
    axes = fig.subplots(1, len(settings), squeeze=False)
    for axis, s in zip(axes[0], settings, strict=True):
        names = [C.TRANSFER, JOINT, ALONE]
        axis.bar(names, [s["ap_b"][n] for n in names], color=["tab:green", "tab:blue", "tab:orange"])
        for i, n in enumerate(names):
            values = [C.test_ap(Path(r), s["b"]) for r in s["runs"][n]]
            axis.scatter([i] * len(values), values, color="black", s=10, zorder=3)
        axis.set_ylabel(f"test AP of B = {s['b']}")
        axis.set_title(f"{s['name']}: A = {s['a']} ({s['known'][s['a']]} labels), B: {s['known'][s['b']]}",
                       fontsize=9)
    C.save_plot(fig, "e")

    seconds = time.perf_counter() - start
    C.save_json("e", {"args": vars(args), "settings": settings, "checks": checks, "seconds": seconds})
    if args.no_doc:
        return
    rows = []
    for s in settings:
        d = s["differences_vs_joint"]
        rows.append([s["name"], f"{s['a']} ({s['known'][s['a']]})", f"{s['b']} ({s['known'][s['b']]})",
                     f"{s['ap_b'][C.TRANSFER]:.3f}", f"{s['ap_b'][JOINT]:.3f}", f"{s['ap_b'][ALONE]:.3f}",
                     C.fmt_diff(d[C.TRANSFER]), C.fmt_diff(d[ALONE]),
                     f"{s['ap_a']['pretrain (A alone)']:.3f} / {s['ap_a']['joint']:.3f}", s["winner"],
                     s["advisor_call_b"]])
    lines = []
    for s in settings:
        order = sorted(s["ap_b"], key=s["ap_b"].get, reverse=True)
        lines.append(f"{s['name']}: B's AP ranks " + " > ".join(f"{n} ({s['ap_b'][n]:.3f})" for n in order)
                     + f"; measured winner **{s['winner']}**.")
    body = "\n\n".join([
        "## (e) Transfer vs multi-task learning",
        "**Claim.** When a task B has little data and a related task A has much, B can profit from A either by "
        "transfer (pretrain on A, fine-tune on B) or by learning both at once; both should beat B alone.",
        f"**Setup.** Road scenes: {args.images} images at 32 px, A = `car` (every label), B = `car_large` "
        f"keeping {args.keep:.0%} of its train/val labels; small_cnn width {args.width}, depth 3; A and the joint "
        f"network {args.epochs} epochs, networks on B only (fine-tuning and B alone) {args.b_epochs} epochs "
        f"(B has few rows: cheap); fine-tuning starts the trunk from A's run (`model.init_from`) with "
        f"`train.trunk_lr_scale 0.1`; {args.seeds} seeds. Road-sign photos: A = `speedlimit`, B = `stop` "
        f"keeping {args.keep_photos:.0%} of its training labels (validation labels all kept), MobileNetV2 from "
        f"the ImageNet weights in ../shared/models, {args.photo_size} px, augmentation on, A and joint "
        f"{args.photo_epochs} epochs, B-only networks {args.photo_b_epochs} epochs, {args.photo_seeds} seeds. "
        "Δ = AP(approach) − AP(joint) on B's test labels with 95 % bootstrap intervals over test examples and "
        "seeds. Winner: joint training (one network for A and B) unless transfer or B alone (two networks) is "
        "significantly better on B.",
        C.markdown_table(["data", "A (train labels)", "B (train labels)", "B AP transfer", "B AP joint",
                          "B AP alone", "Δ transfer − joint", "Δ alone − joint", "A AP pretrain / joint",
                          "measured winner", "advisor's call for B"], rows),
        "![B's test AP: transfer, joint, alone](plots/experiments_e.png)",
        "**Verdict.** " + " ".join(lines)])
    C.write_section("e", body, "python experiments/e_transfer.py", seconds)


if __name__ == "__main__":
    main()
