"""L1, MSE and Smooth L1 written out as formulas (fastloss.classic calls torch's fused kernels):
the oracle the tests hold those kernels and the weighted-loss convention to."""

import torch

from .._common import check_nonnegative, weighted_elementwise


def l1_loss(pred, target, reduction="mean", *, weight=None, avg_factor=None):
    """|pred − target|"""
    return weighted_elementwise(
        "l1_loss", lambda x, y, r: _reduce((x - y).abs(), r), pred, target, reduction, weight, avg_factor
    )


def mse_loss(pred, target, reduction="mean", *, weight=None, avg_factor=None):
    """(pred − target)²"""
    return weighted_elementwise(
        "mse_loss", lambda x, y, r: _reduce((x - y) ** 2, r), pred, target, reduction, weight, avg_factor
    )


def smooth_l1_loss(pred, target, reduction="mean", *, beta=1.0, weight=None, avg_factor=None):
    """½(pred − target)²/β where |pred − target| < β, else |pred − target| − ½β (β = 0: L1)."""
    beta = check_nonnegative("beta", beta)

    def elementwise(x, y, r):
        d = (x - y).abs()
        return _reduce(d if beta == 0 else torch.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta), r)

    return weighted_elementwise("smooth_l1_loss", elementwise, pred, target, reduction, weight, avg_factor)


def _reduce(loss, reduction):
    return {"none": lambda: loss, "sum": loss.sum, "mean": loss.mean}[reduction]()


__all__ = ["l1_loss", "mse_loss", "smooth_l1_loss"]
