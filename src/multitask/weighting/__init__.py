"""Task weighting and gradient aggregation methods, selectable by name."""

from multitask.weighting import equal  # noqa: F401  (registers the built-in methods)
from multitask.weighting.base import WEIGHTINGS, GradientAggregator, Weighting, build_weighting

__all__ = ["WEIGHTINGS", "GradientAggregator", "Weighting", "build_weighting"]
