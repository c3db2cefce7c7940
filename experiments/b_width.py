"""(b) Network size: sharing loses when the network is too small, and matches or beats separate networks when it is
big enough.

A fixed multi-task road-scene set (4 object tasks + 4 attribute tasks, half of the train/val labels hidden);
small_cnn widths 2, 4, 8, 16, 32 (depth 3): one shared network against one network per task (each as wide as the
shared one), several seeds. The advisor runs before training, at every width (its probe uses that width).

    .venv/bin/python experiments/b_width.py                # writes docs/experiments.md (section b)
    .venv/bin/python experiments/b_width.py --widths 2,16 --seeds 1 --no-doc
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as C  # noqa: E402  (first: one torch thread)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2400)
    parser.add_argument("--extra", type=int, default=4, help="attribute tasks besides the 4 object tasks")
    parser.add_argument("--hide", type=float, default=0.5)
    parser.add_argument("--widths", default="2,4,8,16,32")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--no-advice", action="store_true")
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()

    out = C.fresh(C.RUNS / "b")
    path = C.scenes("b_scenes", n_images=args.images, image_size=32, extra_tasks=args.extra, seed=2)
    table = C.read(path).hide_labels(args.hide, seed=0)
    widths = [int(w) for w in args.widths.split(",")]
    settings, rows, checks = [], [], []
    for width in widths:
        C.log(f"(b) width {width}")
        config = C.image_config(out, width=width, epochs=args.epochs)
        advice = None if args.no_advice else C.run_advice(config, table, out / f"w{width}" / "advice")
        approaches, groups = C.plan(advice)
        comparison, walls = C.run_compare(config, table, approaches, out / f"w{width}", seeds=range(args.seeds),
                                          groups=groups)
        numbers = C.comparison_numbers(comparison, walls)
        winner = C.measured_winner(comparison)
        settings.append({"width": width, "numbers": numbers, "winner": winner, "advice": advice})
        shared, separate = numbers["approaches"]["shared"], numbers["approaches"]["separate"]
        rows.append([width, f"{shared['parameters']:,}", f"{separate['parameters']:,}",
                     f"{shared['map']:.3f}", f"{separate['map']:.3f}",
                     C.fmt_diff(separate["difference"]) + C.groups_note(numbers),
                     f"{shared['train_seconds']:.0f} / {separate['train_seconds']:.0f}", winner,
                     advice["recommendation"] if advice else "–"])
        if advice:
            checks.append({"setting": f"(b) width {width}", "advisor": advice["recommendation"],
                           "advisor_approach": C.approach_of_call(advice["recommendation"]), "winner": winner,
                           "match": C.approach_of_call(advice["recommendation"]) == winner,
                           "relatedness_median": advice["relatedness_median"],
                           "capacity_flagged": advice["capacity_flagged"]})

    fig = C.new_figure(figsize=(9.5, 3.4))
    left, right = fig.subplots(1, 2)
    for name, style in (("shared", "o-"), ("separate", "s--")):
        means = [s["numbers"]["approaches"][name]["map"] for s in settings]
        per_seed = [s["numbers"]["approaches"][name]["map_per_seed"] for s in settings]
        left.plot(widths, means, style, label=name)
        for w, values in zip(widths, per_seed, strict=True):
            left.scatter([w] * len(values), values, s=8, alpha=0.5, color="tab:blue" if name == "shared" else
                         "tab:orange")
    left.set_xscale("log", base=2)
    left.set_xlabel("small_cnn width (channels of the first stage)")
    left.set_ylabel("test mAP")
    left.legend()
    diffs = [s["numbers"]["approaches"]["separate"]["difference"] for s in settings]
    right.errorbar(widths, [-d["mean"] for d in diffs], yerr=[[d["high"] - d["mean"] for d in diffs],
                                                              [d["mean"] - d["low"] for d in diffs]],
                   fmt="o-", capsize=4)
    right.axhline(0, color="grey", lw=0.8)
    right.set_xscale("log", base=2)
    right.set_xlabel("small_cnn width")
    right.set_ylabel("mAP shared − separate\n(95 % bootstrap interval)")
    C.save_plot(fig, "b")

    seconds = time.perf_counter() - start
    C.save_json("b", {"args": vars(args), "settings": settings, "checks": checks, "seconds": seconds})
    if args.no_doc:
        return
    tasks = settings[0]["numbers"]["tasks"]
    known = settings[0]["numbers"]["train_known"]
    small, big = settings[0], settings[-1]
    loses_small = small["winner"] == "separate"
    holds_big = big["winner"] == "shared"
    gains = {s["width"]: -s["numbers"]["approaches"]["separate"]["difference"]["mean"] for s in settings}
    verdict = ("The claim held: " if loses_small and holds_big else "The claim held only in part: " if holds_big
               else "The claim did not hold: ")
    verdict += (f"at width {small['width']} the shared network is "
                + ("significantly worse" if loses_small else "not significantly worse")
                + f" than separate networks (mAP shared − separate {gains[small['width']]:+.3f}); at width "
                f"{big['width']} the shared network {'matches or beats' if holds_big else 'is still worse than'} "
                f"them ({gains[big['width']]:+.3f}). Gain of sharing by width: "
                + ", ".join(f"{w}: {g:+.3f}" for w, g in gains.items()) + ".")
    body = "\n\n".join([
        "## (b) Network size: sharing needs a big enough network",
        "**Claim.** A shared network loses to separate networks when it is too small to hold every task, and "
        "matches or beats them when it is big enough.",
        f"**Setup.** {args.images} road scenes at 32 px ({len(tasks)} tasks: {', '.join(tasks)}), "
        f"{args.hide:.0%} of the train/val labels hidden (≈ {min(known.values())}–{max(known.values())} training "
        f"labels per task), small_cnn depth 3 with widths {', '.join(map(str, widths))} (channels 1×, 2×, 4× the "
        f"width; representation 4× the width), {args.epochs} epochs, no augmentation, {args.seeds} seeds; each "
        "separate network has the same trunk as the shared one. Winner: separate if mAP(separate) − mAP(shared) "
        "is significantly > 0 (95 % bootstrap interval over test examples and seeds), else shared.",
        C.markdown_table(["width", "parameters shared", "parameters separate (all)", "mAP shared", "mAP separate",
                          "Δ separate − shared [95 % CI]", "train s shared / separate", "measured winner",
                          "advisor (before training)"], rows),
        "![mAP against width](plots/experiments_b.png)",
        f"**Verdict.** {verdict}"])
    C.write_section("b", body, "python experiments/b_width.py", seconds)


if __name__ == "__main__":
    main()
