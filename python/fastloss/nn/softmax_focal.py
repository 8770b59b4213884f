from .. import softmax_focal as _functional
from ._base import WeightedLoss, set_tensor_option


class SoftmaxFocalLoss(WeightedLoss):
    """Multi-class focal loss (mmdet's FocalLoss(use_sigmoid=False) role) on
    fastloss.softmax_focal_loss.

    forward(pred, target, weight=None, avg_factor=None, reduction_override=None): pred (N, C) or
    (N, C, *spatial) logits, target integer labels, weight one value per position.
    """

    def __init__(
        self, alpha=None, gamma=2.0, ignore_index=-100, label_smoothing=0.0, reduction="mean", loss_weight=1.0
    ):
        super().__init__(reduction, loss_weight)
        set_tensor_option(self, "alpha", alpha)
        self.gamma, self.ignore_index, self.label_smoothing = gamma, ignore_index, label_smoothing

    def forward(self, pred, target, weight=None, avg_factor=None, reduction_override=None):
        loss = _functional.softmax_focal_loss(
            pred,
            target,
            alpha=self.alpha,
            gamma=self.gamma,
            ignore_index=self.ignore_index,
            reduction=self.resolve_reduction(reduction_override),
            weight=weight,
            avg_factor=avg_factor,
            label_smoothing=self.label_smoothing,
        )
        return loss * self.loss_weight if self.loss_weight != 1.0 else loss

    def extra_repr(self):
        return (
            f"alpha={self.alpha}, gamma={self.gamma}, ignore_index={self.ignore_index}, "
            f"label_smoothing={self.label_smoothing}, " + super().extra_repr()
        )


class CrossEntropyLoss(SoftmaxFocalLoss):
    """Softmax cross entropy with mmdet's module API: fastloss.softmax_focal_loss with γ = 0, which
    equals F.cross_entropy(weight=class_weight, ignore_index, label_smoothing) and keeps only one
    float per position for its backward (F.cross_entropy keeps the N×C log-probabilities)."""

    def __init__(self, class_weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean", loss_weight=1.0):
        super().__init__(
            alpha=class_weight,
            gamma=0.0,
            ignore_index=ignore_index,
            label_smoothing=label_smoothing,
            reduction=reduction,
            loss_weight=loss_weight,
        )
