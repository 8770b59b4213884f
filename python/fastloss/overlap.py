"""Dice, Jaccard, Tversky and focal Tversky losses with the activation fused in.

One op, fastloss::overlap_sums, computes the activation, the implicit one-hot and the
per-(sample, class) sums in one pass over the logits (csrc/math/overlap.h), and, when a gradient
will be needed, writes the activation p into a buffer of the input's size. That buffer becomes the
gradient: the backward (fastloss::overlap_sums_backward_) turns it into dL/dinput in place, in one
pass without an exp. A second op, fastloss::overlap_score, turns the (N, C, 3) sums into the loss
(MONAI's formulas, class weights, reduction; csrc/math/overlap_score.h) and its backward gives
dL/dsums; fastloss.reference.overlap.loss_from_sums is the same in torch ops.
"""

import math

import torch

from . import _autocast, _autograd, _backend, _vmap
from ._autograd import refuse_grad
from ._inputs import with_options
from ._spec import DTYPE_PAIRS, FLOATS, Case, OpSpec, Plan, declare, operand_dtypes
from ._module import OptionsLoss, keyword_arguments
from ._common import NONE, REDUCTIONS
from .reference import overlap as _reference

_OP = "fastloss::overlap_sums"
_SCORE = "fastloss::overlap_score"


def _sums(a):
    """The (N, C, 3) sums of checked arguments: the kernel's (keeping the activation for the backward
    only when a gradient will be needed), or the reference's."""
    if not _backend.use_kernels(a.input.device):
        return _reference.sums(a)
    keep_probs = a.input.requires_grad and torch.is_grad_enabled()
    return torch.ops.fastloss.overlap_sums(
        a.input, a.target, a.activation, a.squared, a.ignore_index, keep_probs, a.soft_label
    )[0]


def _fused(loss, input, target, **options):
    # (dice_loss and tversky_loss below pass every argument by name: **locals())
    a = _reference.check_args(loss, input, target, **options)
    sums = _reference.global_sums(_sums(a), a)
    if not _backend.use_kernels(a.input.device):
        return _reference.loss_from_sums(sums, a)
    return torch.ops.fastloss.overlap_score(
        sums,
        a.class_weight,
        _reference.LOSS_CODES[a.loss],
        a.jaccard,
        a.smooth_nr,
        a.smooth_dr,
        a.alpha,
        a.beta,
        a.gamma,
        a.include_background,
        a.batch,
        REDUCTIONS[a.reduction],
    )


def sums(input, target, **options):
    """The (N, C, 3) sums Σ p·t, Σ p (Σ p²), Σ t (Σ t²) per (sample, class) — the fused kernel's, with
    its gradient — and the checked arguments: for losses written on the sums (MONAI's
    GeneralizedDiceLoss in fastloss.monai)."""
    a = _reference.check_args("dice", input, target, **options)
    return _sums(a), a


def dice_loss(
    input,
    target,
    *,
    activation="softmax",
    include_background=True,
    squared_pred=False,
    jaccard=False,
    smooth_nr=1e-5,
    smooth_dr=1e-5,
    batch=False,
    class_weight=None,
    ignore_index=None,
    reduction="mean",
    soft_label=False,
    process_group=None,
):
    """Dice loss with the activation fused in (MONAI's DiceLoss formulas).

    Per (sample, class), with tp = Σ p·t over the spatial positions:
        1 − (2·tp + smooth_nr) / (Σp + Σt + smooth_dr)          (Σp², Σt² with squared_pred)
        1 − (2·tp + smooth_nr) / (2·(Σp + Σt − tp) + smooth_dr)  with jaccard=True
    """
    return _fused("dice", **locals())


def tversky_loss(
    input,
    target,
    *,
    alpha=0.5,
    beta=0.5,
    gamma=1.0,
    activation="softmax",
    include_background=True,
    smooth_nr=1e-5,
    smooth_dr=1e-5,
    batch=False,
    class_weight=None,
    ignore_index=None,
    reduction="mean",
    soft_label=False,
    process_group=None,
):
    """Tversky loss (Salehi et al., arXiv 1706.05721; MONAI's TverskyLoss) and focal Tversky.

    Per (sample, class), with tp = Σ p·t, fp = Σ p·(1 − t), fn = Σ (1 − p)·t:
        TI = (tp + smooth_nr) / (tp + α·fp + β·fn + smooth_dr),  loss = (1 − TI)^γ
    γ = 1 is Tversky; α = β = ½ equals Dice. γ is the exponent itself: Abraham & Khan's focal
    Tversky (arXiv 1810.07842) writes (1 − TI)^(1/γ'), so their γ' = 4/3 is gamma = 0.75 here.
    """
    return _fused("tversky", **locals())


