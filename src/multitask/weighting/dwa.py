"""Dynamic weight average (Liu, Johns & Davison 2019)."""

from __future__ import annotations

import torch
from torch import Tensor

from multitask.errors import ConfigError
from multitask.weighting.base import WEIGHTINGS, Weighting


@WEIGHTINGS.register("dwa")
class DynamicWeightAverage(Weighting):
    """Dynamic weight average: weights from the last two epochs' loss ratios (Liu et al. 2019).

    Weights = k · softmax(r / T), r_j = ratio of task j's last two epoch losses.

    Reference: Shikun Liu, Edward Johns, Andrew J. Davison, "End-to-End Multi-Task Learning with Attention",
    CVPR 2019, arXiv:1803.10704.

    With L_j(e) the mean training loss of task j in epoch e (from :meth:`on_epoch_end`), epoch t uses
    r_j = L_j(t-1) / L_j(t-2) and w_j = k exp(r_j / T) / Σ_i exp(r_i / T), the softmax taken over the k tasks
    present in the batch (absent tasks get 0, the present weights sum to k). A task whose loss fell slowly
    gets more weight. The first two epochs (no two-epoch history yet) use equal weights 1. A task with no
    usable history (absent for a whole epoch, loss 0) gets ratio 1. The ratio is invariant to a task's loss
    scale, but it moves with the fraction of known labels per batch, so ``loss.normalization: known`` is
    recommended.

    >>> import torch
    >>> method = DynamicWeightAverage(n_tasks=2)
    >>> method.on_epoch_end(torch.tensor([1.0, 1.0])); method.on_epoch_end(torch.tensor([0.5, 1.0]))
    >>> _ = method(torch.tensor([0.4, 0.9]), torch.tensor([True, True]))
    >>> [round(w, 4) for w in method.last_weights.tolist()]  # task 1 improved less: more weight
    [0.8756, 1.1244]
    """

    def __init__(self, n_tasks: int, temperature: float = 2.0) -> None:
        super().__init__(n_tasks)
        if temperature <= 0:
            raise ConfigError(f"temperature must be positive, got {temperature}")
        self.temperature = float(temperature)
        self.register_buffer("history", torch.zeros(2, n_tasks))  # [epoch t-2, epoch t-1]
        self.register_buffer("epochs_seen", torch.zeros((), dtype=torch.long))

    def on_epoch_end(self, epoch_losses: Tensor) -> None:
        losses = epoch_losses.detach().to(self.history)
        self.history.copy_(torch.stack([self.history[1], losses]))
        self.epochs_seen += 1

    def ratios(self) -> Tensor:
        """r_j = L_j(t-1) / L_j(t-2), 1 where the history is missing or unusable."""
        before, last = self.history[0], self.history[1]
        usable = (before > 0) & (last > 0) & torch.isfinite(before) & torch.isfinite(last)
        return torch.where(usable, last / before.clamp(min=torch.finfo(before.dtype).tiny), torch.ones_like(last))

    def weights(self, present: Tensor) -> Tensor:
        """The weights (T,) for a batch with these present tasks."""
        present = present.to(self.history.device).bool()
        weights = torch.zeros(self.n_tasks, device=self.history.device)
        k = int(present.sum())
        if int(self.epochs_seen) < 2:
            weights[present] = 1.0
        elif k:
            weights[present] = k * torch.softmax(self.ratios()[present] / self.temperature, dim=0)
        return weights

    def forward(self, losses: Tensor, present: Tensor) -> Tensor:
        weights = self.weights(present)
        self._remember(weights)
        return (weights.to(losses) * torch.where(present, losses, torch.zeros_like(losses))).sum()
