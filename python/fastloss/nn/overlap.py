import torch

from .. import overlap as _functional
from .._torchscript import NotScriptable
from ._base import keyword_arguments, set_tensor_option


class _OverlapLoss(NotScriptable, torch.nn.Module):
    """class_weight is a buffer (moved by .to()/.cuda(), kept in state_dict); the other options are
    plain attributes."""

    name = None

    def __init__(self, class_weight=None, **options):
        super().__init__()
        self.options = options
        set_tensor_option(self, "class_weight", class_weight)

    def forward(self, input, target):
        return _functional.FUNCTIONS[self.name](input, target, class_weight=self.class_weight, **self.options)

    def extra_repr(self):
        return ", ".join(f"{k}={v!r}" for k, v in {**self.options, "class_weight": self.class_weight}.items())


class DiceLoss(_OverlapLoss):
    """fastloss.dice_loss as a module; the options as MONAI's DiceLoss names them (softmax=True with
    to_onehot_y=True is activation="softmax" with label targets)."""

    name = "dice_loss"

    def __init__(
        self,
        *,
        activation="softmax",
        include_background=True,
        squared_pred=False,
        jaccard=False,
        smooth_nr=1e-5,
        smooth_dr=1e-5,
        batch=False,
        class_weight=None,
        ignore_index=None,
        reduction="mean",
        process_group=None,
    ):
        super().__init__(**keyword_arguments(locals()))


class TverskyLoss(_OverlapLoss):
    """fastloss.tversky_loss as a module (gamma != 1: focal Tversky)."""

    name = "tversky_loss"

    def __init__(
        self,
        *,
        alpha=0.5,
        beta=0.5,
        gamma=1.0,
        activation="softmax",
        include_background=True,
        smooth_nr=1e-5,
        smooth_dr=1e-5,
        batch=False,
        class_weight=None,
        ignore_index=None,
        reduction="mean",
        process_group=None,
    ):
        super().__init__(**keyword_arguments(locals()))
