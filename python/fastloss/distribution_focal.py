"""fastloss.distribution_focal_loss: GFL's Distribution Focal Loss (Li et al. 2020, arXiv 2006.04388).

Kernels: csrc/math/distribution_focal.h (the formula), csrc/cpu/ and csrc/cuda/distribution_focal.*.
This file registers the op's fake kernel and autograd formula and exposes the function.
"""

import torch

from . import _autocast, _autograd, _backend, _vmap
from ._autograd import refuse_grad
from ._inputs import with_options
from ._spec import FLOATS, Case, OpSpec, Plan, declare
from ._module import Loss
from ._common import NONE, apply_avg_factor, opmath_dtype, result_dtype
from .reference import distribution_focal as _reference

_OP = "fastloss::distribution_focal_loss"


def distribution_focal_loss(pred, target, *, target_max=None, reduction="mean", weight=None, avg_factor=None):
    """Distribution Focal Loss over the n = pred.shape[-1] bins of each box side:

        l = ⌊t⌋, r = l + 1:  loss = (r − t)·CE(pred, l) + (t − l)·CE(pred, r)

    Args:
        pred: bin logits of shape (..., n), float16/bfloat16/float32/float64 (math in float32, or
            float64). mmdet's reg_max=16 is n = 17 bins; ultralytics' DFLoss(reg_max=16) is n = 16.
        target: the continuous targets in bin units, shape pred.shape[:-1], in [0, n − 1] (a
            ValueError on CPU, a device-side assert on CUDA otherwise). t = n − 1 has no right bin.
            No gradient.
        target_max: None, or clamp the target to [0, target_max] first — ultralytics' DFLoss uses
            reg_max − 1 − 0.01 — without modifying the caller's tensor (DFLoss clamps in place).
        reduction: "none" (the target's shape) | "mean" (over the targets) | "sum".
        weight: optional, broadcastable to the target's shape (e.g. one per box side). No gradient.
        avg_factor: with "mean", sum / avg_factor (mmdet's convention).

    Memory: the forward keeps one log-sum-exp per row (1/n of pred); the backward writes only the
    gradient.
    """
    a = _reference.check_args(pred, target, target_max, reduction, weight, avg_factor)
    if not _backend.use_kernels(a.pred.device):
        return _reference.compute(a)
    loss, _ = torch.ops.fastloss.distribution_focal_loss(a.pred, a.target, a.weight, a.target_max, a.reduction)
    return apply_avg_factor(loss, a.avg_factor).to(result_dtype(a.pred))


def _backward(ctx, args, saved, grads, needs):
    pred, target, weight, target_max, reduction = args
    refuse_grad(needs, [("target", 1), ("weight", 2)], "distribution_focal_loss")
    grad = torch.ops.fastloss.distribution_focal_loss_backward(
        grads[0], pred, target, weight, saved[0], target_max, reduction
    )
    return (grad, None, None, None, None)


def _vmap_rule(info, in_dims, pred, target, weight, target_max, reduction):
    batch = info.batch_size
    p, t = _vmap.front(pred, in_dims[0], batch), _vmap.front(target, in_dims[1], batch)
    w = None if weight is None else _vmap.front(weight, in_dims[2], batch).expand(t.shape).contiguous()
    loss, lse = torch.ops.fastloss.distribution_focal_loss(p, t, w, target_max, NONE)
    return ((loss if reduction == NONE else _vmap.reduce_per_sample(loss, reduction)), lse), (0, 0)


def _register():
    @torch.library.register_fake(_OP)
    def _(pred, target, weight, target_max, reduction):
        math = opmath_dtype(pred.dtype)
        return (
            pred.new_empty(target.shape if reduction == NONE else (), dtype=math),
            pred.new_empty(target.shape, dtype=math),
        )

    @torch.library.register_fake(_OP + "_backward")
    def _(grad, pred, target, weight, lse, target_max, reduction):
        return pred.new_empty(pred.shape)

    _autograd.register(
        _autograd.Spec("distribution_focal_loss", _backward, _reference.op, save_outputs=(1,), non_differentiable=(1,))
    )
    _vmap.register("distribution_focal_loss", _vmap_rule)
    _autocast.register("distribution_focal_loss")


# -------------------------------------------------------------------------------- the nn module


class DistributionFocalLoss(Loss):
    """fastloss.distribution_focal_loss as a module: forward(pred (..., n), target (...), weight=None,
    avg_factor=None)."""

    def __init__(self, target_max=None, reduction="mean", **deprecated):
        super().__init__(reduction, **deprecated)
        self.target_max = target_max

    def forward(self, pred, target, weight=None, avg_factor=None, **deprecated):
        loss = distribution_focal_loss(
            pred,
            target,
            target_max=self.target_max,
            reduction=self.resolve_reduction(deprecated),
            weight=weight,
            avg_factor=avg_factor,
        )
        return self.scaled(loss)

    def extra_repr(self):
        return f"target_max={self.target_max}, " + super().extra_repr()


# ------------------------------------------------------------------------------------ the record


def _bins_case(n, dtype, device, g):
    """17 bins (mmdet's reg_max = 16), targets in [0, 16] with both ends."""
    t = torch.rand(n, generator=g, dtype=torch.float64) * 16
    t[::5] = 16
    t[1::5] = 0
    x = (torch.randn(n, 17, generator=g, dtype=torch.float64) * 2).to(device=device, dtype=dtype)
    return (x, t.to(device=device, dtype=dtype)), dict(reduction="sum")


def _parity_call(case, g, on, seed):
    dtype, rows, bins = case["dtype"], case["rows"], case["bins"]
    x = on(torch.randn(rows, bins, generator=g, dtype=torch.float64) * 2, dtype)
    t = torch.rand(rows, generator=g, dtype=torch.float64) * (bins - 1)
    t[::7] = 0
    t[3::7] = bins - 1
    kwargs = dict(reduction=case["reduction"])
    if case["weight"] == "row":
        kwargs["weight"] = on(torch.rand(rows, generator=g), dtype)
    if case["target_max"] == "clamp":
        kwargs["target_max"] = bins - 1 - 0.01
    return distribution_focal_loss, [x, on(t, dtype)], kwargs


SPEC = declare(
    OpSpec(
        "distribution_focal",
        ops=("distribution_focal_loss", "distribution_focal_loss_backward"),
        register=_register,
        reference=_reference,
        modules=(DistributionFocalLoss,),
        cases=(
            Case("distribution_focal", distribution_focal_loss, _reference.distribution_focal_loss, _bins_case),
            Case(
                "distribution_focal ultralytics",
                distribution_focal_loss,
                _reference.distribution_focal_loss,
                with_options(_bins_case, target_max=15.99, reduction="mean"),
            ),
        ),
        plan=Plan(
            factors=dict(
                dtype=FLOATS,
                rows=[1, 33, 1025, 40000],
                bins=[2, 8, 16, 17],
                reduction=["none", "mean", "sum"],
                weight=[None, "row"],
                target_max=[None, "clamp"],
            ),
            call=_parity_call,
            elements=lambda case: case["rows"] * case["bins"],
            shrink=("rows",),
            small=dict(rows=300),
            mid=dict(rows=300001, bins=17),
            large=dict(rows=2_000_000, bins=17),
            empty=(dict(rows=0),),
            sweep=lambda small: [small(dtype=a, reduction=r) for a in FLOATS for r in ("none", "mean")],
        ),
        bench="quality_focal",
    )
)
