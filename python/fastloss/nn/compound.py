from .. import compound as _functional
from ._base import OptionsLoss, keyword_arguments


class DiceCELoss(OptionsLoss):
    """fastloss.dice_ce_loss as a module, forward(input, target): λ_dice·Dice + λ_ce·cross entropy
    from one softmax pass."""

    function = _functional.dice_ce_loss
    tensor_options = ("class_weight", "ce_weight")

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


class DiceFocalLoss(OptionsLoss):
    """fastloss.dice_focal_loss as a module, forward(input, target): λ_dice·Dice + λ_focal·focal
    (softmax, or MONAI's sigmoid term with focal="sigmoid") from one pass."""

    function = _functional.dice_focal_loss
    tensor_options = ("class_weight", "ce_weight")

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
