"""One small call of every kernel-backed public loss, for the tests that hold every op to the same
guarantees (tests/test_guarantees.py). A new loss adds one line to CASES.

A case makes (tensors, kwargs) for fn(*tensors, **kwargs): tensors[0] is the differentiable input
(logits, predicted boxes); `n` scales the leading size so tests can change shapes.
"""

import dataclasses
from typing import Callable

import torch

import fastloss
from fastloss import reference
from helpers import random_boxes


@dataclasses.dataclass(frozen=True)
class OpCase:
    name: str
    fn: Callable
    ref: Callable
    make: Callable  # make(n, dtype, device, generator) -> (tensors, kwargs)
    # the derivative of the loss is the kernel's only with a factor held constant (CIoU's α,
    # Focal-EIoU's IoU^γ): gradgradcheck against finite differences does not apply
    frozen_factor: bool = False
    unreduced: bool = True  # takes reduction="none" (the compound losses have no unreduced form)

    def __repr__(self):
        return self.name


def _logits(n, classes, dtype, device, g):
    return (torch.randn(n, classes, generator=g, dtype=torch.float64) * 3).to(device=device, dtype=dtype)


def sigmoid_labels(n, dtype, device, g):
    labels = torch.randint(-1, 6, (n,), generator=g)
    labels[::4] = -100
    return (_logits(n, 5, dtype, device, g), labels.to(device)), dict(reduction="mean", gamma=1.5)


def sigmoid_soft(n, dtype, device, g):
    t = torch.rand(n, 5, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)
    return (_logits(n, 5, dtype, device, g), t), dict(reduction="sum", alpha=0.3)


def sigmoid_sparse(n, dtype, device, g):
    """(labels, scores) targets: a label and a quality score per row (background: label 5)."""
    labels = torch.randint(0, 6, (n,), generator=g)
    labels[::5] = -100
    scores = torch.rand(n, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)
    return (_logits(n, 5, dtype, device, g), labels.to(device), scores), dict(reduction="sum", gamma=1.5)


def _sparse(fn):
    def loss(inputs, labels, scores, **kwargs):
        return fn(inputs, (labels, scores), **kwargs)

    return loss


def quality_dense(n, dtype, device, g):
    """Dense quality targets in [0, 1] with zeros (the negatives of mmdet's varifocal)."""
    t = torch.rand(n, 5, generator=g, dtype=torch.float64)
    t = t * (torch.rand(n, 5, generator=g, dtype=torch.float64) > 0.6)
    return (_logits(n, 5, dtype, device, g), t.to(device=device, dtype=dtype)), dict(reduction="sum")


def quality_sparse(n, dtype, device, g):
    """(labels, scores) targets with background rows (label 5 and -1) and a zero score."""
    labels = torch.randint(-1, 6, (n,), generator=g)
    scores = torch.rand(n, generator=g, dtype=torch.float64)
    scores[::4] = 0
    return (_logits(n, 5, dtype, device, g), labels.to(device), scores.to(device=device, dtype=dtype)), {}


def quality_positive(n, dtype, device, g):
    """A dense target with ultralytics' one-hot `label` mask (scores also off the mask)."""
    (x, t), _ = quality_dense(n, dtype, device, g)
    positive = (torch.rand(n, 5, generator=g) > 0.7).to(device=device, dtype=torch.int64)
    return (x, t, positive), dict(negative_mask="label", reduction="mean")


def _positive(fn):
    def loss(inputs, target, positive, **kwargs):
        return fn(inputs, target, positive=positive, **kwargs)

    return loss


def distribution(n, dtype, device, g):
    """17 bins (mmdet's reg_max = 16), targets in [0, 16] with both ends."""
    t = torch.rand(n, generator=g, dtype=torch.float64) * 16
    t[::5] = 16
    t[1::5] = 0
    x = (torch.randn(n, 17, generator=g, dtype=torch.float64) * 2).to(device=device, dtype=dtype)
    return (x, t.to(device=device, dtype=dtype)), dict(reduction="sum")


def softmax_rows(n, dtype, device, g):
    labels = torch.randint(0, 5, (n,), generator=g)
    labels[::5] = -100
    return (_logits(n, 5, dtype, device, g), labels.to(device)), dict(gamma=2.0, label_smoothing=0.1)


def softmax_spatial(n, dtype, device, g):
    x = (torch.randn(2, 4, n, generator=g, dtype=torch.float64) * 2).to(device=device, dtype=dtype)
    return (x, torch.randint(0, 4, (2, n), generator=g).to(device)), dict(gamma=0.0, reduction="sum")


def boxes(n, dtype, device, g):
    target = random_boxes(n, generator=g)
    pred = random_boxes(n, generator=g, near=target)
    return (pred.to(device=device, dtype=dtype), target.to(device=device, dtype=dtype)), dict(reduction="mean")


