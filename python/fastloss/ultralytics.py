"""ultralytics' box IoU (`ultralytics.utils.metrics.bbox_iou`) on fastloss's fused box kernel.

    bbox_iou(box1, box2, xywh=True, GIoU=False, DIoU=False, CIoU=False, eps=1e-7)

returns what ultralytics' returns — IoU, GIoU, DIoU or CIoU (CIoU wins over DIoU over GIoU), of shape
broadcast(box1, box2)[..., :1], in the boxes' promoted dtype — with ultralytics' eps placement (the
kernel's "ultralytics" convention: xyxy heights get + eps) and a fused gradient. To make ultralytics'
own training use it (its BboxLoss calls the module-level name `bbox_iou`), one line before training:

    import ultralytics.utils.loss, fastloss.ultralytics
    ultralytics.utils.loss.bbox_iou = fastloss.ultralytics.bbox_iou

`probiou` and `batch_probiou` are ultralytics' oriented-box probIoU functions of those names
(`ultralytics.utils.metrics`: the same arguments, shapes and numbers) on fastloss's fused probIoU op.

`TaskAlignedAssigner` is ultralytics' assigner of the same name (its constructor and forward) on
fastloss.task_aligned_assign, which builds no (batch, GTs, anchors) tensor; to use it in training:

    loss = model.init_criterion()   # ultralytics' v8DetectionLoss
    loss.assigner = fastloss.ultralytics.TaskAlignedAssigner(topk=10, num_classes=loss.nc, alpha=0.5, beta=6.0,
                                                             stride=loss.stride.tolist())

`RotatedTaskAlignedAssigner` is its oriented-box subclass (YOLO-OBB's assigner, xywhr boxes) on
fastloss.rotated_task_aligned_assign: `loss.assigner = fastloss.ultralytics.RotatedTaskAlignedAssigner(...)`
on a v8OBBLoss with the same arguments.

`HungarianMatcher`, `DETRLoss` and `RTDETRDetectionLoss` are RT-DETR's matcher and criteria of those
names (constructors, calls, pairs and losses): every decoder layer and image matched in one
fastloss.linear_sum_assignment call on the device, the class term from label indices without a
one-hot, L1 and GIoU on the matched pairs only, no .item() (fastloss/_ultralytics_detr.py).

`VarifocalLoss` (RT-DETR's classification loss in ultralytics) and `DFLoss` (YOLOv8/11's box
distribution loss) are ultralytics' modules of those names, with their constructors, forward
arguments and outputs, on fastloss.varifocal_loss and fastloss.distribution_focal_loss.

`v8DetectionLoss`, `v8SegmentationLoss`, `v8OBBLoss`, `E2ELoss` and `E2EDetectLoss` are ultralytics' training
criteria of those names (constructors, calls and results) on the sparse assignment, the sparse BCE,
the fused box losses and the fused mask loss; one line makes ultralytics' training use them:

    ultralytics.nn.tasks.DetectionModel.init_criterion = fastloss.ultralytics.init_criterion
    ultralytics.nn.tasks.SegmentationModel.init_criterion = fastloss.ultralytics.init_criterion  # (segmentation)
    ultralytics.nn.tasks.OBBModel.init_criterion = fastloss.ultralytics.init_criterion  # (oriented boxes)

ultralytics is AGPL-licensed: fastloss never imports it; its tests use it only as the oracle.
"""

import math

import torch
import torch.nn.functional as F

from ._common import check_bool, check_nonnegative, check_tensor
from ._torchscript import NotScriptable, refuse_functions
from .box_iou_loss import _fused as box_loss
from .classic import l1_loss
from .distribution_focal import distribution_focal_loss
from ._ultralytics_detr import DETRLoss, HungarianMatcher, RTDETRDetectionLoss
from .mask_loss import prototype_mask_loss
from .overlap import dice_loss
from .probiou import batch_probiou, probiou
from .sigmoid_focal import sigmoid_focal_loss
from .quality_focal import varifocal_loss
from .rotated_task_aligned import rotated_task_aligned_assign
from .task_aligned import task_aligned_assign


