"""Distribution Focal Loss (Li et al., Generalized Focal Loss, arXiv 2006.04388; formula:
csrc/math/distribution_focal.h) in plain torch, and its argument checks.

    l = ⌊t⌋, r = l + 1, w_l = r − t, w_r = t − l:  loss = w_l·CE(x, l) + w_r·CE(x, r)

over the n = pred.shape[-1] bins, t ∈ [0, n − 1] (optionally clamped to [0, target_max] first, as
ultralytics' DFLoss does); t = n − 1 has no right bin (w_r = 0).
"""

from typing import NamedTuple, Optional

import torch

from .._common import (
    apply_avg_factor,
    check_broadcasts_to_loss,
    check_floating,
    check_number,
    check_range,
    check_same_device,
    check_weight,
    opmath_dtype,
    reduction_code,
    result_dtype,
    MEAN,
    NONE,
)


class DistributionFocalArgs(NamedTuple):
    pred: torch.Tensor  # (..., n) logits
    target: torch.Tensor  # pred.shape[:-1]
    weight: Optional[torch.Tensor]  # the target's shape, contiguous, in the math type
    target_max: float  # < 0: no clamp
    reduction: int  # kernel code; SUM when avg_factor is given
    avg_factor: object


def check_args(pred, target, target_max, reduction, weight, avg_factor) -> DistributionFocalArgs:
    check_floating("pred", pred)
    check_floating("target", target)
    check_same_device("target", target, "pred", pred)
    if pred.dim() == 0 or pred.shape[-1] == 0:
        raise ValueError(f"pred must have a non-empty bin dimension (..., n), got shape {tuple(pred.shape)}")
    bins = pred.shape[-1]
    if target.shape != pred.shape[:-1]:
        raise ValueError(
            f"target must have shape pred.shape[:-1] = {tuple(pred.shape[:-1])}, got {tuple(target.shape)}"
        )
    if target.requires_grad:
        raise ValueError(
            "target requires grad, but distribution_focal_loss gives no gradient for the target; pass target.detach()"
        )
    if target_max is None:
        target_max = -1.0
        check_range("target", target, 0, bins - 1, " (the bins 0 .. n-1; target_max= clamps)")
    else:
        target_max = check_number("target_max", target_max)
        if not 0 <= target_max <= bins - 1:
            raise ValueError(f"target_max must be in [0, {bins - 1}] for {bins} bins, got {target_max}")
    code = reduction_code(reduction, avg_factor)
    if weight is not None:
        check_weight(weight, pred, "pred")
        check_broadcasts_to_loss(weight, target.shape)
        weight = weight.to(opmath_dtype(pred.dtype)).expand(target.shape).contiguous()
    return DistributionFocalArgs(pred, target, weight, float(target_max), code, avg_factor)


def element_losses(pred, target, target_max):
    """The loss per row in torch ops, in the math type."""
    math = opmath_dtype(pred.dtype)
    x, t = pred.to(math), target.to(math)
    bins = x.shape[-1]
    if target_max >= 0:
        t = t.clamp(0, target_max)
    left = t.clamp(0, bins - 1).long()
    right = left + 1
    w_left, w_right = right.to(math) - t, t - left.to(math)
    log_p = torch.log_softmax(x, -1)
    has_right = right < bins
    ce_left = -log_p.gather(-1, left.unsqueeze(-1)).squeeze(-1)
    ce_right = -log_p.gather(-1, right.clamp(max=bins - 1).unsqueeze(-1)).squeeze(-1)
    return w_left * ce_left + torch.where(has_right, w_right * ce_right, torch.zeros((), dtype=math, device=x.device))


def compute(a: DistributionFocalArgs, dtype=None):
    loss = element_losses(a.pred, a.target, a.target_max)
    if a.weight is not None:
        loss = loss * a.weight
    if a.reduction != NONE:
        total = loss.sum()
        loss = total / max(loss.numel(), 1) if a.reduction == MEAN else total
    loss = apply_avg_factor(loss, a.avg_factor)
    return loss.to(result_dtype(a.pred) if dtype is None else dtype)


def op(pred, target, weight, target_max, reduction):
    """fastloss::distribution_focal_loss in torch ops: (loss in the math type, lse per row)."""
    a = DistributionFocalArgs(pred, target, weight, target_max, reduction, None)
    lse = torch.logsumexp(pred.to(opmath_dtype(pred.dtype)), -1)
    return compute(a, opmath_dtype(pred.dtype)), lse


def distribution_focal_loss(pred, target, *, target_max=None, reduction="mean", weight=None, avg_factor=None):
    """Reference of fastloss.distribution_focal_loss (same signature and semantics)."""
    return compute(check_args(pred, target, target_max, reduction, weight, avg_factor))
