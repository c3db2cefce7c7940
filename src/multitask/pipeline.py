"""Train → evaluate → save: what `multitask train` does, as one function of the Python API.

>>> from multitask import RunConfig
>>> config = RunConfig.model_validate({"data": {"path": "labels.csv"}, "train": {"epochs": 5}})
>>> config.data.path.name, config.train.epochs
('labels.csv', 5)
>>> run = train_run(config)  # doctest: +SKIP
>>> run.metrics["test"]["macro"]["average_precision"]  # doctest: +SKIP

(The quick start of :mod:`multitask` trains, loads, evaluates and predicts with a tiny run, unskipped.)
"""

from __future__ import annotations

import logging
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from multitask.checks import check_options
from multitask.config import DataConfig, RunConfig, load_config
from multitask.data.datamodule import feature_statistics, make_dataset
from multitask.distributed import is_global_zero
from multitask.errors import ConfigError, RunDirError, UserError
from multitask.files import atomic_write_text, atomic_write_with
from multitask.inference import predict_proba, time_inference
from multitask.metrics import choose_thresholds, macro_average, task_metrics
from multitask.model_choice import fit_choosing
from multitask.models.network import MultiTaskNetwork, build_network, count_parameters
from multitask.run_lifecycle import begin_resume, begin_run, recorded
from multitask.runs import (
    Run,
    load_shared_weights,
    read_status,
    save_run,
    write_status,
)
from multitask.tables import LabelTable, read_data
from multitask.training import loss_tensors
from multitask.unknown.base import check_trainable_for
from multitask.weighting import build_weighting

log = logging.getLogger(__name__)


def evaluate_table(network: MultiTaskNetwork, table: LabelTable, data: DataConfig, thresholds: np.ndarray,
                   batch_size: int = 256, probs: np.ndarray | None = None) -> dict[str, Any]:
    """Per-task metrics (on known labels) and macro means of `network` on every row of `table`."""
    if probs is None:
        probs = predict_proba(network, make_dataset(table, data), batch_size)
    scores = task_metrics(probs, table.targets, table.known, list(table.tasks), thresholds)
    return {"n_examples": len(table), "tasks": [s.to_dict() for s in scores], "macro": macro_average(scores)}


def evaluate_splits(network: MultiTaskNetwork, table: LabelTable, data: DataConfig,
                    thresholds: np.ndarray | None = None) -> tuple[dict[str, Any], np.ndarray, dict[str, np.ndarray]]:
    """Thresholds chosen on the validation split (0.5 without one), then metrics on val and test.

    Returns the metrics, the thresholds and the probabilities of each evaluated split.
    """
    probs = {split: predict_proba(network, make_dataset(table.part(split), data))
             for split in ("val", "test") if (table.split == split).any()}
    if thresholds is None:
        val = table.part("val")
        thresholds = (choose_thresholds(probs["val"], val.targets, val.known) if "val" in probs
                      else np.full(table.n_tasks, 0.5))
    results = {split: evaluate_table(network, table.part(split), data, thresholds, probs=p)
               for split, p in probs.items()}
    return results, thresholds, probs


def save_predictions(path: Path, table: LabelTable, probs: np.ndarray) -> None:
    """ids, targets, known and probabilities of one split, as a pickle-free .npz (at exactly `path`)."""
    with open(path, "wb") as file:
        np.savez_compressed(file, ids=table.ids.astype(str), targets=table.targets, known=table.known, probs=probs,
                            tasks=np.array(table.tasks, dtype=str))


