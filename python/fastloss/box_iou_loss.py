"""The IoU family of box losses (IoU, GIoU, DIoU, CIoU, EIoU, Focal-EIoU, CDIoU) on the fused
kernels, and torchvision's generalized/distance/complete_box_iou_loss as drop-ins.

One op, fastloss::box_iou_loss, serves the family (csrc/math/box_iou.h has the formulas);
fastloss.reference.box_iou computes the same in plain torch.
"""

import torch

from . import _autocast, _autograd, _backend, _vmap
from ._autograd import refuse_grad
import functools

from ._inputs import box_pairs, random_boxes, strided, to_format, with_options
from ._spec import DTYPE_PAIRS, FLOATS, WAVES, Case, OpSpec, Plan, declare, operand_dtypes
from ._module import Loss, warn_deprecated
from ._common import NONE, apply_avg_factor, opmath_dtype
from .reference import box_iou as _reference

_OP = "fastloss::box_iou_loss"


def _fused(kind, pred, target, reduction, eps, weight, avg_factor, box_format, **params):
    a = _reference.check_args(kind, pred, target, reduction, eps, weight, avg_factor, box_format, **params)
    if not _backend.use_kernels(a.pred.device):
        return _reference.compute(a)
    loss = torch.ops.fastloss.box_iou_loss(
        a.pred,
        a.target,
        a.weight,
        a.kind,
        a.mode,
        a.box_format,
        a.eps,
        a.gamma,
        a.lambd,
        a.reduction,
        a.convention,
        a.aux_eps,
    )
    return apply_avg_factor(loss, a.avg_factor)


def iou_loss(
    pred, target, reduction="none", eps=1e-7, *, weight=None, avg_factor=None, box_format="xyxy", mode="linear"
):
    """IoU loss (UnitBox, arXiv 1608.01471): mode "linear" 1 − IoU, "log" −ln(max(IoU, eps)),
    "square" 1 − IoU²."""
    return _fused("iou", pred, target, reduction, eps, weight, avg_factor, box_format, mode=mode)


def giou_loss(pred, target, reduction="none", eps=1e-7, *, weight=None, avg_factor=None, box_format="xyxy"):
    """GIoU loss (arXiv 1902.09630): 1 − IoU + (area(C) − union) / (area(C) + eps), C the enclosing box."""
    return _fused("giou", pred, target, reduction, eps, weight, avg_factor, box_format)


def diou_loss(pred, target, reduction="none", eps=1e-7, *, weight=None, avg_factor=None, box_format="xyxy"):
    """DIoU loss (arXiv 1911.08287): 1 − IoU + ρ² / (cw² + ch² + eps), ρ the distance of the centres."""
    return _fused("diou", pred, target, reduction, eps, weight, avg_factor, box_format)


def ciou_loss(pred, target, reduction="none", eps=1e-7, *, weight=None, avg_factor=None, box_format="xyxy"):
    """CIoU loss (arXiv 1911.08287): DIoU + α·v, v = (4/π²)(atan(w_t/h_t) − atan(w_p/h_p))²,
    α = v / (1 − IoU + v + eps) held constant (no gradient through α), as torchvision."""
    return _fused("ciou", pred, target, reduction, eps, weight, avg_factor, box_format)


def eiou_loss(pred, target, reduction="none", eps=1e-7, *, weight=None, avg_factor=None, box_format="xyxy"):
    """EIoU loss (arXiv 2101.08158): DIoU + (w_p − w_t)²/(cw² + eps) + (h_p − h_t)²/(ch² + eps)."""
    return _fused("eiou", pred, target, reduction, eps, weight, avg_factor, box_format)


def focal_eiou_loss(
    pred, target, reduction="none", eps=1e-7, *, weight=None, avg_factor=None, box_format="xyxy", gamma=0.5
):
    """Focal-EIoU loss (arXiv 2101.08158): IoU^γ · EIoU, with IoU^γ a weight (no gradient through it),
    as the widely used implementations do."""
    return _fused("focal_eiou", pred, target, reduction, eps, weight, avg_factor, box_format, gamma=gamma)


