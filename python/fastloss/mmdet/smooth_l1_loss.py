"""mmdet's L1Loss and SmoothL1Loss (mmdet/models/losses/smooth_l1_loss.py) on fastloss.l1_loss and
fastloss.smooth_l1_loss (torch's fused kernels, weighted)."""

from .. import balanced_l1, classic
from .._common import check_number
from ._base import MMDetLoss, resolve_reduction, weight_reduce, zero_weight_sum


class _ElementLoss(MMDetLoss):
    # whether mmdet returns (pred * weight).sum() when no weight is positive
    zero_weight_shortcut = True

    def loss(self, pred, target, reduction, weight):
        raise NotImplementedError

    def forward(self, pred, target, weight=None, avg_factor=None, reduction_override=None, **kwargs):
        reduction = resolve_reduction(self, reduction_override)
        loss = self.scaled(
            weight_reduce(lambda r: self.loss(pred, target, r, weight), reduction, avg_factor, pred.numel())
        )
        return zero_weight_sum(loss, pred, weight, reduction) if self.zero_weight_shortcut else loss


class L1Loss(_ElementLoss):
    """mmdet's L1Loss: |pred − target|."""

    def loss(self, pred, target, reduction, weight):
        return classic.l1_loss(pred, target, reduction, weight=weight)


class SmoothL1Loss(_ElementLoss):
    """mmdet's SmoothL1Loss: ½d²/β where d = |pred − target| < β, else d − ½β (β > 0)."""

    def __init__(self, beta=1.0, reduction="mean", loss_weight=1.0):
        super().__init__(reduction, loss_weight)
        if check_number("beta", beta) <= 0:
            raise ValueError(f"beta must be > 0, got {beta}")
        self.beta = beta

    def loss(self, pred, target, reduction, weight):
        return classic.smooth_l1_loss(pred, target, reduction, beta=self.beta, weight=weight)

    def extra_repr(self):
        return f"beta={self.beta}, " + super().extra_repr()


class BalancedL1Loss(_ElementLoss):
    """mmdet's BalancedL1Loss (Libra R-CNN) on fastloss.balanced_l1_loss, the fused kernel (no
    all-zero-weight shortcut, as mmdet's)."""

    zero_weight_shortcut = False

    def __init__(self, alpha=0.5, gamma=1.5, beta=1.0, reduction="mean", loss_weight=1.0):
        super().__init__(reduction, loss_weight)
        for name, value in (("alpha", alpha), ("gamma", gamma), ("beta", beta)):
            if check_number(name, value) <= 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        self.alpha, self.gamma, self.beta = alpha, gamma, beta

    def loss(self, pred, target, reduction, weight):
        return balanced_l1.balanced_l1_loss(
            pred, target, reduction, alpha=self.alpha, gamma=self.gamma, beta=self.beta, weight=weight
        ).to(pred.dtype)

    def extra_repr(self):
        return f"alpha={self.alpha}, gamma={self.gamma}, beta={self.beta}, " + super().extra_repr()


__all__ = ["L1Loss", "SmoothL1Loss", "BalancedL1Loss"]
