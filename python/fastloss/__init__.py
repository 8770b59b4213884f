"""fastloss: fused forward and backward kernels for detection and segmentation losses (CPU and CUDA).

Every loss has the same signature in fastloss.reference (pure torch) and a module in
fastloss.nn. The catalogue: docs/catalogue.md.
"""

from . import _backend

__version__ = _backend._version()  # with the build's local part, e.g. 0.2.0+cu130.torch2.14
from .sigmoid_focal import sigmoid_focal_loss
from .quality_focal import quality_focal_loss, varifocal_loss
from .distribution_focal import distribution_focal_loss
from .overlap import dice_loss, tversky_loss
from .generalized_dice import generalized_dice_loss
from .compound import dice_ce_loss, dice_focal_loss
from .deep_supervision import deep_supervision_loss
from .softmax_focal import softmax_focal_loss
from .classic import l1_loss, mse_loss, smooth_l1_loss
from .balanced_l1 import balanced_l1_loss
from .box_iou_loss import (
    cdiou_loss,
    ciou_loss,
    complete_box_iou_loss,
    diou_loss,
    distance_box_iou_loss,
    eiou_loss,
    focal_eiou_loss,
    generalized_box_iou_loss,
    giou_loss,
    iou_loss,
)
from .box_matrix import box_iou, box_iou_matrix, complete_box_iou, distance_box_iou, generalized_box_iou
from .task_aligned import task_aligned_assign
from .rotated_task_aligned import rotated_task_aligned_assign
from .mask_loss import prototype_mask_loss
from .linear_assignment import linear_sum_assignment
from .hungarian_matcher import HungarianMatcher
from .matching import matching_cost
from .rtdetr_matching_cost import rtdetr_matching_cost
from .probiou import batch_probiou, probiou
from .gaussian_distance import gaussian_distance_loss, kfiou_loss
from .rotated_box_iou import rotated_box_iou

from . import distributed, nn, reference
from . import _torchscript

__all__ = [
    "__version__",
    "distributed",
    "nn",
    "reference",
    "sigmoid_focal_loss",
    "iou_loss",
    "giou_loss",
    "diou_loss",
    "ciou_loss",
    "eiou_loss",
    "focal_eiou_loss",
    "cdiou_loss",
    "generalized_box_iou_loss",
    "distance_box_iou_loss",
    "complete_box_iou_loss",
    "dice_loss",
    "tversky_loss",
    "softmax_focal_loss",
    "l1_loss",
    "mse_loss",
    "smooth_l1_loss",
    "balanced_l1_loss",
    "box_iou_matrix",
    "box_iou",
    "generalized_box_iou",
    "distance_box_iou",
    "complete_box_iou",
    "task_aligned_assign",
    "rotated_task_aligned_assign",
    "prototype_mask_loss",
    "linear_sum_assignment",
    "matching_cost",
    "rtdetr_matching_cost",
    "probiou",
    "batch_probiou",
    "gaussian_distance_loss",
    "kfiou_loss",
    "rotated_box_iou",
    "HungarianMatcher",
    "varifocal_loss",
    "quality_focal_loss",
    "distribution_focal_loss",
    "generalized_dice_loss",
    "dice_ce_loss",
    "dice_focal_loss",
    "deep_supervision_loss",
]

_torchscript.refuse_functions(globals(), __all__, "fastloss")
