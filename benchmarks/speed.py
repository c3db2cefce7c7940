"""Speed and memory of one training step as the number of tasks grows.

A step is forward + backward + AdamW step (the fastest of 10, 1 torch thread by default) of a fixed CNN trunk
(small_cnn, width 32, depth 4) on 64-px images, batch 64, with 30 % of the labels unknown. Measured: the shared
network with equal weighting for T ∈ {1, 4, 40, 100, 400}; T separate single-task networks (measured up to T = 40,
extrapolated beyond as T × the single-task step, and marked so); every weighting / gradient method at T = 40; the
sharing architectures. Each configuration runs in its own process so that its peak memory (the growth of peak RSS
from the built model to the end of the steps) is its own.

    python benchmarks/speed.py            # prints the tables and writes them to docs/benchmarks.md
    python benchmarks/speed.py --quick    # fewer repeats, no docs
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

TASK_COUNTS = (1, 4, 40, 100, 400)
SEPARATE_MEASURED = (4, 40)
BATCH, SIZE = 64, 64
SLOW = {"repeats": 3, "warmup": 1}  # configurations whose step takes seconds: fewer repeats suffice


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def build_step(spec: dict):
    """(step function, parameter count) of one configuration: a step trains every network of it on one batch."""
    import torch

    from multitask.config import build_config
    from multitask.models.network import build_network
    from multitask.training import MultiTaskModule

    torch.manual_seed(0)
    n_tasks, networks = spec["tasks"], spec.get("networks", 1)
    config = build_config({
        "model": {"trunk": "small_cnn", "trunk_options": {"width": 32, "depth": 4},
                  "sharing": spec.get("sharing", "hard")},
        "train": {"weighting": spec.get("weighting", "equal"), "gradients": spec.get("gradients", "representation")},
    })
    modules, optimizers = [], []
    for _ in range(networks):
        network = build_network(config.model, n_tasks)
        module = MultiTaskModule(network, tuple(f"t{j}" for j in range(n_tasks)), config.loss, config.train)
        module.log = lambda *args, **kwargs: None
        module.train()
        modules.append(module)
        optimizers.append(torch.optim.AdamW(module.parameters(), lr=1e-3))
    x = torch.rand(BATCH, 3, SIZE, SIZE)
    targets = (torch.rand(BATCH, n_tasks) < 0.3).float()
    known = torch.rand(BATCH, n_tasks) < 0.7
    batch = (x, targets, known)

    def step(i: int) -> None:
        for module, optimizer in zip(modules, optimizers, strict=True):
            optimizer.zero_grad(set_to_none=True)
            module.training_step(batch, i).backward()
            optimizer.step()
            module.on_train_batch_end(None, batch, i)

    return step, sum(p.numel() for m in modules for p in m.network.parameters())


def worker(spec: dict) -> dict:
    """Time `repeats` steps of one configuration in this process; its peak memory is the process's."""
    import torch

    torch.set_num_threads(spec["threads"])
    step, parameters = build_step(spec)
    before = _rss_kib("VmRSS")  # the model is built; the steps' activations, gradients and optimizer state follow
    for i in range(spec["warmup"]):
        step(i)
    times = []
    for i in range(spec["repeats"]):
        start = time.perf_counter()
        step(i)
        times.append(time.perf_counter() - start)
    return {"ms": 1000 * min(times), "peak_mib": max(_rss_kib("VmHWM") - before, 0) / 1024, "parameters": parameters}


def interleaved_worker(job: dict) -> list[float]:
    """Fastest step (ms) of each configuration in `job["specs"]`, all built in this process and stepped in turn.

    One process and step-by-step interleaving: a slow spell of the machine hits every configuration alike, so
    the ratios between them are precise to a few per cent even where one process's speed differs from the next.
    """
    import torch

    torch.set_num_threads(job["threads"])
    steps = [build_step(spec)[0] for spec in job["specs"]]
    best = [float("inf")] * len(steps)
    for i in range(job["warmup"] + job["repeats"]):
        for k, step in enumerate(steps):
            start = time.perf_counter()
            step(i)
            if i >= job["warmup"]:
                best[k] = min(best[k], 1000 * (time.perf_counter() - start))
    return best


