"""fastloss.dice_ce_loss / dice_focal_loss: Dice (or Generalized Dice, Tversky) + cross entropy (or
softmax or sigmoid focal) from one pass over the logits.

One op, fastloss::overlap_ce_sums, computes the softmax of the logits once and yields the overlap
sums (N, C, 3) of fastloss.overlap and the cross-entropy sums (N, 2) (csrc/math/overlap_ce.h);
when a gradient will be needed it writes p into a buffer of the input's size, which its backward
(fastloss::overlap_ce_sums_backward_) turns in place into dL/dinput: the Dice part's gradient plus
the cross entropy's, one pass. The scores on the sums are fastloss.overlap's (or Generalized Dice's).
"""

import torch

from . import _autocast, _autograd, _backend, _vmap
from ._autograd import refuse_grad
from ._inputs import with_options
from ._spec import FLOATS, Case, OpSpec, Plan, declare
from .overlap import labels_case, soft_case, spatial_elements
from ._module import OptionsLoss, keyword_arguments
from ._common import REDUCTIONS
from .reference import compound as _reference
from .reference import overlap as _overlap_reference

_OP = "fastloss::overlap_ce_sums"


def parts(input, target, global_ce=True, **options):
    """The checked arguments, the (N, C, 3) overlap sums and the (N, 2) cross-entropy sums, from the
    fused kernel with its gradient (or the reference off the kernels' devices): for losses written on
    them (the nnU-Net face). With process_group both are the global batch's, (1, C, 3) and (1, 2) —
    the cross entropy's only with global_ce (nnU-Net gathers its Dice sums only)."""
    c = _reference.check_args(input, target, **options)
    a = c.dice
    if not _backend.use_kernels(a.input.device):
        sums, ce = _overlap_reference.sums(a), _reference.ce_sums(c)
    else:
        keep_probs = a.input.requires_grad and torch.is_grad_enabled()
        sums, _, ce = torch.ops.fastloss.overlap_ce_sums(
            a.input,
            a.target,
            c.ce_weight,
            c.gamma,
            c.label_smoothing,
            a.squared,
            a.ignore_index,
            keep_probs,
            a.soft_label,
            a.activation,
            c.term,
            c.alpha,
            c.first_class,
        )
    return c, _overlap_reference.global_sums(sums, a), _overlap_reference.global_sums(ce, a) if global_ce else ce


