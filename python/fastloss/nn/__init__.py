"""mmdet-style loss modules (reduction, loss_weight, forward(..., weight, avg_factor, reduction_override))."""
from ._base import WeightedLoss
from .sigmoid_focal import SigmoidFocalLoss

__all__ = ["WeightedLoss", "SigmoidFocalLoss"]
