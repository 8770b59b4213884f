"""fastloss.softmax_focal_loss: the fused multi-class focal loss (cross entropy at γ = 0).

Kernels: csrc/math/softmax_focal.h (the formula), csrc/cpu/ and csrc/cuda/softmax_focal.*. They
return the per-position losses or their sum, the per-position log-sum-exp the backward needs, and
the count of kept positions; "mean" and avg_factor are applied here
(fastloss.reference.softmax_focal.finish, shared with the reference).
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


def softmax_focal_loss(
    input,
    target,
    *,
    alpha=None,
    gamma=2.0,
    ignore_index=-100,
    reduction="mean",
    weight=None,
    avg_factor=None,
    label_smoothing=0.0,
):
    """Softmax (multi-class) focal loss with PyTorch's cross-entropy conventions.

    Per position with label y, p = softmax(input) over C, ε = label_smoothing:
        A = (1 − ε)·α_y·(−log p_y) + (ε/C)·Σ_c α_c·(−log p_c)   (F.cross_entropy's term)
        loss = (1 − p_y)^γ · A · weight
    (Lin et al. 2017, arXiv 1708.02002, in the multi-class form of mmcv's softmax_focal_loss.)
    With gamma=0 it is F.cross_entropy(input, target, weight=alpha, ignore_index=ignore_index,
    reduction=reduction, label_smoothing=ε), gradients included. With smoothing, the focal factor
    of the labelled class scales the whole smoothed term.

    input: (N, C) or (N, C, *spatial) logits, float16/bfloat16/float32/float64 (math in float32,
        float64 for float64); non-contiguous inputs are copied once.
    target: integer labels (N,) or (N, *spatial). Labels equal to ignore_index add no loss, no
        gradient and nothing to the "mean" divisor; other labels outside [0, C) raise a
        ValueError on CPU, and on CUDA trigger a device-side assert (as F.cross_entropy does) —
        they are never used as addresses.
    alpha: None, a number (every class), or a (C,) tensor of class weights — F.cross_entropy's
        `weight`. "mean" divides by Σ α_y over the kept positions (torch's weighted mean), so a
        single number cancels out of "mean"; it scales "sum" and "none".
    gamma: focusing exponent >= 0 (0: cross entropy).
    reduction: "mean" | "sum" | "none" ((N, *spatial) losses). All positions ignored: "sum"
        gives 0 and "mean" NaN, as F.cross_entropy; an empty input's "mean" is 0 (F.cross_entropy:
        NaN), as for every fastloss loss.
    weight: optional per-position weight of shape (N, *spatial) (mmdet's), multiplying the loss;
        it does not enter the "mean" divisor. Gets no gradient.
    avg_factor: with reduction="mean", the loss is sum / avg_factor (mmdet's convention).
    The forward keeps the logits, the labels and one float per position (the log-sum-exp);
    the backward is one pass.
    """
    return _fused(
        input,
        target,
        alpha=alpha,
        gamma=gamma,
        ignore_index=ignore_index,
        reduction=reduction,
        weight=weight,
        avg_factor=avg_factor,
        label_smoothing=label_smoothing,
    )


__all__ = ["softmax_focal_loss"]


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
