"""fastloss.balanced_l1_loss: the fused Balanced L1 loss (Libra R-CNN).

Kernels: csrc/math/balanced_l1.h (the formula), csrc/cpu/ and csrc/cuda/balanced_l1.*. When a
gradient will be needed (float32/float64 pred), the forward also writes dL/dpred into a buffer of
pred's size, from the same log; that buffer becomes the gradient: the backward
(fastloss::balanced_l1_loss_backward_) only scales it in place. A second backward through the same
graph (retain_graph=True), and half types, recompute it (fastloss::balanced_l1_loss_backward).
"""

import torch

from . import _autocast, _autograd, _backend, _vmap
from ._autograd import refuse_grad
from ._module import Loss
from ._common import NONE, apply_avg_factor, opmath_dtype
from ._inputs import box_pairs, strided, with_options
from ._spec import DTYPE_PAIRS, FLOATS, WAVES, Case, OpSpec, Plan, declare, operand_dtypes
from .reference import balanced_l1 as _reference

_OP = "fastloss::balanced_l1_loss"
_KEEPS_GRAD = (torch.float32, torch.float64)  # a kept gradient in a half type would be rounded twice


def _fused(pred, target, reduction, alpha, gamma, beta, weight, avg_factor):
    a = _reference.check_args(pred, target, reduction, alpha, gamma, beta, weight, avg_factor)
    if not _backend.use_kernels(a.pred.device):
        return _reference.compute(a)
    keep_grad = a.pred.requires_grad and torch.is_grad_enabled() and a.pred.dtype in _KEEPS_GRAD
    loss, _ = torch.ops.fastloss.balanced_l1_loss(
        a.pred, a.target, a.weight, a.alpha, a.gamma, a.beta, a.reduction, keep_grad
    )
    return apply_avg_factor(loss, a.avg_factor)


def balanced_l1_loss(pred, target, reduction="mean", *, alpha=0.5, gamma=1.5, beta=1.0, weight=None, avg_factor=None):
    """Balanced L1 loss (Pang et al., Libra R-CNN, arXiv 1904.02701), elementwise on d = |pred − target|:
    α/b·(b·d + 1)·ln(b·d/β + 1) − α·d below β, γ·d + γ/b − α·β above, b = e^{γ/α} − 1 (mmdet's
    balanced_l1_loss). One fused pass forward, one backward; the gradient goes to pred only.

    pred, target: the same shape, floating dtypes (promoted; math in float32, float64 for float64;
        the loss is float32 for half inputs).
    reduction: "none" (pred's shape) | "mean" | "sum"; empty inputs give 0.
    weight: broadcastable to pred's shape (no gradient); avg_factor: with "mean", sum / avg_factor.
    """
    return _fused(pred, target, reduction, alpha, gamma, beta, weight, avg_factor)


__all__ = ["balanced_l1_loss"]


def _setup(ctx, args, outputs):
    # The kept gradient is not a saved tensor: the first backward takes it over and scales it in place,
    # so nothing of pred's size is kept twice. (It has no grad_fn: no cycle.)
    ctx.kept = [outputs[1]] if args[7] else []


def _backward(ctx, args, saved, grads, needs):
    refuse_grad(needs, [("target", 1), ("weight", 2)], "balanced_l1_loss")
    pred, target, weight, alpha, gamma, beta, reduction, _ = args
    if not ctx.kept:  # half types, or a second backward through the same graph (retain_graph=True)
        grad = torch.ops.fastloss.balanced_l1_loss_backward(
            grads[0], pred, target, weight, alpha, gamma, beta, reduction
        )
        return (grad,) + (None,) * 7
    kept = ctx.kept.pop()
    torch.ops.fastloss.balanced_l1_loss_backward_(grads[0], kept, weight, reduction)
    return (kept,) + (None,) * 7


