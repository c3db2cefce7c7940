"""`multitask demo`: the whole story on built-in data, in a few minutes on a laptop CPU.

Generates road scenes, hides a fraction of the train/val labels (the test labels stay known), trains one
shared network and one network per task with the same budget, and compares them.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from multitask.compare import Comparison, compare
from multitask.config import build_config
from multitask.data.generators import generate_road_scenes


def demo_config(data: Path, out: Path, image_size: int, epochs: int, seed: int) -> dict:
    return {
        "name": "compare",
        "root": str(out),
        "data": {"path": str(data), "image_size": image_size},
        "model": {"trunk": "small_cnn", "trunk_options": {"width": 16, "depth": 4}},
        "train": {"epochs": epochs, "batch_size": 64, "lr": 3e-3, "seed": seed, "patience": None,
                  "warmup_epochs": 0.5},
    }


def run_demo(out: Path, n_images: int = 2400, image_size: int = 64, epochs: int = 10, hide: float = 0.3,
             seed: int = 0, console: Console | None = None) -> Comparison:
    console = console or Console()
    out = Path(out)
    data_dir = out / f"data-{n_images}x{image_size}-hide{hide:g}-seed{seed}"
    labels = data_dir / "labels.csv"
    if labels.exists():
        console.print(f"Using generated data in {data_dir}")
    else:
        console.print(f"Generating {n_images} road scenes ({image_size} px) with {hide:.0%} of the train/val "
                      f"labels unknown → {data_dir}")
        generate_road_scenes(data_dir, n_images=n_images, image_size=image_size, unknown_fraction=hide,
                             seed=seed, progress=console.is_terminal)
    config = build_config(demo_config(labels, out, image_size, epochs, seed))
    compare_dir = out / "compare"
    console.print("Training one shared network, then 4 separate ones (same trunk, same epochs)…")
    return compare(config, approaches=("shared", "separate"), out_dir=compare_dir)
