"""The two kinds of task-balancing method, and their registry.

A :class:`Weighting` turns the per-task losses of a batch into one objective (loss weighting).
A :class:`GradientAggregator` instead receives each task's gradient with respect to the shared representation
and returns the single gradient the trunk should follow (gradient surgery / multi-objective methods).

Both receive only the tasks *present* in the batch (with at least one known label): a task without labels
has no gradient, and a zero row must not pull min-norm style solutions to zero.

Present tasks in :meth:`GradientAggregator.aggregate`: row ``r`` of ``gradients`` belongs to task ``tasks[r]``
(a long tensor of task indices in ``0 .. n_tasks - 1``). The training step passes
``aggregate(gradients, losses, tasks=present.nonzero().flatten())``. Methods with per-task state (GradNorm's
weights, Nash-MTL's warm start) read and write their state at these indices; stateless methods ignore them.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from multitask.models.registry import Registry

WEIGHTINGS: Registry[nn.Module] = Registry("weighting method")


class Weighting(nn.Module):
    """Loss weighting: ``forward(losses, present) -> scalar objective``.

    `losses` has one entry per task (0 for absent tasks); `present` is a boolean mask of the tasks with at
    least one known label in the batch. Subclasses may hold parameters (they are optimised with the network)
    and may use the hooks below. Methods that compute explicit task weights leave them, detached, in
    ``last_weights`` (shape (T,), 0 for absent tasks) for logging and tests.
    """

    needs_gradients: ClassVar[bool] = False
    needs_losses_after_step: ClassVar[bool] = False

    def __init__(self, n_tasks: int) -> None:
        super().__init__()
        if n_tasks < 1:
            raise ValueError(f"n_tasks must be at least 1, got {n_tasks}")
        self.n_tasks = n_tasks
        self.last_weights: Tensor | None = None

    def forward(self, losses: Tensor, present: Tensor) -> Tensor:
        raise NotImplementedError

    def on_epoch_end(self, epoch_losses: Tensor) -> None:
        """Mean training loss of each task over the finished epoch (used by DWA)."""

    def after_step(self, losses_before: Tensor, losses_after: Tensor, present: Tensor) -> None:
        """The same batch's task losses before and after the optimizer step (used by FAMO)."""

    def _remember(self, weights: Tensor) -> None:
        self.last_weights = weights.detach().float().cpu()


class GradientAggregator(Weighting):
    """Gradient aggregation: ``aggregate(gradients, losses, tasks) -> one gradient``.

    `gradients` is (k, P): one row per present task, the gradient of that task's loss with respect to the
    shared representation (or the shared parameters), flattened. `losses` are the k matching losses and
    `tasks` (k,) the matching task indices (``None``: the rows are tasks ``0 .. k-1``).
    """

    needs_gradients: ClassVar[bool] = True
    #: True when the method keeps per-task state and so cannot guess which tasks the rows belong to.
    needs_task_index: ClassVar[bool] = False

    def aggregate(self, gradients: Tensor, losses: Tensor, tasks: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    def forward(self, losses: Tensor, present: Tensor) -> Tensor:  # used only while the trunk is frozen
        return losses[present].sum()

    def task_index(self, tasks: Tensor | None, k: int) -> Tensor:
        """`tasks` checked, as a CPU long tensor; ``arange(k)`` when not given (only valid when unambiguous)."""
        if tasks is None:
            if k != self.n_tasks and self.needs_task_index:
                raise ValueError(f"{type(self).__name__} keeps per-task state: pass tasks= (the task index of each "
                                 f"of the {k} gradient rows; there are {self.n_tasks} tasks)")
            return torch.arange(k)
        tasks = torch.as_tensor(tasks).detach().to("cpu", torch.long).flatten()
        if len(tasks) != k:
            raise ValueError(f"tasks has {len(tasks)} entries for {k} gradient rows")
        if k and (int(tasks.min()) < 0 or int(tasks.max()) >= self.n_tasks):
            raise ValueError(f"task indices must lie in 0..{self.n_tasks - 1}, got {tasks.tolist()}")
        return tasks


class GramianAggregator(GradientAggregator):
    """A gradient aggregator whose direction is Σ_r w_r g_r with weights computed from the Gramian G = J Jᵀ.

    Subclasses implement :meth:`weights`, which receives G (k, k) and the losses as float64 CPU tensors, so the
    small solvers never synchronise with an accelerator; only G = J Jᵀ and the final combination touch J.
    """

    def weights(self, gramian: Tensor, losses: Tensor, tasks: Tensor) -> Tensor:
        raise NotImplementedError

    def aggregate(self, gradients: Tensor, losses: Tensor, tasks: Tensor | None = None) -> Tensor:
        if gradients.dim() != 2:
            raise ValueError(f"gradients must be (k, P), got shape {tuple(gradients.shape)}")
        k = gradients.shape[0]
        tasks = self.task_index(tasks, k)
        if k == 0:
            return gradients.new_zeros(gradients.shape[1])
        with torch.no_grad():
            matrix = gradients.detach().float()
            gramian = (matrix @ matrix.T).cpu().double()
            gramian = (gramian + gramian.T) / 2
            weights = self.weights(gramian, losses.detach().cpu().double().flatten(), tasks)
            full = torch.zeros(self.n_tasks, dtype=torch.float64)
            full[tasks] = weights
            self._remember(full)
            return (weights.to(matrix) @ matrix).to(gradients.dtype)


def build_weighting(name: str, n_tasks: int, **options: Any) -> Weighting:
    """A weighting method by registry name (`multitask methods` lists them)."""
    return WEIGHTINGS.build(name, n_tasks=n_tasks, **options)
