"""The IoU family of box losses (IoU, GIoU, DIoU, CIoU, EIoU, Focal-EIoU, CDIoU) on the fused
kernels, and torchvision's generalized/distance/complete_box_iou_loss as drop-ins.

One op, fastloss::box_iou_loss, serves the family (csrc/math/box_iou.h has the formulas);
fastloss.reference.box_iou computes the same in plain torch.
"""

import torch

from . import _autocast, _autograd, _backend, _vmap
from ._autograd import refuse_grad
from ._common import NONE, apply_avg_factor, opmath_dtype
from .reference import box_iou as _reference

_OP = "fastloss::box_iou_loss"


def _fused(kind, pred, target, reduction, eps, weight, avg_factor, box_format, **params):
    a = _reference.check_args(kind, pred, target, reduction, eps, weight, avg_factor, box_format, **params)
    if not _backend.use_kernels(a.pred.device):
        return _reference.compute(a)
    loss = torch.ops.fastloss.box_iou_loss(
        a.pred,
        a.target,
        a.weight,
        a.kind,
        a.mode,
        a.box_format,
        a.eps,
        a.gamma,
        a.lambd,
        a.reduction,
        a.convention,
        a.aux_eps,
    )
    return apply_avg_factor(loss, a.avg_factor)


def iou_loss(
    pred, target, reduction="none", eps=1e-7, *, weight=None, avg_factor=None, box_format="xyxy", mode="linear"
):
    """IoU loss (UnitBox, arXiv 1608.01471): mode "linear" 1 − IoU, "log" −ln(max(IoU, eps)),
    "square" 1 − IoU²."""
    return _fused("iou", pred, target, reduction, eps, weight, avg_factor, box_format, mode=mode)


def giou_loss(pred, target, reduction="none", eps=1e-7, *, weight=None, avg_factor=None, box_format="xyxy"):
    """GIoU loss (arXiv 1902.09630): 1 − IoU + (area(C) − union) / (area(C) + eps), C the enclosing box."""
    return _fused("giou", pred, target, reduction, eps, weight, avg_factor, box_format)


def diou_loss(pred, target, reduction="none", eps=1e-7, *, weight=None, avg_factor=None, box_format="xyxy"):
    """DIoU loss (arXiv 1911.08287): 1 − IoU + ρ² / (cw² + ch² + eps), ρ the distance of the centres."""
    return _fused("diou", pred, target, reduction, eps, weight, avg_factor, box_format)


def ciou_loss(pred, target, reduction="none", eps=1e-7, *, weight=None, avg_factor=None, box_format="xyxy"):
    """CIoU loss (arXiv 1911.08287): DIoU + α·v, v = (4/π²)(atan(w_t/h_t) − atan(w_p/h_p))²,
    α = v / (1 − IoU + v + eps) held constant (no gradient through α), as torchvision."""
    return _fused("ciou", pred, target, reduction, eps, weight, avg_factor, box_format)


def eiou_loss(pred, target, reduction="none", eps=1e-7, *, weight=None, avg_factor=None, box_format="xyxy"):
    """EIoU loss (arXiv 2101.08158): DIoU + (w_p − w_t)²/(cw² + eps) + (h_p − h_t)²/(ch² + eps)."""
    return _fused("eiou", pred, target, reduction, eps, weight, avg_factor, box_format)


def focal_eiou_loss(
    pred, target, reduction="none", eps=1e-7, *, weight=None, avg_factor=None, box_format="xyxy", gamma=0.5
):
    """Focal-EIoU loss (arXiv 2101.08158): IoU^γ · EIoU, with IoU^γ a weight (no gradient through it),
    as the widely used implementations do."""
    return _fused("focal_eiou", pred, target, reduction, eps, weight, avg_factor, box_format, gamma=gamma)


def cdiou_loss(pred, target, reduction="none", eps=1e-7, *, weight=None, avg_factor=None, box_format="xyxy", lambd=1.0):
    """CDIoU loss (arXiv 2103.11696): 1 − IoU + λ·(sum of the distances between the four corresponding
    corners) / (4 · diagonal of the enclosing box)."""
    return _fused("cdiou", pred, target, reduction, eps, weight, avg_factor, box_format, lambd=lambd)


def generalized_box_iou_loss(boxes1, boxes2, reduction="none", eps=1e-7):
    """torchvision.ops.generalized_box_iou_loss's signature and numbers."""
    return _fused("giou", boxes1, boxes2, reduction, eps, None, None, "xyxy")


