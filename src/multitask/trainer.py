"""The Lightning Trainer as every training in multitask builds it: callbacks, checkpoints, loggers, interruption.

:func:`run_trainer` fits a LightningModule with this project's plumbing — the best checkpoint by a watched value,
``checkpoints/last.ckpt`` after every epoch (resume), the epoch history and the random state kept in checkpoints,
early stopping, progress (a bar in a terminal, log records elsewhere), TensorBoard or MLflow beside
``logs/metrics.csv``, atomic checkpoint writes and Ctrl-C / SIGTERM turned into :class:`TrainingInterrupted`.
Label tables (:func:`multitask.training.fit`) and detectors (:func:`multitask.detection.training.fit_detector`)
both train through it.

>>> history = History()
>>> history.load_state_dict({"epochs": [{"epoch": 0, "val_map": 0.5}, {"epoch": 1, "val_map": 0.7}]})
>>> epoch_of_score(history.epochs, "val_map", 0.7)
2
"""

from __future__ import annotations

import logging
import math
import random
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
from torch import Tensor
from torch.utils.data import DataLoader

from multitask.config import TrainConfig
from multitask.errors import TrainingInterrupted
from multitask.files import atomic_write_with

log = logging.getLogger(__name__)

__all__ = ["LAST_CHECKPOINT", "AtomicCheckpointIO", "EpochHook", "History", "ProgressLog", "RandomState",
           "ShuffleState", "TrainerRun", "TrainingInterrupted", "epoch_of_score", "experiment_loggers",
           "lightning_quiet", "progress_bar", "run_trainer"]


class ProgressLog(Callback):
    """Progress as log records when no progress bar is shown (logs, CI, pipes): a line every `every` seconds
    of work (steps done / total, loss, elapsed) and one per epoch; epochs counted from 1, as in the bar."""

    def __init__(self, label: str = "", every: float = 5.0) -> None:
        self.label, self.every = label, every
        self.start = self.last = time.perf_counter()

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.start = self.last = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs: object, batch: object,
                           batch_index: int) -> None:
        now = time.perf_counter()
        if trainer.global_rank != 0 or now - self.last < self.every:
            return
        self.last = now
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        text = f" loss {float(loss):.4f}" if isinstance(loss, Tensor) else ""
        log.info("%sepoch %d/%d step %d/%d%s (%.0fs)", self.label, trainer.current_epoch + 1, trainer.max_epochs,
                 batch_index + 1, trainer.num_training_batches, text, now - self.start)

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.global_rank != 0:
            return
        metrics = trainer.callback_metrics
        parts = [f"{k}={float(metrics[k]):.4f}" for k in ("train_loss", "val_loss", "val_map") if k in metrics]
        log.info("%sepoch %d/%d %s (%.0fs)", self.label, trainer.current_epoch + 1, trainer.max_epochs,
                 " ".join(parts), time.perf_counter() - self.start)
        self.last = time.perf_counter()


def progress_bar() -> Callback:
    """Lightning's Rich progress bar, counting epochs from 1 like the log records ("Epoch 1/20")."""
    from lightning.pytorch.callbacks import RichProgressBar

    class Bar(RichProgressBar):
        def _get_train_description(self, current_epoch: int) -> str:
            text = f"Epoch {current_epoch + 1}" + (f"/{self.trainer.max_epochs}" if self.trainer.max_epochs else "")
            return f"{text:{len(self.validation_description)}}"

    return Bar(leave=False)


class History(Callback):
    """The epoch-level metrics of every finished epoch (0-based ``epoch``), kept in checkpoints for resuming."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        row = {"epoch": trainer.current_epoch}
        for key, value in trainer.callback_metrics.items():
            number = float(value)
            if math.isfinite(number):
                row[key] = number
        self.epochs = [h for h in self.epochs if h["epoch"] != row["epoch"]] + [row]

    def state_dict(self) -> dict:
        return {"epochs": [dict(h) for h in self.epochs]}

    def load_state_dict(self, state_dict: dict) -> None:
        self.epochs = [dict(h) for h in state_dict.get("epochs", [])]


class RandomState(Callback):
    """The global random generators (torch, CUDA, NumPy, Python) saved with every checkpoint and restored on
    resume, so that dropout and augmentation continue as in an uninterrupted run."""

    def state_dict(self) -> dict:
        kind, keys, position, has_gauss, gauss = np.random.get_state()
        return {"torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss), float(gauss)],
                "python": random.getstate()}

    def load_state_dict(self, state_dict: dict) -> None:
        torch.set_rng_state(state_dict["torch"])
        if state_dict.get("cuda") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])
        kind, keys, position, has_gauss, gauss = state_dict["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
        random.setstate(state_dict["python"])


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint IO, writing to a temporary file renamed into place (a process killed while
    saving leaves the previous checkpoint), and reading without unpickling anything but tensors and plain
    values (``weights_only=True``)."""

    def save_checkpoint(self, checkpoint: dict, path: str | Path, storage_options: object = None) -> None:
        atomic_write_with(path, lambda tmp: super(AtomicCheckpointIO, self).save_checkpoint(checkpoint, tmp,
                                                                                            storage_options))

    def load_checkpoint(self, path: str | Path, map_location: object = None, weights_only: bool | None = True) -> dict:
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)


