"""Varifocal (Zhang et al. 2021, arXiv 2008.13367) and Quality Focal (Li et al. 2020, arXiv 2006.04388)
losses in plain torch, and their argument checks. With p = σ(x), ce = BCEWithLogits(x, t):

    varifocal      loss = [m·(iou_weighted ? t : 1) + (1 − m)·α·p^γ] · ce
    quality focal  loss = |t − p|^β · ce

m is the positive indicator: t > 0 (negative_mask="score", mmdet's VarifocalLoss), or the labelled
class (negative_mask="label", RT-DETR / D-FINE / ultralytics), given by (labels, scores) targets or a
dense `positive` mask. Both run on fastloss::sigmoid_focal_loss's kernels (its `variant`); the
formulas live in reference/sigmoid_focal.py's compute, beside the focal one.
"""

from .._common import check_bool, check_nonnegative, check_range, check_same_device, check_tensor
from . import sigmoid_focal as _focal
from .sigmoid_focal import DETACH_WEIGHT, IOU_WEIGHTED, LABEL_MASK, QUALITY_FOCAL, VARIFOCAL

NEGATIVE_MASKS = ("score", "label")


def _check_dense_scores(a):
    """A dense quality target must lie in [0, 1]."""
    if not a.labels:
        check_range("target", a.targets, 0, 1)


def varifocal_args(
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
):
    if negative_mask not in NEGATIVE_MASKS:
        raise ValueError(f"negative_mask must be 'score' or 'label', got {negative_mask!r}")
    iou_weighted = check_bool("iou_weighted", iou_weighted)
    detach_weight = check_bool("detach_weight", detach_weight)
    check_nonnegative("alpha", alpha)
    a = _focal.check_args(
        pred, target, alpha, gamma, reduction, weight, avg_factor, ignore_index, per_layer, focal=False
    )
    _check_dense_scores(a)
    variant = (
        a.variant
        | VARIFOCAL
        | (IOU_WEIGHTED if iou_weighted else 0)
        | (LABEL_MASK if negative_mask == "label" else 0)
        | (DETACH_WEIGHT if detach_weight else 0)
    )
    if positive is not None:
        check_tensor("positive", positive)
        check_same_device("positive", positive, "pred", pred)
        if negative_mask != "label" or a.labels:
            raise ValueError(
                "positive (a dense mask of the labelled classes) goes with negative_mask='label' and a "
                "dense target; (labels, scores) targets carry their labels"
            )
        if positive.shape != pred.shape:
            raise ValueError(f"positive must have pred's shape {tuple(pred.shape)}, got {tuple(positive.shape)}")
        if positive.requires_grad:
            raise ValueError("positive requires grad, but the positive mask takes no gradient")
    elif negative_mask == "label" and not a.labels:
        raise ValueError(
            "negative_mask='label' needs the labels: a (labels, scores) target, or a dense target with "
            "positive= its 0/1 mask of labelled classes"
        )
    return a._replace(variant=variant, positive=positive)


def quality_focal_args(pred, target, beta, reduction, weight, avg_factor, ignore_index, per_layer):
    a = _focal.check_args(pred, target, 1.0, beta, reduction, weight, avg_factor, ignore_index, per_layer)
    _check_dense_scores(a)
    return a._replace(variant=a.variant | QUALITY_FOCAL)


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
    """Reference of fastloss.varifocal_loss (same signature and semantics)."""
    return _focal.compute(
        varifocal_args(
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
    )


def quality_focal_loss(
    pred, target, *, beta=2.0, reduction="mean", weight=None, avg_factor=None, ignore_index=None, per_layer=False
):
    """Reference of fastloss.quality_focal_loss (same signature and semantics)."""
    return _focal.compute(
        quality_focal_args(pred, target, beta, reduction, weight, avg_factor, ignore_index, per_layer)
    )
