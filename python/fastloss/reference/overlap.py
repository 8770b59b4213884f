"""Dice, Jaccard, Tversky and focal Tversky losses (formulas: csrc/math/overlap.h and
overlap_score.h) in plain torch, and their argument checks, which fastloss.overlap shares.

Both implementations reduce the activated input p and the target t to per-(sample, class) sums
S_pt = Σ p·t, S_p = Σ p (Σ p² with squared_pred), S_t = Σ t (Σ t²) — the kernels in one pass, this
module with torch ops — and then compute the loss from those (N, C, 3) sums with MONAI's formulas:
the kernels with fastloss::overlap_score and its hand-written derivatives, this module with
`loss_from_sums` and torch's autograd (the oracle the tests hold the op to).
"""

import numbers
from math import prod as math_prod
from typing import NamedTuple, Optional

import torch

from .._common import (
    check_bool,
    check_labels,
    check_values,
    check_choice,
    check_int,
    check_logits,
    check_nonnegative,
    check_number,
    REDUCTIONS,
    check_reduction,
    opmath_dtype,
)

ACTIVATIONS = {"softmax": 0, "sigmoid": 1, "none": 2}  # codes of csrc/math/overlap.h


class OverlapArgs(NamedTuple):
    input: torch.Tensor  # (N, C, HW)
    target: torch.Tensor  # (N, C, HW) float in input's dtype, or (N, HW) integer labels
    labels: bool
    activation: int
    squared: bool
    ignore_index: Optional[int]
    loss: str  # "dice" | "tversky"
    include_background: bool
    jaccard: bool
    smooth_nr: float
    smooth_dr: float
    batch: bool
    class_weight: Optional[torch.Tensor]
    reduction: str
    alpha: float
    beta: float
    gamma: float
    soft_label: bool = False  # S_pt = Σ min(p, t) (MONAI's soft_label; not with squared sums)
    process_group: object = None  # batch sums all-reduced over this group (fastloss.distributed)


def class_weight_tensor(name, class_weight, classes, input, target, which="class scored"):
    """A number or one weight per class as a (classes,) tensor in the math type, checked (>= 0, finite)."""
    if class_weight is None:
        return None
    if isinstance(class_weight, numbers.Real) and not isinstance(class_weight, bool):
        class_weight = [float(class_weight)] * classes
    if isinstance(class_weight, torch.Tensor) and class_weight.requires_grad:
        raise ValueError(
            f"{name} requires grad, but gradients with respect to {name} are not supported; pass {name}.detach()"
        )
    weight = torch.as_tensor(class_weight, dtype=math_dtype(input, target), device=input.device)
    if weight.dim() != 1 or weight.numel() != classes:
        raise ValueError(f"{name} must have one weight per {which}: {classes} weights, got shape {tuple(weight.shape)}")
    check_values(~(weight >= 0) | torch.isinf(weight), lambda read: f"{name} must be finite and >= 0")
    return weight


