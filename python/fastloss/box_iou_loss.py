"""The IoU family of box losses (IoU, GIoU, DIoU, CIoU, EIoU, Focal-EIoU, CDIoU) on the fused
kernels, and torchvision's generalized/distance/complete_box_iou_loss as drop-ins.

One op, fastloss::box_iou_loss, serves the family (csrc/math/box_iou.h has the formulas). The
signatures and docs are defined once, in fastloss.reference.box_iou, for both implementations.
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


FUNCTIONS = _reference.define(_fused)
globals().update(FUNCTIONS)
__all__ = list(FUNCTIONS)


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
