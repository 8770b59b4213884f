"""The classic regression losses — L1, MSE and Smooth L1 (Girshick, Fast R-CNN, arXiv 1504.08083) —
under fastloss's detector API: (pred, target, reduction="mean", *, weight=None, avg_factor=None)
(Smooth L1 adds the keyword beta=1.0), mmdet's weighted-loss convention. Each is already one fused
kernel in torch, so these call torch's: without weight or avg_factor they are exactly F.l1_loss /
F.mse_loss / F.smooth_l1_loss.

    l1:        |x − y|
    mse:       (x − y)²
    smooth l1: ½(x − y)²/β where |x − y| < β, else |x − y| − ½β   (β = 0: L1)

weight (broadcast to the loss's shape, no gradient) multiplies the element losses; "mean" is then
the mean over all elements (mmdet's), or sum / avg_factor when avg_factor is given. An empty input's
"mean" is 0 (torch's is NaN), as for every fastloss loss.
"""

import torch.nn.functional as F

from ._module import Loss
from ._common import check_nonnegative, weighted_elementwise
from ._inputs import box_pairs, with_options
from ._spec import Case, OpSpec, declare
from .reference import classic as _reference


def l1_loss(pred, target, reduction="mean", *, weight=None, avg_factor=None):
    """|pred − target| (torch's F.l1_loss kernel), with mmdet's weight and avg_factor."""
    return weighted_elementwise(
        "l1_loss", lambda x, y, r: F.l1_loss(x, y, reduction=r), pred, target, reduction, weight, avg_factor
    )


def mse_loss(pred, target, reduction="mean", *, weight=None, avg_factor=None):
    """(pred − target)² (torch's F.mse_loss kernel), with mmdet's weight and avg_factor."""
    return weighted_elementwise(
        "mse_loss", lambda x, y, r: F.mse_loss(x, y, reduction=r), pred, target, reduction, weight, avg_factor
    )


def smooth_l1_loss(pred, target, reduction="mean", *, beta=1.0, weight=None, avg_factor=None):
    """Fast R-CNN's Smooth L1 (torch's F.smooth_l1_loss kernel; β = 0 is L1), with mmdet's weight and
    avg_factor."""
    beta = check_nonnegative("beta", beta)
    return weighted_elementwise(
        "smooth_l1_loss",
        lambda x, y, r: F.smooth_l1_loss(x, y, reduction=r, beta=beta),
        pred,
        target,
        reduction,
        weight,
        avg_factor,
    )


__all__ = ["l1_loss", "mse_loss", "smooth_l1_loss"]


# -------------------------------------------------------------------------------- the nn module


class L1Loss(Loss):
    """fastloss.l1_loss as a module: forward(pred, target, weight=None, avg_factor=None)."""

    def forward(self, pred, target, weight=None, avg_factor=None, **deprecated):
        reduction = self.resolve_reduction(deprecated)
        return self.scaled(l1_loss(pred, target, reduction, weight=weight, avg_factor=avg_factor))


class MSELoss(Loss):
    """fastloss.mse_loss as a module: forward(pred, target, weight=None, avg_factor=None)."""

    def forward(self, pred, target, weight=None, avg_factor=None, **deprecated):
        reduction = self.resolve_reduction(deprecated)
        return self.scaled(mse_loss(pred, target, reduction, weight=weight, avg_factor=avg_factor))


class SmoothL1Loss(Loss):
    """fastloss.smooth_l1_loss as a module: forward(pred, target, weight=None, avg_factor=None)."""

    def __init__(self, beta=1.0, reduction="mean", **deprecated):
        super().__init__(reduction, **deprecated)
        self.beta = check_nonnegative("beta", beta)

    def forward(self, pred, target, weight=None, avg_factor=None, **deprecated):
        reduction = self.resolve_reduction(deprecated)
        loss = smooth_l1_loss(pred, target, reduction, beta=self.beta, weight=weight, avg_factor=avg_factor)
        return self.scaled(loss)

    def extra_repr(self):
        return f"beta={self.beta}, " + super().extra_repr()


# ------------------------------------------------------------------------------------ the record
# (torch's kernels, so no op of its own; the record holds its cases)

SPEC = declare(
    OpSpec(
        "classic",
        ops=(),
        reference=_reference,
        modules=(L1Loss, MSELoss, SmoothL1Loss),
        cases=(
            Case("l1", l1_loss, _reference.l1_loss, with_options(box_pairs, reduction="sum")),
            Case("smooth_l1", smooth_l1_loss, _reference.smooth_l1_loss, with_options(box_pairs, beta=0.5)),
        ),
    )
)
