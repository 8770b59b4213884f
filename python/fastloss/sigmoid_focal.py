"""fastloss.sigmoid_focal_loss: the fused sigmoid focal loss (Lin et al. 2017, arXiv 1708.02002).

Kernels: csrc/math/sigmoid_focal.h (the formula), csrc/cpu/ and csrc/cuda/sigmoid_focal.*. This file
registers the op's fake kernel and autograd formula with torch.library and exposes the function.
"""

import torch

from . import _autocast, _autograd, _backend, _vmap
from ._autograd import refuse_grad
from ._inputs import logits, sparse_targets, strided
from ._spec import DTYPE_PAIRS, FLOATS, Case, OpSpec, Plan, declare, operand_dtypes
from ._module import Loss
from ._common import NONE, apply_avg_factor, opmath_dtype
from .reference import sigmoid_focal as _reference

_OP = "fastloss::sigmoid_focal_loss"


def sigmoid_focal_loss(
    inputs,
    targets,
    alpha=0.25,
    gamma=2.0,
    reduction="none",
    *,
    weight=None,
    avg_factor=None,
    ignore_index=-100,
    per_layer=False,
):
    """Sigmoid focal loss, a drop-in for torchvision.ops.sigmoid_focal_loss.

    loss = α_t · (1 − p_t)^γ · BCEWithLogits(x, t), p = σ(x), p_t = p·t + (1 − p)(1 − t),
    α_t = α·t + (1 − α)(1 − t).

    Args:
        inputs: logits of shape (..., C), float16/bfloat16/float32/float64. Math runs in float32
            (float64 for float64 inputs); the loss has the inputs' dtype, as in torchvision.
        targets: either a float tensor of the inputs' shape (one-hot or soft targets in [0, 1]; it
            gets a gradient when it requires grad, e.g. a teacher's soft targets), or integer class
            labels of shape inputs.shape[:-1]: label c in [0, C) makes class c positive, label ==
            ignore_index contributes no loss and no gradient and is left out of the "mean" count,
            any other value (C, mmdet's background, or -1) makes every class negative. Labels are
            never used as memory addresses, whatever their values. Or a tuple (labels, scores):
            sparse soft targets, class `label` has target `score` (a float in [0, 1] per label, of
            the labels' shape; no gradient), every other class 0 — the dense one_hot(label) · score
            target (ultralytics' classification target) is never built. γ = 0, alpha = -1 give
            F.binary_cross_entropy_with_logits(inputs, one_hot(labels) · scores).
        alpha: weight of positives in [0, 1]; -1 turns α weighting off.
        gamma: focusing exponent >= 0 (0 gives plain BCE); need not be an integer.
        reduction: "none" | "mean" | "sum". "mean" divides by the number of elements that were not
            ignored; empty inputs give 0 with a working backward.
        weight: optional weight multiplying the per-element loss, broadcastable to the inputs' shape
            (per element, per class as (C,)). A weight of shape inputs.shape[:-1] is taken per
            anchor (row), as in mmdet; for a per-class weight when the number of rows equals C,
            pass shape (1, C). Gradients do not flow to the weight.
        avg_factor: with reduction="mean", the loss is sum / avg_factor (mmdet's convention, e.g.
            the number of positive anchors); a ValueError with any other reduction.
        ignore_index: the label to ignore (label targets only); None ignores nothing.
        per_layer: inputs of shape (L, ..., C) (e.g. the L decoder layers of a DETR-family model,
            with per-layer labels/scores (L, ...)): a reduced loss is one value per layer, shape (L,),
            each reduced over its own layer ("mean": its own count; avg_factor: a number or one per
            layer). All layers run in one kernel launch; .sum() gives the summed loss.

    Memory: the forward keeps nothing beyond its inputs; the backward recomputes from the logits in
    one pass, so the only tensor of the inputs' size it allocates is the gradient itself.
    Non-contiguous inputs are copied once to contiguous memory.
    """
    a = _reference.check_args(inputs, targets, alpha, gamma, reduction, weight, avg_factor, ignore_index, per_layer)
    return run(a)


def run(a):
    """The loss of checked arguments (reference.sigmoid_focal.FocalArgs): the kernels, or the
    reference where they do not run."""
    if not _backend.use_kernels(a.inputs.device):
        return _reference.compute(a)
    dtype = _reference.loss_dtype(a)
    loss, _ = torch.ops.fastloss.sigmoid_focal_loss(
        a.inputs,
        a.targets,
        a.weight,
        a.alpha,
        a.gamma,
        a.reduction,
        a.ignore_index,
        dtype != _unreduced_dtype(a),
        a.scores,
        a.variant,
        a.positive,
        a.layers,
    )
    return apply_avg_factor(loss, a.avg_factor).to(dtype)


def _unreduced_dtype(a):
    """The kernel's "none" dtype without math_type_loss: the promoted dtype of inputs and targets."""
    return a.inputs.dtype if a.labels else torch.promote_types(a.inputs.dtype, a.targets.dtype)


