"""Reading a label table at scale: the project's reader against pandas on the same CSV file.

Tables of `rows` × `tasks` labels (30 % `?`, the rest 1 / 0) with an image column are generated once into a
scratch folder; each reader then runs in a fresh process, which reports its wall time and the growth of its peak
resident memory (fastest of three interleaved runs; the replaced reader once). Readers: `multitask`
(``read_label_table``: read, map the vocabulary, validate — the path behind ``multitask train``, image files
not opened), `pandas-pyarrow` (``pandas.read_csv(path, engine="pyarrow")``:
parse only) and, with ``--old``, the reader this one replaced (``git show <rev>:src/multitask/labels.py``).
"Arrays" is the size of what the reader returns (targets float32 + known bool + ids and image paths, their
Python strings included).

    python benchmarks/scale.py                     # sweep + the two issue tables, writes docs/benchmarks.md
    python benchmarks/scale.py --quick             # small tables, no docs
    python benchmarks/scale.py --old 1acf6fd       # also time the replaced reader at that commit
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

MAIN = ((1_000_000, 100), (100_000, 2_000))
SWEEP_ROWS = ((10_000, 100), (100_000, 100), (1_000_000, 100))
SWEEP_TASKS = ((100_000, 10), (100_000, 100), (100_000, 1_000), (100_000, 2_000))


def generate(path: Path, rows: int, tasks: int, unknown: float = 0.3, seed: int = 0) -> Path:
    """Write a CSV label table: `image` (img/0000000.jpg) then task columns t0…, values 1 / 0 / ? (fixed width)."""
    rng = np.random.default_rng(seed)
    name_width = 15
    with path.open("wb") as out:
        out.write(("image," + ",".join(f"t{j}" for j in range(tasks)) + "\n").encode())
        block = max(1, 20_000_000 // (2 * tasks + name_width))
        for start in range(0, rows, block):
            n = min(block, rows - start)
            lines = np.full((n, name_width + 2 * tasks), ord(","), dtype=np.uint8)
            names = np.char.add("img/", np.char.zfill(np.arange(start, start + n).astype(str), 7))
            names = np.char.add(names, ".jpg").astype("S15")
            lines[:, :name_width] = np.frombuffer(names.tobytes(), dtype=np.uint8).reshape(n, name_width)
            draw = rng.random((n, tasks))
            cells = np.where(draw < unknown, ord("?"), np.where(rng.random((n, tasks)) < 0.5, ord("1"), ord("0")))
            lines[:, name_width + 1::2] = cells
            lines[:, -1] = ord("\n")
            out.write(lines.tobytes())
    return path


_CHILD = r"""
import json, sys, time
reader, path, old = sys.argv[1], sys.argv[2], sys.argv[3]
import numpy as np, pandas as pd, pyarrow
def size(t):
    strings = sum(map(sys.getsizeof, t.ids)) + sum(map(sys.getsizeof, t.images))
    return t.targets.nbytes + t.known.nbytes + t.ids.nbytes + t.images.nbytes + strings
if reader == "multitask":
    from multitask.tables import read_label_table
    def run():
        t = read_label_table(path, input_column="image", check_files=False)
        return lambda: (size(t), t.n_tasks)
elif reader == "old":
    import importlib.util
    spec = importlib.util.spec_from_file_location("old_labels", old)
    module = importlib.util.module_from_spec(spec); sys.modules["old_labels"] = module; spec.loader.exec_module(module)
    def run():
        t = module.read_label_table(path, input_column="image", check_files=False)
        return lambda: (size(t), t.n_tasks)
else:
    def run():
        frame = pd.read_csv(path, engine="pyarrow")
        return lambda: (int(frame.memory_usage(deep=False).sum()), frame.shape[1] - 1)
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1])
with open("/proc/self/clear_refs", "w") as handle:  # resets the peak (VmHWM) to the current RSS
    handle.write("5")
