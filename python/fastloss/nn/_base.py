"""The mmdet-style loss module that every fastloss module follows."""
import torch

from .._common import check_number, check_reduction


class WeightedLoss(torch.nn.Module):
    """reduction and loss_weight at construction; forward(pred, target, weight=None, avg_factor=None,
    reduction_override=None) returns loss_weight × the loss, as mmdet's losses do."""

    def __init__(self, reduction="mean", loss_weight=1.0):
        super().__init__()
        self.reduction = check_reduction(reduction)
        self.loss_weight = check_number("loss_weight", loss_weight)

    def resolve_reduction(self, reduction_override):
        if reduction_override is None:
            return self.reduction
        return check_reduction(reduction_override, "reduction_override")

    def extra_repr(self):
        return f"reduction={self.reduction!r}, loss_weight={self.loss_weight}"
