"""Rotated task-aligned assignment in plain torch (formulas and tie rules: csrc/math/task_aligned.h),
with the raw op's arguments, as ultralytics' RotatedTaskAlignedAssigner computes it: the GTs' rows
(Gaussian, corner, edges) made per box, the predictions' Gaussians, then the (B, M, A) tensors the
kernels avoid."""

import torch

from . import probiou as _probiou
from . import task_aligned as _task_aligned


def corners(boxes):
    """ultralytics' xywhr2xyxyxyxy's first, second and fourth corners of xywhr boxes (..., 5)."""
    ctr = boxes[..., :2]
    w, h, angle = (boxes[..., i : i + 1] for i in range(2, 5))
    cos, sin = torch.cos(angle), torch.sin(angle)
    vec1 = torch.cat([w / 2 * cos, w / 2 * sin], -1)
    vec2 = torch.cat([-h / 2 * sin, h / 2 * cos], -1)
    return ctr + vec1 + vec2, ctr + vec1 - vec2, ctr - vec1 + vec2


def gt_rows(gt_bboxes, mask_gt, stride_val):
    """(B, M, 11): each GT's Gaussian, then corner A and edges AB, AD of its rectangle for the in-box
    test, its sides shorter than stride_val raised to it (valid GTs), as ultralytics."""
    boxes = gt_bboxes.clone()
    wh_mask = boxes[..., 2:4] < stride_val
    boxes[..., 2:4] = torch.where(
        (wh_mask * mask_gt[..., None]).bool(),
        torch.tensor(stride_val, dtype=boxes.dtype, device=boxes.device),
        boxes[..., 2:4],
    )
    a, b, d = corners(boxes)
    return torch.cat((_probiou.gaussians(gt_bboxes), a, b - a, d - a), -1)


def _rotated(anc, rows, pd, mask_gt, stride_val):
    """(candidate, overlap), each (B, M, A), of GT rows and prediction Gaussians."""
    a, ab, ad = rows[..., 5:7, None], rows[..., 7:9], rows[..., 9:11]
    apx, apy = anc[:, 0] - a[..., 0, :], anc[:, 1] - a[..., 1, :]
    norm_ab, norm_ad = (ab * ab).sum(-1)[..., None], (ad * ad).sum(-1)[..., None]
    ap_ab = apx * ab[..., 0:1] + apy * ab[..., 1:2]
    ap_ad = apx * ad[..., 0:1] + apy * ad[..., 1:2]
    inside = (ap_ab >= 0) & (ap_ab <= norm_ab) & (ap_ad >= 0) & (ap_ad <= norm_ad)
    overlap = _probiou.probiou_op(rows[:, :, None, :5], pd[:, None], 1e-7, True).clamp(0)
    return inside & mask_gt[..., None], overlap


def rotated_task_aligned_assign(
    pd_scores,
    pd_bboxes,
    anc_points,
    gt_labels,
    rows,
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
    """fastloss::rotated_task_aligned_assign."""
    out_dtype = torch.promote_types(torch.promote_types(pd_scores.dtype, pd_bboxes.dtype), gt_bboxes.dtype)
    math = torch.float64 if out_dtype == torch.float64 else torch.float32
    metrics = _task_aligned.pair_metrics(
        pd_scores,
        _probiou.gaussians(pd_bboxes.to(math)),
        anc_points,
        gt_labels,
        rows,
        mask_gt,
        alpha,
        beta,
        0.0,
        math,
        _rotated,
    )
    return _task_aligned.assign(*metrics, gt_labels, gt_bboxes, topk, topk2, num_classes, eps, sparse, out_dtype)


def near_ties(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, *, stride=(8, 16, 32), **kwargs):
    """reference.task_aligned.near_ties for xywhr boxes."""
    batch, gts = gt_bboxes.shape[:2]
    mask = mask_gt.reshape(batch, gts).bool()
    stride_val = stride[1] if len(stride) > 1 else stride[0]
    rows = gt_rows(gt_bboxes.double(), mask, stride_val)
    return _task_aligned.near_ties(
        pd_scores,
        _probiou.gaussians(pd_bboxes.double()),
        anc_points,
        gt_labels,
        rows,
        mask_gt,
        stride=stride,
        geometry=_rotated,
        **kwargs,
    )
