"""The recipe's optimiser: AdamW with the trunk at its own learning rate, no decay on biases and norms, and a
step-wise schedule (linear warmup, then cosine decay or constant), used by every training loop of the project.

>>> from multitask.config import TrainConfig
>>> cfg = TrainConfig.model_validate({"scheduler": "cosine", "warmup_epochs": 1})
>>> factor = schedule_factor(cfg, total_steps=10, warmup_steps=2)
>>> [round(factor(step), 3) for step in (0, 1, 2, 6, 10)]
[0.5, 1.0, 1.0, 0.5, 0.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch

from multitask.config import TrainConfig


def schedule_factor(cfg: TrainConfig, total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """The learning-rate factor at each optimisation step: (step + 1) / warmup during the warmup, then 1
    (``scheduler: none``) or half a cosine from 1 to 0 at `total_steps`."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if cfg.scheduler == "none":
            return 1.0
        progress = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
        return 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def recipe_optimizer(parameters: Iterable[torch.nn.Parameter], trunk: Iterable[torch.nn.Parameter],
                     cfg: TrainConfig, total_steps: int, max_epochs: int) -> dict:
    """What a LightningModule's ``configure_optimizers`` returns for `parameters` (those in `trunk` at
    ``lr × trunk_lr_scale``; weight decay on matrices only), with the schedule stepped every batch.

    >>> from multitask.config import TrainConfig
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    >>> cfg = TrainConfig.model_validate({"lr": 0.1, "trunk_lr_scale": 0.5, "scheduler": "none"})
    >>> out = recipe_optimizer(net.parameters(), net[0].parameters(), cfg, total_steps=10, max_epochs=2)
    >>> sorted((g["lr"], g["weight_decay"] > 0, len(g["params"])) for g in out["optimizer"].param_groups)
    [(0.05, False, 1), (0.05, True, 1), (0.1, False, 1), (0.1, True, 1)]
    """
    trunk_ids = {id(p) for p in trunk}
    groups: dict[str, list[torch.nn.Parameter]] = {"trunk_decay": [], "trunk_no_decay": [], "decay": [],
                                                    "no_decay": []}
    for parameter in parameters:
        prefix = "trunk_" if id(parameter) in trunk_ids else ""
        groups[prefix + ("decay" if parameter.dim() > 1 else "no_decay")].append(parameter)
    param_groups = [{"params": params, "lr": cfg.lr * (cfg.trunk_lr_scale if name.startswith("trunk") else 1.0),
                     "weight_decay": cfg.weight_decay if name in ("trunk_decay", "decay") else 0.0}
                    for name, params in groups.items() if params]
    optimizer = torch.optim.AdamW(param_groups, lr=cfg.lr)
    if cfg.scheduler == "none" and cfg.warmup_epochs == 0:
        return {"optimizer": optimizer}
    total = max(int(total_steps), 1)
    warmup = int(cfg.warmup_epochs * max(total // max(max_epochs, 1), 1))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule_factor(cfg, total, warmup))
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
