from .. import quality_focal as _functional
from ._base import WeightedLoss


class VarifocalLoss(WeightedLoss):
    """fastloss.varifocal_loss as an mmdet-style module.

    forward(pred, target, weight=None, avg_factor=None, reduction_override=None, positive=None): target
    is a dense quality target of pred's shape or a (labels, scores) tuple. RT-DETR / D-FINE:
    VarifocalLoss(negative_mask="label", detach_weight=True) with avg_factor = the number of boxes.
    """

    def __init__(
        self,
        alpha=0.75,
        gamma=2.0,
        iou_weighted=True,
        negative_mask="score",
        detach_weight=False,
        reduction="mean",
        loss_weight=1.0,
        per_layer=False,
    ):
        super().__init__(reduction, loss_weight)
        self.alpha, self.gamma, self.iou_weighted = alpha, gamma, iou_weighted
        self.negative_mask, self.detach_weight, self.per_layer = negative_mask, detach_weight, per_layer

    def forward(self, pred, target, weight=None, avg_factor=None, reduction_override=None, positive=None):
        loss = _functional.varifocal_loss(
            pred,
            target,
            alpha=self.alpha,
            gamma=self.gamma,
            iou_weighted=self.iou_weighted,
            negative_mask=self.negative_mask,
            detach_weight=self.detach_weight,
            reduction=self.resolve_reduction(reduction_override),
            weight=weight,
            avg_factor=avg_factor,
            positive=positive,
            per_layer=self.per_layer,
        )
        return loss * self.loss_weight if self.loss_weight != 1.0 else loss

    def extra_repr(self):
        return (
            f"alpha={self.alpha}, gamma={self.gamma}, iou_weighted={self.iou_weighted}, "
            f"negative_mask={self.negative_mask!r}, detach_weight={self.detach_weight}, "
            f"per_layer={self.per_layer}, " + super().extra_repr()
        )


class QualityFocalLoss(WeightedLoss):
    """fastloss.quality_focal_loss as an mmdet-style module (the elementwise loss reduced; for mmdet's
    per-row sums use fastloss.mmdet.QualityFocalLoss)."""

    def __init__(self, beta=2.0, reduction="mean", loss_weight=1.0, per_layer=False):
        super().__init__(reduction, loss_weight)
        self.beta, self.per_layer = beta, per_layer

    def forward(self, pred, target, weight=None, avg_factor=None, reduction_override=None):
        loss = _functional.quality_focal_loss(
            pred,
            target,
            beta=self.beta,
            reduction=self.resolve_reduction(reduction_override),
            weight=weight,
            avg_factor=avg_factor,
            per_layer=self.per_layer,
        )
        return loss * self.loss_weight if self.loss_weight != 1.0 else loss

    def extra_repr(self):
        return f"beta={self.beta}, per_layer={self.per_layer}, " + super().extra_repr()
