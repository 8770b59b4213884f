"""mmdet's VarifocalLoss (mmdet/models/losses/varifocal_loss.py) on fastloss.varifocal_loss."""

from .. import quality_focal
from .._common import check_bool, check_nonnegative, check_number
from ._base import MMDetLoss, resolve_reduction, weight_reduce
from .focal_loss import mmdet_weight


class VarifocalLoss(MMDetLoss):
    """mmdet's VarifocalLoss: (N, C) logits against a dense IoU-aware target of the same shape;
    positives are the elements whose target is > 0, the weight α·|p − t|^γ of the negatives is
    differentiated. "mean" is over all N·C elements; avg_factor divides the sum by avg_factor + eps."""

    def __init__(self, use_sigmoid=True, alpha=0.75, gamma=2.0, iou_weighted=True, reduction="mean", loss_weight=1.0):
        super().__init__(reduction, loss_weight)
        if use_sigmoid is not True:
            raise ValueError(
                "VarifocalLoss: use_sigmoid must be True (only the sigmoid varifocal loss exists in mmdet)"
            )
        self.use_sigmoid = use_sigmoid
        self.alpha = check_nonnegative("alpha", alpha)
        self.gamma = check_number("gamma", gamma)
        self.iou_weighted = check_bool("iou_weighted", iou_weighted)

    def forward(self, pred, target, weight=None, avg_factor=None, reduction_override=None):
        reduction = resolve_reduction(self, reduction_override)
        if pred.shape != target.shape:
            raise ValueError(
                f"VarifocalLoss: target must have pred's shape {tuple(pred.shape)}, got {tuple(target.shape)}"
            )
        weight = mmdet_weight(weight, pred)

        def run(r):
            return quality_focal.varifocal_loss(
                pred,
                target.to(pred.dtype),
                alpha=self.alpha,
                gamma=self.gamma,
                iou_weighted=self.iou_weighted,
                reduction=r,
                weight=weight,
            )

        return self.scaled(weight_reduce(run, reduction, avg_factor, pred.numel()))

    def extra_repr(self):
        return (
            f"use_sigmoid={self.use_sigmoid}, alpha={self.alpha}, gamma={self.gamma}, "
            f"iou_weighted={self.iou_weighted}, " + super().extra_repr()
        )


__all__ = ["VarifocalLoss"]
