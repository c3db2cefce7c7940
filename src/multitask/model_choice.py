"""Linear model or MLP for feature vectors: both trained, the one that does better on the validation split kept.

With the ``mlp`` trunk and ``model.select: auto`` (the default, also the estimator's ``select="auto"``), a run
fits a *linear* candidate first (the same network without hidden layers: the task heads on the standardised
features, fitted as L2-regularised logistic regression, C = 1, by L-BFGS:
:mod:`multitask.linear_fit`), then trains the configured MLP with the usual early stopping and best-epoch rule
(:mod:`multitask.best_epoch`), and keeps the MLP only when the evidence says it is better: its validation mAP
higher by more than ``train.map_tolerance`` *and* the 95 % paired bootstrap interval of the difference over the
validation rows above 0; otherwise the linear model (the simpler model unless the data show otherwise, as in
the one-standard-error rule: a validation part of a few dozen rows cannot tell 0.80 from 0.83, and on such
data the linear model is per-label logistic regression).
Both the estimator and ``multitask train`` go through :func:`fit_choosing`; the evidence is returned as a dict
(``metrics.json["model_choice"]``, the estimator's ``model_choice_``).

Cost: the linear fit is a few full-batch L-BFGS passes per C (each pass one d x T matrix product over the
training rows, against the MLP's d x 256 + 256 x 256 + 256 x T per row per epoch, forward and backward), so a
run costs the MLP's time plus a fraction (measured in docs/benchmarks.md, section feature-defaults).
Not chosen (the MLP alone): other unknown-label strategies than ``ignore`` (the linear fit implements that
loss only), other sharing than ``hard``, pretrained or transferred trunk weights, a frozen trunk, no validation
split.

>>> rows = {"linear": {"val_map": 0.90, "val_loss": 1.0}, "mlp": {"val_map": 0.95, "val_loss": 2.0}}
>>> decide(rows, 0.01, (0.02, 0.08)), decide(rows, 0.1, (0.02, 0.08)), decide(rows, 0.01, (-0.01, 0.1))
('mlp', 'linear', 'linear')
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from multitask.config import RunConfig, apply_overrides
from multitask.linear_fit import fit_linear
from multitask.models.network import MultiTaskNetwork
from multitask.tables import LabelTable
from multitask.training import FitResult, fit

__all__ = ["choice_applies", "decide", "describe", "fit_choosing", "linear_config", "linear_only", "recipe_chooses"]

DEFAULT_HIDDEN = [256, 256]
"""The mlp trunk's default hidden layers (:func:`multitask.models.trunks.mlp`)."""

RULE = ("the MLP when its val mAP is higher by more than train.map_tolerance and the 95 % paired bootstrap "
        "interval of the difference (validation rows) is above 0, else the linear model; each at its kept epoch")
N_BOOT = 200
"""Bootstrap resamples of the validation rows for the mAP difference."""


def _hidden(config: RunConfig) -> list[int]:
    return [int(h) for h in config.model.trunk_options.get("hidden", DEFAULT_HIDDEN)]


def _eligible(config: RunConfig) -> bool:
    """mlp trunk, ``select: auto``, hard sharing, the ``ignore`` loss, no pretrained / transferred / frozen trunk."""
    model = config.model
    return (model.trunk == "mlp" and model.select == "auto" and model.sharing == "hard" and model.weights is None
            and model.init_from is None and not config.train.freeze_trunk
            and getattr(config.loss, "unknown", "ignore") == "ignore")


def linear_only(config: RunConfig) -> bool:
    """True when the configured network is the linear model itself (``hidden: []`` with ``select: auto``): it
    is fitted by :func:`multitask.linear_fit.fit_linear`, as the kept linear candidate of a choice was — so a run
    whose config.yaml records a kept linear model reruns and resumes to the same weights.

    >>> linear_only(RunConfig.model_validate({"model": {"trunk": "mlp", "trunk_options": {"hidden": []}}}))
    True
    """
    return _eligible(config) and not _hidden(config)


def choice_applies(config: RunConfig, table: LabelTable) -> bool:
    """True when a run chooses: mlp trunk, ``model.select: auto``, a validation split, hidden layers configured,
    hard sharing, the ``ignore`` unknown-label loss, no pretrained or transferred trunk weights, no frozen trunk.

    >>> from multitask.tables import label_table_from_arrays
    >>> import numpy as np
    >>> table = label_table_from_arrays(np.zeros((4, 2)), np.array([[0.], [1.], [0.], [1.]]),
    ...                                 split=np.array(["train", "train", "val", "val"]))
    >>> choice_applies(RunConfig.model_validate({"model": {"trunk": "mlp"}}), table)
    True
    >>> choice_applies(RunConfig.model_validate({"model": {"trunk": "mlp", "select": "off"}}), table)
    False
    """
    return recipe_chooses(config) and bool((table.split == "val").any())


