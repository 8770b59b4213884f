"""fastloss.prototype_mask_loss: the instance-mask loss of YOLACT and YOLOv8-seg, fused.

Each positive anchor's mask logits are its coefficients' combination of the image's prototypes; the
loss is their BCE against the target mask, inside the target box, averaged over the mask and divided
by the box's area (csrc/math/mask_loss.h). The kernels (csrc/cpu/ and csrc/cuda/mask_loss.*) visit
only the boxes' pixels, write only the (B, A) loss, and recompute the logits in the backward: no
(positives, H, W) tensor exists in either pass.
"""

import functools

import torch

from . import _autocast, _autograd, _backend
from ._autograd import refuse_grad
from ._common import opmath_dtype, reduction_code
from ._module import Loss
from ._inputs import mask_inputs
from ._spec import FLOATS, OpSpec, Plan, declare, operand_dtypes
from .reference import mask_loss as _reference

_OP = "fastloss::prototype_mask_loss"


def prototype_mask_loss(
    coefficients, protos, target_masks, target_index, boxes, areas, fg_mask, overlap=True, reduction="none"
):
    """Per-anchor prototype mask loss (Bolya et al., YOLACT, arXiv 1904.02689; ultralytics'
    v8SegmentationLoss.single_mask_loss): for anchor (b, a) of the foreground,

        z = Σₖ coefficients[b, k, a] · protos[b, k]                          (H, W) logits
        loss[b, a] = Σ_{x1 ≤ x < x2, y1 ≤ y < y2} BCE(z, t) / (H·W) / areas[b, a]

    and 0 off the foreground (and for masks of no pixels), in the math type (float32; float64 for
    float64 inputs); gradients flow to coefficients and protos.

    coefficients: (B, K, A), the head's layout (no transpose needed); K ≤ 64.
    protos: (B, K, H, W); promoted with coefficients.
    target_masks: overlap=True: (B, H, W), anchor (b, a)'s target is where the plane equals
        target_index[b, a] + 1 (ultralytics' overlapping masks); overlap=False: (M, H, W) rows, the
        target is row target_index[b, a] (0/1 or soft).
    target_index: (B, A) integers; boxes: (B, A, 4) x1 y1 x2 y2 in mask pixels; areas: (B, A), the
        boxes' area as a fraction of the image; fg_mask: (B, A) bool.
    reduction: "none" (the (B, A) losses), "sum", or "mean": the sum over the foreground anchors'
        count (ultralytics' normalisation; 0 without any), no host sync.
    A foreground anchor whose index names no row (overlap=False) is an error on the CPU and a NaN
    loss on CUDA (which cannot raise without a host sync).
    """
    code = reduction_code(reduction, None)
    a = _reference.check_args(coefficients, protos, target_masks, target_index, boxes, areas, fg_mask, overlap)
    if not _backend.use_kernels(a.coefficients.device):
        return _reference.reduce(_reference.compute(a), a.fg_mask, code)
    return _reference.reduce(torch.ops.fastloss.prototype_mask_loss(*a), a.fg_mask, code)


__all__ = ["prototype_mask_loss"]


def _backward(ctx, args, saved, grads, needs):
    refuse_grad(needs, [("target_masks", 2), ("boxes", 4), ("areas", 5)], "prototype_mask_loss")
    if grads[0] is None or not (needs[0] or needs[1]):
        return (None,) * 8
    grad_coefficients, grad_protos = torch.ops.fastloss.prototype_mask_loss_backward(grads[0], *args)
    return (grad_coefficients if needs[0] else None, grad_protos if needs[1] else None) + (None,) * 6


def _register():
    @torch.library.register_fake(_OP)
    def _(coefficients, protos, target_masks, target_index, boxes, areas, fg_mask, overlap):
        b, _, a = coefficients.shape
        return coefficients.new_empty((b, a), dtype=opmath_dtype(coefficients.dtype))

    @torch.library.register_fake(_OP + "_backward")
    def _(grad, coefficients, protos, target_masks, target_index, boxes, areas, fg_mask, overlap):
        return coefficients.new_empty(coefficients.shape), protos.new_empty(protos.shape)

    _autograd.register(_autograd.Spec("prototype_mask_loss", _backward, _reference.op))
    _autocast.register("prototype_mask_loss")


# -------------------------------------------------------------------------------- the nn module


class PrototypeMaskLoss(Loss):
    """fastloss.prototype_mask_loss as a module: forward(coefficients, protos, target_masks,
    target_index, boxes, areas, fg_mask)."""

    def __init__(self, overlap=True, reduction="mean"):
        super().__init__(reduction)
        self.overlap = overlap

    def forward(self, coefficients, protos, target_masks, target_index, boxes, areas, fg_mask):
        return prototype_mask_loss(
            coefficients, protos, target_masks, target_index, boxes, areas, fg_mask, self.overlap, self.reduction
        )

    def extra_repr(self):
        return f"overlap={self.overlap}, " + super().extra_repr()


# ------------------------------------------------------------------------------------ the record


def _parity_call(case, g, on, seed):
    dtype, _ = operand_dtypes(case)
    size = case["size"]
    tensors = mask_inputs(
        case["batch"], case["anchors"], case["k"], size, case["objects"], case["overlap"], g, scenario=case["scenario"]
    )
    coefficients, protos, masks, index, boxes, areas, fg = tensors
    protos = on(protos, dtype).requires_grad_(True)
    fn = functools.partial(prototype_mask_loss, overlap=case["overlap"])
    return fn, [on(coefficients, dtype), protos, on(masks), on(index), on(boxes), on(areas), on(fg)], {}


SPEC = declare(
    OpSpec(
        "mask_loss",
        ops=("prototype_mask_loss", "prototype_mask_loss_backward"),
        register=_register,
        reference=_reference,
        modules=(PrototypeMaskLoss,),
        plan=Plan(
            factors=dict(
                dtype=FLOATS,
                batch=[1, 3],
                anchors=[1, 40, 300],
                k=[1, 32, 64],
                size=[8, 40, 160],
                objects=[1, 5, 30],
                overlap=[True, False],
                scenario=["random", "edges"],
            ),
            call=_parity_call,
            elements=lambda case: case["batch"] * case["anchors"] * case["k"] * case["size"] ** 2 // 8,
            shrink=("anchors", ("size", 8)),
            small=dict(anchors=40, size=40),
            mid=dict(anchors=300, size=160, k=32),
            large=dict(batch=4, anchors=2000, size=160, k=32),
            empty=(dict(anchors=0), dict(batch=0)),
            sweep=lambda small: [small(dtype=d, overlap=o) for d in FLOATS for o in (True, False)],
        ),
    )
)
