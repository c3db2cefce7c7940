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


def worker(spec: dict) -> dict:
    """Time `repeats` steps of one configuration in this process."""
    import torch

    from multitask.config import build_config
    from multitask.models.network import build_network
    from multitask.training import MultiTaskModule

    torch.set_num_threads(spec["threads"])
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

    before = _rss_kib("VmRSS")  # the model is built; the steps' activations, gradients and optimizer state follow
    for i in range(spec["warmup"]):
        step(i)
    times = []
    for i in range(spec["repeats"]):
        start = time.perf_counter()
        step(i)
        times.append(time.perf_counter() - start)
    return {"ms": 1000 * min(times), "peak_mib": max(_rss_kib("VmHWM") - before, 0) / 1024,
            "parameters": sum(p.numel() for m in modules for p in m.network.parameters())}


def measure(spec: dict) -> dict:
    result = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True)
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1] if result.stderr else "failed"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="3 repeats, nothing written to docs")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per measurement (default 1: stable "
                        "when other work shares the machine)")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return

    from common import markdown_table, write_section

    from multitask.models.network import SHARING
    from multitask.weighting import WEIGHTINGS

    repeats, warmup = (3, 1) if args.quick else (args.repeats, 3)
    base = {"repeats": repeats, "warmup": warmup, "threads": args.threads}

    def run(**spec: object) -> dict:
        result = measure({**base, **spec})
        print(f"  {spec} → {result}", flush=True)
        return result

    print("Shared network, equal weighting:")
    shared = {t: run(tasks=t) for t in TASK_COUNTS}
    single = shared[1]["ms"]
    print("Separate networks:")
    separate = {t: run(tasks=1, networks=t, **(SLOW if t >= 40 else {})) for t in SEPARATE_MEASURED}
    rows = []
    for t in TASK_COUNTS:
        s = shared[t]
        if t == 1:
            sep_ms, how = single, "measured"
        elif t in separate:
            sep_ms, how = separate[t]["ms"], "measured"
        else:
            sep_ms, how = t * single, f"extrapolated: {t} × single"
        rows.append([t, f"{s['ms']:.1f}", f"{s['ms'] / single:.3f}", f"{s['peak_mib']:.0f}", f"{sep_ms:.0f}",
                     f"{sep_ms / single:.1f}", how, f"{sep_ms / s['ms']:.1f} ({sep_ms / s['ms'] / t:.2f}·T)"])
    step_table = markdown_table(
        ["T", "shared step (ms)", "shared / single-task step", "shared peak memory (MiB)", "separate step (ms)",
         "separate / single-task", "separate measured?", "speed-up of shared"], rows)

    print("Weighting and gradient methods at T = 40:")
    equal40 = shared[40]["ms"]
    method_rows = []
    for name in WEIGHTINGS.names():
        r = shared[40] if name == "equal" else run(tasks=40, weighting=name)
        if "error" in r:
            method_rows.append([name, "representation", "error: " + r["error"], "", ""])
            continue
        method_rows.append([name, "representation" if WEIGHTINGS.get(name).needs_gradients else "(loss weighting)",
                            f"{r['ms']:.1f}", f"{r['ms'] / equal40:.2f}", f"{r['peak_mib']:.0f}"])
    for name in ("mgda", "upgrad"):
        r = run(tasks=40, weighting=name, gradients="parameters", **SLOW)
        if "error" not in r:
            method_rows.append([name, "parameters (full Jacobian)", f"{r['ms']:.1f}", f"{r['ms'] / equal40:.2f}",
                                f"{r['peak_mib']:.0f}"])
    method_table = markdown_table(["method", "per-task gradients", "step (ms)", "/ equal", "peak memory (MiB)"],
                                  method_rows)

    print("Sharing architectures:")
    arch_rows = []
    for sharing in SHARING.names():
        for t in (4, 40):
            slow = SLOW if (sharing, t) == ("cross_stitch", 40) else {}
            r = shared[t] if sharing == "hard" else run(tasks=t, sharing=sharing, **slow)
            if "error" in r:
                arch_rows.append([sharing, t, "error: " + r["error"], "", "", ""])
                continue
            arch_rows.append([sharing, t, f"{r['parameters']:,}", f"{r['ms']:.1f}",
                              f"{r['ms'] / shared[t]['ms']:.2f}", f"{r['peak_mib']:.0f}"])
    arch_table = markdown_table(["sharing", "T", "parameters", "step (ms)", "/ hard", "peak memory (MiB)"], arch_rows)

    body = "\n\n".join([
        "## Speed: one training step as tasks are added",
        "Forward + backward + AdamW step, small_cnn (width 32, depth 4), 64-px images, batch 64, 30 % of labels "
        "unknown; the fastest of the timed steps (10 after 3 warm-up steps; 3 after 1 for the configurations whose "
        "step takes seconds: 40 separate networks, full-Jacobian modes, cross-stitch at T = 40), each "
        f"configuration in its own process with {args.threads} torch thread(s). Peak memory is the growth of the "
        "process's peak resident memory from before the first step to the end (activations, gradients, optimizer "
        "state; CPU).",
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
