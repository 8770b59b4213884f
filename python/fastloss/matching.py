"""The DETR family's Hungarian matching cost on one fused op, fastloss::matching_cost (formulas in
csrc/math/matching_cost.h): the class cost gathered by label (Deformable DETR / DINO's focal form, or
DETR's softmax), the L1 distance of cxcywh boxes and −GIoU, over padded targets, for one or several
decoder layers in one launch — without the (B·Q) × ΣT matrices the matchers build across images.
"""

import torch

from . import _backend
import functools

from ._inputs import detr_inputs
from ._spec import DTYPE_PAIRS, FLOATS, OpSpec, Plan, declare, operand_dtypes
from .reference import matching_cost as _reference
from ._common import check_choice, check_nonnegative, check_number, check_tensor, check_values

_OP = "fastloss::matching_cost"
CLASS_COSTS = {"focal": 0, "softmax": 1}


def _float(name, t, shapes, last=None):
    check_tensor(name, t)
    if not t.dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating point tensor, got {t.dtype}")
    if t.dim() not in shapes or (last is not None and t.shape[-1] != last):
        wanted = shapes[t.dim()] if t.dim() in shapes else " or ".join(shapes.values())
        raise ValueError(f"{name} must have shape {wanted}, got {tuple(t.shape)}")


def matching_cost(
    pred_logits,
    pred_boxes,
    tgt_labels,
    tgt_boxes,
    tgt_mask,
    *,
    class_cost="focal",
    alpha=0.25,
    gamma=2.0,
    cost_class=2.0,
    cost_bbox=5.0,
    cost_giou=2.0,
):
    """The matching cost of every query and every target of its image: (B, Q, T), or (L, B, Q, T) for
    L stacked decoder layers (pred_logits (L, B, Q, C), pred_boxes (L, B, Q, 4)).

    pred_logits (B, Q, C): "focal" (Deformable DETR, DINO: sigmoid logits) or "softmax" (DETR: C
    logits whose last is "no object", never a target). pred_boxes (B, Q, 4) and tgt_boxes (B, T, 4):
    normalised cxcywh. tgt_labels (B, T) and tgt_mask (B, T): targets padded to T per image, mask
    True for the real ones. The arguments and defaults are the matchers' (Deformable DETR / DINO).

    cost = cost_bbox · L1(boxes) + cost_class · class cost + cost_giou · (−GIoU), as the matchers'
    cost blocks, in float32 for half logits (so always finite). A padded target's column is exactly 0:
    for Q ≥ T a Hungarian assignment of the padded matrix matches the real targets as one of the
    unpadded matrix does (any query takes a constant column at the same price). No gradient.
    """
    layered = pred_logits.dim() == 4 if isinstance(pred_logits, torch.Tensor) else False
    _float("pred_logits", pred_logits, {3: "(B, Q, C)", 4: "(L, B, Q, C)"})
    _float("pred_boxes", pred_boxes, {pred_logits.dim(): "(L, B, Q, 4)" if layered else "(B, Q, 4)"}, 4)
    _float("tgt_boxes", tgt_boxes, {3: "(B, T, 4)"}, 4)
    check_tensor("tgt_labels", tgt_labels)
    check_tensor("tgt_mask", tgt_mask)
    logits = pred_logits if layered else pred_logits.unsqueeze(0)
    boxes = pred_boxes if layered else pred_boxes.unsqueeze(0)
    if boxes.shape[:3] != logits.shape[:3]:
        raise ValueError(
            f"pred_boxes must match pred_logits' leading dimensions {tuple(logits.shape[:3])}, got {tuple(boxes.shape)}"
        )
    batch, targets = tgt_boxes.shape[:2]
    if logits.shape[1] != batch:
        raise ValueError(f"tgt_boxes must have the predictions' batch size {logits.shape[1]}, got {batch}")
    for name, t in (("tgt_labels", tgt_labels), ("tgt_mask", tgt_mask)):
        if tuple(t.shape) != (batch, targets):
            raise ValueError(f"{name} must have shape (B, T) = {(batch, targets)}, got {tuple(t.shape)}")
    for name, t in (
        ("pred_boxes", boxes),
        ("tgt_labels", tgt_labels),
        ("tgt_boxes", tgt_boxes),
        ("tgt_mask", tgt_mask),
    ):
        if t.device != logits.device:
            raise ValueError(f"{name} must be on pred_logits' device {logits.device}, got {t.device}")
    if tgt_labels.dtype.is_floating_point or tgt_labels.dtype.is_complex or tgt_labels.dtype == torch.bool:
        raise TypeError(f"tgt_labels must be an integer tensor, got {tgt_labels.dtype}")
    code = check_choice("class_cost", class_cost, CLASS_COSTS)
    alpha = check_number("alpha", alpha)
    gamma = check_nonnegative("gamma", gamma)
    weights = [
        check_number(n, v) for n, v in (("cost_class", cost_class), ("cost_bbox", cost_bbox), ("cost_giou", cost_giou))
    ]
    labels, mask = tgt_labels.long(), tgt_mask.bool()
    classes = logits.shape[-1] - (1 if code == CLASS_COSTS["softmax"] else 0)
    if classes < 1:
        raise ValueError(
            f"pred_logits needs at least one class{' besides no object' if code else ''}, got shape "
            f"{tuple(pred_logits.shape)}"
        )
    bad = mask & ((labels < 0) | (labels >= classes))
    check_values(
        bad,
        lambda read: (
            f"tgt_labels has {'label ' + str(labels[bad][0].item()) if read else 'a label'} "
            f"outside [0, {classes}) for a target that tgt_mask marks real"
        ),
    )
    args = (logits.detach(), boxes.detach(), labels, tgt_boxes.detach(), mask, code, alpha, gamma, *weights)
    if _backend.use_kernels(logits.device):
        out = torch.ops.fastloss.matching_cost(*args)
    else:
        from .reference.matching_cost import matching_cost as reference

        out = reference(*args)
    return out if layered else out[0]


