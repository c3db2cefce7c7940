"""Training with Lightning: the LightningModule (loss, weighting, optimiser) and the Trainer assembly.

The network itself (:class:`multitask.models.MultiTaskNetwork`) knows nothing of the loop; this module owns
the masked loss, the weighting method, the schedule, freezing, early stopping and the best checkpoint.
"""

from __future__ import annotations

import logging
import math
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from torch import Tensor

from multitask.config import LossConfig, RunConfig, TrainConfig
from multitask.labels import LabelTable
from multitask.losses import balanced_pos_weight, per_task_losses
from multitask.metrics import macro_average, task_metrics
from multitask.models.network import MultiTaskNetwork
from multitask.weighting import Weighting, build_weighting


def loss_tensors(config: LossConfig, table: LabelTable) -> tuple[Tensor, Tensor | None]:
    """Per-task loss weights (T,) and positive-class weights (T,) or None, from the config and the
    training split's labels."""
    unknown = set(config.task_weights) - set(table.tasks)
    if unknown:
        raise ValueError(f"loss.task_weights names unknown task(s): {sorted(unknown)}")
    weights = torch.tensor([config.task_weights.get(t, 1.0) for t in table.tasks], dtype=torch.float32)
    train = table.split == "train"
    if config.pos_weight == "none":
        pos = None
    elif config.pos_weight == "balanced":
        pos = balanced_pos_weight(torch.from_numpy(table.targets[train]), torch.from_numpy(table.known[train]))
    else:
        unknown = set(config.pos_weight) - set(table.tasks)
        if unknown:
            raise ValueError(f"loss.pos_weight names unknown task(s): {sorted(unknown)}")
        pos = torch.tensor([config.pos_weight.get(t, 1.0) for t in table.tasks], dtype=torch.float32)
    return weights, pos


