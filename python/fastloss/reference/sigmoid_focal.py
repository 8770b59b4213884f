"""Sigmoid focal loss (Lin et al. 2017, arXiv 1708.02002) in plain torch, and its argument checks.

    p = σ(x), ce = BCEWithLogits(x, t), p_t = p·t + (1 − p)(1 − t), α_t = α·t + (1 − α)(1 − t)
    loss = α_t · (1 − p_t)^γ · ce        (α = −1: no α_t)

The same op computes the other members of the family w · ce (its `variant`): Varifocal (Zhang et al.
2021, arXiv 2008.13367), w = m·(iou_weighted ? t : 1) + (1 − m)·α·p^γ with m the positive indicator,
and Quality Focal (Li et al. 2020, arXiv 2006.04388), w = |t − p|^β.

The checks live here, beside the definition, and fastloss.sigmoid_focal_loss uses the same ones.
"""

from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F

from .._common import (
    MEAN,
    NONE,
    apply_avg_factor,
    check_floating,
    check_int,
    check_nonnegative,
    check_number,
    check_range,
    check_same_device,
    check_tensor,
    opmath_dtype,
    prepare_weight,
    reduction_code,
    result_dtype,
)


class FocalArgs(NamedTuple):
    inputs: torch.Tensor
    targets: torch.Tensor  # float targets (promoted with inputs to a common dtype) or integer labels
    labels: bool
    alpha: float
    gamma: float
    reduction: int  # kernel code; SUM when avg_factor is given
    weight: Optional[torch.Tensor]
    avg_factor: object
    ignore_index: int
    scores: Optional[torch.Tensor] = None  # with labels: the label's target per row (sparse soft targets)
    variant: int = 0  # FOCAL, VARIFOCAL or QUALITY_FOCAL | flags (math/sigmoid_focal.h: Variant, VariantFlag)
    positive: Optional[torch.Tensor] = None  # varifocal label mask of float targets (m per element)
    layers: int = 0  # > 0: reduced per leading index (one loss per decoder layer)


# The op's `variant` codes (csrc/math/sigmoid_focal.h)
FOCAL, VARIFOCAL, QUALITY_FOCAL = 0, 1, 2
IOU_WEIGHTED, LABEL_MASK, DETACH_WEIGHT, NO_IGNORE_INDEX = 4, 8, 16, 32
VARIANT_MASK = 3  # a packed variant code: the kind in these low bits, the flags above


def _check_sparse(inputs, targets):
    """targets = (labels, scores): integer labels of shape inputs.shape[:-1] and a float score in [0, 1]
    per label (class `label` has target `score`, every other class 0)."""
    if len(targets) != 2:
        raise ValueError(f"a tuple target must be (labels, scores), got {len(targets)} items")
    labels, scores = targets
    check_tensor("targets[0] (labels)", labels)
    check_floating("targets[1] (scores)", scores)
    check_same_device("targets[1] (scores)", scores, "inputs", inputs)
    if labels.dtype.is_floating_point or labels.dtype == torch.bool or labels.dtype.is_complex:
        raise TypeError(f"targets[0] (labels) must be integer class labels, got {labels.dtype}")
    if scores.shape != labels.shape:
        raise ValueError(
            f"targets[1] (scores) must have the labels' shape {tuple(labels.shape)}, got {tuple(scores.shape)}"
        )
    if scores.requires_grad:
        raise ValueError("targets[1] (scores) requires grad, but sparse targets take no gradient; pass scores.detach()")
    check_range("targets[1] (scores)", scores, 0, 1)
    return labels, scores


