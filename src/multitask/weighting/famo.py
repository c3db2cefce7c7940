"""Fast adaptive multitask optimization (Liu et al. 2023)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from multitask.weighting.base import WEIGHTINGS, Weighting


@WEIGHTINGS.register("famo")
class FAMO(Weighting):
    """FAMO: adaptive loss weights so all task losses fall at the same rate (Liu et al. 2023).

    Weights ∝ softmax(ξ)_j / L_j, with logits ξ adapted after each step so all task losses fall at the same rate.

    Reference: Bo Liu, Yihao Feng, Peter Stone, Qiang Liu, "FAMO: Fast Adaptive Multitask Optimization",
    NeurIPS 2023, arXiv:2306.03792.

    Network objective, over the k present tasks with z = softmax(ξ_present):
    J = k · Σ_j z_j log(L_j + ε) / c with c = Σ_j z_j / (L_j + ε) held constant, so the network follows
    Σ_j w_j ∇L_j with w_j = k z_j / (c (L_j + ε)): weights sum to k (the paper's sum to 1; ×k keeps the scale of
    the plain sum, and equal losses with equal logits give weights 1). Absent tasks get weight 0.

    Logit update (:meth:`after_step`, after the optimizer step, on the same batch): with the log-loss decrease
    δ_j = log(L_j,before + ε) - log(L_j,after + ε), the logits of the present tasks take one Adam step on the
    gradient of δ·softmax(ξ_present) plus weight decay γ ξ (the paper's regulariser): a task whose loss fell
    less than the others gains weight. The Adam moments and step counts are kept per task (buffers), and only
    present tasks' entries move. Defaults: ``lr=0.025``, ``weight_decay=1e-3`` (the official code uses 0.01).

    FAMO compares log-losses, so it needs positive losses of comparable meaning across batches: use
    ``loss.normalization: known`` so a task's loss does not change with its number of known labels in the batch.

    >>> import torch
    >>> method = FAMO(n_tasks=2)
    >>> present = torch.tensor([True, True])
    >>> _ = method(torch.tensor([1.0, 1.0]), present)
    >>> method.last_weights.tolist()
    [1.0, 1.0]
    >>> method.after_step(torch.tensor([1.0, 1.0]), torch.tensor([0.5, 1.0]), present)  # task 1 lagged
    >>> [round(x, 4) for x in method.logits.tolist()]
    [-0.025, 0.025]
    """

    needs_losses_after_step: ClassVar[bool] = True

    def __init__(self, n_tasks: int, lr: float = 0.025, weight_decay: float = 1e-3, betas: tuple[float, float] = (0.9,
                 0.999), eps: float = 1e-8, loss_eps: float = 1e-8) -> None:
        super().__init__(n_tasks)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = float(eps)
        self.loss_eps = float(loss_eps)
        self.register_buffer("logits", torch.zeros(n_tasks))
        self.register_buffer("exp_avg", torch.zeros(n_tasks))
        self.register_buffer("exp_avg_sq", torch.zeros(n_tasks))
        self.register_buffer("steps", torch.zeros(n_tasks))

    def forward(self, losses: Tensor, present: Tensor) -> Tensor:
        index = present.nonzero().flatten()
        k = len(index)
        if k == 0:
            return losses.sum() * 0
        z = torch.softmax(self.logits[index].to(losses), dim=0)
        shifted = losses[index] + self.loss_eps
        c = (z / shifted).sum().detach()
        weights = torch.zeros(self.n_tasks, dtype=losses.dtype, device=losses.device)
        weights[index] = (k * z / (c * shifted)).detach()
        self._remember(weights)
        return k * (z * torch.log(shifted)).sum() / c

    @torch.no_grad()
    def after_step(self, losses_before: Tensor, losses_after: Tensor, present: Tensor) -> None:
        index = present.to(self.logits.device).nonzero().flatten()
        if len(index) == 0:
            return
        before = losses_before.detach().to(self.logits)[index]
        after = losses_after.detach().to(self.logits)[index]
        delta = torch.log(before + self.loss_eps) - torch.log(after + self.loss_eps)
        if not torch.isfinite(delta).all():
            return
        logits = self.logits[index]
        z = torch.softmax(logits, dim=0)
        gradient = z * (delta - (z * delta).sum()) + self.weight_decay * logits  # ∂(δ·softmax)/∂ξ + γ ξ
        beta1, beta2 = self.betas
        steps = self.steps[index] + 1
        exp_avg = beta1 * self.exp_avg[index] + (1 - beta1) * gradient
        exp_avg_sq = beta2 * self.exp_avg_sq[index] + (1 - beta2) * gradient**2
        step = (exp_avg / (1 - beta1**steps)) / ((exp_avg_sq / (1 - beta2**steps)).sqrt() + self.eps)
        self.logits[index] = logits - self.lr * step
        self.exp_avg[index] = exp_avg
        self.exp_avg_sq[index] = exp_avg_sq
        self.steps[index] = steps