def measure(spec: dict) -> dict:
    result = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True)
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1] if result.stderr else "failed"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def reference_of(spec: dict) -> dict:
    """What a configuration's step is compared with: one single-task network for separate networks, else hard
    sharing with equal weighting and the same number of tasks."""
    return {"tasks": 1} if spec.get("networks", 1) > 1 else {"tasks": spec["tasks"]}


def is_slow(spec: dict) -> bool:
    return all(spec.get(k) == v for k, v in SLOW.items())


def measure_rounds(plan: list[dict], base: dict, rounds: int) -> list[dict]:
    """Measure every configuration of `plan` in `rounds` interleaved passes and keep each one's fastest pass.

    Interleaving spreads slow drifts of the machine's speed (other tenants, clock changes) over all
    configurations instead of charging them to whichever ran at the time. Configurations marked SLOW run once.
    """
    best: list[dict | None] = [None] * len(plan)
    for round_ in range(rounds):
        for i, spec in enumerate(plan):
            if round_ > 0 and is_slow(spec):
                continue
            result = measure({**base, **spec, **({"repeats": 1} if is_slow(spec) else {})})
            print(f"  round {round_ + 1}/{rounds} {spec} → {result}", flush=True)
            if best[i] is None or "error" in best[i] or ("error" not in result and result["ms"] < best[i]["ms"]):
                best[i] = result
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="3 repeats, nothing written to docs")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1, help="passes of one process per configuration (peak "
                        "memory, and the time of the multi-second ones); each keeps its fastest")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per measurement (default 1: stable "
                        "when other work shares the machine)")
    args = parser.parse_args()
    if args.worker:
        job = json.loads(args.worker)
        print(json.dumps(interleaved_worker(job) if "specs" in job else worker(job)))
        return

    import torch
    from common import markdown_table, write_section

    torch.set_num_threads(args.threads)  # what the footer reports: the workers' thread count

    from multitask.models.network import SHARING
    from multitask.weighting import WEIGHTINGS

    repeats, warmup = (3, 1) if args.quick else (args.repeats, 3)
    base = {"repeats": repeats, "warmup": warmup, "threads": args.threads}
    plan: list[dict] = [{"tasks": t} for t in TASK_COUNTS]
    plan += [{"tasks": 1, "networks": t, **(SLOW if t >= 40 else {})} for t in SEPARATE_MEASURED]
    plan += [{"tasks": 40, "weighting": name} for name in WEIGHTINGS.names() if name != "equal"]
    plan += [{"tasks": 40, "weighting": name, "gradients": "parameters", **SLOW} for name in ("mgda", "upgrad")]
    plan += [{"tasks": t, "sharing": sharing, **(SLOW if (sharing, t) == ("cross_stitch", 40) else {})}
             for sharing in SHARING.names() if sharing != "hard" for t in (4, 40)]
    measured = measure_rounds(plan, base, 1 if args.quick else args.rounds)  # peak memory of each, in its process
    quick = [i for i, spec in enumerate(plan) if not is_slow(spec) and "error" not in measured[i]]
    print("Interleaved in one process:", flush=True)
    interleaved = measure({**base, "specs": [plan[i] for i in quick]})
    for i, ms in zip(quick, interleaved, strict=True):
        measured[i] = {**measured[i], "ms": ms}
        print(f"  {plan[i]} → {ms:.1f} ms", flush=True)
    print("Multi-second configurations, each interleaved with its reference:", flush=True)
    for i, spec in enumerate(plan):
        if is_slow(spec) and "error" not in measured[i]:
            reference_ms, ms = measure({**base, **SLOW, "specs": [reference_of(spec), spec]})
            measured[i] = {**measured[i], "ms": ms, "reference_ms": reference_ms}
            print(f"  {spec} → {ms:.1f} ms against {reference_ms:.1f} ms", flush=True)

    def run(**spec: object) -> dict:
        return next(measured[i] for i, p in enumerate(plan) if {k: v for k, v in p.items() if k not in SLOW} == spec)

    def ratio(result: dict, reference: dict) -> float:
        """result / reference step time, both measured in the same process."""
        return result["ms"] / result.get("reference_ms", reference["ms"])

    shared = {t: run(tasks=t) for t in TASK_COUNTS}
    single = shared[1]["ms"]
    separate = {t: run(tasks=1, networks=t) for t in SEPARATE_MEASURED}
    rows = []
    for t in TASK_COUNTS:
        s = shared[t]
        if t == 1:
            sep_ratio, how = 1.0, "measured"
        elif t in separate:
            sep_ratio, how = ratio(separate[t], shared[1]), "measured"
        else:
            sep_ratio, how = float(t), f"extrapolated: {t} × single"
        speedup = sep_ratio / ratio(s, shared[1])
        rows.append([t, f"{s['ms']:.1f}", f"{ratio(s, shared[1]):.3f}", f"{s['peak_mib']:.0f}",
                     f"{sep_ratio * single:.0f}", f"{sep_ratio:.1f}", how, f"{speedup:.1f} ({speedup / t:.2f}·T)"])
    step_table = markdown_table(
        ["T", "shared step (ms)", "shared / single-task step", "shared peak memory (MiB)", "separate step (ms)",
         "separate / single-task", "separate measured?", "speed-up of shared"], rows)

    method_rows = []
    for name in WEIGHTINGS.names():
        r = shared[40] if name == "equal" else run(tasks=40, weighting=name)
        if "error" in r:
            method_rows.append([name, "representation", "error: " + r["error"], "", ""])
            continue
        method_rows.append([name, "representation" if WEIGHTINGS.get(name).needs_gradients else "(loss weighting)",
                            f"{r['ms']:.1f}", f"{ratio(r, shared[40]):.2f}", f"{r['peak_mib']:.0f}"])
    for name in ("mgda", "upgrad"):
        r = run(tasks=40, weighting=name, gradients="parameters")
        if "error" not in r:
            method_rows.append([name, "parameters (full Jacobian)", f"{r['ms']:.1f}", f"{ratio(r, shared[40]):.2f}",
                                f"{r['peak_mib']:.0f}"])
    method_table = markdown_table(["method", "per-task gradients", "step (ms)", "/ equal", "peak memory (MiB)"],
                                  method_rows)

    arch_rows = []
    for sharing in SHARING.names():
        for t in (4, 40):
            r = shared[t] if sharing == "hard" else run(tasks=t, sharing=sharing)
            if "error" in r:
                arch_rows.append([sharing, t, "error: " + r["error"], "", "", ""])
                continue
            arch_rows.append([sharing, t, f"{r['parameters']:,}", f"{r['ms']:.1f}",
                              f"{ratio(r, shared[t]):.2f}", f"{r['peak_mib']:.0f}"])
    arch_table = markdown_table(["sharing", "T", "parameters", "step (ms)", "/ hard", "peak memory (MiB)"], arch_rows)

    body = "\n\n".join([
        "## Speed: one training step as tasks are added",
        "Forward + backward + AdamW step, small_cnn (width 32, depth 4), 64-px images, batch 64, 30 % of labels "
        f"unknown, {args.threads} torch thread(s). Step times: every configuration whose step takes under a second "
        "is built in ONE process and stepped in turn (3 warm-up rounds, then the fastest of "
        f"{args.repeats}), so that a slow spell of the machine hits all of them alike — one process's speed differs "
        "from the next by up to 15 % here, more than the differences measured. The multi-second configurations "
        "(40 separate networks, full-Jacobian modes, cross-stitch at T = 40) are each stepped in turn with their "
        "reference (one single-task network; hard sharing with equal weighting) in a process of their own (fastest "
        "of 3 after 1 warm-up), and their ratio is taken there. Peak memory: each "
        "configuration in its own process, the growth of its peak resident memory from the built model to the end "
        "of the steps (activations, gradients, optimizer state; CPU).",
        step_table,
        "Targets (issue 4): shared step at T = 100 ≤ 1.05 × and at T = 400 ≤ 1.2 × the single-task step; "
        "shared ≥ 0.9·T × faster than T separate networks.",
        "### Every weighting / gradient method at T = 40",
        "Representation-gradient methods differentiate each task's loss with respect to the shared representation "
        "(one backward pass through the trunk); target ≤ 1.5 × the equal-weighting step.",
        method_table,
        "### Sharing architectures",
        arch_table,
    ])
    print(body)
    if not args.quick:
        write_section("speed", body, "python benchmarks/speed.py")


if __name__ == "__main__":
    main()
