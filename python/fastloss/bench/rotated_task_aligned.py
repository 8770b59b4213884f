"""Benchmark cases of rotated task-aligned assignment at YOLOv8-OBB's DOTA training size: batch 8, a
1024² image's 21,504 anchors, 15 classes, 100 and 1,000 oriented GTs per image (a quarter of them
padding), forward only (assigners run under no_grad). ultralytics' RotatedTaskAlignedAssigner is AGPL:
`make bench` adds its rows from scripts/bench_peers.py."""

import math

import torch

from .. import rotated_task_aligned as fused
from ..reference import rotated_task_aligned as reference
from . import Case, register
from .task_aligned import anchor_points, assigner_tensors

BATCH, SIZE, CLASSES = 8, 1024, 15


def rotated_assignment_inputs(gts):
    """xywhr GTs at any angle; each anchor's prediction jittered around a GT that contains its point."""

    def make(device, dtype, small):
        batch, size, m = (2, 160, min(gts, 8)) if small else (BATCH, SIZE, gts)
        g = torch.Generator().manual_seed(gts)
        anc = anchor_points(size)
        xy = torch.rand(batch, m, 2, generator=g) * size
        wh = torch.rand(batch, m, 2, generator=g) * size / 12 + 6
        r = (torch.rand(batch, m, 1, generator=g) - 0.5) * math.pi
        gt = torch.cat([xy, wh, r], -1)
        valid = (torch.arange(m) < max(m * 3 // 4, 1)).float()[None, :, None].expand(batch, m, 1).contiguous()
        d = anc - gt[..., None, :2]  # the anchors in each GT's frame
        cos, sin = gt[..., 4:5].cos(), gt[..., 4:5].sin()
        u, v = d[..., 0] * cos + d[..., 1] * sin, d[..., 1] * cos - d[..., 0] * sin
        inside = (u.abs() < gt[..., 2:3] / 2) & (v.abs() < gt[..., 3:4] / 2)
        pick = ((inside.float() + 0.01) * torch.rand(inside.shape, generator=g)).argmax(1)
        near = gt.gather(1, pick[..., None].expand(-1, -1, 5))
        jitter = torch.randn(near.shape, generator=g) * 0.15
        pd = torch.cat(
            [
                near[..., :2] + jitter[..., :2] * near[..., 2:4],
                near[..., 2:4] * (1 + jitter[..., 2:4]).abs() + 1,
                near[..., 4:] + jitter[..., 4:],
            ],
            -1,
        )
        return assigner_tensors(g, CLASSES, pd, anc, gt, valid, device, dtype)

    return make


def _fastloss(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt):
    return fused.rotated_task_aligned_assign(
        pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, num_classes=CLASSES
    )


def _reference(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt):
    mask = mask_gt.squeeze(-1).bool()
    rows = reference.gt_rows(gt_bboxes, mask, 16.0)
    return reference.rotated_task_aligned_assign(
        pd_scores,
        pd_bboxes,
        anc_points,
        gt_labels.squeeze(-1).long(),
        rows,
        gt_bboxes,
        mask,
        10,
        10,
        CLASSES,
        0.5,
        6.0,
        1e-9,
        False,
    )


for gts in (100, 1000):
    register(
        Case(
            name=f"rotated_task_aligned_assign {BATCH}x21504x{CLASSES} {gts} GTs",
            make_inputs=rotated_assignment_inputs(gts),
            grad=(),
            fastloss=_fastloss,
            reference=_reference,
            forward_only=True,
            dtypes=(torch.float32, torch.float64),
            # (the reference's (B, M, A) tensors at 1,000 GTs: several GB; ultralytics' too)
            bench_reference=gts < 1000,
        )
    )
