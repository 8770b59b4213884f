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

from ._common import check_nonnegative, weighted_elementwise


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