def _backward(ctx, args, saved, grads, needs):
    x, targets, weight, alpha, gamma, reduction, ignore_index, _, scores, variant, positive, layers = args
    refuse_grad(needs, [("weight", 2), ("scores", 8), ("positive", 10)], "sigmoid_focal_loss")
    if needs[1] and variant & _reference.VARIANT_MASK != _reference.FOCAL:
        raise RuntimeError(
            "fastloss: gradients with respect to the varifocal / quality focal targets are not "
            "supported (they are quality scores: pass target.detach())"
        )
    grad_loss = grads[0]
    grad_x, grad_t = torch.ops.fastloss.sigmoid_focal_loss_backward(
        grad_loss,
        x,
        targets,
        weight,
        saved[0],
        alpha,
        gamma,
        reduction,
        ignore_index,
        needs[1],
        scores,
        variant,
        positive,
        layers,
    )
    return (grad_x if needs[0] else None, grad_t if needs[1] else None) + (None,) * 10


def _vmap_rule(
    info,
    in_dims,
    inputs,
    targets,
    weight,
    alpha,
    gamma,
    reduction,
    ignore_index,
    math_type_loss=False,
    scores=None,
    variant=0,
    positive=None,
    layers=0,
):
    if layers > 0 and reduction != NONE:
        raise NotImplementedError(
            "fastloss: per_layer losses under torch.vmap are not supported; vmap over the layers instead"
        )
    batch = info.batch_size
    x, t = _vmap.front(inputs, in_dims[0], batch), _vmap.front(targets, in_dims[1], batch)
    w = _vmap.aligned(weight, in_dims[2], batch, x.dim() - 1)
    s = _vmap.front(scores, in_dims[8] if len(in_dims) > 8 else None, batch)
    m = _vmap.front(positive, in_dims[10] if len(in_dims) > 10 else None, batch)
    loss, count = torch.ops.fastloss.sigmoid_focal_loss(
        x, t, w, alpha, gamma, NONE, ignore_index, math_type_loss, s, variant, m
    )
    if reduction == NONE:
        return (loss, count), (0, None)
    if t.dtype.is_floating_point or variant & _reference.NO_IGNORE_INDEX:
        count = torch.full((batch,), x[0].numel(), dtype=torch.int64, device=x.device)
    else:
        count = (t != ignore_index).reshape(batch, -1).sum(1) * x.shape[-1]
    return (_vmap.reduce_per_sample(loss, reduction, count), count), (0, 0)


def _register():
    @torch.library.register_fake(_OP)
    def _(
        inputs,
        targets,
        weight,
        alpha,
        gamma,
        reduction,
        ignore_index,
        math_type_loss=False,
        scores=None,
        variant=0,
        positive=None,
        layers=0,
    ):
        labels = not targets.dtype.is_floating_point
        math = opmath_dtype(inputs.dtype if labels else torch.promote_types(inputs.dtype, targets.dtype))
        unreduced = (
            math if math_type_loss else (inputs.dtype if labels else torch.promote_types(inputs.dtype, targets.dtype))
        )
        if reduction == 0:
            return inputs.new_empty(inputs.shape, dtype=unreduced), inputs.new_empty((), dtype=torch.int64)
        shape = (layers,) if layers > 0 else ()
        return inputs.new_empty(shape, dtype=math), inputs.new_empty(shape, dtype=torch.int64)

    @torch.library.register_fake(_OP + "_backward")
    def _(
        grad,
        inputs,
        targets,
        weight,
        count,
        alpha,
        gamma,
        reduction,
        ignore_index,
        targets_grad,
        scores=None,
        variant=0,
        positive=None,
        layers=0,
    ):
        return inputs.new_empty(inputs.shape), (
            targets.new_empty(targets.shape) if targets_grad else inputs.new_empty((0,))
        )

    _autograd.register(
        _autograd.Spec("sigmoid_focal_loss", _backward, _reference.op, save_outputs=(1,), non_differentiable=(1,))
    )
    _vmap.register("sigmoid_focal_loss", _vmap_rule)
    _autocast.register("sigmoid_focal_loss", math_type_loss=True)


# -------------------------------------------------------------------------------- the nn module


class SigmoidFocalLoss(Loss):
    """fastloss.sigmoid_focal_loss as a module.

    forward(inputs, targets, weight=None, avg_factor=None): `targets` is a float tensor of inputs'
    shape or integer labels of shape inputs.shape[:-1] (label C = background).
    """

    def __init__(self, alpha=0.25, gamma=2.0, reduction="mean", *, ignore_index=-100, per_layer=False, **deprecated):
        super().__init__(reduction, **deprecated)
        self.alpha, self.gamma, self.ignore_index, self.per_layer = alpha, gamma, ignore_index, per_layer

    def forward(self, inputs, targets, weight=None, avg_factor=None, **deprecated):
        loss = sigmoid_focal_loss(
            inputs,
            targets,
            self.alpha,
            self.gamma,
            self.resolve_reduction(deprecated),
            weight=weight,
            avg_factor=avg_factor,
            ignore_index=self.ignore_index,
            per_layer=self.per_layer,
        )
        return self.scaled(loss)

    def extra_repr(self):
        return (
            f"alpha={self.alpha}, gamma={self.gamma}, ignore_index={self.ignore_index}, per_layer={self.per_layer}, "
            + super().extra_repr()
        )


