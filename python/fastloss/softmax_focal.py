"""fastloss.softmax_focal_loss: the fused multi-class focal loss (cross entropy at γ = 0).

Kernels: csrc/math/softmax_focal.h (the formula), csrc/cpu/ and csrc/cuda/softmax_focal.*. They
return the per-position losses or their sum, the per-position log-sum-exp the backward needs, and
the count of kept positions; "mean" and avg_factor are applied here
(fastloss.reference.softmax_focal.finish, shared with the reference).
"""

import torch

from . import _autocast, _autograd, _backend, _vmap
from ._autograd import refuse_grad
from ._inputs import logits, strided
from ._spec import FLOATS, Case, OpSpec, Plan, declare
from ._module import Loss, set_tensor_option
from ._common import NONE, opmath_dtype, result_dtype
from .reference import softmax_focal as _reference

_OP = "fastloss::softmax_focal_loss"


def _fused(input, target, **options):
    a = _reference.check_args(input, target, **options)
    if not _backend.use_kernels(a.input.device):
        return _reference.compute(a)
    loss, _, count = torch.ops.fastloss.softmax_focal_loss(
        a.input,
        a.target,
        a.alpha,
        a.weight,
        a.gamma,
        a.label_smoothing,
        a.reduction,
        a.ignore_index,
        result_dtype(a.input) != a.input.dtype,
    )
    return _reference.finish(loss, count, a)


def softmax_focal_loss(
    input,
    target,
    *,
    alpha=None,
    gamma=2.0,
    ignore_index=-100,
    reduction="mean",
    weight=None,
    avg_factor=None,
    label_smoothing=0.0,
):
    """Softmax (multi-class) focal loss with PyTorch's cross-entropy conventions.

    Per position with label y, p = softmax(input) over C, ε = label_smoothing:
        A = (1 − ε)·α_y·(−log p_y) + (ε/C)·Σ_c α_c·(−log p_c)   (F.cross_entropy's term)
        loss = (1 − p_y)^γ · A · weight
    (Lin et al. 2017, arXiv 1708.02002, in the multi-class form of mmcv's softmax_focal_loss.)
    With gamma=0 it is F.cross_entropy(input, target, weight=alpha, ignore_index=ignore_index,
    reduction=reduction, label_smoothing=ε), gradients included. With smoothing, the focal factor
    of the labelled class scales the whole smoothed term.

    input: (N, C) or (N, C, *spatial) logits, float16/bfloat16/float32/float64 (math in float32,
        float64 for float64); non-contiguous inputs are copied once.
    target: integer labels (N,) or (N, *spatial). Labels equal to ignore_index add no loss, no
        gradient and nothing to the "mean" divisor; other labels outside [0, C) raise a
        ValueError on CPU, and on CUDA trigger a device-side assert (as F.cross_entropy does) —
        they are never used as addresses.
    alpha: None, a number (every class), or a (C,) tensor of class weights — F.cross_entropy's
        `weight`. "mean" divides by Σ α_y over the kept positions (torch's weighted mean), so a
        single number cancels out of "mean"; it scales "sum" and "none".
    gamma: focusing exponent >= 0 (0: cross entropy).
    reduction: "mean" | "sum" | "none" ((N, *spatial) losses). All positions ignored: "sum"
        gives 0 and "mean" NaN, as F.cross_entropy; an empty input's "mean" is 0 (F.cross_entropy:
        NaN), as for every fastloss loss.
    weight: optional per-position weight of shape (N, *spatial) (mmdet's), multiplying the loss;
        it does not enter the "mean" divisor. Gets no gradient.
    avg_factor: with reduction="mean", the loss is sum / avg_factor (mmdet's convention).
    The forward keeps the logits, the labels and one float per position (the log-sum-exp);
    the backward is one pass.
    """
    return _fused(
        input,
        target,
        alpha=alpha,
        gamma=gamma,
        ignore_index=ignore_index,
        reduction=reduction,
        weight=weight,
        avg_factor=avg_factor,
        label_smoothing=label_smoothing,
    )


__all__ = ["softmax_focal_loss"]


