from .. import distribution_focal as _functional
from ._base import WeightedLoss


class DistributionFocalLoss(WeightedLoss):
    """fastloss.distribution_focal_loss as an mmdet-style module: forward(pred (..., n), target (...),
    weight=None, avg_factor=None, reduction_override=None)."""

    def __init__(self, target_max=None, reduction="mean", loss_weight=1.0):
        super().__init__(reduction, loss_weight)
        self.target_max = target_max

    def forward(self, pred, target, weight=None, avg_factor=None, reduction_override=None):
        loss = _functional.distribution_focal_loss(
            pred,
            target,
            target_max=self.target_max,
            reduction=self.resolve_reduction(reduction_override),
            weight=weight,
            avg_factor=avg_factor,
        )
        return loss * self.loss_weight if self.loss_weight != 1.0 else loss

    def extra_repr(self):
        return f"target_max={self.target_max}, " + super().extra_repr()
