"""Pairwise box metrics — the N × M matrices of assigners and matchers — on one fused kernel
(fastloss::box_iou_matrix; formulas in csrc/math/box_matrix.h) that writes only the output:
`box_iou_matrix`, and torchvision's `box_iou`, `generalized_box_iou`, `distance_box_iou` and
`complete_box_iou` as drop-ins with torchvision's numbers. A backward is fused too (each box's
gradient summed over the other set; nothing of N × M is kept besides the incoming gradient).
"""

import math

import torch

from . import _autocast, _autograd, _backend, _vmap
import functools

from ._common import REDUCTIONS, reduce_unreduced
from ._inputs import random_boxes, strided, to_format
from ._spec import DTYPE_PAIRS, FLOATS, Case, OpSpec, Plan, declare, operand_dtypes
from ._common import check_choice, check_nonnegative, check_tensor
from .reference import box_matrix as _reference
from .reference.box_matrix import CONVENTIONS, FORMATS, KINDS, OUT_DTYPES

_OP = "fastloss::box_iou_matrix"
_ROTATED_FORMATS = ("cxcywhr", "xywhr", "xyxyxyxy")


def _boxes(name, boxes):
    """(..., N, 4) boxes as floats: integer boxes become float32, as torchvision's results are."""
    check_tensor(name, boxes)
    if boxes.dtype == torch.bool or boxes.dtype.is_complex:
        raise TypeError(f"{name} must be a floating point (or integer) tensor of boxes, got {boxes.dtype}")
    if boxes.dim() < 2 or boxes.shape[-1] != 4:
        raise ValueError(f"{name} must have shape (..., N, 4), got {tuple(boxes.shape)}")
    return boxes if boxes.dtype.is_floating_point else boxes.to(torch.get_default_dtype())


def pairwise(
    boxes1,
    boxes2,
    kind,
    box_format="xyxy",
    eps=1e-7,
    convention="torchvision",
    aligned=False,
    out_dtype=None,
    same_batch=False,
):
    """The metric of every pair: (..., N, M), or (..., N) with `aligned`. The leading dimensions
    broadcast (torchvision's rule), or must be equal with `same_batch` (mmdet's)."""
    boxes1, boxes2 = _boxes("boxes1", boxes1), _boxes("boxes2", boxes2)
    if boxes1.device != boxes2.device:
        raise ValueError(
            f"boxes1 and boxes2 must be on the same device; boxes1 is on {boxes1.device}, boxes2 on {boxes2.device}"
        )
    code = check_choice("kind", kind, KINDS)
    box_format = check_choice("box_format", box_format, FORMATS)
    eps = check_nonnegative("eps", eps)
    if out_dtype not in OUT_DTYPES:
        raise ValueError(
            f"out_dtype must be None, torch.float16, torch.bfloat16, torch.float32 or torch.float64, got {out_dtype}"
        )
    n, m = boxes1.shape[-2], boxes2.shape[-2]
    if same_batch:
        if boxes1.shape[:-2] != boxes2.shape[:-2]:
            raise ValueError(
                f"boxes1 and boxes2 must have the same batch shape, got {tuple(boxes1.shape[:-2])} and "
                f"{tuple(boxes2.shape[:-2])}"
            )
        batch = boxes1.shape[:-2]
    else:
        try:
            batch = torch.broadcast_shapes(boxes1.shape[:-2], boxes2.shape[:-2])
        except RuntimeError:
            raise ValueError(
                f"the batch shapes of boxes1 {tuple(boxes1.shape[:-2])} and boxes2 "
                f"{tuple(boxes2.shape[:-2])} do not broadcast"
            ) from None
    if aligned and n != m:
        raise ValueError(f"aligned pairs need as many boxes in boxes1 as in boxes2, got {n} and {m}")
    flat = math.prod(batch)
    b1 = boxes1.expand(*batch, n, 4).reshape(flat, n, 4)
    b2 = boxes2.expand(*batch, m, 4).reshape(flat, m, 4)
    args = (b1, b2, code, box_format, eps, CONVENTIONS[convention], aligned, OUT_DTYPES[out_dtype])
    if _backend.use_kernels(b1.device):
        result = torch.ops.fastloss.box_iou_matrix(*args)
    else:
        result = _reference.box_iou_matrix(*args)
    return result.reshape(*batch, n) if aligned else result.reshape(*batch, n, m)


