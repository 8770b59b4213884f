"""The prototype mask loss of YOLACT / YOLOv8-seg (formula: csrc/math/mask_loss.h) in plain torch,
and its argument checks, which fastloss.mask_loss shares."""

from typing import NamedTuple

import torch
import torch.nn.functional as F

from .._common import (
    NONE,
    SUM,
    check_bool,
    check_floating,
    check_same_device,
    check_tensor,
    opmath_dtype,
    reduction_code,
)

MAX_COEFFICIENTS = 64  # csrc/ops/mask_loss.h's kMaxCoefficients


class MaskLossArgs(NamedTuple):
    coefficients: torch.Tensor  # (B, K, A)
    protos: torch.Tensor  # (B, K, H, W), the coefficients' dtype
    target_masks: torch.Tensor  # (B, H, W) with overlap, else (M, H, W); math type
    target_index: torch.Tensor  # (B, A) int64
    boxes: torch.Tensor  # (B, A, 4), math type
    areas: torch.Tensor  # (B, A), math type
    fg_mask: torch.Tensor  # (B, A) bool
    overlap: bool


def _shape(name, t, shape, what):
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name} must be {what} = {tuple(shape)}, got {tuple(t.shape)}")


def check_args(coefficients, protos, target_masks, target_index, boxes, areas, fg_mask, overlap) -> MaskLossArgs:
    check_floating("coefficients", coefficients)
    check_floating("protos", protos)
    for name, t in (("target_masks", target_masks), ("target_index", target_index), ("boxes", boxes)):
        check_tensor(name, t)
    for name, t in (("areas", areas), ("fg_mask", fg_mask)):
        check_tensor(name, t)
    for name, t in (
        ("protos", protos),
        ("target_masks", target_masks),
        ("target_index", target_index),
        ("boxes", boxes),
        ("areas", areas),
        ("fg_mask", fg_mask),
    ):
        check_same_device(name, t, "coefficients", coefficients)
    check_bool("overlap", overlap)
    if coefficients.dim() != 3:
        raise ValueError(f"coefficients must be (B, K, A), got shape {tuple(coefficients.shape)}")
    b, k, a = coefficients.shape
    if k > MAX_COEFFICIENTS:
        raise ValueError(f"coefficients: at most {MAX_COEFFICIENTS} prototypes (K), got {k}")
    if protos.dim() != 4 or protos.shape[:2] != (b, k):
        raise ValueError(f"protos must be (B, K, H, W) with (B, K) = {(b, k)}, got shape {tuple(protos.shape)}")
    h, w = protos.shape[2:]
    if target_masks.dim() != 3 or target_masks.shape[1:] != (h, w) or (overlap and target_masks.shape[0] != b):
        what = "(B, H, W)" if overlap else "(M, H, W)"
        raise ValueError(f"target_masks must be {what} with (H, W) = {(h, w)}, got shape {tuple(target_masks.shape)}")
    if target_index.dtype.is_floating_point or target_index.dtype == torch.bool or target_index.is_complex():
        raise ValueError(f"target_index must hold integers, got {target_index.dtype}")
    _shape("target_index", target_index, (b, a), "(B, A)")
    _shape("boxes", boxes, (b, a, 4), "(B, A, 4)")
    _shape("areas", areas, (b, a), "(B, A)")
    _shape("fg_mask", fg_mask, (b, a), "(B, A)")
    for name, t in (("target_masks", target_masks), ("boxes", boxes), ("areas", areas)):
        if t.requires_grad:
            raise ValueError(
                f"{name} requires grad, but prototype_mask_loss gives it no gradient; pass {name}.detach()"
            )
    dtype = torch.promote_types(coefficients.dtype, protos.dtype)
    math = opmath_dtype(dtype)
    return MaskLossArgs(
        coefficients.to(dtype),
        protos.to(dtype),
        target_masks.to(math),
        target_index.long(),
        boxes.to(math),
        areas.to(math),
        fg_mask.bool(),
        bool(overlap),
    )


def crop(boxes, h, w):
    """(B, A, H, W) bool: pixel (y, x) kept where x1 ≤ x < x2 and y1 ≤ y < y2 (ultralytics' crop_mask)."""
    x = torch.arange(w, device=boxes.device, dtype=boxes.dtype)
    y = torch.arange(h, device=boxes.device, dtype=boxes.dtype)
    x1, y1, x2, y2 = (boxes[..., i, None, None] for i in range(4))
    return (x >= x1) & (x < x2) & (y[:, None] >= y1) & (y[:, None] < y2)


def targets(a: MaskLossArgs):
    """(B, A, H, W): each anchor's target mask (0 where its index names none)."""
    if a.overlap:
        return (a.target_masks[:, None] == (a.target_index + 1)[..., None, None]).to(a.target_masks.dtype)
    rows = a.target_masks.shape[0]
    valid = (a.target_index >= 0) & (a.target_index < rows)
    picked = (
        a.target_masks[a.target_index.clamp(0, max(rows - 1, 0))]
        if rows
        else a.target_masks.new_zeros((*a.target_index.shape, *a.target_masks.shape[1:]))
    )
    return picked * valid[..., None, None]


def compute(a: MaskLossArgs) -> torch.Tensor:
    """(B, A) in the math type: the per-anchor loss, 0 off the foreground."""
    math = a.boxes.dtype
    h, w = a.protos.shape[2:]
    logits = torch.einsum("bka,bkhw->bahw", a.coefficients.to(math), a.protos.to(math))
    bce = F.binary_cross_entropy_with_logits(logits, targets(a), reduction="none")
    kept = bce * crop(a.boxes, h, w)
    # (areas off the foreground may be 0: 1 there, so that where() passes no NaN to their gradient)
    areas = torch.where(a.fg_mask, a.areas, torch.ones_like(a.areas))
    per_anchor = kept.sum((2, 3)) / max(h * w, 1) / areas  # (masks of no pixels: 0)
    return torch.where(a.fg_mask, per_anchor, torch.zeros_like(per_anchor))


def reduce(per_anchor, fg_mask, code):
    """The (B, A) losses reduced: NONE as they are, SUM, or MEAN over the foreground's count (0
    without any)."""
    if code == NONE:
        return per_anchor
    total = per_anchor.sum()
    return total if code == SUM else total / fg_mask.sum().clamp(min=1).to(total.dtype)


def op(coefficients, protos, target_masks, target_index, boxes, areas, fg_mask, overlap):
    """fastloss::prototype_mask_loss in torch ops."""
    return compute(MaskLossArgs(coefficients, protos, target_masks, target_index, boxes, areas, fg_mask, overlap))


def prototype_mask_loss(
    coefficients, protos, target_masks, target_index, boxes, areas, fg_mask, overlap=True, reduction="none"
):
    """fastloss.prototype_mask_loss in plain torch: the same arguments, the same numbers."""
    code = reduction_code(reduction, None)
    a = check_args(coefficients, protos, target_masks, target_index, boxes, areas, fg_mask, overlap)
    return reduce(compute(a), a.fg_mask, code)


__all__ = ["prototype_mask_loss"]
