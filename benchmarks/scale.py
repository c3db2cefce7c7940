"""The input side at scale (issue 15), each part measured on this machine and written to docs/benchmarks.md:

1. reading: a CSV label table of `rows` × `tasks` (30 % `?`) through the project's reader against pandas on the
   same file, each reader in a fresh process (wall time, growth of peak resident memory; fastest of three
   interleaved runs; with ``--old REV`` also the reader it replaced), and a log-log plot vs rows and vs tasks;
2. compact labels: a 1,000,000 × 1,000 table at 99 % unknown read in a fresh process — the labels' bytes, the
   peak memory of reading, and of the training path's label work (per-task counts, the train split, batches);
3. decoding vs the training step: JPEG decode + resize + augmentation images/s on one core against the step's
   images/s at 128 and 224 px (when is training input-bound);
4. end-to-end training throughput: ``multitask``'s ``fit`` (from image files and from shards) against a plain
   PyTorch loop on the same network, JPEGs, transforms and DataLoader settings, interleaved in one process;
5. the T = 100 / T = 1 training-step ratio at 1 and 2 torch threads (benchmarks/speed.py's in-process
   interleaving, two processes per thread count).

Finished parts are saved in the scratch folder's ``scale_results.json``; ``--reuse`` keeps them.

    python benchmarks/scale.py                     # every part, writes docs/benchmarks.md
    python benchmarks/scale.py --reuse             # keep finished parts (e.g. after an interruption)
    python benchmarks/scale.py --quick             # small sizes, nothing written to docs
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
    """Reading time (top) and peak memory (bottom) vs rows and vs tasks, log-log, each reader a line."""
    import matplotlib

    matplotlib.use("Agg")  # a script, not the library: no interactive backend wanted
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
    for col, (key, fixed, label) in enumerate((("rows", 100, "rows (100 tasks)"),
                                               ("tasks", 100_000, "tasks (100,000 rows)"))):
        cases = sorted((r for r in results if r["tasks" if key == "rows" else "rows"] == fixed),
                       key=lambda r: r[key])
        for row, (measure_key, unit) in enumerate((("seconds", "seconds"), ("peak_mib", "peak memory (MiB)"))):
            ax = axes[row, col]
            for reader in ("multitask", "pandas-pyarrow", "old"):
                points = [(r[key], max(r[reader][measure_key], 1e-3)) for r in cases if reader in r]
                if points:
                    ax.loglog(*zip(*points, strict=True), marker="o", label=reader)
            if measure_key == "peak_mib":
                points = [(r[key], r["multitask"]["array_mib"]) for r in cases if "multitask" in r]
                ax.loglog(*zip(*points, strict=True), linestyle=":", color="0.4",
                          label="dense arrays (targets, known, ids, paths)")
            ax.set_xlabel(label)
            ax.set_ylabel(unit)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend()
    fig.suptitle("Reading + validating a label table (CSV, 30 % unknown), one process per run")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


# ------------------------------------------------------------------------------------------- compact labels
_COMPACT_CHILD = r"""
import json, sys, time
import numpy as np
path = sys.argv[1]
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
def reset():
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    return status("VmRSS")
from multitask.data.datasets import ImageDataset
from multitask.tables import read_label_table
from multitask.tables.compact import format_bytes
before = reset()
start = time.perf_counter()
table = read_label_table(path, input_column="image", check_files=False)
read_s = time.perf_counter() - start
read_peak, read_kept = status("VmHWM") - before, status("VmRSS") - before
labels = table.labels
before = reset()
start = time.perf_counter()
known, positive = table.task_counts("train")  # check_trainable and loss.pos_weight=balanced
train = table.part("train")
dataset = ImageDataset(train.images, train.labels, None, 32)  # what the data module builds (labels only used)
counts_s = time.perf_counter() - start
rng = np.random.default_rng(0)
start = time.perf_counter()
for _ in range(200):
    rows = rng.integers(0, len(train), 256)
    targets, mask = dataset.labels.rows(rows)
