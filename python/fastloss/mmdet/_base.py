"""mmdet 3.x's loss conventions, shared by the fastloss.mmdet modules.

Each module keeps mmdet's constructor arguments as plain attributes (no parameters or buffers:
mmdet's losses have an empty state_dict, so checkpoints load strictly either way) and reduces as
mmdet's `weight_reduce_loss` does: "mean" is the mean over all elements (ignored ones included),
`avg_factor` divides the sum by avg_factor + float32 eps (so 0 gives 0) and passes "none" through
unreduced. The loss itself comes from fastloss's kernels, weighted inside them; only the division
happens here, with tensors, never reading a value on the host.
"""

import torch

from .._common import check_number, check_reduction
from .._torchscript import NotScriptable

EPS = torch.finfo(torch.float32).eps  # mmdet's guard against avg_factor == 0


def resolve_reduction(module, reduction_override):
    """mmdet's rule: None or "" keeps the module's reduction."""
    if reduction_override not in (None, "none", "mean", "sum"):
        raise ValueError(f"Invalid reduction_override {reduction_override!r}: must be None, 'none', 'mean' or 'sum'")
    return reduction_override if reduction_override else module.reduction


def weight_reduce(run, reduction, avg_factor, count):
    """mmdet's weight_reduce_loss over a fused loss: run("none") gives the weighted element losses,
    run("sum") their sum; count is the number of elements "mean" divides by (an empty input's "mean"
    is 0, as everywhere in fastloss; mmdet's is NaN)."""
    if avg_factor is None:
        if reduction == "mean":
            return run("sum") / max(count, 1)
        return run(reduction)
    if reduction == "mean":
        total = run("sum")
        if isinstance(avg_factor, torch.Tensor):  # a count: in the loss's dtype, as mmdet's Python number
            avg_factor = avg_factor.to(total.dtype)
        return total / (avg_factor + EPS)
    if reduction == "none":
        return run("none")
    raise ValueError('avg_factor can not be used with reduction="sum"')


def zero_weight_sum(loss, pred, weight, reduction):
    """mmdet's box and L1 losses return (pred * weight).sum() when no weight is positive; chosen with
    torch.where, so no host sync (the loss is computed either way). Not for reduction "none": mmdet's
    scalar there cannot take the unreduced shape without reading the weights on the host, so the
    weighted element losses (zeros) stay."""
    if weight is None or reduction == "none":
        return loss
    w = weight.unsqueeze(1) if pred.dim() == weight.dim() + 1 else weight
    return torch.where((weight > 0).any(), loss, (pred * w).sum().to(loss.dtype))


def register_classes(names, registry, find_registry):
    """Registers {name: class} in `registry`, or in find_registry()'s (the framework's, None when it
    cannot be imported). Returns the registry, or None when there is none."""
    if registry is None:
        try:
            registry = find_registry()
        except (ImportError, AssertionError):  # not installed, or its mmcv is missing or mismatched
            return None
    for name, cls in names.items():
        registry.register_module(name=name, module=cls, force=True)
    return registry


class MMDetLoss(NotScriptable, torch.nn.Module):
    """reduction and loss_weight as mmdet's losses take them."""

    def __init__(self, reduction="mean", loss_weight=1.0):
        super().__init__()
        self.reduction = check_reduction(reduction)
        self.loss_weight = check_number("loss_weight", loss_weight)

    def scaled(self, loss):
        return self.loss_weight * loss

    def extra_repr(self):
        return f"reduction={self.reduction!r}, loss_weight={self.loss_weight}"