def bbox_iou(box1, box2, xywh=True, GIoU=False, DIoU=False, CIoU=False, eps=1e-7):
    """IoU (or GIoU / DIoU / CIoU) of box1 and box2, broadcast against each other: (..., 4) → (..., 1).
    xywh=True: (centre x, centre y, w, h) boxes; False: (x1, y1, x2, y2)."""
    for name, flag in (("xywh", xywh), ("GIoU", GIoU), ("DIoU", DIoU), ("CIoU", CIoU)):
        if not isinstance(flag, int):  # bools, and ints as ultralytics' truthiness takes them
            check_bool(name, flag)
    eps = check_nonnegative("eps", eps)
    check_tensor("box1", box1)
    check_tensor("box2", box2)
    kind = "ciou" if CIoU else "diou" if DIoU else "giou" if GIoU else "iou"
    try:
        b1, b2 = torch.broadcast_tensors(box1, box2)
    except RuntimeError as e:
        raise ValueError(
            f"box1 of shape {tuple(box1.shape)} and box2 of shape {tuple(box2.shape)} do not broadcast"
        ) from e
    loss = box_loss(kind, b1, b2, "none", eps, None, None, "cxcywh" if xywh else "xyxy", convention="ultralytics")
    dtype = torch.promote_types(b1.dtype, b2.dtype) if b1.dtype.is_floating_point else torch.float32
    return (1 - loss).unsqueeze(-1).to(dtype)


class TaskAlignedAssigner(NotScriptable, torch.nn.Module):
    """ultralytics.utils.tal.TaskAlignedAssigner: the same constructor (and defaults), forward and
    results (see fastloss.task_aligned_assign for the tie rules). The extra keyword tensors of its
    pose and segmentation subclasses are not supported (a TypeError)."""

    def __init__(self, topk=13, num_classes=80, alpha=1.0, beta=6.0, stride=None, eps=1e-9, topk2=None):
        super().__init__()
        self.topk, self.topk2 = topk, topk2 or topk
        self.num_classes, self.alpha, self.beta, self.eps = num_classes, alpha, beta, eps
        self.stride = stride if stride is not None else [8, 16, 32]
        self.stride_val = self.stride[1] if len(self.stride) > 1 else self.stride[0]

    assign = staticmethod(task_aligned_assign)

    @torch.no_grad()
    def forward(self, pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, **extra):
        if extra:
            raise TypeError(
                f"fastloss.ultralytics.{type(self).__name__} takes no extra tensors (got {sorted(extra)}): "
                "the pose and segmentation assigners' overlaps are not supported"
            )
        return self.assign(
            pd_scores,
            pd_bboxes,
            anc_points,
            gt_labels,
            gt_bboxes,
            mask_gt,
            topk=self.topk,
            num_classes=self.num_classes,
            alpha=self.alpha,
            beta=self.beta,
            eps=self.eps,
            stride=[self.stride_val],
            topk2=self.topk2,
        )


class RotatedTaskAlignedAssigner(TaskAlignedAssigner):
    """ultralytics.utils.tal.RotatedTaskAlignedAssigner: TaskAlignedAssigner's constructor, forward and
    results for xywhr boxes (see fastloss.rotated_task_aligned_assign): probIoU overlaps, the rotated
    in-box test."""

    assign = staticmethod(rotated_task_aligned_assign)


class VarifocalLoss(NotScriptable, torch.nn.Module):
    """ultralytics.utils.loss.VarifocalLoss(gamma=2.0, alpha=0.75): forward(pred_score, gt_score, label)
    with logits pred_score (B, Q, C), dense quality targets gt_score and the one-hot `label` mask of
    the same shape; returns (BCE(pred, gt_score) · (α·σ(pred)^γ·(1 − label) + gt_score·label))
    .mean(1).sum() in float32 (float64 for float64 inputs), the weight differentiated as ultralytics
    does. The math is float32 whatever the inputs' dtype (ultralytics turns autocast off for the same reason)."""

    def __init__(self, gamma=2.0, alpha=0.75):
        super().__init__()
        self.gamma, self.alpha = gamma, alpha

    def forward(self, pred_score, gt_score, label):
        check_tensor("pred_score", pred_score)
        if pred_score.dim() < 2:
            raise ValueError(
                f"pred_score must have at least 2 dimensions (ultralytics' .mean(1)), got shape "
                f"{tuple(pred_score.shape)}"
            )
        loss = varifocal_loss(
            pred_score,
            gt_score,
            alpha=self.alpha,
            gamma=self.gamma,
            iou_weighted=True,
            negative_mask="label",
            positive=label,
            reduction="sum",
        )
        # ultralytics' dtype: its float32 BCE times its weight (pred_score's and gt_score's dtype)
        dtype = torch.promote_types(torch.float32, torch.promote_types(pred_score.dtype, gt_score.dtype))
        return loss.to(dtype) / pred_score.shape[1]

    def extra_repr(self):
        return f"gamma={self.gamma}, alpha={self.alpha}"


