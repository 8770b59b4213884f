"""Gaussian-distance losses of oriented boxes (GWD, KLD, JD, symmetric KLDs, KFIoU) on one fused op,
fastloss::gaussian_distance (formulas in csrc/math/gaussian_distance.h): each aligned pair's Gaussians,
distance, post-processing and gradient in one pass, writing only the loss (and, backward, the boxes'
gradients) — where mmrotate's functions build a dozen (N, 2, 2) tensors. Only each box's cos and sin
come from torch (which chains their gradient to the angle).

The numbers are mmrotate 0.3.4's (fastloss.mmrotate has its GDLoss and KFLoss), except where mmrotate's
float arithmetic breaks down: its determinants a·b − c² cancel for thin, huge-aspect or tiny boxes (w or
h → 0), giving NaN or ±inf in the loss or the gradient; here det Σ comes from the box itself, so such
boxes get a finite loss and gradient (see the header).
"""

import functools
import math

import torch

from . import _autograd, _backend
from ._common import check_bool, check_choice, check_number, check_reduction, check_tensor
from ._module import Loss
from ._spec import OpSpec, Plan, declare
from .reference import gaussian_distance as _reference
from .reference.oriented import xywhr_rows

_OP = "fastloss::gaussian_distance"
_KIND = {name: code for code, name in enumerate(_reference.KINDS)}
_GD_FUN = {"none": 0, "log1p": 1, "sqrt": 2}
_KF_FUN = {"none": 0, "ln": 3, "exp": 4}
_REPRESENTATION = {name: code for code, name in enumerate(_reference.REPRESENTATIONS)}


def _boxes(name, value, width=5):
    check_tensor(name, value)
    if not value.dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating point tensor, got {value.dtype}")
    if value.dim() == 0 or value.shape[-1] != width:
        raise ValueError(f"{name} must have shape (..., {width}), got {tuple(value.shape)}")
    return value


def _same(ref_name, ref, name, value):
    if value.shape != ref.shape:
        raise ValueError(f"{name} must have {ref_name}'s shape {tuple(ref.shape)}, got {tuple(value.shape)}")
    if value.device != ref.device:
        raise ValueError(f"{name} must be on {ref_name}'s device {ref.device}, got {value.device}")


def _op(pred, target, representation, kind, fun, tau, alpha, beta, eps, flag):
    if _backend.use_kernels(pred.device):
        return torch.ops.fastloss.gaussian_distance(
            pred, target, representation, kind, fun, tau, alpha, beta, eps, flag
        )
    return _reference.gaussian_distance_op(pred, target, representation, kind, fun, tau, alpha, beta, eps, flag)


def _reduce(loss, weight, reduction):
    if weight is not None:
        check_tensor("weight", weight)
        try:
            fits = torch.broadcast_shapes(weight.shape, loss.shape) == loss.shape
        except RuntimeError:
            fits = False
        if not fits:
            raise ValueError(
                f"weight must broadcast to the loss's shape {tuple(loss.shape)}, got {tuple(weight.shape)}"
            )
        loss = loss * weight
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.sum() / max(loss.numel(), 1)


def _run(rows_of, boxes, representation, kind, fun, tau, alpha, beta, eps, flag, weight, reduction):
    """The op over the rows of aligned box sets (all of boxes' shape (..., 5)), in float32 (half) or
    float64, returned in the boxes' dtype with their leading shape."""
    check_reduction(reduction)
    dtype = functools.reduce(torch.promote_types, [b.dtype for b in boxes])
    math_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    lead = boxes[0].shape[:-1]
    pred, target = (r.reshape(-1, r.shape[-1]) for r in rows_of(*[b.to(math_dtype) for b in boxes]))
    loss = _op(pred, target, representation, kind, fun, tau, alpha, beta, eps, flag).view(lead)
    return _reduce(loss, weight, reduction).to(dtype)


