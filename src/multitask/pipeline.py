"""Train → evaluate → save: what `multitask train` does, as one function of the Python API.

>>> from multitask import RunConfig  # doctest: +SKIP
>>> run = train_run(RunConfig.model_validate({"data": {"path": "labels.csv"}}))  # doctest: +SKIP
>>> run.metrics["test"]["macro"]["average_precision"]  # doctest: +SKIP
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from multitask.config import DataConfig, RunConfig
from multitask.data.datamodule import feature_statistics, make_dataset
from multitask.distributed import announce_run_dir, is_global_zero
from multitask.inference import predict_proba, time_inference
from multitask.labels import LabelTable, check_trainable, read_data
from multitask.metrics import choose_thresholds, macro_average, task_metrics
from multitask.models.network import MultiTaskNetwork, build_network, count_parameters
from multitask.runs import Run, load_shared_weights, new_run_dir, save_run, write_json
from multitask.training import fit


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
    """ids, targets, known and probabilities of one split, as a pickle-free .npz."""
    np.savez_compressed(path, ids=table.ids.astype(str), targets=table.targets, known=table.known, probs=probs,
                        tasks=np.array(table.tasks, dtype=str))


def load_predictions(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def machine_description() -> str:
    """The machine a number was measured on, for tables in docs."""
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU {platform.machine()}"
    return f"{device}, {os.cpu_count()} cores, torch {torch.__version__}"


def train_run(config: RunConfig, table: LabelTable | None = None, *, run_dir: Path | None = None,
              label: str = "", quiet: bool = False, report: bool = True) -> Run:
    """Read the data (unless given), train, choose thresholds on val, evaluate, save the run directory."""
    if table is None:
        table = read_data(config.data, seed=config.train.seed)
    check_trainable(table)
    stem = Path(config.data.path).stem if config.data.path else "run"
    run_dir = run_dir or new_run_dir(config, default_stem=stem)
    announce_run_dir(run_dir)
    writer = is_global_zero()
    run_dir.mkdir(parents=True, exist_ok=True)
    if writer:
        (run_dir / "config.yaml").write_text(config.to_yaml())
    if table.skipped and writer:
        (run_dir / "skipped_inputs.txt").write_text("\n".join(table.skipped) + "\n")
    L.seed_everything(config.train.seed, workers=True, verbose=False)
    mean, std = feature_statistics(table)
    network = build_network(config.model, table.n_tasks, table.n_features, feature_mean=mean, feature_std=std)
    if config.model.init_from is not None:
        load_shared_weights(network, config.model.init_from)
    result = fit(config, table, network, run_dir, label=label, quiet=quiet)
    if not result.global_zero:  # another process of a distributed run: rank 0 evaluates and writes
        return Run(run_dir, config, table.tasks, np.full(table.n_tasks, 0.5), result.network, table.kind,
                   table.feature_names)
    evaluation, thresholds, probs = evaluate_splits(result.network, table, config.data)
    for split, split_probs in probs.items():
        save_predictions(run_dir / f"predictions_{split}.npz", table.part(split), split_probs)
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
        "train_known": train.known.sum(axis=0).tolist(),
        "train_positive": train.positives().tolist(),
        "skipped_inputs": len(table.skipped),
        "machine": machine_description(),
        "history": result.history,
    }
    write_json(run_dir / "metrics.json", metrics)
    run = save_run(run_dir, config, result.network, table.tasks, thresholds, table.kind, table.feature_names,
                   metrics)
    if report:
        from multitask.report import write_run_report

        write_run_report(run)
    return run