def cdiou_loss(pred, target, reduction="none", eps=1e-7, *, weight=None, avg_factor=None, box_format="xyxy", lambd=1.0):
    """CDIoU loss (arXiv 2103.11696): 1 − IoU + λ·(sum of the distances between the four corresponding
    corners) / (4 · diagonal of the enclosing box)."""
    return _fused("cdiou", pred, target, reduction, eps, weight, avg_factor, box_format, lambd=lambd)


def generalized_box_iou_loss(boxes1, boxes2, reduction="none", eps=1e-7):
    """torchvision.ops.generalized_box_iou_loss's signature and numbers."""
    return _fused("giou", boxes1, boxes2, reduction, eps, None, None, "xyxy")


def distance_box_iou_loss(boxes1, boxes2, reduction="none", eps=1e-7):
    """torchvision.ops.distance_box_iou_loss's signature and numbers."""
    return _fused("diou", boxes1, boxes2, reduction, eps, None, None, "xyxy")


def complete_box_iou_loss(boxes1, boxes2, reduction="none", eps=1e-7):
    """torchvision.ops.complete_box_iou_loss's signature and numbers: as torchvision, eps is used in α
    only and its DIoU part uses 1e-7."""
    return _fused("ciou", boxes1, boxes2, reduction, 1e-7, None, None, "xyxy", aux_eps=eps)


# What the seven share (torchvision's three drop-ins document torchvision's arguments).
COMMON_DOC = """
    pred, target: boxes of shape (..., 4), the same shape, floating dtypes that may differ (the
        math runs in their promoted type; integer boxes are taken as float32); box_format "xyxy",
        "xywh" or "cxcywh", converted inside the kernel, with gradients in the caller's format.
        Inverted boxes (x2 < x1 or y2 < y1) are zero-size boxes at the same centre. Gradients flow
        to pred, and to target when it requires grad.
    reduction: "none" (shape pred.shape[:-1]) | "mean" | "sum"; empty inputs give 0.
    eps: keeps denominators positive (IoU = inter / (union + eps)).
    weight: per pair, broadcastable to pred.shape[:-1]; a weight of pred's shape (one per
        coordinate, as mmdet passes) is averaged over the last dimension.
    avg_factor: with reduction="mean", the loss is sum / avg_factor (mmdet's convention).
    The loss is float32 for half inputs (as torchvision), else the promoted dtype of pred and target.
"""
for _function in (iou_loss, giou_loss, diou_loss, ciou_loss, eiou_loss, focal_eiou_loss, cdiou_loss):
    _function.__doc__ += "\n" + COMMON_DOC

__all__ = [
    "iou_loss",
    "giou_loss",
    "diou_loss",
    "ciou_loss",
    "eiou_loss",
    "focal_eiou_loss",
    "cdiou_loss",
    "generalized_box_iou_loss",
    "distance_box_iou_loss",
    "complete_box_iou_loss",
]


def _backward(ctx, args, saved, grads, needs):
    pred, target, weight, *params = args
    refuse_grad(needs, [("weight", 2)], "box losses")
    grad_pred, grad_target = torch.ops.fastloss.box_iou_loss_backward(
        grads[0], pred, target, weight, *params[:7], needs[0], needs[1], *params[7:]
    )
    return (grad_pred if needs[0] else None, grad_target if needs[1] else None) + (None,) * 10


def _vmap_rule(
    info,
    in_dims,
    pred,
    target,
    weight,
    kind,
    mode,
    box_format,
    eps,
    gamma,
    lambd,
    reduction,
    convention=0,
    aux_eps=-1.0,
):
    batch = info.batch_size
    p, t = _vmap.front(pred, in_dims[0], batch), _vmap.front(target, in_dims[1], batch)
    w = _vmap.aligned(weight, in_dims[2], batch, p.dim() - 2)
    loss = torch.ops.fastloss.box_iou_loss(
        p, t, w, kind, mode, box_format, eps, gamma, lambd, NONE, convention, aux_eps
    )
    return (loss if reduction == NONE else _vmap.reduce_per_sample(loss, reduction)), 0


