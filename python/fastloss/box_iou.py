"""The IoU family of box losses (IoU, GIoU, DIoU, CIoU, EIoU, Focal-EIoU, CDIoU) on the fused
kernels, and torchvision's generalized/distance/complete_box_iou_loss as drop-ins.

One op, fastloss::box_iou_loss, serves the family (csrc/math/box_iou.h has the formulas). The
signatures and docs are defined once, in fastloss.reference.box_iou, for both implementations.
"""
import torch

from . import _backend
from ._common import apply_avg_factor
from .reference import box_iou as _reference

_OP = "fastloss::box_iou_loss"


def _fused(kind, pred, target, reduction, eps, weight, avg_factor, box_format, **params):
    a = _reference.check_args(kind, pred, target, reduction, eps, weight, avg_factor, box_format, **params)
    if not _backend.use_kernels(a.pred.device):
        return _reference.compute(a)
    loss = torch.ops.fastloss.box_iou_loss(a.pred, a.target, a.weight, a.kind, a.mode, a.box_format, a.eps, a.gamma,
                                           a.lambd, a.reduction)
    return apply_avg_factor(loss, a.avg_factor)


FUNCTIONS = _reference.define(_fused)
globals().update(FUNCTIONS)
__all__ = list(FUNCTIONS)


def _register():
    def loss_dtype(pred):
        return torch.float64 if pred.dtype == torch.float64 else torch.float32

    @torch.library.register_fake(_OP)
    def _(pred, target, weight, kind, mode, box_format, eps, gamma, lambd, reduction):
        return pred.new_empty(pred.shape[:-1] if reduction == 0 else (), dtype=loss_dtype(pred))

    @torch.library.register_fake(_OP + "_backward")
    def _(grad, pred, target, weight, kind, mode, box_format, eps, gamma, lambd, reduction, pred_grad, target_grad):
        return (pred.new_empty(pred.shape if pred_grad else (0,)),
                pred.new_empty(pred.shape if target_grad else (0,)))

    def setup_context(ctx, inputs, output):
        pred, target, weight, *params = inputs
        ctx.save_for_backward(pred, target, weight)
        ctx.params = params

    def backward(ctx, grad):
        if ctx.needs_input_grad[2]:
            raise RuntimeError("fastloss box losses: gradients with respect to weight are not supported")
        pred, target, weight = ctx.saved_tensors
        pred_grad, target_grad = ctx.needs_input_grad[:2]
        grad_pred, grad_target = torch.ops.fastloss.box_iou_loss_backward(grad, pred, target, weight, *ctx.params,
                                                                          pred_grad, target_grad)
        return (grad_pred if pred_grad else None, grad_target if target_grad else None) + (None,) * 8

    torch.library.register_autograd(_OP, backward, setup_context=setup_context)


if _backend._C is not None:
    _register()