batch_ms = 1000 * (time.perf_counter() - start) / 200
train_peak = status("VmHWM") - before
n, t = labels.shape
sizes = format_bytes(n, t, labels.n_known)
print(json.dumps({"rows": n, "tasks": t, "known": labels.n_known, "format": labels.format,
                  "labels_mib": labels.nbytes / 2**20, "train_labels_mib": train.labels.nbytes / 2**20,
                  "packed_mib": sizes["packed"] / 2**20, "sparse_mib": sizes["sparse"] / 2**20,
                  "dense_mib": n * t * 5 / 2**20, "read_s": read_s, "read_peak_mib": read_peak,
                  "read_kept_mib": read_kept, "counts_s": counts_s, "batch_ms": batch_ms,
                  "train_peak_mib": train_peak, "csv_mb": __import__("os").path.getsize(path) / 1e6}))
"""


def reading_part(folder: Path, quick: bool, readers: list[str], old: str, store: Path, results: dict,
                 log: object) -> list[dict]:
    """Every reading case, each saved when done (``--reuse`` keeps finished cases of an unfinished part)."""
    cases = ((20_000, 100), (2_000, 2_000)) if quick else tuple(dict.fromkeys(SWEEP_ROWS + SWEEP_TASKS + MAIN))
    done = results.setdefault("reading_cases", {})
    for rows, tasks in cases:
        key = f"{rows}x{tasks}"
        if key in done:
            log(f"{key}: reused")
            continue
        done[key] = run_case(folder, rows, tasks, readers, old, log, repeats=2)
        store.write_text(json.dumps(results, indent=1))
    return [done[f"{rows}x{tasks}"] for rows, tasks in cases]


def compact_part(folder: Path, quick: bool, log: object) -> dict:
    rows, tasks = (20_000, 1_000) if quick else (1_000_000, 1_000)
    path = folder / f"labels_{rows}x{tasks}_u99.csv"
    if not path.exists():
        log(f"generating {path.name} (99 % unknown)")
        generate(path, rows, tasks, unknown=0.99)
    done = subprocess.run([sys.executable, "-c", _COMPACT_CHILD, str(path)], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    log(f"compact labels: {json.dumps(result)}")
    return result


# ------------------------------------------------------------------------------------------- images
def make_jpegs(folder: Path, n: int, tasks: int = 4, seed: int = 0) -> Path:
    """`n` photo-like 500×375 JPEGs (smooth colour fields + grain, quality 90) and a labels.csv, all 'train'."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    table = folder / "labels.csv"
    if table.exists():
        return table
    rng = np.random.default_rng(seed)
    lines = ["image," + ",".join(f"t{j}" for j in range(tasks)) + ",split"]
    for i in range(n):
        base = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).resize((500, 375),
                                                                                         Image.Resampling.BICUBIC)
        pixels = np.clip(np.asarray(base, np.int16) + rng.normal(0, 8, (375, 500, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:05d}.jpg", quality=90)
        lines.append(f"{i:05d}.jpg," + ",".join(str(int(v)) for v in rng.random(tasks) < 0.4) + ",train")
    table.write_text("\n".join(lines) + "\n")
    return table


def step_images_per_second(trunk: str, options: dict, size: int, batch: int, threads: int,
                           repeats: int = 3) -> float:
    """Training-step images/s (forward + backward + AdamW, 4 tasks) of a trunk at `size` px."""
    import time

    import torch

    from multitask.config import build_config
    from multitask.models.network import build_network
    from multitask.training import MultiTaskModule

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    config = build_config({"model": {"trunk": trunk, "trunk_options": options}})
    module = MultiTaskModule(build_network(config.model, 4, load_weights=False), ("a", "b", "c", "d"),
                             config.loss, config.train)
    module.log = lambda *args, **kwargs: None
    module.train()
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3)
    x, targets, known = torch.rand(batch, 3, size, size), (torch.rand(batch, 4) < 0.5).float(), torch.ones(batch, 4,
                                                                                                         dtype=bool)
    best = float("inf")
    for i in range(repeats + 1):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        module.training_step((x, targets, known), i).backward()
        optimizer.step()
        if i:
            best = min(best, time.perf_counter() - start)
    return batch / best


def decode_part(folder: Path, quick: bool, log: object) -> dict:
    """Decode + squash + augment images/s on one core vs training-step images/s, at 128 and 224 px."""
    import time

    import torch

    from multitask.data.datasets import load_image, train_transform

    table = make_jpegs(folder / "jpegs", 64 if quick else 256)
    paths = sorted(str(p) for p in table.parent.glob("*.jpg"))
    torch.set_num_threads(1)
    result: dict = {"decode": {}, "step": {}}
    for size in (128, 224):
        transform = train_transform(size)
        best = 0.0
        for _ in range(2):
            start = time.perf_counter()
            for path in paths:
                transform(load_image(path, size))
            best = max(best, len(paths) / (time.perf_counter() - start))
        result["decode"][str(size)] = best
        log(f"decode + augment {size} px: {best:.0f} images/s on one core")
    trunks = {"small_cnn (width 32)": ("small_cnn", {"width": 32, "depth": 4}, 32, (1, 2)),
              "resnet18": ("resnet18", {}, 16, (1,))}
    for name, (trunk, options, batch, thread_counts) in trunks.items():
        for size in (128, 224):
            for threads in thread_counts:
                rate = step_images_per_second(trunk, options, size, 8 if quick else batch, threads,
                                              repeats=1 if quick else 2)
                result["step"][f"{name}|{size}|{threads}"] = rate
                log(f"step {name} {size} px, {threads} thread(s): {rate:.1f} images/s")
    return result


def _plain_loop(paths: list[str], targets: np.ndarray, known: np.ndarray, config: object, epochs: int) -> float:
    """A plain PyTorch loop on the same network, data, transforms and loader settings; returns seconds."""
    import time

    import torch
    from torch.utils.data import DataLoader, Dataset

    from multitask.data.datasets import load_image, train_transform
    from multitask.losses import per_task_losses
    from multitask.models.network import build_network

    class Files(Dataset):
        def __init__(self) -> None:
            self.transform = train_transform(config.data.image_size)

        def __len__(self) -> int:
            return len(paths)

        def __getitem__(self, i: int) -> tuple:
            return (self.transform(load_image(paths[i], config.data.image_size)), torch.from_numpy(targets[i]),
                    torch.from_numpy(known[i]))

    torch.manual_seed(config.train.seed)
    network = build_network(config.model, targets.shape[1], load_weights=False)
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.train.lr, weight_decay=config.train.weight_decay)
    loader = DataLoader(Files(), batch_size=config.train.batch_size, shuffle=True,
                        num_workers=config.data.num_workers, persistent_workers=config.data.num_workers > 0,
                        generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    network.train()
    for _ in range(epochs):
        for x, y, k in loader:
            optimizer.zero_grad(set_to_none=True)
            losses, _ = per_task_losses(network(x), y, k)
            losses.sum().backward()
            optimizer.step()
    return time.perf_counter() - start


def throughput_part(folder: Path, quick: bool, log: object, rounds: int = 3) -> dict:
    """Training images/s of multitask's fit (files; shards) and of the plain loop, interleaved in one process."""
    import tempfile

    import torch

    from multitask.config import build_config
    from multitask.data.shards import write_shards
    from multitask.models.network import build_network
    from multitask.tables import read_label_table
    from multitask.training import fit

    torch.set_num_threads(1)  # the DataLoader worker decodes on the other core
    n = 64 if quick else 256
    table_path = make_jpegs(folder / "jpegs", n)
    shards = folder / "jpeg_shards"
    if not (shards / "shards.json").exists():
        write_shards(read_label_table(table_path), shards)
    epochs = 1 if quick else 2
    base = {"data": {"path": str(table_path), "image_size": 128, "cache_images": False, "num_workers": 1},
            "model": {"trunk": "small_cnn", "trunk_options": {"width": 8, "depth": 4}},
            "train": {"epochs": epochs, "batch_size": 32, "progress": False}}
    table = read_label_table(table_path)
    targets, known = table.labels.dense()
    times: dict[str, list[float]] = {"plain PyTorch loop": [], "multitask (image files)": [],
                                     "multitask (shards)": []}
    for round_ in range(rounds):
        for name in times:
            if name.startswith("plain"):
                seconds = _plain_loop(list(table.images), targets, known, build_config(base), epochs)
            else:
                options = {**base, "data": {**base["data"], **({"shards": str(shards)} if "shards" in name else {})}}
                config = build_config(options)
                torch.manual_seed(config.train.seed)
                network = build_network(config.model, table.n_tasks, load_weights=False)
                with tempfile.TemporaryDirectory() as run_dir:
                    seconds = fit(config, table, network, Path(run_dir), quiet=True).train_seconds
            times[name].append(seconds)
            log(f"round {round_ + 1}/{rounds} {name}: {n * epochs / seconds:.1f} images/s ({seconds:.1f} s)")
    return {"images": n, "epochs": epochs, "seconds": {k: min(v) for k, v in times.items()},
            "images_per_s": {k: n * epochs / min(v) for k, v in times.items()}}


def ratio_part(quick: bool, log: object) -> dict:
    """T = 100 / T = 1 step time, both built and stepped in turn in one process (speed.py's worker)."""
    import speed

    result: dict = {}
    for threads in (1, 2):
        ratios = []
        for _ in range(1 if quick else 2):
            job = {"threads": threads, "repeats": 3 if quick else 8, "warmup": 1 if quick else 2,
                   "specs": [{"tasks": 1}, {"tasks": 100}]}
            got = speed.measure(job)
            if isinstance(got, dict):
                raise RuntimeError(f"speed worker failed: {got}")
            ratios.append({"t1_ms": got[0], "t100_ms": got[1], "ratio": got[1] / got[0]})
            log(f"{threads} thread(s): T=1 {got[0]:.1f} ms, T=100 {got[1]:.1f} ms, ratio {got[1] / got[0]:.3f}")
        result[str(threads)] = ratios
    return result


# ------------------------------------------------------------------------------------------- the docs
def reading_section(results: list[dict], old: bool) -> str:
    from common import markdown_table

    header = ["rows × tasks", "CSV MB", "multitask s", "pandas-pyarrow s", "ratio", "multitask peak MiB",
              "pandas peak MiB", "arrays MiB", "peak / arrays"] + (["replaced reader s"] if old else [])
    rows = []
    for r in results:
        m, p = r["multitask"], r["pandas-pyarrow"]
        row = [f"{r['rows']:,} × {r['tasks']:,}", f"{r['mb']:.0f}", f"{m['seconds']:.2f}", f"{p['seconds']:.2f}",
               f"{m['seconds'] / p['seconds']:.2f}", f"{m['peak_mib']:.0f}", f"{p['peak_mib']:.0f}",
               f"{m['array_mib']:.0f}", f"{m['peak_mib'] / m['array_mib']:.2f}"]
        if old:
            row.append(f"{r['old']['seconds']:.1f}" if "old" in r else "")
        rows.append(row)
    return ("### Reading label tables\n\n"
            "Read + validate a CSV label table (image column + task columns, 30 % `?`, the rest 1 / 0) through "
            "`multitask.tables.read_label_table` (the path behind `multitask train`; image files not opened), "
            "against `pandas.read_csv(path, engine=\"pyarrow\")` (parse only) on the same file, each in a fresh "
            "process, fastest of two interleaved runs (the replaced reader, `--old`: one run). Peak: growth of the "
            "process's peak resident memory during the call (VmHWM after resetting it); arrays: dense targets "
            "(float32) + known (bool) + ids + image paths (with their Python strings) — what the reader returned "
            "before the labels were stored compactly (they now take 2 bits per cell or less, next section, and "
            "the reader's int8 codes, 1 byte per cell, are its largest transient). "
            "Target (issue 15): ratio ≤ 1.5 on 1,000,000 × 100 and 100,000 × 2,000, peak / arrays ≤ 1.5.\n\n"
            + markdown_table(header, rows)
            + "\n\n![reading time and memory vs rows and tasks](plots/scale_reading.png)")


def compact_section(c: dict) -> str:
    from common import markdown_table

    other = "sparse" if c["format"] == "packed" else "packed"
    rows = [[f"labels as stored ({c['format']})", f"{c['labels_mib']:.0f}"],
            [f"the same labels {other}", f"{c[other + '_mib']:.0f}"],
            ["dense float32 targets + bool known (not made)", f"{c['dense_mib']:,.0f}"],
            ["training split's labels (the training dataset's)", f"{c['train_labels_mib']:.0f}"],
            ["peak memory growth while reading the CSV (labels, ids, paths, parser)", f"{c['read_peak_mib']:,.0f}"],
            ["kept after reading (whole table: labels, ids, image paths)", f"{c['read_kept_mib']:,.0f}"],
            ["peak growth of the training path's label work", f"{c['train_peak_mib']:.0f}"]]
    return ("### Compact labels: 1,000,000 × 1,000 at 99 % unknown\n\n"
            f"A {c['csv_mb']:,.0f} MB CSV ({c['rows']:,} rows × {c['tasks']:,} tasks, {c['known']:,} known labels) "
            f"read by `read_label_table` in a fresh process in {c['read_s']:.0f} s. The labels are kept compact "
            "(`multitask.tables.compact`: CSR of the known cells — uint16 task index + bool — when that is "
            "smaller than two bit-packed masks, as here), built from the reader's int8 codes block by block "
            "without a float array. The training path's label work: per-task counts of the training split "
            "(`check_trainable`, `loss.pos_weight=balanced`) and the training split's labels, "
            f"{c['counts_s']:.1f} s; a batch of 256 rows unpacked to dense (targets, known) in "
            f"{c['batch_ms']:.2f} ms. Target (issue 15): trains with labels in ≤ 1 GiB.\n\n"
            + markdown_table(["what", "MiB"], rows)
            + "\n\nThe dense `table.targets` / `table.known` are still there for the rest of the code, made on "
            "access (5 bytes per cell: the slow path; evaluation on the test split makes them for that split).")


def decode_section(d: dict) -> str:
    from common import markdown_table

    rows = []
    for key, rate in d["step"].items():
        name, size, threads = key.split("|")
        decode = d["decode"][size]
        bound = "input-bound" if decode * 1 < rate else "compute-bound"
        rows.append([name, size, threads, f"{rate:.1f}", f"{decode:.0f}", f"{decode / rate:.1f}", bound])
    return ("### Decoding vs the training step: when is training input-bound?\n\n"
            "Decode (500 × 375 JPEG, quality 90) + squash + training augmentation, images/s on one core "
            "(`load_image` + `train_transform`), against the training step's images/s (forward + backward + "
            "AdamW, 4 tasks; small_cnn batch 32, resnet18 batch 16). On this 2-core machine one DataLoader "
            "worker decodes on one core while the step runs on the other (1 thread): training is input-bound "
            "where one core's decoding is slower than the step; with 2 step threads there is no core left, and "
            "decoding shares the cores with the step. A machine with more cores adds one decoding core per "
            "worker (`data.num_workers`, default up to 4).\n\n"
            + markdown_table(["trunk", "px", "step threads", "step images/s", "decode images/s (1 core)",
                              "decode / step", "1 worker, 1 thread"], rows))


def throughput_section(t: dict) -> str:
    from common import markdown_table

    plain = t["images_per_s"]["plain PyTorch loop"]
    rows = [[name, f"{rate:.1f}", f"{rate / plain:.2f}"] for name, rate in t["images_per_s"].items()]
    return ("### End-to-end training throughput: multitask vs a plain PyTorch loop\n\n"
            f"{t['images']} JPEGs (500 × 375) at 128 px, {t['epochs']} epochs, small_cnn (width 8, depth 4), "
            "4 tasks, batch 32, AdamW, the same augmentation, 1 DataLoader worker, 1 torch thread; `multitask` "
            "is `multitask.training.fit` (Lightning Trainer, checkpoints every epoch, the masked loss and the "
            "weighting method) reading the image files or the Parquet shards of the same files; the plain loop is "
            "a DataLoader over the same files and `per_task_losses(...).sum().backward()`. Each configuration "
            "ran three times, interleaved in one process; the fastest run counts (wall time of training, including "
            "the workers' start). Target (issue 15): ≥ 0.90 of the plain loop's images/s.\n\n"
            + markdown_table(["training", "images/s", "/ plain loop"], rows))


def ratio_section(r: dict) -> str:
    from common import markdown_table

    rows = []
    for threads, runs in r.items():
        for k, run in enumerate(runs):
            rows.append([threads, k + 1, f"{run['t1_ms']:.1f}", f"{run['t100_ms']:.1f}", f"{run['ratio']:.3f}"])
    return ("### The T = 100 / T = 1 training-step ratio at 1 and 2 threads\n\n"
            "benchmarks/speed.py's step (small_cnn width 32 depth 4, 64 px, batch 64, 30 % unknown, equal "
            "weighting), T = 1 and T = 100 built in ONE process and stepped in turn (fastest of 8 after 2 "
            "warm-ups), two processes per thread count. Target (issue 15): ≤ 1.05 at 1 and at 2 threads.\n\n"
            + markdown_table(["threads", "process", "T = 1 step (ms)", "T = 100 step (ms)", "ratio"], rows))


def main() -> None:
    import os
    import time

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, nothing written to docs")
    parser.add_argument("--reuse", action="store_true", help="keep the parts finished by an earlier run")
    parser.add_argument("--old", default="", help="git revision of the replaced reader (labels.py) to time too")
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "multitask-scale",
                        help="scratch folder for the generated data and the finished parts")
    parser.add_argument("--parts", default="reading,compact,decode,throughput,ratio")
    parser.add_argument("--redo", default="", help="comma-separated parts to measure again even with --reuse")
    args = parser.parse_args()
    folder = args.folder / ("quick" if args.quick else "full")
    folder.mkdir(parents=True, exist_ok=True)
    store = folder / "scale_results.json"
    results = json.loads(store.read_text()) if args.reuse and store.exists() else {}
    for name in filter(None, args.redo.split(",")):
        results.pop(name, None)
    old = old_reader(args.old, folder) if args.old else ""
    readers = ["multitask", "pandas-pyarrow"] + (["old"] if old else [])
    began = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - began:6.0f}s] {message}", flush=True)

    log(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    parts = {
        "reading": lambda: reading_part(folder, args.quick, readers, old, store, results, log),
        "compact": lambda: compact_part(folder, args.quick, log),
        "decode": lambda: decode_part(folder, args.quick, log),
        "throughput": lambda: throughput_part(folder, args.quick, log),
        "ratio": lambda: ratio_part(args.quick, log),
    }
    loads = results.setdefault("load", {})
    for name in args.parts.split(","):
        if name in results:
            log(f"{name}: reused from {store}")
            continue
        log(f"{name}: started")
        results[name] = parts[name]()
        loads[name] = os.getloadavg()[0]
        store.write_text(json.dumps(results, indent=1))
        log(f"{name}: done (load average {loads[name]:.1f})")
    if args.quick or not all(name in results for name in parts):
        return

    from common import write_section

    root = Path(__file__).resolve().parents[1]
    plot(results["reading"], root / "docs" / "plots" / "scale_reading.png")
    load = ", ".join(f"{k} {v:.1f}" for k, v in loads.items())
    body = "\n\n".join([
        "## Scale: the input side (reading, labels, images, throughput)",
        "The machine was shared with other work while this ran (load average at the end of each part: "
        f"{load}, on 2 cores): absolute times are slower than on an idle machine; every ratio below is "
        "taken between configurations measured side by side in one process (reading: interleaved processes).",
        reading_section(results["reading"], bool(old)),
        compact_section(results["compact"]),
        decode_section(results["decode"]),
        throughput_section(results["throughput"]),
        ratio_section(results["ratio"]),
    ])
    command = "python benchmarks/scale.py" + (f" --old {args.old}" if args.old else "")
    write_section("scale", body, command)
    print(body)


if __name__ == "__main__":
    main()
