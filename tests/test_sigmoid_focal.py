"""fastloss.sigmoid_focal_loss against the reference, torchvision and torch; gradients, registration,
torch.compile, determinism, edge cases and bad input."""

import itertools

import pytest
import torch
import torch.nn.functional as F

import fastloss
from fastloss import reference
from helpers import (
    DEVICES,
    FLOAT_DTYPES,
    HALF_DTYPES,
    assert_close,
    labels_for,
    logits,
    loss_and_grads,
    needs,
    one_hot,
    peer,
)

torchvision_ops = peer("torchvision.ops")
tv_focal = torchvision_ops.sigmoid_focal_loss if torchvision_ops else None
needs_torchvision = needs("torchvision.ops")

ALPHAS = [0.25, 0.0, 1.0, 0.7, -1]
GAMMAS = [2.0, 0.0, 1.0, 0.5, 1.5, 3.0]
REDUCTIONS = ["none", "mean", "sum"]


# ---------------------------------------------------------------- values against torchvision and torch


@needs_torchvision
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("alpha,gamma", list(itertools.product(ALPHAS, GAMMAS)))
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_matches_torchvision_float64(device, alpha, gamma, reduction):
    x = logits(300, 11, device=device).requires_grad_()
    t = torch.rand(300, 11, dtype=torch.float64, device=device).requires_grad_()  # soft targets
    got, got_grads = loss_and_grads(fastloss.sigmoid_focal_loss, (x, t), alpha=alpha, gamma=gamma, reduction=reduction)
    want, want_grads = loss_and_grads(tv_focal, (x, t), alpha=alpha, gamma=gamma, reduction=reduction)
    assert got.dtype == torch.float64 and got.shape == want.shape
    assert_close(got, want)
    for g, w in zip(got_grads, want_grads):
        assert_close(g, w)