def _register():
    @torch.library.register_fake(_OP)
    def _(pred, target, weight, kind, mode, box_format, eps, gamma, lambd, reduction, convention=0, aux_eps=-1.0):
        return pred.new_empty(
            pred.shape[:-1] if reduction == 0 else (), dtype=opmath_dtype(torch.promote_types(pred.dtype, target.dtype))
        )

    @torch.library.register_fake(_OP + "_backward")
    def _(
        grad,
        pred,
        target,
        weight,
        kind,
        mode,
        box_format,
        eps,
        gamma,
        lambd,
        reduction,
        pred_grad,
        target_grad,
        convention=0,
        aux_eps=-1.0,
    ):
        return (
            pred.new_empty(pred.shape if pred_grad else (0,)),
            target.new_empty(target.shape if target_grad else (0,)),
        )

    _autograd.register(_autograd.Spec("box_iou_loss", _backward, _reference.op))
    _vmap.register("box_iou_loss", _vmap_rule)
    _autocast.register("box_iou_loss")


# -------------------------------------------------------------------------------- the nn module


class BoxIoULoss(Loss):
    """A loss of the IoU family (fastloss.<kind>_loss) as a module; the subclasses below name it.

    forward(pred, target, weight=None, avg_factor=None): boxes (..., 4); weight per box
    (pred.shape[:-1]) or per coordinate (pred's shape).
    """

    function = None

    def __init__(self, eps=1e-7, reduction="mean", *, box_format="xyxy", **deprecated):
        super().__init__(reduction, **deprecated)
        self.eps, self.box_format = eps, box_format

    def options(self):
        """The kind's own options (mode, gamma, lambd)."""
        return {}

    def forward(self, pred, target, weight=None, avg_factor=None, **deprecated):
        loss = type(self).function(
            pred,
            target,
            self.resolve_reduction(deprecated),
            self.eps,
            weight=weight,
            avg_factor=avg_factor,
            box_format=self.box_format,
            **self.options(),
        )
        return self.scaled(loss)

    def extra_repr(self):
        options = "".join(f", {k}={v!r}" for k, v in self.options().items())
        return f"eps={self.eps}, box_format={self.box_format!r}{options}, " + super().extra_repr()


class IoULoss(BoxIoULoss):
    """fastloss.iou_loss: mode "linear" (1 − IoU), "log" or "square"."""

    function = iou_loss

    def __init__(self, eps=1e-7, reduction="mean", *, box_format="xyxy", mode=None, **deprecated):
        super().__init__(eps, reduction, box_format=box_format, **deprecated)
        if mode is None:
            warn_deprecated(
                "IoULoss() without mode, which meant mmdet's mode='log',",
                "the default is fastloss.iou_loss's mode='linear' from 0.3; pass mode= (mmdet's IoULoss is "
                "fastloss.mmdet.IoULoss)",
            )
            mode = "log"
        self.mode = mode

    def options(self):
        return {"mode": self.mode}


class GIoULoss(BoxIoULoss):
    """fastloss.giou_loss as a module."""

    function = giou_loss


class DIoULoss(BoxIoULoss):
    """fastloss.diou_loss as a module."""

    function = diou_loss


class CIoULoss(BoxIoULoss):
    """fastloss.ciou_loss as a module."""

    function = ciou_loss


class EIoULoss(BoxIoULoss):
    """fastloss.eiou_loss as a module."""

    function = eiou_loss


class FocalEIoULoss(BoxIoULoss):
    """fastloss.focal_eiou_loss as a module."""

    function = focal_eiou_loss

    def __init__(self, eps=1e-7, reduction="mean", *, box_format="xyxy", gamma=0.5, **deprecated):
        super().__init__(eps, reduction, box_format=box_format, **deprecated)
        self.gamma = gamma

    def options(self):
        return {"gamma": self.gamma}


class CDIoULoss(BoxIoULoss):
    """fastloss.cdiou_loss as a module."""

    function = cdiou_loss

    def __init__(self, eps=1e-7, reduction="mean", *, box_format="xyxy", lambd=1.0, **deprecated):
        super().__init__(eps, reduction, box_format=box_format, **deprecated)
        self.lambd = lambd

    def options(self):
        return {"lambd": self.lambd}


# ------------------------------------------------------------------------------------ the record


def _convention(kind, convention, fused, **params):
    """A box kind under a face's eps convention (fastloss.mmdet, fastloss.ultralytics), fused or reference."""

    def ref(*args, **kwargs):
        return _reference.compute(_reference.check_args(*args, **kwargs))

    implementation = _fused if fused else ref

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
    return Case(
        name,
        _convention(kind, convention, True, **params),
        _convention(kind, convention, False, **params),
        box_pairs,
        frozen_factor=kind == "ciou",
    )