def experiment_loggers(run_dir: Path, which: str = "tensorboard") -> list:
    """logs/metrics.csv always (the reports read it), and TensorBoard (logs/tensorboard/) or MLflow (Lightning's
    MLFlowLogger: experiment "multitask", run named after the run directory, at MLflow's tracking URI:
    MLFLOW_TRACKING_URI, else MLflow's default) as `train.logger` says."""
    from lightning.pytorch.loggers import CSVLogger

    loggers: list = [CSVLogger(save_dir=str(run_dir), name="logs", version="")]
    if which == "tensorboard":
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(save_dir=str(run_dir), name="logs", version="tensorboard"))
    elif which == "mlflow":
        from multitask.checks import check_logger

        check_logger(which)
        import mlflow
        from lightning.pytorch.loggers import MLFlowLogger

        loggers.append(MLFlowLogger(experiment_name="multitask", run_name=run_dir.name,
                                    tracking_uri=mlflow.get_tracking_uri(), tags={"run_dir": str(run_dir.resolve())}))
    return loggers


class _DropInfo(logging.Filter):
    """Drops Lightning's informational records (GPU available…, tips, restoring states); warnings pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


@contextmanager
def lightning_quiet() -> Iterator[None]:
    """For the duration of a fit only: Lightning's informational log records dropped (a filter on its rank-zero
    loggers, removed afterwards; no logger level is changed), and the warnings known to be harmless here
    ignored (a local ``warnings.catch_warnings``)."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch.utilities.rank_zero",
                                                    "lightning.fabric.utilities.rank_zero")]
    drop = _DropInfo()
    for logger in loggers:
        logger.addFilter(drop)
    try:
        with warnings.catch_warnings():
            for message in (".*does not have many workers.*",  # cached / in-memory data needs none
                            ".*treespec.*",  # torch deprecation inside Lightning
                            ".*deterministic.*",  # deterministic='warn': ops without a deterministic version
                            ".*exists and is not empty.*",  # resuming into the run's own folders
                            ".*positive samples.*",  # a validation task without positives (AP undefined)
                            ".*IterableDataset.*__len__.*"):  # image shards: each worker reads its own part
                warnings.filterwarnings("ignore", message=message)
            yield
    finally:
        for logger in loggers:
            logger.removeFilter(drop)


LAST_CHECKPOINT = "last.ckpt"


class EpochHook(Callback):
    """Calls `hook(epochs_done)` on rank 0 at the end of each epoch (e.g. to update status.json)."""

    def __init__(self, hook: Callable[[int], object]) -> None:
        self.hook = hook

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self.hook(trainer.current_epoch + 1)


class ShuffleState:
    """A data module's training shuffle generator, its state kept in checkpoints (Lightning saves a data module's
    ``state_dict``): a resumed run draws the same batches in the same order as an uninterrupted one. A data module
    lists it first among its bases and passes its training loader through :meth:`remember_loader`."""

    _loader: DataLoader | None = None
    _restored: Tensor | None = None

    def remember_loader(self, loader: DataLoader) -> DataLoader:
        """`loader`, its generator set to the restored state when resuming; remembered for the next checkpoint."""
        if self._restored is not None and loader.generator is not None:
            loader.generator.set_state(self._restored)
            self._restored = None
        self._loader = loader
        return loader

    def state_dict(self) -> dict:
        if self._loader is None or self._loader.generator is None:
            return {}
        return {"shuffle_generator": self._loader.generator.get_state()}

    def load_state_dict(self, state_dict: dict) -> None:
        self._restored = state_dict.get("shuffle_generator")


def epoch_of_score(history: list[dict[str, float]], key: str, score: float | None) -> int | None:
    """The first epoch (1-based) of `history` whose `key` equals `score` (the best checkpoint's), or None."""
    if score is None:
        return None
    matches = [h["epoch"] for h in history if abs(h.get(key, math.nan) - score) < 1e-9]
    return int(matches[0]) + 1 if matches else None