def check_args(
    inputs, targets, alpha, gamma, reduction, weight, avg_factor, ignore_index, per_layer=False, focal=True
) -> FocalArgs:
    """The checked arguments; focal=False leaves alpha's range (and -1) to the caller."""
    check_floating("inputs", inputs)
    scores = None
    if isinstance(targets, tuple):
        targets, scores = _check_sparse(inputs, targets)
    check_tensor("targets", targets)
    check_same_device("targets", targets, "inputs", inputs)
    alpha = check_number("alpha", alpha)
    if focal and not (0 <= alpha <= 1) and alpha != -1:
        raise ValueError(f"alpha must be in [0, 1], or -1 to turn α weighting off; got {alpha}")
    gamma = check_nonnegative("gamma", gamma)
    layers = 0
    if per_layer:
        if inputs.dim() < 2:
            raise ValueError(f"per_layer needs inputs of shape (layers, ..., C), got {tuple(inputs.shape)}")
        layers = inputs.shape[0] if reduction != "none" else 0
    code = reduction_code(reduction, avg_factor, layers)
    ignore_index = None if ignore_index is None else check_int("ignore_index", ignore_index)
    if targets.dtype.is_floating_point:
        if targets.shape != inputs.shape:
            raise ValueError(
                f"float targets must have the inputs' shape {tuple(inputs.shape)}, got {tuple(targets.shape)} "
                f"(integer class labels have shape inputs.shape[:-1])"
            )
        labels = False  # each keeps its dtype: the math runs in their promoted math type
    elif targets.dtype in (torch.bool,) or targets.dtype.is_complex:
        raise TypeError(f"targets must be a float tensor or integer class labels, got {targets.dtype}")
    else:
        if inputs.dim() == 0 or targets.shape != inputs.shape[:-1]:
            raise ValueError(
                f"integer label targets must have shape inputs.shape[:-1] = {tuple(inputs.shape[:-1])}, "
                f"got {tuple(targets.shape)}"
            )
        labels = True
    weight = prepare_weight(weight, inputs)
    variant = FOCAL if ignore_index is not None else NO_IGNORE_INDEX
    return FocalArgs(
        inputs,
        targets,
        labels,
        alpha,
        gamma,
        code,
        weight,
        avg_factor,
        -100 if ignore_index is None else ignore_index,
        scores,
        variant,
        None,
        layers,
    )


def _infinite_logit_limit(x, t, ce):
    """ce at x = ±inf by its limit: (1 − t)·inf at +inf, t·inf at −inf, 0 where that coefficient is 0
    (torch's formula gives NaN there: 0·inf). Where x is finite, ce is unchanged."""
    coefficient = torch.where(x > 0, 1 - t, t).detach()  # detached: inf·0 must not reach t's gradient
    limit = torch.where(coefficient == 0, torch.zeros_like(ce), coefficient * float("inf"))
    return torch.where(torch.isinf(x), limit, ce)


def elementwise(x, t, alpha, gamma):
    """α_t·(1 − p_t)^γ·BCEWithLogits(x, t) per element (α < 0: no α_t), infinite logits at their limits."""
    loss = _infinite_logit_limit(x, t, F.binary_cross_entropy_with_logits(x, t, reduction="none"))
    if gamma != 0:
        one_minus_p_t = t * torch.sigmoid(-x) + (1 - t) * torch.sigmoid(x)
        loss = loss * one_minus_p_t.pow(gamma)
    if alpha >= 0:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return loss


def compute(a: FocalArgs, dtype=None) -> torch.Tensor:
    """The loss, in `dtype` (default: result_dtype of the inputs and float targets)."""
    dtype = loss_dtype(a) if dtype is None else dtype
    x = a.inputs.to(math_dtype(a))
    kept, one_hot = None, None
    if a.labels:
        classes = torch.arange(x.shape[-1], device=x.device)
        one_hot = (a.targets.unsqueeze(-1) == classes).to(x.dtype)
        t = one_hot
        if a.scores is not None:
            t = t * a.scores.detach().to(x.dtype).unsqueeze(-1)
        if not a.variant & NO_IGNORE_INDEX:
            kept = (a.targets != a.ignore_index).unsqueeze(-1).expand(x.shape)
    else:
        t = a.targets.to(x.dtype)
    kind = a.variant & VARIANT_MASK
    if kind == FOCAL:
        loss = elementwise(x, t, a.alpha, a.gamma)
    else:
        ce = _infinite_logit_limit(x, t, F.binary_cross_entropy_with_logits(x, t, reduction="none"))
        w = _quality_weight(a, x, t.detach(), one_hot)
        loss = torch.where(w == 0, torch.zeros((), dtype=x.dtype, device=x.device), w * ce)  # 0·inf = 0
    if a.weight is not None:
        loss = loss * a.weight.to(x.dtype)
    if kept is not None:
        loss = torch.where(kept, loss, torch.zeros((), dtype=x.dtype, device=x.device))
    if a.reduction == NONE:
        return loss.to(dtype)
    counted = kept if kept is not None else torch.ones((), dtype=torch.bool, device=x.device).expand(x.shape)
    if a.layers > 0:
        total, count = loss.reshape(a.layers, -1).sum(1), counted.reshape(a.layers, -1).sum(1)
    else:
        total, count = loss.sum(), counted.sum()
    if a.reduction == MEAN:
        total = total / count.clamp(min=1)
    return apply_avg_factor(total, a.avg_factor).to(dtype)


