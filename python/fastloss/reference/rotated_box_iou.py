"""The exact IoU of rotated boxes in plain torch (formulas: csrc/math/rotated_iou.h): the raw op
fastloss::rotated_box_iou over rows (x, y, w, h, cos, sin) — Green's theorem over each rectangle's
edges clipped to the other — pairwise (N, M) or aligned (N,)."""

import torch


def _rect(rows, ox, oy):
    """Corners (counter-clockwise, relative to (ox, oy)) and half sizes of rows (..., 6)."""
    x, y, w, h, co, si = rows.unbind(-1)
    hw, hh = 0.5 * w.clamp(min=0), 0.5 * h.clamp(min=0)
    norm = (co * co + si * si).sqrt()
    co, si = co / norm, si / norm
    cx, cy = x - ox, y - oy
    ux, uy, vx, vy = hw * co, hw * si, -(hh * si), hh * co
    xs = [cx + ux + vx, cx - ux + vx, cx - ux - vx, cx + ux - vx]
    ys = [cy + uy + vy, cy - uy + vy, cy - uy - vy, cy + uy - vy]
    return xs, ys, hw, hh


def _side(qx, qy, j, px, py):
    k = (j + 1) % 4
    return (qx[k] - qx[j]) * (py - qy[j]) - (qy[k] - qy[j]) * (px - qx[j])


def _clip_term(px, py, i, qx, qy, keep_boundary):
    """½ (x₀y₁ − y₀x₁) of edge i of p clipped to q's half-planes (0 where empty)."""
    n = (i + 1) % 4
    t0, t1 = torch.zeros_like(px[i]), torch.ones_like(px[i])
    empty = torch.zeros_like(px[i], dtype=torch.bool)
    for j in range(4):
        sa, sb = _side(qx, qy, j, px[i], py[i]), _side(qx, qy, j, px[n], py[n])
        d = sb - sa
        t = -sa / torch.where(d == 0, 1, d)
        raises, lowers = (d > 0) & (t > t0), (d < 0) & (t < t1)
        t0, t1 = torch.where(raises, t, t0), torch.where(lowers, t, t1)
        k = (j + 1) % 4
        along = (px[n] - px[i]) * (qx[k] - qx[j]) + (py[n] - py[i]) * (qy[k] - qy[j])
        kept = (along > 0) if keep_boundary else torch.zeros_like(empty)
        empty = empty | ((d == 0) & ((sa < 0) | ((sa == 0) & ~kept)))
    dx, dy = px[n] - px[i], py[n] - py[i]
    x0, y0, x1, y1 = px[i] + t0 * dx, py[i] + t0 * dy, px[i] + t1 * dx, py[i] + t1 * dy
    return torch.where((t1 > t0) & ~empty, 0.5 * (x0 * y1 - y0 * x1), 0)


def rotated_box_iou_op(boxes1, boxes2, eps, aligned):
    """fastloss::rotated_box_iou: rows (N, 6) and (M, 6) → (N, M), or (N,) aligned."""
    if not aligned:
        boxes1, boxes2 = boxes1[:, None], boxes2[None]
    ox, oy = boxes1[..., 0], boxes1[..., 1]
    px, py, phw, phh = _rect(boxes1, ox, oy)
    qx, qy, qhw, qhh = _rect(boxes2, ox, oy)
    total = sum(_clip_term(px, py, i, qx, qy, True) for i in range(4))
    total = total + sum(_clip_term(qx, qy, i, px, py, False) for i in range(4))
    inter = total.clamp(min=0)
    return inter / (4 * phw * phh + 4 * qhw * qhh - inter + eps)
