"""probIoU of oriented boxes (xywhr, radians) on fused ops (formulas in csrc/math/probiou.h).
batch_probiou: each box's Gaussian (covariance from w, h and the angle: O(boxes), in torch, as
ultralytics computes it), then every pair's Bhattacharyya distance and probIoU in one pass of
fastloss::probiou, forward and backward, writing only the output (the gradients' sums in a fixed order)
— where ultralytics' batch_probiou builds some twenty (N, M) tensors. probiou (aligned pairs):
fastloss::probiou_xywhr makes both boxes' Gaussians in the kernel too (sin and cos of fastloss's own,
csrc/math/elementary.h) and takes the gradient back to x, y, w, h, r there.
"""

import functools
import itertools

import numpy as np
import torch

from . import _autograd, _backend
from ._common import check_number, check_tensor
from ._spec import OpSpec, Plan, declare
from .reference import probiou as _reference


def _boxes(name, value):
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    check_tensor(name, value)
    if not value.dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating point tensor, got {value.dtype}")
    if value.dim() == 0 or value.shape[-1] != 5:
        raise ValueError(f"{name} must have shape (..., 5): x, y, w, h, r; got {tuple(value.shape)}")
    return value


def _op(boxes1, boxes2, eps, aligned):
    """The raw op on Gaussian boxes, in a math dtype; the reference without the kernels."""
    if _backend.use_kernels(boxes1.device):
        return torch.ops.fastloss.probiou(boxes1, boxes2, eps, aligned)
    return _reference.probiou_op(boxes1, boxes2, eps, aligned)


def _xywhr_op(boxes1, boxes2, eps, floor):
    """The raw op on aligned xywhr boxes, in a math dtype; the reference without the kernels."""
    if _backend.use_kernels(boxes1.device):
        return torch.ops.fastloss.probiou_xywhr(boxes1, boxes2, eps, True, floor)
    return _reference.probiou_xywhr_op(boxes1, boxes2, eps, True, floor)


def _checked(obb1, obb2, eps):
    """Both box sets as tensors, eps, the result's dtype and the math dtype (half → float32)."""
    obb1, obb2 = _boxes("obb1", obb1), _boxes("obb2", obb2)
    if obb1.device != obb2.device:
        raise ValueError(f"obb2 must be on obb1's device {obb1.device}, got {obb2.device}")
    eps = check_number("eps", eps)
    if eps <= 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    dtype = torch.promote_types(obb1.dtype, obb2.dtype)
    return obb1, obb2, eps, dtype, torch.float64 if dtype == torch.float64 else torch.float32


def probiou(obb1, obb2, CIoU=False, eps=1e-7, floor=0.0):
    """ultralytics.utils.metrics.probiou: the probabilistic IoU (Llerena et al., arXiv 2106.06072) of
    aligned oriented boxes obb1, obb2 (..., 5) in xywhr, broadcast: (..., 1).

    CIoU subtracts ultralytics' aspect-ratio term v·α (α without a gradient); floor is added to w²/12
    and h²/12 (bounds the gradient of sub-stride boxes). eps as ultralytics: in the denominators, in
    the clamp of the Bhattacharyya distance to [eps, 100] and under the final square root. Half
    boxes are computed in float32 and returned in their dtype.

    Degenerate boxes (w or h = 0) give a finite value and gradient: the √(det Σ₁ · det Σ₂) term
    passes no gradient where it is 0 (ultralytics' autograd gives NaN there). cos r and sin r are
    fastloss's own (≤ 1 ULP), so a result can differ from ultralytics' in its last places."""
    obb1, obb2, eps, dtype, math = _checked(obb1, obb2, eps)
    floor = check_number("floor", floor)
    try:
        lead = torch.broadcast_shapes(obb1.shape[:-1], obb2.shape[:-1])
    except RuntimeError:
        raise ValueError(
            f"obb1 and obb2 must broadcast, got shapes {tuple(obb1.shape)} and {tuple(obb2.shape)}"
        ) from None
    b1, b2 = obb1.to(math), obb2.to(math)
    iou = _xywhr_op(b1.expand(*lead, 5).reshape(-1, 5), b2.expand(*lead, 5).reshape(-1, 5), eps, floor).view(*lead, 1)
    if CIoU:
        iou = _reference.ciou_penalty(b1, b2, iou, eps)
    return iou.to(dtype)


def batch_probiou(obb1, obb2, eps=1e-7):
    """ultralytics.utils.metrics.batch_probiou: the probIoU of every pair of oriented boxes obb1 (N, 5)
    and obb2 (M, 5) in xywhr (tensors or numpy arrays): (N, M). Only the output is written — no
    (N, M) intermediates — and its backward sums each box's gradient in place. Half boxes are
    computed in float32 and returned in their dtype."""
    obb1, obb2, eps, dtype, math = _checked(obb1, obb2, eps)
    for name, t in (("obb1", obb1), ("obb2", obb2)):
        if t.dim() != 2:
            raise ValueError(f"{name} must have shape (N, 5), got {tuple(t.shape)}")
    g1, g2 = _reference.gaussians(obb1.to(math)), _reference.gaussians(obb2.to(math))
    return _op(g1, g2, eps, False).to(dtype)