def load_predictions(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def machine_description() -> str:
    """The machine a number was measured on, for tables in docs."""
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU {platform.machine()}"
    return f"{device}, {os.cpu_count()} cores, torch {torch.__version__}"


@dataclass
class Prepared:
    """Everything checked and built before a run directory is reserved: a refusal leaves nothing on disk."""

    config: RunConfig
    table: LabelTable
    network: MultiTaskNetwork
    hidden: Any = None
    """The labels `data.hide` hid (a :class:`multitask.hiding.Hidden`), when the table was read here."""


def prepare_run(config: RunConfig, table: LabelTable | None = None) -> Prepared:
    """Read the data, check it, the loss and weighting options, build the network and load starting weights."""
    hidden = None
    if table is None:
        table = read_data(config.data.model_copy(update={"hide": None}), seed=config.train.seed)
        if config.data.hide:  # the protocol applied here, so that the hidden truth is kept (hidden_labels.npz)
            from multitask.hiding import hide_labels

            hidden = hide_labels(table, config.data.hide, seed=config.train.seed)
            table = hidden.table
    check_trainable_for(table, config.loss.unknown)
    check_options(config, table.kind)
    loss_tensors(config.loss, table)  # task names in loss options
    try:
        build_weighting(config.train.weighting, table.n_tasks, **config.train.weighting_options)
    except TypeError as error:  # an option the method does not take
        raise ConfigError(f"train.weighting_options {config.train.weighting_options}: {error}") from None
    L.seed_everything(config.train.seed, workers=True, verbose=False)
    mean, std = feature_statistics(table)
    network = build_network(config.model, table.n_tasks, table.n_features, feature_mean=mean, feature_std=std)
    if config.model.init_from is not None:
        load_shared_weights(network, config.model.init_from)
    return Prepared(config, table, network, hidden)


def train_run(config: RunConfig, table: LabelTable | None = None, *, run_dir: Path | None = None,
              label: str = "", quiet: bool = False, report: bool = True) -> Run:
    """Read the data (unless given), train, choose thresholds on val, evaluate, save the run directory.

    Everything is checked before the run directory is reserved (see :func:`prepare_run`); `run_dir`, when
    given, is used as it is (created if needed). A box table (``data.kind: detection``) trains a detector
    (:func:`multitask.detection.run.train_detection_run`).
    """
    if config.data.kind == "detection":
        from multitask.detection.run import train_detection_run

        return train_detection_run(config, table, run_dir=run_dir, label=label, quiet=quiet,  # type: ignore
                                   report=report)
    prepared = prepare_run(config, table)
    run_dir = begin_run(config, run_dir, default_stem="run")
    if is_global_zero():
        if prepared.table.skipped:
            atomic_write_text(run_dir / "skipped_inputs.txt", "\n".join(prepared.table.skipped) + "\n")
        if prepared.hidden is not None:
            prepared.hidden.save(run_dir / "hidden_labels.npz")
    return _train_in(run_dir, prepared, label=label, quiet=quiet, report=report, resume_from=None)


def resume_run(path: str | Path, table: LabelTable | None = None, *, label: str = "", quiet: bool = False,
               report: bool = True) -> Run:
    """Continue an unfinished run in its own directory, with its own config.yaml, from checkpoints/last.ckpt
    (the state after its last finished epoch; from the start when it finished none).

    `table`: the data it trained on, when it was given in memory (e.g. a comparison's per-task part);
    otherwise read again as config.yaml says (the same seeded split).
    """
    path = Path(path)
    if not path.is_dir():
        raise RunDirError(f"{path}: no such run directory (--resume)")
    status = read_status(path)
    if status is not None and status["status"] == "finished":
        raise RunDirError(f"{path}: the run is already finished (nothing to resume)")
    if not (path / "config.yaml").is_file():
        raise RunDirError(f"{path / 'config.yaml'}: missing; cannot resume a run without its config")
    try:
        config = load_config(path / "config.yaml")
    except UserError as error:
        raise RunDirError(f"{path / 'config.yaml'}: cannot resume: {error}") from None
    if config.data.kind == "detection":
        from multitask.detection.run import resume_detection_run

        return resume_detection_run(path, config, table, label=label, quiet=quiet, report=report)  # type: ignore
    prepared = prepare_run(config, table)
    checkpoint = begin_resume(path)
    return _train_in(path, prepared, label=label, quiet=quiet, report=report, resume_from=checkpoint)


def _train_in(run_dir: Path, prepared: Prepared, *, label: str, quiet: bool, report: bool,
              resume_from: Path | None) -> Run:
    """Train and evaluate in a reserved run directory, keeping status.json true to what happened."""
    return recorded(run_dir, lambda: _fit_and_save(run_dir, prepared, label=label, quiet=quiet, report=report,
                                                   resume_from=resume_from),
                    epochs_done=lambda run: run.metrics.get("epochs"))


def _fit_and_save(run_dir: Path, prepared: Prepared, *, label: str, quiet: bool, report: bool,
                  resume_from: Path | None) -> Run:
    config, table = prepared.config, prepared.table
    # mlp trunk: a linear candidate too, the better on val kept (multitask.model_choice); config then describes it
    result, config, choice = fit_choosing(config, table, prepared.network, run_dir, label=label, quiet=quiet,
                                          resume_from=resume_from,
                                          on_epoch=lambda done: write_status(run_dir, "running", epochs_done=done))
    if choice is not None and config is not prepared.config and is_global_zero():
        atomic_write_text(run_dir / "config.yaml", config.to_yaml())  # the kept network, rebuilt from it
    if not result.global_zero:  # another process of a distributed run: rank 0 evaluates and writes
        return Run(run_dir, config, table.tasks, np.full(table.n_tasks, 0.5), result.network, table.kind,
                   table.feature_names)
    evaluation, thresholds, probs = evaluate_splits(result.network, table, config.data)
    for split, split_probs in probs.items():
        part = table.part(split)
        atomic_write_with(run_dir / f"predictions_{split}.npz",
                          lambda tmp, part=part, split_probs=split_probs: save_predictions(tmp, part, split_probs))
    example = make_dataset(table.subset([0]), config.data)[0][0]
    train = table.part("train")
    metrics: dict[str, Any] = {
        **evaluation,
        "thresholds": dict(zip(table.tasks, thresholds.tolist(), strict=True)),
        "train_seconds": result.train_seconds,
        "epochs": result.epochs,
        "best_epoch": result.best_epoch,
        "best_score": result.best_score,
        "parameters": count_parameters(result.network),
        "inference_seconds_per_example": time_inference(result.network, example),
        "n_train": len(train),
        "train_known": train.task_counts()[0].tolist(),
        "train_positive": train.positives().tolist(),
        "skipped_inputs": len(table.skipped),
        "machine": machine_description(),
        "history": result.history,
    }
    if choice is not None:
        metrics["model_choice"] = choice
    if result.completion is not None:  # self-training: how many labels it completed, and how well
        hidden = prepared.hidden
        metrics["completion"] = (result.completion.accuracy(hidden.hidden, hidden.values) if hidden is not None
                                 else {"completed": int(result.completion.completed.sum())})
    run = save_run(run_dir, config, result.network, table.tasks, thresholds, table.kind, table.feature_names,
                   metrics)
    if report:
        from multitask.report import write_run_report

        write_run_report(run)
    return run