def box_sets(n, dtype, device, g):
    """boxes1 (n, 4) and boxes2 (n + 3, 4) for the pairwise metrics (the SIMD lanes run along boxes2)."""
    return (
        random_boxes(n, generator=g).to(device=device, dtype=dtype),
        random_boxes(n + 3, generator=g).to(device=device, dtype=dtype),
    ), {}


def _matrix(kind, fused, convention="torchvision"):
    """The pairwise metric matrix of a kind as a "loss" (reduced by the case's reduction), fused or reference."""
    from fastloss._common import REDUCTIONS, reduce_unreduced
    from fastloss.box_matrix import pairwise
    from fastloss.reference import box_matrix as ref

    def loss(boxes1, boxes2, reduction="mean"):
        if fused:
            matrix = pairwise(boxes1, boxes2, kind, eps=1e-6, convention=convention)
        else:
            matrix = ref.box_iou_matrix(
                boxes1[None], boxes2[None], ref.KINDS[kind], 0, 1e-6, ref.CONVENTIONS[convention], False, 0
            )[0]
        return reduce_unreduced(matrix, REDUCTIONS[reduction], None)

    return loss


def _matrix_case(kind, convention="torchvision"):
    name = "bbox_overlaps " + kind if convention == "mmdet" else "box_iou_matrix " + kind
    return OpCase(
        name, _matrix(kind, True, convention), _matrix(kind, False, convention), box_sets, frozen_factor=kind == "ciou"
    )


def overlap_labels(n, dtype, device, g):
    x = (torch.randn(2, 3, n, generator=g, dtype=torch.float64) * 2).to(device=device, dtype=dtype)
    return (x, torch.randint(0, 3, (2, n), generator=g).to(device)), dict(activation="softmax")


def overlap_soft(n, dtype, device, g):
    x = (torch.randn(2, 3, n, generator=g, dtype=torch.float64) * 2).to(device=device, dtype=dtype)
    t = torch.rand(2, 3, n, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)
    return (x, t), dict(activation="sigmoid", reduction="sum")


def compound_labels(n, dtype, device, g):
    """overlap_labels for the compound losses (always softmax: no activation argument)."""
    (x, y), _ = overlap_labels(n, dtype, device, g)
    return (x, y), {}


def compound_soft(n, dtype, device, g):
    (x, t), _ = overlap_soft(n, dtype, device, g)
    return (x, t / t.sum(1, keepdim=True)), {}  # class probabilities


def _with(make, **extra):
    def made(n, dtype, device, g):
        tensors, kwargs = make(n, dtype, device, g)
        return tensors, {**kwargs, **extra}

    return made


def _convention(kind, convention, fused, **params):
    """A box kind under a face's eps convention (fastloss.mmdet, fastloss.ultralytics), fused or reference."""
    from fastloss import box_iou_loss as box_iou
    from fastloss.reference import box_iou as box_iou_reference

    def ref(*args, **kwargs):
        return box_iou_reference.compute(box_iou_reference.check_args(*args, **kwargs))

    implementation = box_iou._fused if fused else ref

    def loss(pred, target, reduction="mean"):
        return implementation(kind, pred, target, reduction, 1e-6, None, None, "xyxy", convention=convention, **params)

    return loss


def _bounded_iou(fused):
    """mmdet's BoundedIoU: its four components (one kernel pass each) as the (n, 4) loss."""
    components = [_convention("bounded_iou", "mmdet", fused, mode=m, lambd=0.2) for m in ("dx", "dy", "dw", "dh")]

    def loss(pred, target, reduction="mean"):
        stacked = torch.stack([c(pred, target, "none") for c in components], -1)
        return {"none": stacked, "sum": stacked.sum(), "mean": stacked.sum() / max(stacked.numel(), 1)}[reduction]

    return loss


def _face_case(name, kind, convention, **params):
    return OpCase(
        name,
        _convention(kind, convention, True, **params),
        _convention(kind, convention, False, **params),
        boxes,
        frozen_factor=kind == "ciou",
    )