def gaussian_distance_loss(
    pred,
    target,
    loss_type="kld",
    fun="log1p",
    tau=1.0,
    alpha=1.0,
    *,
    sqrt=True,
    normalize=True,
    representation="xy_wh_r",
    weight=None,
    reduction="none",
):
    """The Gaussian-distance loss of aligned oriented boxes pred, target (..., 5), as mmrotate 0.3.4's
    gwd_loss, kld_loss, jd_loss, kld_symmax_loss and kld_symmin_loss (loss_type "gwd", "kld", "jd",
    "kld_symmax", "kld_symmin"): the distance (GWD normalised when `normalize`; the KLDs' square root
    when `sqrt`), then fun ("log1p", "sqrt" or "none"), then 1 − 1/(tau + d) when tau ≥ 1. Boxes are
    xywhr (radians; w and h clamped to [1e-7, 1e7]) or, with representation="xy_stddev_pearson",
    (x, y, σx, σy, ρ). `weight` multiplies the element losses (broadcast); reduction "none" (...),
    "mean" or "sum". Half boxes are computed in float32 and returned in their dtype."""
    pred, target = _boxes("pred", pred), _boxes("target", target)
    _same("pred", pred, "target", target)
    kind = check_choice("loss_type", loss_type, {k: _KIND[k] for k in _reference.KINDS[:5]})
    code = check_choice("fun", fun, _GD_FUN)
    rep = check_choice("representation", representation, _REPRESENTATION)
    tau, alpha = check_number("tau", tau), check_number("alpha", alpha)
    if alpha == 0:
        raise ValueError("alpha must not be 0")
    flag = check_bool("normalize", normalize) if kind == _KIND["gwd"] else check_bool("sqrt", sqrt)
    rows = xywhr_rows if rep == 0 else (lambda b: b)
    return _run(
        lambda p, t: (rows(p), rows(t)), (pred, target), rep, kind, code, tau, alpha, 1.0, 1e-6, flag, weight, reduction
    )


def kfiou_loss(
    pred, target, pred_decode, targets_decode, fun="none", beta=1.0 / 9.0, eps=1e-6, *, weight=None, reduction="none"
):
    """mmrotate 0.3.4's kfiou_loss (Yang et al., "The KFIoU Loss for Rotated Object Detection"): the
    smooth L1 (beta) of pred[..., :2] and target[..., :2] plus fun ("none": 1 − KFIoU, "ln":
    −ln(KFIoU + eps), "exp": e^(1 − KFIoU) − 1) of the KFIoU of the decoded xywhr boxes pred_decode,
    targets_decode (..., 5), clamped at 0; pred and target (..., k ≥ 2) (mmrotate's encoded deltas).
    `weight` and `reduction` as gaussian_distance_loss's."""
    pred_decode, targets_decode = _boxes("pred_decode", pred_decode), _boxes("targets_decode", targets_decode)
    _same("pred_decode", pred_decode, "targets_decode", targets_decode)
    lead = tuple(pred_decode.shape[:-1])
    for name, value in (("pred", pred), ("target", target)):
        check_tensor(name, value)
        if not value.dtype.is_floating_point:
            raise TypeError(f"{name} must be a floating point tensor, got {value.dtype}")
        if tuple(value.shape[:-1]) != lead or value.shape[-1] < 2 or value.device != pred_decode.device:
            raise ValueError(
                f"{name} must have shape {lead + ('k',)}, k >= 2, on pred_decode's device; got "
                f"{tuple(value.shape)} on {value.device}"
            )
    boxes = (pred, target, pred_decode, targets_decode)
    code = check_choice("fun", fun, _KF_FUN)
    beta, eps = check_number("beta", beta), check_number("eps", eps)
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")

    def rows(p, t, pd, td):  # the centres from pred/target, the covariances from the decoded boxes
        return (
            torch.cat((p[..., :2], xywhr_rows(pd)[..., 2:]), -1),
            torch.cat((t[..., :2], xywhr_rows(td)[..., 2:]), -1),
        )

    return _run(rows, boxes, 0, _KIND["kfiou"], code, 0.0, 1.0, beta, eps, False, weight, reduction)


__all__ = ["gaussian_distance_loss", "kfiou_loss"]


# -------------------------------------------------------------------------------- the nn modules


class GaussianDistanceLoss(Loss):
    """fastloss.gaussian_distance_loss as a module: forward(pred, target, weight=None)."""

    def __init__(
        self,
        reduction="mean",
        *,
        loss_type="kld",
        fun="log1p",
        tau=1.0,
        alpha=1.0,
        sqrt=True,
        normalize=True,
        representation="xy_wh_r",
    ):
        super().__init__(reduction)
        self.loss_type, self.fun, self.tau, self.alpha = loss_type, fun, tau, alpha
        self.sqrt, self.normalize, self.representation = sqrt, normalize, representation

    def forward(self, pred, target, weight=None):
        return gaussian_distance_loss(
            pred,
            target,
            self.loss_type,
            self.fun,
            self.tau,
            self.alpha,
            sqrt=self.sqrt,
            normalize=self.normalize,
            representation=self.representation,
            weight=weight,
            reduction=self.reduction,
        )

    def extra_repr(self):
        return f"loss_type={self.loss_type!r}, fun={self.fun!r}, tau={self.tau}, " + super().extra_repr()


