"""probIoU of oriented boxes in plain torch (formulas: csrc/math/probiou.h), in ultralytics' order of
operations (ultralytics/utils/metrics.py): the boxes' Gaussians, the raw op over them — Gaussian
boxes (N, 5) = (x, y, a, b, c), pairwise (N, M) or aligned (N,) — and the public functions."""

import math

import torch


def covariance(boxes, floor=0.0):
    """The covariance [[a, c], [c, b]] of xywhr boxes (..., 5) as Gaussians: a, b, c each (..., 1),
    ultralytics' _get_covariance_matrix (w²/12 and h²/12 rotated by r, `floor` added to both)."""
    gbbs = torch.cat((boxes[..., 2:4].pow(2) / 12 + floor, boxes[..., 4:]), dim=-1)
    a, b, c = gbbs.split(1, dim=-1)
    cos, sin = c.cos(), c.sin()
    cos2, sin2 = cos.pow(2), sin.pow(2)
    return a * cos2 + b * sin2, a * sin2 + b * cos2, (a - b) * cos * sin


def gaussians(boxes, floor=0.0):
    """xywhr boxes (..., 5) → Gaussian boxes (..., 5): x, y, a, b, c."""
    return torch.cat((boxes[..., :2], *covariance(boxes, floor)), dim=-1)


def probiou_op(boxes1, boxes2, eps, aligned):
    """fastloss::probiou: Gaussian boxes (N, 5) and (M, 5) → (N, M), or (N,) aligned."""
    if not aligned:
        boxes1, boxes2 = boxes1[:, None], boxes2[None]
    x1, y1, a1, b1, c1 = boxes1.unbind(-1)
    x2, y2, a2, b2, c2 = boxes2.unbind(-1)
    det = (a1 + a2) * (b1 + b2) - (c1 + c2).pow(2)
    t1 = (((a1 + a2) * (y1 - y2).pow(2) + (b1 + b2) * (x1 - x2).pow(2)) / (det + eps)) * 0.25
    t2 = (((c1 + c2) * (x2 - x1) * (y1 - y2)) / (det + eps)) * 0.5
    area = ((a1 * b1 - c1.pow(2)).clamp(0) * (a2 * b2 - c2.pow(2)).clamp(0)).sqrt()
    t3 = (det / (4 * area + eps) + eps).log() * 0.5
    bd = (t1 + t2 + t3).clamp(eps, 100.0)
    return 1 - (1.0 - (-bd).exp() + eps).sqrt()


def probiou_xywhr_op(boxes1, boxes2, eps, aligned, floor):
    """fastloss::probiou_xywhr: xywhr boxes (N, 5) and (M, 5), the floor added to w²/12 and h²/12."""
    return probiou_op(gaussians(boxes1, floor), gaussians(boxes2, floor), eps, aligned)


def ciou_penalty(obb1, obb2, iou, eps):
    """ultralytics' probiou(CIoU=True): iou − v·α, v the aspect-ratio term, α without a gradient."""
    w1, h1 = obb1[..., 2:4].split(1, dim=-1)
    w2, h2 = obb2[..., 2:4].split(1, dim=-1)
    v = (4 / math.pi**2) * ((w2 / h2).atan() - (w1 / h1).atan()).pow(2)
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return iou - v * alpha


def probiou(obb1, obb2, CIoU=False, eps=1e-7, floor=0.0):
    lead = torch.broadcast_shapes(obb1.shape[:-1], obb2.shape[:-1])
    g1 = gaussians(obb1, floor).expand(*lead, 5).reshape(-1, 5)
    g2 = gaussians(obb2, floor).expand(*lead, 5).reshape(-1, 5)
    iou = probiou_op(g1, g2, eps, True).view(*lead, 1)
    return ciou_penalty(obb1, obb2, iou, eps) if CIoU else iou


def batch_probiou(obb1, obb2, eps=1e-7):
    return probiou_op(gaussians(obb1), gaussians(obb2), eps, False)
