from .. import classic as _functional
from .._common import check_nonnegative
from ._base import WeightedLoss


class _Classic(WeightedLoss):
    def forward(self, pred, target, weight=None, avg_factor=None, reduction_override=None):
        loss = self.loss(
            pred, target, reduction=self.resolve_reduction(reduction_override), weight=weight, avg_factor=avg_factor
        )
        return loss * self.loss_weight if self.loss_weight != 1.0 else loss


class L1Loss(_Classic):
    """mmdet's L1Loss on fastloss.l1_loss (torch's kernel)."""

    @staticmethod
    def loss(pred, target, **options):
        return _functional.l1_loss(pred, target, **options)


class MSELoss(_Classic):
    """mmdet's MSELoss on fastloss.mse_loss (torch's kernel)."""

    @staticmethod
    def loss(pred, target, **options):
        return _functional.mse_loss(pred, target, **options)


class SmoothL1Loss(_Classic):
    """mmdet's SmoothL1Loss(beta) on fastloss.smooth_l1_loss (torch's kernel)."""

    def __init__(self, beta=1.0, reduction="mean", loss_weight=1.0):
        super().__init__(reduction, loss_weight)
        self.beta = check_nonnegative("beta", beta)

    def loss(self, pred, target, **options):
        return _functional.smooth_l1_loss(pred, target, beta=self.beta, **options)

    def extra_repr(self):
        return f"beta={self.beta}, " + super().extra_repr()
