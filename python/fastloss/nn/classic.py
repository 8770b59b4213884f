from .. import classic as _functional
from .._common import check_nonnegative
from ._base import Loss


class L1Loss(Loss):
    """fastloss.l1_loss as a module: forward(pred, target, weight=None, avg_factor=None)."""

    def forward(self, pred, target, weight=None, avg_factor=None, **deprecated):
        reduction = self.resolve_reduction(deprecated)
        return self.scaled(_functional.l1_loss(pred, target, reduction, weight=weight, avg_factor=avg_factor))


class MSELoss(Loss):
    """fastloss.mse_loss as a module: forward(pred, target, weight=None, avg_factor=None)."""

    def forward(self, pred, target, weight=None, avg_factor=None, **deprecated):
        reduction = self.resolve_reduction(deprecated)
        return self.scaled(_functional.mse_loss(pred, target, reduction, weight=weight, avg_factor=avg_factor))


class SmoothL1Loss(Loss):
    """fastloss.smooth_l1_loss as a module: forward(pred, target, weight=None, avg_factor=None)."""

    def __init__(self, beta=1.0, reduction="mean", **deprecated):
        super().__init__(reduction, **deprecated)
        self.beta = check_nonnegative("beta", beta)

    def forward(self, pred, target, weight=None, avg_factor=None, **deprecated):
        reduction = self.resolve_reduction(deprecated)
        loss = _functional.smooth_l1_loss(pred, target, reduction, beta=self.beta, weight=weight, avg_factor=avg_factor)
        return self.scaled(loss)

    def extra_repr(self):
        return f"beta={self.beta}, " + super().extra_repr()
