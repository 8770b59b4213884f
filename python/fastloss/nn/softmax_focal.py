from .. import softmax_focal as _functional
from ._base import Loss, set_tensor_option


class SoftmaxFocalLoss(Loss):
    """fastloss.softmax_focal_loss as a module.

    forward(input, target, weight=None, avg_factor=None): input (N, C) or (N, C, *spatial) logits,
    target integer labels, weight one value per position. alpha given as a tensor or list is a buffer.
    """

    def __init__(self, alpha=None, gamma=2.0, ignore_index=-100, label_smoothing=0.0, reduction="mean", **deprecated):
        super().__init__(reduction, **deprecated)
        set_tensor_option(self, "alpha", alpha)
        self.gamma, self.ignore_index, self.label_smoothing = gamma, ignore_index, label_smoothing

    def forward(self, input, target, weight=None, avg_factor=None, **deprecated):
        loss = _functional.softmax_focal_loss(
            input,
            target,
            alpha=self.alpha,
            gamma=self.gamma,
            ignore_index=self.ignore_index,
            reduction=self.resolve_reduction(deprecated),
            weight=weight,
            avg_factor=avg_factor,
            label_smoothing=self.label_smoothing,
        )
        return self.scaled(loss)

    def extra_repr(self):
        return (
            f"alpha={self.alpha}, gamma={self.gamma}, ignore_index={self.ignore_index}, "
            f"label_smoothing={self.label_smoothing}, " + super().extra_repr()
        )


class CrossEntropyLoss(SoftmaxFocalLoss):
    """Softmax cross entropy: fastloss.softmax_focal_loss with gamma=0 and alpha=class_weight, which
    equals F.cross_entropy(weight=class_weight, ignore_index, label_smoothing) and keeps only one
    float per position for its backward (F.cross_entropy keeps the N×C log-probabilities)."""

    def __init__(self, class_weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean", **deprecated):
        super().__init__(
            alpha=class_weight,
            gamma=0.0,
            ignore_index=ignore_index,
            label_smoothing=label_smoothing,
            reduction=reduction,
            **deprecated,
        )
