"""fastloss.balanced_l1_loss: the fused Balanced L1 loss (Libra R-CNN).

Kernels: csrc/math/balanced_l1.h (the formula), csrc/cpu/ and csrc/cuda/balanced_l1.*. Signature and
docs: fastloss.reference.balanced_l1.define.
"""
import torch

from . import _autocast, _autograd, _backend, _vmap
from ._autograd import refuse_grad
from ._common import NONE, apply_avg_factor, opmath_dtype
from .reference import balanced_l1 as _reference

_OP = "fastloss::balanced_l1_loss"


def _fused(pred, target, reduction, alpha, gamma, beta, weight, avg_factor):
    a = _reference.check_args(pred, target, reduction, alpha, gamma, beta, weight, avg_factor)
    if not _backend.use_kernels(a.pred.device):
        return _reference.compute(a)
    loss = torch.ops.fastloss.balanced_l1_loss(a.pred, a.target, a.weight, a.alpha, a.gamma, a.beta, a.reduction)
    return apply_avg_factor(loss, a.avg_factor)


FUNCTIONS = _reference.define(_fused)
globals().update(FUNCTIONS)
__all__ = list(FUNCTIONS)


def _backward(ctx, args, saved, grads, needs):
    refuse_grad(needs, [("target", 1), ("weight", 2)], "balanced_l1_loss")
    return (torch.ops.fastloss.balanced_l1_loss_backward(grads[0], *args),) + (None,) * 6


def _vmap_rule(info, in_dims, pred, target, weight, alpha, gamma, beta, reduction):
    batch = info.batch_size
    p, t = _vmap.front(pred, in_dims[0], batch), _vmap.front(target, in_dims[1], batch)
    w = None if weight is None else _vmap.front(weight, in_dims[2], batch).expand(p.shape)
    loss = torch.ops.fastloss.balanced_l1_loss(p, t, w, alpha, gamma, beta, NONE)
    return (loss if reduction == NONE else _vmap.reduce_per_sample(loss, reduction)), 0


def _register():
    @torch.library.register_fake(_OP)
    def _(pred, target, weight, alpha, gamma, beta, reduction):
        return pred.new_empty(pred.shape if reduction == NONE else (), dtype=opmath_dtype(pred.dtype))

    @torch.library.register_fake(_OP + "_backward")
    def _(grad, pred, target, weight, alpha, gamma, beta, reduction):
        return pred.new_empty(pred.shape)

    _autograd.register(_autograd.Spec("balanced_l1_loss", _backward, _reference.op))
    _vmap.register("balanced_l1_loss", _vmap_rule)
    _autocast.register("balanced_l1_loss")


if _backend._C is not None:
    _register()
