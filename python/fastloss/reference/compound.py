"""Dice + cross entropy and Dice + focal (softmax, or MONAI's sigmoid term; formulas:
csrc/math/overlap_ce.h) in plain torch, their argument checks, and the public signatures, defined
once here for fastloss and fastloss.reference.

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
    from ..generalized_dice import score_from_sums

    return score_from_sums(sums, c.dice, c.w_type)


def combine(c: CompoundArgs, dice_value, ce_value):
    """λ_dice·Dice + λ_ce·CE, in the math type (float32 for half inputs, as dice_loss)."""
    return c.lambda_dice * dice_value + c.lambda_ce * ce_value


def define(implementation):
    """dice_ce_loss and dice_focal_loss over implementation(input, target, **options)."""

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
        """λ_dice · Dice + λ_ce · cross entropy, from one softmax pass over the logits.

        The Dice part is fastloss.dice_loss (dice="dice"), fastloss.generalized_dice_loss
        ("generalized_dice", w_type) or fastloss.tversky_loss ("tversky", tversky_alpha/beta/gamma)
        with activation="softmax" and the Dice options below. The cross-entropy part is
        F.cross_entropy(input, target, weight=ce_weight, ignore_index=ignore_index,
        label_smoothing=label_smoothing, reduction=reduction): labels (hard) or a float target of the
        input's shape (class probabilities; "mean" divides by N·positions, as torch).
        """
        return implementation(
            input,
            target,
            lambda_dice=lambda_dice,
            lambda_ce=lambda_ce,
            dice=dice,
            ce_weight=ce_weight,
            gamma=0.0,
            label_smoothing=label_smoothing,
            include_background=include_background,
            squared_pred=squared_pred,
            jaccard=jaccard,
            smooth_nr=smooth_nr,
            smooth_dr=smooth_dr,
            batch=batch,
            class_weight=class_weight,
            ignore_index=ignore_index,
            reduction=reduction,
            tversky_alpha=tversky_alpha,
            tversky_beta=tversky_beta,
            tversky_gamma=tversky_gamma,
            w_type=w_type,
            soft_label=soft_label,
            process_group=process_group,
        )

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
        """λ_dice · Dice + λ_focal · focal loss, from one pass over the logits.

        focal="softmax" (default): fastloss.softmax_focal_loss(input, target, alpha=ce_weight,
        gamma=gamma, ignore_index=ignore_index, label_smoothing=label_smoothing, reduction=reduction):
        (1 − p_y)^γ times the (weighted, smoothed) cross entropy of each position, from the Dice
        part's softmax; "mean" divides by Σ w_y. Integer label targets (gamma=0 also takes float
        targets: it is dice_ce_loss).
        focal="sigmoid": MONAI's FocalLoss term, per element of the classes scored
        (include_background=False leaves class 0 out), α_t·(1 − p_t)^γ·BCEWithLogits(x, t) with
        p = σ(x), alpha α (None: no α_t), ce_weight a weight per class; "mean" over those elements,
        "sum" their sum. The Dice part then takes any `activation` ("softmax", "sigmoid", "none").
        The Dice part and its options: as dice_ce_loss.
        """
        return implementation(
            input,
            target,
            lambda_dice=lambda_dice,
            lambda_ce=lambda_focal,
            dice=dice,
            ce_weight=ce_weight,
            gamma=gamma,
            label_smoothing=label_smoothing,
            include_background=include_background,
            squared_pred=squared_pred,
            jaccard=jaccard,
            smooth_nr=smooth_nr,
            smooth_dr=smooth_dr,
            batch=batch,
            class_weight=class_weight,
            ignore_index=ignore_index,
            reduction=reduction,
            tversky_alpha=tversky_alpha,
            tversky_beta=tversky_beta,
            tversky_gamma=tversky_gamma,
            w_type=w_type,
            soft_label=soft_label,
            process_group=process_group,
            focal=focal,
            alpha=alpha,
            activation=activation,
        )

    for f in (dice_ce_loss, dice_focal_loss):
        f.__doc__ += COMMON_DOC
    return {"dice_ce_loss": dice_ce_loss, "dice_focal_loss": dice_focal_loss}


COMMON_DOC = """
        input: (N, C, *spatial) logits, C >= 2, float16/bfloat16/float32/float64.
        target: integer labels (N, *spatial) or (N, 1, *spatial), or a float target of the input's
            shape (one-hot or soft; no ignore_index).
        lambda_dice, lambda_ce / lambda_focal: the parts' weights (>= 0).
        ce_weight: None, a number or one weight per class (all C): the cross entropy's class weights.
        label_smoothing: ε in [0, 1], F.cross_entropy's.
        ignore_index: (labels) positions with this label are left out of both parts.
        include_background, squared_pred, jaccard, smooth_nr, smooth_dr, batch, class_weight,
            soft_label: the Dice part's, as fastloss.dice_loss (class_weight: one per scored class).
        process_group: with batch=True, the Dice sums and the cross-entropy sums are all-reduced over
            this torch.distributed group: every rank's loss is the global batch's, and after DDP's
            gradient averaging the gradients are a single process's on the concatenated batch.
        reduction: "mean" | "sum" for both parts (the Dice scores' mean over (sample, class), the
            cross entropy's weighted mean over positions).
        One kernel pass computes the softmax once and yields the Dice sums and the cross-entropy
        sums; the backward is one in-place pass over the softmax buffer (memory: the gradient).
"""


def _reference(input, target, **options):
    c = check_args(input, target, **options)
    sums = overlap.global_sums(overlap.sums(c.dice), c.dice)
    ce = overlap.global_sums(ce_sums(c), c.dice)
    return combine(c, dice_part(sums, c, overlap.loss_from_sums), ce_part(ce, c))


FUNCTIONS = define(_reference)
globals().update(FUNCTIONS)
__all__ = list(FUNCTIONS)
