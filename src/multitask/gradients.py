"""The representation-gradient step: each task's loss gradient w.r.t. the shared representation, in one pass.

Training (gradient-based weighting methods, :class:`multitask.training.MultiTaskModule`) and the advisor's probe
(:mod:`multitask.advise.probe`) both take this step: detach the representation z, compute the per-task losses
on it, differentiate the losses of the tasks present in the batch with respect to z (one batched backward
through the heads only), combine the gradients into a direction d, and train on the surrogate objective
Σ L + <z, d>, whose gradient is d for the trunk and each task's own loss gradient for its head.

>>> import torch
>>> z = torch.randn(4, 3, requires_grad=True)
>>> heads = torch.nn.Linear(3, 2)
>>> step = representation_gradients(z, lambda shared: (heads(shared).pow(2).mean(0), torch.tensor([4, 0])))
>>> step.index.tolist(), tuple(step.gradients.shape)     # task 1 has no known label in the batch
([0], (1, 4, 3))
>>> objective = surrogate_objective(step.selected, z, step.gradients.sum(0))
>>> objective.backward(); bool(torch.allclose(z.grad, step.gradients.sum(0)))
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class RepresentationGradients:
    """The per-task losses on the detached representation and their gradients with respect to it."""

    losses: Tensor
    """(T,) per-task losses (computed on the detached representation)."""
    present: Tensor
    """(T,) bool: the task has a known label in the batch."""
    index: Tensor
    """(P,) indices of the present tasks."""
    selected: Tensor
    """(P,) the present tasks' losses."""
    gradients: Tensor | None
    """(P, *z.shape) ∂ selected[p] / ∂z, or None when no task is present."""


def representation_gradients(z: Tensor, task_losses: Callable[[Tensor], tuple[Tensor, Tensor]]
                             ) -> RepresentationGradients:
    """Per-task gradients with respect to the representation z (heads only are differentiated).

    `task_losses(shared)` returns (per-task losses (T,), per-task known-label counts (T,)) for a
    representation; it is called once, on a detached copy of z.
    """
    shared = z.detach().requires_grad_(True)
    losses, counts = task_losses(shared)
    present = counts > 0
    index = present.nonzero().flatten()
    selected = losses[index]
    if len(index) == 0:
        return RepresentationGradients(losses, present, index, selected, None)
    eye = torch.eye(len(index), device=z.device, dtype=selected.dtype)
    (gradients,) = torch.autograd.grad(selected, shared, grad_outputs=eye, is_grads_batched=True, retain_graph=True)
    return RepresentationGradients(losses, present, index, selected, gradients)


def surrogate_objective(head_losses: Tensor, z: Tensor, direction: Tensor) -> Tensor:
    """Σ head_losses + <z, direction>: the trunk receives `direction`, each head its own loss gradient."""
    return head_losses.sum() + (z * direction.view_as(z).detach()).sum()