def _backward(ctx, args, saved, grads, needs):
    input, target, alpha, weight, *params, _ = args
    refuse_grad(needs, [("alpha", 2), ("weight", 3)], "softmax_focal_loss")
    if grads[0] is None:
        return (None,) * 9
    grad_input = torch.ops.fastloss.softmax_focal_loss_backward(
        grads[0], input, target, alpha, weight, saved[0], *params
    )
    return (grad_input,) + (None,) * 8


def _vmap_rule(
    info, in_dims, input, target, alpha, weight, gamma, label_smoothing, reduction, ignore_index, math_type_loss=False
):
    batch = info.batch_size
    if in_dims[2] is not None:  # class weights that differ per sample
        return _vmap.per_sample(
            torch.ops.fastloss.softmax_focal_loss,
            batch,
            in_dims + (None,),
            (input, target, alpha, weight, gamma, label_smoothing, reduction, ignore_index, math_type_loss),
        )
    x, y = _vmap.front(input, in_dims[0], batch), _vmap.front(target, in_dims[1], batch)
    w = _vmap.front(weight, in_dims[3], batch)
    n, classes, inner = x.shape[1:]
    loss, lse, _ = torch.ops.fastloss.softmax_focal_loss(
        x.reshape(batch * n, classes, inner),
        y.reshape(batch * n, inner),
        alpha,
        None if w is None else w.reshape(batch * n, inner),
        gamma,
        label_smoothing,
        NONE,
        ignore_index,
        math_type_loss,
    )
    loss, lse = loss.reshape(batch, n, inner), lse.reshape(batch, n, inner)
    count = (y != ignore_index).reshape(batch, -1).sum(1)
    if reduction != NONE:
        loss = _vmap.reduce_per_sample(loss, reduction, count)
    return (loss, lse, count), (0, 0, 0)


def _register():
    @torch.library.register_fake(_OP)
    def _(input, target, alpha, weight, gamma, label_smoothing, reduction, ignore_index, math_type_loss=False):
        math = opmath_dtype(input.dtype)
        unreduced = math if math_type_loss else input.dtype
        loss = input.new_empty(target.shape, dtype=unreduced) if reduction == 0 else input.new_empty((), dtype=math)
        return loss, input.new_empty(target.shape, dtype=math), input.new_empty((), dtype=torch.int64)

    @torch.library.register_fake(_OP + "_backward")
    def _(grad, input, target, alpha, weight, lse, gamma, label_smoothing, reduction, ignore_index):
        return input.new_empty(input.shape)

    _autograd.register(
        _autograd.Spec("softmax_focal_loss", _backward, _reference.op, save_outputs=(1,), non_differentiable=(1, 2))
    )
    _vmap.register("softmax_focal_loss", _vmap_rule)
    _autocast.register("softmax_focal_loss", math_type_loss=True)


# -------------------------------------------------------------------------------- the nn module


class SoftmaxFocalLoss(Loss):
    """fastloss.softmax_focal_loss as a module.

    forward(input, target, weight=None, avg_factor=None): input (N, C) or (N, C, *spatial) logits,
    target integer labels, weight one value per position. alpha given as a tensor or list is a buffer.
    """

    def __init__(self, alpha=None, gamma=2.0, ignore_index=-100, label_smoothing=0.0, reduction="mean", **deprecated):
        super().__init__(reduction, **deprecated)
        set_tensor_option(self, "alpha", alpha)
        self.gamma, self.ignore_index, self.label_smoothing = gamma, ignore_index, label_smoothing

    def forward(self, input, target, weight=None, avg_factor=None, **deprecated):
        loss = softmax_focal_loss(
            input,
            target,
            alpha=self.alpha,
            gamma=self.gamma,
            ignore_index=self.ignore_index,
            reduction=self.resolve_reduction(deprecated),
            weight=weight,
            avg_factor=avg_factor,
            label_smoothing=self.label_smoothing,
        )
        return self.scaled(loss)

    def extra_repr(self):
        return (
            f"alpha={self.alpha}, gamma={self.gamma}, ignore_index={self.ignore_index}, "
            f"label_smoothing={self.label_smoothing}, " + super().extra_repr()
        )