COMMON_DOC = """
    input: (N, C, *spatial) logits (or probabilities with activation="none"), any number of
        spatial dimensions, including none; float16/bfloat16/float32/float64. Non-contiguous
        (e.g. channels-last) inputs are copied once.
    target: integer labels (N, *spatial) — or MONAI's (N, 1, *spatial) — made one-hot inside the
        kernel (no one-hot tensor), or a float target of the input's shape (one-hot, multi-label
        or soft). With C = 1 the labels are the binary target itself (1 = foreground), as MONAI.
        Labels outside [0, C) that are not ignore_index raise a ValueError on CPU and trigger a
        device-side assert on CUDA (as torch's losses). The target gets no gradient.
    activation: "softmax" over C, "sigmoid" (multi-label) or "none" (already probabilities).
    include_background: False leaves class 0 out of the loss (it still shapes the softmax).
    batch: sum over the batch too (one score per class).
    class_weight: a number or one weight per scored class (>= 0), multiplying the class scores.
    ignore_index: (labels only) positions with this label are left out of every sum.
    reduction: "mean" | "sum" over the (sample, class) scores, or "none": the (N, C) matrix, (C,)
        with batch=True (C − 1 columns without the background).
    process_group: with batch=True, a torch.distributed group (e.g. torch.distributed.group.WORLD)
        over which the batch's per-class sums are all-reduced before the score: every rank's loss
        is the loss of the global batch, and after DDP's gradient averaging the gradients are a
        single process's on the concatenated batch (fastloss.distributed). Default None: local.
    soft_label: MONAI's option for soft targets: tp = Σ min(p, t) = (Σp + Σt − Σ|p − t|)/2 instead
        of Σ p·t (equal for 0/1 targets); no effect with squared_pred (tp is Σ p·t there, as MONAI).
    The sums accumulate in float32 (float64 for float64) and are bitwise reproducible; the loss
    is float32 for half inputs. Beyond its inputs and an (N, C, 3) matrix, the forward keeps one
    buffer of the input's size holding the activation (only when a gradient is needed), which the
    backward turns into the gradient in place.
"""
for _function in (dice_loss, tversky_loss):
    _function.__doc__ += COMMON_DOC

__all__ = [
    "dice_loss",
    "tversky_loss",
]


def _setup_sums(ctx, args, outputs):
    # The activation buffer is not a saved tensor: the first backward takes it over and turns it into
    # the gradient, so nothing of the input's size is kept twice. (It has no grad_fn: no cycle.)
    keep_probs = args[5]
    ctx.probs = [outputs[1]] if keep_probs else []


def _sums_backward(ctx, args, saved, grads, needs):
    input, target, activation, squared, ignore_index, _, soft_label = args
    refuse_grad(needs, [("target", 1)], "dice_loss/tversky_loss")
    if ctx.probs:
        probs = ctx.probs.pop()
    else:  # a second backward through the same graph (retain_graph=True): compute p again
        _, probs = torch.ops.fastloss.overlap_sums(input, target, activation, squared, ignore_index, True, soft_label)
    torch.ops.fastloss.overlap_sums_backward_(grads[0], probs, target, activation, squared, ignore_index, soft_label)
    return probs, None, None, None, None, None, None


def _score_backward(ctx, args, saved, grads, needs):
    refuse_grad(needs, [("class_weight", 1)], "dice_loss/tversky_loss")
    grad_sums = torch.ops.fastloss.overlap_score_backward(grads[0], *args)
    return (grad_sums,) + (None,) * 11


def _sums_vmap_rule(info, in_dims, input, target, activation, squared, ignore_index, keep_probs, soft_label=False):
    batch = info.batch_size
    x, t = _vmap.front(input, in_dims[0], batch), _vmap.front(target, in_dims[1], batch)
    sums, probs = torch.ops.fastloss.overlap_sums(
        x.flatten(0, 1), t.flatten(0, 1), activation, squared, ignore_index, keep_probs, soft_label
    )
    sums = sums.reshape(batch, -1, *sums.shape[1:])
    if not keep_probs:
        return (sums, probs), (0, None)
    return (sums, probs.reshape(x.shape)), (0, 0)


