"""fastloss.softmax_focal_loss: the fused multi-class focal loss (cross entropy at γ = 0).

Kernels: csrc/math/softmax_focal.h (the formula), csrc/cpu/ and csrc/cuda/softmax_focal.*. They
return the per-position losses or their sum, the per-position log-sum-exp the backward needs, and
the count of kept positions; "mean" and avg_factor are applied here
(fastloss.reference.softmax_focal.finish, shared with the reference). Signature and docs:
fastloss.reference.softmax_focal.define.
"""

import torch

from . import _autocast, _autograd, _backend, _vmap
from ._autograd import refuse_grad
from ._common import NONE, opmath_dtype, result_dtype
from .reference import softmax_focal as _reference

_OP = "fastloss::softmax_focal_loss"


def _fused(input, target, **options):
    a = _reference.check_args(input, target, **options)
    if not _backend.use_kernels(a.input.device):
        return _reference.compute(a)
    loss, _, count = torch.ops.fastloss.softmax_focal_loss(
        a.input,
        a.target,
        a.alpha,
        a.weight,
        a.gamma,
        a.label_smoothing,
        a.reduction,
        a.ignore_index,
        result_dtype(a.input) != a.input.dtype,
    )
    return _reference.finish(loss, count, a)


FUNCTIONS = _reference.define(_fused)
globals().update(FUNCTIONS)
__all__ = list(FUNCTIONS)


def _backward(ctx, args, saved, grads, needs):
    input, target, alpha, weight, *params, _ = args
    refuse_grad(needs, [("alpha", 2), ("weight", 3)], "softmax_focal_loss")
    if grads[0] is None:
        return (None,) * 9
    grad_input = torch.ops.fastloss.softmax_focal_loss_backward(
        grads[0], input, target, alpha, weight, saved[0], *params
    )
    return (grad_input,) + (None,) * 8


def _vmap_rule(
    info, in_dims, input, target, alpha, weight, gamma, label_smoothing, reduction, ignore_index, math_type_loss=False
):
    batch = info.batch_size
    if in_dims[2] is not None:  # class weights that differ per sample
        return _vmap.per_sample(
            torch.ops.fastloss.softmax_focal_loss,
            batch,
            in_dims + (None,),
            (input, target, alpha, weight, gamma, label_smoothing, reduction, ignore_index, math_type_loss),
        )
    x, y = _vmap.front(input, in_dims[0], batch), _vmap.front(target, in_dims[1], batch)
    w = _vmap.front(weight, in_dims[3], batch)
    n, classes, inner = x.shape[1:]
    loss, lse, _ = torch.ops.fastloss.softmax_focal_loss(
        x.reshape(batch * n, classes, inner),
        y.reshape(batch * n, inner),
        alpha,
        None if w is None else w.reshape(batch * n, inner),
        gamma,
        label_smoothing,
        NONE,
        ignore_index,
        math_type_loss,
    )
    loss, lse = loss.reshape(batch, n, inner), lse.reshape(batch, n, inner)
    count = (y != ignore_index).reshape(batch, -1).sum(1)
    if reduction != NONE:
        loss = _vmap.reduce_per_sample(loss, reduction, count)
    return (loss, lse, count), (0, 0, 0)


def _register():
    @torch.library.register_fake(_OP)
    def _(input, target, alpha, weight, gamma, label_smoothing, reduction, ignore_index, math_type_loss=False):
        math = opmath_dtype(input.dtype)
        unreduced = math if math_type_loss else input.dtype
        loss = input.new_empty(target.shape, dtype=unreduced) if reduction == 0 else input.new_empty((), dtype=math)
        return loss, input.new_empty(target.shape, dtype=math), input.new_empty((), dtype=torch.int64)

    @torch.library.register_fake(_OP + "_backward")
    def _(grad, input, target, alpha, weight, lse, gamma, label_smoothing, reduction, ignore_index):
        return input.new_empty(input.shape)

    _autograd.register(
        _autograd.Spec("softmax_focal_loss", _backward, _reference.op, save_outputs=(1,), non_differentiable=(1, 2))
    )
    _vmap.register("softmax_focal_loss", _vmap_rule)
    _autocast.register("softmax_focal_loss", math_type_loss=True)


if _backend._C is not None:
    _register()