def check_args(
    loss,
    input,
    target,
    activation="softmax",
    include_background=True,
    squared_pred=False,
    jaccard=False,
    smooth_nr=1e-5,
    smooth_dr=1e-5,
    batch=False,
    class_weight=None,
    ignore_index=None,
    reduction="mean",
    alpha=0.5,
    beta=0.5,
    gamma=1.0,
    soft_label=False,
    process_group=None,
) -> OverlapArgs:
    n, classes = check_logits(input, target, "(N, C, *spatial)")
    positions = math_prod(input.shape[2:])
    act = check_choice("activation", activation, ACTIVATIONS)
    if activation == "softmax" and classes == 1:
        raise ValueError(
            "activation='softmax' needs more than one class (a softmax over one class is always 1); "
            "use activation='sigmoid' for a binary task"
        )
    for name, flag in (
        ("include_background", include_background),
        ("squared_pred", squared_pred),
        ("jaccard", jaccard),
        ("batch", batch),
        ("soft_label", soft_label),
    ):
        check_bool(name, flag)
    if process_group is not None and not batch:
        raise ValueError(
            "process_group all-reduces the batch's sums: it needs batch=True (per-sample scores need no communication)"
        )
    if not include_background and classes == 1:
        raise ValueError("include_background=False needs more than one class")
    if target.requires_grad:
        raise ValueError("target requires grad, but gradients with respect to the target are not supported")
    if ignore_index is not None:
        ignore_index = check_int("ignore_index", ignore_index)
    if target.dtype.is_floating_point:
        if target.shape != input.shape:
            raise ValueError(
                f"a float target must have the input's shape {tuple(input.shape)}, got "
                f"{tuple(target.shape)} (integer labels are (N, *spatial) or (N, 1, *spatial))"
            )
        if ignore_index is not None:
            raise ValueError("ignore_index needs integer label targets, got a float target")
        target, labels = target.reshape(n, classes, positions), False  # in its own dtype
    elif target.dtype == torch.bool or target.dtype.is_complex:
        raise TypeError(f"target must be a float tensor or integer labels, got {target.dtype}")
    else:
        if target.dim() == input.dim() and target.shape[1] == 1:
            target = target.squeeze(1)  # MONAI's (N, 1, *spatial) labels
        if target.shape != (n,) + input.shape[2:]:
            raise ValueError(
                f"integer label target must have shape (N, *spatial) = {(n,) + tuple(input.shape[2:])} "
                f"or (N, 1, *spatial), got {tuple(target.shape)}"
            )
        target, labels = target.reshape(n, positions), True
    scored = classes if include_background else classes - 1
    if loss == "tversky":
        alpha, beta = check_nonnegative("alpha", alpha), check_nonnegative("beta", beta)
        gamma = check_number("gamma", gamma)
        if gamma <= 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
    return OverlapArgs(
        input.reshape(n, classes, positions),
        target,
        labels,
        act,
        squared_pred,
        ignore_index,
        loss,
        include_background,
        jaccard,
        check_nonnegative("smooth_nr", smooth_nr),
        check_nonnegative("smooth_dr", smooth_dr),
        batch,
        class_weight_tensor(
            "class_weight",
            class_weight,
            scored,
            input,
            target,
            "class scored (without the background when include_background=False)",
        ),
        check_reduction(reduction),
        alpha,
        beta,
        gamma,
        soft_label,
        process_group,
    )


def one_hot(a: OverlapArgs, x: torch.Tensor):
    """The target t as (N, C, HW) in x's dtype (0 where ignored) and the (N, HW) mask of the positions
    kept; labels are checked."""
    if not a.labels:
        return a.target.to(x.dtype), torch.ones(a.target.shape[0], a.target.shape[2], dtype=torch.bool, device=x.device)
    classes = x.shape[1]
    offset = 1 if classes == 1 else 0  # one class: the labels are the binary target (1 = foreground)
    valid = torch.ones_like(a.target, dtype=torch.bool) if a.ignore_index is None else a.target != a.ignore_index
    outside = valid & ((a.target < 0) | (a.target >= classes + offset))
    check_labels(a.target, outside, classes + offset)
    class_ids = torch.arange(offset, classes + offset, device=x.device).view(1, -1, 1)
    return (a.target.unsqueeze(1) == class_ids).to(x.dtype) * valid.unsqueeze(1), valid


def sums(a: OverlapArgs) -> torch.Tensor:
    """The (N, C, 3) sums Σ p·t, Σ p (or p²), Σ t (or t²) over the positions, in plain torch."""
    x = a.input.to(math_dtype(a.input, a.target))
    p = {0: lambda: torch.softmax(x, 1), 1: lambda: torch.sigmoid(x), 2: lambda: x}[a.activation]()
    t, valid = one_hot(a, x)
    if a.labels:
        p = p * valid.unsqueeze(1)
    power = 2 if a.squared else 1
    inter = torch.minimum(p, t) if a.soft_label and not a.squared else p * t
    return torch.stack([inter.sum(-1), (p**power).sum(-1), (t**power).sum(-1)], -1)