def distance_box_iou_loss(boxes1, boxes2, reduction="none", eps=1e-7):
    """torchvision.ops.distance_box_iou_loss's signature and numbers."""
    return _fused("diou", boxes1, boxes2, reduction, eps, None, None, "xyxy")


def complete_box_iou_loss(boxes1, boxes2, reduction="none", eps=1e-7):
    """torchvision.ops.complete_box_iou_loss's signature and numbers: as torchvision, eps is used in α
    only and its DIoU part uses 1e-7."""
    return _fused("ciou", boxes1, boxes2, reduction, 1e-7, None, None, "xyxy", aux_eps=eps)


# What the seven share (torchvision's three drop-ins document torchvision's arguments).
COMMON_DOC = """
    pred, target: boxes of shape (..., 4), the same shape, floating dtypes that may differ (the
        math runs in their promoted type; integer boxes are taken as float32); box_format "xyxy",
        "xywh" or "cxcywh", converted inside the kernel, with gradients in the caller's format.
        Inverted boxes (x2 < x1 or y2 < y1) are zero-size boxes at the same centre. Gradients flow
        to pred, and to target when it requires grad.
    reduction: "none" (shape pred.shape[:-1]) | "mean" | "sum"; empty inputs give 0.
    eps: keeps denominators positive (IoU = inter / (union + eps)).
    weight: per pair, broadcastable to pred.shape[:-1]; a weight of pred's shape (one per
        coordinate, as mmdet passes) is averaged over the last dimension.
    avg_factor: with reduction="mean", the loss is sum / avg_factor (mmdet's convention).
    The loss is float32 for half inputs (as torchvision), else the promoted dtype of pred and target.
"""
for _function in (iou_loss, giou_loss, diou_loss, ciou_loss, eiou_loss, focal_eiou_loss, cdiou_loss):
    _function.__doc__ += "\n" + COMMON_DOC

__all__ = [
    "iou_loss",
    "giou_loss",
    "diou_loss",
    "ciou_loss",
    "eiou_loss",
    "focal_eiou_loss",
    "cdiou_loss",
    "generalized_box_iou_loss",
    "distance_box_iou_loss",
    "complete_box_iou_loss",
]


def _backward(ctx, args, saved, grads, needs):
    pred, target, weight, *params = args
    refuse_grad(needs, [("weight", 2)], "box losses")
    grad_pred, grad_target = torch.ops.fastloss.box_iou_loss_backward(
        grads[0], pred, target, weight, *params[:7], needs[0], needs[1], *params[7:]
    )
    return (grad_pred if needs[0] else None, grad_target if needs[1] else None) + (None,) * 10


def _vmap_rule(
    info,
    in_dims,
    pred,
    target,
    weight,
    kind,
    mode,
    box_format,
    eps,
    gamma,
    lambd,
    reduction,
    convention=0,
    aux_eps=-1.0,
):
    batch = info.batch_size
    p, t = _vmap.front(pred, in_dims[0], batch), _vmap.front(target, in_dims[1], batch)
    w = _vmap.aligned(weight, in_dims[2], batch, p.dim() - 2)
    loss = torch.ops.fastloss.box_iou_loss(
        p, t, w, kind, mode, box_format, eps, gamma, lambd, NONE, convention, aux_eps
    )
    return (loss if reduction == NONE else _vmap.reduce_per_sample(loss, reduction)), 0


def _register():
    @torch.library.register_fake(_OP)
    def _(pred, target, weight, kind, mode, box_format, eps, gamma, lambd, reduction, convention=0, aux_eps=-1.0):
        return pred.new_empty(
            pred.shape[:-1] if reduction == 0 else (), dtype=opmath_dtype(torch.promote_types(pred.dtype, target.dtype))
        )

    @torch.library.register_fake(_OP + "_backward")
    def _(
        grad,
        pred,
        target,
        weight,
        kind,
        mode,
        box_format,
        eps,
        gamma,
        lambd,
        reduction,
        pred_grad,
        target_grad,
        convention=0,
        aux_eps=-1.0,
    ):
        return (
            pred.new_empty(pred.shape if pred_grad else (0,)),
            target.new_empty(target.shape if target_grad else (0,)),
        )

    _autograd.register(_autograd.Spec("box_iou_loss", _backward, _reference.op))
    _vmap.register("box_iou_loss", _vmap_rule)
    _autocast.register("box_iou_loss")


if _backend._C is not None:
    _register()
