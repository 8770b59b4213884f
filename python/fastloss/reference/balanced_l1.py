"""The Balanced L1 loss (Pang et al., Libra R-CNN, arXiv 1904.02701; formula: csrc/math/balanced_l1.h)
in plain torch, and its argument checks, which fastloss.balanced_l1 shares."""

import math
from typing import NamedTuple, Optional

import torch

from .._common import (
    check_broadcasts_to_loss,
    check_number,
    check_pair,
    check_weight,
    opmath_dtype,
    reduce_unreduced,
    reduction_code,
)


class BalancedL1Args(NamedTuple):
    pred: torch.Tensor
    target: torch.Tensor  # in pred's dtype
    weight: Optional[torch.Tensor]  # pred's shape, in the math type
    alpha: float
    gamma: float
    beta: float
    reduction: int  # kernel code; SUM when avg_factor is given
    avg_factor: object


def check_args(pred, target, reduction, alpha, gamma, beta, weight, avg_factor) -> BalancedL1Args:
    check_pair(pred, target)
    for name, value in (("alpha", alpha), ("gamma", gamma), ("beta", beta)):
        if check_number(name, value) <= 0:
            raise ValueError(f"{name} must be > 0, got {value}")
    code = reduction_code(reduction, avg_factor)
    if target.requires_grad:
        raise ValueError(
            "target requires grad, but balanced_l1_loss gives no gradient for the target; pass target.detach()"
        )
    dtype = torch.promote_types(pred.dtype, target.dtype)
    if weight is not None:
        check_weight(weight, pred, "pred")
        check_broadcasts_to_loss(weight, pred.shape)
        weight = weight.to(opmath_dtype(dtype)).expand(pred.shape)
    return BalancedL1Args(
        pred.to(dtype), target.to(dtype), weight, float(alpha), float(gamma), float(beta), code, avg_factor
    )


def element_losses(pred, target, alpha, gamma, beta):
    """The elementwise loss in torch ops (mmdet's formula)."""
    diff = (pred - target).abs()
    b = math.expm1(gamma / alpha)
    return torch.where(
        diff < beta,
        alpha / b * (b * diff + 1) * torch.log(b * diff / beta + 1) - alpha * diff,
        gamma * diff + gamma / b - alpha * beta,
    )


def compute(a: BalancedL1Args) -> torch.Tensor:
    math_type = opmath_dtype(a.pred.dtype)
    loss = element_losses(a.pred.to(math_type), a.target.to(math_type), a.alpha, a.gamma, a.beta)
    if a.weight is not None:
        loss = loss * a.weight
    return reduce_unreduced(loss, a.reduction, a.avg_factor)


def element_grads(pred, target, alpha, gamma, beta):
    """dL/dpred of the elementwise loss in torch ops: α·ln(b·d/β + 1) + α·(b·d + 1)/(b·d + β) − α below β,
    γ above, times sign(pred − target)."""
    diff = pred - target
    d = diff.abs()
    b = math.expm1(gamma / alpha)
    low = alpha * torch.log(b * d / beta + 1) + alpha * (b * d + 1) / (b * d + beta) - alpha
    return torch.where(d < beta, low, torch.full_like(d, gamma)) * torch.sign(diff)


def op(pred, target, weight, alpha, gamma, beta, reduction, keep_grad=False):
    """fastloss::balanced_l1_loss in torch ops: (loss, kept_grad), kept_grad the unscaled dL/dpred
    (keep_grad) or empty."""
    loss = compute(BalancedL1Args(pred, target, weight, alpha, gamma, beta, reduction, None))
    if not keep_grad:
        return loss, pred.new_empty((0,))
    math_type = opmath_dtype(pred.dtype)
    grads = element_grads(pred.detach().to(math_type), target.detach().to(math_type), alpha, gamma, beta)
    return loss, grads.to(pred.dtype)


def _reference_loss(*args):
    return compute(check_args(*args))


def balanced_l1_loss(pred, target, reduction="mean", *, alpha=0.5, gamma=1.5, beta=1.0, weight=None, avg_factor=None):
    """fastloss.balanced_l1_loss in plain torch: the same arguments, the same numbers."""
    return _reference_loss(pred, target, reduction, alpha, gamma, beta, weight, avg_factor)


__all__ = ["balanced_l1_loss"]
