"""A DETR-family Hungarian matcher (Deformable DETR / DINO's costs) on fastloss.matching_cost and
fastloss.linear_sum_assignment: one call builds the cost of every decoder layer over padded targets,
without the (B·Q) × ΣT matrix the matchers build across images, and one call matches every layer and
image as scipy's linear_sum_assignment would, on the cost's device (no .cpu(), no loop over images).

Run: python examples/detr_matching.py
"""

import torch

import fastloss


@torch.no_grad()
def hungarian_match(pred_logits, pred_boxes, targets, cost_class=2.0, cost_bbox=5.0, cost_giou=2.0):
    """pred_logits (L, B, Q, C) and pred_boxes (L, B, Q, 4) of L decoder layers; targets: one dict per
    image with "labels" (T_i,) and "boxes" (T_i, 4) in normalised cxcywh. Returns, per layer, one
    (query indices, target indices) pair per image, as the matchers return them."""
    batch, padded = len(targets), max((len(t["labels"]) for t in targets), default=0)
    labels = torch.zeros(batch, padded, dtype=torch.long)
    boxes = torch.zeros(batch, padded, 4)
    mask = torch.zeros(batch, padded, dtype=torch.bool)
    for i, t in enumerate(targets):
        n = len(t["labels"])
        labels[i, :n], boxes[i, :n], mask[i, :n] = t["labels"], t["boxes"], True
    cost = fastloss.matching_cost(
        pred_logits,
        pred_boxes,
        labels,
        boxes,
        mask,
        class_cost="focal",
        cost_class=cost_class,
        cost_bbox=cost_bbox,
        cost_giou=cost_giou,
    )
    counts = mask.sum(-1).expand(cost.shape[:-2]).contiguous()  # each image's targets, every layer
    rows, cols = fastloss.linear_sum_assignment(cost, counts)  # (L, B, min(Q, T)); −1 past each image's pairs
    layers = []
    for layer_rows, layer_cols in zip(rows, cols):
        matches = []
        for i, t in enumerate(targets):
            n = min(len(t["labels"]), pred_logits.shape[-2])
            matches.append((layer_rows[i, :n], layer_cols[i, :n]))
        layers.append(matches)
    return layers


def synthetic(generator, layers=6, batch=2, queries=100, classes=91, counts=(7, 3)):
    logits = torch.randn(layers, batch, queries, classes, generator=generator)
    centre = torch.rand(layers, batch, queries, 2, generator=generator) * 0.6 + 0.2
    boxes = torch.cat([centre, torch.rand(layers, batch, queries, 2, generator=generator) * 0.3 + 0.05], -1)
    targets = [
        {
            "labels": torch.randint(0, classes, (n,), generator=generator),
            "boxes": torch.cat(
                [torch.rand(n, 2, generator=generator) * 0.6 + 0.2, torch.rand(n, 2, generator=generator) * 0.3 + 0.05],
                -1,
            ),
        }
        for n in counts
    ]
    return logits, boxes, targets


def main():
    logits, boxes, targets = synthetic(torch.Generator().manual_seed(0))
    return logits, boxes, targets, hungarian_match(logits, boxes, targets)


if __name__ == "__main__":
    *_, layers = main()
    for i, (rows, cols) in enumerate(layers[-1]):
        print(f"image {i}: queries {rows.tolist()} ← targets {cols.tolist()}")
