"""Writing a road-scene data set: PNG images, ``labels.csv`` (some labels hidden) and ``labels_full.csv``, and the
objects' boxes in ``boxes.csv`` (the same hidden labels: those classes unknown in those images) and
``boxes_full.csv``.

Image ``i`` comes from its own seed (child ``i`` of the seed sequence), so images can be rendered in any order,
in several processes, and the same seed always gives byte-identical files.
"""

from __future__ import annotations

import csv
import io
import math
import multiprocessing
import os
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from multitask.data.generators.roadscenes import presence_map, render_labelled_scene
from multitask.data.generators.tasks import TASKS, SceneObject, extra_task_names
from multitask.data.generators.textures import check_textures, texture_task_names
from multitask.errors import ConfigError
from multitask.files import atomic_write_text

if TYPE_CHECKING:
    from rich.progress import Progress


def image_rng(seed: int, index: int) -> np.random.Generator:
    """Generator of image ``index``: child ``index`` of ``SeedSequence(seed)`` (independent of n, order)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))


Boxes = list[tuple[int, float, float, float, float, bool]]  # (class index in TASKS, x1, y1, x2, y2, ignore)


def scene_boxes(objects: list[SceneObject], image_size: int, min_visible: float) -> Boxes:
    """The boxes of a scene's base-task objects in output pixels (rounded to 0.01 px): an object that counts
    for its label (at least `min_visible` of it visible) is a box, one less visible but not hidden entirely an
    ``ignore`` box (finding it is neither rewarded nor penalised), a hidden one nothing.

    >>> scene_boxes([SceneObject("car", (0.1, 0.5, 0.6, 0.75), "red", 0.9),
    ...              SceneObject("pedestrian", (0.0, 0.0, 0.2, 0.4), "blue", 0.1)], 32, 0.4)
    [(1, 3.2, 16.0, 19.2, 24.0, False), (0, 0.0, 0.0, 6.4, 12.8, True)]
    """
    out: Boxes = []
    for o in objects:
        if o.kind not in TASKS or o.visible <= 0:
            continue
        x1, y1, x2, y2 = (round(min(max(v, 0.0), 1.0) * image_size, 2) for v in o.bbox)
        if x2 > x1 and y2 > y1:
            out.append((TASKS.index(o.kind), x1, y1, x2, y2, o.visible < min_visible))
    return out


def _render_chunk(args: tuple) -> list[tuple[int, dict[str, int], Boxes]]:
    out_dir, names, seed, indices, image_size, extra_tasks, presence, max_instances, min_visible, textures = args
    out = []
    for i in indices:
        image, labels, objects = render_labelled_scene(
            image_rng(seed, i),
            image_size,
            extra_tasks,
            presence=presence,
            max_instances=max_instances,
            min_visible=min_visible,
            **textures,
        )
        image.save(Path(out_dir) / names[i], format="PNG")
        out.append((i, labels, scene_boxes(objects, image_size, min_visible)))
    return out


def generate_road_scenes(
    out_dir: str | Path,
    n_images: int = 2000,
    image_size: int = 64,
    extra_tasks: int = 0,
    unknown_fraction: float = 0.0,
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    progress: bool = False,
    *,
    presence: float | Mapping[str, float] = 0.4,
    max_instances: int = 3,
    min_visible: float = 0.4,
    workers: int = 1,
    texture_tasks: int = 0,
    texture_relatedness: float = 0.0,
    texture_presence: float = 0.5,
) -> Path:
    """Write out_dir/images/scene_00000.png ..., out_dir/labels.csv and the boxes; return the labels.csv path.

    ``labels.csv`` has the columns ``image`` (path relative to ``out_dir``), one column per task (base
    tasks, then ``extra_tasks`` attribute tasks) with ``1``, ``0`` or ``?``, and ``split`` (``train``,
    ``val`` or ``test``: a seeded shuffle with ``round(n * val_fraction)`` val rows and
    ``round(n * test_fraction)`` test rows).

    ``unknown_fraction`` hides that fraction of the label cells (exactly, rounded, chosen at random with the
    seed) in the **train and val splits only**: the test split keeps every label known so evaluations stay
    honest. ``labels_full.csv`` beside it holds the same rows with every label known.

    ``boxes.csv`` (a box table, :mod:`multitask.detection.box_files`) holds the base-task objects' boxes, in
    pixels of the written images, with the same images and split (see :func:`scene_boxes`): a base label is 1
    exactly when its class has a box that is not ``ignore``; a base label hidden in ``labels.csv`` makes that
    class unknown in that image (its boxes left out). ``boxes_full.csv`` has every box, every class known.

    Image ``i`` is drawn from child ``i`` of ``numpy.random.SeedSequence(seed)``, so it does not depend on
    ``n_images``, on the order of generation or on ``workers``; the same seed gives byte-identical files.
    ``workers`` > 1 renders in that many processes (``forkserver``; the calling script needs an
    ``if __name__ == "__main__":`` guard). The default, one process, draws about 500 images of 64 px a second.
    ``presence``, ``max_instances`` and ``min_visible`` are passed to
    :func:`~multitask.data.generators.roadscenes.render_scene`, and so are ``texture_tasks``,
    ``texture_relatedness`` and ``texture_presence``: ``texture_tasks`` = K > 0 adds the columns ``texture_0`` …
    ``texture_{K-1}`` after the attribute tasks, tasks whose shared features are set by ``texture_relatedness``
    (see :func:`~multitask.data.generators.textures.texture_weights`; the images do not depend on it, only the
    labels do).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = generate_road_scenes(d, n_images=10, image_size=16, unknown_fraction=0.3, seed=1)
    ...     sorted(p.name for p in path.parent.iterdir()), len(list((path.parent / "images").iterdir()))
    (['boxes.csv', 'boxes_full.csv', 'images', 'labels.csv', 'labels_full.csv'], 10)
    """
    if isinstance(n_images, bool) or int(n_images) != n_images or n_images < 1:
        raise ConfigError(f"n_images must be a positive integer, got {n_images!r}")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    if not 0.0 <= unknown_fraction <= 1.0:
        raise ConfigError(f"unknown_fraction must be in [0, 1], got {unknown_fraction}")
    if val_fraction < 0 or test_fraction < 0 or val_fraction + test_fraction > 1:
        raise ConfigError(
            "val_fraction and test_fraction must be >= 0 with a sum <= 1, "
            f"got {val_fraction} and {test_fraction}"
        )
    if int(image_size) < 8:
        raise ConfigError(f"image_size must be at least 8, got {image_size}")
    n, seed, image_size = int(n_images), int(seed), int(image_size)
    check_textures(texture_tasks, texture_relatedness, texture_presence)
    names = list(TASKS) + extra_task_names(extra_tasks) + texture_task_names(texture_tasks)
    presence = presence_map(presence)
    textures = {"texture_tasks": int(texture_tasks), "texture_relatedness": float(texture_relatedness),
                "texture_presence": float(texture_presence)}

    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    digits = max(5, len(str(n - 1)))
    files = [f"images/scene_{i:0{digits}d}.png" for i in range(n)]

    n_workers = max(1, int(workers or 1))
    chunk = max(1, min(64, math.ceil(n / (4 * n_workers))))
    jobs = [
        (
            str(out),
            files,
            seed,
            range(a, min(n, a + chunk)),
            image_size,
            extra_tasks,
            presence,
            max_instances,
            min_visible,
            textures,
        )
        for a in range(0, n, chunk)
    ]
    labels: list[dict[str, int] | None] = [None] * n
    boxes: list[Boxes] = [[] for _ in range(n)]
    bar = None
    if progress:
        from rich.progress import Progress

        bar = Progress(transient=False)
        bar.start()
        task_id = bar.add_task("road scenes", total=n)
    try:
        if n_workers == 1:
            results = map(_render_chunk, jobs)
            _collect(results, labels, boxes, bar)
        else:
            ctx = multiprocessing.get_context("forkserver" if os.name == "posix" else "spawn")
            with ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx) as pool:
                _collect(pool.map(_render_chunk, jobs), labels, boxes, bar)
    finally:
        if bar is not None:
            bar.update(task_id, completed=n)
            bar.stop()

    table = np.array([[lab[t] for t in names] for lab in labels], dtype=np.int8)  # type: ignore[index]
    split_rng = np.random.default_rng([seed, 1])
    order = split_rng.permutation(n)
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    split = np.array(["train"] * n, dtype=object)
    split[order[:n_test]] = "test"
    split[order[n_test : n_test + n_val]] = "val"

    hidden = np.zeros(table.shape, dtype=bool)
    trainval = np.flatnonzero(split != "test")
    cells = trainval.size * len(names)
    k = round(cells * unknown_fraction)
    if k:
        chosen = np.random.default_rng([seed, 2]).choice(cells, size=k, replace=False)
        hidden[trainval[chosen // len(names)], chosen % len(names)] = True

    header = ["image", *names, "split"]
    _write_csv(out / "labels_full.csv", header, files, table, np.zeros_like(hidden), split)
    path = out / "labels.csv"
    _write_csv(path, header, files, table, hidden, split)
    _write_boxes(out / "boxes_full.csv", files, boxes, np.zeros((n, len(TASKS)), bool), split, image_size)
    _write_boxes(out / "boxes.csv", files, boxes, hidden[:, : len(TASKS)], split, image_size)
    return path


def _write_boxes(path: Path, files: list[str], boxes: list[Boxes], hidden: np.ndarray, split: np.ndarray,
                 image_size: int) -> None:
    """A box table of the scenes; classes hidden in an image are unknown there and their boxes left out."""
    from multitask.detection.boxes import BoxTable, write_box_table

    kept = [[b for b in scene if not hidden[i, b[0]]] for i, scene in enumerate(boxes)]
    table = BoxTable.from_arrays(
        list(TASKS), files, boxes=[[b[1:5] for b in scene] for scene in kept],
        labels=[[b[0] for b in scene] for scene in kept], ignore=[[b[5] for b in scene] for scene in kept],
        known=~hidden, split=np.asarray(split, dtype=str), sizes=np.full((len(files), 2), float(image_size)))
    write_box_table(table, path)


def _collect(results: Iterable[list[tuple[int, dict[str, int], Boxes]]], labels: list, boxes: list,
             bar: Progress | None) -> None:
    for chunk in results:
        for i, lab, scene in chunk:
            labels[i] = lab
            boxes[i] = scene
        if bar is not None:
            bar.advance(bar.task_ids[0], len(chunk))


def _write_csv(
    path: Path, header: list[str], files: list[str], table: np.ndarray, hidden: np.ndarray, split: np.ndarray
) -> None:
    """One labels file, written atomically (the images are written first: a complete labels.csv means a complete
    data set)."""
    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    for i, file in enumerate(files):
        cells = ["?" if hidden[i, j] else str(int(v)) for j, v in enumerate(table[i])]
        writer.writerow([file, *cells, split[i]])
    atomic_write_text(path, text.getvalue())
