"""(a) The lecture's favourable case: 100 tasks with about 1,000 labels each. One shared network against 100
isolated networks: per-task AP, mean AP, and the cost of each (parameters, training time, inference time).

Road scenes at 32 px with the 4 object tasks and the first 96 attribute tasks; a seeded random ~90 % of the
train/val labels hidden so that every task is known on about 1,000 training rows (each row then has ~10 known
labels: each task has few labels, all tasks together have many). The isolated networks use the same trunk and
the same epochs as the shared one (the comparison's rules); each sees only its task's known rows.

    .venv/bin/python experiments/a_many_tasks.py           # writes docs/experiments.md (section a)
    .venv/bin/python experiments/a_many_tasks.py --images 3000 --tasks 20 --no-doc   # a quick version
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as C  # noqa: E402  (first: one torch thread)
import numpy as np  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=15000)
    parser.add_argument("--tasks", type=int, default=100, help="4 object tasks + (tasks − 4) attribute tasks")
    parser.add_argument("--per-task", type=int, default=1000, help="known training labels per task (about)")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--wide", default="32,64", help="also shared networks this wide (comma-separated; 0: none)")
    parser.add_argument("--add-wide", default=None, help="train only shared networks of these widths, reusing the "
                        "saved comparison, and rewrite the section")
    C.add_doc_options(parser)
    args = parser.parse_args()
    if C.rewrite_doc_only(args, "a", write_doc):
        return
    if args.add_wide:
        add_wide(args)
        return
    start = time.perf_counter()

    out = C.fresh(C.RUNS / "a")
    table, n_train = scenes_table(args)
    config = C.image_config(out, width=args.width, epochs=args.epochs)
    C.log(f"(a) {table.n_tasks} tasks, {n_train} training rows")
    advice = C.run_advice(config, table, out / "advice")
    approaches, groups = C.plan(advice)
    comparison, walls = C.run_compare(config, table, approaches, out / "compare", seeds=range(args.seeds),
                                      groups=groups)
    numbers = C.comparison_numbers(comparison, walls)
    winner = C.measured_winner(comparison)
    wides = [train_wide(table, comparison, out, width, args.epochs) for width in widths_of(args.wide)]
    tasks = numbers["tasks"]
    positives = {t: int(v) for t, v in zip(tasks, table.part("test").positives().tolist(), strict=True)}
    check = {"setting": f"(a) {len(tasks)} tasks × ~{args.per_task} labels", "advisor": advice["recommendation"],
             "advisor_approach": C.approach_of_call(advice["recommendation"]), "winner": winner,
             "match": C.approach_of_call(advice["recommendation"]) == winner,
             "relatedness_median": advice["relatedness_median"], "capacity_flagged": advice["capacity_flagged"]}

    seconds = time.perf_counter() - start
    data = {"args": vars(args), "numbers": numbers, "winner": winner, "advice": advice, "checks": [check],
            "wides": wides, "test_positives": positives, "n_train": n_train, "seconds": seconds}
    C.save_json("a", data)
    if not args.no_doc:
        write_doc(data)


def widths_of(text: str) -> list[int]:
    return [int(w) for w in str(text).split(",") if int(w) > 0]


def scenes_table(args: argparse.Namespace):
    """The experiment's table: generated scenes (cached) with the seeded label hiding."""
    full = C.read(C.scenes("a_scenes", n_images=args.images, image_size=32, extra_tasks=args.tasks - 4, seed=0,
                           workers=1))
    n_train = int((full.split == "train").sum())
    return full.hide_labels(1 - args.per_task / n_train, seed=0), n_train


def train_wide(table, comparison, out, width: int, epochs: int) -> dict:
    """A shared network `width` wide, compared with the isolated networks of `comparison`."""
    from multitask.compare import Comparison

    config = C.image_config(out, width=width, epochs=epochs)
    wide_comparison, walls = C.run_compare(config, table, ["shared"], out / f"wide{width}",
                                           seeds=range(len(comparison.results["separate"])))
    both = Comparison(comparison.tasks, {"wide": wide_comparison.results["shared"],
                                         "separate": comparison.results["separate"]}, out, comparison.train_known)
    numbers = C.comparison_numbers(wide_comparison, walls)["approaches"]["shared"]
    return {**numbers, "width": width, "difference_separate_minus_wide": C.diff_dict(both.difference("separate", None)),
            "task_difference": {t: C.diff_dict(both.difference("separate", t)) for t in comparison.tasks}}