# ------------------------------------------------------------------------------------ the record


def _labels_case(n, dtype, device, g):
    labels = torch.randint(-1, 6, (n,), generator=g)
    labels[::4] = -100
    return (logits(n, 5, dtype, device, g), labels.to(device)), dict(reduction="mean", gamma=1.5)


def _soft_case(n, dtype, device, g):
    t = torch.rand(n, 5, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)
    return (logits(n, 5, dtype, device, g), t), dict(reduction="sum", alpha=0.3)


def _sparse_case(n, dtype, device, g):
    """(labels, scores) targets: a label and a quality score per row (background: label 5)."""
    labels = torch.randint(0, 6, (n,), generator=g)
    labels[::5] = -100
    scores = torch.rand(n, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)
    return (logits(n, 5, dtype, device, g), labels.to(device), scores), dict(reduction="sum", gamma=1.5)


def _parity_call(case, g, on, seed):
    dtype, dtype2 = operand_dtypes(case)
    rows, classes, layers = case["rows"], case["classes"], case.get("layers", 0)
    lead = (layers, rows) if layers else (rows,)
    x = on(torch.randn(*lead, classes, generator=g, dtype=torch.float64) * 3, dtype)
    labels = torch.randint(-1, classes + 1, lead, generator=g)
    labels[::7] = -100
    if case["targets"] == "labels":
        t = on(labels)
    elif case["targets"] == "one-hot":
        t = on((labels.unsqueeze(-1) == torch.arange(classes)).double(), dtype2)
    else:
        t = on(torch.rand(*lead, classes, generator=g, dtype=torch.float64), dtype2)
    if case.get("target_grad") and t.is_floating_point():
        t.requires_grad_()
    w = {
        None: None,
        "row": torch.rand(*lead, generator=g),
        "class": torch.rand(1, classes, generator=g),
        "full": torch.rand(*lead, classes, generator=g),
    }[case["weight"]]
    kwargs = dict(
        alpha=case["alpha"],
        gamma=case["gamma"],
        reduction=case["reduction"],
        weight=None if w is None else on(w, dtype),
    )
    if case["avg_factor"] == "tensor" and case["reduction"] == "mean":
        kwargs["avg_factor"] = on(torch.tensor(7.0))
    if layers and case["reduction"] != "none":
        kwargs["per_layer"] = True
    return sigmoid_focal_loss, [strided(x, case["contiguous"]), t], kwargs


def _dtype_sweep(small):
    reductions, autocasts = ("none", "mean"), (None, torch.bfloat16)
    return [
        small(dtype=a, targets="labels", reduction=r, autocast=ac)
        for a in FLOATS
        for r in reductions
        for ac in autocasts
    ] + [
        small(dtype=a, dtype2=b, targets="soft", target_grad=tg, reduction=r, autocast=ac)
        for a, b in DTYPE_PAIRS
        for tg in (False, True)
        for r in reductions
        for ac in autocasts
    ]


SPEC = declare(
    OpSpec(
        "sigmoid_focal",
        ops=("sigmoid_focal_loss", "sigmoid_focal_loss_backward"),
        register=_register,
        reference=_reference,
        modules=(SigmoidFocalLoss,),
        cases=(
            Case("sigmoid_focal labels", sigmoid_focal_loss, _reference.sigmoid_focal_loss, _labels_case),
            Case("sigmoid_focal soft", sigmoid_focal_loss, _reference.sigmoid_focal_loss, _soft_case),
            Case(
                "sigmoid_focal sparse",
                sparse_targets(sigmoid_focal_loss),
                sparse_targets(_reference.sigmoid_focal_loss),
                _sparse_case,
            ),
        ),
        plan=Plan(
            factors=dict(
                dtype=FLOATS,
                rows=[1, 31, 33, 1025, 65537],
                classes=[1, 4, 31, 33, 80, 1203],
                targets=["labels", "one-hot", "soft"],
                reduction=["none", "mean", "sum"],
                weight=[None, "row", "class", "full"],
                contiguous=[True, False],
                gamma=[0.0, 0.5, 2.0, 1.7],
                alpha=[0.25, -1.0],
                avg_factor=[None, "tensor"],
            ),
            call=_parity_call,
            elements=lambda case: max(case.get("layers", 0), 1) * case["rows"] * case["classes"],
            shrink=("rows",),
            small=dict(rows=257, classes=4),
            mid=dict(rows=70001, classes=80),
            large=dict(rows=400_000, classes=80, targets="labels"),
            empty=(dict(rows=0), dict(classes=0)),
            sweep=_dtype_sweep,
            elementwise=True,
        ),
        bench="sigmoid_focal",
    )
)