class KFIoULoss(Loss):
    """fastloss.kfiou_loss as a module: forward(pred, target, pred_decode, targets_decode, weight=None)."""

    def __init__(self, reduction="mean", *, fun="none", beta=1.0 / 9.0, eps=1e-6):
        super().__init__(reduction)
        self.fun, self.beta, self.eps = fun, beta, eps

    def forward(self, pred, target, pred_decode, targets_decode, weight=None):
        return kfiou_loss(
            pred,
            target,
            pred_decode,
            targets_decode,
            self.fun,
            self.beta,
            self.eps,
            weight=weight,
            reduction=self.reduction,
        )

    def extra_repr(self):
        return f"fun={self.fun!r}, beta={self.beta}, " + super().extra_repr()


def _backward(ctx, args, saved, grads, needs):
    gp, gt = torch.ops.fastloss.gaussian_distance_backward(grads[0].contiguous(), *args, needs[0], needs[1])
    return (gp if needs[0] else None, gt if needs[1] else None) + (None,) * 8


def _register():
    @torch.library.register_fake(_OP)
    def _(pred, target, representation, kind, fun, tau, alpha, beta, eps, flag):
        return pred.new_empty((pred.shape[0],))

    @torch.library.register_fake(_OP + "_backward")
    def _(grad, pred, target, representation, kind, fun, tau, alpha, beta, eps, flag, pred_grad, target_grad):
        return pred.new_empty(pred.shape if pred_grad else (0,)), target.new_empty(
            target.shape if target_grad else (0,)
        )

    _autograd.register(_autograd.Spec("gaussian_distance", _backward, _reference.gaussian_distance_op))


# ------------------------------------------------------------------------------------ the record

# each kind's three funs, by the plan's `variant`
_VARIANTS = {kind: (0, 3, 4) if kind == _KIND["kfiou"] else (0, 1, 2) for kind in _KIND.values()}


def oriented_boxes(n, kind, generator):
    """n xywhr boxes (float64): "random" (centres within a few sizes, angles in (−π, π)), "degenerate"
    (every third of zero width, every fifth 1000 times as long as wide), "near" (within a tenth of a
    size of the previous set's boxes: call with the same generator state)."""
    g = generator
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * 6
    wh = torch.rand(n, 2, generator=g, dtype=torch.float64) * 3 + 0.2
    if kind == "degenerate":
        wh[::3, 0] = 0
        wh[1::5, 0] = wh[1::5, 1] * 1000
    r = (torch.rand(n, 1, generator=g, dtype=torch.float64) - 0.5) * 2 * math.pi
    return torch.cat([xy, wh, r], -1)


def _parity_call(case, g, on, seed):
    n, rep = case["n"], case["representation"]
    p, t = oriented_boxes(n, case["kind"], g), oriented_boxes(n, case["kind"], g)
    if rep == 0:
        p, t = xywhr_rows(p), xywhr_rows(t)
    else:  # (x, y, σx, σy, ρ): ρ from the angle, in (−1, 1)
        p[:, 4], t[:, 4] = p[:, 4].sin() * 0.9, t[:, 4].sin() * 0.9
    loss = case["loss"]
    fn = functools.partial(
        torch.ops.fastloss.gaussian_distance,
        representation=rep,
        kind=loss,
        fun=_VARIANTS[loss][case["variant"]],
        tau=case["tau"],
        alpha=1.5,
        beta=1.0 / 9.0,
        eps=1e-6,
        flag=case["flag"],
    )
    return fn, [on(p, case["dtype"]).requires_grad_(), on(t, case["dtype"]).requires_grad_()], {}


SPEC = declare(
    OpSpec(
        "gaussian_distance",
        ops=("gaussian_distance", "gaussian_distance_backward"),
        register=_register,
        reference=_reference,
        modules=(GaussianDistanceLoss, KFIoULoss),
        plan=Plan(
            factors=dict(
                dtype=[torch.float32, torch.float64],
                kind=["random", "degenerate"],
                loss=list(_KIND.values()),
                variant=[0, 1, 2],
                representation=[0, 1],
                flag=[True, False],
                tau=[0.0, 1.0, 2.0],
                n=[1, 7, 40, 300],
            ),
            call=_parity_call,
            elements=lambda case: case["n"],
            shrink=("n",),
            small=dict(n=40),
            mid=dict(n=3000),
            large=dict(n=(1 << 24) + 5),
            empty=(dict(n=0),),
            sweep=lambda small: [
                small(dtype=d, representation=r) for d in (torch.float32, torch.float64) for r in (0, 1)
            ],
            exact_outputs=lambda case: 1,
        ),
        bench="gaussian_distance",
    )
)
