from .. import quality_focal as _functional
from ._base import Loss


class VarifocalLoss(Loss):
    """fastloss.varifocal_loss as a module.

    forward(pred, target, weight=None, avg_factor=None, positive=None): target is a dense quality
    target of pred's shape or a (labels, scores) tuple. RT-DETR / D-FINE:
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
        *,
        ignore_index=None,
        per_layer=False,
        **deprecated,
    ):
        super().__init__(reduction, **deprecated)
        self.alpha, self.gamma, self.iou_weighted = alpha, gamma, iou_weighted
        self.negative_mask, self.detach_weight = negative_mask, detach_weight
        self.ignore_index, self.per_layer = ignore_index, per_layer

    def forward(self, pred, target, weight=None, avg_factor=None, positive=None, **deprecated):
        loss = _functional.varifocal_loss(
            pred,
            target,
            alpha=self.alpha,
            gamma=self.gamma,
            iou_weighted=self.iou_weighted,
            negative_mask=self.negative_mask,
            detach_weight=self.detach_weight,
            reduction=self.resolve_reduction(deprecated),
            weight=weight,
            avg_factor=avg_factor,
            positive=positive,
            ignore_index=self.ignore_index,
            per_layer=self.per_layer,
        )
        return self.scaled(loss)

    def extra_repr(self):
        return (
            f"alpha={self.alpha}, gamma={self.gamma}, iou_weighted={self.iou_weighted}, "
            f"negative_mask={self.negative_mask!r}, detach_weight={self.detach_weight}, "
            f"ignore_index={self.ignore_index}, per_layer={self.per_layer}, " + super().extra_repr()
        )


class QualityFocalLoss(Loss):
    """fastloss.quality_focal_loss as a module: the elementwise loss, reduced (mmdet's per-row sums
    are fastloss.mmdet.QualityFocalLoss's). forward(pred, target, weight=None, avg_factor=None)."""

    def __init__(self, beta=2.0, reduction="mean", *, ignore_index=None, per_layer=False, **deprecated):
        super().__init__(reduction, **deprecated)
        self.beta, self.ignore_index, self.per_layer = beta, ignore_index, per_layer

    def forward(self, pred, target, weight=None, avg_factor=None, **deprecated):
        loss = _functional.quality_focal_loss(
            pred,
            target,
            beta=self.beta,
            reduction=self.resolve_reduction(deprecated),
            weight=weight,
            avg_factor=avg_factor,
            ignore_index=self.ignore_index,
            per_layer=self.per_layer,
        )
        return self.scaled(loss)

    def extra_repr(self):
        return (
            f"beta={self.beta}, ignore_index={self.ignore_index}, per_layer={self.per_layer}, " + super().extra_repr()
        )
