from .. import sigmoid_focal as _functional
from ._base import WeightedLoss


class SigmoidFocalLoss(WeightedLoss):
    """mmdet's FocalLoss(use_sigmoid=True) on fastloss.sigmoid_focal_loss.

    forward(pred, target, weight=None, avg_factor=None, reduction_override=None): `target` is a float
    tensor of pred's shape or integer labels of shape pred.shape[:-1] (label C = background).
    """

    def __init__(self, alpha=0.25, gamma=2.0, reduction="mean", loss_weight=1.0, ignore_index=-100):
        super().__init__(reduction, loss_weight)
        self.alpha, self.gamma, self.ignore_index = alpha, gamma, ignore_index

    def forward(self, pred, target, weight=None, avg_factor=None, reduction_override=None):
        loss = _functional.sigmoid_focal_loss(
            pred,
            target,
            self.alpha,
            self.gamma,
            self.resolve_reduction(reduction_override),
            weight=weight,
            avg_factor=avg_factor,
            ignore_index=self.ignore_index,
        )
        return loss * self.loss_weight if self.loss_weight != 1.0 else loss

    def extra_repr(self):
        return f"alpha={self.alpha}, gamma={self.gamma}, ignore_index={self.ignore_index}, " + super().extra_repr()
