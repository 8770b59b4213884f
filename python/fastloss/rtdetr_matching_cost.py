"""RT-DETR's matching cost on one fused op, fastloss::rtdetr_matching_cost (formulas in
csrc/math/matching_cost.h, rtdetr): ultralytics' HungarianMatcher cost from its class cost, every
decoder layer and image in one pass — the L1 distance, 1 − GIoU, the gains and the NaN/inf → 0 that
ultralytics computes as some thirty (B·Q) × ΣT tensors per layer — bit for bit its float32 values.
"""

import functools

import torch

from . import _backend
from ._common import check_number, check_tensor
from ._inputs import detr_inputs
from ._spec import OpSpec, Plan, declare
from .reference import rtdetr_matching_cost as _reference

_OP = "fastloss::rtdetr_matching_cost"


def rtdetr_matching_cost(class_cost, pred_boxes, tgt_boxes, cost_class=1.0, cost_bbox=5.0, cost_giou=2.0):
    """ultralytics' RT-DETR matching cost of every query and every (padded) target of its image:

        cost = cost_class · class_cost + cost_bbox · L1(pred, tgt) + cost_giou · (1 − GIoU(pred, tgt)),

    NaN and ±inf set to 0, each step in ultralytics' order (HungarianMatcher.forward and bbox_iou with
    xywh=True, GIoU=True, eps=1e-7), so float32 gives its bits.

    class_cost: (B, Q, T) or (L, B, Q, T), float32 or float64: the class term of each pair, computed
        by the caller (fastloss.ultralytics.class_cost gives ultralytics' focal or softmax one).
    pred_boxes: (B, Q, 4) or (L, B, Q, 4) cxcywh; tgt_boxes: (B, T, 4) cxcywh, targets padded per
        image (the padded columns get a cost; the assignment leaves them out by count).
    The defaults are ultralytics' cost_gain. Returns class_cost's shape and dtype; no gradient.
    """
    check_tensor("class_cost", class_cost)
    check_tensor("pred_boxes", pred_boxes)
    check_tensor("tgt_boxes", tgt_boxes)
    if class_cost.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"class_cost must be a float32 or float64 tensor, got {class_cost.dtype}")
    if class_cost.dim() not in (3, 4):
        raise ValueError(f"class_cost must have shape (B, Q, T) or (L, B, Q, T), got {tuple(class_cost.shape)}")
    layered = class_cost.dim() == 4
    cls = class_cost if layered else class_cost.unsqueeze(0)
    layers, batch, queries, targets = cls.shape
    for name, t in (("pred_boxes", pred_boxes), ("tgt_boxes", tgt_boxes)):
        if t.device != class_cost.device:
            raise ValueError(f"{name} must be on class_cost's device {class_cost.device}, got {t.device}")
        if not t.dtype.is_floating_point:
            raise TypeError(f"{name} must be a floating point tensor, got {t.dtype}")
    boxes = pred_boxes if layered else pred_boxes.unsqueeze(0)
    if tuple(boxes.shape) != (layers, batch, queries, 4):
        wanted = (layers, batch, queries, 4) if layered else (batch, queries, 4)
        raise ValueError(f"pred_boxes must have shape {wanted} to match class_cost, got {tuple(pred_boxes.shape)}")
    if tuple(tgt_boxes.shape) != (batch, targets, 4):
        raise ValueError(
            f"tgt_boxes must have shape {(batch, targets, 4)} to match class_cost, got {tuple(tgt_boxes.shape)}"
        )
    gains = [
        check_number(n, v) for n, v in (("cost_class", cost_class), ("cost_bbox", cost_bbox), ("cost_giou", cost_giou))
    ]
    args = (cls.detach(), boxes.detach().to(cls.dtype), tgt_boxes.detach().to(cls.dtype), *gains)
    if _backend.use_kernels(cls.device):
        out = torch.ops.fastloss.rtdetr_matching_cost(*args)
    else:
        out = _reference.rtdetr_matching_cost(*args)
    return out if layered else out[0]


__all__ = ["rtdetr_matching_cost"]


def _register():
    @torch.library.register_fake(_OP)
    def _(class_cost, pred_boxes, tgt_boxes, cost_class, cost_bbox, cost_giou):
        return torch.empty_like(class_cost, memory_format=torch.contiguous_format)


# ------------------------------------------------------------------------------------ the record


def _parity_call(case, g, on, seed):
    """Boxes of DETR's inputs ("overlapping"), the same with every fourth target box degenerate (zero
    size: the GIoU's eps terms decide) or with NaN / inf entries in each operand ("nonfinite")."""
    layers, batch, queries, targets = case["layers"], case["batch"], case["queries"], case["targets"]
    _, boxes, _, tgt, _ = detr_inputs(batch, queries, 3, targets, (targets,) * batch, layers, seed=seed)
    cls = torch.randn(layers, batch, queries, targets, generator=g, dtype=torch.float64)
    if case["kind"] == "degenerate":
        tgt[:, ::4, 2:] = 0
    elif case["kind"] == "nonfinite" and cls.numel() > 0:
        cls.view(-1)[::7] = float("nan")
        boxes.view(-1)[::11] = float("inf")
        tgt.view(-1)[::13] = -float("inf")
    fn = functools.partial(
        rtdetr_matching_cost, cost_class=case["gains"][0], cost_bbox=case["gains"][1], cost_giou=case["gains"][2]
    )
    dtype = case["dtype"]
    return fn, [on(cls, dtype), on(boxes, dtype), on(tgt, dtype)], {}


SPEC = declare(
    OpSpec(
        "rtdetr_matching_cost",
        ops=("rtdetr_matching_cost",),
        register=_register,
        reference=_reference,
        plan=Plan(
            factors=dict(
                dtype=[torch.float32, torch.float64],
                kind=["overlapping", "degenerate", "nonfinite"],
                layers=[1, 7],
                batch=[1, 3, 16],
                queries=[1, 20, 300],
                targets=[0, 1, 7, 40],
                gains=[(1, 5, 2), (2.0, 0.1, 0.0)],
            ),
            call=_parity_call,
            elements=lambda case: case["layers"] * case["batch"] * case["queries"] * max(case["targets"], 1),
            shrink=("queries", "batch"),
            small=dict(queries=20, targets=7),
            mid=dict(layers=7, batch=16, queries=300, targets=20),
            large=dict(layers=7, batch=16, queries=900, targets=300),
            empty=(dict(queries=0), dict(targets=0), dict(batch=0)),
            sweep=lambda small: [
                small(dtype=d, kind=k) for d in (torch.float32, torch.float64) for k in ("overlapping", "nonfinite")
            ],
            differentiable=False,
            exact_outputs=lambda case: 1,
        ),
        bench="matching_cost",
    )
)
