"""Softmax focal loss (Lin et al. 2017, arXiv 1708.02002; formulas: csrc/math/softmax_focal.h) in
plain torch, its argument checks, and the normaliser of its "mean", shared with the kernels.

    p = softmax(x) over C, A = (1 − ε)·α_y·(−log p_y) + (ε/C)·Σ_c α_c·(−log p_c)
    loss = (1 − p_y)^γ · A · weight

With γ = 0 this is F.cross_entropy(x, y, weight=α, label_smoothing=ε) term by term, and "mean"
divides by the same Σ α_y over the positions that are not ignored (the count without α).
"""

import numbers
from math import prod as math_prod
from typing import NamedTuple, Optional

import torch

from .._common import (
    MEAN,
    NONE,
    apply_avg_factor,
    check_int,
    check_logits,
    check_nonnegative,
    check_number,
    check_same_device,
    check_tensor,
    check_labels,
    check_weight,
    opmath_dtype,
    reduction_code,
    result_dtype,
)


class SoftmaxFocalArgs(NamedTuple):
    input: torch.Tensor  # (N, C, inner) logits
    target: torch.Tensor  # (N, inner) integer labels
    shape: tuple  # the loss's shape for "none": (N, *spatial)
    alpha: Optional[torch.Tensor]  # (C,) in the math type
    weight: Optional[torch.Tensor]  # (N, inner) in the math type
    gamma: float
    label_smoothing: float
    reduction: int  # kernel code; SUM when avg_factor is given
    mean: bool  # "mean" without avg_factor: sum / normaliser
    avg_factor: object
    ignore_index: int


def check_args(
    input, target, alpha, gamma, ignore_index, reduction, weight, avg_factor, label_smoothing
) -> SoftmaxFocalArgs:
    n, classes = check_logits(input, target, "(N, C) or (N, C, *spatial)")
    if target.dtype.is_floating_point or target.dtype == torch.bool or target.dtype.is_complex:
        raise TypeError(
            f"target must be integer class labels, got {target.dtype} (for probability targets use "
            "torch.nn.functional.cross_entropy)"
        )
    shape = (n,) + tuple(input.shape[2:])
    if tuple(target.shape) != shape:
        raise ValueError(
            f"target must have shape (N, *spatial) = {shape} for input {tuple(input.shape)}, got {tuple(target.shape)}"
        )
    gamma = check_nonnegative("gamma", gamma)
    label_smoothing = check_number("label_smoothing", label_smoothing)
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    ignore_index = check_int("ignore_index", ignore_index)
    code = reduction_code(reduction, avg_factor)
    math = opmath_dtype(input.dtype)
    if alpha is not None:
        if isinstance(alpha, numbers.Real) and not isinstance(alpha, bool):
            alpha = torch.full((classes,), check_number("alpha", alpha), dtype=math, device=input.device)
        check_tensor("alpha", alpha)
        check_same_device("alpha", alpha, "input", input)
        if alpha.shape != (classes,) or not alpha.dtype.is_floating_point:
            raise ValueError(
                f"alpha must be None, a number or a float tensor of shape (C,) = ({classes},), got "
                f"{alpha.dtype} of shape {tuple(alpha.shape)}"
            )
        if alpha.requires_grad:
            raise ValueError("alpha requires grad, but gradients with respect to alpha are not supported")
        alpha = alpha.to(math)
    if weight is not None:
        check_weight(weight, input, "input")
        if tuple(weight.shape) != shape:
            raise ValueError(
                f"weight must have one value per position, shape (N, *spatial) = {shape}, got {tuple(weight.shape)}"
            )
        weight = weight.to(math).reshape(n, math_prod(input.shape[2:]))
    inner = math_prod(input.shape[2:])
    return SoftmaxFocalArgs(
        input.reshape(n, classes, inner),
        target.reshape(n, inner),
        shape,
        alpha,
        weight,
        gamma,
        label_smoothing,
        NONE if code == NONE else 1,
        code == MEAN,
        avg_factor,
        ignore_index,
    )


