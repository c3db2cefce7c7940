"""Training on a label table with Lightning: the LightningModule (masked loss, weighting, unknown-label strategy,
freezing, validation mAP) and :func:`fit`, which runs it with the project's Trainer (:mod:`multitask.trainer`).

The network itself (:class:`multitask.models.MultiTaskNetwork`) knows nothing of the loop; the optimiser and its
schedule are :mod:`multitask.optimization`'s, the Trainer's callbacks and checkpoints :mod:`multitask.trainer`'s.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader
from torchmetrics import Metric
from torchmetrics.functional.classification import binary_average_precision
from torchmetrics.utilities import dim_zero_cat

from multitask.best_epoch import BestEpochRule, scaled_patience
from multitask.config import LossConfig, ModelConfig, RunConfig, TrainConfig
from multitask.data.datamodule import MultiTaskDataModule
from multitask.errors import ConfigError
from multitask.losses import per_task_losses, pos_weight_from_counts
from multitask.models.network import MultiTaskNetwork, build_network
from multitask.optimization import recipe_optimizer
from multitask.tables import LabelTable
from multitask.trainer import ShuffleState, epoch_of_score, run_trainer
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
        self.val_ap.update(torch.sigmoid(logits), torch.where(known, targets.long(), -1))
        self.val_counts.update(logits, targets, known)

    def on_validation_epoch_end(self) -> None:
        """val_loss (the batch-normalised masked loss over the whole split) and val_map (mean AP over tasks with
        both classes among the known labels, as :func:`multitask.metrics.task_metrics`); torchmetrics states are
        summed / gathered across processes."""
        if not self.val_counts.update_called:
            return
        ap = self.val_ap.compute().float().reshape(-1)  # NaN where a task lacks a class: left out below
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
        return recipe_optimizer(self.parameters(), self.network.shared_parameters(), self.train_config,
                                self.trainer.estimated_stepping_batches, self.trainer.max_epochs or 1)


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


class KnownLabelAP(Metric):
    """Average precision of each task over its known validation labels (targets: 1, 0, or -1 for unknown),
    gathered across processes; NaN for a task without both classes among them. Each task's AP is torchmetrics'
    ``binary_average_precision`` on its known rows (its multilabel metric fails outright when one task has no
    known validation label at all).

    >>> metric = KnownLabelAP(2)
    >>> metric.update(torch.tensor([[0.9, 0.2], [0.1, 0.8], [0.6, 0.3]]), torch.tensor([[1, -1], [0, -1], [0, -1]]))
    >>> metric.compute()
    tensor([1., nan])
    """

    full_state_update = False

    def __init__(self, n_tasks: int) -> None:
        super().__init__()
        self.n_tasks = n_tasks
        self.add_state("probs", [], dist_reduce_fx="cat")
        self.add_state("targets", [], dist_reduce_fx="cat")

    def update(self, probs: Tensor, targets: Tensor) -> None:
        self.probs.append(probs.reshape(-1, self.n_tasks).float())
        self.targets.append(targets.reshape(-1, self.n_tasks).long())

    def compute(self) -> Tensor:
        probs, targets = dim_zero_cat(self.probs), dim_zero_cat(self.targets)
        out = torch.full((self.n_tasks,), float("nan"))
        for j in range(self.n_tasks):
            known = targets[:, j] >= 0
            y = targets[known, j]
            if 0 < int(y.sum()) < len(y):
                out[j] = binary_average_precision(probs[known, j], y)
        return out


def validation_ap(n_tasks: int) -> KnownLabelAP:
    """Average precision per task over known labels (unknown = -1, ignored): :class:`KnownLabelAP`."""
    return KnownLabelAP(n_tasks)


def _generators(module: torch.nn.Module) -> list[tuple[str, torch.Generator]]:
    """The torch.Generator attributes of a module and its children (e.g. RLW's), by dotted name."""
    return [(f"{prefix}.{name}" if prefix else name, value) for prefix, child in module.named_modules()
            for name, value in vars(child).items() if isinstance(value, torch.Generator)]


class ResumableDataModule(ShuffleState, MultiTaskDataModule):
    """The data module, with the training shuffle generator's state in checkpoints (:class:`ShuffleState`)."""

    def train_dataloader(self) -> DataLoader:
        return self.remember_loader(super().train_dataloader())


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
    stopping = cfg.patience is not None and has_val
    steps_per_epoch = math.ceil(int((table.split == "train").sum()) / cfg.batch_size)
    patience = scaled_patience(cfg.patience, cfg.patience_steps, steps_per_epoch) if stopping else None
    done = run_trainer(module, data, cfg, run_dir, watch=watched, mode=mode, has_val=has_val, label=label,
                       quiet=quiet, resume_from=resume_from, on_epoch=on_epoch, resumable=resumable,
                       patience=patience,
                       min_steps=cfg.patience_steps if stopping else None,
                       deterministic="warn" if cfg.deterministic else False)
    done.load_best(module)
    best_score, best_epoch = done.best_score, None
    if monitor == "auto":
        rule = module.best_rule
        best_epoch = None if rule.best_epoch is None else rule.best_epoch + 1
        best_score = None if rule.best_epoch is None else rule.best_map
    else:
        best_epoch = epoch_of_score(done.history.epochs, monitor, best_score)
    module.network.cpu().eval()
    return FitResult(network=module.network, weighting=module.weighting, train_seconds=done.seconds,
                     epochs=done.trainer.current_epoch, best_epoch=best_epoch, best_score=best_score,
                     checkpoint=done.best_path, history=done.history.epochs, global_zero=done.trainer.is_global_zero,
                     completion=completion)
