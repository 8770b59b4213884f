"""Argument checks and bookkeeping shared by every loss (the kernels never see unchecked input)."""

import numbers

import torch

# Codes of csrc/common/reduction.h.
REDUCTIONS = {"none": 0, "sum": 1, "mean": 2}
NONE, SUM, MEAN = 0, 1, 2
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_tensor(name, value):
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")


def check_floating(name, value):
    check_tensor(name, value)
    if value.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be a float16, bfloat16, float32 or float64 tensor, got {value.dtype}")


def check_same_device(name, value, ref_name, ref):
    if value.device != ref.device:
        raise ValueError(
            f"{name} and {ref_name} must be on the same device; {name} is on {value.device}, {ref_name} on {ref.device}"
        )


def check_number(name, value):
    """A finite real number. Under torch.compile(dynamic=True) a float argument is symbolic: no
    math.isfinite (Dynamo cannot trace it) — x − x == 0 holds exactly for finite x (NaN for ±inf
    and NaN) and is traceable; the kernels check their numbers again at run time."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, torch.SymFloat, torch.SymInt)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not isinstance(value, (torch.SymFloat, torch.SymInt)):
        value = float(value)
    if not value - value == 0:
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def check_nonnegative(name, value):
    value = check_number(name, value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def check_bool(name, value):
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def check_choice(name, value, choices):
    """The code of a string option: choices maps each allowed string to its kernel code."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return choices[value]


INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def check_int(name, value):
    """An int that fits the kernels' int64."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, torch.SymInt)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if isinstance(value, torch.SymInt):
        return value
    value = int(value)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"{name} must fit in int64 ([-2**63, 2**63 - 1]), got {value}")
    return value


def check_pair(pred, target, what=""):
    """pred and target: float tensors of one shape on one device (`what` prefixes the shape error)."""
    check_floating("pred", pred)
    check_floating("target", target)
    check_same_device("target", target, "pred", pred)
    if pred.shape != target.shape:
        raise ValueError(
            f"{what}pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )


def reduce_unreduced(loss, code, avg_factor):
    """A reference's unreduced loss under a kernel reduction code: itself ("none"), its sum, or its
    mean over the elements (0 when empty); the sum then divided by avg_factor when given."""
    if code == NONE:
        return loss
    total = loss.sum()
    if code == MEAN:
        total = total / max(loss.numel(), 1)
    return apply_avg_factor(total, avg_factor)


def check_reduction(reduction, name="reduction"):
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        # "Invalid" first: torchvision's tests match that word
        raise ValueError(f"Invalid {name} {reduction!r}: must be 'none', 'mean' or 'sum'")
    return reduction


def reduction_code(reduction, avg_factor, layers=0):
    """The kernel's reduction code. With avg_factor (mmdet's convention, "mean" only) the kernel sums
    and apply_avg_factor divides. With per-layer losses (layers > 0) a tensor avg_factor may also
    have one element per layer."""
    check_reduction(reduction)
    if avg_factor is None:
        return REDUCTIONS[reduction]
    if reduction != "mean":
        raise ValueError(f"avg_factor can only be used with reduction='mean', got reduction={reduction!r}")
    if isinstance(avg_factor, torch.Tensor):
        if avg_factor.numel() != 1 and (layers == 0 or avg_factor.shape != (layers,)):
            raise ValueError(
                "avg_factor must be a number or a one-element tensor"
                + (f" or one per layer, shape ({layers},)" if layers else "")
                + f", got shape {tuple(avg_factor.shape)}"
            )
    elif check_number("avg_factor", avg_factor) <= 0:
        raise ValueError(f"avg_factor must be > 0, got {avg_factor}")
    return SUM


def apply_avg_factor(loss, avg_factor):
    """sum / avg_factor (a tensor avg_factor is used as given: no device sync to check it)."""
    if avg_factor is None:
        return loss
    if isinstance(avg_factor, torch.Tensor):
        return loss / avg_factor.reshape(avg_factor.shape if avg_factor.dim() == 1 and loss.dim() == 1 else ()).to(
            loss.dtype
        )
    return loss / avg_factor


def prepare_weight(weight, inputs, per_row=True):
    """The weight as a tensor that broadcasts to the loss (the inputs' shape), without copying.

    With per_row, a weight of shape inputs.shape[:-1] is one weight per row (per anchor: mmdet's
    convention) and gets a trailing unit dimension; any other shape follows torch broadcasting, so
    a per-class weight is (C,) — or (1, C) when the number of rows equals C.
    """
    if weight is None:
        return None
    check_weight(weight, inputs, "inputs")
    if per_row and inputs.dim() >= 1 and weight.shape == inputs.shape[:-1]:
        weight = weight.unsqueeze(-1)
    check_broadcasts_to_loss(weight, inputs.shape)
    return weight


def check_weight(weight, ref, ref_name):
    """A float weight tensor on ref's device that does not require grad (no op gives gradients with
    respect to a weight: the same error everywhere, instead of a silently detached weight)."""
    check_floating("weight", weight)
    check_same_device("weight", weight, ref_name, ref)
    if weight.requires_grad:
        raise ValueError(
            "weight requires grad, but gradients with respect to the weight are not supported; pass weight.detach()"
        )


def check_broadcasts_to_loss(weight, shape):
    """A ValueError unless `weight` broadcasts to the loss's `shape` without growing it."""
    try:
        fits = torch.broadcast_shapes(weight.shape, shape) == shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(f"weight of shape {tuple(weight.shape)} does not broadcast to the loss shape {tuple(shape)}")