def _any_kind(kind, convention, pred, target, reduction, box_format, weight):
    """Any kind of the fused box kernel under any face's convention (bounded_iou: its dx component)."""
    params = {"mode": "dx", "lambd": 0.2} if kind == "bounded_iou" else {}
    return _fused(kind, pred, target, reduction, 1e-6, weight, None, box_format, convention=convention, **params)


def _parity_call(case, g, on, seed):
    dtype, dtype2 = operand_dtypes(case)
    n = case["pairs"]
    target = random_boxes(n, generator=g)
    pred = random_boxes(n, generator=g, near=target)
    pred, target = on(to_format(pred, case["box_format"]), dtype), on(to_format(target, case["box_format"]), dtype2)
    w = {None: None, "pair": torch.rand(n, generator=g), "coordinate": torch.rand(n, 4, generator=g)}[case["weight"]]
    kwargs = dict(
        reduction=case["reduction"], box_format=case["box_format"], weight=None if w is None else on(w, dtype)
    )
    fn = functools.partial(_any_kind, case["kind"], case["convention"])
    return fn, [strided(pred, case["contiguous"]), target.requires_grad_(case["target_grad"])], kwargs


def _dtype_sweep(small):
    return [
        small(dtype=a, dtype2=b, reduction=r, target_grad=tg)
        for a, b in DTYPE_PAIRS
        for tg in (False, True)
        for r in ("none", "mean")
    ]


def _kind_case(name, fn, ref, **options):
    return Case(
        name,
        fn,
        ref,
        with_options(box_pairs, **options) if options else box_pairs,
        frozen_factor=name
        in (
            "ciou",
            "focal_eiou",
        ),
    )


SPEC = declare(
    OpSpec(
        "box_iou",
        ops=("box_iou_loss", "box_iou_loss_backward"),
        register=_register,
        reference=_reference,
        modules=(BoxIoULoss, IoULoss, GIoULoss, DIoULoss, CIoULoss, EIoULoss, FocalEIoULoss, CDIoULoss),
        cases=(
            _kind_case("iou", iou_loss, _reference.iou_loss, mode="log"),
            _kind_case("giou", giou_loss, _reference.giou_loss),
            _kind_case("diou", diou_loss, _reference.diou_loss),
            _kind_case("ciou", ciou_loss, _reference.ciou_loss),
            _kind_case("eiou", eiou_loss, _reference.eiou_loss),
            _kind_case("focal_eiou", focal_eiou_loss, _reference.focal_eiou_loss),
            _kind_case("cdiou", cdiou_loss, _reference.cdiou_loss),
            _face_case("iou mmdet", "iou", "mmdet", mode="square", aux_eps=1e-3),
            _face_case("giou mmdet", "giou", "mmdet"),
            _face_case("ciou mmdet", "ciou", "mmdet", aux_eps=0.0),
            _face_case("ciou ultralytics", "ciou", "ultralytics"),
            _face_case("siou mmdet", "siou", "mmdet"),
            _face_case("smooth_eiou mmdet", "smooth_eiou", "mmdet", lambd=0.3),
            Case("bounded_iou mmdet", _bounded_iou(True), _bounded_iou(False), box_pairs),
        ),
        plan=Plan(
            factors=dict(
                dtype=FLOATS,
                pairs=[1, 31, 33, 1025, 65537, WAVES],
                kind=[
                    "iou",
                    "giou",
                    "diou",
                    "ciou",
                    "eiou",
                    "focal_eiou",
                    "cdiou",
                    "siou",
                    "smooth_eiou",
                    "bounded_iou",
                ],
                box_format=["xyxy", "xywh", "cxcywh"],
                convention=["torchvision", "mmdet", "ultralytics"],
                reduction=["none", "mean", "sum"],
                weight=[None, "pair", "coordinate"],
                contiguous=[True, False],
                target_grad=[False, True],
            ),
            call=_parity_call,
            elements=lambda case: case["pairs"] * 4,
            shrink=("pairs",),
            small=dict(pairs=300),
            mid=dict(pairs=300001),
            large=dict(pairs=5_000_000),
            empty=(dict(pairs=0),),
            sweep=_dtype_sweep,
            elementwise=True,
        ),
        bench="box_iou",
    )
)
