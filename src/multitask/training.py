"""Training with Lightning: the LightningModule (loss, weighting, optimiser) and the Trainer assembly.

The network itself (:class:`multitask.models.MultiTaskNetwork`) knows nothing of the loop; this module owns
the masked loss, the weighting method, the schedule, freezing, early stopping and the best checkpoint.
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
from dataclasses import dataclass, field
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
from torchmetrics import Metric
from torchmetrics.classification import BinaryAveragePrecision, MultilabelAveragePrecision

from multitask.best_epoch import BestEpochRule, scaled_patience
from multitask.config import LossConfig, ModelConfig, RunConfig, TrainConfig
from multitask.data.datamodule import MultiTaskDataModule
from multitask.errors import ConfigError, UserError
from multitask.files import atomic_write_with
from multitask.losses import per_task_losses, pos_weight_from_counts
from multitask.models.network import MultiTaskNetwork, build_network
from multitask.tables import LabelTable
from multitask.unknown import UNKNOWNS, build_unknown
from multitask.weighting import Weighting, build_weighting

log = logging.getLogger(__name__)


def loss_tensors(config: LossConfig, table: LabelTable) -> tuple[Tensor, Tensor | None]:
    """Per-task loss weights (T,) and positive-class weights (T,) or None, from the config and the
    training split's labels."""
    unknown = set(config.task_weights) - set(table.tasks)
    if unknown:
        raise ConfigError(f"loss.task_weights names unknown task(s): {sorted(unknown)}")
    weights = torch.tensor([config.task_weights.get(t, 1.0) for t in table.tasks], dtype=torch.float32)
    if config.pos_weight == "none":
        pos = None
    elif config.pos_weight == "balanced":
        known, positives = table.task_counts("train")  # from the compact labels: no dense (n, T) array
        pos = pos_weight_from_counts(torch.from_numpy(positives), torch.from_numpy(known))
    else:
        unknown = set(config.pos_weight) - set(table.tasks)
        if unknown:
            raise ConfigError(f"loss.pos_weight names unknown task(s): {sorted(unknown)}")
        pos = torch.tensor([config.pos_weight.get(t, 1.0) for t in table.tasks], dtype=torch.float32)
    return weights, pos


