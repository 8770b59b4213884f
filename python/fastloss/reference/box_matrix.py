"""Pairwise box metrics in plain torch (formulas: csrc/math/box_matrix.h) with the raw op's arguments:
the definition the kernels are tested against, and what runs for a differentiable backward or under
torch.func (fastloss._autograd)."""

import torch

# Codes of csrc/math/box_matrix.h and csrc/ops/box_matrix.h.
KINDS = {"iou": 0, "giou": 1, "diou": 2, "ciou": 3, "eiou": 4, "iof": 5}
CONVENTIONS = {"torchvision": 0, "mmdet": 1}
FORMATS = {"xyxy": 0, "xywh": 1, "cxcywh": 2}
OUT_DTYPES = {None: 0, torch.float16: 1, torch.bfloat16: 2, torch.float32: 3, torch.float64: 4}
FOUR_OVER_PI_SQUARED = 0.405284734569351085775517852838911


def math_dtype(*tensors):
    dtype = torch.promote_types(tensors[0].dtype, tensors[1].dtype)
    return torch.float64 if dtype == torch.float64 else torch.float32


def out_dtype(code, math):
    return {v: k for k, v in OUT_DTYPES.items()}[code] or math


def _fields(boxes, box_format):
    """x1, y1, x2, y2, w, h, cx, cy of (..., 4) boxes in the math type."""
    a, b, c, d = boxes.unbind(-1)
    if box_format == FORMATS["xywh"]:
        x1, y1, x2, y2, w, h = a, b, a + c, b + d, c, d
        return x1, y1, x2, y2, w, h, (x1 + x2) / 2, (y1 + y2) / 2
    if box_format == FORMATS["cxcywh"]:
        return a - c / 2, b - d / 2, a + c / 2, b + d / 2, c, d, a, b
    return a, b, c, d, c - a, d - b, (a + c) / 2, (b + d) / 2


def _nan_of(boxes):
    """NaN for a box with a NaN coordinate, else 0 (the kernels add it to the box's every pair)."""
    return torch.where(boxes.isnan().any(-1), boxes.sum(-1), 0)


def box_iou_matrix(boxes1, boxes2, kind, box_format, eps, convention, aligned, out_code):
    """boxes1 (B, N, 4), boxes2 (B, M, 4) → (B, N, M), or (B, N) for aligned pairs."""
    math = math_dtype(boxes1, boxes2)
    b1, b2 = boxes1.to(math), boxes2.to(math)
    x1, y1, x2, y2, w1, h1, cx1, cy1 = _fields(b1, box_format)
    u1, v1, u2, v2, w2, h2, cx2, cy2 = _fields(b2, box_format)
    nan1, nan2 = _nan_of(b1), _nan_of(b2)
    if not aligned:  # a on rows, b on columns
        x1, y1, x2, y2, w1, h1, cx1, cy1, nan1 = (t[..., :, None] for t in (x1, y1, x2, y2, w1, h1, cx1, cy1, nan1))
        u1, v1, u2, v2, w2, h2, cx2, cy2, nan2 = (t[..., None, :] for t in (u1, v1, u2, v2, w2, h2, cx2, cy2, nan2))
    mmdet = convention == CONVENTIONS["mmdet"]
    iw = (torch.minimum(x2, u2) - torch.maximum(x1, u1)).clamp(min=0)
    ih = (torch.minimum(y2, v2) - torch.maximum(y1, v1)).clamp(min=0)
    inter = iw * ih
    area1, area2 = w1 * h1, w2 * h2
    den = area1 if kind == KINDS["iof"] else area1 + area2 - inter
    if mmdet:
        den = torch.maximum(den, den.new_tensor(eps))
    iou = inter / den
    metric = iou + (nan1 + nan2)
    if kind not in (KINDS["iou"], KINDS["iof"]):
        cw = (torch.maximum(x2, u2) - torch.minimum(x1, u1)).clamp(min=0)
        ch = (torch.maximum(y2, v2) - torch.minimum(y1, v1)).clamp(min=0)
        if kind == KINDS["giou"]:
            area_c = cw * ch
            if mmdet:
                area_c = torch.maximum(area_c, area_c.new_tensor(eps))
            metric = metric - (area_c - den) / area_c
        else:
            c2 = cw * cw + ch * ch + eps
            metric = metric - ((cx1 - cx2) ** 2 + (cy1 - cy2) ** 2) / c2
            if kind == KINDS["ciou"]:
                v = FOUR_OVER_PI_SQUARED * (torch.atan(w1 / h1) - torch.atan(w2 / h2)) ** 2
                with torch.no_grad():
                    alpha = v / (1 - iou + v + eps)
                metric = metric - alpha * v
            elif kind == KINDS["eiou"]:
                metric = metric - (w1 - w2) ** 2 / (cw * cw + eps) - (h1 - h2) ** 2 / (ch * ch + eps)
    return metric.to(out_dtype(out_code, math))
