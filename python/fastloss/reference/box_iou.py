"""The IoU family of box losses in plain torch (formulas: csrc/math/box_iou.h) and its argument
checks, which fastloss.box_iou_loss shares."""

from typing import NamedTuple, Optional

import torch

from .._common import (
    check_choice,
    check_nonnegative,
    check_same_device,
    check_tensor,
    check_weight,
    opmath_dtype,
    prepare_weight,
    reduce_unreduced,
    reduction_code,
)

# Codes of csrc/math/box_iou.h.
KINDS = {
    "iou": 0,
    "giou": 1,
    "diou": 2,
    "ciou": 3,
    "eiou": 4,
    "focal_eiou": 5,
    "cdiou": 6,
    "siou": 7,
    "smooth_eiou": 8,
    "bounded_iou": 9,
}  # the last three: mmdet's own (fastloss.mmdet)
BOUNDED_IOU_COMPONENTS = {"dx": 0, "dy": 1, "dw": 2, "dh": 3}  # bounded_iou's `mode`
MODES = {"linear": 0, "log": 1, "square": 2}
FORMATS = {"xyxy": 0, "xywh": 1, "cxcywh": 2}
# Whose eps placement (csrc/math/box_iou.h explains each); the faces pick theirs.
CONVENTIONS = {"torchvision": 0, "mmdet": 1, "ultralytics": 2}
FOUR_OVER_PI_SQUARED = 0.405284734569351085775517852838911


class BoxArgs(NamedTuple):
    pred: torch.Tensor
    target: torch.Tensor
    kind: int
    mode: int
    box_format: int
    eps: float
    gamma: float
    lambd: float
    reduction: int  # kernel code; SUM when avg_factor is given
    weight: Optional[torch.Tensor]
    avg_factor: object
    convention: int = 0
    aux_eps: float = -1.0  # a second eps (math/box_iou.h); < 0: eps


def _check_boxes(name, boxes):
    check_tensor(name, boxes)
    if boxes.dtype == torch.bool or boxes.dtype.is_complex:
        raise TypeError(f"{name} must be a floating point (or integer) tensor of boxes, got {boxes.dtype}")
    if boxes.dim() == 0 or boxes.shape[-1] != 4:
        raise ValueError(f"{name} must have shape (..., 4), got {tuple(boxes.shape)}")
    return boxes if boxes.dtype.is_floating_point else boxes.float()  # integer boxes: as torchvision


def check_args(
    kind,
    pred,
    target,
    reduction,
    eps,
    weight,
    avg_factor,
    box_format,
    mode="linear",
    gamma=0.5,
    lambd=1.0,
    convention="torchvision",
    aux_eps=None,
) -> BoxArgs:
    """pred and target may differ in dtype (float16 pred, float32 target under AMP): the math runs
    in their promoted math type, each read in its own dtype, as torchvision promotes."""
    pred, target = _check_boxes("pred", pred), _check_boxes("target", target)
    check_same_device("target", target, "pred", pred)
    if target.shape != pred.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    eps, gamma = check_nonnegative("eps", eps), check_nonnegative("gamma", gamma)
    lambd = check_nonnegative("lambd", lambd)
    aux_eps = -1.0 if aux_eps is None else check_nonnegative("eps", aux_eps)
    code = reduction_code(reduction, avg_factor)
    if weight is not None:
        check_weight(weight, pred, "pred")
        if weight.shape == pred.shape:  # one weight per coordinate, as mmdet passes: their mean
            weight = weight.mean(-1)
        weight = prepare_weight(weight, pred[..., 0], per_row=False)
    modes = BOUNDED_IOU_COMPONENTS if kind == "bounded_iou" else MODES
    return BoxArgs(
        pred,
        target,
        KINDS[kind],
        check_choice("mode", mode, modes),
        check_choice("box_format", box_format, FORMATS),
        eps,
        gamma,
        lambd,
        code,
        weight,
        avg_factor,
        CONVENTIONS[convention],
        aux_eps,
    )


def _corners(boxes, box_format):
    a, b, c, d = boxes.unbind(-1)
    if box_format == FORMATS["xywh"]:
        return a, b, a + c, b + d
    if box_format == FORMATS["cxcywh"]:
        return a - 0.5 * c, b - 0.5 * d, a + 0.5 * c, b + 0.5 * d
    return a, b, c, d


