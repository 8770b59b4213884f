"""MONAI's DiceLoss and GeneralizedDiceLoss (monai/losses/dice.py) on fastloss's fused overlap sums."""

import torch

from .. import overlap
from ..generalized_dice import W_TYPES, generalized_dice_loss
from .._common import check_bool, check_nonnegative
from ._common import MonaiLoss


class DiceLoss(MonaiLoss):
    """MONAI's DiceLoss: its constructor, numbers and "none" shape (N, C, 1, ...)."""

    def __init__(
        self,
        include_background=True,
        to_onehot_y=False,
        sigmoid=False,
        softmax=False,
        other_act=None,
        squared_pred=False,
        jaccard=False,
        reduction="mean",
        smooth_nr=1e-5,
        smooth_dr=1e-5,
        batch=False,
        weight=None,
        soft_label=False,
        ignore_index=None,
    ):
        super().__init__(include_background, to_onehot_y, sigmoid, softmax, other_act, reduction, batch)
        self.squared_pred = check_bool("squared_pred", squared_pred)
        self.jaccard = check_bool("jaccard", jaccard)
        self.smooth_nr, self.smooth_dr = (
            float(check_nonnegative("smooth_nr", smooth_nr)),
            float(check_nonnegative("smooth_dr", smooth_dr)),
        )
        weight = None if weight is None else torch.as_tensor(weight)
        if weight is not None and (weight < 0).any():
            raise ValueError("weight (the class weights) must be >= 0")
        self.register_buffer("class_weight", weight)  # as MONAI: in state_dict when given
        self.soft_label = check_bool("soft_label", soft_label)
        self.ignore_index = ignore_index

    def scored_class_weight(self, input, include_background):
        """The class weights as MONAI applies them: one per scored class (a number for all), none for
        a single scored class."""
        scored = input.shape[1] - (0 if include_background else 1)
        class_weight = self.class_weight
        if class_weight is None or scored == 1:  # MONAI applies no class weight to a single class
            return None
        if class_weight.dim() == 0:
            class_weight = class_weight.expand(scored)
        elif class_weight.shape[0] != scored:
            raise ValueError(
                f"weight must have one value per class scored ({scored}; without the background "
                f"when include_background=False), got {class_weight.shape[0]}"
            )
        return class_weight.to(input.device)

    def dice_options(self, input, include_background):
        """The Dice options of fastloss.dice_loss this module stands for."""
        return dict(
            squared_pred=self.squared_pred,
            jaccard=self.jaccard,
            smooth_nr=self.smooth_nr,
            smooth_dr=self.smooth_dr,
            class_weight=self.scored_class_weight(input, include_background),
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            soft_label=self.soft_label,
        )

    def forward(self, input, target):
        input, target, options = self.prepare(input, target)
        f = overlap.dice_loss(input, target, **self.dice_options(input, options["include_background"]), **options)
        return self.broadcastable(f, input) if self.reduction == "none" else f


class GeneralizedDiceLoss(MonaiLoss):
    """MONAI's GeneralizedDiceLoss (Sudre et al. 2017, arXiv 1707.03237): class weights w_c = 1/(Σ t)²
    ("square"), 1/Σ t ("simple") or 1 ("uniform"), a class without ground truth taking the largest
    finite weight; 1 − (2·Σ_c w_c·tp_c + smooth_nr) / (Σ_c w_c·(Σp + Σt)_c + smooth_dr) per sample (or
    over the batch) — fastloss.generalized_dice_loss, from the fused kernel's (N, C, 3) sums."""

    def __init__(
        self,
        include_background=True,
        to_onehot_y=False,
        sigmoid=False,
        softmax=False,
        other_act=None,
        w_type="square",
        reduction="mean",
        smooth_nr=1e-5,
        smooth_dr=1e-5,
        batch=False,
        soft_label=False,
    ):
        super().__init__(include_background, to_onehot_y, sigmoid, softmax, other_act, reduction, batch)
        w_type = str(getattr(w_type, "value", w_type))
        if w_type not in W_TYPES:
            raise ValueError(f"w_type must be one of {W_TYPES}, got {w_type!r}")
        self.w_type = w_type
        self.smooth_nr, self.smooth_dr = (
            float(check_nonnegative("smooth_nr", smooth_nr)),
            float(check_nonnegative("smooth_dr", smooth_dr)),
        )
        self.soft_label = check_bool("soft_label", soft_label)

    def forward(self, input, target):
        input, target, options = self.prepare(input, target)
        f = generalized_dice_loss(
            input,
            target,
            w_type=self.w_type,
            smooth_nr=self.smooth_nr,
            smooth_dr=self.smooth_dr,
            soft_label=self.soft_label,
            reduction="none",
            **options,
        )
        if self.reduction == "mean":
            return f.mean()
        if self.reduction == "sum":
            return f.sum()
        return self.broadcastable(f if options["batch"] else f.unsqueeze(1), input)  # MONAI's shapes


__all__ = ["DiceLoss", "GeneralizedDiceLoss"]
