"""MONAI 1.6's DiceCELoss, DiceFocalLoss and GeneralizedDiceFocalLoss (monai/losses/dice.py) on
fastloss's kernels.

DiceCELoss with softmax=True and C > 1 (the segmentation setting) is one fused pass
(fastloss.dice_ce_loss: one softmax for both parts, the gradient written in place). MONAI's other
combinations keep its numbers with the parts computed apart: C = 1 is Dice + BCEWithLogitsLoss
(pos_weight = weight); sigmoid / other_act / no activation is that Dice + softmax cross entropy on
the raw logits (MONAI applies the activation to the Dice part only).

DiceFocalLoss (GeneralizedDiceFocalLoss) is MONAI's Dice (Generalized Dice) + MONAI's FocalLoss,
whose focal term is the *sigmoid* one whatever the Dice activation: one pass
(fastloss.dice_focal_loss(focal="sigmoid"): the Dice's activation and the focal term's sigmoid from
the same read of the logits) for "mean"/"sum" with C > 1, no other_act and a scalar alpha; otherwise
fastloss.monai.DiceLoss (GeneralizedDiceLoss) plus fastloss.monai.FocalLoss, two fused kernels.
"""

import torch

from .. import compound
from .._common import check_nonnegative, check_number, check_values
from .._torchscript import NotScriptable
from .dice import DiceLoss, GeneralizedDiceLoss
from .focal_loss import FocalLoss


def _check_shapes(input, target):
    """MONAI's checks of DiceCELoss/DiceFocalLoss.forward."""
    if input.dim() != target.dim():
        raise ValueError(
            f"the number of dimensions for input and target should be the same, got shape "
            f"{tuple(input.shape)} and {tuple(target.shape)}; if target is not one-hot encoded, "
            f"give it the shape (N, 1, *spatial)"
        )
    if target.shape[1] != 1 and target.shape[1] != input.shape[1]:
        raise ValueError(
            f"number of channels for target is neither 1 (without one-hot encoding) nor the same as "
            f"input, got shape {tuple(input.shape)} and {tuple(target.shape)}"
        )


class DiceCELoss(NotScriptable, torch.nn.Module):
    """MONAI's DiceCELoss: λ_dice·DiceLoss + λ_ce·CrossEntropyLoss (BCEWithLogitsLoss for one
    channel); `weight` weighs both (the Dice part without the background when
    include_background=False); reduction "mean" | "sum"."""

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
        lambda_dice=1.0,
        lambda_ce=1.0,
        label_smoothing=0.0,
    ):
        super().__init__()
        reduction = str(getattr(reduction, "value", reduction))
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum' (MONAI's DiceCEReduction), got {reduction!r}")
        weight = None if weight is None else torch.as_tensor(weight)
        dice_weight = weight[1:] if weight is not None and not include_background else weight
        self.dice = DiceLoss(
            include_background=include_background,
            to_onehot_y=to_onehot_y,
            sigmoid=sigmoid,
            softmax=softmax,
            other_act=other_act,
            squared_pred=squared_pred,
            jaccard=jaccard,
            reduction=reduction,
            smooth_nr=smooth_nr,
            smooth_dr=smooth_dr,
            batch=batch,
            weight=dice_weight,
        )
        # torch's own modules, as MONAI: their buffers are MONAI's state_dict keys, and they compute
        # the parts MONAI computes apart (one channel; an activation other than softmax)
        self.cross_entropy = torch.nn.CrossEntropyLoss(
            weight=weight, reduction=reduction, label_smoothing=check_number("label_smoothing", label_smoothing)
        )
        self.binary_cross_entropy = torch.nn.BCEWithLogitsLoss(pos_weight=weight, reduction=reduction)
        self.lambda_dice = check_nonnegative("lambda_dice", lambda_dice)
        self.lambda_ce = check_nonnegative("lambda_ce", lambda_ce)

    def ce(self, input, target):
        """MONAI's cross entropy of the logits (labels (N, 1, ...) or class probabilities)."""
        if input.shape[1] != target.shape[1] and target.shape[1] == 1:
            target = torch.squeeze(target, dim=1).long()
        elif not torch.is_floating_point(target):
            target = target.to(dtype=input.dtype)
        return self.cross_entropy(input, target)

    def bce(self, input, target):
        if not torch.is_floating_point(target):
            target = target.to(dtype=input.dtype)
        return self.binary_cross_entropy(input, target)

    def forward(self, input, target):
        _check_shapes(input, target)
        dice = self.dice
        fused = dice.softmax and input.shape[1] > 1
        if not fused:
            dice_loss = dice(input, target)
            ce_loss = self.ce(input, target) if input.shape[1] != 1 else self.bce(input, target)
            return self.lambda_dice * dice_loss + self.lambda_ce * ce_loss
        x, t, options = dice.prepare(input, target)
        weight = self.cross_entropy.weight
        return compound.dice_ce_loss(
            x,
            t,
            lambda_dice=self.lambda_dice,
            lambda_ce=self.lambda_ce,
            ce_weight=None if weight is None else weight.to(x.device),
            label_smoothing=self.cross_entropy.label_smoothing,
            batch=options["batch"],
            include_background=options["include_background"],
            **dice.dice_options(x, options["include_background"]),
        )


