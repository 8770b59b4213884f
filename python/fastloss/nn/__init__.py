"""fastloss's functions as torch.nn modules.

Each module is its function (fastloss.<name>_loss) with the options given at construction, defined
beside it in the function's own module: the
function's options and defaults, but reduction="mean" as in torch.nn; forward takes the function's
tensors and returns what the function returns for them. The ecosystems' own module APIs are the faces:
fastloss.mmdet (mmdet's losses, loss_weight and reduction_override), fastloss.monai,
fastloss.ultralytics, fastloss.nnunet.
"""

from .._module import Loss, OptionsLoss, warn_deprecated
from ..box_iou_loss import BoxIoULoss, CDIoULoss, CIoULoss, DIoULoss, EIoULoss, FocalEIoULoss, GIoULoss, IoULoss
from ..overlap import DiceLoss, TverskyLoss
from ..generalized_dice import GeneralizedDiceLoss
from ..compound import DiceCELoss, DiceFocalLoss
from ..sigmoid_focal import SigmoidFocalLoss
from ..quality_focal import QualityFocalLoss, VarifocalLoss
from ..distribution_focal import DistributionFocalLoss
from ..softmax_focal import CrossEntropyLoss, SoftmaxFocalLoss
from ..classic import L1Loss, MSELoss, SmoothL1Loss
from ..balanced_l1 import BalancedL1Loss
from ..mask_loss import PrototypeMaskLoss
from ..gaussian_distance import GaussianDistanceLoss, KFIoULoss

__all__ = [
    "Loss",
    "OptionsLoss",
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
    "GeneralizedDiceLoss",
    "SoftmaxFocalLoss",
    "CrossEntropyLoss",
    "L1Loss",
    "MSELoss",
    "SmoothL1Loss",
    "BalancedL1Loss",
    "PrototypeMaskLoss",
    "GaussianDistanceLoss",
    "KFIoULoss",
    "VarifocalLoss",
    "QualityFocalLoss",
    "DistributionFocalLoss",
    "DiceCELoss",
    "DiceFocalLoss",
]

# names of earlier releases, kept until 0.3 with a FutureWarning: old name -> (new name, advice)
DEPRECATED = {"WeightedLoss": ("Loss", "fastloss.nn.Loss is the modules' base (mmdet's conventions: fastloss.mmdet)")}


def __getattr__(name):
    if name in DEPRECATED:
        new, advice = DEPRECATED[name]
        warn_deprecated(f"fastloss.nn.{name}", advice)
        return globals()[new]
    raise AttributeError(f"module 'fastloss.nn' has no attribute {name!r}")