class DFLoss(NotScriptable, torch.nn.Module):
    """ultralytics.utils.loss.DFLoss(reg_max=16): called with pred_dist (M·k, reg_max) and target (M, k)
    (the box sides in bin units), returns the distribution focal loss averaged over the k sides,
    shape (M, 1). The target is clamped to [0, reg_max − 1 − 0.01] as ultralytics does, but the
    caller's tensor is left unmodified (ultralytics' clamp_ writes into it)."""

    def __init__(self, reg_max=16):
        super().__init__()
        self.reg_max = reg_max

    def forward(self, pred_dist, target):
        check_tensor("pred_dist", pred_dist)
        check_tensor("target", target)
        if pred_dist.dim() != 2 or pred_dist.shape[1] != self.reg_max or pred_dist.shape[0] != target.numel():
            raise ValueError(
                f"pred_dist must have shape (target.numel(), reg_max) = ({target.numel()}, "
                f"{self.reg_max}), got {tuple(pred_dist.shape)}"
            )
        pred = pred_dist.reshape(*target.shape, self.reg_max)
        loss = distribution_focal_loss(pred, target, target_max=self.reg_max - 1 - 0.01, reduction="none")
        return loss.mean(-1, keepdim=True)

    def extra_repr(self):
        return f"reg_max={self.reg_max}"


def _anchors(feats, strides, offset=0.5):
    """ultralytics' make_anchors: the anchor centres in grid units (A, 2) and each anchor's stride (A, 1),
    level by level, row-major within a level."""
    points, stride_tensor = [], []
    dtype, device = feats[0].dtype, feats[0].device
    for feat, stride in zip(feats, strides):
        h, w = feat.shape[2:]
        sx = torch.arange(w, device=device, dtype=dtype) + offset
        sy = torch.arange(h, device=device, dtype=dtype) + offset
        y, x = torch.meshgrid(sy, sx, indexing="ij")
        points.append(torch.stack((x, y), -1).view(-1, 2))
        stride_tensor.append(torch.full((h * w, 1), float(stride), dtype=dtype, device=device))
    return torch.cat(points), torch.cat(stride_tensor)


def _small_tensor(values, like, dtype=None):
    """A few numbers as a tensor on `like`'s device, filled there: no host-to-device copy (from
    pageable memory a copy waits for the stream: a host sync, which CUDA graphs cannot capture)."""
    out = like.new_empty(len(values), dtype=dtype or like.dtype)
    for i, value in enumerate(values):
        out[i] = value
    return out


def _padded_targets(batch, batch_size, scale, device, oriented=False):
    """The flat (batch_idx, cls, box) targets as ultralytics pads them: (B, max GTs, 5) of class and
    pixel xyxy box per image (oriented: (B, max GTs, 6) of class and pixel xywhr box, the boxes under 2
    pixels a side dropped first), zero rows past each image's GTs. Its host sync: the largest count
    (and, oriented, the filter)."""
    idx = batch["batch_idx"].view(-1).to(device)
    cls = batch["cls"].view(-1, 1).to(device)
    boxes = batch["bboxes"].view(-1, 5 if oriented else 4).to(device)
    if oriented:
        keep = (boxes[:, 2] * scale[0] >= 2) & (boxes[:, 3] * scale[1] >= 2)
        idx, cls, boxes = idx[keep], cls[keep], boxes[keep]
    n = idx.numel()
    if n == 0:
        return torch.zeros(batch_size, 0, 1 + boxes.shape[1], device=device)
    # (grouped by image, each image's targets in their order: ultralytics' targets[batch_idx == j])
    image, order = torch.sort(idx.long(), stable=True)
    counts = torch.zeros(batch_size, dtype=torch.long, device=device).scatter_add_(0, image, torch.ones_like(image))
    out = torch.zeros(batch_size, int(counts.max()), 1 + boxes.shape[1], device=device)
    offsets = torch.cat([counts.new_zeros(1), counts.cumsum(0)[:-1]])
    within = torch.arange(n, device=device) - offsets[image]
    out[image, within] = torch.cat([cls, boxes], 1)[order].to(out.dtype)
    xywh = out[..., 1:5] * scale
    if oriented:
        out[..., 1:5] = xywh
    else:
        out[..., 1:5] = torch.cat([xywh[..., :2] - xywh[..., 2:] / 2, xywh[..., :2] + xywh[..., 2:] / 2], -1)
    return out