def _repair(lo, hi):
    """An inverted interval becomes the empty interval at its midpoint."""
    inverted, mid = lo > hi, 0.5 * (lo + hi)
    return torch.where(inverted, mid, lo), torch.where(inverted, mid, hi)


def _distance(dx, dy):
    """sqrt(dx² + dy²), with a zero gradient where it is 0 (sqrt's would be 0/0), as the kernel."""
    squared = dx * dx + dy * dy
    positive = squared > 0
    return torch.where(positive, torch.where(positive, squared, 1).sqrt(), 0)


def _aspect_angle(w, h):
    """atan(w / h) for any signs: ±π/2 at h = 0, 0 for a point box (w = h = 0)."""
    sign = torch.where(h < 0, -1.0, 1.0).to(h.dtype)
    return torch.atan2(sign * w, sign * h)


def _siou(a, p, t, wp, wt, hp, ht, cw, ch, iou):
    """mmdet's SIoU (csrc/math/box_iou.h); hp, ht are the heights + eps, as mmdet's."""
    (x1, y1, x2, y2), (x1g, y1g, x2g, y2g) = p, t
    cw, ch = cw.clamp(min=a.eps), ch.clamp(min=a.eps)
    ox, oy = (x1g + x2g - x1 - x2) * 0.5 + a.eps, (y1g + y2g - y1 - y2) * 0.5 + a.eps
    sigma = torch.sqrt(ox**2 + oy**2)
    sin_x, sin_y = ox.abs() / sigma, oy.abs() / sigma
    s = torch.where(sin_x > 2**0.5 / 2, sin_y, sin_x)
    angle = torch.cos(torch.asin(s) * 2 - torch.pi / 2)
    gamma = angle - 2 if a.mode == 1 else 2 - angle
    distance = 2 - torch.exp(gamma * (ox / cw) ** 2) - torch.exp(gamma * (oy / ch) ** 2)
    omega_w, omega_h = (wp - wt).abs() / torch.maximum(wp, wt), (hp - ht).abs() / torch.maximum(hp, ht)
    shape = (1 - torch.exp(-omega_w)) ** 4 + (1 - torch.exp(-omega_h)) ** 4
    return 1 - (iou - 0.5 * (distance + shape)).clamp(min=-1.0, max=1.0)


def _bounded_iou(a, pred, target):
    """mmdet's BoundedIoU, component a.mode (0 dx, 1 dy, 2 dw, 3 dh); no gradient to the target."""
    k = a.mode % 2  # x or y
    p1, p2, t1, t2 = pred[..., k], pred[..., k + 2], target[..., k], target[..., k + 2]
    w_t = t2 - t1
    if a.mode <= 1:
        d = (t1 + t2) * 0.5 - (p1 + p2) * 0.5
        comb = 1 - torch.max((w_t - 2 * d.abs()) / (w_t + 2 * d.abs() + a.eps), torch.zeros_like(d))
    else:
        w_p = p2 - p1
        comb = 1 - torch.min(w_t / (w_p + a.eps), w_p / (w_t + a.eps))
    return torch.where(comb < a.lambd, 0.5 * comb * comb / a.lambd, comb - 0.5 * a.lambd)


def _smooth_eiou(a, p, t, areas):
    """mmdet's smooth EIoU (Peng & Yu; csrc/math/box_iou.h), smooth point a.lambd."""
    (px1, py1, px2, py2), (tx1, ty1, tx2, ty2) = p, t
    ex1, ey1 = torch.minimum(px1, tx1), torch.minimum(py1, ty1)
    ix1, iy1, ix2, iy2 = (
        torch.maximum(px1, tx1),
        torch.maximum(py1, ty1),
        torch.minimum(px2, tx2),
        torch.minimum(py2, ty2),
    )
    xmin, ymin, xmax, ymax = (
        torch.minimum(ix1, ix2),
        torch.minimum(iy1, iy2),
        torch.maximum(ix1, ix2),
        torch.maximum(iy1, iy2),
    )
    inter = (
        (ix2 - ex1) * (iy2 - ey1)
        + (xmin - ex1) * (ymin - ey1)
        - (ix1 - ex1) * (ymax - ey1)
        - (xmax - ex1) * (iy1 - ey1)
    )
    l = 1 - inter / (areas - inter + a.eps)  # noqa: E741
    smooth = (l < a.lambd).detach()
    return torch.where(smooth, 0.5 * l * l / a.lambd, l - 0.5 * a.lambd)


