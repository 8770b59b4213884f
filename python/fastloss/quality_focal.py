"""fastloss.varifocal_loss and fastloss.quality_focal_loss: IoU-aware classification losses.

Varifocal (Zhang et al., VarifocalNet, arXiv 2008.13367) and Quality Focal (Li et al., Generalized
Focal Loss, arXiv 2006.04388) are the `variant`s of fastloss::sigmoid_focal_loss (formulas:
csrc/math/quality_focal.h), so they share its kernels, fake kernel, autograd and batching rule, and
take its target forms: a dense float target, or sparse (labels, scores) that never builds the dense
one_hot(label)·score tensor.
"""

from . import sigmoid_focal as _sigmoid_focal
from .reference import quality_focal as _reference

_TARGETS = """target: a float tensor of pred's shape (quality scores in [0, 1]; no gradient), or a tuple
            (labels, scores): integer labels of shape pred.shape[:-1] (a value outside [0, C) is
            background) and a float score in [0, 1] per label — class `label` has target `score`,
            every other class 0 — which never builds the dense target."""

_COMMON = """reduction: "none" (the elementwise (..., C) loss) | "mean" (over the elements not ignored) | "sum".
        weight: optional, broadcastable to pred's shape; shape pred.shape[:-1] is one weight per row
            (anchor / query), as in mmdet. No gradient.
        avg_factor: with "mean", the loss is sum / avg_factor (mmdet's convention; RT-DETR's and
            D-FINE's number of boxes); a number or a tensor (no host sync).
        ignore_index: None (default: every label is a class or background), or a label whose rows
            contribute nothing and are left out of "mean"'s count.
        per_layer: pred of shape (L, ..., C) — e.g. the decoder layers of a DETR-family model, with
            per-layer labels and scores (L, ...): a reduced loss is one value per layer, shape (L,), in
            one kernel launch (avg_factor: a number or one per layer); .sum() gives the summed loss.

    pred is float16/bfloat16/float32/float64 logits of shape (..., C); the math runs in float32 (float64
    for float64), so fp16/bf16 logits need no autocast guard. Logits of ±1e4 give finite losses and
    gradients, and scores of exactly 0 or 1 are exact. Memory: nothing of pred's size is kept between
    forward and backward; the backward writes only the gradient."""


def varifocal_loss(
    pred,
    target,
    *,
    alpha=0.75,
    gamma=2.0,
    iou_weighted=True,
    negative_mask="score",
    detach_weight=False,
    reduction="mean",
    weight=None,
    avg_factor=None,
    positive=None,
    ignore_index=None,
    per_layer=False,
):
    a = _reference.varifocal_args(
        pred,
        target,
        alpha,
        gamma,
        iou_weighted,
        negative_mask,
        detach_weight,
        reduction,
        weight,
        avg_factor,
        positive,
        ignore_index,
        per_layer,
    )
    return _sigmoid_focal.run(a)


varifocal_loss.__doc__ = f"""Varifocal loss, VFNet's definition (arXiv 2008.13367), with p = σ(pred):

        loss = [m·(iou_weighted ? t : 1) + (1 − m)·α·p^γ] · BCEWithLogits(pred, t)

    positives (m = 1) are weighted by their target score q, negatives by α·p^γ.

    Args:
        pred: logits of shape (..., C).
        {_TARGETS}
        alpha, gamma: the negatives' weight α·p^γ (alpha >= 0, gamma >= 0).
        iou_weighted: positives weighted by their target (True) or by 1.
        negative_mask: "score" — a class is positive where its target is > 0 (mmdet's VarifocalLoss:
            a labelled class with score 0 counts as a negative); "label" — the labelled classes are
            the positives, whatever their score (RT-DETR / D-FINE / ultralytics: w = α·p^γ·(1 −
            one_hot) + score·one_hot). "label" needs (labels, scores) targets or `positive`.
        detach_weight: the weight α·p^γ takes no gradient (RT-DETR / D-FINE detach it); mmdet and
            ultralytics differentiate it (False).
        positive: with negative_mask="label" and a dense target, the mask of labelled classes (pred's
            shape; ultralytics' one-hot `label`): w = α·p^γ·(1 − m) + (iou_weighted ? t : 1)·m.
        {_COMMON}
    """


def quality_focal_loss(
    pred, target, *, beta=2.0, reduction="mean", weight=None, avg_factor=None, ignore_index=None, per_layer=False
):
    a = _reference.quality_focal_args(pred, target, beta, reduction, weight, avg_factor, ignore_index, per_layer)
    return _sigmoid_focal.run(a)


quality_focal_loss.__doc__ = f"""Quality Focal Loss, GFL's definition (arXiv 2006.04388) with mmdet's numbers:

        loss = |t − σ(pred)|^β · BCEWithLogits(pred, t)

    the modulating factor not detached (as mmdet). mmdet's QualityFocalLoss sums over the classes
    before reducing; fastloss.mmdet.QualityFocalLoss does that, this function reduces the elements.

    Args:
        pred: logits of shape (..., C).
        {_TARGETS}
        beta: the modulating exponent β >= 0 (need not be an integer; β < 1 keeps a finite gradient).
        {_COMMON}
    """
