"""fastloss.softmax_focal_loss: the fused multi-class focal loss (cross entropy at γ = 0).

Kernels: csrc/math/softmax_focal.h (the formula), csrc/cpu/ and csrc/cuda/softmax_focal.*. They
return the per-position losses or their sum, the per-position log-sum-exp the backward needs, and
the count of kept positions; "mean" and avg_factor are applied here
(fastloss.reference.softmax_focal.finish, shared with the reference). Signature and docs:
fastloss.reference.softmax_focal.define.
"""
import torch

from . import _backend
from .reference import softmax_focal as _reference

_OP = "fastloss::softmax_focal_loss"


def _fused(input, target, **options):
    a = _reference.check_args(input, target, **options)
    if not _backend.use_kernels(a.input.device):
        return _reference.compute(a)
    loss, _, count = torch.ops.fastloss.softmax_focal_loss(a.input, a.target, a.alpha, a.weight, a.gamma,
                                                           a.label_smoothing, a.reduction, a.ignore_index)
    return _reference.finish(loss, count, a)


FUNCTIONS = _reference.define(_fused)
globals().update(FUNCTIONS)
__all__ = list(FUNCTIONS)


def _register():
    @torch.library.register_fake(_OP)
    def _(input, target, alpha, weight, gamma, label_smoothing, reduction, ignore_index):
        math = torch.float64 if input.dtype == torch.float64 else torch.float32
        loss = input.new_empty(target.shape) if reduction == 0 else input.new_empty((), dtype=math)
        return loss, input.new_empty(target.shape, dtype=math), input.new_empty((), dtype=torch.int64)

    @torch.library.register_fake(_OP + "_backward")
    def _(grad, input, target, alpha, weight, lse, gamma, label_smoothing, reduction, ignore_index):
        return input.new_empty(input.shape)

    def setup_context(ctx, inputs, output):
        input, target, alpha, weight, *params = inputs
        ctx.mark_non_differentiable(output[1], output[2])
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(input, target, alpha, weight, output[1])
        ctx.params = params

    def backward(ctx, grad, _lse, _count):
        if grad is None:
            return (None,) * 8
        if ctx.needs_input_grad[2] or ctx.needs_input_grad[3]:
            raise RuntimeError("fastloss.softmax_focal_loss: gradients with respect to alpha or weight are not "
                               "supported")
        input, target, alpha, weight, lse = ctx.saved_tensors
        grad_input = torch.ops.fastloss.softmax_focal_loss_backward(grad, input, target, alpha, weight, lse,
                                                                    *ctx.params)
        return (grad_input,) + (None,) * 7

    torch.library.register_autograd(_OP, backward, setup_context=setup_context)


if _backend._C is not None:
    _register()
