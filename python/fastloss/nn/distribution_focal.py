from .. import distribution_focal as _functional
from ._base import Loss


class DistributionFocalLoss(Loss):
    """fastloss.distribution_focal_loss as a module: forward(pred (..., n), target (...), weight=None,
    avg_factor=None)."""

    def __init__(self, target_max=None, reduction="mean", **deprecated):
        super().__init__(reduction, **deprecated)
        self.target_max = target_max

    def forward(self, pred, target, weight=None, avg_factor=None, **deprecated):
        loss = _functional.distribution_focal_loss(
            pred,
            target,
            target_max=self.target_max,
            reduction=self.resolve_reduction(deprecated),
            weight=weight,
            avg_factor=avg_factor,
        )
        return self.scaled(loss)

    def extra_repr(self):
        return f"target_max={self.target_max}, " + super().extra_repr()
