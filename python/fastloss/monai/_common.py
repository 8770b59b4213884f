"""MONAI 1.6's conventions, shared by the fastloss.monai losses: the activation flags (sigmoid,
softmax, other_act — applied in Python before the fused kernel, which then runs with activation
"none"), to_onehot_y, and MONAI's warnings for single-channel predictions (it warns and ignores the
option; fastloss's core API raises)."""

import warnings

import torch

from .._common import check_bool, check_reduction
from .._torchscript import NotScriptable


def check_activation_flags(sigmoid, softmax, other_act):
    if other_act is not None and not callable(other_act):
        raise TypeError(f"other_act must be None or callable, got {type(other_act).__name__}")
    check_bool("sigmoid", sigmoid)
    check_bool("softmax", softmax)
    if int(sigmoid) + int(softmax) + int(other_act is not None) > 1:
        raise ValueError("at most one of sigmoid=True, softmax=True and other_act may be given")


class ShapeMismatch(ValueError, AssertionError):
    """A target whose (one-hot) shape is not the input's: MONAI's DiceLoss family raises AssertionError
    there; this is both that and the ValueError fastloss raises for bad input."""


def single_channel(option):
    warnings.warn(f"single channel prediction: {option} is ignored (as in MONAI)", stacklevel=4)


class MonaiLoss(NotScriptable, torch.nn.Module):
    """include_background, to_onehot_y and the activation, as MONAI's DiceLoss family takes them."""

    def __init__(self, include_background, to_onehot_y, sigmoid, softmax, other_act, reduction, batch):
        super().__init__()
        check_activation_flags(sigmoid, softmax, other_act)
        self.include_background = check_bool("include_background", include_background)
        self.to_onehot_y = check_bool("to_onehot_y", to_onehot_y)
        self.sigmoid, self.softmax, self.other_act = sigmoid, softmax, other_act
        self.reduction = check_reduction(reduction)
        self.batch = check_bool("batch", batch)

    def prepare(self, input, target):
        """(input, target, options for fastloss's overlap losses)."""
        classes = input.shape[1] if input.dim() >= 2 else 1
        activation = "sigmoid" if self.sigmoid else "none"
        if self.softmax:
            if classes == 1:
                single_channel("softmax=True")
            else:
                activation = "softmax"
        if self.other_act is not None:  # any callable (alone: checked at construction), applied here;
            input = self.other_act(input)  # the kernel then takes probabilities
        if self.to_onehot_y:
            if classes == 1:
                single_channel("to_onehot_y=True")
                target = target.to(input.dtype) if not target.dtype.is_floating_point else target
            elif target.dtype.is_floating_point:  # MONAI's one_hot takes float labels too
                target = target.long()
        elif not target.dtype.is_floating_point:  # a one-hot target in an integer dtype
            target = target.to(input.dtype)
        one_hot_shape = (
            tuple(target.shape[:1]) + (classes,) + tuple(target.shape[2:])
            if self.to_onehot_y and classes > 1 and target.dim() >= 2
            else tuple(target.shape)
        )
        if one_hot_shape != tuple(input.shape):
            raise ShapeMismatch(f"ground truth has different shape ({one_hot_shape}) from input ({tuple(input.shape)})")
        include_background = self.include_background
        if not include_background and classes == 1:
            single_channel("include_background=False")
            include_background = True
        return input, target, dict(activation=activation, include_background=include_background, batch=self.batch)

    @staticmethod
    def broadcastable(f, input):
        """MONAI's "none" shape: the scores with a unit dimension per spatial dimension."""
        return f.view(list(f.shape[0:2]) + [1] * (input.dim() - 2))
