from .. import generalized_dice as _generalized
from .. import overlap as _functional
from ._base import OptionsLoss, keyword_arguments


class DiceLoss(OptionsLoss):
    """fastloss.dice_loss as a module: forward(input, target). The options as MONAI's DiceLoss names
    them (softmax=True with to_onehot_y=True is activation="softmax" with label targets)."""

    function = _functional.dice_loss
    tensor_options = ("class_weight",)

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
        soft_label=False,
        process_group=None,
    ):
        super().__init__(**keyword_arguments(locals()))


class TverskyLoss(OptionsLoss):
    """fastloss.tversky_loss as a module (gamma != 1: focal Tversky): forward(input, target)."""

    function = _functional.tversky_loss
    tensor_options = ("class_weight",)

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
        soft_label=False,
        process_group=None,
    ):
        super().__init__(**keyword_arguments(locals()))


class GeneralizedDiceLoss(OptionsLoss):
    """fastloss.generalized_dice_loss as a module: forward(input, target); the class weights come
    from the target (w_type)."""

    function = _generalized.generalized_dice_loss

    def __init__(
        self,
        *,
        w_type="square",
        activation="softmax",
        include_background=True,
        smooth_nr=1e-5,
        smooth_dr=1e-5,
        batch=False,
        ignore_index=None,
        reduction="mean",
        soft_label=False,
        process_group=None,
    ):
        super().__init__(**keyword_arguments(locals()))
