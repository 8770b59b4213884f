"""mmdet's bbox_overlaps (mmdet.structures.bbox.bbox_overlaps) on fastloss's pairwise kernel: its
arguments, its eps placement (the union — or the first box's area for "iof" — and the enclosing
area floored at eps), its batch rule (equal leading dimensions) and its result dtype (the boxes')."""

import torch

from ..box_matrix import pairwise

MODES = ("iou", "iof", "giou")


def bbox_overlaps(bboxes1, bboxes2, mode="iou", is_aligned=False, eps=1e-6):
    """Overlaps of bboxes1 (..., m, 4) and bboxes2 (..., n, 4), xyxy: (..., m, n), or (..., m) with
    is_aligned (m == n). mode: "iou", "iof" (over bboxes1's area) or "giou". Computed in float32
    (float64 for float64 boxes) without the (..., m, n, 2) intermediates mmdet's version builds."""
    if mode not in MODES:
        raise ValueError(f"Unsupported mode {mode!r}: must be one of {', '.join(map(repr, MODES))}")
    boxes = []
    for name, b in (("bboxes1", bboxes1), ("bboxes2", bboxes2)):
        if not isinstance(b, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(b).__name__}")
        if b.dim() >= 2 and b.shape[0] == 0 and b.shape[-1] != 4:  # mmdet accepts any empty (0, k)
            b = b.new_empty(*b.shape[:-1], 4)
        boxes.append(b)
    dtype = torch.promote_types(boxes[0].dtype, boxes[1].dtype)
    return pairwise(
        boxes[0],
        boxes[1],
        mode,
        eps=eps,
        convention="mmdet",
        aligned=bool(is_aligned),
        out_dtype=dtype if dtype.is_floating_point else None,
        same_batch=True,
    )