__all__ = ["probiou", "batch_probiou"]


def register_pair_op(name, reference_op):
    """Fake kernels and autograd of a pair op (ops/box_pairs.h's schema: boxes1, boxes2, eps, aligned,
    then the op's constants, if any)."""

    def backward(ctx, args, saved, grads, needs):
        boxes1, boxes2, *constants = args
        g1, g2 = getattr(torch.ops.fastloss, name + "_backward")(
            grads[0].contiguous(), boxes1, boxes2, *constants, needs[0], needs[1]
        )
        return (g1 if needs[0] else None, g2 if needs[1] else None, *(None for _ in constants))

    @torch.library.register_fake(f"fastloss::{name}")
    def _(boxes1, boxes2, eps, aligned, *constants):
        return boxes1.new_empty((boxes1.shape[0],) if aligned else (boxes1.shape[0], boxes2.shape[0]))

    @torch.library.register_fake(f"fastloss::{name}_backward")
    def _(grad, boxes1, boxes2, eps, aligned, *rest):
        boxes1_grad, boxes2_grad = rest[-2:]
        return (
            boxes1.new_empty(boxes1.shape if boxes1_grad else (0,)),
            boxes2.new_empty(boxes2.shape if boxes2_grad else (0,)),
        )

    _autograd.register(_autograd.Spec(name, backward, reference_op))


def pair_plan(call, kinds, **variants):
    """The CUDA parity plan of a pair op: call(case, generator, on, seed) over boxes of `kinds` (and
    the op's variants: name=values)."""
    return Plan(
        factors=dict(
            dtype=[torch.float32, torch.float64],
            kind=list(kinds),
            **{name: list(values) for name, values in variants.items()},
            aligned=[False, True],
            n=[1, 7, 40, 300],
            m=[1, 5, 33, 257],
        ),
        call=call,
        elements=lambda case: case["n"] * (1 if case["aligned"] else case["m"]),
        shrink=("n", "m"),
        small=dict(n=40, m=33),
        mid=dict(n=300, m=257),
        large=dict(n=5000, m=4000),
        empty=(dict(n=0), dict(m=0, aligned=False)),
        sweep=lambda small: [
            small(dtype=d, aligned=a, **dict(zip(variants, values)))
            for d in (torch.float32, torch.float64)
            for a in (False, True)
            for values in itertools.product(*variants.values())
        ],
        exact_outputs=lambda case: 1,
    )


# ------------------------------------------------------------------------------------ the record


def xywhr_boxes(n, kind, generator, scale=10.0):
    """n xywhr boxes: "random" sizes and angles, "degenerate" (every third of zero width),
    "overlapping" (centres within one box size of each other)."""
    g = generator
    spread = 1.0 if kind == "overlapping" else scale
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * spread
    wh = torch.rand(n, 2, generator=g, dtype=torch.float64) * 3 + 0.1
    if kind == "degenerate":
        wh[::3, 0] = 0
    r = (torch.rand(n, 1, generator=g, dtype=torch.float64) - 0.5) * 2 * np.pi
    return torch.cat([xy, wh, r], -1)


def gaussian_boxes(n, kind, generator, scale=10.0):
    """xywhr_boxes' Gaussian boxes (x, y, a, b, c)."""
    return _reference.gaussians(xywhr_boxes(n, kind, generator, scale))


def _parity_call(case, g, on, seed):
    n = case["n"]
    m = n if case["aligned"] else case["m"]
    if case["rows"] == "xywhr":  # (floor: as the OBB criterion's)
        a, b = xywhr_boxes(n, case["kind"], g), xywhr_boxes(m, case["kind"], g)
        fn = functools.partial(torch.ops.fastloss.probiou_xywhr, eps=1e-7, aligned=case["aligned"], floor=0.01)
    else:
        a, b = gaussian_boxes(n, case["kind"], g), gaussian_boxes(m, case["kind"], g)
        fn = functools.partial(torch.ops.fastloss.probiou, eps=1e-7, aligned=case["aligned"])
    return fn, [on(a, case["dtype"]).requires_grad_(), on(b, case["dtype"]).requires_grad_()], {}


def _register():
    register_pair_op("probiou", _reference.probiou_op)
    register_pair_op("probiou_xywhr", _reference.probiou_xywhr_op)


SPEC = declare(
    OpSpec(
        "probiou",
        ops=("probiou", "probiou_backward", "probiou_xywhr", "probiou_xywhr_backward"),
        register=_register,
        reference=_reference,
        plan=pair_plan(_parity_call, ("random", "degenerate", "overlapping"), rows=("gaussian", "xywhr")),
        bench="probiou",
    )
)
