"""Inputs the op records' test cases are made from (fastloss._spec): valid boxes, box formats,
strided views, the assigners' and matchers' inputs as detectors pass them. Test support, not public
API."""

import torch


def random_boxes(n, *, device="cpu", dtype=torch.float64, generator=None, near=None, scale=10.0):
    """Valid xyxy boxes (positive width and height); with `near`, jittered copies of those boxes."""
    if near is not None:
        size = (near[..., 2:] - near[..., :2]).double().repeat(*([1] * (near.dim() - 1)), 2)
        boxes = near.double() + torch.randn(near.shape, generator=generator, dtype=torch.float64) * size * 0.3
        lo, hi = boxes[..., :2], boxes[..., 2:]
        return torch.cat([torch.minimum(lo, hi), torch.maximum(lo, hi) + 1e-3], -1).to(device=device, dtype=dtype)
    xy = torch.rand(n, 2, generator=generator, dtype=torch.float64) * scale
    wh = torch.rand(n, 2, generator=generator, dtype=torch.float64) * scale / 2 + 0.05
    return torch.cat([xy, xy + wh], -1).to(device=device, dtype=dtype)


def to_format(boxes, box_format):
    """xyxy boxes in another format."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    if box_format == "xywh":
        return torch.stack([x1, y1, x2 - x1, y2 - y1], -1)
    if box_format == "cxcywh":
        return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], -1)
    return boxes


def strided(t, contiguous):
    """t itself, or the same values behind a non-contiguous view (a transposed copy, transposed back)."""
    if contiguous or t.dim() < 2:
        return t
    return t.transpose(0, -1).contiguous().transpose(0, -1)


def anchor_points(size=320, strides=(8, 16, 32)):
    """ultralytics' anchor centres in pixels (make_anchors × stride) of a size × size image."""
    points = []
    for s in strides:
        n = size // s
        y, x = torch.meshgrid(torch.arange(n) + 0.5, torch.arange(n) + 0.5, indexing="ij")
        points.append(torch.stack([x, y], -1).reshape(-1, 2) * s)
    return torch.cat(points)


def assigner_inputs(
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


# ----------------------------------------------------------------- the guarantees' case makers
# (make(n, dtype, device, generator) -> (tensors, kwargs), fastloss._spec.Case)


def logits(n, classes, dtype, device, g):
    return (torch.randn(n, classes, generator=g, dtype=torch.float64) * 3).to(device=device, dtype=dtype)


def box_pairs(n, dtype, device, g):
    """(pred, target): n boxes and jittered copies, "mean" reduction."""
    target = random_boxes(n, generator=g)
    pred = random_boxes(n, generator=g, near=target)
    return (pred.to(device=device, dtype=dtype), target.to(device=device, dtype=dtype)), dict(reduction="mean")


def with_options(make, **extra):
    """`make` with extra keyword arguments."""

    def made(n, dtype, device, g):
        tensors, kwargs = make(n, dtype, device, g)
        return tensors, {**kwargs, **extra}

    return made


def sparse_targets(fn):
    """fn(inputs, (labels, scores), ...) as fn(inputs, labels, scores, ...): every operand a tensor."""

    def loss(inputs, labels, scores, **kwargs):
        return fn(inputs, (labels, scores), **kwargs)

    return loss


def mask_inputs(batch, anchors, k, size, objects, overlap, generator, dtype=torch.float64, scenario="random"):
    """fastloss.prototype_mask_loss's inputs on the CPU, as v8SegmentationLoss passes them: coefficients
    (B, K, A) and protos (B, K, size, size) in `dtype` (around the logits' usual scale), each image's
    `objects` masks (overlap: one (B, size, size) plane numbered 1…objects; else (B·objects, size,
    size) 0/1 rows), about a third of the anchors positive, each with a target index and a box in
    mask pixels and its area. scenario "edges": boxes on and past the borders, at half pixels and of
    zero width, and one out-of-order box."""
    g = generator
    coefficients = torch.randn(batch, k, anchors, generator=g, dtype=torch.float64) / max(k, 1) ** 0.5
    protos = torch.randn(batch, k, size, size, generator=g, dtype=torch.float64) * 2
    objects = max(objects, 1)
    index = torch.randint(0, objects, (batch, anchors), generator=g)
    fg = torch.rand(batch, anchors, generator=g) < 0.35
    xy = torch.rand(batch, anchors, 2, generator=g, dtype=torch.float64) * size
    wh = torch.rand(batch, anchors, 2, generator=g, dtype=torch.float64) * size / 2 + 0.5
    boxes = torch.cat([xy - wh / 2, xy + wh / 2], -1)
    if scenario == "edges" and anchors > 0:
        special = torch.tensor(
            [[-3.0, -3.0, size + 4.0, size + 4.0], [0.5, 1.5, 2.5, 2.5], [2.0, 2.0, 2.0, 5.0], [5.0, 5.0, 1.0, 1.0]],
            dtype=torch.float64,
        )
        n = min(anchors, len(special))
        boxes[:, :n] = special[:n]
        fg[:, :n] = True
    areas = ((boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])).abs() / size**2 + 1e-3
    if overlap:
        masks = torch.randint(0, objects + 1, (batch, size, size), generator=g).double()
        index_out = index
    else:
        masks = (torch.rand(batch * objects, size, size, generator=g) < 0.4).double()
        index_out = index + torch.arange(batch)[:, None] * objects
    return coefficients.to(dtype), protos.to(dtype), masks, index_out, boxes, areas, fg


def assignment_costs(batch, rows, cols, kind, ragged, generator):
    """fastloss.linear_sum_assignment's inputs: a (batch, rows, cols) float64 cost — "random",
    "integer" (small integers: many ties), "constant" (all equal), "infeasible" (one problem with a row
    of inf) — and, with ragged, per-problem target counts in [0, cols] (else None)."""
    g = generator
    if kind == "integer":
        cost = torch.randint(0, 4, (batch, rows, cols), generator=g).double()
    elif kind == "constant":
        cost = torch.ones(batch, rows, cols, dtype=torch.float64)
    else:
        cost = torch.rand(batch, rows, cols, generator=g, dtype=torch.float64)
    if kind == "infeasible" and batch > 0 and rows > 0 and cols > 0:
        cost[0, 0] = float("inf")
    counts = torch.randint(0, cols + 1, (batch,), generator=g) if ragged else None
    return cost, counts
