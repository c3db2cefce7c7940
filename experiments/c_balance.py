"""(c) Data balance: does a task with little data gain from sharing with tasks that have much? And the reverse: one
task with much data among tasks with little.

Road scenes (4 object tasks, all labels known at first), then
  c1: one task (pedestrian) keeps only 3 % of its train/val labels, the others keep all;
  c2: one task (car) keeps all, the three others keep 3 % each.
Shared vs separate networks (same epochs), several seeds; for the small tasks also a separate network trained for
as many steps as the shared one (the comparison's "same epochs" gives a 60-label task only one step per epoch).
The advisor runs before training.

    .venv/bin/python experiments/c_balance.py              # writes docs/experiments.md (section c)
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common as C  # noqa: E402  (first: one torch thread)

SETTINGS = {
    "c1": {"title": "one small task among large ones", "small": ["pedestrian"]},
    "c2": {"title": "one large task among small ones", "small": ["pedestrian", "stop_sign", "traffic_light"]},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--keep", type=float, default=0.03, help="fraction of a small task's labels kept")
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()

    out = C.fresh(C.RUNS / "c")
    path = C.scenes("c_scenes", n_images=args.images, image_size=32, seed=3)
    full = C.read(path)
    config = C.image_config(out, width=args.width, epochs=args.epochs)
    results, checks, sections = {}, [], []
    for key, setting in SETTINGS.items():
        C.log(f"(c) {key}: {setting['title']}")
        table = full
        for task in setting["small"]:
            table = C.keep_known(table, task, args.keep, seed=11)
        advice = C.run_advice(config, table, out / key / "advice")
        approaches, groups = C.plan(advice)
        comparison, walls = C.run_compare(config, table, approaches, out / key, seeds=range(args.seeds),
                                          groups=groups)
        numbers = C.comparison_numbers(comparison, walls)
        winner = C.measured_winner(comparison)
        # control: each small task's own network, trained for as many steps as the shared network
        n_shared = len(table.part("train"))
        control = {}
        for task in setting["small"]:
            part = table.select_tasks([task], drop_unlabelled=True)
            n_own = int(part.part("train").known.sum())
            epochs = int(math.ceil(args.epochs * n_shared / max(n_own, 1)))
            runs = [C.train_single(config, part, out / key / "same_steps" / f"{task}-seed{s}", s,
                                   **{"train.epochs": epochs}).path for s in range(args.seeds)]
            shared_runs = [r.runs[task] for r in comparison.results["shared"]]
            separate_runs = [r.runs[task] for r in comparison.results["separate"]]
            control[task] = {
                "epochs": epochs, "labels": n_own,
                "ap": sum(C.test_ap(r, task) for r in runs) / len(runs),
                "difference_vs_shared": C.diff_dict(C.paired_difference(shared_runs, runs, task)),
                "difference_vs_separate": C.diff_dict(C.paired_difference(separate_runs, runs, task)),
            }
        task_winners = {t: C.measured_winner(comparison, t) for t in comparison.tasks}
        results[key] = {"numbers": numbers, "winner": winner, "task_winners": task_winners, "advice": advice,
                        "control": control}
        checks.append({"setting": f"(c) {key}: {setting['title']}", "advisor": advice["recommendation"],
                       "advisor_approach": C.approach_of_call(advice["recommendation"]), "winner": winner,
                       "match": C.approach_of_call(advice["recommendation"]) == winner,
                       "task_calls": {t: advice["calls"][t] for t in setting["small"]},
                       "task_winners": {t: task_winners[t] for t in setting["small"]},
                       "relatedness_median": advice["relatedness_median"],
                       "capacity_flagged": advice["capacity_flagged"]})

        rows = []
        separate = numbers["approaches"]["separate"]
        for task in comparison.tasks:
            d = separate["task_difference"][task]
            rows.append([task + (" (small)" if task in setting["small"] else ""), numbers["train_known"][task],
                         f"{numbers['approaches']['shared']['task_ap'][task]:.3f}",
                         f"{separate['task_ap'][task]:.3f}", C.fmt_diff(d),
                         f"{control[task]['ap']:.3f} ({control[task]['epochs']} epochs)" if task in control else "",
                         task_winners[task], advice["calls"][task]])
        rows.append(["**macro mean**", "", f"{numbers['approaches']['shared']['map']:.3f}",
                     f"{separate['map']:.3f}", C.fmt_diff(separate["difference"]) + C.groups_note(numbers), "", winner,
                     advice["recommendation"]])
        sections.append("\n\n".join([
            f"### {key}: {setting['title']}",
            C.markdown_table(["task", "train labels", "AP shared", "AP separate", "Δ separate − shared [95 % CI]",
                              "AP own network, same steps as shared", "measured winner", "advisor"], rows),
            "Controls (own network with as many steps as the shared one) against the shared network: "
            + "; ".join(f"{t}: Δ own(same steps) − shared {C.fmt_diff(c['difference_vs_shared'])}"
                        for t, c in control.items()) + "."]))

    fig = C.new_figure(figsize=(10, 3.4))
    axes = fig.subplots(1, 2)
    for axis, (key, setting) in zip(axes, SETTINGS.items(), strict=True):
        numbers = results[key]["numbers"]
        tasks = numbers["tasks"]
        xs = range(len(tasks))
        axis.bar([x - 0.27 for x in xs], [numbers["approaches"]["shared"]["task_ap"][t] for t in tasks], 0.27,
                 label="shared")
        axis.bar(list(xs), [numbers["approaches"]["separate"]["task_ap"][t] for t in tasks], 0.27,
                 label="separate (same epochs)")
        control = results[key]["control"]
        axis.bar([x + 0.27 for x in xs], [control[t]["ap"] if t in control else 0 for t in tasks], 0.27,
                 label="own network, same steps")
        axis.set_xticks(list(xs))
        axis.set_xticklabels([t + ("*" if t in setting["small"] else "") for t in tasks], fontsize=8)
        axis.set_ylabel("test AP")
        axis.set_title(f"{key}: {setting['title']} (* = {args.keep:.0%} of labels)", fontsize=9)
        axis.legend(fontsize=7)
    C.save_plot(fig, "c")

    seconds = time.perf_counter() - start
    C.save_json("c", {"args": vars(args), "results": results, "checks": checks, "seconds": seconds})
    if args.no_doc:
        return
    c1, c2 = results["c1"], results["c2"]
    small1 = SETTINGS["c1"]["small"][0]
    gain1 = -c1["numbers"]["approaches"]["separate"]["task_difference"][small1]["mean"]
    sig1 = c1["numbers"]["approaches"]["separate"]["task_difference"][small1]["significant"]
    ctrl1 = -c1["control"][small1]["difference_vs_shared"]["mean"]
    ctrl1_sig = c1["control"][small1]["difference_vs_shared"]["significant"]
    gains2 = {t: -c2["numbers"]["approaches"]["separate"]["task_difference"][t]["mean"]
              for t in SETTINGS["c2"]["small"]}
    big2 = [t for t in c2["numbers"]["tasks"] if t not in SETTINGS["c2"]["small"]][0]
    big_gain = -c2["numbers"]["approaches"]["separate"]["task_difference"][big2]["mean"]
    body = "\n\n".join([
        "## (c) Data balance: little data among much, and the reverse",
        "**Claim.** A task with little data gains from sharing a network with tasks that have much (their data "
        "trains the features it needs); a task with much data gains little from tasks with little.",
        f"**Setup.** {args.images} road scenes at 32 px, the 4 object tasks, all labels known; then a task keeps "
        f"a seeded random {args.keep:.0%} of its train/val labels (test labels all kept). small_cnn width "
        f"{args.width}, depth 3, {args.epochs} epochs, no augmentation, {args.seeds} seeds. Per task: AP of the "
        "shared network, of the separate network (the comparison's rule: same epochs, so a 60-label task gets "
        "one step per epoch), and of a separate network trained for as many steps as the shared one (a control "
        "for that rule). Δ with 95 % bootstrap intervals over test examples and seeds.",
        *sections,
        "![per-task AP, c1 and c2](plots/experiments_c.png)",
        f"**Verdict.** c1: the small task ({small1}) gains {gain1:+.3f} AP from sharing against its own network "
        f"with the same epochs ({'significant' if sig1 else 'not significant'}) and {ctrl1:+.3f} against its own "
        f"network with as many steps as the shared one ({'significant' if ctrl1_sig else 'not significant'}). "
        f"c2: the small tasks gain " + ", ".join(f"{t} {g:+.3f}" for t, g in gains2.items())
        + f"; the large task ({big2}) {big_gain:+.3f}. "
        + ("The claim held for the small task: it gains from sharing even against an own network trained as long."
           if gain1 > 0 and sig1 and ctrl1 > 0 else
           "The claim held only against the same-epochs rule: part of the gain is the extra training steps "
           "the shared network gives a small task." if gain1 > 0 and sig1 else
           "The claim did not hold: the small task does not gain significantly.")])
    C.write_section("c", body, "python experiments/c_balance.py", seconds)


if __name__ == "__main__":
    main()
