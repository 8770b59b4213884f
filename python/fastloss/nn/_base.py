"""The mmdet-style loss module that every fastloss module follows."""

import numbers

import torch

from .._common import check_number, check_reduction
from .._torchscript import NotScriptable


def set_tensor_option(module, name, value):
    """A per-class option (class weights) given as a tensor, list or tuple becomes a buffer —
    moved by .to()/.cuda(), kept in state_dict; None or a number stays a plain attribute."""
    if value is None or isinstance(value, numbers.Real):
        setattr(module, name, value)
    else:
        value = value.detach() if isinstance(value, torch.Tensor) else torch.as_tensor(value, dtype=torch.float32)
        module.register_buffer(name, value)


def keyword_arguments(scope):
    """An __init__'s own arguments from its locals(), for forwarding all of them to the base class:
    the signature stays explicit (help(), IDEs) without a second list of the same names."""
    return {k: v for k, v in scope.items() if k not in ("self", "__class__")}


class WeightedLoss(NotScriptable, torch.nn.Module):
    """reduction and loss_weight at construction; forward(pred, target, weight=None, avg_factor=None,
    reduction_override=None) returns loss_weight × the loss, as mmdet's losses do."""

    def __init__(self, reduction="mean", loss_weight=1.0):
        super().__init__()
        self.reduction = check_reduction(reduction)
        self.loss_weight = check_number("loss_weight", loss_weight)

    def resolve_reduction(self, reduction_override):
        if reduction_override is None:
            return self.reduction
        return check_reduction(reduction_override, "reduction_override")

    def extra_repr(self):
        return f"reduction={self.reduction!r}, loss_weight={self.loss_weight}"