class CrossEntropyLoss(SoftmaxFocalLoss):
    """Softmax cross entropy: fastloss.softmax_focal_loss with gamma=0 and alpha=class_weight, which
    equals F.cross_entropy(weight=class_weight, ignore_index, label_smoothing) and keeps only one
    float per position for its backward (F.cross_entropy keeps the N×C log-probabilities)."""

    def __init__(self, class_weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean", **deprecated):
        super().__init__(
            alpha=class_weight,
            gamma=0.0,
            ignore_index=ignore_index,
            label_smoothing=label_smoothing,
            reduction=reduction,
            **deprecated,
        )


# ------------------------------------------------------------------------------------ the record


def _rows_case(n, dtype, device, g):
    labels = torch.randint(0, 5, (n,), generator=g)
    labels[::5] = -100
    return (logits(n, 5, dtype, device, g), labels.to(device)), dict(gamma=2.0, label_smoothing=0.1)


def _spatial_case(n, dtype, device, g):
    x = (torch.randn(2, 4, n, generator=g, dtype=torch.float64) * 2).to(device=device, dtype=dtype)
    return (x, torch.randint(0, 4, (2, n), generator=g).to(device)), dict(gamma=0.0, reduction="sum")


def _parity_call(case, g, on, seed):
    dtype = case["dtype"]
    positions, classes = case["positions"], case["classes"]
    shape = (positions, classes) if case["layout"] == "rows" else (2, classes, max(positions // 2, 1))
    x = on(torch.randn(shape, generator=g, dtype=torch.float64) * 3, dtype)
    label_shape = (shape[0],) + shape[2:]
    y = torch.randint(0, classes, label_shape, generator=g)
    if case["ignore"]:
        y.view(-1)[::5] = -100
    kwargs = dict(gamma=case["gamma"], reduction=case["reduction"], label_smoothing=case["smoothing"])
    if case["alpha"] == "tensor":
        kwargs["alpha"] = on(torch.rand(classes, generator=g) + 0.5)
    if case["weight"] == "position":
        kwargs["weight"] = on(torch.rand(label_shape, generator=g), dtype)
    return softmax_focal_loss, [strided(x, case["contiguous"]), on(y)], kwargs


def _dtype_sweep(small):
    # the classes pick the lanes per row: 1, 2, 4, 8, 16, 32
    layouts = ((1, "rows"), (2, "rows"), (3, "rows"), (5, "rows"), (9, "rows"), (33, "rows"), (5, "spatial"))
    return [
        small(dtype=a, classes=c, layout=layout, reduction=r)
        for a in FLOATS
        for c, layout in layouts
        for r in ("none", "mean")
    ]


SPEC = declare(
    OpSpec(
        "softmax_focal",
        ops=("softmax_focal_loss", "softmax_focal_loss_backward"),
        register=_register,
        reference=_reference,
        modules=(SoftmaxFocalLoss, CrossEntropyLoss),
        cases=(
            Case("softmax_focal rows", softmax_focal_loss, _reference.softmax_focal_loss, _rows_case),
            Case("softmax_focal spatial", softmax_focal_loss, _reference.softmax_focal_loss, _spatial_case),
        ),
        plan=Plan(
            factors=dict(
                dtype=FLOATS,
                layout=["rows", "spatial"],
                positions=[1, 31, 33, 1025, 65537],
                classes=[1, 4, 31, 33, 80, 1203, 32768],
                reduction=["none", "mean", "sum"],
                alpha=[None, "tensor"],
                weight=[None, "position"],
                ignore=[False, True],
                smoothing=[0.0, 0.1],
                gamma=[0.0, 2.0, 0.5],
                contiguous=[True, False],
            ),
            call=_parity_call,
            elements=lambda case: case["positions"] * case["classes"],
            shrink=("positions",),
            small=dict(positions=257, classes=4),
            mid=dict(positions=70001, classes=81),
            large=dict(positions=600_000, classes=81),
            empty=(dict(positions=0),),
            sweep=_dtype_sweep,
        ),
        bench="softmax_focal",
    )
)
