"""Run the five experiments (a–e) one after the other on one CPU thread, then the advisor check, and rewrite
docs/experiments.md (about 60 minutes on one core of a 2-core x86 machine).

    .venv/bin/python experiments/run_all.py
    .venv/bin/python experiments/run_all.py --only d,e      # some of them (the advisor check always runs)

(Makefile target suggestion: `experiments: setup` → `$(PY) experiments/run_all.py`.)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = {"a": "a_many_tasks.py", "b": "b_width.py", "c": "c_balance.py", "d": "d_unrelated.py",
           "e": "e_transfer.py"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(SCRIPTS), help="experiments to run ('' for none)")
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    times = {}
    start = time.perf_counter()
    for key in [k for k in args.only.split(",") if k]:
        t0 = time.perf_counter()
        print(f"=== experiment {key}: {SCRIPTS[key]}", flush=True)
        subprocess.run([sys.executable, str(HERE / SCRIPTS[key])], check=True, env=env)
        times[key] = time.perf_counter() - t0
    subprocess.run([sys.executable, str(HERE / "advisor_check.py")], check=True, env=env)
    total = time.perf_counter() - start
    sys.path.insert(0, str(HERE))
    import common as C

    # each script records its own run time in its JSON: the table holds the latest run of every experiment
    recorded = {key: (C.load_json(key) or {}).get("seconds") for key in SCRIPTS}
    if all(recorded.values()):
        rows = [[key, SCRIPTS[key], f"{seconds / 60:.1f}"] for key, seconds in recorded.items()]
        summed = sum(recorded.values())
        C.write_section("runtime", "\n\n".join([
            "## Runtime",
            f"All five experiments: **{summed / 60:.1f} minutes** (sum of the latest run of each script, advisor "
            f"calls included) on {C.machine()}; the machine was shared with another engineer's benchmarks "
            "during the runs, torch on one thread.",
            C.markdown_table(["experiment", "script", "minutes"], rows)]), "python experiments/run_all.py")
    print(f"total {total / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
