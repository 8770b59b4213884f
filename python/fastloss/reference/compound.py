"""Dice + cross entropy and Dice + focal (softmax, or MONAI's sigmoid term; formulas:
csrc/math/overlap_ce.h) in plain torch, and their argument checks, which fastloss.compound shares.

Both parts come from one read of the logits: the Dice part from the (N, C, 3) overlap sums
(fastloss.reference.overlap), the other from per-sample sums (N, 2): Σ loss and the "mean" divisor —
Σ w_y over the kept positions for the cross entropy with labels (F.cross_entropy's weighted mean over
the whole batch), the count of positions for float targets, the count of elements summed for the
sigmoid focal term.
"""

from typing import NamedTuple, Optional

import torch

from .._common import check_choice, check_nonnegative, check_number
from . import overlap
from .generalized_dice import score_from_sums

DICE_KINDS = ("dice", "generalized_dice", "tversky")
W_TYPES = ("square", "simple", "uniform")
TERMS = {"softmax": 0, "sigmoid": 1}  # the focal term's codes of csrc/math/overlap_ce.h


class CompoundArgs(NamedTuple):
    dice: overlap.OverlapArgs  # the Dice part's arguments (activation softmax, except with term 1)
    kind: str  # "dice" | "generalized_dice" | "tversky"
    w_type: str  # Generalized Dice's class weights
    ce_weight: Optional[torch.Tensor]  # (C,) in the math type
    gamma: float  # 0: cross entropy; > 0: the softmax focal loss (labels only)
    label_smoothing: float
    lambda_dice: float
    lambda_ce: float
    term: int = 0  # 0: softmax cross entropy / focal; 1: sigmoid focal per element (MONAI's FocalLoss)
    alpha: float = -1.0  # the sigmoid focal term's α (< 0: none)
    first_class: int = 0  # the sigmoid focal term sums the classes [first_class, C)


def check_args(
    input,
    target,
    *,
    dice="dice",
    lambda_dice=1.0,
    lambda_ce=1.0,
    lambda_focal=None,
    ce_weight=None,
    gamma=0.0,
    label_smoothing=0.0,
    include_background=True,
    squared_pred=False,
    jaccard=False,
    smooth_nr=1e-5,
    smooth_dr=1e-5,
    batch=False,
    class_weight=None,
    ignore_index=None,
    reduction="mean",
    tversky_alpha=0.5,
    tversky_beta=0.5,
    tversky_gamma=1.0,
    w_type="square",
    soft_label=False,
    process_group=None,
    focal="softmax",
    alpha=None,
    activation="softmax",
) -> CompoundArgs:
    """The checked options of both losses; lambda_focal is dice_focal_loss's name for lambda_ce."""
    if lambda_focal is not None:
        lambda_ce = lambda_focal
    check_choice("dice", dice, {k: k for k in DICE_KINDS})
    term = check_choice("focal", focal, TERMS)
    if term == 0 and activation != "softmax":
        raise ValueError(
            f"the softmax cross entropy / focal term shares the Dice part's softmax: activation must be "
            f"'softmax', got {activation!r} (focal='sigmoid' takes any activation)"
        )
    if term == 0 and alpha is not None:
        raise ValueError(
            "alpha is the sigmoid focal term's (focal='sigmoid'); the softmax term's class weights are ce_weight"
        )
    check_choice("w_type", w_type, {w: w for w in W_TYPES})
    if reduction not in ("mean", "sum"):
        raise ValueError(
            f"reduction must be 'mean' or 'sum' (the Dice scores and the cross entropy reduce "
            f"differently, so there is no 'none'), got {reduction!r}"
        )
    if dice == "generalized_dice" and (class_weight is not None or squared_pred or jaccard):
        raise ValueError(
            "dice='generalized_dice' weighs the classes itself (w_type): class_weight, squared_pred "
            "and jaccard are for dice='dice'"
        )
    if dice == "tversky" and (squared_pred or jaccard):
        raise ValueError("squared_pred and jaccard are options of dice='dice'")
    a = overlap.check_args(
        "tversky" if dice == "tversky" else "dice",
        input,
        target,
        activation=activation,
        include_background=include_background,
        squared_pred=squared_pred,
        jaccard=jaccard,
        smooth_nr=smooth_nr,
        smooth_dr=smooth_dr,
        batch=batch,
        class_weight=class_weight,
        ignore_index=ignore_index,
        reduction=reduction,
        alpha=tversky_alpha,
        beta=tversky_beta,
        gamma=tversky_gamma,
        soft_label=soft_label,
        process_group=process_group,
    )
    lambda_dice = check_nonnegative("lambda_dice", lambda_dice)
    lambda_ce = check_nonnegative("lambda_ce", lambda_ce)
    gamma = check_nonnegative("gamma", gamma)
    label_smoothing = check_number("label_smoothing", label_smoothing)
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    if term == 0 and gamma > 0 and not a.labels:
        raise ValueError(
            "the focal term (gamma > 0) needs integer label targets: its factor (1 − p_y)^γ is the labelled class's"
        )
    if term == 1:
        if label_smoothing != 0:
            raise ValueError("label_smoothing is the softmax cross entropy's; the sigmoid focal term takes none")
        if alpha is not None:
            alpha = check_number("alpha", alpha)
            if not 0 <= alpha <= 1:
                raise ValueError(f"alpha must be in [0, 1] or None, got {alpha}")
    classes = a.input.shape[1]
    weight = overlap.class_weight_tensor("ce_weight", ce_weight, classes, a.input, a.target, "class")
    return CompoundArgs(
        a,
        dice,
        w_type,
        weight,
        gamma,
        label_smoothing,
        lambda_dice,
        lambda_ce,
        term,
        -1.0 if alpha is None else alpha,
        0 if a.include_background else 1,
    )