def normaliser(a: SoftmaxFocalArgs, count):
    """The divisor of "mean": Σ α_y over the positions not ignored (their count without α)."""
    if a.alpha is None:
        return count
    kept = a.target != a.ignore_index
    alpha_y = a.alpha[a.target.clamp(0, a.alpha.shape[0] - 1)]  # clamped: no gather outside α
    return torch.where(kept, alpha_y, torch.zeros((), dtype=alpha_y.dtype, device=alpha_y.device)).sum()


def finish(loss, count, a: SoftmaxFocalArgs):
    """The kernels' "none" (N, inner) or "sum" result → the requested reduction, in the input's dtype
    (float32 for half inputs under autocast; a sum arrives in the math type: float16 could not hold it
    before "mean" divides it)."""
    dtype = result_dtype(a.input)
    if a.reduction == NONE:
        return loss.reshape(a.shape).to(dtype)
    if a.mean:
        if a.target.numel() == 0:  # an empty input's "mean" is 0, as for every fastloss loss (torch: NaN)
            return loss.to(dtype)
        return (loss / normaliser(a, count).to(loss.dtype)).to(dtype)
    return apply_avg_factor(loss, a.avg_factor).to(dtype)


def _power(q, gamma):
    """q^γ for q ≥ 0 (clamped: rounding can leave it a hair below), with the derivative 0 where q = 0:
    there it multiplies a term that vanishes as fast (as the kernels take it; pow's own derivative
    would be inf · 0 = NaN for γ < 1 — torch 2.13 gives that, 2.14 masks it)."""
    positive = q > 0
    return torch.where(positive, torch.where(positive, q, 1).pow(gamma), 0)


def _losses(a: SoftmaxFocalArgs):
    """Per-position losses (N, inner) in the math type (0 where ignored), the kept mask and lse."""
    x = a.input.to(opmath_dtype(a.input.dtype))
    classes = x.shape[1]
    kept = a.target != a.ignore_index
    outside = kept & ((a.target < 0) | (a.target >= classes))
    check_labels(a.target, outside, classes)
    y = torch.where(kept, a.target, torch.zeros_like(a.target)).unsqueeze(1)
    log_p = torch.log_softmax(x, 1)  # F.cross_entropy's, special values included
    lse = torch.logsumexp(x.detach(), 1)
    log_py = log_p.gather(1, y).squeeze(1)
    alpha = torch.ones(classes, dtype=x.dtype, device=x.device) if a.alpha is None else a.alpha
    ce = (1 - a.label_smoothing) * alpha[y.squeeze(1)] * -log_py
    if a.label_smoothing > 0:
        ce = ce + a.label_smoothing / classes * -(log_p * alpha.view(1, -1, 1)).sum(1)
    loss = ce if a.gamma == 0 else _power(-torch.expm1(log_py), a.gamma) * ce
    if a.weight is not None:
        loss = loss * a.weight
    return torch.where(kept, loss, torch.zeros((), dtype=x.dtype, device=x.device)), kept, lse


def compute(a: SoftmaxFocalArgs) -> torch.Tensor:
    loss, kept, _ = _losses(a)
    if a.reduction != NONE:
        loss = loss.sum()
    return finish(loss, kept.sum(), a)


def op(input, target, alpha, weight, gamma, label_smoothing, reduction, ignore_index, math_type_loss=False):
    """fastloss::softmax_focal_loss in torch ops: (loss, lse, count) as the kernels return them."""
    a = SoftmaxFocalArgs(
        input, target, tuple(target.shape), alpha, weight, gamma, label_smoothing, reduction, False, None, ignore_index
    )
    loss, kept, lse = _losses(a)
    if reduction != NONE:
        loss = loss.sum()
    elif not math_type_loss:
        loss = loss.to(input.dtype)
    return loss, lse.detach(), kept.sum()


def _reference_loss(input, target, alpha, gamma, ignore_index, reduction, weight, avg_factor, label_smoothing):
    a = check_args(input, target, alpha, gamma, ignore_index, reduction, weight, avg_factor, label_smoothing)
    return compute(a)


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
    """fastloss.softmax_focal_loss in plain torch: the same arguments, the same numbers."""
    return _reference_loss(
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