def check_logits(input, target, layout):
    """input: float logits with a class dimension 1 (`layout` names the accepted shapes); target: a
    tensor on input's device. Returns (N, C)."""
    check_floating("input", input)
    if input.dim() < 2:
        raise ValueError(f"input must have shape {layout}, got {tuple(input.shape)}")
    if input.shape[1] == 0:
        raise ValueError(f"input must have at least one class (dimension 1), got shape {tuple(input.shape)}")
    check_tensor("target", target)
    check_same_device("target", target, "input", input)
    return input.shape[:2]


def check_values(bad, describe):
    """The rule for checks of tensor values (labels, scores, class weights): where `bad` (a bool
    tensor) has a True element, a ValueError(describe(True)) on CPU (describe may read the values to
    name the bad one) and a device-side assert with describe(False) on other devices, which never
    reads the values on the host (no sync: CUDA graphs keep working). Nothing happens while tracing
    (torch.compile) or on functorch's wrapped tensors, whose values cannot be read."""
    if torch.compiler.is_compiling() or torch._C._functorch.is_functorch_wrapped_tensor(bad):
        return
    if bad.device.type == "cpu":
        if bool(bad.any()):
            raise ValueError(describe(True))
    elif bad.numel() > 0:
        torch._assert_async(torch.logical_not(bad.any()), "fastloss: " + describe(False))


def check_range(name, values, low, high, hint=""):
    """check_values for a float tensor that must lie in [low, high] (one min/max pass, no tensor of its
    size); NaN passes, as the losses propagate it."""
    if values.numel() == 0:
        return
    least, most = torch.aminmax(values.detach())
    check_values(
        (least < low) | (most > high),
        lambda read: (
            f"{name} has "
            + (f"values in [{least.item()}, {most.item()}]" if read else "a value")
            + f" outside [{low}, {high}]"
            + hint
        ),
    )


def check_labels(target, outside, classes):
    """check_values for integer labels: `outside` marks labels outside [0, classes) that are not
    ignored."""

    def describe(read):
        label = f"label {target[outside][0].item()}" if read else "a label"
        return f"target has {label} outside [0, {classes}) that is not ignore_index"

    check_values(outside, describe)


def result_dtype(*tensors):
    """The dtype of a loss over these float tensors: their promoted dtype — float32 for half types
    under autocast, where torch runs its losses in float32 (binary_cross_entropy_with_logits and
    cross_entropy are on autocast's float32 list)."""
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    if dtype in (torch.float16, torch.bfloat16) and torch.is_autocast_enabled(tensors[0].device.type):
        return torch.float32
    return dtype


def opmath_dtype(dtype):
    """The dtype the math runs in: float64 for float64, float32 otherwise."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def weighted_elementwise(name, elementwise, pred, target, reduction, weight, avg_factor):
    """elementwise(pred, target, reduction) under the detector API: weight multiplies the element
    losses, avg_factor divides their sum (mmdet's convention); an empty "mean" is 0."""
    check_pair(pred, target, f"{name}: ")
    code = reduction_code(reduction, avg_factor)
    if pred.numel() == 0 and reduction == "mean" and avg_factor is None:
        reduction = "sum"  # an empty "mean" is 0, with a working backward, as for every fastloss loss
    if weight is None and avg_factor is None:
        return elementwise(pred, target, reduction)
    loss = elementwise(pred, target, "none")
    if weight is not None:
        check_weight(weight, pred, "pred")
        check_broadcasts_to_loss(weight, loss.shape)
        loss = loss * weight
    if code == NONE:
        return loss
    return apply_avg_factor(loss.sum(), avg_factor) if avg_factor is not None or code == SUM else loss.mean()