def recipe_chooses(config: RunConfig) -> bool:
    """True when `config` makes a run choose between its MLP and a linear model, given a validation split (as
    compare's tables always have): :func:`choice_applies` without the table.

    >>> recipe_chooses(RunConfig.model_validate({"model": {"trunk": "mlp", "trunk_options": {"hidden": [8]}}}))
    True
    """
    return _eligible(config) and bool(_hidden(config))


def linear_config(config: RunConfig) -> RunConfig:
    """The config of the linear candidate: the same run without hidden layers (see :func:`linear_only`).

    >>> linear_config(RunConfig.model_validate({"model": {"trunk": "mlp"}})).model.trunk_options
    {'hidden': []}
    """
    options = {**config.model.trunk_options, "hidden": []}
    return apply_overrides(config, {"model.trunk_options": options})


def decide(rows: dict[str, dict[str, float]], tolerance: float, interval: tuple[float, float]) -> str:
    """'mlp' when its val_map beats the linear one's by more than `tolerance` and the bootstrap `interval` of
    mAP(mlp) - mAP(linear) lies above 0; else 'linear' (see the module docstring)."""
    better = rows["mlp"]["val_map"] > rows["linear"]["val_map"] + tolerance
    return "mlp" if better and interval[0] > 0 else "linear"


def map_difference(table: LabelTable, first: MultiTaskNetwork, second: MultiTaskNetwork, *, seed: int = 0,
                   n_boot: int = N_BOOT) -> tuple[float, float, float]:
    """mAP(second) - mAP(first) on the validation split and its 95 % paired bootstrap interval over the rows:
    (point, low, high). The mAP is the mean over tasks with both classes among their known labels."""
    import numpy as np
    import torch

    from multitask.bootstrap import summarize, weighted_average_precision

    val = table.part("val")
    x = torch.as_tensor(np.asarray(val.features, dtype=np.float32))
    with torch.no_grad():
        scores = [torch.cat([net.cpu().eval()(x[i:i + 65536]) for i in range(0, len(x), 65536)]).double().numpy()
                  for net in (first, second)]
    targets, known = val.targets, val.known
    counts = np.random.default_rng(seed).multinomial(len(x), np.full(len(x), 1 / len(x)), size=n_boot)
    ones = np.ones((1, len(x)))
    samples, points = [], []
    for j in range(table.n_tasks):
        rows = known[:, j]
        y = targets[rows, j]
        if not 0 < y.sum() < len(y):
            continue
        samples.append(weighted_average_precision(y, scores[1][rows, j], counts[:, rows])
                       - weighted_average_precision(y, scores[0][rows, j], counts[:, rows]))
        points.append(weighted_average_precision(y, scores[1][rows, j], ones[:, rows])[0]
                      - weighted_average_precision(y, scores[0][rows, j], ones[:, rows])[0])
    if not samples:
        return 0.0, float("nan"), float("nan")
    with warnings.catch_warnings():  # a resample without both classes in any task: NaN, left out
        warnings.simplefilter("ignore", RuntimeWarning)
        difference = summarize(np.nanmean(np.stack(samples, axis=1), axis=1), float(np.mean(points)))
    return difference.mean, difference.low, difference.high


def describe(record: dict[str, Any]) -> str:
    """One line for a person: which network was kept, and the validation numbers that decided it.

    >>> print(describe({"chosen": "linear", "candidates": {
    ...     "linear": {"val_map": 0.951, "val_loss": 0.52, "best_epoch": 40},
    ...     "mlp": {"hidden": [256, 256], "val_map": 0.948, "val_loss": 0.61, "best_epoch": 12}}}))
    model choice: linear kept (validation mAP 0.9510, loss 0.5200 at epoch 40; MLP 256-256: 0.9480, 0.6100 at epoch 12)
    """
    kept, other = record["chosen"], "mlp" if record["chosen"] == "linear" else "linear"
    rows = record["candidates"]

    def name(key: str) -> str:
        return "linear" if key == "linear" else "MLP " + "-".join(str(h) for h in rows[key].get("hidden", []))

    def numbers(key: str) -> str:
        row, loss = rows[key], "loss " if key == kept else ""
        return f"{row['val_map']:.4f}, {loss}{row['val_loss']:.4f} at epoch {row['best_epoch']}"

    line = f"model choice: {name(kept)} kept (validation mAP {numbers(kept)}; {name(other)}: {numbers(other)}"
    gap = record.get("map_difference")
    if gap:
        line += (f"; MLP - linear mAP {gap['mlp_minus_linear']:+.4f}, 95 % interval "
                 f"[{gap['low']:+.4f}, {gap['high']:+.4f}]")
    return line + ")"