def _quality_weight(a: FocalArgs, x, t, one_hot):
    """The varifocal or quality focal weight w of w · ce (t detached: these targets take no gradient)."""
    p = torch.sigmoid(x)
    if a.variant & VARIANT_MASK == QUALITY_FOCAL:
        return (t - p).abs().pow(a.gamma)
    if a.positive is not None:
        m = a.positive.to(x.dtype)
    elif a.variant & LABEL_MASK:
        m = one_hot
    else:
        m = (t > 0).to(x.dtype)
    negative = a.alpha * p.pow(a.gamma)
    if a.variant & DETACH_WEIGHT:
        negative = negative.detach()
    return m * (t if a.variant & IOU_WEIGHTED else 1) + (1 - m) * negative


def loss_dtype(a: FocalArgs):
    """The dtype of the loss: the promoted dtype of inputs and float targets (float32 for half types
    under autocast, as torch's losses)."""
    return result_dtype(a.inputs) if a.labels else result_dtype(a.inputs, a.targets)


def math_dtype(a: FocalArgs):
    return opmath_dtype(a.inputs.dtype if a.labels else torch.promote_types(a.inputs.dtype, a.targets.dtype))


def op(
    inputs,
    targets,
    weight,
    alpha,
    gamma,
    reduction,
    ignore_index,
    math_type_loss=False,
    scores=None,
    variant=0,
    positive=None,
    layers=0,
):
    """fastloss::sigmoid_focal_loss in torch ops: (loss, count) as the kernels return them — the
    loss in the inputs' dtype ("none") or the math type (reduced; one per layer with layers > 0),
    count = the elements not ignored (0 for "none")."""
    labels = not targets.dtype.is_floating_point
    layers = layers if reduction != NONE else 0
    a = FocalArgs(
        inputs, targets, labels, alpha, gamma, reduction, weight, None, ignore_index, scores, variant, positive, layers
    )
    unreduced = (
        math_dtype(a)
        if math_type_loss
        else (inputs.dtype if labels else torch.promote_types(inputs.dtype, targets.dtype))
    )
    loss = compute(a, unreduced if reduction == NONE else math_dtype(a))
    shape = (layers,) if layers > 0 else ()
    if reduction == NONE:
        count = torch.zeros((), dtype=torch.int64, device=inputs.device)
    elif labels and not variant & NO_IGNORE_INDEX:
        kept = targets != ignore_index
        count = (kept.reshape(layers, -1).sum(1) if layers > 0 else kept.sum()) * inputs.shape[-1]
    else:
        count = torch.full(shape, inputs.numel() // max(layers, 1), dtype=torch.int64, device=inputs.device)
    return loss, count


def sigmoid_focal_loss(
    inputs,
    targets,
    alpha=0.25,
    gamma=2.0,
    reduction="none",
    *,
    weight=None,
    avg_factor=None,
    ignore_index=-100,
    per_layer=False,
):
    """Reference of fastloss.sigmoid_focal_loss (same signature and semantics)."""
    return compute(check_args(inputs, targets, alpha, gamma, reduction, weight, avg_factor, ignore_index, per_layer))
