"""mmdet-style loss modules (reduction, loss_weight, forward(..., weight, avg_factor, reduction_override))."""

from ._base import WeightedLoss
from .box_iou import BoxIoULoss, CDIoULoss, CIoULoss, DIoULoss, EIoULoss, FocalEIoULoss, GIoULoss, IoULoss
from .overlap import DiceLoss, TverskyLoss
from .compound import DiceCELoss, DiceFocalLoss
from .sigmoid_focal import SigmoidFocalLoss
from .quality_focal import QualityFocalLoss, VarifocalLoss
from .distribution_focal import DistributionFocalLoss
from .softmax_focal import CrossEntropyLoss, SoftmaxFocalLoss
from .classic import L1Loss, MSELoss, SmoothL1Loss

__all__ = [
    "WeightedLoss",
    "SigmoidFocalLoss",
    "BoxIoULoss",
    "IoULoss",
    "GIoULoss",
    "DIoULoss",
    "CIoULoss",
    "EIoULoss",
    "FocalEIoULoss",
    "CDIoULoss",
    "DiceLoss",
    "TverskyLoss",
    "SoftmaxFocalLoss",
    "CrossEntropyLoss",
    "L1Loss",
    "MSELoss",
    "SmoothL1Loss",
    "VarifocalLoss",
    "QualityFocalLoss",
    "DistributionFocalLoss",
    "DiceCELoss",
    "DiceFocalLoss",
]