before = status("VmRSS")
start = time.perf_counter()
result = run()
seconds = time.perf_counter() - start
peak = status("VmHWM") - before
nbytes, tasks = result()  # sizes are counted outside the timed call
print(json.dumps({"seconds": seconds, "peak_mib": peak / 1024, "array_mib": nbytes / 2**20, "tasks": tasks}))
"""


def measure(reader: str, path: Path, old: str = "") -> dict:
    done = subprocess.run([sys.executable, "-c", _CHILD, reader, str(path), old], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{reader} on {path}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def old_reader(revision: str, folder: Path) -> str:
    source = subprocess.run(["git", "show", f"{revision}:src/multitask/labels.py"], capture_output=True, text=True,
                            check=True, cwd=Path(__file__).resolve().parents[1]).stdout
    path = folder / "old_labels.py"
    path.write_text(source)
    return str(path)


def run_case(folder: Path, rows: int, tasks: int, readers: list[str], old: str, log: object,
             repeats: int = 3) -> dict:
    path = folder / f"labels_{rows}x{tasks}.csv"
    if not path.exists():
        generate(path, rows, tasks)
    result: dict = {"rows": rows, "tasks": tasks, "mb": path.stat().st_size / 1e6}
    for attempt in range(repeats):  # interleaved, the fastest of `repeats` (the machine may be shared)
        for reader in readers:
            if reader == "old" and attempt:
                continue
            got = measure(reader, path, old)
            log(f"{rows:>9} x {tasks:<5} {reader:<15} {json.dumps(got)}")
            if reader not in result or got["seconds"] < result[reader]["seconds"]:
                result[reader] = got
    return result


def plot(results: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # a script, not the library: no interactive backend wanted
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (key, fixed, label) in zip(axes, (("rows", 100, "rows (100 tasks)"), ("tasks", 100_000,
                                                                                   "tasks (100,000 rows)")),
                                       strict=True):
        cases = sorted((r for r in results if r["tasks" if key == "rows" else "rows"] == fixed),
                       key=lambda r: r[key])
        for reader in ("multitask", "pandas-pyarrow", "old"):
            points = [(r[key], r[reader]["seconds"]) for r in cases if reader in r]
            if points:
                ax.loglog(*zip(*points, strict=True), marker="o", label=reader)
        ax.set_xlabel(label)
        ax.set_ylabel("seconds")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle("Reading + validating a label table (CSV, 30 % unknown)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--old", default="", help="git revision of the replaced reader (labels.py) to time too")
    parser.add_argument("--folder", type=Path, default=None, help="scratch folder for the generated tables")
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="multitask-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    old = old_reader(args.old, folder) if args.old else ""
    readers = ["multitask", "pandas-pyarrow"] + (["old"] if old else [])
    cases = ((20_000, 100), (2_000, 2_000)) if args.quick else tuple(dict.fromkeys(SWEEP_ROWS + SWEEP_TASKS + MAIN))
    results = [run_case(folder, rows, tasks, readers, old, lambda m: print(m, flush=True)) for rows, tasks in cases]
    if args.quick:
        return

    from common import markdown_table, write_section

    root = Path(__file__).resolve().parents[1]
    plot(results, root / "docs" / "plots" / "scale_reading.png")
    header = ["rows × tasks", "CSV MB", "multitask s", "pandas-pyarrow s", "ratio", "multitask peak MiB",
              "arrays MiB", "peak / arrays"] + (["replaced reader s"] if old else [])
    rows = []
    for r in results:
        m, p = r["multitask"], r["pandas-pyarrow"]
        row = [f"{r['rows']:,} × {r['tasks']:,}", f"{r['mb']:.0f}", f"{m['seconds']:.2f}", f"{p['seconds']:.2f}",
               f"{m['seconds'] / p['seconds']:.2f}", f"{m['peak_mib']:.0f}", f"{m['array_mib']:.0f}",
               f"{m['peak_mib'] / m['array_mib']:.2f}"]
        if old:
            row.append(f"{r['old']['seconds']:.1f}")
        rows.append(row)
    body = ("## Scale: reading label tables\n\n"
            "Read + validate a CSV label table (image column + task columns, 30 % `?`, the rest 1 / 0) through "
            "`multitask.tables.read_label_table` (the path behind `multitask train`; image files not opened), "
            "against `pandas.read_csv(path, engine=\"pyarrow\")` (parse only) on the same file, each in a fresh "
            "process, fastest of three interleaved runs (the replaced reader: one run). Peak: growth of the process's "
            "peak resident memory during the call (VmHWM after resetting it); arrays: targets "
            "(float32) + known (bool) + ids + image paths (with their Python strings) as returned. "
            "Target (issue 15): ratio ≤ 1.5 on "
            "1,000,000 × 100 and 100,000 × 2,000, peak / arrays ≤ 1.5.\n\n"
            + markdown_table(header, rows)
            + "\n\n![reading time vs rows and tasks](plots/scale_reading.png)")
    command = "python benchmarks/scale.py" + (f" --old {args.old}" if args.old else "")
    write_section("scale", body, command)
    print(body)


if __name__ == "__main__":
    main()
