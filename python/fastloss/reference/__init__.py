"""Pure-torch implementations of every fastloss op, with the same signatures.

They are the oracle of the tests and benchmarks (one definition of "correct" for both) and the
fallback when the compiled kernels are unavailable or FASTLOSS_BACKEND=reference is set. They
favour clarity over speed and memory: each materialises its intermediates.
"""

from .box_iou import (
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
from .overlap import dice_loss, tversky_loss
from .compound import dice_ce_loss, dice_focal_loss
from .sigmoid_focal import sigmoid_focal_loss
from .quality_focal import quality_focal_loss, varifocal_loss
from .distribution_focal import distribution_focal_loss
from .softmax_focal import softmax_focal_loss
from .classic import l1_loss, mse_loss, smooth_l1_loss
from .balanced_l1 import balanced_l1_loss
from .mask_loss import prototype_mask_loss
from .._torchscript import refuse_functions

__all__ = [
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
    "prototype_mask_loss",
    "varifocal_loss",
    "quality_focal_loss",
    "distribution_focal_loss",
    "dice_ce_loss",
    "dice_focal_loss",
]

refuse_functions(globals(), __all__, "fastloss.reference")