def box_iou_matrix(boxes1, boxes2, kind="iou", *, box_format="xyxy", eps=1e-7, out_dtype=None):
    """The pairwise metric of boxes1 (..., N, 4) and boxes2 (..., M, 4): a (..., N, M) tensor.

    kind: "iou", "giou", "diou", "ciou", "eiou", or "iof" (intersection over boxes1's area).
    eps goes where torchvision puts it: in DIoU's c², CIoU's α (and EIoU's side terms); IoU, IoF and
    GIoU divide without it (a zero-area pair is NaN, as torchvision's). Leading dimensions broadcast.
    The math runs in float32 (float64 for float64 boxes); the result is in that dtype, or in
    out_dtype (float16/bfloat16 halve the matrix's memory). Differentiable with respect to both sets.
    """
    return pairwise(boxes1, boxes2, kind, box_format, eps, out_dtype=out_dtype)


def box_iou(boxes1, boxes2, fmt="xyxy"):
    """torchvision.ops.box_iou with the same arguments and numbers (axis-aligned formats)."""
    if fmt in _ROTATED_FORMATS:
        raise ValueError(
            f"fastloss.box_iou supports the axis-aligned formats 'xyxy', 'xywh', 'cxcywh'; for rotated "
            f"boxes ({fmt!r}) use torchvision.ops.box_iou"
        )
    if fmt not in FORMATS:
        raise ValueError(f"Unsupported format '{fmt}'. Supported axis-aligned formats: {tuple(FORMATS)}.")
    return pairwise(boxes1, boxes2, "iou", fmt)


def generalized_box_iou(boxes1, boxes2):
    """torchvision.ops.generalized_box_iou: (..., N, M) GIoU of xyxy boxes."""
    return pairwise(boxes1, boxes2, "giou")


def distance_box_iou(boxes1, boxes2, eps=1e-7):
    """torchvision.ops.distance_box_iou: (..., N, M) DIoU of xyxy boxes."""
    return pairwise(boxes1, boxes2, "diou", eps=eps)


def complete_box_iou(boxes1, boxes2, eps=1e-7):
    """torchvision.ops.complete_box_iou: (..., N, M) CIoU of xyxy boxes (α held constant)."""
    return pairwise(boxes1, boxes2, "ciou", eps=eps)


__all__ = ["box_iou_matrix", "box_iou", "generalized_box_iou", "distance_box_iou", "complete_box_iou"]


def _backward(ctx, args, saved, grads, needs):
    boxes1, boxes2, kind, box_format, eps, convention, aligned, _ = args
    g1, g2 = torch.ops.fastloss.box_iou_matrix_backward(
        grads[0], boxes1, boxes2, kind, box_format, eps, convention, aligned, needs[0], needs[1]
    )
    return (g1 if needs[0] else None, g2 if needs[1] else None) + (None,) * 6


def _vmap_rule(info, in_dims, boxes1, boxes2, kind, box_format, eps, convention, aligned, out_code):
    batch = info.batch_size
    b1, b2 = _vmap.front(boxes1, in_dims[0], batch), _vmap.front(boxes2, in_dims[1], batch)
    result = torch.ops.fastloss.box_iou_matrix(
        b1.reshape(-1, *b1.shape[2:]),
        b2.reshape(-1, *b2.shape[2:]),
        kind,
        box_format,
        eps,
        convention,
        aligned,
        out_code,
    )
    return result.reshape(batch, -1, *result.shape[1:]), 0


def _register():
    @torch.library.register_fake(_OP)
    def _(boxes1, boxes2, kind, box_format, eps, convention, aligned, out_code):
        shape = boxes1.shape[:2] if aligned else (boxes1.shape[0], boxes1.shape[1], boxes2.shape[1])
        return boxes1.new_empty(shape, dtype=_reference.out_dtype(out_code, _reference.math_dtype(boxes1, boxes2)))

    @torch.library.register_fake(_OP + "_backward")
    def _(grad, boxes1, boxes2, kind, box_format, eps, convention, aligned, boxes1_grad, boxes2_grad):
        return (
            boxes1.new_empty(boxes1.shape if boxes1_grad else (0,)),
            boxes2.new_empty(boxes2.shape if boxes2_grad else (0,)),
        )

    _autograd.register(_autograd.Spec("box_iou_matrix", _backward, _reference.box_iou_matrix))
    _vmap.register("box_iou_matrix", _vmap_rule)
    _autocast.register("box_iou_matrix")


