"""mmdet's DiceLoss (mmdet/models/losses/dice_loss.py) on fastloss.dice_loss: each sample's
flattened prediction is one class of the fused overlap sums."""

from .. import overlap
from .._common import check_bool, check_nonnegative
from ._base import MMDetLoss, resolve_reduction, weight_reduce


class DiceLoss(MMDetLoss):
    """mmdet's DiceLoss, per sample over all its elements:
        naive_dice=False: 1 − 2·Σpt / (Σp² + eps + Σt² + eps)
        naive_dice=True:  1 − (2·Σpt + eps) / (Σp + Σt + eps)
    p = sigmoid(pred) (activate=True) or pred itself; weight one value per sample."""

    def __init__(self, use_sigmoid=True, activate=True, reduction="mean", naive_dice=False, loss_weight=1.0, eps=1e-3):
        super().__init__(reduction, loss_weight)
        self.use_sigmoid = check_bool("use_sigmoid", use_sigmoid)
        self.activate = check_bool("activate", activate)
        self.naive_dice = check_bool("naive_dice", naive_dice)
        self.eps = check_nonnegative("eps", eps)

    def forward(self, pred, target, weight=None, reduction_override=None, avg_factor=None):
        reduction = resolve_reduction(self, reduction_override)
        if self.activate and not self.use_sigmoid:
            raise NotImplementedError("DiceLoss(activate=True, use_sigmoid=False) is not implemented (as in mmdet)")
        n = pred.shape[0]
        if weight is not None and (weight.dim() != 1 or len(weight) != n):
            raise ValueError(f"weight must have one value per sample, shape ({n},), got {tuple(weight.shape)}")
        x, t = pred.reshape(n, 1, -1), target.reshape(n, 1, -1).float()
        smooth_nr, smooth_dr = (self.eps, self.eps) if self.naive_dice else (0.0, 2 * self.eps)

        def run(r):
            loss = overlap.dice_loss(
                x,
                t,
                activation="sigmoid" if self.activate else "none",
                squared_pred=not self.naive_dice,
                smooth_nr=smooth_nr,
                smooth_dr=smooth_dr,
                reduction="none",
            )[:, 0]
            if weight is not None:
                loss = loss * weight
            return loss.sum() if r == "sum" else loss

        return self.scaled(weight_reduce(run, reduction, avg_factor, n))

    def extra_repr(self):
        return (
            f"use_sigmoid={self.use_sigmoid}, activate={self.activate}, naive_dice={self.naive_dice}, "
            f"eps={self.eps}, " + super().extra_repr()
        )


__all__ = ["DiceLoss"]
