"""fastloss.varifocal_loss and fastloss.quality_focal_loss: IoU-aware classification losses.

Varifocal (Zhang et al., VarifocalNet, arXiv 2008.13367) and Quality Focal (Li et al., Generalized
Focal Loss, arXiv 2006.04388) are the `variant`s of fastloss::sigmoid_focal_loss (formulas:
csrc/math/quality_focal.h), so they share its kernels, fake kernel, autograd and batching rule, and
take its target forms: a dense float target, or sparse (labels, scores) that never builds the dense
one_hot(label)·score tensor.
"""

from . import sigmoid_focal as _sigmoid_focal
import functools

import torch

from ._module import Loss
from ._inputs import logits, sparse_targets, with_options
from ._spec import DTYPE_PAIRS, FLOATS, Case, OpSpec, Plan, declare
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


# -------------------------------------------------------------------------------- the nn module


class VarifocalLoss(Loss):
    """fastloss.varifocal_loss as a module.

    forward(pred, target, weight=None, avg_factor=None, positive=None): target is a dense quality
    target of pred's shape or a (labels, scores) tuple. RT-DETR / D-FINE:
    VarifocalLoss(negative_mask="label", detach_weight=True) with avg_factor = the number of boxes.
    """

    def __init__(
        self,
        alpha=0.75,
        gamma=2.0,
        iou_weighted=True,
        negative_mask="score",
        detach_weight=False,
        reduction="mean",
        *,
        ignore_index=None,
        per_layer=False,
        **deprecated,
    ):
        super().__init__(reduction, **deprecated)
        self.alpha, self.gamma, self.iou_weighted = alpha, gamma, iou_weighted
        self.negative_mask, self.detach_weight = negative_mask, detach_weight
        self.ignore_index, self.per_layer = ignore_index, per_layer

    def forward(self, pred, target, weight=None, avg_factor=None, positive=None, **deprecated):
        loss = varifocal_loss(
            pred,
            target,
            alpha=self.alpha,
            gamma=self.gamma,
            iou_weighted=self.iou_weighted,
            negative_mask=self.negative_mask,
            detach_weight=self.detach_weight,
            reduction=self.resolve_reduction(deprecated),
            weight=weight,
            avg_factor=avg_factor,
            positive=positive,
            ignore_index=self.ignore_index,
            per_layer=self.per_layer,
        )
        return self.scaled(loss)

    def extra_repr(self):
        return (
            f"alpha={self.alpha}, gamma={self.gamma}, iou_weighted={self.iou_weighted}, "
            f"negative_mask={self.negative_mask!r}, detach_weight={self.detach_weight}, "
            f"ignore_index={self.ignore_index}, per_layer={self.per_layer}, " + super().extra_repr()
        )


class QualityFocalLoss(Loss):
    """fastloss.quality_focal_loss as a module: the elementwise loss, reduced (mmdet's per-row sums
    are fastloss.mmdet.QualityFocalLoss's). forward(pred, target, weight=None, avg_factor=None)."""

    def __init__(self, beta=2.0, reduction="mean", *, ignore_index=None, per_layer=False, **deprecated):
        super().__init__(reduction, **deprecated)
        self.beta, self.ignore_index, self.per_layer = beta, ignore_index, per_layer

    def forward(self, pred, target, weight=None, avg_factor=None, **deprecated):
        loss = quality_focal_loss(
            pred,
            target,
            beta=self.beta,
            reduction=self.resolve_reduction(deprecated),
            weight=weight,
            avg_factor=avg_factor,
            ignore_index=self.ignore_index,
            per_layer=self.per_layer,
        )
        return self.scaled(loss)

    def extra_repr(self):
        return (
            f"beta={self.beta}, ignore_index={self.ignore_index}, per_layer={self.per_layer}, " + super().extra_repr()
        )


# ------------------------------------------------------------------------------------ the record
# (the ops are fastloss::sigmoid_focal_loss's: no registration of their own)


def _dense_case(n, dtype, device, g):
    """Dense quality targets in [0, 1] with zeros (the negatives of mmdet's varifocal)."""
    t = torch.rand(n, 5, generator=g, dtype=torch.float64)
    t = t * (torch.rand(n, 5, generator=g, dtype=torch.float64) > 0.6)
    return (logits(n, 5, dtype, device, g), t.to(device=device, dtype=dtype)), dict(reduction="sum")


