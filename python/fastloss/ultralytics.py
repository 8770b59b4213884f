"""ultralytics' box IoU (`ultralytics.utils.metrics.bbox_iou`) on fastloss's fused box kernel.

    bbox_iou(box1, box2, xywh=True, GIoU=False, DIoU=False, CIoU=False, eps=1e-7)

returns what ultralytics' returns — IoU, GIoU, DIoU or CIoU (CIoU wins over DIoU over GIoU), of shape
broadcast(box1, box2)[..., :1], in the boxes' promoted dtype — with ultralytics' eps placement (the
kernel's "ultralytics" convention: xyxy heights get + eps) and a fused gradient. To make ultralytics'
own training use it (its BboxLoss calls the module-level name `bbox_iou`), one line before training:

    import ultralytics.utils.loss, fastloss.ultralytics
    ultralytics.utils.loss.bbox_iou = fastloss.ultralytics.bbox_iou

`TaskAlignedAssigner` is ultralytics' assigner of the same name (its constructor and forward) on
fastloss.task_aligned_assign, which builds no (batch, GTs, anchors) tensor; to use it in training:

    loss = model.init_criterion()   # ultralytics' v8DetectionLoss
    loss.assigner = fastloss.ultralytics.TaskAlignedAssigner(topk=10, num_classes=loss.nc, alpha=0.5, beta=6.0,
                                                             stride=loss.stride.tolist())

`VarifocalLoss` (RT-DETR's classification loss in ultralytics) and `DFLoss` (YOLOv8/11's box
distribution loss) are ultralytics' modules of those names, with their constructors, forward
arguments and outputs, on fastloss.varifocal_loss and fastloss.distribution_focal_loss.

ultralytics is AGPL-licensed: fastloss never imports it; its tests use it only as the oracle.
"""

import torch

from ._common import check_bool, check_nonnegative, check_tensor
from ._torchscript import NotScriptable, refuse_functions
from .box_iou_loss import _fused as box_loss
from .distribution_focal import distribution_focal_loss
from .quality_focal import varifocal_loss
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

    @torch.no_grad()
    def forward(self, pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, **extra):
        if extra:
            raise TypeError(
                f"fastloss.ultralytics.TaskAlignedAssigner takes no extra tensors (got {sorted(extra)}): "
                "the pose and segmentation assigners' overlaps are not supported"
            )
        return task_aligned_assign(
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


__all__ = ["bbox_iou", "TaskAlignedAssigner", "VarifocalLoss", "DFLoss"]
refuse_functions(globals(), __all__, "fastloss.ultralytics")
