"""mmrotate's KFLoss (mmrotate/models/losses/kf_iou_loss.py) on fastloss.kfiou_loss (the fused kernel)."""

from .. import gaussian_distance
from .._common import check_choice
from ._base import MMRotateLoss


class KFLoss(MMRotateLoss):
    """mmrotate's KFLoss: the smooth L1 (beta, default 1/9) of pred[:, :2] and target[:, :2] plus fun
    ("none": 1 − KFIoU, "ln", "exp") of the KFIoU of pred_decode and targets_decode (xywhr), clamped
    at 0. beta and eps (1e-6) as forward keywords. Degenerate boxes give a finite loss and gradient
    (mmrotate's KFIoU there is NaN, which it replaces with 0)."""

    def __init__(self, fun="none", reduction="mean", loss_weight=1.0, **kwargs):
        super().__init__(reduction, loss_weight)
        check_choice("fun", fun, {"none": 0, "ln": 1, "exp": 2})
        self.fun = fun

    def forward(
        self,
        pred,
        target,
        weight=None,
        avg_factor=None,
        pred_decode=None,
        targets_decode=None,
        reduction_override=None,
        **kwargs,
    ):
        if pred_decode is None or targets_decode is None:
            raise ValueError("KFLoss needs pred_decode and targets_decode: the decoded xywhr boxes")
        return super().forward(
            pred,
            target,
            weight,
            avg_factor,
            reduction_override,
            pred_decode=pred_decode,
            targets_decode=targets_decode,
            **kwargs,
        )

    def loss(self, pred, target, weight, pred_decode, targets_decode, beta=1.0 / 9.0, eps=1e-6):
        return gaussian_distance.kfiou_loss(
            pred, target, pred_decode, targets_decode, self.fun, beta, eps, weight=weight
        )

    def extra_repr(self):
        return f"fun={self.fun!r}, " + super().extra_repr()


__all__ = ["KFLoss"]
