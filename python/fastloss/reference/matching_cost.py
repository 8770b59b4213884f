"""The DETR family's matching cost in plain torch (formulas: csrc/math/matching_cost.h) with the raw
op's arguments: predictions (L, B, Q, ·), padded targets (B, T, ·) → (L, B, Q, T)."""

import torch

from .box_matrix import box_iou_matrix


def _xyxy(cxcywh):
    cx, cy, w, h = cxcywh.unbind(-1)
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], -1)


def matching_cost(
    pred_logits, pred_boxes, tgt_labels, tgt_boxes, tgt_mask, class_cost, alpha, gamma, cost_class, cost_bbox, cost_giou
):
    dtype = torch.promote_types(torch.promote_types(pred_logits.dtype, pred_boxes.dtype), tgt_boxes.dtype)
    math = torch.float64 if dtype == torch.float64 else torch.float32
    logits, boxes, tgt = pred_logits.to(math), pred_boxes.to(math), tgt_boxes.to(math)
    layers, batch, queries, classes = logits.shape
    index = tgt_labels.clamp(0, classes - 1)[None, :, None, :].expand(layers, batch, queries, -1)
    if class_cost == 0:
        p = logits.sigmoid().gather(-1, index)
        neg = (1 - alpha) * p**gamma * -(1 - p + 1e-8).log()
        pos = alpha * (1 - p) ** gamma * -(p + 1e-8).log()
        cls = pos - neg
    else:
        cls = -logits.softmax(-1).gather(-1, index)
    l1 = (boxes[..., :, None, :] - tgt[None, :, None, :, :]).abs().sum(-1)
    giou = box_iou_matrix(_xyxy(boxes).flatten(0, 1), _xyxy(tgt).repeat(layers, 1, 1), 1, 0, 0.0, 0, False, 0)
    cost = cost_bbox * l1 + cost_class * cls + cost_giou * -giou.view(layers, batch, queries, -1)
    return torch.where(tgt_mask[None, :, None, :], cost, 0)
