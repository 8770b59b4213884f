"""mmdet's MSELoss (mmdet/models/losses/mse_loss.py) on fastloss.mse_loss (torch's fused kernel)."""

from .. import classic
from .smooth_l1_loss import _ElementLoss


class MSELoss(_ElementLoss):
    """mmdet's MSELoss: (pred − target)² (no all-zero-weight shortcut, as mmdet's)."""

    zero_weight_shortcut = False

    def loss(self, pred, target, reduction, weight):
        return classic.mse_loss(pred, target, reduction, weight=weight)


__all__ = ["MSELoss"]
