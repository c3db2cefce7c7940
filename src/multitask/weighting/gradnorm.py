"""GradNorm: gradient normalisation for adaptive loss balancing (Chen et al. 2018)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from multitask.weighting.base import WEIGHTINGS, GramianAggregator


@WEIGHTINGS.register("gradnorm")
class GradNorm(GramianAggregator):
    """GradNorm: weights that balance task gradient norms and training rates (Chen et al. 2018).

    The trunk follows Σ w_j g_j; w is pulled so that w_j‖g_j‖ ∝ (relative inverse training rate)^α.

    Reference: Zhao Chen, Vijay Badrinarayanan, Chen-Yu Lee, Andrew Rabinovich, "GradNorm: Gradient
    Normalization for Adaptive Loss Balancing in Deep Multitask Networks", ICML 2018, arXiv:1711.02257.

    Implemented as a gradient aggregator over the gradients g_j with respect to the shared representation (the
    output of the last shared layer, the paper's choice W). The returned direction is Σ_j w_j g_j with the
    current weights; then the weights of the k present tasks take one step of GradNorm's rule:

    - G_j = w_j ‖g_j‖, Ḡ = mean_j G_j; L̃_j = L_j / L_j(0) (L_j(0): the task's loss the first time it was present,
      kept per task since a task may be absent from the first batches); r_j = L̃_j / mean_i L̃_i;
    - L_grad = Σ_j |G_j - Ḡ r_j^α| with the target Ḡ r_j^α held constant;
    - w_j ← max(w_j - lr ∂L_grad/∂w_j / mean_i ‖g_i‖, min_weight), then the present weights are rescaled to sum
      to k (absent tasks' weights are left alone).

    Dividing the GradNorm gradient by the mean gradient norm makes ``lr`` independent of the (batch-size and
    width dependent) scale of representation gradients; the paper instead uses the network's optimiser.
    A task whose gradient is small or whose loss falls slowly gains weight. Defaults: ``alpha=1.5``,
    ``lr=0.025``. L_j / L_j(0) should compare like with like, so ``loss.normalization: known`` is recommended.

    >>> import torch
    >>> method = GradNorm(n_tasks=2)
    >>> direction = method.aggregate(torch.tensor([[1.0, 0.0], [0.0, 3.0]]), torch.tensor([1.0, 1.0]))
    >>> direction.tolist()  # the current weights (1, 1)
    [1.0, 3.0]
    >>> method.task_weights[0] > 1 > method.task_weights[1]  # the task with the smaller gradient gains weight
    tensor(True)
    """

    needs_task_index: ClassVar[bool] = True

    def __init__(self, n_tasks: int, alpha: float = 1.5, lr: float = 0.025, min_weight: float = 1e-3) -> None:
        super().__init__(n_tasks)
        self.alpha = float(alpha)
        self.lr = float(lr)
        self.min_weight = float(min_weight)
        self.register_buffer("task_weights", torch.ones(n_tasks))
        self.register_buffer("initial_losses", torch.full((n_tasks,), float("nan")))

    def weights(self, gramian: Tensor, losses: Tensor, tasks: Tensor) -> Tensor:
        device = self.task_weights.device
        index = tasks.to(device)
        current = self.task_weights[index].cpu().double()
        current = current * (len(current) / current.sum())  # the present weights sum to k
        initial = self.initial_losses[index].cpu().double()
        initial = torch.where(torch.isnan(initial), losses, initial)
        self.initial_losses[index] = initial.to(self.initial_losses)
        self.task_weights[index] = self.updated(current, gramian.diagonal().clamp(min=0).sqrt(), losses,
                                                initial).to(self.task_weights)
        return current

    def updated(self, weights: Tensor, norms: Tensor, losses: Tensor, initial: Tensor) -> Tensor:
        """One GradNorm step on the present tasks' weights (all arguments (k,))."""
        k = len(weights)
        mean_norm = norms.mean()
        if k < 2 or not torch.isfinite(norms).all() or mean_norm <= 0:
            return weights
        inverse_rate = losses / initial.clamp(min=1e-12)
        if not torch.isfinite(inverse_rate).all() or inverse_rate.mean() <= 0:
            inverse_rate = torch.ones_like(losses)
        relative = inverse_rate / inverse_rate.mean()
        scaled = weights * norms
        target = scaled.mean() * relative**self.alpha
        gradient = torch.sign(scaled - target) * norms / mean_norm
        new = (weights - self.lr * gradient).clamp(min=self.min_weight)
        return new * (k / new.sum())
