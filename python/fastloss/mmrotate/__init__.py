"""Drop-in replacements for mmrotate 0.3.4's Gaussian-distance losses, on fastloss's fused kernels.

GDLoss and KFLoss have mmrotate's names, constructor arguments, defaults, attributes, forward
signatures and numbers (see docs/faces.md); neither has a parameter or buffer, as in mmrotate.
Importable without mmrotate. When mmrotate is installed, importing this module also registers the
classes in its ROTATED_LOSSES registry as "Fast" + the name, e.g. in a config:

    custom_imports = dict(imports=["fastloss.mmrotate"], allow_failed_imports=False)
    model = dict(bbox_head=dict(loss_bbox=dict(type="FastGDLoss", loss_type="kld", fun="log1p", tau=1.0,
                                               loss_weight=1.0)))
"""

from ..mmdet._base import register_classes
from .gaussian_dist_loss import GDLoss
from .kf_iou_loss import KFLoss

__all__ = ["GDLoss", "KFLoss", "REGISTERED_NAMES", "register"]

REGISTERED_NAMES = {"FastGDLoss": GDLoss, "FastKFLoss": KFLoss}


def register(registry=None):
    """Registers the classes under REGISTERED_NAMES in `registry` (default: mmrotate's
    ROTATED_LOSSES, when mmrotate can be imported). Returns the registry, or None when there is none."""
    return register_classes(REGISTERED_NAMES, registry, _rotated_losses)


def _rotated_losses():
    from mmrotate.models.builder import ROTATED_LOSSES

    return ROTATED_LOSSES


register()