def _vmap_rule(info, in_dims, pred, target, weight, alpha, gamma, beta, reduction, keep_grad=False):
    batch = info.batch_size
    p, t = _vmap.front(pred, in_dims[0], batch), _vmap.front(target, in_dims[1], batch)
    w = None if weight is None else _vmap.front(weight, in_dims[2], batch).expand(p.shape)
    loss, kept = torch.ops.fastloss.balanced_l1_loss(p, t, w, alpha, gamma, beta, NONE, keep_grad)
    loss = loss if reduction == NONE else _vmap.reduce_per_sample(loss, reduction)
    return (loss, kept), (0, 0 if keep_grad else None)


def _register():
    @torch.library.register_fake(_OP)
    def _(pred, target, weight, alpha, gamma, beta, reduction, keep_grad=False):
        loss = pred.new_empty(pred.shape if reduction == NONE else (), dtype=opmath_dtype(pred.dtype))
        return loss, pred.new_empty(pred.shape if keep_grad else (0,))

    @torch.library.register_fake(_OP + "_backward")
    def _(grad, pred, target, weight, alpha, gamma, beta, reduction):
        return pred.new_empty(pred.shape)

    @torch.library.register_fake(_OP + "_backward_")
    def _(grad, kept_grad, weight, reduction):
        return None

    _autograd.register(
        _autograd.Spec("balanced_l1_loss", _backward, _reference.op, non_differentiable=(1,), setup=_setup)
    )
    _vmap.register("balanced_l1_loss", _vmap_rule)
    _autocast.register("balanced_l1_loss")


# -------------------------------------------------------------------------------- the nn module


class BalancedL1Loss(Loss):
    """fastloss.balanced_l1_loss as a module: forward(pred, target, weight=None, avg_factor=None)."""

    def __init__(self, reduction="mean", *, alpha=0.5, gamma=1.5, beta=1.0):
        super().__init__(reduction)
        self.alpha, self.gamma, self.beta = alpha, gamma, beta

    def forward(self, pred, target, weight=None, avg_factor=None):
        return balanced_l1_loss(
            pred,
            target,
            self.reduction,
            alpha=self.alpha,
            gamma=self.gamma,
            beta=self.beta,
            weight=weight,
            avg_factor=avg_factor,
        )

    def extra_repr(self):
        return f"alpha={self.alpha}, gamma={self.gamma}, beta={self.beta}, " + super().extra_repr()


# ------------------------------------------------------------------------------------ the record


def _parity_call(case, g, on, seed):
    dtype, dtype2 = operand_dtypes(case)
    n = case["elements"]
    target = torch.randn(n, generator=g, dtype=torch.float64)
    pred = on(target + torch.randn(n, generator=g, dtype=torch.float64) * 1.5, dtype)
    w = {None: None, "full": torch.rand(n, generator=g), "row": torch.rand(1, generator=g)}[case["weight"]]
    kwargs = dict(reduction=case["reduction"], weight=None if w is None else on(w, dtype))
    return balanced_l1_loss, [strided(pred, case["contiguous"]), on(target, dtype2)], kwargs


def _dtype_sweep(small):
    return [
        small(dtype=a, dtype2=b, reduction=r, grad=gr)
        for a, b in DTYPE_PAIRS
        for r in ("none", "mean")
        for gr in (True, False, "twice")
    ]


SPEC = declare(
    OpSpec(
        "balanced_l1",
        ops=("balanced_l1_loss", "balanced_l1_loss_backward", "balanced_l1_loss_backward_"),
        register=_register,
        reference=_reference,
        modules=(BalancedL1Loss,),
        cases=(
            Case(
                "balanced_l1",
                balanced_l1_loss,
                _reference.balanced_l1_loss,
                with_options(box_pairs, beta=2.0, alpha=0.4),
            ),
        ),
        plan=Plan(
            factors=dict(
                dtype=FLOATS,
                elements=[1, 31, 33, 1025, 65537, WAVES],
                reduction=["none", "mean", "sum"],
                weight=[None, "full", "row"],
                contiguous=[True, False],
            ),
            call=_parity_call,
            elements=lambda case: case["elements"],
            shrink=("elements",),
            small=dict(elements=1000),
            mid=dict(elements=1_000_001),
            large=dict(elements=20_000_000),
            empty=(dict(elements=0),),
            sweep=_dtype_sweep,
            elementwise=True,
        ),
        bench="balanced_l1",
    )
)
