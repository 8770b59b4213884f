"""Oriented (xywhr, radians) boxes in the row form the rotated ops' kernels take (rotated_box_iou,
gaussian_distance): each angle as its cosine and sine, made once per box in torch."""

import torch


def xywhr_rows(boxes):
    """xywhr boxes (..., 5) → rows (..., 6): x, y, w, h, cos r, sin r."""
    r = boxes[..., 4:5]
    return torch.cat((boxes[..., :4], r.cos(), r.sin()), dim=-1)
