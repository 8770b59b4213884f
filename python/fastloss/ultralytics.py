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

ultralytics is AGPL-licensed: fastloss never imports it; its tests use it only as the oracle.
"""
import torch

from ._common import check_bool, check_nonnegative, check_tensor
from ._torchscript import NotScriptable, refuse_functions
from .box_iou_loss import _fused as box_loss
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
        raise ValueError(f"box1 of shape {tuple(box1.shape)} and box2 of shape {tuple(box2.shape)} do not "
                         "broadcast") from e
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
            raise TypeError(f"fastloss.ultralytics.TaskAlignedAssigner takes no extra tensors (got {sorted(extra)}): "
                            "the pose and segmentation assigners' overlaps are not supported")
        return task_aligned_assign(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt, topk=self.topk,
                                   num_classes=self.num_classes, alpha=self.alpha, beta=self.beta, eps=self.eps,
                                   stride=[self.stride_val], topk2=self.topk2)


__all__ = ["bbox_iou", "TaskAlignedAssigner"]
refuse_functions(globals(), __all__, "fastloss.ultralytics")
