"""Task-aligned assignment in plain torch (formulas and tie rules: csrc/math/task_aligned.h), with
the raw op's arguments: it builds the (B, M, A) tensors the kernels avoid, and is what the kernels
are tested against besides ultralytics itself."""

import torch


def _ciou_overlap(g, p):
    """max(CIoU(g, p), 0) in ultralytics' bbox_iou order of operations (xyxy, eps = 1e-7)."""
    eps = 1e-7
    w1, h1 = g[..., 2] - g[..., 0], g[..., 3] - g[..., 1] + eps
    w2, h2 = p[..., 2] - p[..., 0], p[..., 3] - p[..., 1] + eps
    inter = (torch.minimum(g[..., 2], p[..., 2]) - torch.maximum(g[..., 0], p[..., 0])).clamp(0) * (
        torch.minimum(g[..., 3], p[..., 3]) - torch.maximum(g[..., 1], p[..., 1])
    ).clamp(0)
    iou = inter / (w1 * h1 + w2 * h2 - inter + eps)
    cw = torch.maximum(g[..., 2], p[..., 2]) - torch.minimum(g[..., 0], p[..., 0])
    ch = torch.maximum(g[..., 3], p[..., 3]) - torch.minimum(g[..., 1], p[..., 1])
    c2 = cw * cw + ch * ch + eps
    dx, dy = p[..., 0] + p[..., 2] - g[..., 0] - g[..., 2], p[..., 1] + p[..., 3] - g[..., 1] - g[..., 3]
    rho2 = (dx * dx + dy * dy) / 4
    v = 0.405284734569351085775517852838911 * (torch.atan(w2 / h2) - torch.atan(w1 / h1)) ** 2
    alpha = v / (1 - iou + v + eps)
    return (iou - (rho2 / c2 + v * alpha)).clamp(0)


def _top(values, k):
    """A (…, A) bool mask of the top k of the last dimension, ties to the lowest index."""
    k = min(k, values.shape[-1])
    order = torch.sort(values, dim=-1, descending=True, stable=True).indices[..., :k]
    return torch.zeros_like(values, dtype=torch.bool).scatter_(-1, order, True)


def _lowest_where(mask, dim):
    """The lowest index along `dim` where mask holds (its size where it never does)."""
    size = mask.shape[dim]
    index = torch.arange(size, device=mask.device).view(-1, *([1] * (mask.dim() - 1 - (dim % mask.dim()))))
    return torch.where(mask, index, size).amin(dim)


def _axis_aligned(anc, gt, pd, mask_gt, stride_val):
    """(candidate, overlap) of xyxy boxes, each (B, M, A): anchors inside each valid GT, its short
    sides raised to stride_val; max(CIoU, 0)."""
    cx, cy = (gt[..., 0] + gt[..., 2]) / 2, (gt[..., 1] + gt[..., 3]) / 2
    w, h = gt[..., 2] - gt[..., 0], gt[..., 3] - gt[..., 1]
    w, h = torch.where(w < stride_val, stride_val, w) / 2, torch.where(h < stride_val, stride_val, h) / 2
    x1, y1, x2, y2 = ((cx - w)[..., None], (cy - h)[..., None], (cx + w)[..., None], (cy + h)[..., None])
    ax, ay = anc[:, 0], anc[:, 1]
    candidate = (ax - x1 > 1e-9) & (ay - y1 > 1e-9) & (x2 - ax > 1e-9) & (y2 - ay > 1e-9) & mask_gt[..., None]
    return candidate, _ciou_overlap(gt[:, :, None, :], pd[:, None, :, :])


def pair_metrics(
    pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, alpha, beta, stride_val, math, geometry=None
):
    """(candidate, overlap, metric), each (B, M, A), computed in `math`; geometry(anc, gt, pd, mask_gt,
    stride_val) gives the candidates and overlaps (default: xyxy boxes)."""
    scores, pd, anc, gt = (t.detach().to(math) for t in (pd_scores, pd_bboxes, anc_points, gt_bboxes))
    batch, anchors, classes = scores.shape
    gts = gt.shape[1]
    candidate, overlap = (geometry or _axis_aligned)(anc, gt, pd, mask_gt, stride_val)
    # (a NaN counts as 0, as in the kernels)
    overlap = torch.where(candidate & ~overlap.isnan(), overlap, 0)
    label_index = gt_labels.clamp(0, classes - 1)[:, None, :].expand(batch, anchors, gts)
    score = scores.gather(2, label_index).transpose(1, 2)  # (B, M, A)
    s = score.sqrt() if alpha == 0.5 else score.pow(alpha)
    metric = s * overlap.pow(beta)
    metric = torch.where(candidate & ~metric.isnan(), metric, 0)
    return candidate, overlap, metric


