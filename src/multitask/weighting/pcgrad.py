"""PCGrad: gradient surgery by projecting conflicting gradients (Yu et al. 2020), via torchjd."""

from __future__ import annotations

from torch import Tensor
from torchjd.aggregation import PCGradWeighting

from multitask.weighting.base import WEIGHTINGS, GramianAggregator


@WEIGHTINGS.register("pcgrad")
class PCGrad(GramianAggregator):
    """PCGrad: remove conflicting gradient components, then sum (Yu et al. 2020).

    Each task gradient is projected off the others it conflicts with; the results are summed.

    Reference: Tianhe Yu, Saurabh Kumar, Abhishek Gupta, Sergey Levine, Karol Hausman, Chelsea Finn,
    "Gradient Surgery for Multi-Task Learning", NeurIPS 2020, arXiv:2001.06782.

    For each present task i, g_i^PC starts at g_i and, for the other tasks j in a random order, loses its
    component along g_j whenever g_i^PC · g_j < 0. The direction is Σ_i g_i^PC (the paper's sum, the scale of
    the plain sum of losses). Weights come from torchjd's ``PCGradWeighting`` on the Gramian; the random orders
    use torch's global generator (seeded by the training loop).

    >>> import torch
    >>> PCGrad(n_tasks=2).aggregate(torch.tensor([[1.0, 0.0], [-1.0, 1.0]]), torch.ones(2))
    tensor([0.5000, 1.5000])
    """

    def __init__(self, n_tasks: int) -> None:
        super().__init__(n_tasks)
        self.solver = PCGradWeighting()

    def weights(self, gramian: Tensor, losses: Tensor, tasks: Tensor) -> Tensor:
        return self.solver(gramian)
