from .. import balanced_l1 as _functional
from ._base import Loss


class BalancedL1Loss(Loss):
    """fastloss.balanced_l1_loss as a module: forward(pred, target, weight=None, avg_factor=None)."""

    def __init__(self, reduction="mean", *, alpha=0.5, gamma=1.5, beta=1.0):
        super().__init__(reduction)
        self.alpha, self.gamma, self.beta = alpha, gamma, beta

    def forward(self, pred, target, weight=None, avg_factor=None):
        return _functional.balanced_l1_loss(
            pred,
            target,
            self.reduction,
            alpha=self.alpha,
            gamma=self.gamma,
            beta=self.beta,
            weight=weight,
            avg_factor=avg_factor,
        )

    def extra_repr(self):
        return f"alpha={self.alpha}, gamma={self.gamma}, beta={self.beta}, " + super().extra_repr()
