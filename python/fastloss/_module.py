"""What every fastloss.nn module shares: a core function as a torch.nn.Module."""

import numbers
import warnings

import torch

from ._common import check_number, check_reduction
from ._torchscript import NotScriptable


def set_tensor_option(module, name, value):
    """A per-class option (class weights) given as a tensor, list or tuple becomes a buffer —
    moved by .to()/.cuda(), kept in state_dict; None or a number stays a plain attribute."""
    if value is None or isinstance(value, numbers.Real):
        setattr(module, name, value)
    else:
        value = value.detach() if isinstance(value, torch.Tensor) else torch.as_tensor(value, dtype=torch.float32)
        module.register_buffer(name, value)


def warn_deprecated(what, instead):
    warnings.warn(f"{what} is deprecated and will be removed in fastloss 0.3: {instead}", FutureWarning, stacklevel=3)


def _take_deprecated(arguments, allowed, owner):
    """The one deprecated keyword `allowed` out of **arguments; any other name is a TypeError."""
    unknown = sorted(set(arguments) - {allowed})
    if unknown:
        raise TypeError(f"{owner} got an unexpected keyword argument {unknown[0]!r}")
    return arguments.get(allowed)


class Loss(NotScriptable, torch.nn.Module):
    """A fastloss function as a module.

    The constructor takes the function's options with the function's defaults, except `reduction`,
    which defaults to "mean" as torch.nn's losses do; forward takes the function's tensors and returns
    exactly what the function returns for them. Options given as tensors or lists (class weights) are
    buffers: moved by .to()/.cuda(), kept in state_dict.

    mmdet's conventions (`loss_weight`, `reduction_override`) belong to the mmdet face,
    fastloss.mmdet; here they are deprecated and still accepted, with a FutureWarning, until 0.3.
    """

    def __init__(self, reduction="mean", **deprecated):
        super().__init__()
        self.reduction = check_reduction(reduction)
        loss_weight = _take_deprecated(deprecated, "loss_weight", f"{type(self).__name__}()")
        if loss_weight is not None:
            warn_deprecated(
                f"{type(self).__name__}(loss_weight=...)",
                "multiply the loss, or use the mmdet face (fastloss.mmdet), whose modules take mmdet's loss_weight",
            )
            loss_weight = check_number("loss_weight", loss_weight)
        self.loss_weight = loss_weight

    def resolve_reduction(self, deprecated):
        """self.reduction, or the deprecated forward(..., reduction_override=...)."""
        override = _take_deprecated(deprecated, "reduction_override", f"{type(self).__name__}.forward()")
        if override is None:
            return self.reduction
        warn_deprecated(
            f"{type(self).__name__}.forward(reduction_override=...)",
            "call the function (fastloss.*) with its reduction, or use the mmdet face (fastloss.mmdet)",
        )
        return check_reduction(override, "reduction_override")

    def scaled(self, loss):
        """The loss, times the deprecated loss_weight when one was given."""
        return loss if self.loss_weight is None else loss * self.loss_weight

    def extra_repr(self):
        weight = "" if self.loss_weight is None else f", loss_weight={self.loss_weight}"
        return f"reduction={self.reduction!r}{weight}"


def keyword_arguments(scope):
    """An __init__'s own arguments from its locals(), for forwarding all of them to the base class:
    the signature stays explicit (help(), IDEs) without a second list of the same names."""
    return {k: v for k, v in scope.items() if k not in ("self", "__class__")}


class OptionsLoss(Loss):
    """A module over `function(input, target, reduction=..., **options)`, every option keyword-only
    (the segmentation losses). The options named in `tensor_options` (class weights) are buffers when
    given as tensors or lists; the others are kept in self.options."""

    function = None
    tensor_options = ()

    def __init__(self, reduction="mean", **options):
        super().__init__(reduction)
        for name in self.tensor_options:
            set_tensor_option(self, name, options.pop(name))
        self.options = options

    def forward(self, input, target):
        tensors = {name: getattr(self, name) for name in self.tensor_options}
        return type(self).function(input, target, reduction=self.reduction, **tensors, **self.options)

    def extra_repr(self):
        options = {**self.options, **{name: getattr(self, name) for name in self.tensor_options}}
        return "".join(f"{k}={v!r}, " for k, v in options.items()) + super().extra_repr()