@needs_torchvision
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("alpha,gamma", [(0.25, 2.0), (-1, 0.0), (0.5, 0.5), (0.75, 3.0)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_matches_torchvision_float32(device, alpha, gamma, reduction):
    """fp32 results equal torchvision's to rel. 1e-5, measured against torchvision in float64 (the
    exact values: torchvision's own fp32 1 − p_t cancels for confident logits, ours does not)."""
    x = logits(2000, 80, device=device, dtype=torch.float32)
    t = one_hot(labels_for((2000,), 80, device), 80, torch.float32)
    got = fastloss.sigmoid_focal_loss(x, t, alpha, gamma, reduction)
    exact = tv_focal(x.double(), t.double(), alpha, gamma, reduction)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), exact, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(got, tv_focal(x, t, alpha, gamma, reduction), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gamma_zero_is_bce_with_logits(reduction):
    x, t = logits(100, 7), torch.rand(100, 7, dtype=torch.float64)
    got = fastloss.sigmoid_focal_loss(x, t, alpha=-1, gamma=0.0, reduction=reduction)
    assert_close(got, F.binary_cross_entropy_with_logits(x, t, reduction=reduction))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("targets", ["float", "labels"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_matches_reference_every_dtype(device, dtype, targets, reduction):
    x = logits(513, 13, device=device, dtype=dtype).requires_grad_()
    labels = labels_for((513,), 13, device)
    labels[::5] = -100
    t = labels if targets == "labels" else one_hot(labels, 13, dtype)
    got, (gx,) = loss_and_grads(fastloss.sigmoid_focal_loss, (x, t), reduction=reduction)
    want, (wx,) = loss_and_grads(reference.sigmoid_focal_loss, (x, t), reduction=reduction)
    assert got.dtype == dtype and gx.dtype == dtype
    assert_close(got, want)
    assert_close(gx, wx)


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_half_inputs_match_float32_math(dtype):
    """Half inputs compute in fp32: the result is the fp32 loss of the rounded inputs, rounded once."""
    x = logits(1000, 20, dtype=dtype)
    t = labels_for((1000,), 20)
    want = fastloss.sigmoid_focal_loss(x.float(), t, reduction="sum")
    got = fastloss.sigmoid_focal_loss(x, t, reduction="sum")
    assert got.dtype == dtype
    assert got.float().item() == pytest.approx(want.to(dtype).float().item(), rel=0, abs=0)


# ------------------------------------------------------------------------------------- label targets


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", ["none", "sum"])
@pytest.mark.parametrize("gamma", [2.0, 0.5])
def test_labels_equal_one_hot_float_targets(device, reduction, gamma):
    x = logits(400, 9, device=device).requires_grad_()
    labels = labels_for((400,), 9, device)
    got, (g1,) = loss_and_grads(fastloss.sigmoid_focal_loss, (x, labels), gamma=gamma, reduction=reduction)
    want, (g2,) = loss_and_grads(
        fastloss.sigmoid_focal_loss, (x, one_hot(labels, 9, x.dtype)), gamma=gamma, reduction=reduction
    )
    assert_close(got, want)
    assert_close(g1, g2)


@pytest.mark.parametrize("device", DEVICES)
def test_ignore_index_drops_rows_from_loss_gradient_and_mean(device):
    x = logits(300, 6, device=device).requires_grad_()
    labels = labels_for((300,), 6, device)
    labels[::3] = 255
    kept = labels != 255
    loss, (gx,) = loss_and_grads(fastloss.sigmoid_focal_loss, (x, labels), reduction="none", ignore_index=255)
    assert (loss[~kept] == 0).all() and (gx[~kept] == 0).all() and (gx[kept] != 0).any()
    mean = fastloss.sigmoid_focal_loss(x, labels, reduction="mean", ignore_index=255)
    subset = fastloss.sigmoid_focal_loss(x[kept], labels[kept], reduction="mean", ignore_index=255)
    assert_close(mean, subset)
    assert_close(mean, loss.sum() / (kept.sum() * 6))


def test_all_ignored_gives_zero_with_gradient():
    x = logits(10, 4).requires_grad_()
    loss = fastloss.sigmoid_focal_loss(x, torch.full((10,), -100), reduction="mean")
    loss.backward()
    assert loss.item() == 0 and (x.grad == 0).all()


@pytest.mark.parametrize("label_dtype", [torch.int64, torch.int32, torch.int16, torch.uint8])
def test_integer_label_dtypes(label_dtype):
    x = logits(64, 5)
    labels = torch.randint(0, 6, (64,))
    got = fastloss.sigmoid_focal_loss(x, labels.to(label_dtype), reduction="sum")
    assert_close(got, fastloss.sigmoid_focal_loss(x, labels, reduction="sum"))


@pytest.mark.parametrize("device", DEVICES)
def test_labels_outside_classes_are_all_negative(device):
    """Any label value is safe: labels are compared with the class index, never used as addresses."""
    x = logits(8, 4, device=device)
    # (−2^63 and 2^63 − 1 too: the kernel once subtracted the column from the label before comparing)
    labels = torch.tensor([4, -1, 2**62, -(2**62), 10**9, -7, -(2**63), 2**63 - 1], device=device)
    got = fastloss.sigmoid_focal_loss(x, labels, reduction="none")
    assert_close(got, fastloss.sigmoid_focal_loss(x, torch.zeros_like(x), reduction="none"))


@pytest.mark.parametrize("device", DEVICES)
def test_three_dim_inputs_with_per_anchor_weight(device):
    x = logits(2, 150, 7, device=device).requires_grad_()
    labels = labels_for((2, 150), 7, device)
    w = torch.rand(2, 150, dtype=torch.float64, device=device)
    got, (gx,) = loss_and_grads(fastloss.sigmoid_focal_loss, (x, labels), reduction="sum", weight=w)
    want, (wx,) = loss_and_grads(reference.sigmoid_focal_loss, (x, labels), reduction="sum", weight=w)
    assert_close(got, want)
    assert_close(gx, wx)
    flat = fastloss.sigmoid_focal_loss(x.reshape(-1, 7), labels.reshape(-1), reduction="sum", weight=w.reshape(-1))
    assert_close(got, flat)


# ------------------------------------------------------------------------ weights, avg_factor, empty


WEIGHT_SHAPES = {
    "per element": (40, 9),
    "per anchor": (40,),
    "per class": (9,),
    "per class (1, C)": (1, 9),
    "per anchor (N, 1)": (40, 1),
    "scalar": (),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", list(WEIGHT_SHAPES))
@pytest.mark.parametrize("targets", ["float", "labels"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_weight_broadcasts(device, kind, targets, reduction):
    x = logits(40, 9, device=device).requires_grad_()
    labels = labels_for((40,), 9, device)
    t = labels if targets == "labels" else torch.rand(40, 9, dtype=torch.float64, device=device)
    w = torch.rand(WEIGHT_SHAPES[kind], dtype=torch.float64, device=device)
    got, (gx,) = loss_and_grads(fastloss.sigmoid_focal_loss, (x, t), reduction=reduction, weight=w)
    unweighted = reference.sigmoid_focal_loss(x.detach(), t, reduction="none")
    full = w.unsqueeze(-1) if kind == "per anchor" else w
    want_none = unweighted * full
    want = {"none": want_none, "sum": want_none.sum(), "mean": want_none.mean()}[reduction]
    assert_close(got, want)
    _, (wx,) = loss_and_grads(reference.sigmoid_focal_loss, (x, t), reduction=reduction, weight=w)
    assert_close(gx, wx)


def test_per_anchor_rule_when_rows_equal_classes():
    x, labels = logits(5, 5), labels_for((5,), 5)
    w = torch.rand(5, dtype=torch.float64)
    base = fastloss.sigmoid_focal_loss(x, labels)
    assert_close(fastloss.sigmoid_focal_loss(x, labels, weight=w), base * w[:, None])  # (N,) per anchor
    assert_close(fastloss.sigmoid_focal_loss(x, labels, weight=w[None, :]), base * w[None, :])  # (1, C)


@pytest.mark.parametrize("avg_factor", [7.0, 3, torch.tensor(12.5)])
def test_avg_factor(avg_factor):
    x = logits(50, 4).requires_grad_()
    labels = labels_for((50,), 4)
    got, (gx,) = loss_and_grads(fastloss.sigmoid_focal_loss, (x, labels), reduction="mean", avg_factor=avg_factor)
    want, (wx,) = loss_and_grads(
        lambda x, t: fastloss.sigmoid_focal_loss(x, t, reduction="sum") / avg_factor, (x, labels)
    )
    assert_close(got, want)
    assert_close(gx, wx)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("targets", ["float", "labels"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_empty_inputs(device, targets, reduction):
    x = torch.zeros(0, 80, device=device, requires_grad=True)
    t = torch.zeros(0, dtype=torch.int64, device=device) if targets == "labels" else torch.zeros(0, 80, device=device)
    loss = fastloss.sigmoid_focal_loss(x, t, reduction=reduction)
    assert loss.shape == ((0, 80) if reduction == "none" else ())
    if reduction != "none":
        assert loss.item() == 0
    loss.sum().backward()
    assert x.grad.shape == (0, 80)


@needs_torchvision
def test_zero_dim_float_input():
    x, t = torch.tensor(0.3, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
    assert_close(fastloss.sigmoid_focal_loss(x, t), tv_focal(x, t))


# ----------------------------------------------------------------------------------- numerics


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("targets", ["float", "labels"])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 2.5])
def test_extreme_logits_are_finite(device, dtype, targets, gamma):
    x = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 50.0], [1e4, 1e4, -50.0]], dtype=dtype, device=device)
    labels = torch.tensor([0, 0, 1], device=device)
    t = labels if targets == "labels" else one_hot(labels, 3, dtype)
    x.requires_grad_()
    loss = fastloss.sigmoid_focal_loss(x, t, gamma=gamma, reduction="none")
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(x.grad).all()
    # a wrong confident logit costs ~|x| (× α_t × 1), a right one nothing
    assert loss[0, 1].item() == 0 and loss[0, 0].item() == 0
    assert loss[1, 0].float().item() == pytest.approx(0.25 * 1e4, rel=1e-2)


@pytest.mark.parametrize("gamma", [0.25, 0.5, 0.9])
def test_gamma_below_one_has_finite_gradient_where_p_t_is_one(gamma):
    """(1 − p_t)^γ has an infinite derivative at p_t = 1; the whole loss's derivative is finite (0)."""
    x = torch.tensor([[40.0, -40.0], [100.0, -100.0]], requires_grad=True)
    t = torch.tensor([[1.0, 0.0], [1.0, 0.0]], requires_grad=True)
    fastloss.sigmoid_focal_loss(x, t, gamma=gamma, reduction="sum").backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(t.grad).all()
    assert x.grad.abs().max().item() < 1e-10


@needs_torchvision
def test_confident_correct_logits_keep_relative_precision():
    """1 − p_t is never formed by subtraction, so tiny losses keep their relative precision in fp32."""
    x = torch.tensor([[12.0, -12.0]])
    t = torch.tensor([[1.0, 0.0]])
    got = fastloss.sigmoid_focal_loss(x, t, reduction="none")
    exact = tv_focal(x.double(), t.double(), reduction="none")
    torch.testing.assert_close(got.double(), exact, rtol=1e-5, atol=0)


# ------------------------------------------------------------------------ gradients, registration


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("targets", ["soft", "labels"])
@pytest.mark.parametrize("alpha,gamma", [(0.25, 2.0), (-1, 0.0), (0.6, 1.5), (0.25, 1.0), (0.3, 0.7)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck(device, targets, alpha, gamma, reduction):
    x = logits(17, 5, scale=2.0, device=device).requires_grad_()
    if targets == "labels":
        t = labels_for((17,), 5, device)
        t[3] = -100
        inputs = (x,)
        fn = lambda x: fastloss.sigmoid_focal_loss(x, t, alpha, gamma, reduction)  # noqa: E731
    else:
        t = torch.rand(17, 5, dtype=torch.float64, device=device).requires_grad_()
        inputs = (x, t)
        fn = lambda x, t: fastloss.sigmoid_focal_loss(x, t, alpha, gamma, reduction)  # noqa: E731
    assert torch.autograd.gradcheck(fn, inputs)


def test_gradcheck_weighted_three_dim():
    x = logits(2, 6, 4).requires_grad_()
    t = torch.rand(2, 6, 4, dtype=torch.float64).requires_grad_()
    w = torch.rand(2, 6, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x, t: fastloss.sigmoid_focal_loss(x, t, reduction="mean", weight=w), (x, t))


def test_gradcheck_unreduced_with_non_contiguous_grad():
    """The backward of "none" takes any broadcast/strided incoming gradient."""
    x = logits(8, 3).requires_grad_()
    labels = labels_for((8,), 3)
    g = torch.rand(3, 8, dtype=torch.float64).t()
    loss = fastloss.sigmoid_focal_loss(x, labels)
    (gx,) = torch.autograd.grad(loss, x, g)
    ref = reference.sigmoid_focal_loss(x, labels)
    (wx,) = torch.autograd.grad(ref, x, g)
    assert_close(gx, wx)


OPCHECK_CASES = {
    "labels mean": lambda d: (
        logits(9, 4, device=d).requires_grad_(),
        labels_for((9,), 4, d),
        None,
        0.25,
        2.0,
        2,
        -100,
    ),
    "soft none weighted": lambda d: (
        logits(9, 4, device=d).requires_grad_(),
        torch.rand(9, 4, dtype=torch.float64, device=d).requires_grad_(),
        torch.rand(9, 1, dtype=torch.float64, device=d),
        0.25,
        1.5,
        0,
        -100,
    ),
    "float32 sum": lambda d: (
        logits(5, 3, 4, dtype=torch.float32, device=d).requires_grad_(),
        labels_for((5, 3), 4, d),
        None,
        -1.0,
        0.0,
        1,
        2,
    ),
    "bfloat16 mean": lambda d: (
        logits(9, 4, dtype=torch.bfloat16, device=d).requires_grad_(),
        labels_for((9,), 4, d),
        None,
        0.25,
        2.0,
        2,
        -100,
    ),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(OPCHECK_CASES))
def test_opcheck(device, case):
    torch.library.opcheck(torch.ops.fastloss.sigmoid_focal_loss.default, OPCHECK_CASES[case](device))


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck_backward_op(device):
    x, labels = logits(9, 4, device=device), labels_for((9,), 4, device)
    _, count = torch.ops.fastloss.sigmoid_focal_loss(x, labels, None, 0.25, 2.0, 2, -100)
    grad = torch.ones((), dtype=torch.float64, device=device)
    torch.library.opcheck(
        torch.ops.fastloss.sigmoid_focal_loss_backward.default,
        (grad, x, labels, None, count, 0.25, 2.0, 2, -100, False),
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("targets", ["float", "labels"])
def test_torch_compile_fullgraph_matches_eager(device, targets):
    x = logits(64, 10, dtype=torch.float32, device=device).requires_grad_()
    labels = labels_for((64,), 10, device)
    t = labels if targets == "labels" else one_hot(labels, 10, torch.float32)
    w = torch.rand(64, dtype=torch.float32, device=device)

    def step(x, t, w):
        return fastloss.sigmoid_focal_loss(x, t, 0.25, 2.0, "mean", weight=w) * 2.0

    compiled = torch.compile(step, fullgraph=True)
    got, (g1,) = loss_and_grads(compiled, (x, t, w))
    want, (g2,) = loss_and_grads(step, (x, t, w))
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(g1, g2)


# ------------------------------------------------------------------------------------ determinism


@pytest.mark.parametrize("targets", ["float", "labels"])
def test_bitwise_deterministic_across_runs_and_thread_counts(targets):
    x = logits(3001, 80, dtype=torch.float32)  # many chunks of the CPU reduction
    labels = labels_for((3001,), 80)
    t = labels if targets == "labels" else one_hot(labels, 80, torch.float32)
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3, threads):
            torch.set_num_threads(n)
            for _ in range(2):
                results.append(fastloss.sigmoid_focal_loss(x, t, reduction="mean"))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(r, results[0]) for r in results)


# --------------------------------------------------------------------------------- layouts, module


def test_non_contiguous_inputs_and_targets():
    base = logits(60, 20).requires_grad_()
    x = base[:, ::2]
    t = torch.rand(10, 60, dtype=torch.float64).t()
    got, (gx,) = loss_and_grads(fastloss.sigmoid_focal_loss, (x, t), reduction="sum")
    want, (wx,) = loss_and_grads(fastloss.sigmoid_focal_loss, (x.contiguous(), t.contiguous()), reduction="sum")
    assert_close(got, want)
    assert_close(gx, wx)


@needs_torchvision
def test_mixed_dtypes_promote_like_torchvision():
    x, t = logits(20, 3, dtype=torch.float16), torch.rand(20, 3)
    got = fastloss.sigmoid_focal_loss(x, t, reduction="none")
    assert got.dtype == tv_focal(x, t).dtype == torch.float32
    assert_close(got, tv_focal(x.float(), t))


def test_module():
    x = logits(30, 6, dtype=torch.float32).requires_grad_()
    labels = labels_for((30,), 6)
    w = torch.rand(30)
    module = fastloss.nn.SigmoidFocalLoss(alpha=0.3, gamma=1.5, reduction="mean")
    loss = module(x, labels, weight=w, avg_factor=4.0)
    assert_close(loss, fastloss.sigmoid_focal_loss(x, labels, 0.3, 1.5, "sum", weight=w) / 4.0)
    none = fastloss.nn.SigmoidFocalLoss(alpha=0.3, gamma=1.5, reduction="none")(x, labels)
    assert none.shape == x.shape
    assert_close(none, fastloss.sigmoid_focal_loss(x, labels, 0.3, 1.5))
    with pytest.raises(ValueError, match="reduction"):
        fastloss.nn.SigmoidFocalLoss(reduction="avg")


# -------------------------------------------------------------------------------------- bad input


def _bad(**changes):
    args = dict(inputs=logits(8, 4), targets=labels_for((8,), 4), alpha=0.25, gamma=2.0, reduction="mean")
    args.update(changes)
    return args


BAD_INPUTS = [
    (_bad(inputs=[[0.0]]), TypeError, "inputs must be a torch.Tensor"),
    (_bad(inputs=torch.zeros(8, 4, dtype=torch.int64)), TypeError, "inputs must be a float16"),
    (_bad(targets=[1, 2]), TypeError, "targets must be a torch.Tensor"),
    (_bad(targets=torch.zeros(8, 4, dtype=torch.bool)), TypeError, "targets must be a float tensor or integer"),
    (_bad(targets=torch.zeros(8, 3)), ValueError, "float targets must have the inputs' shape"),
    (
        _bad(targets=torch.zeros(8, 4, dtype=torch.int64)),
        ValueError,
        r"labels? targets must have shape inputs.shape\[:-1\]",
    ),
    (_bad(targets=torch.zeros(7, dtype=torch.int64)), ValueError, r"targets must have shape inputs.shape\[:-1\]"),
    (_bad(inputs=torch.tensor(1.0), targets=torch.tensor(1)), ValueError, r"inputs.shape\[:-1\]"),
    (_bad(alpha=1.5), ValueError, "alpha must be in"),
    (_bad(alpha=-0.5), ValueError, "alpha must be in"),
    (_bad(alpha="0.25"), TypeError, "alpha must be a real number"),
    (_bad(gamma=-1.0), ValueError, "gamma must be >= 0"),
    (_bad(gamma=float("nan")), ValueError, "gamma must be finite"),
    (_bad(reduction="avg"), ValueError, "Invalid reduction"),
    (_bad(reduction=None), ValueError, "Invalid reduction"),
    (_bad(avg_factor=2.0, reduction="sum"), ValueError, "avg_factor can only be used with reduction='mean'"),
    (_bad(avg_factor=0.0), ValueError, "avg_factor must be > 0"),
    (_bad(avg_factor=torch.ones(2)), ValueError, "avg_factor must be a number or a one-element tensor"),
    (_bad(weight=torch.ones(3)), ValueError, "weight of shape"),
    (_bad(weight=torch.ones(8, 4, dtype=torch.int32)), TypeError, "weight must be a float16"),
    (_bad(weight=torch.ones(8, requires_grad=True)), ValueError, "weight requires grad"),
    (_bad(ignore_index=1.5), TypeError, "ignore_index must be an int"),
    (
        _bad(inputs=torch.zeros(8, 4, device="meta")),
        ValueError,
        "targets and inputs must be on the same device; targets is on cpu",
    ),
    (
        _bad(weight=torch.ones(8, device="meta")),
        ValueError,
        "weight and inputs must be on the same device; weight is on meta",
    ),
]


@pytest.mark.parametrize("args,error,message", BAD_INPUTS, ids=[m for _, _, m in BAD_INPUTS])
@pytest.mark.parametrize("impl", ["fastloss", "reference"])
def test_bad_input_raises_clear_error(impl, args, error, message):
    fn = fastloss.sigmoid_focal_loss if impl == "fastloss" else reference.sigmoid_focal_loss
    args = dict(args)
    with pytest.raises(error, match=message):
        fn(args.pop("inputs"), args.pop("targets"), **args)


def test_direct_op_call_checks_shapes():
    """The C++ op checks its arguments too, so a direct torch.ops call cannot read out of bounds."""
    with pytest.raises(RuntimeError, match="label targets must have shape"):
        torch.ops.fastloss.sigmoid_focal_loss(logits(8, 4), torch.zeros(9, dtype=torch.int64), None, 0.25, 2.0, 2, -100)
    with pytest.raises(RuntimeError, match="float targets must have the inputs' shape"):
        torch.ops.fastloss.sigmoid_focal_loss(
            logits(8, 4), torch.zeros(8, 3, dtype=torch.float64), None, 0.25, 2.0, 2, -100
        )
    with pytest.raises(RuntimeError, match=r"shape \[5\] does not broadcast to the loss's shape \[8, 4\]"):
        torch.ops.fastloss.sigmoid_focal_loss(
            logits(8, 4), torch.zeros(8, dtype=torch.int64), torch.ones(5), 0.25, 2.0, 0, -100
        )


# --------------------------------------------------------------------------------------- CUDA only


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu_and_is_deterministic():
    x = logits(20000, 81, dtype=torch.float32)
    labels = labels_for((20000,), 81)
    cpu = fastloss.sigmoid_focal_loss(x, labels, reduction="sum")
    runs = [fastloss.sigmoid_focal_loss(x.cuda(), labels.cuda(), reduction="sum") for _ in range(3)]
    assert all(torch.equal(r, runs[0]) for r in runs)
    torch.testing.assert_close(runs[0].cpu(), cpu, rtol=1e-5, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_more_than_two_to_the_31_elements():
    """64-bit indexing: 2^31 + 3·C fp16 elements (4 GiB of logits)."""
    classes = 64
    rows = 2**31 // classes + 3
    x = torch.full((rows, classes), -20.0, dtype=torch.float16, device="cuda")
    labels = torch.full((rows,), classes, device="cuda")
    labels[-1] = classes - 1
    x[-1, -1] = 20.0  # a correct positive at the very end
    x[-2, -1] = 20.0  # a wrong one (the row is background): costs 0.75 * 20
    loss = fastloss.sigmoid_focal_loss(x, labels, reduction="none")
    assert loss[-2, -1].item() == pytest.approx(15.0, rel=1e-2)
    assert loss[-1, -1].item() == 0.0
    x.requires_grad_()
    fastloss.sigmoid_focal_loss(x, labels, reduction="sum").backward()
    assert x.grad[-2, -1].item() == pytest.approx(0.75, rel=1e-2)


@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_float32_across_the_whole_logit_range(gamma):
    """The CPU kernels' own exp, reciprocal and log1p (csrc/cpu/vec_ops.h, math/ops.h) over every
    regime — exp's overflow/underflow edges (±87–89), tiny and saturated values (±120) — against
    the loss written with float64 softplus/sigmoid, which stay relatively exact where torch's
    BCE-with-logits kernel cancels (its value at x = −33 is off by percents)."""
    x = torch.linspace(-120, 120, 48_001, dtype=torch.float64).view(-1, 1).repeat(1, 2)
    t = torch.tensor([[0.0, 1.0]], dtype=torch.float64).expand_as(x)

    def exact(x, t):  # α_t (1 − p_t)^γ ce, α = 0.25, with t ∈ {0, 1}
        sign = 2 * t - 1  # +1 for positives
        return (0.25 * t + 0.75 * (1 - t)) * torch.sigmoid(-sign * x) ** gamma * F.softplus(-sign * x)

    want, (g_want,) = loss_and_grads(exact, (x.requires_grad_(), t))
    got, (g_got,) = loss_and_grads(fastloss.sigmoid_focal_loss, (x.float().requires_grad_(), t.float()), gamma=gamma)
    # float32 keeps 1e-5 relative down to ~1e-37 (below, denormals round in absolute terms)
    assert_close(got, want, dtype=torch.float32, atol=1e-37)
    assert_close(g_got, g_want, dtype=torch.float32, atol=1e-37)


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_half_avg_factor_of_a_sum_beyond_float16_range(dtype):
    """mmdet's "sum / avg_factor" of ~1e5 summed losses: the division happens before the cast to
    float16, so the result is finite where a float16 sum would overflow."""
    x = logits(100_000, 8, dtype=dtype, scale=4.0)
    t = (torch.rand(100_000, 8) < 0.1).to(dtype)
    got = fastloss.sigmoid_focal_loss(x, t, reduction="mean", avg_factor=1000.0)
    want = reference.sigmoid_focal_loss(x.float(), t.float(), reduction="sum") / 1000.0
    assert got.dtype == dtype and torch.isfinite(got)
    assert_close(got, want)


def test_the_raw_op_with_a_tensor_missing_is_a_value_error():
    """None where the raw op wants a tensor arrives as an undefined tensor: a plain error, not a shim
    exception with a logged stack trace (scripts/sanitize.sh's fuzzer passes None anywhere)."""
    with pytest.raises(ValueError, match="targets is missing"):
        torch.ops.fastloss.sigmoid_focal_loss(torch.randn(3, 4), None, None, 0.25, 2.0, 1, -100)


# --------------------------------------------------------------- sparse (labels, scores) targets


def sparse_inputs(rows=41, classes=80, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(rows, classes, generator=g, dtype=torch.float64) * 3).to(dtype)
    labels = torch.randint(-1, classes + 1, (rows,), generator=g)  # -1 and C: background
    scores = torch.rand(rows, generator=g, dtype=torch.float64).to(dtype)
    scores[::6] = 0.0
    scores[1::6] = 1.0
    return x, labels, scores


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_sparse_targets_are_bce_against_the_dense_one_hot_times_score(reduction, dtype, device):
    """ultralytics' classification loss without its dense target: value and gradient equal
    F.binary_cross_entropy_with_logits(x, one_hot(label) · score)."""
    x, labels, scores = (t.to(device) for t in sparse_inputs(dtype=dtype))
    dense = (labels[:, None] == torch.arange(80, device=device)).to(dtype) * scores[:, None]
    got, (got_grad,) = loss_and_grads(
        lambda x: fastloss.sigmoid_focal_loss(x, (labels, scores), alpha=-1, gamma=0.0, reduction=reduction),
        [x.requires_grad_()],
    )
    want, (want_grad,) = loss_and_grads(
        lambda x: F.binary_cross_entropy_with_logits(x, dense, reduction=reduction), [x]
    )
    assert_close(got, want)
    assert_close(got_grad, want_grad)


@pytest.mark.parametrize("gamma, alpha", [(2.0, 0.25), (1.5, -1), (0.5, 0.75)])
def test_sparse_targets_equal_the_dense_soft_targets(gamma, alpha):
    x, labels, scores = sparse_inputs(seed=1)
    labels[::4] = -100  # ignored rows: no loss, left out of the mean
    dense = (labels[:, None] == torch.arange(80)).double() * scores[:, None]
    kept = labels != -100
    for reduction in ("none", "sum"):
        got, (g1,) = loss_and_grads(
            lambda x: fastloss.sigmoid_focal_loss(x, (labels, scores), alpha, gamma, reduction), [x.requires_grad_()]
        )
        want, (g2,) = loss_and_grads(
            lambda x: fastloss.sigmoid_focal_loss(x[kept], dense[kept], alpha, gamma, reduction), [x]
        )
        assert_close(got[kept] if reduction == "none" else got, want)
        assert_close(g1[kept], g2[kept])
        assert not g1[~kept].any()


def test_sparse_targets_gradcheck():
    x, labels, scores = sparse_inputs(rows=6, classes=5)
    assert torch.autograd.gradcheck(
        lambda x: fastloss.sigmoid_focal_loss(x, (labels, scores), gamma=1.5, reduction="sum"), (x.requires_grad_(),)
    )


@pytest.mark.parametrize(
    "targets, error, message",
    [
        (
            lambda labels, s: (labels, s + 1.5),
            ValueError,
            "targets\\[1\\] \\(scores\\) has values in .* outside \\[0, 1\\]",
        ),
        (lambda labels, s: (labels, s[:-1]), ValueError, "must have the labels' shape"),
        (lambda labels, s: (labels.float(), s), TypeError, "must be integer class labels"),
        (lambda labels, s: (labels, s.requires_grad_()), ValueError, "take no gradient"),
        (lambda labels, s: (labels, s, s), ValueError, "must be \\(labels, scores\\)"),
        (lambda labels, s: (labels, s.long()), TypeError, "targets\\[1\\] \\(scores\\) must be a float"),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_sparse_targets_bad_input(targets, error, message):
    x, labels, scores = sparse_inputs()
    with pytest.raises(error, match=message):
        fastloss.sigmoid_focal_loss(x, targets(labels, scores))


def test_sparse_targets_raw_op_checks():
    x, labels, scores = sparse_inputs()
    with pytest.raises(ValueError, match="scores go with integer label targets only"):
        torch.ops.fastloss.sigmoid_focal_loss(x, x, None, 0.25, 2.0, 1, -100, False, scores)
    with pytest.raises(ValueError, match="scores must be a floating tensor of the labels' shape"):
        torch.ops.fastloss.sigmoid_focal_loss(x, labels, None, 0.25, 2.0, 1, -100, False, scores[:3])


def test_sparse_targets_opcheck_and_compile():
    x, labels, scores = sparse_inputs(dtype=torch.float32)
    torch.library.opcheck(
        torch.ops.fastloss.sigmoid_focal_loss.default,
        (x.requires_grad_(), labels, None, 0.25, 2.0, 2, -100, False, scores),
    )
    torch._dynamo.reset()
    step = torch.compile(
        lambda x, labels, s: fastloss.sigmoid_focal_loss(x, (labels, s), reduction="mean"), fullgraph=True, dynamic=True
    )
    for rows in (7, 13):
        x, labels, scores = sparse_inputs(rows=rows, dtype=torch.float32, seed=rows)
        x.requires_grad_()
        got, want = step(x, labels, scores), fastloss.sigmoid_focal_loss(x, (labels, scores), reduction="mean")
        assert_close(got, want)
        assert_close(torch.autograd.grad(got, x)[0], torch.autograd.grad(want, x)[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_sparse_targets_cuda_matches_cpu(reduction):
    x, labels, scores = sparse_inputs(rows=70001, dtype=torch.float32, seed=2)
    labels[::9] = -100
    want, (want_grad,) = loss_and_grads(
        lambda x: fastloss.sigmoid_focal_loss(x, (labels, scores), reduction=reduction), [x.requires_grad_()]
    )
    xc, lc, sc = x.detach().cuda().requires_grad_(), labels.cuda(), scores.cuda()
    got, (got_grad,) = loss_and_grads(lambda x: fastloss.sigmoid_focal_loss(x, (lc, sc), reduction=reduction), [xc])
    torch.testing.assert_close(got.cpu(), want, rtol=2e-5, atol=2e-6)
    torch.testing.assert_close(got_grad.cpu(), want_grad, rtol=2e-5, atol=2e-6)
