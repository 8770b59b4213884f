"""Dice, Jaccard, Tversky and focal Tversky losses with the activation fused in.

One op, fastloss::overlap_sums, computes the activation, the implicit one-hot and the
per-(sample, class) sums in one pass over the logits (csrc/math/overlap.h), and, when a gradient
will be needed, writes the activation p into a buffer of the input's size. That buffer becomes the
gradient: the backward (fastloss::overlap_sums_backward_) turns it into dL/dinput in place, in one
pass without an exp. A second op, fastloss::overlap_score, turns the (N, C, 3) sums into the loss
(MONAI's formulas, class weights, reduction; csrc/math/overlap_score.h) and its backward gives
dL/dsums; fastloss.reference.overlap.loss_from_sums is the same in torch ops.
Signatures and docs: fastloss.reference.overlap.define.
"""
import torch

from . import _backend
from ._common import REDUCTIONS
from .reference import overlap as _reference

_OP = "fastloss::overlap_sums"
_SCORE = "fastloss::overlap_score"


_LOSSES = {"dice": 0, "tversky": 1}  # codes of csrc/math/overlap_score.h


def _fused(loss, input, target, **options):
    a = _reference.check_args(loss, input, target, **options)
    if not _backend.use_kernels(a.input.device):
        return _reference.loss_from_sums(_reference.sums(a), a)
    keep_probs = a.input.requires_grad and torch.is_grad_enabled()
    sums, _ = torch.ops.fastloss.overlap_sums(a.input, a.target, a.activation, a.squared, a.ignore_index, keep_probs)
    return torch.ops.fastloss.overlap_score(sums, a.class_weight, _LOSSES[a.loss], a.jaccard, a.smooth_nr, a.smooth_dr,
                                            a.alpha, a.beta, a.gamma, a.include_background, a.batch,
                                            REDUCTIONS[a.reduction])


FUNCTIONS = _reference.define(_fused)
globals().update(FUNCTIONS)
__all__ = list(FUNCTIONS)


def _register():
    @torch.library.register_fake(_OP)
    def _(input, target, activation, squared, ignore_index, keep_probs):
        dtype = torch.float64 if input.dtype == torch.float64 else torch.float32
        probs = input.new_empty(input.shape if keep_probs else (0,))
        return input.new_empty((input.shape[0], input.shape[1], 3), dtype=dtype), probs

    @torch.library.register_fake(_OP + "_backward_")
    def _(grad, probs, target, activation, squared, ignore_index):
        return None

    def setup_context(ctx, inputs, output):
        input, target, activation, squared, ignore_index, keep_probs = inputs
        probs = output[1]
        ctx.mark_non_differentiable(probs)
        ctx.set_materialize_grads(False)  # else autograd makes a zero "gradient" of probs' size
        ctx.save_for_backward(input, target)
        # Not a saved tensor: the first backward takes it over and turns it into the gradient, so
        # nothing of the input's size is kept twice. (probs has no grad_fn: no reference cycle.)
        ctx.probs = [probs] if keep_probs else []
        ctx.params = (activation, squared, ignore_index)

    def backward(ctx, grad, _):
        input, target = ctx.saved_tensors
        if grad is None:
            return None, None, None, None, None, None
        if ctx.probs:
            probs = ctx.probs.pop()
        else:  # a second backward through the same graph (retain_graph=True): compute p again
            _, probs = torch.ops.fastloss.overlap_sums(input, target, *ctx.params, True)
        torch.ops.fastloss.overlap_sums_backward_(grad, probs, target, *ctx.params)
        return probs, None, None, None, None, None

    torch.library.register_autograd(_OP, backward, setup_context=setup_context)

    def score_shape(sums, include_background, batch, reduction):
        if reduction != 0:
            return ()
        scored = sums.shape[1] - (0 if include_background else 1)
        return (scored,) if batch else (sums.shape[0], scored)

    @torch.library.register_fake(_SCORE)
    def _(sums, class_weight, loss, jaccard, smooth_nr, smooth_dr, alpha, beta, gamma, include_background, batch,
          reduction):
        return sums.new_empty(score_shape(sums, include_background, batch, reduction))

    @torch.library.register_fake(_SCORE + "_backward")
    def _(grad, sums, *params):
        return sums.new_empty(sums.shape)

    def score_setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0], inputs[1])
        ctx.params = inputs[2:]

    def score_backward(ctx, grad):
        if ctx.needs_input_grad[1]:
            raise RuntimeError("fastloss: gradients with respect to class_weight are not supported")
        sums, class_weight = ctx.saved_tensors
        grad_sums = torch.ops.fastloss.overlap_score_backward(grad, sums, class_weight, *ctx.params)
        return (grad_sums,) + (None,) * 11

    torch.library.register_autograd(_SCORE, score_backward, setup_context=score_setup_context)


if _backend._C is not None:
    _register()