__all__ = ["matching_cost"]


def _register():
    @torch.library.register_fake(_OP)
    def _(
        pred_logits,
        pred_boxes,
        tgt_labels,
        tgt_boxes,
        tgt_mask,
        class_cost,
        alpha,
        gamma,
        cost_class,
        cost_bbox,
        cost_giou,
    ):
        dtype = torch.promote_types(torch.promote_types(pred_logits.dtype, pred_boxes.dtype), tgt_boxes.dtype)
        return pred_logits.new_empty(
            (*pred_logits.shape[:3], tgt_boxes.shape[1]),
            dtype=torch.float64 if dtype == torch.float64 else torch.float32,
        )


# ------------------------------------------------------------------------------------ the record


def _parity_call(case, g, on, seed):
    dtype, dtype2 = operand_dtypes(case)
    counts = tuple(min(case["targets"], (i * 7) % (case["targets"] + 1)) for i in range(case["batch"]))
    counts = (case["targets"],) + counts[1:]
    args = detr_inputs(
        batch=case["batch"],
        queries=case["queries"],
        classes=case["classes"],
        targets=case["targets"],
        counts=counts,
        layers=case["layers"] or None,
        softmax=case["kind"] == "softmax",
        dtype=dtype,
        seed=seed,
    )
    args = [args[0], args[1].to(dtype2), args[2], args[3].to(case.get("dtype3") or dtype2), args[4]]
    return functools.partial(matching_cost, class_cost=case["kind"]), [on(t) for t in args], {}


SPEC = declare(
    OpSpec(
        "matching_cost",
        ops=("matching_cost",),
        register=_register,
        reference=_reference,
        plan=Plan(
            factors=dict(
                dtype=FLOATS,
                kind=["focal", "softmax"],
                batch=[1, 3],
                queries=[1, 20, 300],
                targets=[0, 1, 7, 40],
                layers=[0, 2],
                classes=[1, 9, 91],
            ),
            call=_parity_call,
            elements=lambda case: max(case["layers"], 1) * case["batch"] * case["queries"] * max(case["targets"], 1),
            shrink=("queries",),
            small=dict(queries=20, targets=7),
            mid=dict(layers=6, queries=300, targets=100),
            large=dict(layers=6, batch=16, queries=900, targets=300),
            empty=(dict(queries=0), dict(targets=0)),
            sweep=lambda small: [
                small(dtype=a, dtype2=b, kind=k) for a, b in DTYPE_PAIRS for k in ("focal", "softmax")
            ],
            differentiable=False,
            exact_outputs=lambda case: 1 if case["kind"] == "focal" else 0,  # (softmax: a row sum)
        ),
        bench="matching_cost",
    )
)