def _sparse_case(n, dtype, device, g):
    """(labels, scores) targets with background rows (label 5 and -1) and a zero score."""
    labels = torch.randint(-1, 6, (n,), generator=g)
    scores = torch.rand(n, generator=g, dtype=torch.float64)
    scores[::4] = 0
    return (logits(n, 5, dtype, device, g), labels.to(device), scores.to(device=device, dtype=dtype)), {}


def _positive_case(n, dtype, device, g):
    """A dense target with ultralytics' one-hot `label` mask (scores also off the mask)."""
    (x, t), _ = _dense_case(n, dtype, device, g)
    positive = (torch.rand(n, 5, generator=g) > 0.7).to(device=device, dtype=torch.int64)
    return (x, t, positive), dict(negative_mask="label", reduction="mean")


def _with_positive(fn):
    def loss(inputs, target, positive, **kwargs):
        return fn(inputs, target, positive=positive, **kwargs)

    return loss


def _parity_call(case, g, on, seed):
    """VFL or QFL on (rows, C) logits (or (L, rows, C) per layer): sparse (labels, scores) or dense
    targets."""
    dtype, rows, classes, layers = case["dtype"], case["rows"], case["classes"], case["layers"]
    lead = (layers, rows) if layers else (rows,)
    x = on(torch.randn(*lead, classes, generator=g, dtype=torch.float64) * 3, dtype)
    labels = torch.randint(-1, classes + 1, lead, generator=g)
    scores = torch.rand(lead, generator=g, dtype=torch.float64)
    scores.view(-1)[::6] = 0
    scores.view(-1)[1::6] = 1
    if case["target"] == "sparse":
        target = (on(labels), on(scores, dtype))
    else:
        target = on((labels.unsqueeze(-1) == torch.arange(classes)).double() * scores.unsqueeze(-1), dtype)
    kwargs = dict(reduction=case["reduction"])
    if case["weight"] == "full":
        kwargs["weight"] = on(torch.rand(*lead, classes, generator=g), dtype)
    if layers and case["reduction"] != "none":
        kwargs["per_layer"] = True
    if case["loss"] == "varifocal":
        if case["target"] == "dense" and case["negative_mask"] == "label":  # (the labelled classes, as a mask)
            kwargs["positive"] = on((labels.unsqueeze(-1) == torch.arange(classes)).double(), dtype)
        return functools.partial(varifocal_loss, negative_mask=case["negative_mask"]), [x, target], kwargs
    return functools.partial(quality_focal_loss, beta=1.5), [x, target], kwargs


def _dtype_sweep(small):
    return [
        small(dtype=a, dtype2=b, target=t, reduction=r)
        for a, b in DTYPE_PAIRS
        for t in ("sparse", "dense")
        for r in ("none", "mean")
    ]


SPEC = declare(
    OpSpec(
        "quality_focal",
        ops=(),
        reference=_reference,
        modules=(VarifocalLoss, QualityFocalLoss),
        cases=(
            Case("varifocal dense", varifocal_loss, _reference.varifocal_loss, with_options(_dense_case, gamma=1.5)),
            Case(
                "varifocal sparse",
                sparse_targets(varifocal_loss),
                sparse_targets(_reference.varifocal_loss),
                with_options(_sparse_case, negative_mask="label", detach_weight=True),
                frozen_factor=True,
            ),
            Case(
                "varifocal positive",
                _with_positive(varifocal_loss),
                _with_positive(_reference.varifocal_loss),
                _positive_case,
            ),
            Case("quality_focal dense", quality_focal_loss, _reference.quality_focal_loss, _dense_case),
            Case(
                "quality_focal sparse",
                sparse_targets(quality_focal_loss),
                sparse_targets(_reference.quality_focal_loss),
                with_options(_sparse_case, beta=1.5, reduction="mean"),
            ),
        ),
        plan=Plan(
            factors=dict(
                dtype=FLOATS,
                loss=["varifocal", "quality_focal"],
                rows=[1, 33, 1025, 20000],
                classes=[1, 4, 80],
                target=["sparse", "dense"],
                reduction=["none", "mean", "sum"],
                negative_mask=["score", "label"],
                layers=[0, 2],
                weight=[None, "full"],
            ),
            call=_parity_call,
            elements=lambda case: max(case["layers"], 1) * case["rows"] * case["classes"],
            shrink=("rows",),
            small=dict(rows=257, classes=4),
            mid=dict(rows=70001, classes=80),
            large=dict(rows=400_000, classes=80),
            empty=(dict(rows=0),),
            sweep=_dtype_sweep,
            elementwise=True,
        ),
        bench="quality_focal",
    )
)