def add_wide(args: argparse.Namespace) -> None:
    """Shared networks of more widths against the saved isolated networks; the section is rewritten."""
    from multitask.compare import Comparison

    data = C.load_json("a")
    if data is None:
        raise SystemExit("no runs/experiments/a.json: run the experiment first")
    start = time.perf_counter()
    saved = argparse.Namespace(**data["args"])
    out = C.RUNS / "a"
    table, _ = scenes_table(saved)
    comparison = Comparison.load(out / "compare")
    wides = wides_of(data)
    done = {w["width"] for w in wides}
    wides += [train_wide(table, comparison, out, width, saved.epochs) for width in widths_of(args.add_wide)
              if width not in done]
    data["wides"] = sorted(wides, key=lambda w: w["width"])
    data.pop("wide", None)
    data["args"]["wide"] = ",".join(str(w["width"]) for w in data["wides"])
    data["seconds"] = data.get("seconds", 0) + time.perf_counter() - start
    C.save_json("a", data)
    write_doc(data)


def wides_of(data: dict) -> list[dict]:
    return list(data.get("wides") or ([data["wide"]] if data.get("wide") else []))


def write_doc(data: dict) -> None:
    args = argparse.Namespace(**data["args"])
    numbers, winner, positives = data["numbers"], data["winner"], data["test_positives"]
    wides = wides_of(data)
    n_train = data.get("n_train") or round(0.7 * args.images)
    shared, separate = numbers["approaches"]["shared"], numbers["approaches"]["separate"]
    tasks = numbers["tasks"]
    ap_shared = np.array([shared["task_ap"][t] for t in tasks])
    ap_separate = np.array([separate["task_ap"][t] for t in tasks])
    diffs = separate["task_difference"]
    delta = np.array([-diffs[t]["mean"] for t in tasks])  # shared − separate
    better_shared = [t for t in tasks if diffs[t]["significant"] and diffs[t]["mean"] < 0]
    better_separate = [t for t in tasks if diffs[t]["significant"] and diffs[t]["mean"] > 0]

    fig = C.new_figure(figsize=(10, 3.8))
    left, right = fig.subplots(1, 2)
    left.scatter(ap_separate, ap_shared, s=12)
    for t in better_shared + better_separate:
        i = tasks.index(t)
        left.scatter([ap_separate[i]], [ap_shared[i]], s=24, facecolors="none",
                     edgecolors="tab:green" if t in better_shared else "tab:red")
    left.plot([0, 1], [0, 1], color="grey", lw=0.8)
    left.set_xlabel("test AP, isolated network")
    left.set_ylabel("test AP, shared network")
    left.set_title(f"{len(tasks)} tasks (green/red: shared significantly better/worse)", fontsize=9)
    right.hist(delta, bins=25)
    right.axvline(0, color="grey", lw=0.8)
    right.set_xlabel("AP shared − isolated, per task")
    right.set_ylabel("tasks")
    C.save_plot(fig, "a")

    q = [0.1, 0.25, 0.5, 0.75, 0.9]

    def quantiles(values: np.ndarray) -> str:
        return " / ".join(f"{v:.3f}" for v in np.quantile(values, q))

    known = numbers["train_known"]
    summary = C.markdown_table(
        ["", "shared", f"isolated ({len(tasks)} networks)"],
        [["mean AP over tasks (mAP)", f"{shared['map']:.3f}", f"{separate['map']:.3f}"],
         ["per-task AP: 10 / 25 / 50 / 75 / 90 % quantiles", quantiles(ap_shared), quantiles(ap_separate)],
         ["Δ mAP isolated − shared [95 % CI]", "", C.fmt_diff(separate["difference"]) + C.groups_note(numbers)],
         ["per-task AP shared − isolated: 10 / 25 / 50 / 75 / 90 %", quantiles(delta), ""],
         ["tasks where it is significantly better", f"{len(better_shared)}", f"{len(better_separate)}"],
         ["networks", "1", f"{separate['networks']}"],
         ["parameters", f"{shared['parameters']:,}", f"{separate['parameters']:,}"],
         ["training time (s, fit only, summed over networks)", f"{shared['train_seconds']:.0f}",
          f"{separate['train_seconds']:.0f}"],
         ["wall time (s, data loading, evaluation and saving included)", f"{shared['wall_seconds_all_seeds']:.0f}",
          f"{separate['wall_seconds_all_seeds']:.0f}"],
         ["inference (ms per example, all tasks, 1 thread)", f"{shared['inference_ms_per_example']:.2f}",
          f"{separate['inference_ms_per_example']:.2f}"]])
    wide_text = ""
    if wides:
        wide_rows = []
        for wide in wides:
            wd = wide["task_difference"]
            wide_rows.append([
                wide["width"], f"{wide['parameters']:,}", f"{separate['parameters'] / wide['parameters']:.0f}×",
                f"{wide['train_seconds']:.0f}", f"{wide['inference_ms_per_example']:.2f}", f"{wide['map']:.3f}",
                C.fmt_diff(wide["difference_separate_minus_wide"]),
                f"{sum(1 for d in wd.values() if d['significant'] and d['mean'] < 0)} / "
                f"{sum(1 for d in wd.values() if d['significant'] and d['mean'] > 0)}"])
        wide_text = "\n\n".join([
            "**Wider shared trunks.** The same shared network at larger widths, against the same isolated networks "
            f"(width {args.width}):",
            C.markdown_table(["width", "parameters", "fewer than isolated", "training (s)", "ms / example (all tasks)",
                              "mAP", "isolated − shared [95 % CI]", "tasks significantly better / worse"],
                             wide_rows)])
    worst = [t for t in sorted(tasks, key=lambda t: -diffs[t]["mean"]) if diffs[t]["mean"] > 0][:5] or ["none"]
    best = [t for t in sorted(tasks, key=lambda t: diffs[t]["mean"]) if diffs[t]["mean"] < 0][:5] or ["none"]
    held = winner == "shared" and delta.mean() >= 0
    body = "\n\n".join([
        "## (a) 100 tasks with ~1,000 labels each: one network against 100",
        "**Claim.** With many tasks that each have few labels but share features, one shared network is at least "
        "as accurate as one network per task, at a fraction of the cost.",
        f"**Setup.** {args.images:,} road scenes at 32 px (70/15/15 split), {len(tasks)} tasks (4 object tasks + "
        f"the first {len(tasks) - 4} attribute tasks: colour, side, size, \"two or more\", pairs of those); a "
        f"seeded random {1 - args.per_task / n_train:.1%} of the train/val labels hidden, so each task is known on "
        f"{min(known.values())}–{max(known.values())} training rows (median {int(np.median(list(known.values())))})"
        f" and each training row has ≈ {sum(known.values()) / n_train:.1f} known labels; test labels all known "
        f"(test positives per task: {min(positives.values())}–{max(positives.values())}). small_cnn width "
        f"{args.width}, depth 3, {args.epochs} epochs, batch 64, no augmentation, {args.seeds} seed"
        f"{'s' if args.seeds > 1 else ''}; each isolated network has the same trunk and epochs and trains on its "
        "task's known rows. Δ with 95 % bootstrap intervals over test examples"
        + (" and seeds." if args.seeds > 1 else "."),
        summary,
        "![per-task AP, shared against isolated](plots/experiments_a.png)",
        *([wide_text] if wide_text else []),
        "Largest gains of sharing (AP shared − isolated): "
        + ", ".join(f"{t} ({-diffs[t]['mean']:+.3f})" if t in diffs else t for t in best)
        + ". Largest losses: " + ", ".join(f"{t} ({-diffs[t]['mean']:+.3f})" if t in diffs else t for t in worst)
        + ".",
        f"**Verdict.** {'The claim held' if held else 'The claim did not hold'}: mAP {shared['map']:.3f} shared "
        f"against {separate['map']:.3f} isolated (measured winner: {winner}); the shared network has "
        f"{separate['parameters'] / shared['parameters']:.0f}× fewer parameters, trains "
        f"{separate['train_seconds'] / max(shared['train_seconds'], 1e-9):.1f}× faster and answers all tasks "
        f"{separate['inference_ms_per_example'] / shared['inference_ms_per_example']:.0f}× faster. "
        + (f"Its representation has {4 * args.width} features for {len(tasks)} tasks (one linear head each); "
           "on the half of the tasks the isolated networks learn best, sharing loses "
           f"{-delta[ap_separate > np.median(ap_separate)].mean():.2f} AP on average, on the other half "
           f"{-delta[ap_separate <= np.median(ap_separate)].mean():.2f}: the shared trunk is too small to learn "
           f"{len(tasks)} tasks at this width, as (b) finds for 8 tasks below width 32." if not held else "")
        + "".join(wide_sentence(wide, separate) for wide in wides if not held)])
    command = "python experiments/a_many_tasks.py" + (f" --wide {args.wide}" if str(args.wide) != "32,64" else "")
    C.write_section("a", body, command, data.get("seconds"))


def wide_sentence(wide: dict, separate: dict) -> str:
    """How much of the isolated networks' lead a wider shared network closes."""
    gap, left = separate["difference"]["mean"], wide["difference_separate_minus_wide"]
    if gap <= 0:
        return ""
    state = ("and is still significantly behind" if left["significant"] and left["mean"] > 0 else
             "and is significantly ahead" if left["significant"] else "and is no longer significantly different")
    return (f" A {wide['width']}-wide shared network closes {1 - left['mean'] / gap:.0%} of the gap {state}, at "
            f"1/{separate['parameters'] / wide['parameters']:.0f} of the parameters.")


if __name__ == "__main__":
    main()
