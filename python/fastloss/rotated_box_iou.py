"""The exact IoU of rotated boxes (xywhr, radians) on one fused op, fastloss::rotated_box_iou (formulas
in csrc/math/rotated_iou.h): each pair's intersection polygon's area by Green's theorem over the
rectangles' clipped edges, forward and backward, writing only the output (the gradients' sums in a
fixed order) — for evaluation, NMS and rotated IoU losses. Only each box's cos and sin come from torch
(which chains their gradient to the angle).
"""

import functools
import math

import torch

from . import _backend
from ._common import check_bool, check_number
from ._spec import OpSpec, declare
from .probiou import _boxes, pair_plan, register_pair_op
from .reference import rotated_box_iou as _reference
from .reference.oriented import xywhr_rows


def rotated_box_iou(boxes1, boxes2, aligned=False, eps=1e-7):
    """The IoU of rotated boxes boxes1 (N, 5) and boxes2 (M, 5) in xywhr (radians): every pair (N, M),
    or with aligned=True the pairs of equal index (N,) (then M = N). Exact — the intersection
    polygon's area — with IoU = inter / (area1 + area2 − inter + eps); w or h ≤ 0 is an empty box.
    Differentiable (the gradient of the exact area; none through the edges' order where two are
    parallel). Half boxes are computed in float32 and returned in their dtype."""
    boxes1, boxes2 = _boxes("boxes1", boxes1), _boxes("boxes2", boxes2)
    if boxes1.device != boxes2.device:
        raise ValueError(f"boxes2 must be on boxes1's device {boxes1.device}, got {boxes2.device}")
    for name, t in (("boxes1", boxes1), ("boxes2", boxes2)):
        if t.dim() != 2:
            raise ValueError(f"{name} must have shape (N, 5), got {tuple(t.shape)}")
    aligned = check_bool("aligned", aligned)
    if aligned and boxes1.shape[0] != boxes2.shape[0]:
        raise ValueError(
            f"aligned pairs need as many boxes in boxes1 as in boxes2, got {boxes1.shape[0]} and {boxes2.shape[0]}"
        )
    eps = check_number("eps", eps)
    if eps <= 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    dtype = torch.promote_types(boxes1.dtype, boxes2.dtype)
    math_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    rows1, rows2 = xywhr_rows(boxes1.to(math_dtype)), xywhr_rows(boxes2.to(math_dtype))
    if _backend.use_kernels(rows1.device):
        out = torch.ops.fastloss.rotated_box_iou(rows1, rows2, eps, aligned)
    else:
        out = _reference.rotated_box_iou_op(rows1, rows2, eps, aligned)
    return out.to(dtype)


__all__ = ["rotated_box_iou"]


# ------------------------------------------------------------------------------------ the record


def rotated_boxes(n, kind, generator):
    """n xywhr boxes (float64): "random" (within a few sizes of each other, any angle), "degenerate"
    (every third of zero width), "flush" (right angles and integer positions: shared and touching edges)."""
    g = generator
    if kind == "flush":
        xy = torch.randint(0, 4, (n, 2), generator=g).double()
        wh = torch.randint(1, 4, (n, 2), generator=g).double()
        r = torch.randint(-2, 3, (n, 1), generator=g).double() * (math.pi / 2)
        return torch.cat([xy, wh, r], -1)
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * 4
    wh = torch.rand(n, 2, generator=g, dtype=torch.float64) * 3 + 0.1
    if kind == "degenerate":
        wh[::3, 0] = 0
    r = (torch.rand(n, 1, generator=g, dtype=torch.float64) - 0.5) * 2 * math.pi
    return torch.cat([xy, wh, r], -1)


def _parity_call(case, g, on, seed):
    n = case["n"]
    m = n if case["aligned"] else case["m"]
    a = xywhr_rows(rotated_boxes(n, case["kind"], g))
    b = xywhr_rows(rotated_boxes(m, case["kind"], g))
    fn = functools.partial(torch.ops.fastloss.rotated_box_iou, eps=1e-7, aligned=case["aligned"])
    return fn, [on(a, case["dtype"]).requires_grad_(), on(b, case["dtype"]).requires_grad_()], {}


SPEC = declare(
    OpSpec(
        "rotated_box_iou",
        ops=("rotated_box_iou", "rotated_box_iou_backward"),
        register=lambda: register_pair_op("rotated_box_iou", _reference.rotated_box_iou_op),
        reference=_reference,
        plan=pair_plan(_parity_call, ("random", "degenerate", "flush")),
        bench="rotated_box_iou",
    )
)
