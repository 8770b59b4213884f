"""fastloss.HungarianMatcher: the Hungarian matcher of Deformable DETR and DINO (their constructor,
forward and results) on fastloss.matching_cost and fastloss.linear_sum_assignment: every image's cost
block in one call over padded targets, every image matched in one call on the predictions' device —
no (B·Q) × ΣT matrix, no copy to the host, no loop over images through scipy.
"""

import torch

from ._common import check_nonnegative, check_tensor
from ._torchscript import NotScriptable
from .linear_assignment import linear_sum_assignment
from .matching import matching_cost


def pad_groups(rows, sizes, fill=0):
    """rows (ΣT, ...) split into len(sizes) groups of sizes[i] rows, padded into (B, max(sizes), ...);
    and the (B, max(sizes)) mask of the real rows. Built by slice copies and fills of host-known sizes:
    no host sync."""
    batch, width = len(sizes), max(sizes, default=0)
    padded = rows.new_full((batch, width, *rows.shape[1:]), fill)
    mask = torch.zeros(batch, width, dtype=torch.bool, device=rows.device)
    start = 0
    for i, n in enumerate(sizes):
        padded[i, :n] = rows[start : start + n]
        mask[i, :n] = True
        start += n
    return padded, mask


def matched_pairs(cost, mask, sizes, offsets=None):
    """Each image's (query indices, target indices) from a (..., B, Q, T) cost over targets padded per
    image (mask (B, T): the real ones), as scipy's linear_sum_assignment returns them on its unpadded
    block cost[..., i, :, :sizes[i]]: (..., min(Q, sizes[i])) each, queries ascending; target indices
    plus offsets[i] where given. On the cost's device, without a host sync."""
    rows, cols = linear_sum_assignment(cost, mask.sum(-1).expand(cost.shape[:-2]).contiguous())
    queries = cost.shape[-2]
    pairs = []
    for i, n in enumerate(sizes):
        k = min(queries, n)
        j = cols[..., i, :k]
        pairs.append((rows[..., i, :k], j if offsets is None or offsets[i] == 0 else j + offsets[i]))
    return pairs


class HungarianMatcher(NotScriptable, torch.nn.Module):
    """The Hungarian matcher of Deformable DETR and DINO: the same constructor and defaults, forward
    and results.

    forward(outputs, targets): outputs["pred_logits"] (B, Q, C) sigmoid logits and
    outputs["pred_boxes"] (B, Q, 4) normalised cxcywh; targets, one dict per image with "labels"
    (T_i,) and "boxes" (T_i, 4). Returns one (query indices, target indices) pair of int64 tensors per
    image, min(Q, T_i) pairs with the queries ascending — scipy's linear_sum_assignment of that
    image's block of cost_bbox · L1 + cost_class · focal class cost (α = focal_alpha, γ = 2) −
    cost_giou · GIoU — on the predictions' device (the matchers return CPU tensors).
    """

    def __init__(self, cost_class=1.0, cost_bbox=1.0, cost_giou=1.0, focal_alpha=0.25):
        super().__init__()
        self.cost_class = check_nonnegative("cost_class", cost_class)
        self.cost_bbox = check_nonnegative("cost_bbox", cost_bbox)
        self.cost_giou = check_nonnegative("cost_giou", cost_giou)
        self.focal_alpha = check_nonnegative("focal_alpha", focal_alpha)
        if cost_class == 0 and cost_bbox == 0 and cost_giou == 0:
            raise ValueError("all costs cant be 0: cost_class, cost_bbox and cost_giou are all 0")

    @torch.no_grad()
    def forward(self, outputs, targets):
        if not isinstance(outputs, dict) or "pred_logits" not in outputs or "pred_boxes" not in outputs:
            raise TypeError('outputs must be a dict with "pred_logits" and "pred_boxes"')
        logits, boxes = outputs["pred_logits"], outputs["pred_boxes"]
        check_tensor("outputs['pred_logits']", logits)
        if logits.dim() != 3:
            raise ValueError(f"outputs['pred_logits'] must be (B, Q, C), got {tuple(logits.shape)}")
        if len(targets) != logits.shape[0]:
            raise ValueError(f"targets must hold one dict per image: {logits.shape[0]} images, got {len(targets)}")
        sizes = [len(t["labels"]) for t in targets]
        device = logits.device
        labels, _ = pad_groups(torch.cat([t["labels"] for t in targets]).to(device), sizes)
        tgt_boxes, mask = pad_groups(torch.cat([t["boxes"] for t in targets]).to(device, boxes.dtype), sizes)
        cost = matching_cost(
            logits,
            boxes,
            labels,
            tgt_boxes,
            mask,
            class_cost="focal",
            alpha=self.focal_alpha,
            gamma=2.0,
            cost_class=self.cost_class,
            cost_bbox=self.cost_bbox,
            cost_giou=self.cost_giou,
        )
        return matched_pairs(cost, mask, sizes)

    def extra_repr(self):
        return (
            f"cost_class={self.cost_class}, cost_bbox={self.cost_bbox}, cost_giou={self.cost_giou}, "
            f"focal_alpha={self.focal_alpha}"
        )


__all__ = ["HungarianMatcher"]
