"""Drop-in replacements for MONAI 1.6's DiceLoss, TverskyLoss, GeneralizedDiceLoss, FocalLoss,
DiceCELoss, DiceFocalLoss and GeneralizedDiceFocalLoss, on fastloss's fused kernels: MONAI's
constructor arguments, defaults, state_dict keys, warnings and numbers (see docs/faces.md)."""

from .compound import DiceCELoss, DiceFocalLoss, GeneralizedDiceFocalLoss
from .dice import DiceLoss, GeneralizedDiceLoss
from .focal_loss import FocalLoss
from .tversky import TverskyLoss

__all__ = [
    "DiceLoss",
    "GeneralizedDiceLoss",
    "TverskyLoss",
    "FocalLoss",
    "DiceCELoss",
    "DiceFocalLoss",
    "GeneralizedDiceFocalLoss",
]
