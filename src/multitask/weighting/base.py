"""The two kinds of task-balancing method, and their registry.

A :class:`Weighting` turns the per-task losses of a batch into one objective (loss weighting).
A :class:`GradientAggregator` instead receives each task's gradient with respect to the shared representation
and returns the single gradient the trunk should follow (gradient surgery / multi-objective methods).

Both receive only the tasks *present* in the batch (with at least one known label): a task without labels
has no gradient, and a zero row must not pull min-norm style solutions to zero.
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor, nn

from multitask.models.registry import Registry

WEIGHTINGS: Registry[nn.Module] = Registry("weighting method")


class Weighting(nn.Module):
    """Loss weighting: ``forward(losses, present) -> scalar objective``.

    `losses` has one entry per task (0 for absent tasks); `present` is a boolean mask of the tasks with at
    least one known label in the batch. Subclasses may hold parameters (they are optimised with the network)
    and may use the hooks below.
    """

    needs_gradients: ClassVar[bool] = False
    needs_losses_after_step: ClassVar[bool] = False

    def __init__(self, n_tasks: int) -> None:
        super().__init__()
        self.n_tasks = n_tasks

    def forward(self, losses: Tensor, present: Tensor) -> Tensor:
        raise NotImplementedError

    def on_epoch_end(self, epoch_losses: Tensor) -> None:
        """Mean training loss of each task over the finished epoch (used by DWA)."""

    def after_step(self, losses_before: Tensor, losses_after: Tensor, present: Tensor) -> None:
        """The same batch's task losses before and after the optimizer step (used by FAMO)."""


class GradientAggregator(Weighting):
    """Gradient aggregation: ``aggregate(gradients, losses) -> one gradient``.

    `gradients` is (k, P): one row per present task, the gradient of that task's loss with respect to the
    shared representation (or the shared parameters), flattened. `losses` are the k matching losses.
    """

    needs_gradients: ClassVar[bool] = True

    def aggregate(self, gradients: Tensor, losses: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, losses: Tensor, present: Tensor) -> Tensor:  # pragma: no cover - not used in training
        return losses[present].sum()


def build_weighting(name: str, n_tasks: int, **options: Any) -> Weighting:
    """A weighting method by registry name (`multitask methods` lists them)."""
    return WEIGHTINGS.build(name, n_tasks=n_tasks, **options)