# ------------------------------------------------------------------------------------ the record


def _box_sets(n, dtype, device, g):
    """boxes1 (n, 4) and boxes2 (n + 3, 4) for the pairwise metrics (the SIMD lanes run along boxes2)."""
    return (
        random_boxes(n, generator=g).to(device=device, dtype=dtype),
        random_boxes(n + 3, generator=g).to(device=device, dtype=dtype),
    ), {}


def _matrix(kind, fused, convention="torchvision"):
    """The pairwise metric matrix of a kind as a "loss" (reduced by the case's reduction), fused or reference."""

    def loss(boxes1, boxes2, reduction="mean"):
        if fused:
            matrix = pairwise(boxes1, boxes2, kind, eps=1e-6, convention=convention)
        else:
            matrix = _reference.box_iou_matrix(
                boxes1[None], boxes2[None], KINDS[kind], 0, 1e-6, CONVENTIONS[convention], False, 0
            )[0]
        return reduce_unreduced(matrix, REDUCTIONS[reduction], None)

    return loss


def _matrix_case(kind, convention="torchvision"):
    name = "bbox_overlaps " + kind if convention == "mmdet" else "box_iou_matrix " + kind
    return Case(
        name, _matrix(kind, True, convention), _matrix(kind, False, convention), _box_sets, frozen_factor=kind == "ciou"
    )


def _any_option(kind, box_format, convention, aligned, out_dtype, boxes1, boxes2):
    """The pairwise metric kernel under any option, as the faces call it."""
    return pairwise(boxes1, boxes2, kind, box_format, 1e-6, convention, aligned, out_dtype)


def _parity_call(case, g, on, seed):
    dtype, dtype2 = operand_dtypes(case)
    n, m = case["n"], case["n"] if case["aligned"] else case["m"]
    a = random_boxes(case["batch"] * n, generator=g).reshape(case["batch"], n, 4)
    b = random_boxes(case["batch"] * m, generator=g).reshape(case["batch"], m, 4)
    a, b = on(to_format(a, case["box_format"]), dtype), on(to_format(b, case["box_format"]), dtype2)
    kind = case["kind"] if case["convention"] == "torchvision" or case["kind"] in ("iou", "giou", "iof") else "iou"
    fn = functools.partial(
        _any_option, kind, case["box_format"], case["convention"], case["aligned"], case["out_dtype"]
    )
    return fn, [strided(a, case["contiguous"]), b.requires_grad_(case["grad"] == "both")], {}


def _dtype_sweep(small):
    # the output's dtype is any, from either math type
    return [small(dtype=a, dtype2=b, grad="both") for a, b in DTYPE_PAIRS] + [
        small(dtype=a, out_dtype=o) for a in (torch.float32, torch.float64) for o in FLOATS
    ]


SPEC = declare(
    OpSpec(
        "box_matrix",
        ops=("box_iou_matrix", "box_iou_matrix_backward"),
        register=_register,
        reference=_reference,
        cases=(
            _matrix_case("diou"),
            _matrix_case("ciou"),
            _matrix_case("eiou"),
            _matrix_case("giou", "mmdet"),
            _matrix_case("iof", "mmdet"),
        ),
        plan=Plan(
            factors=dict(
                dtype=FLOATS,
                n=[1, 31, 33, 257, 1025],
                m=[1, 17, 33, 4099],
                batch=[1, 3],
                kind=["iou", "giou", "diou", "ciou", "eiou", "iof"],
                box_format=["xyxy", "xywh", "cxcywh"],
                convention=["torchvision", "mmdet"],
                aligned=[False, True],
                out_dtype=[None, torch.float16],
                grad=["boxes1", "both"],
                contiguous=[True, False],
            ),
            call=_parity_call,
            elements=lambda case: case["batch"] * case["n"] * (1 if case["aligned"] else case["m"]),
            shrink=("m", "n"),
            small=dict(n=31, m=17),
            mid=dict(n=1025, m=4099),
            large=dict(n=40_000, m=60_000, out_dtype=torch.float16),
            empty=(dict(n=0), dict(m=0)),
            sweep=_dtype_sweep,
            exact_outputs=lambda case: 1,  # the matrix; its gradient sums along a row
        ),
        bench="box_matrix",
    )
)