def evidence(config: RunConfig, result: FitResult) -> dict[str, Any]:
    """What a candidate achieved at its kept epoch: val mAP and loss, epochs, time."""
    kept = next((h for h in result.history if result.best_epoch is not None and h["epoch"] == result.best_epoch - 1),
                result.history[-1] if result.history else {})
    extra = {"C": kept["C"]} if "C" in kept else {}
    return {"hidden": _hidden(config), **extra, "val_map": float(kept.get("val_map", float("nan"))),
            "val_loss": float(kept.get("val_loss", float("nan"))), "best_epoch": result.best_epoch,
            "epochs": int(result.epochs), "train_seconds": round(float(result.train_seconds), 3)}


def fit_choosing(config: RunConfig, table: LabelTable, network: MultiTaskNetwork, run_dir: Path, *,
                 label: str = "", quiet: bool = False, resume_from: Path | None = None,
                 on_epoch: Callable[[int], object] | None = None, resumable: bool = True,
                 refit_linear: bool = False) -> tuple[FitResult, RunConfig, dict[str, Any] | None]:
    """Train `network` as :func:`multitask.training.fit` does, or, when :func:`choice_applies`, fit the linear
    candidate and then train `network`; return the kept result, the config that describes its network (the
    linear one: ``hidden: []``, fitted again the same way from that config), and the evidence (None without a
    choice). A configured linear network (:func:`linear_only`) is fitted by L-BFGS alone.

    `refit_linear` (the estimator, whose validation part is carved out of the caller's training data): a kept
    linear model is fitted again on the training and validation rows together, as ``GridSearchCV`` refits its
    best model (its validation numbers in the evidence stay those of the fit on the training rows).

    The linear fit is deterministic and quick, so a resumed run refits it; the MLP is trained in `run_dir`,
    resumable as any run. When the linear model wins, the MLP's ``checkpoints/best.ckpt`` is removed (the kept
    weights are the run's model.safetensors).
    """
    if linear_only(config):
        result = fit_linear(config, table, network)
        return (_refit(result, config, table) if refit_linear else result), config, None
    if not choice_applies(config, table):
        result = fit(config, table, network, run_dir, label=label, quiet=quiet, resume_from=resume_from,
                     on_epoch=on_epoch, resumable=resumable)
        return result, config, None
    linear = linear_config(config)
    linear_result = fit_linear(linear, table)
    mlp_result = fit(config, table, network, run_dir, label=label, quiet=quiet, resume_from=resume_from,
                     on_epoch=on_epoch, resumable=resumable)
    rows = {"linear": evidence(linear, linear_result), "mlp": evidence(config, mlp_result)}
    point, low, high = map_difference(table, linear_result.network, mlp_result.network, seed=config.train.seed)
    chosen = decide(rows, config.train.map_tolerance, (low, high))
    record = {"chosen": chosen, "rule": RULE, "tolerance": config.train.map_tolerance, "candidates": rows,
              "map_difference": {"mlp_minus_linear": point, "low": low, "high": high}}
    if chosen == "mlp":
        return mlp_result, config, record
    if mlp_result.checkpoint is not None:  # the MLP's, not the kept model
        mlp_result.checkpoint.unlink(missing_ok=True)
    return (_refit(linear_result, linear, table) if refit_linear else linear_result), linear, record


def _refit(selected: FitResult, config: RunConfig, table: LabelTable) -> FitResult:
    """The linear model fitted on the training and validation rows; history and time of `selected` kept."""
    import dataclasses

    import numpy as np

    everything = dataclasses.replace(table, split=np.where(table.split == "val", "train", table.split))
    refit = fit_linear(config, everything)
    return dataclasses.replace(selected, network=refit.network,
                               train_seconds=selected.train_seconds + refit.train_seconds)