def _score_vmap_rule(
    info,
    in_dims,
    sums,
    class_weight,
    loss,
    jaccard,
    smooth_nr,
    smooth_dr,
    alpha,
    beta,
    gamma,
    include_background,
    batch,
    reduction,
):
    size = info.batch_size
    if in_dims[1] is not None:  # class weights that differ per sample
        return _vmap.per_sample(
            torch.ops.fastloss.overlap_score,
            size,
            in_dims,
            (
                sums,
                class_weight,
                loss,
                jaccard,
                smooth_nr,
                smooth_dr,
                alpha,
                beta,
                gamma,
                include_background,
                batch,
                reduction,
            ),
        )
    s = _vmap.front(sums, in_dims[0], size)
    # batch=True sums each sample's rows first: the samples then are the rows of one matrix
    s = s.sum(1) if batch else s.flatten(0, 1)
    f = torch.ops.fastloss.overlap_score(
        s, class_weight, loss, jaccard, smooth_nr, smooth_dr, alpha, beta, gamma, include_background, False, NONE
    )
    f = f.reshape(size, *(() if batch else (-1,)), f.shape[-1])
    return (f if reduction == NONE else _vmap.reduce_per_sample(f, reduction)), 0


def _register():
    @torch.library.register_fake(_OP)
    def _(input, target, activation, squared, ignore_index, keep_probs, soft_label=False):
        probs = input.new_empty(input.shape if keep_probs else (0,))
        return input.new_empty((input.shape[0], input.shape[1], 3), dtype=_reference.math_dtype(input, target)), probs

    @torch.library.register_fake(_OP + "_backward_")
    def _(grad, probs, target, activation, squared, ignore_index, soft_label=False):
        return None

    _autograd.register(
        _autograd.Spec("overlap_sums", _sums_backward, _reference.sums_op, non_differentiable=(1,), setup=_setup_sums)
    )
    _vmap.register("overlap_sums", _sums_vmap_rule)

    def score_shape(sums, include_background, batch, reduction):
        if reduction != 0:
            return ()
        scored = sums.shape[1] - (0 if include_background else 1)
        return (scored,) if batch else (sums.shape[0], scored)

    @torch.library.register_fake(_SCORE)
    def _(
        sums,
        class_weight,
        loss,
        jaccard,
        smooth_nr,
        smooth_dr,
        alpha,
        beta,
        gamma,
        include_background,
        batch,
        reduction,
    ):
        return sums.new_empty(score_shape(sums, include_background, batch, reduction))

    @torch.library.register_fake(_SCORE + "_backward")
    def _(grad, sums, *params):
        return sums.new_empty(sums.shape)

    _autograd.register(_autograd.Spec("overlap_score", _score_backward, _reference.score_op))
    _vmap.register("overlap_score", _score_vmap_rule)
    _autocast.register("overlap_sums")
    _autocast.register("overlap_score")


# -------------------------------------------------------------------------------- the nn module


class DiceLoss(OptionsLoss):
    """fastloss.dice_loss as a module: forward(input, target). The options as MONAI's DiceLoss names
    them (softmax=True with to_onehot_y=True is activation="softmax" with label targets)."""

    function = dice_loss
    tensor_options = ("class_weight",)

    def __init__(
        self,
        *,
        activation="softmax",
        include_background=True,
        squared_pred=False,
        jaccard=False,
        smooth_nr=1e-5,
        smooth_dr=1e-5,
        batch=False,
        class_weight=None,
        ignore_index=None,
        reduction="mean",
        soft_label=False,
        process_group=None,
    ):
        super().__init__(**keyword_arguments(locals()))


class TverskyLoss(OptionsLoss):
    """fastloss.tversky_loss as a module (gamma != 1: focal Tversky): forward(input, target)."""

    function = tversky_loss
    tensor_options = ("class_weight",)

    def __init__(
        self,
        *,
        alpha=0.5,
        beta=0.5,
        gamma=1.0,
        activation="softmax",
        include_background=True,
        smooth_nr=1e-5,
        smooth_dr=1e-5,
        batch=False,
        class_weight=None,
        ignore_index=None,
        reduction="mean",
        soft_label=False,
        process_group=None,
    ):
        super().__init__(**keyword_arguments(locals()))


# ------------------------------------------------------------------------------------ the record


