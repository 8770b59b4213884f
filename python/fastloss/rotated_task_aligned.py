"""Rotated task-aligned assignment (the assigner of YOLOv8–11 OBB) on one fused op,
fastloss::rotated_task_aligned_assign (formulas and tie rules in csrc/math/task_aligned.h): what
ultralytics' RotatedTaskAlignedAssigner returns, without materialising any (batch, GTs, anchors)
tensor. Only the GTs' values are made in torch, as ultralytics makes them: each GT's Gaussian and the
corner and edges of its (stride-raised) rectangle. Each prediction's Gaussian is made in the kernel,
from its xywhr box, where a pair needs it.
"""

import itertools
import math

import torch

from . import _backend
from ._inputs import assigner_inputs
from ._spec import FLOATS, OpSpec, Plan, declare
from .reference import rotated_task_aligned as _reference
from .task_aligned import Checked, anchor_count, checked_inputs, parity_call

_OP = "fastloss::rotated_task_aligned_assign"


def rotated_task_aligned_assign(
    pd_scores,
    pd_bboxes,
    anc_points,
    gt_labels,
    gt_bboxes,
    mask_gt,
    *,
    topk=10,
    num_classes,
    alpha=0.5,
    beta=6.0,
    eps=1e-9,
    stride=(8, 16, 32),
    topk2=None,
    sparse=False,
):
    """Task-aligned assignment of anchors to oriented ground-truth boxes, as ultralytics'
    RotatedTaskAlignedAssigner: task_aligned_assign's arguments and results (see it), with pd_bboxes
    (B, A, 5) and gt_bboxes (B, M, 5) in xywhr (radians), target_bboxes (B, A, 5). The overlap is
    max(probIoU(gt, pred), 0); an anchor is a GT's candidate when its projections on the edges of the
    GT's rectangle (sides shorter than stride[1] raised to it) fall within them, edges included.
    """
    tensors = (pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt)
    checked = checked_inputs(tensors, topk, num_classes, alpha, beta, eps, stride, topk2, sparse, box_fields=5)
    if not isinstance(checked, Checked):
        return checked
    labels, mask, topk, topk2, num_classes, alpha, beta, eps, stride_val, sparse = checked
    out = torch.promote_types(torch.promote_types(pd_scores.dtype, pd_bboxes.dtype), gt_bboxes.dtype)
    math_dtype = torch.float64 if out == torch.float64 else torch.float32
    gt = gt_bboxes.detach()
    rows = _reference.gt_rows(gt.to(math_dtype), mask, stride_val)
    args = (
        pd_scores.detach(),
        pd_bboxes.detach(),
        anc_points.detach(),
        labels,
        rows,
        gt,
        mask,
        topk,
        topk2,
        num_classes,
    )
    if not _backend.use_kernels(pd_scores.device):
        return _reference.rotated_task_aligned_assign(*args, alpha, beta, eps, sparse)
    return torch.ops.fastloss.rotated_task_aligned_assign(*args, alpha, beta, eps, sparse)


__all__ = ["rotated_task_aligned_assign"]


def _register():
    @torch.library.register_fake(_OP)
    def _(
        pd_scores,
        pd_bboxes,
        anc_points,
        gt_labels,
        gt_rows,
        gt_bboxes,
        mask_gt,
        topk,
        topk2,
        num_classes,
        alpha,
        beta,
        eps,
        sparse,
    ):
        b, a = pd_scores.shape[:2]
        out = torch.promote_types(torch.promote_types(pd_scores.dtype, pd_bboxes.dtype), gt_bboxes.dtype)
        return (
            pd_scores.new_empty((b, a), dtype=torch.long),
            gt_bboxes.new_empty((b, a, 5)),
            pd_scores.new_empty((b, a) if sparse else (b, a, num_classes), dtype=out),
            pd_scores.new_empty((b, a), dtype=torch.bool),
            pd_scores.new_empty((b, a), dtype=torch.long),
        )


# ------------------------------------------------------------------------------------ the record


def rotated_inputs(batch, gts, valid, classes, size, seed, quantized, dtype):
    """assigner_inputs' scores, anchors, labels and mask, with xywhr boxes: the xyxy boxes' centres and
    sizes, turned by random angles (quantized: multiples of π/4, where ties are exact)."""
    scores, pd, anchors, labels, gt, mask = assigner_inputs(
        batch=batch, gts=gts, valid=valid, classes=classes, size=size, seed=seed, quantized=quantized, dtype=dtype
    )
    g = torch.Generator().manual_seed(seed + 1)

    def xywhr(boxes):
        turns = (
            torch.randint(-4, 5, boxes.shape[:-1] + (1,), generator=g) * (math.pi / 4)
            if quantized
            else (torch.rand(boxes.shape[:-1] + (1,), generator=g, dtype=torch.float64) - 0.5) * math.pi
        )
        xy, wh = (boxes[..., :2] + boxes[..., 2:]) / 2, boxes[..., 2:] - boxes[..., :2]
        return torch.cat([xy, wh, turns.to(boxes.dtype)], -1)

    return scores, xywhr(pd), anchors, labels, xywhr(gt), mask


SPEC = declare(
    OpSpec(
        "rotated_task_aligned",
        ops=("rotated_task_aligned_assign",),
        register=_register,
        reference=_reference,
        plan=Plan(
            factors=dict(
                dtype=FLOATS,
                batch=[1, 3],
                gts=[0, 1, 12, 40, 100],
                classes=[1, 7, 15],
                size=[16, 64, 160, 320],
                topk=[1, 10, 13],
                topk2=[None, 5],
                sparse=[False, True],
                quantized=[False, True],
            ),
            call=parity_call(rotated_inputs, rotated_task_aligned_assign, scenarios=False),
            elements=lambda case: case["batch"] * max(case["gts"], 1) * anchor_count(case["size"]),
            shrink=(("size", 32), "gts"),
            small=dict(gts=12, size=64),
            mid=dict(gts=100, size=640),
            large=dict(batch=8, gts=400, size=640),
            empty=(dict(gts=0), dict(batch=0)),
            sweep=lambda small: [
                small(dtype=a, dtype2=b, sparse=(i + k) % 2 == 1, topk=10, topk2=topk2)
                for i, (a, b) in enumerate(itertools.product(FLOATS, FLOATS))
                for k, topk2 in enumerate((None, 5))
            ],
            differentiable=False,
            decisions=True,
        ),
        bench="rotated_task_aligned",
    )
)