def compute(a: BoxArgs) -> torch.Tensor:
    dtype = opmath_dtype(torch.promote_types(a.pred.dtype, a.target.dtype))
    mmdet, aux_eps = a.convention == CONVENTIONS["mmdet"], a.eps if a.aux_eps < 0 else a.aux_eps
    x1, y1, x2, y2 = _corners(a.pred.to(dtype), a.box_format)
    x1g, y1g, x2g, y2g = _corners(a.target.to(dtype), a.box_format)
    repair = a.convention == CONVENTIONS["torchvision"]  # the faces take inverted boxes as their peers do
    if repair:
        (x1, x2), (y1, y2), (x1g, x2g), (y1g, y2g) = (
            _repair(x1, x2),
            _repair(y1, y2),
            _repair(x1g, x2g),
            _repair(y1g, y2g),
        )
    # ultralytics adds eps to xyxy heights (areas and aspect ratio), mmdet's CIoU to the aspect ratio's
    area_shift = a.eps if a.convention == CONVENTIONS["ultralytics"] and a.box_format == FORMATS["xyxy"] else 0.0
    aspect_shift = a.eps if mmdet else area_shift
    wp, hp, wt, ht = x2 - x1, y2 - y1 + area_shift, x2g - x1g, y2g - y1g + area_shift
    inter = torch.relu(torch.minimum(x2, x2g) - torch.maximum(x1, x1g)) * torch.relu(
        torch.minimum(y2, y2g) - torch.maximum(y1, y1g)
    )
    union = wp * hp + wt * ht - inter
    floor_union = mmdet and a.kind in (KINDS["iou"], KINDS["giou"])
    union = union.clamp(min=a.eps) if floor_union else union + a.eps
    iou = inter / union
    cw = torch.maximum(x2, x2g) - torch.minimum(x1, x1g)
    ch = torch.maximum(y2, y2g) - torch.minimum(y1, y1g)
    if mmdet:
        cw, ch = cw.clamp(min=0), ch.clamp(min=0)
    kind = a.kind
    if kind == KINDS["iou"]:
        if mmdet or a.mode == MODES["log"]:
            iou = iou.clamp(min=aux_eps)
        loss = {
            MODES["linear"]: lambda: 1 - iou,
            MODES["log"]: lambda: -iou.log(),
            MODES["square"]: lambda: 1 - iou * iou,
        }[a.mode]()
    elif kind == KINDS["giou"]:
        area_c = cw * ch
        if mmdet:
            area_c = area_c.clamp(min=a.eps)
            loss = 1 - iou + (area_c - union) / area_c
        else:
            loss = 1 - iou + (area_c - union + a.eps) / (area_c + a.eps)
    elif kind == KINDS["siou"]:
        loss = _siou(
            a,
            (x1, y1, x2, y2),
            (x1g, y1g, x2g, y2g),
            wp,
            wt,
            hp - area_shift + aspect_shift,
            ht - area_shift + aspect_shift,
            cw,
            ch,
            iou,
        )
    elif kind == KINDS["bounded_iou"]:
        loss = _bounded_iou(a, a.pred.to(dtype), a.target.to(dtype).detach())
    elif kind == KINDS["smooth_eiou"]:
        loss = _smooth_eiou(a, (x1, y1, x2, y2), (x1g, y1g, x2g, y2g), wp * hp + wt * ht)
    else:
        c2 = cw**2 + ch**2 + a.eps
        if kind == KINDS["cdiou"]:
            corner_distances = (
                _distance(x1 - x1g, y1 - y1g)
                + _distance(x2 - x2g, y1 - y1g)
                + _distance(x2 - x2g, y2 - y2g)
                + _distance(x1 - x1g, y2 - y2g)
            )
            loss = 1 - iou + a.lambd * corner_distances / (4 * c2.sqrt())
        else:
            rho2 = ((x2 + x1) / 2 - (x1g + x2g) / 2) ** 2 + ((y2 + y1) / 2 - (y1g + y2g) / 2) ** 2
            loss = 1 - iou + rho2 / c2
        if kind == KINDS["ciou"]:
            hp_s, ht_s = hp - area_shift + aspect_shift, ht - area_shift + aspect_shift
            v = FOUR_OVER_PI_SQUARED * (_aspect_angle(wt, ht_s) - _aspect_angle(wp, hp_s)) ** 2
            alpha = (v / (1 - iou + v + aux_eps)).detach()
            if mmdet:
                alpha = alpha * (iou > 0.5).detach()
            loss = loss + alpha * v
            if mmdet:
                loss = loss.clamp(max=2.0)  # 1 − clamp(CIoU, −1, 1)
        elif kind in (KINDS["eiou"], KINDS["focal_eiou"]):
            loss = loss + (wp - wt) ** 2 / (cw**2 + a.eps) + (hp - ht) ** 2 / (ch**2 + a.eps)
            if kind == KINDS["focal_eiou"]:
                loss = iou.detach().pow(a.gamma) * loss
    if a.weight is not None:
        loss = loss * a.weight.to(dtype)
    return reduce_unreduced(loss, a.reduction, a.avg_factor)


