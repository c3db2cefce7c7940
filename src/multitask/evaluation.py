"""Metrics of a trained run on a labelled table: known labels only, the run's own thresholds.

``evaluate("runs/demo/shared", "scenes/labels.csv", split="test")`` reads the table the way the run was trained
(the quick start of :mod:`multitask` does so); a LabelTable and a hand-built Run work too:

>>> import numpy as np
>>> from multitask.config import build_config
>>> from multitask.models.network import build_network
>>> from multitask.tables import label_table_from_arrays
>>> config = build_config({"model": {"trunk": "mlp", "trunk_options": {"hidden": [4]}}})
>>> run = Run(Path("."), config, ("a",), np.array([0.5]), build_network(config.model, 1, n_features=2),
...           "features", ("x", "y"))
>>> x = np.random.default_rng(0).normal(size=(20, 2))
>>> metrics = evaluate(run, label_table_from_arrays(x, (x[:, :1] > 0).astype(float), tasks=["a"]))
>>> metrics["n_examples"], [t["task"] for t in metrics["tasks"]]
(20, ['a'])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from multitask.errors import ConfigError
from multitask.runs import Run, load_run
from multitask.tables import LabelTable

SPLITS = ("train", "val", "test", "all")


def read_for_run(run: Run, data: str | Path, images: str | Path | None = None,
                 missing_images: str = "error") -> LabelTable:
    """A label table read the way `run` was trained: its task columns, its input column or feature columns."""
    from multitask.tables import read_label_table

    cfg = run.config.data
    return read_label_table(data, tasks=list(run.tasks), image_root=images,
                            feature_columns=list(run.feature_names) or None,
                            input_column=cfg.input_column if run.input_kind == "images" else None,
                            minus_one_unknown=cfg.minus_one_unknown, val_fraction=0, test_fraction=0,
                            missing_images=missing_images)


def evaluate(run: str | Path | Run, data: str | Path | LabelTable, *, images: str | Path | None = None,
             split: str = "all", batch_size: int = 256, missing_images: str = "error") -> dict[str, Any]:
    """Per-task metrics and their macro means of a run (a directory or a loaded :class:`~multitask.runs.Run`)
    on a label table (a file with the run's task columns, or a LabelTable), on the rows of `split`."""
    from multitask.pipeline import evaluate_table

    run = run if isinstance(run, Run) else load_run(run)
    if split not in SPLITS:
        raise ConfigError(f"--split must be train, val, test or all; got {split!r}")
    table = data if isinstance(data, LabelTable) else read_for_run(run, data, images, missing_images)
    if split != "all":
        table = table.part(split)
        if not len(table):
            where = "the table" if isinstance(data, LabelTable) else str(data)
            raise ConfigError(f"no rows in split {split!r} of {where}")
    data_config = run.config.data.model_copy(update={"shards": None})  # the table's image files, not training's shards
    return evaluate_table(run.network, table, data_config, run.thresholds, batch_size)