def ce_sums(c: CompoundArgs) -> torch.Tensor:
    """(N, 2): per sample Σ over the positions of q^γ·A (math/overlap_ce.h) and the "mean" divisor;
    for the sigmoid focal term, Σ over the elements of the classes [first_class, C) and their count."""
    a = c.dice
    x = a.input.to(overlap.math_dtype(a.input, a.target))
    classes = x.shape[1]
    t, valid = overlap.one_hot(a, x)
    if c.term == 1:
        return _sigmoid_focal_sums(c, x, t, valid)
    lse = torch.logsumexp(x, 1, keepdim=True)
    log_p = x - lse
    w = torch.ones(classes, dtype=x.dtype, device=x.device) if c.ce_weight is None else c.ce_weight
    w = w.view(1, -1, 1)
    u = w * ((1 - c.label_smoothing) * t + c.label_smoothing / classes * valid.unsqueeze(1).to(x.dtype))
    # (u·log p taken as 0 where u is 0: a −inf logit of another class leaves the cross entropy finite)
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    loss = -torch.where(u != 0, u * log_p, zero).sum(1)
    if c.gamma > 0:
        log_py = torch.where(t != 0, t * log_p, zero).sum(1)
        q = (-torch.expm1(log_py)).clamp(min=0)
        loss = torch.where(q > 0, torch.where(q > 0, q, 1).pow(c.gamma), 0) * loss
    norm = (w * t).sum((1, 2)) if a.labels else valid.to(x.dtype).sum(1)
    return torch.stack([loss.sum(1), norm], -1)


def _sigmoid_focal_sums(c: CompoundArgs, x, t, valid):
    from .sigmoid_focal import elementwise

    w = torch.ones(x.shape[1], dtype=x.dtype, device=x.device) if c.ce_weight is None else c.ce_weight
    loss = (elementwise(x, t, c.alpha, c.gamma) * w.view(1, -1, 1))[:, c.first_class :]
    loss = torch.where(valid.unsqueeze(1), loss, torch.zeros((), dtype=x.dtype, device=x.device))
    count = valid.to(x.dtype).sum(1) * (x.shape[1] - c.first_class)
    return torch.stack([loss.sum((1, 2)), count], -1)


def ce_part(ce: torch.Tensor, c: CompoundArgs) -> torch.Tensor:
    """The cross-entropy part from the (N, 2) sums: F.cross_entropy's weighted "mean" (NaN when every
    position is ignored, as torch; 0 for an input without positions, as every fastloss loss), or the
    "sum"."""
    total = ce[:, 0].sum()
    if c.dice.reduction == "sum" or c.dice.input.numel() == 0:
        return total
    return total / ce[:, 1].sum()


def dice_part(sums: torch.Tensor, c: CompoundArgs, score) -> torch.Tensor:
    """The Dice part from the (global) sums: score(sums, a) for Dice/Tversky, Generalized Dice here."""
    if c.kind != "generalized_dice":
        return score(sums, c.dice)
    return score_from_sums(sums, c.dice, c.w_type)


def combine(c: CompoundArgs, dice_value, ce_value):
    """λ_dice·Dice + λ_ce·CE, in the math type (float32 for half inputs, as dice_loss)."""
    return c.lambda_dice * dice_value + c.lambda_ce * ce_value


def _reference_loss(input, target, **options):
    # (dice_ce_loss and dice_focal_loss below pass every argument by name: **locals())
    c = check_args(input, target, **options)
    sums = overlap.global_sums(overlap.sums(c.dice), c.dice)
    ce = overlap.global_sums(ce_sums(c), c.dice)
    return combine(c, dice_part(sums, c, overlap.loss_from_sums), ce_part(ce, c))


def dice_ce_loss(
    input,
    target,
    *,
    lambda_dice=1.0,
    lambda_ce=1.0,
    dice="dice",
    ce_weight=None,
    label_smoothing=0.0,
    include_background=True,
    squared_pred=False,
    jaccard=False,
    smooth_nr=1e-5,
    smooth_dr=1e-5,
    batch=False,
    class_weight=None,
    ignore_index=None,
    reduction="mean",
    tversky_alpha=0.5,
    tversky_beta=0.5,
    tversky_gamma=1.0,
    w_type="square",
    soft_label=False,
    process_group=None,
):
    """fastloss.dice_ce_loss in plain torch: the same arguments, the same numbers."""
    return _reference_loss(**locals(), gamma=0.0)


def dice_focal_loss(
    input,
    target,
    *,
    lambda_dice=1.0,
    lambda_focal=1.0,
    gamma=2.0,
    dice="dice",
    ce_weight=None,
    label_smoothing=0.0,
    include_background=True,
    squared_pred=False,
    jaccard=False,
    smooth_nr=1e-5,
    smooth_dr=1e-5,
    batch=False,
    class_weight=None,
    ignore_index=None,
    reduction="mean",
    tversky_alpha=0.5,
    tversky_beta=0.5,
    tversky_gamma=1.0,
    w_type="square",
    soft_label=False,
    process_group=None,
    focal="softmax",
    alpha=None,
    activation="softmax",
):
    """fastloss.dice_focal_loss in plain torch: the same arguments, the same numbers."""
    return _reference_loss(**locals())


__all__ = [
    "dice_ce_loss",
    "dice_focal_loss",
]