CASES = [
    OpCase("sigmoid_focal labels", fastloss.sigmoid_focal_loss, reference.sigmoid_focal_loss, sigmoid_labels),
    OpCase("sigmoid_focal soft", fastloss.sigmoid_focal_loss, reference.sigmoid_focal_loss, sigmoid_soft),
    OpCase(
        "sigmoid_focal sparse",
        _sparse(fastloss.sigmoid_focal_loss),
        _sparse(reference.sigmoid_focal_loss),
        sigmoid_sparse,
    ),
    OpCase("varifocal dense", fastloss.varifocal_loss, reference.varifocal_loss, _with(quality_dense, gamma=1.5)),
    OpCase(
        "varifocal sparse",
        _sparse(fastloss.varifocal_loss),
        _sparse(reference.varifocal_loss),
        _with(quality_sparse, negative_mask="label", detach_weight=True),
        frozen_factor=True,
    ),
    OpCase(
        "varifocal positive", _positive(fastloss.varifocal_loss), _positive(reference.varifocal_loss), quality_positive
    ),
    OpCase("quality_focal dense", fastloss.quality_focal_loss, reference.quality_focal_loss, quality_dense),
    OpCase(
        "quality_focal sparse",
        _sparse(fastloss.quality_focal_loss),
        _sparse(reference.quality_focal_loss),
        _with(quality_sparse, beta=1.5, reduction="mean"),
    ),
    OpCase("distribution_focal", fastloss.distribution_focal_loss, reference.distribution_focal_loss, distribution),
    OpCase(
        "distribution_focal ultralytics",
        fastloss.distribution_focal_loss,
        reference.distribution_focal_loss,
        _with(distribution, target_max=15.99, reduction="mean"),
    ),
    OpCase("softmax_focal rows", fastloss.softmax_focal_loss, reference.softmax_focal_loss, softmax_rows),
    OpCase("softmax_focal spatial", fastloss.softmax_focal_loss, reference.softmax_focal_loss, softmax_spatial),
    OpCase("iou", fastloss.iou_loss, reference.iou_loss, _with(boxes, mode="log")),
    OpCase("giou", fastloss.giou_loss, reference.giou_loss, boxes),
    OpCase("diou", fastloss.diou_loss, reference.diou_loss, boxes),
    OpCase("ciou", fastloss.ciou_loss, reference.ciou_loss, boxes, frozen_factor=True),
    OpCase("eiou", fastloss.eiou_loss, reference.eiou_loss, boxes),
    OpCase("focal_eiou", fastloss.focal_eiou_loss, reference.focal_eiou_loss, boxes, frozen_factor=True),
    OpCase("cdiou", fastloss.cdiou_loss, reference.cdiou_loss, boxes),
    OpCase("dice labels", fastloss.dice_loss, reference.dice_loss, _with(overlap_labels, squared_pred=True)),
    OpCase("dice soft", fastloss.dice_loss, reference.dice_loss, _with(overlap_soft, batch=True)),
    OpCase(
        "tversky soft_label",
        fastloss.tversky_loss,
        reference.tversky_loss,
        _with(overlap_soft, soft_label=True, alpha=0.3, beta=0.7),
    ),
    OpCase(
        "tversky labels",
        fastloss.tversky_loss,
        reference.tversky_loss,
        _with(overlap_labels, alpha=0.3, beta=0.7, gamma=1.5, class_weight=[1.0, 2.0, 0.5]),
    ),
    OpCase(
        "dice_ce labels",
        fastloss.dice_ce_loss,
        reference.dice_ce_loss,
        _with(compound_labels, ce_weight=[1.0, 2.0, 0.5], label_smoothing=0.1, batch=True),
        unreduced=False,
    ),
    OpCase(
        "dice_ce soft",
        fastloss.dice_ce_loss,
        reference.dice_ce_loss,
        _with(compound_soft, dice="generalized_dice", reduction="sum"),
        unreduced=False,
    ),
    OpCase(
        "dice_focal labels",
        fastloss.dice_focal_loss,
        reference.dice_focal_loss,
        _with(compound_labels, gamma=1.5, dice="tversky", tversky_alpha=0.3, include_background=False),
        unreduced=False,
    ),
    OpCase(
        "dice_focal sigmoid",
        fastloss.dice_focal_loss,
        reference.dice_focal_loss,
        _with(compound_labels, focal="sigmoid", activation="sigmoid", alpha=0.25, include_background=False),
        unreduced=False,
    ),
    OpCase("l1", fastloss.l1_loss, reference.l1_loss, _with(boxes, reduction="sum")),
    OpCase("smooth_l1", fastloss.smooth_l1_loss, reference.smooth_l1_loss, _with(boxes, beta=0.5)),
    OpCase("balanced_l1", fastloss.balanced_l1_loss, reference.balanced_l1_loss, _with(boxes, beta=2.0, alpha=0.4)),
    _face_case("iou mmdet", "iou", "mmdet", mode="square", aux_eps=1e-3),
    _face_case("giou mmdet", "giou", "mmdet"),
    _face_case("ciou mmdet", "ciou", "mmdet", aux_eps=0.0),
    _face_case("ciou ultralytics", "ciou", "ultralytics"),
    _face_case("siou mmdet", "siou", "mmdet"),
    _face_case("smooth_eiou mmdet", "smooth_eiou", "mmdet", lambd=0.3),
    OpCase("bounded_iou mmdet", _bounded_iou(True), _bounded_iou(False), boxes),
    _matrix_case("diou"),
    _matrix_case("ciou"),
    _matrix_case("eiou"),
    _matrix_case("giou", "mmdet"),
    _matrix_case("iof", "mmdet"),
]


def make(case, n=7, dtype=torch.float64, device="cpu", seed=0, grad=True):
    """The case's tensors (the first requiring grad) and kwargs."""
    g = torch.Generator().manual_seed(seed)
    tensors, kwargs = case.make(n, dtype, device, g)
    if grad:
        tensors = (tensors[0].requires_grad_(),) + tuple(tensors[1:])
    return tensors, kwargs
