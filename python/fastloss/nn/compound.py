import torch

from .. import compound as _functional
from .._torchscript import NotScriptable
from ._base import keyword_arguments, set_tensor_option


class _CompoundLoss(NotScriptable, torch.nn.Module):
    """class_weight and ce_weight are buffers when given as tensors or lists (moved by .to(), kept in
    state_dict); the other options are plain attributes."""

    name = None

    def __init__(self, class_weight=None, ce_weight=None, **options):
        super().__init__()
        self.options = options
        set_tensor_option(self, "class_weight", class_weight)
        set_tensor_option(self, "ce_weight", ce_weight)

    def forward(self, input, target):
        return _functional.FUNCTIONS[self.name](
            input, target, class_weight=self.class_weight, ce_weight=self.ce_weight, **self.options
        )

    def extra_repr(self):
        tensors = {"class_weight": self.class_weight, "ce_weight": self.ce_weight}
        return ", ".join(f"{k}={v!r}" for k, v in {**self.options, **tensors}.items())


class DiceCELoss(_CompoundLoss):
    """fastloss.dice_ce_loss as a module: λ_dice·Dice + λ_ce·cross entropy from one softmax pass."""

    name = "dice_ce_loss"

    def __init__(
        self,
        *,
        lambda_dice=1.0,
        lambda_ce=1.0,
        dice="dice",
        ce_weight=None,
        label_smoothing=0.0,
        include_background=True,
        squared_pred=False,
        jaccard=False,
        smooth_nr=1e-5,
        smooth_dr=1e-5,
        batch=False,
        class_weight=None,
        ignore_index=None,
        reduction="mean",
        tversky_alpha=0.5,
        tversky_beta=0.5,
        tversky_gamma=1.0,
        w_type="square",
        soft_label=False,
        process_group=None,
    ):
        super().__init__(**keyword_arguments(locals()))


class DiceFocalLoss(_CompoundLoss):
    """fastloss.dice_focal_loss as a module: λ_dice·Dice + λ_focal·focal (softmax, or MONAI's sigmoid
    term with focal="sigmoid") from one pass."""

    name = "dice_focal_loss"

    def __init__(
        self,
        *,
        lambda_dice=1.0,
        lambda_focal=1.0,
        gamma=2.0,
        dice="dice",
        ce_weight=None,
        label_smoothing=0.0,
        include_background=True,
        squared_pred=False,
        jaccard=False,
        smooth_nr=1e-5,
        smooth_dr=1e-5,
        batch=False,
        class_weight=None,
        ignore_index=None,
        reduction="mean",
        tversky_alpha=0.5,
        tversky_beta=0.5,
        tversky_gamma=1.0,
        w_type="square",
        soft_label=False,
        process_group=None,
        focal="softmax",
        alpha=None,
        activation="softmax",
    ):
        super().__init__(**keyword_arguments(locals()))
