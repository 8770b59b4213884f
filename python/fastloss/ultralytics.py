"""ultralytics' box IoU (`ultralytics.utils.metrics.bbox_iou`) on fastloss's fused box kernel.

    bbox_iou(box1, box2, xywh=True, GIoU=False, DIoU=False, CIoU=False, eps=1e-7)

returns what ultralytics' returns — IoU, GIoU, DIoU or CIoU (CIoU wins over DIoU over GIoU), of shape
broadcast(box1, box2)[..., :1], in the boxes' promoted dtype — with ultralytics' eps placement (the
kernel's "ultralytics" convention: xyxy heights get + eps) and a fused gradient. To make ultralytics'
own training use it (its BboxLoss calls the module-level name `bbox_iou`), one line before training:

    import ultralytics.utils.loss, fastloss.ultralytics
    ultralytics.utils.loss.bbox_iou = fastloss.ultralytics.bbox_iou

ultralytics is AGPL-licensed: fastloss never imports it; its tests use it only as the oracle.
"""
import torch

from ._common import check_bool, check_nonnegative, check_tensor
from ._torchscript import refuse_functions
from .box_iou_loss import _fused as box_loss


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


__all__ = ["bbox_iou"]
refuse_functions(globals(), __all__, "fastloss.ultralytics")
