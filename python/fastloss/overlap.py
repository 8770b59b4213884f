"""Dice, Jaccard, Tversky and focal Tversky losses with the activation fused in.

One op, fastloss::overlap_sums, computes the activation, the implicit one-hot and the
per-(sample, class) sums in one pass over the logits (csrc/math/overlap.h); its backward is one
more pass that recomputes the activation. The loss from the (N, C, 3) sums, its class weights and
reduction are plain torch on that small matrix (fastloss.reference.overlap.loss_from_sums, shared
with the reference). Signatures and docs: fastloss.reference.overlap.define.
"""
import torch

from . import _backend
from .reference import overlap as _reference

_OP = "fastloss::overlap_sums"


def _fused(loss, input, target, **options):
    a = _reference.check_args(loss, input, target, **options)
    if _backend.use_kernels(a.input.device):
        sums = torch.ops.fastloss.overlap_sums(a.input, a.target, a.activation, a.squared, a.ignore_index)
    else:
        sums = _reference.sums(a)
    return _reference.loss_from_sums(sums, a)


FUNCTIONS = _reference.define(_fused)
globals().update(FUNCTIONS)
__all__ = list(FUNCTIONS)


def _register():
    @torch.library.register_fake(_OP)
    def _(input, target, activation, squared, ignore_index):
        dtype = torch.float64 if input.dtype == torch.float64 else torch.float32
        return input.new_empty((input.shape[0], input.shape[1], 3), dtype=dtype)

    @torch.library.register_fake(_OP + "_backward")
    def _(grad, input, target, activation, squared, ignore_index):
        return input.new_empty(input.shape)

    def setup_context(ctx, inputs, output):
        input, target, *params = inputs
        ctx.save_for_backward(input, target)
        ctx.params = params

    def backward(ctx, grad):
        input, target = ctx.saved_tensors
        return torch.ops.fastloss.overlap_sums_backward(grad, input, target, *ctx.params), None, None, None, None

    torch.library.register_autograd(_OP, backward, setup_context=setup_context)


if _backend._C is not None:
    _register()