def task_aligned_assign(
    pd_scores,
    pd_bboxes,
    anc_points,
    gt_labels,
    gt_bboxes,
    mask_gt,
    topk,
    topk2,
    num_classes,
    alpha,
    beta,
    eps,
    stride_val,
    sparse,
):
    out_dtype = torch.promote_types(torch.promote_types(pd_scores.dtype, pd_bboxes.dtype), gt_bboxes.dtype)
    math = torch.float64 if out_dtype == torch.float64 else torch.float32
    metrics = pair_metrics(
        pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, alpha, beta, stride_val, math
    )
    return assign(*metrics, gt_labels, gt_bboxes, topk, topk2, num_classes, eps, sparse, out_dtype)


def assign(candidate, overlap, metric, gt_labels, gt_bboxes, topk, topk2, num_classes, eps, sparse, out_dtype):
    """The assignment from the (B, M, A) candidates, overlaps and metrics; the targets' boxes from
    gt_bboxes (B, M, k)."""
    gts = gt_bboxes.shape[1]
    # positives: each GT's top-k that are its candidates; an anchor claimed twice goes to the GT of
    # highest overlap (ties: the lowest GT)
    positive = _top(metric, topk) & candidate
    claims = positive.sum(1)
    best = _lowest_where(overlap == overlap.amax(1, keepdim=True), 1)
    owner = torch.where(claims > 1, best, _lowest_where(positive, 1))
    fg = claims > 0
    owner = torch.where(fg, owner, 0)
    assigned = (owner[:, None, :] == torch.arange(gts, device=owner.device)[:, None]) & fg[:, None, :]
    if topk2 < topk:
        assigned &= _top(metric * assigned, topk2)
        fg = assigned.any(1)
        owner = torch.where(fg, owner, 0)
    kept_metric, kept_overlap = metric * assigned, overlap * assigned
    normed = kept_metric * kept_overlap.amax(-1, keepdim=True) / (kept_metric.amax(-1, keepdim=True) + eps)
    norm = normed.amax(1)
    target_labels = gt_labels.gather(1, owner).clamp(min=0)
    target_bboxes = gt_bboxes.gather(1, owner[..., None].expand(-1, -1, gt_bboxes.shape[-1]))
    norm = torch.where(fg, norm, 0)
    if sparse:
        target_scores = norm.to(out_dtype)
    else:
        one_hot = target_labels[..., None] == torch.arange(num_classes, device=owner.device)
        target_scores = (one_hot * norm[..., None]).to(out_dtype)
    return target_labels, target_bboxes, target_scores, fg, owner


def near_ties(
    pd_scores,
    pd_bboxes,
    anc_points,
    gt_labels,
    gt_bboxes,
    mask_gt,
    *,
    topk=10,
    topk2=None,
    alpha=0.5,
    beta=6.0,
    stride=(8, 16, 32),
    rtol=1e-5,
    geometry=None,
):
    """(B, A) bool: the anchors whose assignment a last-place difference in the float32 metrics may
    change (two devices differ there: FMA contraction, their own pow and atan). With the metrics in
    float64: every candidate of a GT whose k-th and (k+1)-th metrics (or k2-th and (k2+1)-th) differ
    by at most rtol relative, but are not equal; and every anchor claimed by several GTs whose two
    highest overlaps are that close. Exact ties are decided by the tie rules on every device."""
    batch, gts = gt_bboxes.shape[:2]
    labels, mask = gt_labels.reshape(batch, gts).long(), mask_gt.reshape(batch, gts).bool()
    stride_val = stride[1] if len(stride) > 1 else stride[0]
    candidate, overlap, metric = pair_metrics(
        pd_scores, pd_bboxes, anc_points, labels, gt_bboxes, mask, alpha, beta, stride_val, torch.float64, geometry
    )

    def close(a, b):  # a ≥ b: near, not equal (1e-30: float32 underflows below ~1e-38 where float64 does not)
        return (a > b) & (a - b <= rtol * a.abs() + 1e-30)

    def tied_at(k):
        if metric.shape[-1] <= k:
            return torch.zeros(metric.shape[:2], dtype=torch.bool, device=metric.device)
        ranked = metric.sort(-1, descending=True).values
        return close(ranked[..., k - 1], ranked[..., k])

    tied = tied_at(topk) | (tied_at(topk2) if topk2 is not None and topk2 < topk else False)
    undecided = (candidate & tied[..., None]).any(1)
    if gts >= 2:
        top2 = overlap.topk(2, dim=1).values
        undecided |= (candidate.sum(1) > 1) & close(top2[:, 0], top2[:, 1])
    return undecided
