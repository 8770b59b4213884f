"""Drop-in replacements for mmdetection 3.x's losses, on fastloss's fused kernels.

Each class has mmdet's name, constructor arguments, defaults, attributes, forward signature and
numbers (see docs/faces.md); none has a parameter or buffer, as in mmdet. Importable
without mmdet. When mmdet (and mmengine) are installed, importing this module also registers the
classes in mmdet's MODELS registry as "Fast" + the mmdet name, e.g. in a config:

    custom_imports = dict(imports=["fastloss.mmdet"], allow_failed_imports=False)
    model = dict(bbox_head=dict(loss_cls=dict(type="FastFocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25,
                                              loss_weight=1.0)))
"""

from ._base import register_classes
from .bbox_overlaps import bbox_overlaps
from .cross_entropy_loss import CrossEntropyLoss
from .dice_loss import DiceLoss
from .focal_loss import FocalLoss
from .gfocal_loss import DistributionFocalLoss, QualityFocalLoss
from .iou_loss import BoundedIoULoss, CIoULoss, DIoULoss, EIoULoss, GIoULoss, IoULoss, SIoULoss
from .mse_loss import MSELoss
from .smooth_l1_loss import BalancedL1Loss, L1Loss, SmoothL1Loss
from .varifocal_loss import VarifocalLoss

__all__ = [
    "FocalLoss",
    "CrossEntropyLoss",
    "IoULoss",
    "GIoULoss",
    "DIoULoss",
    "CIoULoss",
    "SIoULoss",
    "EIoULoss",
    "BoundedIoULoss",
    "L1Loss",
    "SmoothL1Loss",
    "BalancedL1Loss",
    "MSELoss",
    "DiceLoss",
    "VarifocalLoss",
    "QualityFocalLoss",
    "DistributionFocalLoss",
    "REGISTERED_NAMES",
    "register",
    "bbox_overlaps",
]
# the loss classes: registered in mmdet's MODELS as "Fast" + the name
LOSSES = [name for name in __all__ if name.endswith("Loss")]

REGISTERED_NAMES = {"Fast" + name: globals()[name] for name in LOSSES}


def register(registry=None):
    """Registers the classes under REGISTERED_NAMES in `registry` (default: mmdet.registry.MODELS, when
    mmdet can be imported). Returns the registry, or None when there is none."""
    return register_classes(REGISTERED_NAMES, registry, _mmdet_models)


def _mmdet_models():
    from mmdet.registry import MODELS

    return MODELS


register()