class v8DetectionLoss(NotScriptable):
    """ultralytics.utils.loss.v8DetectionLoss (YOLOv8/11/26 detection): the same constructor
    (`model`: the de-paralleled DetectionModel, with `args` holding the box/cls/dfl gains), call
    (`preds`: the head's training dict of "boxes" (B, 4·reg_max, A), "scores" (B, C, A) and "feats", or
    an (inference, dict) tuple; `batch`: "batch_idx", "cls", "bboxes" as normalised xywh) and result
    (the gain-scaled [box, cls, dfl] losses times the batch size, and the dict of detached items).

    Underneath: the sparse task-aligned assignment (no (B, GTs, A) tensor, targets as one label and
    score per anchor), the classification BCE from those sparse targets (no (B, A, C) target tensor;
    its only tensor of the logits' size is their gradient), CIoU and DFL (or the L1 of reg_max = 1
    heads) fused, weighted by the anchors' scores. One host sync, as ultralytics': the largest GT
    count of the flat targets."""

    def __init__(self, model, tal_topk=10, tal_topk2=None):
        head = model.model[-1]
        self.device = next(model.parameters()).device
        self.hyp = model.args
        self.stride = head.stride
        self.nc = head.nc
        self.reg_max = head.reg_max
        self.no = head.nc + head.reg_max * 4
        self.use_dfl = head.reg_max > 1
        self.loss_names = ("box_loss", "cls_loss", "dfl_loss" if self.use_dfl else "l1_loss")
        weights = getattr(model, "class_weights", None)
        self.class_weights = None if weights is None else weights.to(self.device).view(1, -1)
        self.topk, self.topk2 = tal_topk, tal_topk2
        self.proj = torch.arange(head.reg_max, dtype=torch.float, device=self.device)

    def parse_output(self, preds):
        return preds[1] if isinstance(preds, tuple) else preds

    def __call__(self, preds, batch, padded=None):
        """ultralytics' call; `padded`: the batch's padded_targets(), when the caller has them (then
        no host sync at all)."""
        return self.loss(self.parse_output(preds), batch, padded)

    def loss(self, preds, batch, padded=None):
        """ultralytics' loss(preds, batch); `padded`: padded_targets() of this batch when a caller
        (the end-to-end criteria, for their two branches) has them already."""
        batch_size = preds["boxes"].shape[0]
        loss, items = self.scaled_losses(preds, batch, padded)
        return loss * batch_size, items

    def padded_targets(self, preds, batch):
        """The batch's flat targets padded to (B, max GTs, 5) of class and pixel xyxy box: the
        criterion's one host sync (the largest GT count), made once per batch for both branches of
        the end-to-end criteria."""
        size = self.image_size(preds)[[1, 0, 1, 0]]  # (w, h, w, h)
        return _padded_targets(batch, preds["scores"].shape[0], size, self.device)

    def image_size(self, preds, dtype=None):
        """(h, w) of the input image, from the first level's grid and stride, in the head's dtype."""
        stride = float(self.stride[0])
        h, w = preds["feats"][0].shape[2:]
        return _small_tensor((h * stride, w * stride), preds["scores"], dtype)

    def decode(self, anchor_points, pred_dist):
        """Boxes (B, A, 4) xyxy in grid units from the ltrb distances (DFL: softmax · bins)."""
        lt, rb = self.expected_distances(pred_dist).chunk(2, -1)
        return torch.cat((anchor_points - lt, anchor_points + rb), -1)

    def scaled_losses(self, preds, batch, padded=None):
        """The gain-scaled (box, cls, dfl) losses, not multiplied by the batch size, and their items."""
        loss, items, _ = self.losses_and_assignment(preds, batch, padded)
        return loss, items

    def losses_and_assignment(self, preds, batch, padded=None):
        """scaled_losses, and the assignment (fg_mask, target_gt_idx, target_bboxes in pixels) for
        the segmentation term."""
        # (anchor-major copies, once: the decode's softmax, the DFL, the sigmoid and the BCE each read them;
        # a strided view would be copied by each)
        pred_dist = preds["boxes"].permute(0, 2, 1).contiguous()
        pred_scores = preds["scores"].permute(0, 2, 1).contiguous()
        anchor_points, stride_tensor = _anchors(preds["feats"], self.stride)
        size = self.image_size(preds)[[1, 0, 1, 0]]  # (w, h, w, h)
        targets = self.padded_targets(preds, batch) if padded is None else padded
        pred_bboxes = self.decode(anchor_points, pred_dist)
        labels, target_bboxes, scores, fg_mask, gt_index = self.assign(
            task_aligned_assign,
            pred_scores,
            pred_bboxes.detach() * stride_tensor,
            anchor_points * stride_tensor,
            targets,
        )
        score_sum = scores.sum().clamp(min=1)  # a tensor: no host sync
        cls = self.class_loss(pred_scores, labels, scores)
        # the box terms over every anchor, weighted by its score (0 off the foreground): no gather
        weight = scores * fg_mask
        target_bboxes = target_bboxes / stride_tensor
        box = box_loss("ciou", pred_bboxes, target_bboxes, "sum", 1e-7, weight, None, "xyxy", convention="ultralytics")
        target_ltrb = torch.cat((anchor_points - target_bboxes[..., :2], target_bboxes[..., 2:] - anchor_points), -1)
        dfl = self.distance_loss(pred_dist, target_ltrb, weight, stride_tensor, size)
        loss = self.scaled_sum((box, cls, dfl), ("box", "cls", "dfl"), score_sum)
        return loss, dict(zip(self.loss_names, loss.detach())), (fg_mask, gt_index, target_bboxes * stride_tensor)

    def assign(self, assigner, pred_scores, pred_bboxes, anchor_points, targets):
        """The sparse task-aligned assignment (assigner: task_aligned_assign or its rotated form) of the
        detached pixel boxes to the padded targets, with ultralytics' settings."""
        gt_labels, gt_bboxes = targets.split((1, targets.shape[-1] - 1), 2)
        return assigner(
            pred_scores.detach().sigmoid(),
            pred_bboxes.type(gt_bboxes.dtype),
            anchor_points,
            gt_labels,
            gt_bboxes,
            gt_bboxes.sum(2, keepdim=True).gt_(0.0),  # mask_gt
            topk=self.topk,
            num_classes=self.nc,
            alpha=0.5,
            beta=6.0,
            stride=self.stride.tolist(),
            topk2=self.topk2,
            sparse=True,
        )

    def expected_distances(self, pred_dist):
        """The head's distances: the expectation of each side's DFL bins (softmax · bins), or as given
        for reg_max = 1 heads."""
        if not self.use_dfl:
            return pred_dist
        b, a, c = pred_dist.shape
        return pred_dist.view(b, a, 4, c // 4).softmax(3).matmul(self.proj.type(pred_dist.dtype))

    def class_loss(self, pred_scores, labels, scores):
        """The classification BCE (summed) of the logits against the sparse targets."""
        return sigmoid_focal_loss(
            pred_scores,
            (labels.long(), scores.to(pred_scores.dtype)),
            alpha=-1,
            gamma=0.0,
            reduction="sum",
            weight=self.class_weights,
        )

    def distance_loss(self, pred_dist, target_ltrb, weight, stride_tensor, size):
        """DFL of the predicted distance bins (or, for reg_max = 1 heads, the L1 of the distances
        normalised by the image size), the 4 sides' mean per anchor times its weight, summed."""
        if self.use_dfl:
            return distribution_focal_loss(
                pred_dist.reshape(*target_ltrb.shape, self.reg_max),
                target_ltrb,
                target_max=self.reg_max - 1 - 0.01,
                reduction="sum",
                weight=(weight * 0.25).unsqueeze(-1),
            )
        dfl = l1_loss(pred_dist * stride_tensor / size, target_ltrb * stride_tensor / size, "none").mean(-1)
        return (dfl * weight).sum()

    def scaled_sum(self, terms, gains, score_sum):
        """The terms over the score sum, times their gains (the hyp attributes named in `gains`)."""
        gains = _small_tensor([getattr(self.hyp, name) for name in gains], terms[0], torch.float32)
        return torch.stack([t.to(terms[0].dtype) for t in terms]) / score_sum * gains


class v8OBBLoss(v8DetectionLoss):
    """ultralytics.utils.loss.v8OBBLoss (YOLOv8/11/26 oriented boxes): the same constructor, call
    (`preds` adds "angle" (B, 1, A); `batch`'s "bboxes" are normalised xywhr) and result (the
    gain-scaled [box, cls, dfl, angle] losses times the batch size, and the items).

    Underneath: the rotated task-aligned assignment, sparse (fastloss.rotated_task_aligned_assign: no
    (B, GTs, A) tensor), the same sparse classification BCE as the detection criterion, and the box
    terms — 1 − probIoU (floor 0.01), the DFL of the rotated distances, the angle loss — over every
    anchor, weighted by its target score (0 off the foreground): no gather of the positives, no host
    sync for them. The targets' padding syncs as ultralytics' does (the tiny-box filter, the largest
    count)."""

    def __init__(self, model, tal_topk=10, tal_topk2=None):
        super().__init__(model, tal_topk, tal_topk2)
        self.loss_names = (*self.loss_names, "angle_loss")

    def padded_targets(self, preds, batch):
        """The batch's flat targets without the rotated boxes under 2 pixels a side (as ultralytics),
        padded to (B, max GTs, 6) of class and pixel xywhr box."""
        size = self.image_size(preds)[[1, 0, 1, 0]]  # (w, h, w, h)
        return _padded_targets(batch, preds["scores"].shape[0], size, self.device, oriented=True)

    def decode(self, anchor_points, pred_dist, pred_angle):
        """xywhr boxes (B, A, 5) in grid units from the distances along the box's axes and its angle
        (ultralytics' dist2rbox)."""
        lt, rb = self.expected_distances(pred_dist).split(2, dim=-1)
        cos, sin = torch.cos(pred_angle), torch.sin(pred_angle)
        xf, yf = ((rb - lt) / 2).split(1, dim=-1)
        x, y = xf * cos - yf * sin, xf * sin + yf * cos
        xy = torch.cat([x, y], dim=-1) + anchor_points
        return torch.cat([xy, lt + rb, pred_angle], dim=-1)

    def losses_and_assignment(self, preds, batch, padded=None):
        pred_dist = preds["boxes"].permute(0, 2, 1).contiguous()
        pred_scores = preds["scores"].permute(0, 2, 1).contiguous()
        pred_angle = preds["angle"].permute(0, 2, 1).contiguous()
        anchor_points, stride_tensor = _anchors(preds["feats"], self.stride)
        size = self.image_size(preds)[[1, 0, 1, 0]]  # (w, h, w, h)
        targets = self.padded_targets(preds, batch) if padded is None else padded
        pred_bboxes = self.decode(anchor_points, pred_dist, pred_angle)
        for_assigner = pred_bboxes.detach().clone()
        for_assigner[..., :4] *= stride_tensor
        labels, target_bboxes, scores, fg_mask, gt_index = self.assign(
            rotated_task_aligned_assign, pred_scores, for_assigner, anchor_points * stride_tensor, targets
        )
        score_sum = scores.sum().clamp(min=1)  # a tensor: no host sync
        cls = self.class_loss(pred_scores, labels, scores)
        weight = scores * fg_mask
        target_bboxes = torch.cat([target_bboxes[..., :4] / stride_tensor, target_bboxes[..., 4:]], -1)
        iou = probiou(pred_bboxes, target_bboxes, floor=0.01)[..., 0]
        box = ((1.0 - iou) * weight).sum()
        target_ltrb = _rotated_distances(target_bboxes, anchor_points)
        if self.use_dfl:  # (clamped as ultralytics' rbox2dist(reg_max=reg_max - 1))
            target_ltrb = target_ltrb.clamp(0, self.reg_max - 1 - 0.01)
        dfl = self.distance_loss(pred_dist, target_ltrb, weight, stride_tensor, size)
        angle = (_angle_loss(pred_bboxes, target_bboxes) * weight).sum()
        loss = self.scaled_sum((box, cls, dfl, angle), ("box", "cls", "dfl", "angle"), score_sum)
        return loss, dict(zip(self.loss_names, loss.detach())), (fg_mask, gt_index, target_bboxes)


def _rotated_distances(boxes, anchor_points):
    """ultralytics' rbox2dist: the distances (l, t, r, b) from each anchor to the sides of its xywhr
    box (B, A, 5), along the box's axes."""
    offset = boxes[..., :2] - anchor_points
    offset_x, offset_y = offset.split(1, dim=-1)
    cos, sin = torch.cos(boxes[..., 4:5]), torch.sin(boxes[..., 4:5])
    xf = offset_x * cos + offset_y * sin
    yf = -offset_x * sin + offset_y * cos
    w, h = boxes[..., 2:3], boxes[..., 3:4]
    return torch.cat([w / 2 - xf, h / 2 - yf, w / 2 + xf, h / 2 + yf], dim=-1)


def _angle_loss(pred_bboxes, target_bboxes, lambda_val=3):
    """ultralytics' calculate_angle_loss per anchor, before the weights: sin²(2Δθ) (Δθ wrapped to
    ±π/2) times exp(−ln²(w/h)/λ²) of the target's aspect ratio."""
    log_ar = torch.log((target_bboxes[..., 2] + 1e-9) / (target_bboxes[..., 3] + 1e-9))
    scale_weight = torch.exp(-(log_ar**2) / (lambda_val**2))
    delta = pred_bboxes[..., 4] - target_bboxes[..., 4]
    wrapped = delta - torch.round(delta / math.pi) * math.pi
    return scale_weight * torch.sin(2 * wrapped) ** 2


class v8SegmentationLoss(v8DetectionLoss):
    """ultralytics.utils.loss.v8SegmentationLoss (YOLOv8/11 instance segmentation): the detection
    criterion plus the mask loss — the same constructor (`model.args.overlap_mask` chooses the masks'
    layout), call (`preds` adds "mask_coefficient" (B, K, A) and "proto" (B, K, H, W), or (proto,
    semantic logits); `batch` adds "masks", and "sem_masks" with semantic logits) and result (the
    gain-scaled [box, seg, cls, dfl, sem] losses times the batch size, and the dict of detached items).

    The mask term is fastloss.prototype_mask_loss: each positive's mask logits, BCE, crop and /area
    in one pass over its box's pixels, recomputed in the backward — no (positives, H, W) tensor and
    no loop over the images. No host sync beyond the detection criterion's."""

    def __init__(self, model, tal_topk=10, tal_topk2=None):
        super().__init__(model, tal_topk, tal_topk2)
        self.loss_names = ("box_loss", "seg_loss", *self.loss_names[1:], "sem_loss")
        self.overlap = model.args.overlap_mask

    def loss(self, preds, batch, padded=None):
        proto, semantic = preds["proto"], None
        if isinstance(proto, tuple) and len(proto) == 2:
            proto, semantic = proto
        detection, _, (fg_mask, gt_index, target_bboxes) = self.losses_and_assignment(preds, batch, padded)
        batch_size = proto.shape[0]
        coefficients = preds["mask_coefficient"]
        masks = batch["masks"].to(self.device).float()
        if tuple(masks.shape[-2:]) != tuple(proto.shape[-2:]):  # (ultralytics brings the prototypes to the masks)
            proto = F.interpolate(proto, masks.shape[-2:], mode="bilinear", align_corners=False)
        mask_h, mask_w = proto.shape[-2:]
        imgsz = self.image_size(preds, coefficients.dtype)
        normalized = target_bboxes / imgsz[[1, 0, 1, 0]]
        areas = (normalized[..., 2] - normalized[..., 0]) * (normalized[..., 3] - normalized[..., 1])
        boxes = normalized * _small_tensor((mask_w, mask_h, mask_w, mask_h), normalized, torch.float32)
        gt_index = gt_index.long()  # (float with no GTs: ultralytics' dtypes)
        index = gt_index if self.overlap else _mask_rows(batch, batch_size, gt_index, self.device)
        # (the mean over the foreground anchors, 0 without any: ultralytics' sum / fg_mask.sum())
        seg = prototype_mask_loss(coefficients, proto, masks, index, boxes, areas, fg_mask, self.overlap, "mean")
        sem = seg.new_zeros(())
        if semantic is not None:
            sem = torch.where(fg_mask.any(), self.semantic_loss(semantic, batch, masks, batch_size), sem)
        loss = torch.stack([detection[0], seg * self.hyp.box, detection[1], detection[2], sem * self.hyp.box])
        return loss * batch_size, dict(zip(self.loss_names, loss.detach()))

    def semantic_loss(self, semantic, batch, masks, batch_size):
        """BCEDiceLoss(0.5, 0.5) of the semantic logits against the one-hot classes of the pixels an
        object covers (ultralytics' sem_loss of Proto26 heads)."""
        sem_idx = batch["sem_masks"].to(self.device).long().unsqueeze(1)
        if self.overlap:
            present = masks != 0
        else:
            image = batch["batch_idx"].view(-1).to(self.device).long()
            covered = torch.zeros(batch_size, *masks.shape[-2:], device=self.device)
            present = covered.index_add_(0, image, masks) != 0
        target = torch.zeros(sem_idx.shape[0], self.nc, *sem_idx.shape[2:], device=self.device)
        target.scatter_(1, sem_idx, present.unsqueeze(1).float())
        if tuple(target.shape[-2:]) != tuple(semantic.shape[-2:]):
            target = F.interpolate(target, semantic.shape[-2:], mode="nearest")
        bce = sigmoid_focal_loss(semantic, target, alpha=-1, gamma=0.0, reduction="mean")
        dice = dice_loss(semantic, target, activation="sigmoid", smooth_nr=1.0, smooth_dr=1.0)
        return 0.5 * bce + 0.5 * dice


def _mask_rows(batch, batch_size, gt_index, device):
    """Each anchor's row of the flat (objects, H, W) masks: its image's gt_index-th object, counted in
    the order of batch_idx (ultralytics' masks[batch_idx == i][gt_index])."""
    image = batch["batch_idx"].view(-1).to(device).long()
    order = torch.argsort(image, stable=True)
    counts = torch.zeros(batch_size, dtype=torch.long, device=device).scatter_add_(0, image, torch.ones_like(image))
    first = torch.cumsum(counts, 0) - counts
    if order.numel() == 0:
        return torch.full_like(gt_index, -1)
    position = (first[:, None] + gt_index).clamp(max=order.numel() - 1)
    return order[position]


class E2EDetectLoss(NotScriptable):
    """ultralytics.utils.loss.E2EDetectLoss (YOLOv10): the one-to-many branch (top-10) plus the
    one-to-one branch (top-1), each a v8DetectionLoss; returns their summed losses and items."""

    def __init__(self, model):
        self.one2many = v8DetectionLoss(model, tal_topk=10)
        self.one2one = v8DetectionLoss(model, tal_topk=1)

    def __call__(self, preds, batch, padded=None):
        preds = preds[1] if isinstance(preds, tuple) else preds
        if padded is None:  # (once for both branches)
            padded = self.one2many.padded_targets(preds["one2many"], batch)
        many, many_items = self.one2many.loss(preds["one2many"], batch, padded)
        one, one_items = self.one2one.loss(preds["one2one"], batch, padded)
        return many + one, {name: many_items[name] + one_items[name] for name in many_items}


class E2ELoss(NotScriptable):
    """ultralytics.utils.loss.E2ELoss (YOLO26 end-to-end heads): `loss_fn(model, tal_topk=10)` on the
    one-to-many branch and `loss_fn(model, tal_topk=7, tal_topk2=1)` on the one-to-one branch, mixed
    as o2m · one-to-many + o2o · one-to-one with o2m going from 0.8 to 0.1 over the epochs (`update()`,
    which ultralytics' trainer calls once per epoch); the items are the one-to-one branch's."""

    def __init__(self, model, loss_fn=v8DetectionLoss):
        self.one2many = loss_fn(model, tal_topk=10)
        self.one2one = loss_fn(model, tal_topk=7, tal_topk2=1)
        self.updates = 0
        self.total = 1.0
        self.o2m = self.o2m_copy = 0.8  # the one-to-many gain now, and at the start
        self.o2o = self.total - self.o2m
        self.final_o2m = 0.1

    def __call__(self, preds, batch, padded=None):
        preds = self.one2many.parse_output(preds)
        if padded is None:  # (once for both branches: the one host sync)
            padded = self.one2many.padded_targets(preds["one2many"], batch)
        many, _ = self.one2many.loss(preds["one2many"], batch, padded)
        one, one_items = self.one2one.loss(preds["one2one"], batch, padded)
        return many * self.o2m + one * self.o2o, one_items

    def update(self):
        self.updates += 1
        self.o2m = self.decay(self.updates)
        self.o2o = max(self.total - self.o2m, 0)

    def decay(self, x):
        """The one-to-many gain after x updates: linear from its start to final_o2m over the epochs."""
        epochs = max(self.one2one.hyp.epochs - 1, 1)
        return max(1 - x / epochs, 0) * (self.o2m_copy - self.final_o2m) + self.final_o2m


def init_criterion(model):
    """The fastloss criterion a DetectionModel, SegmentationModel or RTDETRDetectionModel trains with,
    chosen as their own init_criterion chooses: RTDETRDetectionLoss(nc, use_vfl=True) for RT-DETR's
    decoder, v8SegmentationLoss for Segment heads, v8DetectionLoss otherwise, each in E2ELoss for
    end-to-end heads (a one-to-one branch). To make ultralytics' training use it, one line
    before training:

        ultralytics.nn.tasks.DetectionModel.init_criterion = fastloss.ultralytics.init_criterion

    and the same for ultralytics.nn.tasks.SegmentationModel and RTDETRDetectionModel, which have their
    own (and OBBModel: v8OBBLoss). Heads with criteria fastloss does not have (pose, YOLO26's Segment26) are a
    NotImplementedError, not a detection criterion in their place."""
    head = type(model.model[-1]).__name__
    if head == "RTDETRDecoder":  # (RTDETRDetectionModel.init_criterion's)
        return RTDETRDetectionLoss(nc=model.nc, use_vfl=True)
    criteria = {
        "Detect": v8DetectionLoss,
        "v10Detect": v8DetectionLoss,
        "Segment": v8SegmentationLoss,
        "OBB": v8OBBLoss,
        "OBB26": v8OBBLoss,
    }
    if head not in criteria:
        raise NotImplementedError(
            f"fastloss.ultralytics.init_criterion: no fastloss criterion for {head} heads yet "
            f"(it has {', '.join(sorted(criteria))}); keep ultralytics' own init_criterion for this model"
        )
    loss = criteria[head]
    end_to_end = getattr(model.model[-1], "one2one_cv2", None) is not None
    return E2ELoss(model, loss) if end_to_end else loss(model)


__all__ = [
    "bbox_iou",
    "probiou",
    "batch_probiou",
    "TaskAlignedAssigner",
    "RotatedTaskAlignedAssigner",
    "HungarianMatcher",
    "DETRLoss",
    "RTDETRDetectionLoss",
    "VarifocalLoss",
    "DFLoss",
    "v8DetectionLoss",
    "v8SegmentationLoss",
    "v8OBBLoss",
    "E2EDetectLoss",
    "E2ELoss",
    "init_criterion",
]
refuse_functions(globals(), __all__, "fastloss.ultralytics")