class MultiTaskModule(L.LightningModule):
    """One training step: shared forward, masked per-task losses, a weighting method, one backward."""

    def __init__(self, network: MultiTaskNetwork, tasks: tuple[str, ...], loss: LossConfig, train: TrainConfig,
                 task_weights: Tensor | None = None, pos_weight: Tensor | None = None,
                 weighting: Weighting | None = None) -> None:
        super().__init__()
        self.network = network
        self.tasks = tasks
        self.loss_config = loss
        self.train_config = train
        self.weighting = weighting or build_weighting(train.weighting, len(tasks), **train.weighting_options)
        self.register_buffer("task_weights", task_weights if task_weights is not None else torch.ones(len(tasks)))
        self.register_buffer("pos_weight", pos_weight if pos_weight is not None else torch.ones(len(tasks)))
        self._validation: list[tuple[Tensor, Tensor, Tensor]] = []
        self.register_buffer("_epoch_loss_sum", torch.zeros(len(tasks)), persistent=False)
        self.register_buffer("_epoch_loss_count", torch.zeros(len(tasks)), persistent=False)
        self.trunk_frozen = False

    # ------------------------------------------------------------------------------------------- forward
    def forward(self, x: Tensor) -> Tensor:
        return self.network(x)

    def task_losses(self, logits: Tensor, targets: Tensor, known: Tensor) -> tuple[Tensor, Tensor]:
        losses, counts = per_task_losses(logits, targets, known, normalization=self.loss_config.normalization,
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
                 batch_size=x.shape[0])
        return objective

    def _gradient_step(self, z: Tensor, targets: Tensor, known: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Per-task gradients w.r.t. the shared representation → aggregated → surrogate objective.

        The surrogate's gradient is the aggregated direction for the trunk and each task's own loss gradient
        for its task-specific parameters: one backward pass through the trunk in all.
        """
        shared = z.detach().requires_grad_(True)
        logits = self.network.task_logits(shared)
        losses, counts = self.task_losses(logits, targets, known)
        present = counts > 0
        index = present.nonzero().flatten()
        if len(index) == 0:
            return losses.sum(), losses, present
        selected = losses[index]
        eye = torch.eye(len(index), device=z.device, dtype=selected.dtype)
        (gradients,) = torch.autograd.grad(selected, shared, grad_outputs=eye, is_grads_batched=True,
                                           retain_graph=True)
        direction = self.weighting.aggregate(gradients.flatten(1), selected.detach(), tasks=index)
        objective = selected.sum() + (z * direction.view_as(z).detach()).sum()
        return objective, losses, present

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
        self._validation.append((self.network(x).float().detach(), targets, known))

    def on_validation_epoch_end(self) -> None:
        if not self._validation:
            return
        logits, targets, known = (torch.cat(parts) for parts in zip(*self._validation, strict=True))
        self._validation.clear()
        if self.trainer.world_size > 1:
            logits, targets, known = (self.all_gather(t).flatten(0, 1) for t in (logits, targets, known))
        losses, _ = per_task_losses(logits, targets, known, normalization="batch")
        probs = torch.sigmoid(logits).cpu().numpy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scores = task_metrics(probs, targets.cpu().numpy(), known.cpu().numpy().astype(bool), list(self.tasks))
        mean_ap = macro_average(scores)["average_precision"]
        self.log("val_loss", losses.sum(), prog_bar=True, sync_dist=False)
        self.log("val_map", float(np.nan_to_num(mean_ap, nan=0.0)), prog_bar=True, sync_dist=False)

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


class EpochPrinter(Callback):
    """One line per epoch when no progress bar is shown (logs, CI, pipes)."""

    def __init__(self, label: str = "") -> None:
        self.label = label
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.global_rank != 0:
            return
        metrics = trainer.callback_metrics
        parts = [f"{k}={float(metrics[k]):.4f}" for k in ("train_loss", "val_loss", "val_map") if k in metrics]
        print(f"{self.label}epoch {trainer.current_epoch + 1}/{trainer.max_epochs} " + " ".join(parts)
              + f" ({time.perf_counter() - self.start:.0f}s)", flush=True)


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


def _loggers(run_dir: Path) -> list:
    from lightning.pytorch.loggers import CSVLogger

    loggers: list = [CSVLogger(save_dir=str(run_dir), name="logs", version="")]
    try:
        import tensorboard  # noqa: F401
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(save_dir=str(run_dir), name="logs", version="tensorboard"))
    except ImportError:
        pass
    return loggers


def read_history(run_dir: Path) -> list[dict[str, float]]:
    """Per-epoch metrics from the CSV log (one dict per epoch, NaN-free)."""
    import pandas as pd

    path = run_dir / "logs" / "metrics.csv"
    if not path.exists():
        return []
    frame = pd.read_csv(path)
    if "epoch" not in frame:
        return []
    merged = frame.groupby("epoch").agg(lambda column: column.dropna().iloc[-1] if column.notna().any() else None)
    merged = merged.drop(columns=[c for c in ("step",) if c in merged])
    return [{"epoch": int(epoch), **{k: float(v) for k, v in row.items() if v is not None and v == v}}
            for epoch, row in merged.iterrows()]


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Silence Lightning's informational messages (GPU available..., tips); warnings still show."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric", "lightning")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def fit(config: RunConfig, table: LabelTable, network: MultiTaskNetwork, run_dir: Path, *,
        label: str = "", quiet: bool = False) -> FitResult:
    """Train `network` on `table` as `config` says; keep the best validation checkpoint and load it back."""
    from multitask.data.datamodule import MultiTaskDataModule

    cfg = config.train
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    task_weights, pos_weight = loss_tensors(config.loss, table)
    module = MultiTaskModule(network, table.tasks, config.loss, cfg, task_weights, pos_weight)
    data = MultiTaskDataModule(table, config.data, cfg.batch_size, seed=cfg.seed)
    has_val = bool((table.split == "val").any())
    monitor = cfg.monitor if has_val else "train_loss"
    mode = "max" if monitor == "val_map" else "min"
    checkpoint = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor=monitor, mode=mode,
                                 save_top_k=1, enable_version_counter=False)
    callbacks: list[Callback] = [checkpoint]
    if cfg.patience is not None and has_val:
        callbacks.append(EarlyStopping(monitor=monitor, mode=mode, patience=cfg.patience))
    interactive = cfg.progress and sys.stdout.isatty() and not quiet
    if interactive:
        from lightning.pytorch.callbacks import RichProgressBar

        callbacks.append(RichProgressBar(leave=False))
    elif not quiet:
        callbacks.append(EpochPrinter(label))
    with warnings.catch_warnings(), quiet_lightning():
        for message in (".*does not have many workers.*", ".*treespec.*", ".*number of training batches.*",
                        ".*deterministic.*"):
            warnings.filterwarnings("ignore", message=message)
        trainer = L.Trainer(
            max_epochs=cfg.epochs,
            accelerator=cfg.accelerator,
            devices=cfg.devices,
            strategy=cfg.strategy,
            num_nodes=cfg.num_nodes,
            precision=cfg.precision,  # type: ignore[arg-type]
            deterministic="warn" if cfg.deterministic else False,
            max_time=timedelta(minutes=cfg.max_minutes) if cfg.max_minutes else None,
            callbacks=callbacks,
            logger=_loggers(run_dir),
            default_root_dir=str(run_dir),
            enable_progress_bar=interactive,
            enable_model_summary=False,
            log_every_n_steps=1,
            num_sanity_val_steps=0,
            limit_val_batches=1.0 if has_val else 0,
        )
        start = time.perf_counter()
        trainer.fit(module, datamodule=data)
    seconds = time.perf_counter() - start
    best_path = Path(checkpoint.best_model_path) if checkpoint.best_model_path else None
    if best_path and best_path.exists():
        state = torch.load(best_path, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
    best_score = float(checkpoint.best_model_score) if checkpoint.best_model_score is not None else None
    history = read_history(run_dir)
    best_epoch = None
    if best_score is not None:
        matches = [h["epoch"] for h in history if abs(h.get(monitor, math.nan) - best_score) < 1e-9]
        best_epoch = int(matches[0]) + 1 if matches else None
    module.network.cpu().eval()
    return FitResult(network=module.network, weighting=module.weighting, train_seconds=seconds,
                     epochs=trainer.current_epoch, best_epoch=best_epoch, best_score=best_score,
                     checkpoint=best_path, history=history, global_zero=trainer.is_global_zero)
