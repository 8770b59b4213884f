"""mmdet's IoU-family box losses (mmdet/models/losses/iou_loss.py) on fastloss's fused box kernel,
with mmdet's eps placement (the kernel's "mmdet" convention, csrc/math/box_iou.h)."""

import warnings

import torch

from .._common import check_nonnegative
from ..box_iou_loss import _fused as box_loss
from ._base import MMDetLoss, resolve_reduction, weight_reduce, zero_weight_sum

MODES = ("linear", "square", "log")


class _BoxLoss(MMDetLoss):
    kind = None
    # mmdet computes IoU and GIoU of float16 boxes in float32 and returns float16
    half_result_as_pred = False

    def __init__(self, eps=1e-6, reduction="mean", loss_weight=1.0):
        super().__init__(reduction, loss_weight)
        self.eps = check_nonnegative("eps", eps)

    def params(self):
        return {"eps": self.eps}

    def forward(self, pred, target, weight=None, avg_factor=None, reduction_override=None, **kwargs):
        reduction = resolve_reduction(self, reduction_override)
        if weight is not None and weight.dim() > 1:
            if weight.shape != pred.shape:
                raise ValueError(
                    f"weight must have shape pred.shape[:-1] or pred's shape {tuple(pred.shape)}, got "
                    f"{tuple(weight.shape)}"
                )
            weight = weight.mean(-1)  # one weight per coordinate: their mean, as mmdet
        params = self.params()
        eps = params.pop("eps")

        def run(r):
            return box_loss(self.kind, pred, target, r, eps, weight, None, "xyxy", convention="mmdet", **params)

        loss = weight_reduce(run, reduction, avg_factor, pred.shape[:-1].numel())
        dtype = torch.promote_types(pred.dtype, target.dtype)
        if self.half_result_as_pred and pred.dtype == torch.float16:
            dtype = torch.float16
        return zero_weight_sum(self.scaled(loss.to(dtype)), pred, weight, reduction)

    def extra_repr(self):
        return f"eps={self.eps}, " + super().extra_repr()


class IoULoss(_BoxLoss):
    """mmdet's IoULoss: mode "log" (−ln IoU, the default), "linear" (1 − IoU) or "square" (1 − IoU²),
    IoU clamped at eps; `linear=True` is the deprecated spelling of mode="linear"."""

    kind = "iou"
    half_result_as_pred = True

    def __init__(self, linear=False, eps=1e-6, reduction="mean", loss_weight=1.0, mode="log"):
        super().__init__(eps, reduction, loss_weight)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if linear:
            mode = "linear"
            warnings.warn(
                'IoULoss(linear=True) is deprecated in mmdet; use mode="linear"', DeprecationWarning, stacklevel=2
            )
        self.mode, self.linear = mode, linear

    def params(self):
        # mmdet's bbox_overlaps floors the union at its own default 1e-6; the module's eps clamps IoU
        return {"eps": 1e-6, "aux_eps": self.eps, "mode": self.mode}

    def extra_repr(self):
        return f"mode={self.mode!r}, " + super().extra_repr()


class GIoULoss(_BoxLoss):
    """mmdet's GIoULoss: IoU and the enclosing area floored at eps."""

    kind = "giou"
    half_result_as_pred = True


class DIoULoss(_BoxLoss):
    """mmdet's DIoULoss: 1 − IoU + ρ²/c², IoU = inter / (union + eps), c² = cw² + ch² + eps."""

    kind = "diou"


class CIoULoss(_BoxLoss):
    """mmdet's CIoULoss: eps added to the heights of the aspect ratio, α = [IoU > 0.5]·v / (1 − IoU + v)
    held constant, loss = 1 − clamp(CIoU, −1, 1). Where mmdet's α is 0/0 (identical float32 boxes:
    IoU rounds to 1 and v = 0) and its loss NaN, this gives the limit: α·v = 0, and its gradient."""

    kind = "ciou"

    def params(self):
        return {"eps": self.eps, "aux_eps": 0.0}


class SIoULoss(_BoxLoss):
    """mmdet's SIoULoss (Gevorgyan 2022): 1 − clamp(IoU − ½(distance cost + shape cost), −1, 1), the
    distance cost shaped by the angle cost; neg_gamma=True is the paper's sign of γ."""

    kind = "siou"

    def __init__(self, eps=1e-6, reduction="mean", loss_weight=1.0, neg_gamma=False):
        super().__init__(eps, reduction, loss_weight)
        self.neg_gamma = neg_gamma

    def params(self):
        return {"eps": self.eps, "mode": "log" if self.neg_gamma else "linear"}  # the kernel's mode 1 / 0

    def extra_repr(self):
        return f"neg_gamma={self.neg_gamma}, " + super().extra_repr()


class EIoULoss(_BoxLoss):
    """mmdet's EIoULoss: Peng & Yu's smooth EIoU — l = 1 − I/(area_p + area_t − I + eps) with the
    extended intersection I, ½l²/smooth_point below smooth_point, l − ½·smooth_point above. (Not
    fastloss.eiou_loss, which is Zhang et al.'s EIoU.)"""

    kind = "smooth_eiou"

    def __init__(self, eps=1e-6, reduction="mean", loss_weight=1.0, smooth_point=0.1):
        super().__init__(eps, reduction, loss_weight)
        if check_nonnegative("smooth_point", smooth_point) == 0:
            raise ValueError("smooth_point must be > 0")
        self.smooth_point = smooth_point

    def params(self):
        return {"eps": self.eps, "lambd": self.smooth_point}

    def extra_repr(self):
        return f"smooth_point={self.smooth_point}, " + super().extra_repr()


class BoundedIoULoss(_BoxLoss):
    """mmdet's BoundedIoULoss (Tychsen-Smith & Petersson 2017): per box the four components dx, dy, dw,
    dh (the loss has pred's shape (n, 4)), each smooth below beta; the target gets no gradient. Each
    component is one pass of the fused box kernel."""

    kind = "bounded_iou"

    def __init__(self, beta=0.2, eps=1e-3, reduction="mean", loss_weight=1.0):
        super().__init__(eps, reduction, loss_weight)
        if check_nonnegative("beta", beta) == 0:
            raise ValueError("beta must be > 0")
        self.beta = beta

    def forward(self, pred, target, weight=None, avg_factor=None, reduction_override=None, **kwargs):
        reduction = resolve_reduction(self, reduction_override)

        def run(r):
            loss = torch.stack(
                [
                    box_loss(
                        self.kind,
                        pred,
                        target,
                        "none",
                        self.eps,
                        None,
                        None,
                        "xyxy",
                        convention="mmdet",
                        mode=component,
                        lambd=self.beta,
                    )
                    for component in ("dx", "dy", "dw", "dh")
                ],
                -1,
            )
            if weight is not None:
                loss = loss * weight
            return loss.sum() if r == "sum" else loss

        loss = self.scaled(
            weight_reduce(run, reduction, avg_factor, pred.numel()).to(torch.promote_types(pred.dtype, target.dtype))
        )
        return zero_weight_sum(loss, pred, weight, reduction)

    def extra_repr(self):
        return f"beta={self.beta}, " + super().extra_repr()


__all__ = ["IoULoss", "GIoULoss", "DIoULoss", "CIoULoss", "SIoULoss", "EIoULoss", "BoundedIoULoss"]
