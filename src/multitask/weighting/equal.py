"""Equal weighting: the plain sum of task losses, the lecture's objective."""

from __future__ import annotations

import torch
from torch import Tensor

from multitask.weighting.base import WEIGHTINGS, Weighting


@WEIGHTINGS.register("equal")
class Equal(Weighting):
    """Equal weighting: the plain sum of the present tasks' losses (the default).

    J = Σ_j L_j. With the default loss normalisation this is (1/m) Σ_i Σ_{j known} ℓ(ŷ_ij, y_ij).

    >>> import torch
    >>> Equal(n_tasks=3)(torch.tensor([0.5, 0.0, 1.0]), torch.tensor([True, False, True]))
    tensor(1.5000)
    """

    def forward(self, losses: Tensor, present: Tensor) -> Tensor:
        return torch.where(present, losses, torch.zeros_like(losses)).sum()
