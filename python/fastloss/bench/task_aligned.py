"""Benchmark cases of task-aligned assignment at YOLOv8's training sizes: batch 16, a 640² image's
8,400 anchors, 80 classes, 50 / 300 / 1,000 GTs per image (half of them padding in the first), forward
only (assigners run under no_grad). ultralytics' TaskAlignedAssigner is AGPL: the package never
imports it; `make bench` adds its rows from scripts/bench_peers.py (python -m fastloss bench --peers)."""

import torch

from .. import task_aligned as fused
from ..reference import task_aligned as reference
from . import Case, register

BATCH, SIZE, CLASSES = 16, 640, 80


def anchor_points(size):
    points = []
    for stride in (8, 16, 32):
        n = size // stride
        y, x = torch.meshgrid(torch.arange(n) + 0.5, torch.arange(n) + 0.5, indexing="ij")
        points.append(torch.stack([x, y], -1).reshape(-1, 2) * stride)
    return torch.cat(points)


def assigner_tensors(g, classes, pd, anc, gt, valid, device, dtype):
    """An assigner's inputs by name: random labels and scores, the padding GTs zeroed."""
    batch, m = gt.shape[:2]
    labels = torch.randint(0, classes, (batch, m, 1), generator=g).float()
    tensors = dict(
        pd_scores=torch.rand(batch, anc.shape[0], classes, generator=g),
        pd_bboxes=pd,
        anc_points=anc,
        gt_labels=labels * valid,
        gt_bboxes=gt * valid,
        mask_gt=valid,
    )
    return {
        k: v.to(device=device, dtype=dtype if k in ("pd_scores", "pd_bboxes", "gt_bboxes") else v.dtype)
        for k, v in tensors.items()
    }


def assignment_inputs(gts):
    """Predictions jittered around the GT that contains their anchor, scores uniform."""

    def make(device, dtype, small):
        batch, size, m = (2, 160, min(gts, 8)) if small else (BATCH, SIZE, gts)
        g = torch.Generator().manual_seed(gts)
        anc = anchor_points(size)
        xy = torch.rand(batch, m, 2, generator=g) * size * 0.9
        gt = torch.cat([xy, xy + torch.rand(batch, m, 2, generator=g) * size / 4 + 4], -1)
        valid = (torch.arange(m) < max(m * 3 // 4, 1)).float()[None, :, None].expand(batch, m, 1).contiguous()
        inside = (
            (anc[:, 0] > gt[..., :1])
            & (anc[:, 1] > gt[..., 1:2])
            & (anc[:, 0] < gt[..., 2:3])
            & (anc[:, 1] < gt[..., 3:4])
        )
        pick = ((inside.float() + 0.01) * torch.rand(inside.shape, generator=g)).argmax(1)
        near = gt.gather(1, pick[..., None].expand(-1, -1, 4))
        pd = near + torch.randn(near.shape, generator=g) * (near[..., 2:] - near[..., :2]).repeat(1, 1, 2) * 0.15
        pd = torch.cat([torch.minimum(pd[..., :2], pd[..., 2:]), torch.maximum(pd[..., :2], pd[..., 2:]) + 1], -1)
        return assigner_tensors(g, CLASSES, pd, anc, gt, valid, device, dtype)

    return make


def _fastloss(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt):
    return fused.task_aligned_assign(
        pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, num_classes=CLASSES
    )


def _reference(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt):
    return reference.task_aligned_assign(
        pd_scores,
        pd_bboxes,
        anc_points,
        gt_labels.squeeze(-1).long(),
        gt_bboxes,
        mask_gt.squeeze(-1).bool(),
        10,
        10,
        CLASSES,
        0.5,
        6.0,
        1e-9,
        16.0,
        False,
    )


for gts in (50, 300, 1000):
    register(
        Case(
            name=f"task_aligned_assign {BATCH}x8400x{CLASSES} {gts} GTs",
            make_inputs=assignment_inputs(gts),
            grad=(),
            fastloss=_fastloss,
            reference=_reference,
            forward_only=True,
            dtypes=(torch.float32, torch.float64, torch.float16),
        )
    )
