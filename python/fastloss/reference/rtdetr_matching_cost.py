"""RT-DETR's matching cost (ultralytics' HungarianMatcher) in plain torch, in ultralytics' order of
operations (formulas: csrc/math/matching_cost.h, rtdetr), with the raw op's arguments: the class
cost (L, B, Q, T), the query boxes (L, B, Q, 4) and the targets padded per image (B, T, 4), cxcywh
→ (L, B, Q, T). Every step is an exact IEEE operation, so these are ultralytics' bits too."""

import torch


def xywh_iou(box1, box2, giou=False, eps=1e-7):
    """ultralytics' bbox_iou(box1, box2, xywh=True, GIoU=giou)[..., 0] in plain torch, in its order of
    operations, so its bits (the matcher's near-ties break by them)."""
    (x1, y1, w1, h1), (x2, y2, w2, h2) = box1.unbind(-1), box2.unbind(-1)
    half_w1, half_h1, half_w2, half_h2 = w1 / 2, h1 / 2, w2 / 2, h2 / 2
    left1, right1, top1, bottom1 = x1 - half_w1, x1 + half_w1, y1 - half_h1, y1 + half_h1
    left2, right2, top2, bottom2 = x2 - half_w2, x2 + half_w2, y2 - half_h2, y2 + half_h2
    inter = (right1.minimum(right2) - left1.maximum(left2)).clamp(0) * (
        bottom1.minimum(bottom2) - top1.maximum(top2)
    ).clamp(0)
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = inter / union
    if not giou:
        return iou
    hull = (right1.maximum(right2) - left1.minimum(left2)) * (bottom1.maximum(bottom2) - top1.minimum(top2)) + eps
    return iou - (hull - union) / hull


def rtdetr_matching_cost(class_cost, pred_boxes, tgt_boxes, cost_class, cost_bbox, cost_giou):
    pred, target = pred_boxes.unsqueeze(-2), tgt_boxes.unsqueeze(-3)  # (L, B, Q, 1, 4), (B, 1, T, 4)
    # (pred − target).abs().sum(-1) as torch sums a last axis of 4: in order
    (px, py, pw, ph), (tx, ty, tw, th) = pred.unbind(-1), target.unbind(-1)
    l1 = (((px - tx).abs() + (py - ty).abs()) + (pw - tw).abs()) + (ph - th).abs()
    giou = 1.0 - xywh_iou(pred, target, giou=True)
    cost = cost_class * class_cost + cost_bbox * l1 + cost_giou * giou
    return torch.where(cost.isnan() | cost.isinf(), 0.0, cost)