class MultiTaskModule(L.LightningModule):
    """One training step: shared forward, masked per-task losses, a weighting method, one backward.

    The hyperparameters (tasks, loss, train and model config as plain dicts, the number of features) are saved
    in every checkpoint, so ``MultiTaskModule.load_from_checkpoint("runs/x/checkpoints/best.ckpt")`` rebuilds
    the network (without pretrained weights) and loads the trained state.

    >>> from multitask.config import RunConfig
    >>> cfg = RunConfig.model_validate({"model": {"trunk": "mlp", "trunk_options": {"hidden": [4]}}})
    >>> module = MultiTaskModule(None, ("a", "b"), cfg.loss, cfg.train, model=cfg.model.model_dump(mode="json"),
    ...                          n_features=3)
    >>> module(torch.zeros(5, 3)).shape
    torch.Size([5, 2])
    """

    def __init__(self, network: MultiTaskNetwork | None = None, tasks: tuple[str, ...] | list[str] = (),
                 loss: LossConfig | dict | None = None, train: TrainConfig | dict | None = None,
                 task_weights: Tensor | None = None, pos_weight: Tensor | None = None,
                 weighting: Weighting | None = None, *, model: dict | None = None, n_features: int = 0) -> None:
        super().__init__()
        tasks = tuple(tasks)
        loss = loss if isinstance(loss, LossConfig) else LossConfig.model_validate(loss or {})
        train = train if isinstance(train, TrainConfig) else TrainConfig.model_validate(train or {})
        self.save_hyperparameters({"tasks": list(tasks), "loss": loss.model_dump(mode="json"),
                                   "train": train.model_dump(mode="json"), "model": model,
                                   "n_features": int(n_features)})
        if network is None:
            if model is None:
                raise ValueError("MultiTaskModule needs a network, or the model config (model=) to build one")
            network = build_network(ModelConfig.model_validate(model), len(tasks), n_features, load_weights=False)
        self.network = network
        self.tasks = tasks
        self.loss_config = loss
        self.train_config = train
        self.weighting = weighting or build_weighting(train.weighting, len(tasks), **train.weighting_options)
        self.unknown = build_unknown(loss.unknown, len(tasks), **loss.unknown_options)
        self.register_buffer("task_weights", task_weights if task_weights is not None else torch.ones(len(tasks)))
        self.register_buffer("pos_weight", pos_weight if pos_weight is not None else torch.ones(len(tasks)))
        self.val_ap = validation_ap(len(tasks))
        self.val_counts = ValidationCounts(len(tasks))
        self.register_buffer("_epoch_loss_sum", torch.zeros(len(tasks)), persistent=False)
        self.register_buffer("_epoch_loss_count", torch.zeros(len(tasks)), persistent=False)
        self.trunk_frozen = False
        self.best_rule = BestEpochRule(train.map_tolerance)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """State outside the module's tensors that affects training: weighting generators (RLW), epoch losses."""
        checkpoint["multitask"] = {
            "generators": {name: generator.get_state() for name, generator in _generators(self.weighting)},
            "epoch_loss_sum": self._epoch_loss_sum.detach().cpu().clone(),
            "epoch_loss_count": self._epoch_loss_count.detach().cpu().clone(),
            "best_rule": self.best_rule.state_dict(),
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # A checkpoint written before unknown-label strategies existed has no 'unknown.*' state: keep ours.
        saved = checkpoint.get("state_dict")
        if isinstance(saved, dict):
            for key, value in self.unknown.state_dict(prefix="unknown.").items():
                saved.setdefault(key, value)
        state = checkpoint.get("multitask", {})
        generators = dict(_generators(self.weighting))
        for name, value in state.get("generators", {}).items():
            if name in generators:
                generators[name].set_state(value)
        for key in ("epoch_loss_sum", "epoch_loss_count"):
            if key in state:
                getattr(self, f"_{key}").copy_(state[key])
        if "best_rule" in state:
            self.best_rule.load_state_dict(state["best_rule"])

    # ------------------------------------------------------------------------------------------- forward
    def forward(self, x: Tensor) -> Tensor:
        return self.network(x)

    def task_losses(self, logits: Tensor, targets: Tensor, known: Tensor) -> tuple[Tensor, Tensor]:
        """Each task's weighted loss (T,) and count (T,) under the unknown-label strategy (`loss.unknown`)."""
        losses, counts = self.unknown(logits, targets, known, normalization=self.loss_config.normalization,
                                      pos_weight=self.pos_weight)
        return losses * self.task_weights, counts

    def _frozen_now(self) -> bool:
        cfg = self.train_config
        return cfg.freeze_trunk and (cfg.unfreeze_after is None or self.current_epoch < cfg.unfreeze_after)

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_index: int) -> Tensor:
        x, targets, known = batch
        if self.trunk_frozen:
            with torch.no_grad():
                z = self.network.representation(x)
        else:
            z = self.network.representation(x)
        if self.weighting.needs_gradients and not self.trunk_frozen:
            if self.train_config.gradients == "parameters":
                objective, losses, present = self._parameter_gradient_step(z, targets, known)
            else:
                objective, losses, present = self._gradient_step(z, targets, known)
        else:
            logits = self.network.task_logits(z)
            losses, counts = self.task_losses(logits, targets, known)
            present = counts > 0
            objective = self.weighting(losses, present)
        self._remember_losses(losses.detach(), present)
        if self.weighting.needs_losses_after_step:
            self._last_batch = (x, targets, known, losses.detach(), present)
        self.log("train_loss", losses.detach().sum(), prog_bar=True, on_step=False, on_epoch=True,
                 batch_size=x.shape[0], sync_dist=True)  # the epoch mean over every process's batches
        return objective

    def _gradient_step(self, z: Tensor, targets: Tensor, known: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Per-task gradients w.r.t. the shared representation → aggregated → surrogate objective.

        The surrogate's gradient is the aggregated direction for the trunk and each task's own loss gradient
        for its task-specific parameters: one backward pass through the trunk in all.
        """
        from multitask.gradients import representation_gradients, surrogate_objective

        step = representation_gradients(z, lambda shared: self.task_losses(self.network.task_logits(shared),
                                                                           targets, known))
        if step.gradients is None:
            return step.losses.sum(), step.losses, step.present
        direction = self.weighting.aggregate(step.gradients.flatten(1), step.selected.detach(), tasks=step.index)
        return surrogate_objective(step.selected, z, direction), step.losses, step.present

    def _parameter_gradient_step(self, z: Tensor, targets: Tensor, known: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Per-task gradients w.r.t. every shared parameter (a batched Jacobian, vmap over one backward).

        The surrogate objective Σ_j L_j + Σ_p <p, d_p − Σ_j g_jp> gives the trunk the aggregated direction d and
        each head its own task's gradient.
        """
        logits = self.network.task_logits(z)
        losses, counts = self.task_losses(logits, targets, known)
        present = counts > 0
        index = present.nonzero().flatten()
        params = [p for p in self.network.shared_parameters() if p.requires_grad]
        if len(index) == 0 or not params:
            return losses.sum(), losses, present
        selected = losses[index]
        eye = torch.eye(len(index), device=z.device, dtype=selected.dtype)
        grads = torch.autograd.grad(selected, params, grad_outputs=eye, is_grads_batched=True, retain_graph=True,
                                    allow_unused=True)
        jacobian = torch.cat([(g if g is not None else torch.zeros(len(index), *p.shape, device=p.device)).flatten(1)
                              for g, p in zip(grads, params, strict=True)], dim=1)
        correction = self.weighting.aggregate(jacobian, selected.detach(), tasks=index) - jacobian.sum(dim=0)
        objective = selected.sum()
        offset = 0
        for parameter in params:
            size = parameter.numel()
            objective = objective + (parameter * correction[offset:offset + size].view_as(parameter).detach()).sum()
            offset += size
        return objective, losses, present

    def _remember_losses(self, losses: Tensor, present: Tensor) -> None:
        self._epoch_loss_sum += torch.where(present, losses, 0.0)
        self._epoch_loss_count += present.to(self._epoch_loss_count.dtype)

    def on_train_batch_end(self, outputs: object, batch: object, batch_index: int) -> None:
        if self.weighting.needs_losses_after_step and hasattr(self, "_last_batch"):
            x, targets, known, before, present = self._last_batch
            with torch.no_grad():
                after, _ = self.task_losses(self.network(x), targets, known)
            self.weighting.after_step(before, after, present)
            del self._last_batch

    def on_train_epoch_start(self) -> None:
        self.unknown.start_epoch(self.current_epoch, self.trainer.max_epochs or 1)  # curricula (LL-R, SPLC)
        self.trunk_frozen = self._frozen_now()
        for parameter in self.network.shared_parameters():
            parameter.requires_grad_(not self.trunk_frozen)
        if self.trunk_frozen:
            self.network.trunk.eval()  # frozen BatchNorm statistics too

    def on_train_epoch_end(self) -> None:
        mean = self._epoch_loss_sum / self._epoch_loss_count.clamp(min=1)
        self.weighting.on_epoch_end(mean.detach().cpu())
        self._epoch_loss_sum.zero_()
        self._epoch_loss_count.zero_()

    # ---------------------------------------------------------------------------------------- validation
    def validation_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_index: int) -> None:
        x, targets, known = batch
        logits = self.network(x).float()
        _update_ap(self.val_ap, torch.sigmoid(logits), torch.where(known, targets.long(), -1))
        self.val_counts.update(logits, targets, known)

    def on_validation_epoch_end(self) -> None:
        """val_loss (the batch-normalised masked loss over the whole split) and val_map (mean AP over tasks with
        both classes among the known labels, as :func:`multitask.metrics.task_metrics`); torchmetrics states are
        summed / gathered across processes."""
        if not self.val_counts.update_called:
            return
        with warnings.catch_warnings():  # a task without positives: AP undefined, left out below
            warnings.filterwarnings("ignore", message=".*positive samples.*")
            ap = self.val_ap.compute().float().reshape(-1)
        loss, positives, known = self.val_counts.compute()
        self.val_ap.reset()
        self.val_counts.reset()
        defined = (positives > 0) & (positives < known)
        mean_ap = ap[defined].mean() if bool(defined.any()) else torch.zeros(())
        # Already the same on every process (torchmetrics summed the states): the mean over processes changes
        # nothing, and says so to Lightning, which otherwise warns once per process under DDP.
        self.log("val_loss", loss, prog_bar=True, sync_dist=True)
        self.log("val_map", torch.nan_to_num(mean_ap, nan=0.0), prog_bar=True, sync_dist=True)
        if self.train_config.monitor == "auto":  # val_best: the epoch (1-based) when it becomes the kept one, else 0
            new = self.best_rule.update(self.current_epoch, float(torch.nan_to_num(mean_ap, nan=0.0)), float(loss))
            self.log("val_best", float(self.current_epoch + 1) if new else 0.0, sync_dist=True)  # same everywhere

    # ----------------------------------------------------------------------------------------- optimiser
    def configure_optimizers(self) -> dict:
        cfg = self.train_config
        groups: dict[str, list[torch.nn.Parameter]] = {"trunk_decay": [], "trunk_no_decay": [],
                                                        "decay": [], "no_decay": []}
        trunk_ids = {id(p) for p in self.network.shared_parameters()}
        for parameter in self.parameters():
            prefix = "trunk_" if id(parameter) in trunk_ids else ""
            groups[prefix + ("decay" if parameter.dim() > 1 else "no_decay")].append(parameter)
        param_groups = [
            {"params": params, "lr": cfg.lr * (cfg.trunk_lr_scale if name.startswith("trunk") else 1.0),
             "weight_decay": cfg.weight_decay if name in ("trunk_decay", "decay") else 0.0}
            for name, params in groups.items() if params
        ]
        optimizer = torch.optim.AdamW(param_groups, lr=cfg.lr)
        if cfg.scheduler == "none" and cfg.warmup_epochs == 0:
            return {"optimizer": optimizer}
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        steps_per_epoch = max(total // max(self.trainer.max_epochs or 1, 1), 1)
        warmup = int(cfg.warmup_epochs * steps_per_epoch)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            if cfg.scheduler == "none":
                return 1.0
            progress = min((step - warmup) / max(total - warmup, 1), 1.0)
            return 0.5 * (1 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class ValidationCounts(Metric):
    """Sums over the validation split (across processes): the masked loss, rows, and each task's known and
    positive labels (to tell which tasks have a defined AP)."""

    full_state_update = False

    def __init__(self, n_tasks: int) -> None:
        super().__init__()
        self.add_state("loss_sum", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("rows", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("positives", torch.zeros(n_tasks, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("known", torch.zeros(n_tasks, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, logits: Tensor, targets: Tensor, known: Tensor) -> None:
        losses, counts = per_task_losses(logits, targets, known, normalization="batch")
        self.loss_sum += (losses.double() * logits.shape[0]).sum()
        self.rows += logits.shape[0]
        self.known += counts.double()
        self.positives += torch.where(known, targets, 0).double().sum(dim=0)

    def compute(self) -> tuple[Tensor, Tensor, Tensor]:
        """(loss summed over tasks / rows, positives per task, known per task)."""
        return (self.loss_sum / self.rows.clamp(min=1)).float(), self.positives, self.known


def validation_ap(n_tasks: int) -> Metric:
    """Average precision per task over known labels (unknown = -1, ignored); torchmetrics' multilabel metric,
    or its binary one for a single task (the multilabel one needs two labels or more)."""
    if n_tasks == 1:
        return BinaryAveragePrecision(ignore_index=-1)
    return MultilabelAveragePrecision(num_labels=n_tasks, average=None, ignore_index=-1)


def _update_ap(metric: Metric, probs: Tensor, targets: Tensor) -> None:
    if isinstance(metric, BinaryAveragePrecision):
        metric.update(probs.reshape(-1), targets.reshape(-1))
    else:
        metric.update(probs, targets)


def _generators(module: torch.nn.Module) -> list[tuple[str, torch.Generator]]:
    """The torch.Generator attributes of a module and its children (e.g. RLW's), by dotted name."""
    return [(f"{prefix}.{name}" if prefix else name, value) for prefix, child in module.named_modules()
            for name, value in vars(child).items() if isinstance(value, torch.Generator)]


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


def _progress_bar() -> Callback:
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


class ResumableDataModule(MultiTaskDataModule):
    """The data module, with the training shuffle generator's state in checkpoints: a resumed run draws the
    same batches in the same order as an uninterrupted one."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._loader: DataLoader | None = None
        self._restored: Tensor | None = None

    def train_dataloader(self) -> DataLoader:
        loader = super().train_dataloader()
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


class TrainingInterrupted(UserError):
    """Training stopped by SIGINT (Ctrl-C) or SIGTERM; the last finished epoch's checkpoint is kept."""


@dataclass
class FitResult:
    """What a training run produced."""

    network: MultiTaskNetwork
    weighting: Weighting
    train_seconds: float
    epochs: int
    best_epoch: int | None
    best_score: float | None
    checkpoint: Path | None
    history: list[dict[str, float]] = field(default_factory=list)
    global_zero: bool = True
    """False in the other processes of a distributed run (only rank 0 evaluates and writes)."""
    completion: object = None
    """What a label-completing strategy (self-training) completed: a
    :class:`multitask.unknown.self_training.Completion`, or None."""


def _loggers(run_dir: Path, which: str = "tensorboard") -> list:
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


def fit(config: RunConfig, table: LabelTable, network: MultiTaskNetwork, run_dir: Path, *,
        label: str = "", quiet: bool = False, resume_from: Path | None = None,
        on_epoch: Callable[[int], object] | None = None, resumable: bool = True) -> FitResult:
    """Train `network` on `table` as `config` says; keep the best validation checkpoint and load it back.

    `run_dir/checkpoints/last.ckpt` holds the state after the last finished epoch; `resume_from` (such a
    checkpoint) continues a run from it through Lightning's ``ckpt_path``. `on_epoch(epochs_done)` is called
    after each finished epoch. `resumable=False` writes no last.ckpt (for fits that are never resumed, such as
    the scikit-learn estimator's, in a temporary folder).
    """
    cfg = config.train
    completion = None
    if UNKNOWNS.get(config.loss.unknown).completes_labels:  # rounds of fitting on completed labels first
        from multitask.unknown.self_training import complete_in_rounds

        table, completion = complete_in_rounds(config, table, network, run_dir, options=config.loss.unknown_options,
                                               quiet=quiet, label=label)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    task_weights, pos_weight = loss_tensors(config.loss, table)
    module = MultiTaskModule(network, table.tasks, config.loss, cfg, task_weights, pos_weight,
                             model=config.model.model_dump(mode="json"), n_features=table.n_features)
    train_rows = table.split == "train"
    module.unknown.prepare(torch.from_numpy(table.targets[train_rows]), torch.from_numpy(table.known[train_rows]))
    data = ResumableDataModule(table, config.data, cfg.batch_size, seed=cfg.seed)
    has_val = bool((table.split == "val").any())
    monitor = cfg.monitor if has_val else "train_loss"
    watched = "val_best" if monitor == "auto" else monitor  # auto: see multitask.best_epoch
    mode = "max" if monitor in ("val_map", "auto") else "min"
    checkpoint = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor=watched, mode=mode,
                                 save_top_k=1, enable_version_counter=False)
    last = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename=LAST_CHECKPOINT.removesuffix(".ckpt"),
                           monitor=None, save_top_k=1, every_n_epochs=1, save_on_train_epoch_end=True,
                           enable_version_counter=False)
    history = History()
    callbacks: list[Callback] = [history, RandomState(), checkpoint] + ([last] if resumable else [])
    stopping = cfg.patience is not None and has_val
    if stopping:
        steps_per_epoch = math.ceil(int((table.split == "train").sum()) / cfg.batch_size)
        callbacks.append(EarlyStopping(monitor=watched, mode=mode,
                                       patience=scaled_patience(cfg.patience, cfg.patience_steps, steps_per_epoch)))
    if on_epoch is not None:
        callbacks.append(EpochHook(on_epoch))
    interactive = cfg.progress and sys.stdout.isatty() and not quiet
    if interactive:
        callbacks.append(_progress_bar())
    elif not quiet:
        callbacks.append(ProgressLog(label))
    handler = signal.getsignal(signal.SIGINT) if threading.current_thread() is threading.main_thread() else None
    with lightning_quiet():
        trainer = L.Trainer(
            max_epochs=cfg.epochs,
            min_steps=cfg.patience_steps if stopping else None,
            accelerator=cfg.accelerator,
            devices=cfg.devices,
            strategy=cfg.strategy,
            num_nodes=cfg.num_nodes,
            precision=cfg.precision,  # type: ignore[arg-type]
            deterministic="warn" if cfg.deterministic else False,
            max_time=timedelta(minutes=cfg.max_minutes) if cfg.max_minutes else None,
            callbacks=callbacks,
            logger=_loggers(run_dir, cfg.logger),
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
    seconds = time.perf_counter() - start
    best_path = Path(checkpoint.best_model_path) if checkpoint.best_model_path else None
    if best_path and best_path.exists():
        state = torch.load(best_path, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
    best_score = float(checkpoint.best_model_score) if checkpoint.best_model_score is not None else None
    best_epoch = None
    if monitor == "auto":
        rule = module.best_rule
        best_epoch = None if rule.best_epoch is None else rule.best_epoch + 1
        best_score = None if rule.best_epoch is None else rule.best_map
    elif best_score is not None:
        matches = [h["epoch"] for h in history.epochs if abs(h.get(monitor, math.nan) - best_score) < 1e-9]
        best_epoch = int(matches[0]) + 1 if matches else None
    module.network.cpu().eval()
    return FitResult(network=module.network, weighting=module.weighting, train_seconds=seconds,
                     epochs=trainer.current_epoch, best_epoch=best_epoch, best_score=best_score,
                     checkpoint=best_path, history=history.epochs, global_zero=trainer.is_global_zero,
                     completion=completion)
