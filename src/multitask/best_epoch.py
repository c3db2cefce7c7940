"""Which epoch's weights to keep: validation mAP first, validation loss breaking near-ties (``train.monitor: auto``).

Validation mean AP on a small validation part saturates (1.0 after two epochs on an easy set) and jumps by
noise; validation loss keeps telling a better-trained model from a barely trained one, but on its own it
rewards under-confident models and stops too early where the loss rises while the ranking still improves. The
rule, applied once per epoch (only the kept epoch's weights are stored): an epoch is *eligible* when its mAP is
within ``tolerance`` of the best mAP seen so far; it replaces the kept epoch when its loss is lower (or equal:
ties go to the later epoch), or when the kept epoch is no longer eligible (a new mAP more than ``tolerance``
above it). So a saturated or noisy mAP lets the still-falling loss pick a later epoch, and a real mAP gain
(more than ``tolerance``) wins over any loss.

>>> rule = BestEpochRule(tolerance=0.01)
>>> [rule.update(epoch, m, loss) for epoch, (m, loss) in enumerate([(0.80, 3.0), (1.0, 2.0), (1.0, 1.0),
...                                                                  (0.995, 0.5), (0.90, 0.1)])]
[True, True, True, True, False]
>>> rule.best_epoch, rule.best_map, rule.best_loss
(3, 0.995, 0.5)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass
class BestEpochRule:
    """The best-epoch state, updated once per validated epoch (0-based epochs); see the module docstring."""

    tolerance: float = 0.01
    max_map: float = -math.inf
    best_epoch: int | None = None
    best_map: float = -math.inf
    best_loss: float = math.inf

    def update(self, epoch: int, val_map: float, val_loss: float) -> bool:
        """Record one epoch; True when it becomes the kept epoch (its weights must be saved)."""
        self.max_map = max(self.max_map, val_map)
        floor = self.max_map - self.tolerance
        if val_map < floor:
            return False
        if self.best_epoch is not None and self.best_map >= floor and val_loss > self.best_loss:
            return False
        self.best_epoch, self.best_map, self.best_loss = epoch, val_map, val_loss
        return True

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)


def scaled_patience(patience: int, patience_steps: int, steps_per_epoch: int) -> int:
    """Early-stopping patience in epochs: at least `patience` epochs and at least `patience_steps` optimiser steps.

    With a few hundred rows an epoch is a handful of steps, and ten epochs are too few for the model to move.

    >>> scaled_patience(10, 200, 4), scaled_patience(10, 200, 1000)
    (50, 10)
    """
    return max(int(patience), math.ceil(patience_steps / max(int(steps_per_epoch), 1)))
