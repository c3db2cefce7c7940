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
from multitask.labels import read_table_strings
from multitask.runs import Run, load_run

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".arff")


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
    """(id frame, dataset) from a table: image paths or the run's feature columns."""
    if table_path.suffix.lower() == ".arff":
        from multitask.data.arff import read_arff

        frame, _ = read_arff(table_path)
        frame = frame.astype(str)
    else:
        frame = read_table_strings(table_path)
    if run.input_kind == "features":
        missing = [c for c in run.feature_names if c not in frame.columns]
        if missing:
            raise LabelError(f"feature column(s) {missing[:5]} of the run are missing", file=table_path)
        values = np.empty((len(frame), len(run.feature_names)), dtype=np.float32)
        for k, name in enumerate(run.feature_names):
            numbers = pd.to_numeric(frame[name].str.strip(), errors="coerce")
            if numbers.isna().any():
                row = int(np.flatnonzero(numbers.isna().to_numpy())[0])
                raise LabelError("feature values must be numbers", file=table_path, line=row + 2, column=name,
                                 value=frame[name].iloc[row])
            values[:, k] = numbers.to_numpy()
        ids = pd.DataFrame({"row": np.arange(2, len(frame) + 2)})
        dummy = np.zeros((len(frame), len(run.tasks)), dtype=np.float32)
        return ids, FeatureDataset(values, dummy, dummy.astype(bool))
    column = run.config.data.input_column or "image"
    if column not in frame.columns:
        raise LabelError(f"image column {column!r} not found; columns are {list(frame.columns)}", file=table_path)
    root = image_root or table_path.parent
    paths = [str(p if Path(p).is_absolute() else root / p) for p in frame[column].str.strip()]
    for row, path in enumerate(paths):
        if not Path(path).is_file():
            raise LabelError("image file not found", file=table_path, line=row + 2, column=column, value=path)
    return pd.DataFrame({column: frame[column].to_numpy()}), _image_dataset(run, paths)


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
