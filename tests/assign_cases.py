"""Inputs of the assigners as the detectors' losses pass them (tests/test_task_aligned.py, and the
bitwise digests of tests/bitwise.py)."""

import torch


def anchor_points(size=320, strides=(8, 16, 32)):
    """ultralytics' anchor centres in pixels (make_anchors × stride) of a size × size image."""
    points = []
    for s in strides:
        n = size // s
        y, x = torch.meshgrid(torch.arange(n) + 0.5, torch.arange(n) + 0.5, indexing="ij")
        points.append(torch.stack([x, y], -1).reshape(-1, 2) * s)
    return torch.cat(points)


def make(
    batch=2,
    gts=12,
    valid=9,
    classes=7,
    size=320,
    seed=0,
    outside=False,
    tiny=False,
    quantized=False,
    dtype=torch.float32,
):
    """(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt) as v8DetectionLoss passes them:
    predictions jittered around the GTs, GTs padded with zeros past `valid` per image."""
    g = torch.Generator().manual_seed(seed)
    anc = anchor_points(size)
    anchors = anc.shape[0]
    xy = torch.rand(batch, gts, 2, generator=g) * size * (1.3 if outside else 0.9) - (0.15 * size if outside else 0)
    wh = torch.rand(batch, gts, 2, generator=g) * (6 if tiny else size / 3) + 1
    gt = torch.cat([xy, xy + wh], -1)
    mask = (torch.arange(gts) < valid).float()[None, :, None].expand(batch, gts, 1).contiguous()
    gt, labels = gt * mask, torch.randint(0, classes, (batch, gts, 1), generator=g).float() * mask
    if gts:  # each prediction jittered around a GT that contains its anchor (any GT where none does)
        ax, ay = anc[:, 0], anc[:, 1]
        inside = (ax > gt[..., 0:1]) & (ay > gt[..., 1:2]) & (ax < gt[..., 2:3]) & (ay < gt[..., 3:4])  # (B, M, A)
        pick = ((inside.float() + 0.01) * torch.rand(batch, gts, anchors, generator=g)).argmax(1)
        near = gt.gather(1, pick[..., None].expand(-1, -1, 4))
        side = (near[..., 2:] - near[..., :2]).repeat(1, 1, 2) + 1
        pd = near + torch.randn(batch, anchors, 4, generator=g) * side * 0.15
    else:
        pd = torch.rand(batch, anchors, 4, generator=g) * size
    pd = torch.cat([torch.minimum(pd[..., :2], pd[..., 2:]), torch.maximum(pd[..., :2], pd[..., 2:]) + 1], -1)
    scores = torch.rand(batch, anchors, classes, generator=g)
    if quantized:  # many exact ties in the metric
        scores, pd = (scores * 4).round() / 4, pd.round()
    return scores.to(dtype), pd, anc, labels, gt, mask


def detr_inputs(
    batch=3,
    queries=20,
    classes=9,
    targets=7,
    counts=(4, 7, 0),
    layers=None,
    softmax=False,
    dtype=torch.float32,
    seed=0,
    scale=3.0,
):
    """(pred_logits, pred_boxes, tgt_labels, tgt_boxes, tgt_mask) of a DETR-style matcher: normalised
    cxcywh boxes, targets padded to `targets` per image (counts[i] real ones)."""
    g = torch.Generator().manual_seed(seed)
    lead = (layers, batch) if layers else (batch,)
    logits = torch.randn(*lead, queries, classes + (1 if softmax else 0), generator=g) * scale
    centre = torch.rand(*lead, queries, 2, generator=g) * 0.6 + 0.2
    boxes = torch.cat([centre, torch.rand(*lead, queries, 2, generator=g) * 0.3 + 0.02], -1)
    labels = torch.randint(0, classes, (batch, targets), generator=g)
    tgt = torch.cat(
        [
            torch.rand(batch, targets, 2, generator=g) * 0.6 + 0.2,
            torch.rand(batch, targets, 2, generator=g) * 0.3 + 0.02,
        ],
        -1,
    )
    mask = torch.arange(targets)[None] < torch.tensor(counts)[:, None]
    return logits.to(dtype), boxes.to(dtype), labels, tgt.to(dtype), mask