def labels_case(n, dtype, device, g):
    """(2, 3, n) logits and their labels, softmax."""
    x = (torch.randn(2, 3, n, generator=g, dtype=torch.float64) * 2).to(device=device, dtype=dtype)
    return (x, torch.randint(0, 3, (2, n), generator=g).to(device)), dict(activation="softmax")


def soft_case(n, dtype, device, g):
    """(2, 3, n) logits and soft targets, sigmoid, "sum"."""
    x = (torch.randn(2, 3, n, generator=g, dtype=torch.float64) * 2).to(device=device, dtype=dtype)
    t = torch.rand(2, 3, n, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)
    return (x, t), dict(activation="sigmoid", reduction="sum")


def _parity_call(case, g, on, seed):
    dtype, dtype2 = operand_dtypes(case)
    shape = (case["n"], case["classes"]) + tuple(case["spatial"])
    x = on(torch.randn(shape, generator=g, dtype=torch.float64) * 2, dtype)
    if case["target"] == "labels":
        t = torch.randint(0, case["classes"], (shape[0],) + shape[2:], generator=g)
        if case["ignore"]:
            t.view(-1)[::6] = 255
        t = on(t)
    else:
        t = on((torch.rand(shape, generator=g) < 0.3).double(), dtype2)
    activation = case["activation"]
    if activation == "none":
        x = on(torch.rand(shape, generator=g, dtype=torch.float64), dtype)
    loss = case["loss"]
    kwargs = dict(
        activation=activation,
        include_background=case["include_background"],
        batch=case["batch"],
        reduction=case["reduction"],
    )
    if case["target"] == "labels" and case["ignore"]:
        kwargs["ignore_index"] = 255
    if loss in ("dice", "jaccard"):
        fn = dice_loss
        kwargs.update(squared_pred=case["squared"], jaccard=loss == "jaccard")
    else:
        fn = tversky_loss
        kwargs.update(alpha=0.3, beta=0.7, gamma=0.75 if loss == "focal_tversky" else 1.0)
    return fn, [x, t], kwargs


def spatial_elements(case):
    return case["n"] * case["classes"] * math.prod(case["spatial"])


def _dtype_sweep(small):
    # n · chunks ≥ 2 SMs' worth of blocks picks 4 positions per thread
    return [small(dtype=a, dtype2=b, target="float", n=n) for a, b in DTYPE_PAIRS for n in (2, 4)] + [
        small(dtype=a, target="labels", n=n) for a in FLOATS for n in (2, 4)
    ]


SPEC = declare(
    OpSpec(
        "overlap",
        ops=("overlap_sums", "overlap_sums_backward_", "overlap_score", "overlap_score_backward"),
        register=_register,
        reference=_reference,
        modules=(DiceLoss, TverskyLoss),
        cases=(
            Case("dice labels", dice_loss, _reference.dice_loss, with_options(labels_case, squared_pred=True)),
            Case("dice soft", dice_loss, _reference.dice_loss, with_options(soft_case, batch=True)),
            Case(
                "tversky soft_label",
                tversky_loss,
                _reference.tversky_loss,
                with_options(soft_case, soft_label=True, alpha=0.3, beta=0.7),
            ),
            Case(
                "tversky labels",
                tversky_loss,
                _reference.tversky_loss,
                with_options(labels_case, alpha=0.3, beta=0.7, gamma=1.5, class_weight=[1.0, 2.0, 0.5]),
            ),
        ),
        plan=Plan(
            factors=dict(
                dtype=FLOATS,
                activation=["softmax", "sigmoid", "none"],
                target=["labels", "float"],
                n=[1, 2, 5],
                classes=[2, 4, 21],
                spatial=[(1,), (31,), (33, 33), (128, 128), (16, 16, 16)],
                squared=[False, True],
                loss=["dice", "jaccard", "tversky", "focal_tversky"],
                batch=[False, True],
                include_background=[True, False],
                reduction=["none", "mean", "sum"],
                ignore=[False, True],
            ),
            call=_parity_call,
            elements=spatial_elements,
            shrink=("spatial",),
            small=dict(n=2, classes=4, spatial=(33,)),
            mid=dict(spatial=(64, 64), n=2),
            large=dict(n=2, classes=4, spatial=(160, 160, 160)),
            empty=(dict(spatial=(0,)), dict(n=0)),
            sweep=_dtype_sweep,
        ),
        bench="overlap",
    )
)
