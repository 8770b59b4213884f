from .. import sigmoid_focal as _functional
from ._base import Loss


class SigmoidFocalLoss(Loss):
    """fastloss.sigmoid_focal_loss as a module.

    forward(inputs, targets, weight=None, avg_factor=None): `targets` is a float tensor of inputs'
    shape or integer labels of shape inputs.shape[:-1] (label C = background).
    """

    def __init__(self, alpha=0.25, gamma=2.0, reduction="mean", *, ignore_index=-100, per_layer=False, **deprecated):
        super().__init__(reduction, **deprecated)
        self.alpha, self.gamma, self.ignore_index, self.per_layer = alpha, gamma, ignore_index, per_layer

    def forward(self, inputs, targets, weight=None, avg_factor=None, **deprecated):
        loss = _functional.sigmoid_focal_loss(
            inputs,
            targets,
            self.alpha,
            self.gamma,
            self.resolve_reduction(deprecated),
            weight=weight,
            avg_factor=avg_factor,
            ignore_index=self.ignore_index,
            per_layer=self.per_layer,
        )
        return self.scaled(loss)

    def extra_repr(self):
        return (
            f"alpha={self.alpha}, gamma={self.gamma}, ignore_index={self.ignore_index}, per_layer={self.per_layer}, "
            + super().extra_repr()
        )
