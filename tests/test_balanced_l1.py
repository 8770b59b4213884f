"""fastloss.balanced_l1_loss (Libra R-CNN) against its pure-torch reference (mmdet's formula):
values and gradients over dtypes, shapes, SIMD tails, weights and reductions; gradcheck, opcheck,
torch.compile, bad input."""

import pytest
import torch

import fastloss
from fastloss import reference
from helpers import DEVICES, FLOAT_DTYPES, assert_close, loss_and_grads


def deltas(*shape, device="cpu", dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    target = torch.randn(*shape, generator=g, dtype=torch.float64)
    pred = target + torch.randn(*shape, generator=g, dtype=torch.float64) * 1.5  # both pieces (|d| < β and ≥)
    return pred.to(device=device, dtype=dtype), target.to(device=device, dtype=dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_matches_reference(device, dtype, reduction):
    pred, target = deltas(257, 4, device=device, dtype=dtype)
    for options in ({}, dict(alpha=0.3, gamma=2.0, beta=0.5), dict(beta=3.0)):
        got = loss_and_grads(fastloss.balanced_l1_loss, (pred.requires_grad_(), target), reduction=reduction, **options)
        want = loss_and_grads(
            reference.balanced_l1_loss,
            (pred.double().requires_grad_(), target.double()),
            reduction=reduction,
            **options,
        )
        assert_close(got[0], want[0], dtype)
        assert_close(got[1][0], want[1][0], dtype)
        assert got[1][0].dtype == dtype


@pytest.mark.parametrize("n", list(range(1, 18)) + [16385])
def test_every_simd_tail_and_chunk_edge(n):
    pred, target = deltas(n)
    got = loss_and_grads(fastloss.balanced_l1_loss, (pred.requires_grad_(), target), reduction="sum")
    want = loss_and_grads(reference.balanced_l1_loss, (pred.requires_grad_(), target), reduction="sum")
    assert_close(got[0], want[0])
    assert_close(got[1][0], want[1][0])


def test_weights_avg_factor_noncontiguous_and_empty():
    pred, target = deltas(64, 4)
    for weight in (
        torch.rand(64, 4, dtype=torch.float64),
        torch.rand(64, 1, dtype=torch.float64),
        torch.rand(4, dtype=torch.float64),
    ):
        for kwargs in (
            dict(reduction="none"),
            dict(reduction="mean", avg_factor=7.0),
            dict(reduction="mean", avg_factor=torch.tensor(3.0, dtype=torch.float64)),
        ):
            got = loss_and_grads(fastloss.balanced_l1_loss, (pred.requires_grad_(), target), weight=weight, **kwargs)
            want = loss_and_grads(reference.balanced_l1_loss, (pred.requires_grad_(), target), weight=weight, **kwargs)
            assert_close(got[0], want[0])
            assert_close(got[1][0], want[1][0])
    p, t = deltas(4, 64)
    assert_close(fastloss.balanced_l1_loss(p.t(), t.t(), "none"), reference.balanced_l1_loss(p.t(), t.t(), "none"))
    empty = torch.zeros(0, 4, dtype=torch.float64, requires_grad=True)
    loss = fastloss.balanced_l1_loss(empty, torch.zeros(0, 4, dtype=torch.float64))
    assert loss.item() == 0.0
    loss.backward()
    assert pred.new_zeros(()).dtype == torch.float64


def test_gradient_at_zero_difference_and_gradcheck():
    """d = 0: gradient 0 (torch's |·|'); the two pieces meet at d = β, value and slope."""
    x = torch.tensor([1.0, 1.0 - 1e-9, 1.0 + 1e-9, 0.5], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([1.0, 0.0, 0.0, 0.5], dtype=torch.float64)
    loss = fastloss.balanced_l1_loss(x, t, "none")
    (grad,) = torch.autograd.grad(loss.sum(), x)
    assert grad[0] == 0 and grad[3] == 0
    assert loss[1].item() == pytest.approx(loss[2].item(), abs=1e-8)
    assert grad[1].item() == pytest.approx(grad[2].item(), abs=1e-6)  # b = e^{γ/α} − 1 makes them meet
    pred, target = deltas(30, 4)
    assert torch.autograd.gradcheck(
        lambda p: fastloss.balanced_l1_loss(p, target, "mean", alpha=0.4), (pred.requires_grad_(),)
    )


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck(device):
    pred, target = deltas(9, 4, device=device)
    weight = torch.rand(9, 4, dtype=torch.float64, device=device)
    for reduction in (0, 1, 2):
        torch.library.opcheck(
            torch.ops.fastloss.balanced_l1_loss.default,
            (pred.requires_grad_(), target, weight, 0.5, 1.5, 1.0, reduction),
        )
        # With keep_grad the second output is the buffer the backward turns into the gradient: not a graph
        # output, which AOT's check makes it (the compiled loss keeps it inside: test_torch_compile_*).
        torch.library.opcheck(
            torch.ops.fastloss.balanced_l1_loss.default,
            (pred.requires_grad_(), target, weight, 0.5, 1.5, 1.0, reduction, True),
            test_utils=["test_schema", "test_autograd_registration", "test_faketensor"],
        )
    grad = torch.ones(9, 4, dtype=torch.float64, device=device)
    torch.library.opcheck(
        torch.ops.fastloss.balanced_l1_loss_backward.default, (grad, pred.detach(), target, None, 0.5, 1.5, 1.0, 0)
    )
    kept = torch.randn(9, 4, dtype=torch.float64, device=device)
    torch.library.opcheck(torch.ops.fastloss.balanced_l1_loss_backward_.default, (grad, kept, weight, 0))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_kept_gradient_is_bitwise_the_recomputed_one(device, dtype, reduction):
    """The forward that keeps dL/dpred (grad enabled) gives the loss bit for bit as the one that does
    not, and its in-place backward the gradient bit for bit as the recomputing backward (which a second
    backward through the graph takes)."""
    pred, target = deltas(1000, 4, device=device, dtype=dtype)
    weight = torch.rand(1000, 4, dtype=dtype, device=device)
    for options in ({}, dict(alpha=0.3, gamma=2.0, beta=0.5), dict(weight=weight)):
        with torch.no_grad():
            plain = fastloss.balanced_l1_loss(pred, target, reduction, **options)
        x = pred.clone().requires_grad_()
        loss = fastloss.balanced_l1_loss(x, target, reduction, **options)
        assert torch.equal(loss.detach(), plain)
        upstream = torch.rand_like(loss)
        (kept,) = torch.autograd.grad(loss, x, upstream, retain_graph=True)
        (recomputed,) = torch.autograd.grad(loss, x, upstream)
        assert torch.equal(kept, recomputed)
        assert kept.dtype == dtype


def test_half_types_recompute_and_keep_grad_refused_for_them():
    pred, target = deltas(64, device="cpu", dtype=torch.float16)
    got = loss_and_grads(fastloss.balanced_l1_loss, (pred.requires_grad_(), target))
    want = loss_and_grads(reference.balanced_l1_loss, (pred.double().requires_grad_(), target.double()))
    assert_close(got[1][0], want[1][0], torch.float16)
    with pytest.raises(ValueError, match="keep_grad needs float32 or float64"):
        torch.ops.fastloss.balanced_l1_loss(pred.detach(), target, None, 0.5, 1.5, 1.0, 2, True)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dynamic", [False, True])
def test_torch_compile_fullgraph_matches_eager(device, dynamic):
    pred, target = deltas(100, 4, device=device, dtype=torch.float32)

    def step(p, t):
        return fastloss.balanced_l1_loss(p, t, "mean", beta=0.7) * 2.0

    compiled = torch.compile(step, fullgraph=True, dynamic=dynamic)
    got = loss_and_grads(compiled, (pred.requires_grad_(), target))
    want = loss_and_grads(step, (pred.requires_grad_(), target))
    assert_close(got[0], want[0])
    assert_close(got[1][0], want[1][0])


BAD = [
    (dict(pred=torch.zeros(3, 4, dtype=torch.int64)), TypeError, "pred must be a float"),
    (dict(target=torch.zeros(3, 5)), ValueError, "same shape"),
    (dict(alpha=0.0), ValueError, "alpha must be > 0"),
    (dict(beta=-1.0), ValueError, "beta must be > 0"),
    (dict(gamma=float("nan")), ValueError, "gamma must be finite"),
    (dict(reduction="avg"), ValueError, "Invalid reduction"),
    (dict(weight=torch.rand(5)), ValueError, "does not broadcast"),
    (dict(target=torch.zeros(3, 4, requires_grad=True)), ValueError, "target requires grad"),
    (dict(reduction="sum", avg_factor=2.0), ValueError, "avg_factor"),
]


@pytest.mark.parametrize("args,error,message", BAD, ids=[m for _, _, m in BAD])
@pytest.mark.parametrize("impl", [fastloss, reference])
def test_bad_input_raises_clear_error(impl, args, error, message):
    call = dict(pred=torch.zeros(3, 4), target=torch.zeros(3, 4), reduction="mean")
    call.update(args)
    pred, target, reduction = call.pop("pred"), call.pop("target"), call.pop("reduction")
    with pytest.raises(error, match=message):
        impl.balanced_l1_loss(pred, target, reduction, **call)