class DiceFocalLoss(NotScriptable, torch.nn.Module):
    """MONAI's DiceFocalLoss: λ_dice·DiceLoss + λ_focal·FocalLoss (MONAI's sigmoid focal term);
    `weight` and `alpha` as MONAI passes them to both parts."""

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
        gamma=2.0,
        weight=None,
        lambda_dice=1.0,
        lambda_focal=1.0,
        alpha=None,
    ):
        super().__init__()
        self.dice = DiceLoss(
            include_background=include_background,
            to_onehot_y=to_onehot_y,
            sigmoid=sigmoid,
            softmax=softmax,
            other_act=other_act,
            squared_pred=squared_pred,
            jaccard=jaccard,
            reduction=reduction,
            smooth_nr=smooth_nr,
            smooth_dr=smooth_dr,
            batch=batch,
            weight=weight,
        )
        self.focal = FocalLoss(
            include_background=include_background,
            to_onehot_y=to_onehot_y,
            gamma=check_nonnegative("gamma", gamma),
            weight=weight,
            alpha=alpha,
            reduction=reduction,
        )
        self.lambda_dice = check_nonnegative("lambda_dice", lambda_dice)
        self.lambda_focal = check_nonnegative("lambda_focal", lambda_focal)
        self.to_onehot_y = to_onehot_y

    def forward(self, input, target):
        _check_shapes(input, target)
        fused = _fused_focal(
            self.dice,
            self.focal,
            input,
            target,
            self.lambda_dice,
            self.lambda_focal,
            lambda x, include_background: self.dice.dice_options(x, include_background),
        )
        if fused is not None:
            return fused
        # (to_onehot_y: both parts take the labels themselves, one-hot inside their kernels)
        return self.lambda_dice * self.dice(input, target) + self.lambda_focal * self.focal(input, target)


def _fused_focal(dice, focal, input, target, lambda_dice, lambda_focal, dice_options):
    """λ_dice·(the Dice part) + λ_focal·(MONAI's sigmoid FocalLoss) in one pass (dice_focal_loss with
    focal="sigmoid"), or None where MONAI's options need the two modules apart ("none", one channel,
    other_act, a per-class alpha tensor). dice_options(x, include_background): the Dice part's."""
    if not (
        dice.other_act is None
        and dice.reduction in ("mean", "sum")
        and input.shape[1] > 1
        and input.dim() > 2
        and not isinstance(focal.alpha, torch.Tensor)
    ):
        return None
    x, t, options = dice.prepare(input, target)
    if t.dtype.is_floating_point:
        check_values(
            (t != 0) & (t != 1), lambda read: "target must be 0 or 1 (MONAI's focal term is defined for 0/1 targets)"
        )
    include_background = options["include_background"]
    scored = x.shape[1] - (0 if include_background else 1)
    factor = focal._class_factor(scored, x.device, x.dtype)  # MONAI's checks of the class weights
    if factor is not None and not include_background:
        factor = torch.cat([factor.new_ones(1), factor])  # (class 0 is not summed)
    c, sums, ce = compound.parts(
        x,
        t,
        focal="sigmoid",
        alpha=focal.alpha,
        gamma=focal.gamma,
        ce_weight=factor,
        activation=options["activation"],
        include_background=include_background,
        batch=options["batch"],
        **dice_options(x, include_background),
    )
    # MONAI's FocalLoss: "mean" over the elements summed, "sum" of the per-(sample, class) spatial means
    total = ce[:, 0].sum()
    focal_value = total / ce[:, 1].sum() if dice.reduction == "mean" else total / x[0, 0].numel()
    return lambda_dice * compound.dice_value(c, sums) + lambda_focal * focal_value


class GeneralizedDiceFocalLoss(NotScriptable, torch.nn.Module):
    """MONAI's GeneralizedDiceFocalLoss: λ_gdl·GeneralizedDiceLoss + λ_focal·FocalLoss (sigmoid focal
    term; `weight` is the focal part's)."""

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
        gamma=2.0,
        weight=None,
        lambda_gdl=1.0,
        lambda_focal=1.0,
    ):
        super().__init__()
        self.generalized_dice = GeneralizedDiceLoss(
            include_background=include_background,
            to_onehot_y=to_onehot_y,
            sigmoid=sigmoid,
            softmax=softmax,
            other_act=other_act,
            w_type=w_type,
            reduction=reduction,
            smooth_nr=smooth_nr,
            smooth_dr=smooth_dr,
            batch=batch,
        )
        self.focal = FocalLoss(
            include_background=include_background,
            to_onehot_y=to_onehot_y,
            gamma=check_nonnegative("gamma", gamma),
            weight=weight,
            reduction=reduction,
        )
        self.lambda_gdl = check_nonnegative("lambda_gdl", lambda_gdl)
        self.lambda_focal = check_nonnegative("lambda_focal", lambda_focal)

    def forward(self, input, target):
        _check_shapes(input, target)
        gdl = self.generalized_dice
        fused = _fused_focal(
            gdl,
            self.focal,
            input,
            target,
            self.lambda_gdl,
            self.lambda_focal,
            lambda x, include_background: dict(
                dice="generalized_dice",
                w_type=gdl.w_type,
                smooth_nr=gdl.smooth_nr,
                smooth_dr=gdl.smooth_dr,
                soft_label=gdl.soft_label,
                reduction=gdl.reduction,
            ),
        )
        if fused is not None:
            return fused
        return self.lambda_gdl * gdl(input, target) + self.lambda_focal * self.focal(input, target)


__all__ = ["DiceCELoss", "DiceFocalLoss", "GeneralizedDiceFocalLoss"]