@dataclass
class TrainerRun:
    """A finished :func:`run_trainer`: the Trainer, its best checkpoint callback, the epoch history, the time."""

    trainer: L.Trainer
    checkpoint: ModelCheckpoint
    history: History
    seconds: float

    @property
    def best_path(self) -> Path | None:
        return Path(self.checkpoint.best_model_path) if self.checkpoint.best_model_path else None

    @property
    def best_score(self) -> float | None:
        score = self.checkpoint.best_model_score
        return float(score) if score is not None else None

    def load_best(self, module: L.LightningModule) -> None:
        """Load the best checkpoint's weights into `module` (when one was written)."""
        path = self.best_path
        if path is not None and path.exists():
            module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["state_dict"])


def run_trainer(module: L.LightningModule, data: L.LightningDataModule, cfg: TrainConfig, run_dir: Path, *,
                watch: str, mode: str, has_val: bool, label: str = "", quiet: bool = False,
                resume_from: Path | None = None, on_epoch: Callable[[int], object] | None = None,
                resumable: bool = True, patience: int | None = None, min_steps: int | None = None,
                deterministic: bool | str = False) -> TrainerRun:
    """Fit `module` on `data` for ``cfg.epochs`` with the project's Trainer (see the module docstring).

    `watch` (``mode`` "max" or "min") picks the best checkpoint, ``run_dir/checkpoints/best.ckpt``; `patience`
    (epochs, None: no early stopping) stops on it, not before `min_steps`. `resume_from` (a last.ckpt) continues
    a run through Lightning's ``ckpt_path``; `resumable=False` writes no last.ckpt. Ctrl-C or SIGTERM raise
    :class:`TrainingInterrupted` naming the epoch; the caller's Ctrl-C handler is restored afterwards.
    """
    checkpoint = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor=watch, mode=mode,
                                 save_top_k=1, enable_version_counter=False)
    history = History()
    callbacks: list[Callback] = [history, RandomState(), checkpoint]
    if resumable:
        callbacks.append(ModelCheckpoint(dirpath=run_dir / "checkpoints",
                                         filename=LAST_CHECKPOINT.removesuffix(".ckpt"), monitor=None, save_top_k=1,
                                         every_n_epochs=1, save_on_train_epoch_end=True,
                                         enable_version_counter=False))
    if patience is not None:
        callbacks.append(EarlyStopping(monitor=watch, mode=mode, patience=patience))
    if on_epoch is not None:
        callbacks.append(EpochHook(on_epoch))
    interactive = cfg.progress and sys.stdout.isatty() and not quiet
    if interactive:
        callbacks.append(progress_bar())
    elif not quiet:
        callbacks.append(ProgressLog(label))
    handler = signal.getsignal(signal.SIGINT) if threading.current_thread() is threading.main_thread() else None
    with lightning_quiet():
        trainer = L.Trainer(
            max_epochs=cfg.epochs,
            min_steps=min_steps,
            accelerator=cfg.accelerator,
            devices=cfg.devices,
            strategy=cfg.strategy,
            num_nodes=cfg.num_nodes,
            precision=cfg.precision,  # type: ignore[arg-type]
            deterministic=deterministic,  # type: ignore[arg-type]
            max_time=timedelta(minutes=cfg.max_minutes) if cfg.max_minutes else None,
            callbacks=callbacks,
            logger=experiment_loggers(run_dir, cfg.logger),
            default_root_dir=str(run_dir),
            enable_progress_bar=interactive,
            enable_model_summary=False,
            log_every_n_steps=1,
            num_sanity_val_steps=0,
            limit_val_batches=1.0 if has_val else 0,
            plugins=[AtomicCheckpointIO()],
        )
        start = time.perf_counter()
        try:
            trainer.fit(module, datamodule=data, ckpt_path=str(resume_from) if resume_from else None)
        except (SystemExit, SIGTERMException) as stop:  # Lightning turns Ctrl-C into SystemExit(1)
            if isinstance(stop, SystemExit) and not trainer.interrupted:
                raise
            which = "SIGTERM" if isinstance(stop, SIGTERMException) else "SIGINT"
            raise TrainingInterrupted(f"{run_dir}: training interrupted ({which}) in epoch "
                                      f"{trainer.current_epoch + 1}/{cfg.epochs}") from None
        finally:
            if handler is not None:
                signal.signal(signal.SIGINT, handler)  # Lightning leaves Ctrl-C ignored after an interrupt
    return TrainerRun(trainer, checkpoint, history, time.perf_counter() - start)