def loss_from_sums(s: torch.Tensor, a: OverlapArgs) -> torch.Tensor:
    """MONAI's Dice / Jaccard / Tversky on the (N, C, 3) sums, then focal power, class weights and the
    reduction over the (sample, class) matrix ((C,) with batch=True)."""
    if not a.include_background:
        s = s[:, 1:]
    if a.batch:
        s = s.sum(0)
    tp, sp, st = s.unbind(-1)
    if a.loss == "dice":
        denominator = 2 * (sp + st - tp) + a.smooth_dr if a.jaccard else sp + st + a.smooth_dr
        f = 1 - (2 * tp + a.smooth_nr) / denominator
    else:
        index = (tp + a.smooth_nr) / (tp + a.alpha * (sp - tp) + a.beta * (st - tp) + a.smooth_dr)
        f = 1 - index
        if a.gamma != 1:  # rounding can leave 1 − TI a hair below 0, where a fractional power is NaN
            f = f.clamp(min=0).pow(a.gamma)
    if a.class_weight is not None:
        f = f * a.class_weight
    if a.reduction == "none":
        return f
    return f.sum() if a.reduction == "sum" else f.sum() / max(f.numel(), 1)


def math_dtype(input, target):
    """The math type: of the input's dtype, promoted with a float target's."""
    if target.dtype.is_floating_point:
        return opmath_dtype(torch.promote_types(input.dtype, target.dtype))
    return opmath_dtype(input.dtype)


LOSS_CODES = {"dice": 0, "tversky": 1}  # codes of csrc/math/overlap_score.h


def sums_op(input, target, activation, squared, ignore_index, keep_probs, soft_label=False):
    """fastloss::overlap_sums in torch ops: (sums, probs), probs the activation (keep_probs) or empty."""
    labels = not target.dtype.is_floating_point
    a = OverlapArgs(
        input,
        target,
        labels,
        activation,
        squared,
        ignore_index,
        "dice",
        True,
        False,
        0.0,
        0.0,
        False,
        None,
        "none",
        0.5,
        0.5,
        1.0,
        soft_label,
    )
    s = sums(a)
    if not keep_probs:
        return s, input.new_empty((0,))
    x = input.to(opmath_dtype(input.dtype)).detach()
    p = {0: lambda: torch.softmax(x, 1), 1: lambda: torch.sigmoid(x), 2: lambda: x}[activation]()
    return s, p.to(input.dtype)


def score_op(
    sums, class_weight, loss, jaccard, smooth_nr, smooth_dr, alpha, beta, gamma, include_background, batch, reduction
):
    """fastloss::overlap_score in torch ops."""
    name = next(k for k, v in LOSS_CODES.items() if v == loss)
    a = OverlapArgs(
        None,
        None,
        False,
        0,
        False,
        None,
        name,
        include_background,
        jaccard,
        smooth_nr,
        smooth_dr,
        batch,
        class_weight,
        next(k for k, v in REDUCTIONS.items() if v == reduction),
        alpha,
        beta,
        gamma,
    )
    return loss_from_sums(sums, a)


def global_sums(s, a: OverlapArgs):
    """The sums the score is computed from: the local ones, or the global batch's over a.process_group."""
    if a.process_group is None:
        return s
    from .. import distributed

    return distributed.global_batch_sums(s, a.process_group)


def _reference_loss(loss, input, target, **options):
    # (dice_loss and tversky_loss below pass every argument by name: **locals())
    a = check_args(loss, input, target, **options)
    return loss_from_sums(global_sums(sums(a), a), a)


def dice_loss(
    input,
    target,
    *,
    activation="softmax",
    include_background=True,
    squared_pred=False,
    jaccard=False,
    smooth_nr=1e-5,
    smooth_dr=1e-5,
    batch=False,
    class_weight=None,
    ignore_index=None,
    reduction="mean",
    soft_label=False,
    process_group=None,
):
    """fastloss.dice_loss in plain torch: the same arguments, the same numbers."""
    return _reference_loss("dice", **locals())


def tversky_loss(
    input,
    target,
    *,
    alpha=0.5,
    beta=0.5,
    gamma=1.0,
    activation="softmax",
    include_background=True,
    smooth_nr=1e-5,
    smooth_dr=1e-5,
    batch=False,
    class_weight=None,
    ignore_index=None,
    reduction="mean",
    soft_label=False,
    process_group=None,
):
    """fastloss.tversky_loss in plain torch: the same arguments, the same numbers."""
    return _reference_loss("tversky", **locals())


__all__ = [
    "dice_loss",
    "tversky_loss",
]