def _score(sums, a):
    return torch.ops.fastloss.overlap_score(
        sums,
        a.class_weight,
        _overlap_reference.LOSS_CODES[a.loss],
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


def dice_value(c, sums):
    """The Dice part (Dice, Generalized Dice or Tversky, reduced) from the sums parts() returns."""
    score = _score if _backend.use_kernels(c.dice.input.device) else _overlap_reference.loss_from_sums
    return _reference.dice_part(sums, c, score)


def _fused(input, target, **options):
    # (dice_ce_loss and dice_focal_loss below pass every argument by name: **locals())
    c, sums, ce = parts(input, target, **options)
    return _reference.combine(c, dice_value(c, sums), _reference.ce_part(ce, c))


def dice_ce_loss(
    input,
    target,
    *,
    lambda_dice=1.0,
    lambda_ce=1.0,
    dice="dice",
    ce_weight=None,
    label_smoothing=0.0,
    include_background=True,
    squared_pred=False,
    jaccard=False,
    smooth_nr=1e-5,
    smooth_dr=1e-5,
    batch=False,
    class_weight=None,
    ignore_index=None,
    reduction="mean",
    tversky_alpha=0.5,
    tversky_beta=0.5,
    tversky_gamma=1.0,
    w_type="square",
    soft_label=False,
    process_group=None,
):
    """λ_dice · Dice + λ_ce · cross entropy, from one softmax pass over the logits.

    The Dice part is fastloss.dice_loss (dice="dice"), fastloss.generalized_dice_loss
    ("generalized_dice", w_type) or fastloss.tversky_loss ("tversky", tversky_alpha/beta/gamma)
    with activation="softmax" and the Dice options below. The cross-entropy part is
    F.cross_entropy(input, target, weight=ce_weight, ignore_index=ignore_index,
    label_smoothing=label_smoothing, reduction=reduction): labels (hard) or a float target of the
    input's shape (class probabilities; "mean" divides by N·positions, as torch).
    """
    return _fused(**locals(), gamma=0.0)


def dice_focal_loss(
    input,
    target,
    *,
    lambda_dice=1.0,
    lambda_focal=1.0,
    gamma=2.0,
    dice="dice",
    ce_weight=None,
    label_smoothing=0.0,
    include_background=True,
    squared_pred=False,
    jaccard=False,
    smooth_nr=1e-5,
    smooth_dr=1e-5,
    batch=False,
    class_weight=None,
    ignore_index=None,
    reduction="mean",
    tversky_alpha=0.5,
    tversky_beta=0.5,
    tversky_gamma=1.0,
    w_type="square",
    soft_label=False,
    process_group=None,
    focal="softmax",
    alpha=None,
    activation="softmax",
):
    """λ_dice · Dice + λ_focal · focal loss, from one pass over the logits.

    focal="softmax" (default): fastloss.softmax_focal_loss(input, target, alpha=ce_weight,
    gamma=gamma, ignore_index=ignore_index, label_smoothing=label_smoothing, reduction=reduction):
    (1 − p_y)^γ times the (weighted, smoothed) cross entropy of each position, from the Dice
    part's softmax; "mean" divides by Σ w_y. Integer label targets (gamma=0 also takes float
    targets: it is dice_ce_loss).
    focal="sigmoid": MONAI's FocalLoss term, per element of the classes scored
    (include_background=False leaves class 0 out), α_t·(1 − p_t)^γ·BCEWithLogits(x, t) with
    p = σ(x), alpha α (None: no α_t), ce_weight a weight per class; "mean" over those elements,
    "sum" their sum. The Dice part then takes any `activation` ("softmax", "sigmoid", "none").
    The Dice part and its options: as dice_ce_loss.
    """
    return _fused(**locals())


COMMON_DOC = """
    input: (N, C, *spatial) logits, C >= 2, float16/bfloat16/float32/float64.
    target: integer labels (N, *spatial) or (N, 1, *spatial), or a float target of the input's
        shape (one-hot or soft; no ignore_index).
    lambda_dice, lambda_ce / lambda_focal: the parts' weights (>= 0).
    ce_weight: None, a number or one weight per class (all C): the cross entropy's class weights.
    label_smoothing: ε in [0, 1], F.cross_entropy's.
    ignore_index: (labels) positions with this label are left out of both parts.
    include_background, squared_pred, jaccard, smooth_nr, smooth_dr, batch, class_weight,
        soft_label: the Dice part's, as fastloss.dice_loss (class_weight: one per scored class).
    process_group: with batch=True, the Dice sums and the cross-entropy sums are all-reduced over
        this torch.distributed group: every rank's loss is the global batch's, and after DDP's
        gradient averaging the gradients are a single process's on the concatenated batch.
    reduction: "mean" | "sum" for both parts (the Dice scores' mean over (sample, class), the
        cross entropy's weighted mean over positions).
    One kernel pass computes the softmax once and yields the Dice sums and the cross-entropy
    sums; the backward is one in-place pass over the softmax buffer (memory: the gradient).
"""

for _function in (dice_ce_loss, dice_focal_loss):
    _function.__doc__ += COMMON_DOC

__all__ = [
    "dice_ce_loss",
    "dice_focal_loss",
]


def sums_op(
    input,
    target,
    ce_weight,
    gamma,
    label_smoothing,
    squared,
    ignore_index,
    keep_probs,
    soft_label=False,
    activation=0,
    term=0,
    alpha=-1.0,
    first_class=0,
):
    """fastloss::overlap_ce_sums in torch ops: (sums, probs, ce)."""
    sums, probs = _overlap_reference.sums_op(input, target, activation, squared, ignore_index, keep_probs, soft_label)
    a = _overlap_reference.OverlapArgs(
        input,
        target,
        not target.dtype.is_floating_point,
        activation,
        squared,
        ignore_index,
        "dice",
        True,
        False,
        0.0,
        0.0,
        False,
        None,
        "none",
        0.5,
        0.5,
        1.0,
        soft_label,
    )
    c = _reference.CompoundArgs(
        a, "dice", "square", ce_weight, gamma, label_smoothing, 1.0, 1.0, term, alpha, first_class
    )
    return sums, probs, _reference.ce_sums(c)


def _setup(ctx, args, outputs):
    # As overlap_sums: the softmax buffer is taken over by the first backward (not a saved tensor).
    keep_probs = args[7]
    ctx.probs = [outputs[1]] if keep_probs else []


def _backward(ctx, args, saved, grads, needs):
    input, target, ce_weight, gamma, label_smoothing, squared, ignore_index, _, soft_label, *term = args
    refuse_grad(needs, [("target", 1), ("ce_weight", 2)], "dice_ce_loss/dice_focal_loss")
    grad_sums, _, grad_ce = grads
    if grad_sums is None and grad_ce is None:
        return (None,) * len(args)
    n, classes = input.shape[:2]
    math = _overlap_reference.math_dtype(input, target)
    if grad_sums is None:
        grad_sums = input.new_zeros((n, classes, 3), dtype=math)
    if grad_ce is None:
        grad_ce = input.new_zeros((n, 2), dtype=math)
    if ctx.probs:
        probs = ctx.probs.pop()
    else:  # a second backward through the same graph (retain_graph=True): compute p again
        _, probs, _ = torch.ops.fastloss.overlap_ce_sums(
            input, target, ce_weight, gamma, label_smoothing, squared, ignore_index, True, soft_label, *term
        )
    torch.ops.fastloss.overlap_ce_sums_backward_(
        grad_sums,
        grad_ce,
        probs,
        input,
        target,
        ce_weight,
        gamma,
        label_smoothing,
        squared,
        ignore_index,
        soft_label,
        *term,
    )
    return (probs,) + (None,) * (len(args) - 1)


def _vmap_rule(
    info,
    in_dims,
    input,
    target,
    ce_weight,
    gamma,
    label_smoothing,
    squared,
    ignore_index,
    keep_probs,
    soft_label=False,
    activation=0,
    term=0,
    alpha=-1.0,
    first_class=0,
):
    batch = info.batch_size
    args = (
        input,
        target,
        ce_weight,
        gamma,
        label_smoothing,
        squared,
        ignore_index,
        keep_probs,
        soft_label,
        activation,
        term,
        alpha,
        first_class,
    )
    if in_dims[2] is not None:  # class weights that differ per sample
        dims = tuple(in_dims) + (None,) * (len(args) - len(in_dims))
        return _vmap.per_sample(torch.ops.fastloss.overlap_ce_sums, batch, dims, args)
    x, t = _vmap.front(input, in_dims[0], batch), _vmap.front(target, in_dims[1], batch)
    sums, probs, ce = torch.ops.fastloss.overlap_ce_sums(x.flatten(0, 1), t.flatten(0, 1), *args[2:])
    sums, ce = sums.reshape(batch, -1, *sums.shape[1:]), ce.reshape(batch, -1, 2)
    if not keep_probs:
        return (sums, probs, ce), (0, None, 0)
    return (sums, probs.reshape(x.shape), ce), (0, 0, 0)


def _register():
    @torch.library.register_fake(_OP)
    def _(
        input,
        target,
        ce_weight,
        gamma,
        label_smoothing,
        squared,
        ignore_index,
        keep_probs,
        soft_label=False,
        activation=0,
        term=0,
        alpha=-1.0,
        first_class=0,
    ):
        math = _overlap_reference.math_dtype(input, target)
        probs = input.new_empty(input.shape if keep_probs else (0,))
        return (
            input.new_empty((input.shape[0], input.shape[1], 3), dtype=math),
            probs,
            input.new_empty((input.shape[0], 2), dtype=math),
        )

    @torch.library.register_fake(_OP + "_backward_")
    def _(
        grad_sums,
        grad_ce,
        probs,
        input,
        target,
        ce_weight,
        gamma,
        label_smoothing,
        squared,
        ignore_index,
        soft_label=False,
        activation=0,
        term=0,
        alpha=-1.0,
        first_class=0,
    ):
        return None

    _autograd.register(_autograd.Spec("overlap_ce_sums", _backward, sums_op, non_differentiable=(1,), setup=_setup))
    _vmap.register("overlap_ce_sums", _vmap_rule)
    _autocast.register("overlap_ce_sums")


# -------------------------------------------------------------------------------- the nn module


class DiceCELoss(OptionsLoss):
    """fastloss.dice_ce_loss as a module, forward(input, target): λ_dice·Dice + λ_ce·cross entropy
    from one softmax pass."""

    function = dice_ce_loss
    tensor_options = ("class_weight", "ce_weight")

    def __init__(
        self,
        *,
        lambda_dice=1.0,
        lambda_ce=1.0,
        dice="dice",
        ce_weight=None,
        label_smoothing=0.0,
        include_background=True,
        squared_pred=False,
        jaccard=False,
        smooth_nr=1e-5,
        smooth_dr=1e-5,
        batch=False,
        class_weight=None,
        ignore_index=None,
        reduction="mean",
        tversky_alpha=0.5,
        tversky_beta=0.5,
        tversky_gamma=1.0,
        w_type="square",
        soft_label=False,
        process_group=None,
    ):
        super().__init__(**keyword_arguments(locals()))


class DiceFocalLoss(OptionsLoss):
    """fastloss.dice_focal_loss as a module, forward(input, target): λ_dice·Dice + λ_focal·focal
    (softmax, or MONAI's sigmoid term with focal="sigmoid") from one pass."""

    function = dice_focal_loss
    tensor_options = ("class_weight", "ce_weight")

    def __init__(
        self,
        *,
        lambda_dice=1.0,
        lambda_focal=1.0,
        gamma=2.0,
        dice="dice",
        ce_weight=None,
        label_smoothing=0.0,
        include_background=True,
        squared_pred=False,
        jaccard=False,
        smooth_nr=1e-5,
        smooth_dr=1e-5,
        batch=False,
        class_weight=None,
        ignore_index=None,
        reduction="mean",
        tversky_alpha=0.5,
        tversky_beta=0.5,
        tversky_gamma=1.0,
        w_type="square",
        soft_label=False,
        process_group=None,
        focal="softmax",
        alpha=None,
        activation="softmax",
    ):
        super().__init__(**keyword_arguments(locals()))


# ------------------------------------------------------------------------------------ the record


def _labels_case(n, dtype, device, g):
    """The overlap family's labels case (always softmax: no activation argument)."""
    (x, y), _ = labels_case(n, dtype, device, g)
    return (x, y), {}


def _soft_case(n, dtype, device, g):
    (x, t), _ = soft_case(n, dtype, device, g)
    return (x, t / t.sum(1, keepdim=True)), {}  # class probabilities


def _parity_call(case, g, on, seed):
    """dice_ce_loss / dice_focal_loss (softmax or sigmoid focal) under the family's options."""
    dtype, loss = case["dtype"], case["loss"]
    shape = (case["n"], case["classes"]) + tuple(case["spatial"])
    x = on(torch.randn(shape, generator=g, dtype=torch.float64) * 2, dtype)
    soft = case["target"] == "soft" and loss == "dice_ce"
    kwargs = dict(
        dice=case["dice"],
        batch=case["batch"],
        include_background=case["include_background"],
        reduction=case["reduction"],
    )
    if soft:
        t = on(torch.softmax(torch.randn(shape, generator=g, dtype=torch.float64), 1), dtype)
    else:
        y = torch.randint(0, case["classes"], (shape[0],) + shape[2:], generator=g)
        if case["ignore"]:
            y.view(-1)[::5] = -1
            kwargs["ignore_index"] = -1
        t = on(y)
    if case["dice"] == "tversky":
        kwargs.update(tversky_alpha=0.3, tversky_beta=0.7)
    if loss == "dice_ce":
        kwargs["label_smoothing"] = case["smoothing"]
        return dice_ce_loss, [x, t], kwargs
    kwargs["gamma"] = case["gamma"]
    if loss == "dice_focal":
        kwargs["label_smoothing"] = case["smoothing"]
        return dice_focal_loss, [x, t], kwargs
    kwargs.update(focal="sigmoid", activation=case["activation"], alpha=0.25)
    return dice_focal_loss, [x, t], kwargs


_LOSSES = ["dice_ce", "dice_focal", "dice_focal_sigmoid"]

SPEC = declare(
    OpSpec(
        "compound",
        ops=("overlap_ce_sums", "overlap_ce_sums_backward_"),
        register=_register,
        reference=_reference,
        modules=(DiceCELoss, DiceFocalLoss),
        cases=(
            Case(
                "dice_ce labels",
                dice_ce_loss,
                _reference.dice_ce_loss,
                with_options(_labels_case, ce_weight=[1.0, 2.0, 0.5], label_smoothing=0.1, batch=True),
                unreduced=False,
            ),
            Case(
                "dice_ce soft",
                dice_ce_loss,
                _reference.dice_ce_loss,
                with_options(_soft_case, dice="generalized_dice", reduction="sum"),
                unreduced=False,
            ),
            Case(
                "dice_focal labels",
                dice_focal_loss,
                _reference.dice_focal_loss,
                with_options(_labels_case, gamma=1.5, dice="tversky", tversky_alpha=0.3, include_background=False),
                unreduced=False,
            ),
            Case(
                "dice_focal sigmoid",
                dice_focal_loss,
                _reference.dice_focal_loss,
                with_options(_labels_case, focal="sigmoid", activation="sigmoid", alpha=0.25, include_background=False),
                unreduced=False,
            ),
        ),
        plan=Plan(
            factors=dict(
                dtype=FLOATS,
                loss=_LOSSES,
                dice=["dice", "generalized_dice", "tversky"],
                n=[1, 2],
                classes=[2, 4, 21],
                spatial=[(1,), (33,), (16, 16), (8, 8, 8), (128, 128)],
                target=["labels", "soft"],
                gamma=[0.0, 2.0, 0.5],
                smoothing=[0.0, 0.1],
                ignore=[False, True],
                batch=[False, True],
                include_background=[True, False],
                activation=["softmax", "sigmoid", "none"],
                reduction=["mean", "sum"],
            ),
            call=_parity_call,
            elements=spatial_elements,
            shrink=("spatial",),
            small=dict(classes=4, spatial=(33,)),
            mid=dict(spatial=(64, 64), n=2),
            large=dict(n=2, classes=4, spatial=(160, 160, 160)),
            empty=(dict(spatial=(0,)),),
            sweep=lambda small: [small(dtype=a, loss=loss, n=n) for a in FLOATS for loss in _LOSSES for n in (2, 4)],
        ),
        bench="compound",
    )
)
