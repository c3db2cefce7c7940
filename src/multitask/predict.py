"""Predictions for new inputs: per-task probability and decision (the run's thresholds).

>>> frame = predict_inputs("runs/demo/shared", ["photo.jpg"])  # doctest: +SKIP
>>> list(frame.columns)  # doctest: +SKIP
['image', 'pedestrian_prob', 'pedestrian', 'car_prob', 'car', ...]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from multitask.data.datasets import FeatureDataset, ImageDataset
from multitask.errors import LabelError
from multitask.inference import predict_proba
from multitask.runs import Run, load_run
from multitask.tables.reader import TABLE_SUFFIXES, read_table
from multitask.tables.validate import check_images, feature_values

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def collect_images(inputs: Sequence[Path]) -> list[Path]:
    """Image files given directly or found (recursively, sorted) in the given folders."""
    found: list[Path] = []
    for path in map(Path, inputs):
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            found.append(path)
        else:
            raise LabelError("input not found", file=path)
    if not found:
        raise LabelError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {[str(p) for p in inputs]}")
    return found


def _table_inputs(run: Run, table_path: Path, image_root: Path | None) -> tuple[pd.DataFrame, object]:
    """(id frame, dataset) from a table, read by the one reader: the run's feature columns or image paths."""
    from multitask.tables.load import input_paths

    column = run.config.data.input_column or "image"
    wanted = {name: "numbers" for name in run.feature_names} if run.input_kind == "features" else {column: "text"}
    raw = read_table(table_path, lambda names, _: {name: wanted.get(name, "skip") for name in names})
    missing = [c for c in wanted if c not in raw.names]
    if missing:
        what = "feature column(s)" if run.input_kind == "features" else "image column"
        raise LabelError(f"{what} {missing[:5]} of the run not found; columns are {raw.names[:20]}", file=table_path)
    if run.input_kind == "features":
        values = np.empty((raw.n_rows, len(run.feature_names)), dtype=np.float32)
        for k, name in enumerate(run.feature_names):
            values[:, k] = feature_values(raw.column(name), name=name, line=raw.line, file=table_path)
        ids = pd.DataFrame({"row": raw.lines if raw.lines is not None else np.arange(2, raw.n_rows + 2)})
        dummy = np.zeros((raw.n_rows, len(run.tasks)), dtype=np.float32)
        return ids, FeatureDataset(values, dummy, dummy.astype(bool))
    names, paths = input_paths(raw, column, image_root if image_root is not None else table_path.parent)
    check_images(paths, names, file=table_path, column=column, missing="error", line=raw.line)
    return pd.DataFrame({column: names}), _image_dataset(run, list(paths))


def _image_dataset(run: Run, paths: Sequence[str]) -> ImageDataset:
    dummy = np.zeros((len(paths), len(run.tasks)), dtype=np.float32)
    return ImageDataset(list(paths), dummy, dummy.astype(bool), run.config.data.image_size)


def predict_inputs(run: str | Path | Run, inputs: Sequence[str | Path], image_root: Path | None = None,
                   batch_size: int = 256) -> pd.DataFrame:
    """A frame: the input, then `<task>_prob` and `<task>` (0/1 decision) for every task."""
    run = run if isinstance(run, Run) else load_run(run)
    paths = [Path(p) for p in inputs]
    if len(paths) == 1 and paths[0].suffix.lower() in TABLE_SUFFIXES:
        ids, dataset = _table_inputs(run, paths[0], image_root)
    elif run.input_kind == "features":
        raise LabelError("this run takes feature vectors: give one table (CSV, Parquet or ARFF) of its features")
    else:
        images = collect_images(paths)
        ids = pd.DataFrame({"image": [str(p) for p in images]})
        dataset = _image_dataset(run, [str(p) for p in images])
    probs = predict_proba(run.network, dataset, batch_size)
    columns: dict[str, np.ndarray] = {}
    for j, task in enumerate(run.tasks):
        columns[f"{task}_prob"] = np.round(probs[:, j], 6)
        columns[task] = (probs[:, j] >= run.thresholds[j]).astype(int)
    return pd.concat([ids.reset_index(drop=True), pd.DataFrame(columns)], axis=1)