def op(pred, target, weight, kind, mode, box_format, eps, gamma, lambd, reduction, convention=0, aux_eps=-1.0):
    """fastloss::box_iou_loss in torch ops."""
    return compute(
        BoxArgs(pred, target, kind, mode, box_format, eps, gamma, lambd, reduction, weight, None, convention, aux_eps)
    )


def _reference_loss(kind, *args, **kwargs):
    return compute(check_args(kind, *args, **kwargs))


def iou_loss(
    pred, target, reduction="none", eps=1e-7, *, weight=None, avg_factor=None, box_format="xyxy", mode="linear"
):
    """fastloss.iou_loss in plain torch: the same arguments, the same numbers."""
    return _reference_loss("iou", pred, target, reduction, eps, weight, avg_factor, box_format, mode=mode)


def giou_loss(pred, target, reduction="none", eps=1e-7, *, weight=None, avg_factor=None, box_format="xyxy"):
    """fastloss.giou_loss in plain torch: the same arguments, the same numbers."""
    return _reference_loss("giou", pred, target, reduction, eps, weight, avg_factor, box_format)


def diou_loss(pred, target, reduction="none", eps=1e-7, *, weight=None, avg_factor=None, box_format="xyxy"):
    """fastloss.diou_loss in plain torch: the same arguments, the same numbers."""
    return _reference_loss("diou", pred, target, reduction, eps, weight, avg_factor, box_format)


def ciou_loss(pred, target, reduction="none", eps=1e-7, *, weight=None, avg_factor=None, box_format="xyxy"):
    """fastloss.ciou_loss in plain torch: the same arguments, the same numbers."""
    return _reference_loss("ciou", pred, target, reduction, eps, weight, avg_factor, box_format)


def eiou_loss(pred, target, reduction="none", eps=1e-7, *, weight=None, avg_factor=None, box_format="xyxy"):
    """fastloss.eiou_loss in plain torch: the same arguments, the same numbers."""
    return _reference_loss("eiou", pred, target, reduction, eps, weight, avg_factor, box_format)


def focal_eiou_loss(
    pred, target, reduction="none", eps=1e-7, *, weight=None, avg_factor=None, box_format="xyxy", gamma=0.5
):
    """fastloss.focal_eiou_loss in plain torch: the same arguments, the same numbers."""
    return _reference_loss("focal_eiou", pred, target, reduction, eps, weight, avg_factor, box_format, gamma=gamma)


def cdiou_loss(pred, target, reduction="none", eps=1e-7, *, weight=None, avg_factor=None, box_format="xyxy", lambd=1.0):
    """fastloss.cdiou_loss in plain torch: the same arguments, the same numbers."""
    return _reference_loss("cdiou", pred, target, reduction, eps, weight, avg_factor, box_format, lambd=lambd)


def generalized_box_iou_loss(boxes1, boxes2, reduction="none", eps=1e-7):
    """fastloss.generalized_box_iou_loss in plain torch: the same arguments, the same numbers."""
    return _reference_loss("giou", boxes1, boxes2, reduction, eps, None, None, "xyxy")


def distance_box_iou_loss(boxes1, boxes2, reduction="none", eps=1e-7):
    """fastloss.distance_box_iou_loss in plain torch: the same arguments, the same numbers."""
    return _reference_loss("diou", boxes1, boxes2, reduction, eps, None, None, "xyxy")


def complete_box_iou_loss(boxes1, boxes2, reduction="none", eps=1e-7):
    """fastloss.complete_box_iou_loss in plain torch: the same arguments, the same numbers."""
    return _reference_loss("ciou", boxes1, boxes2, reduction, 1e-7, None, None, "xyxy", aux_eps=eps)


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
