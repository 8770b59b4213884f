"""fastloss.distribution_focal_loss against mmdet 3.3.0's distribution_focal_loss / DistributionFocalLoss
(from its wheel), ultralytics' DFLoss and the pure-torch reference: values, gradients, both ends of the
bins, registration, bad input. (gradgradcheck, vmap, torch.func, compile dynamic, autocast, empty
inputs: its op record's cases in test_guarantees.py.)"""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

import fastloss
import fastloss.mmdet as mmdet_face
import fastloss.ultralytics as ultralytics_face
from fastloss import reference
from helpers import DEVICES, FLOAT_DTYPES, assert_close, peer
from mmdet_peer import load

REDUCTIONS = ["none", "mean", "sum"]


@pytest.fixture(scope="module")
def mmdet(tmp_path_factory):
    return load(str(tmp_path_factory.mktemp("mmdet")))


def dfl_inputs(rows, bins, seed=0, device="cpu", dtype=torch.float64, ends=True):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(rows, bins, generator=g, dtype=torch.float64) * 2).to(device=device, dtype=dtype)
    t = torch.rand(rows, generator=g, dtype=torch.float64) * (bins - 1)
    if ends:
        t[::7] = 0
        t[3::7] = torch.randint(0, max(bins - 1, 1), (len(t[3::7]),), generator=g).double()  # integers: one bin
    return x, t.to(device=device, dtype=dtype)


def value_and_grad(fn, x, *args, **kwargs):
    x = x.detach().clone().requires_grad_()
    loss = fn(x, *args, **kwargs)
    (grad,) = torch.autograd.grad(loss.sum(), x)
    return loss.detach(), grad


def assert_same(got, want, dtype=torch.float64):
    assert got[0].shape == want[0].shape
    for a, b in zip(got, want):
        assert_close(a, b, dtype)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("avg_factor", [None, 4.0])
def test_equals_mmdet(mmdet, reduction, weighted, avg_factor):
    """mmdet's reg_max = 16: 17 bins, targets in [0, 16) (its head clamps to 16 − 0.01)."""
    if avg_factor is not None and reduction == "sum":
        return
    x, t = dfl_inputs(200, 17)
    t = t.clamp(max=16 - 0.01)
    weight = torch.rand(200, dtype=torch.float64) if weighted else None
    gfl = mmdet["gfocal_loss"]
    want = value_and_grad(gfl.distribution_focal_loss, x, t, weight, reduction=reduction, avg_factor=avg_factor)
    if avg_factor is None:  # the core function (mmdet's avg_factor adds eps: the face's job)
        assert_same(value_and_grad(fastloss.distribution_focal_loss, x, t, reduction=reduction, weight=weight), want)
    for options in ({}, dict(loss_weight=0.25)):
        ours, theirs = mmdet_face.DistributionFocalLoss(**options), gfl.DistributionFocalLoss(**options)
        kwargs = dict(weight=weight, avg_factor=avg_factor, reduction_override=reduction)
        assert_same(value_and_grad(ours, x, t, **kwargs), value_and_grad(theirs, x, t, **kwargs))


@pytest.mark.parametrize("reg_max", [16, 8])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_ultralytics_dfloss(reg_max, dtype):
    loss_module = peer("ultralytics.utils.loss")
    if loss_module is None:
        pytest.skip("ultralytics is not installed")
    g = torch.Generator().manual_seed(1)
    pred = (torch.randn(50 * 4, reg_max, generator=g, dtype=torch.float64) * 2).to(dtype)
    target = (torch.rand(50, 4, generator=g, dtype=torch.float64) * (reg_max + 1) - 0.5).to(dtype)  # clamped
    target[0] = reg_max - 1  # clamped to reg_max − 1.01
    caller = target.clone()
    got = value_and_grad(ultralytics_face.DFLoss(reg_max), pred, target)
    assert torch.equal(target, caller), "the caller's target must be left as it was"
    want = value_and_grad(loss_module.DFLoss(reg_max), pred, target.clone())
    assert got[0].shape == want[0].shape == (50, 1)
    assert_same(got, want, dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("bins", [16, 17, 1, 2, 33])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_matches_reference(device, dtype, bins, reduction):
    x, t = dfl_inputs(300, bins, seed=2, device=device, dtype=dtype)
    t[5::11] = bins - 1  # the last bin: no right neighbour
    got = value_and_grad(fastloss.distribution_focal_loss, x, t, reduction=reduction)
    want = value_and_grad(reference.distribution_focal_loss, x.double(), t.double(), reduction=reduction)
    assert got[0].dtype == dtype and got[1].dtype == dtype
    assert_same(got, want, dtype)


def test_is_two_cross_entropies():
    """loss = (r − t)·CE(x, l) + (t − l)·CE(x, r), in torch's own cross_entropy; an integer target is
    one plain cross entropy; the (..., n) layout of 4 box sides equals the flat one."""
    x, t = dfl_inputs(64, 17, seed=3, ends=False)
    left = t.long()
    want = (left + 1 - t) * F.cross_entropy(x, left, reduction="none") + (t - left) * F.cross_entropy(
        x, left + 1, reduction="none"
    )
    assert_close(fastloss.distribution_focal_loss(x, t, reduction="none"), want)
    integers = t.floor()
    assert_close(
        fastloss.distribution_focal_loss(x, integers, reduction="none"),
        F.cross_entropy(x, integers.long(), reduction="none"),
    )
    sides = fastloss.distribution_focal_loss(x.reshape(16, 4, 17), t.reshape(16, 4), reduction="none")
    assert_close(sides.reshape(-1), want)


def test_gradcheck_and_opcheck():
    x, t = dfl_inputs(12, 6, seed=4, ends=False)
    x.requires_grad_()
    w = torch.rand(12, dtype=torch.float64)
    for reduction in REDUCTIONS:
        assert torch.autograd.gradcheck(
            lambda v: fastloss.distribution_focal_loss(v, t, reduction=reduction, weight=w), (x,)
        )
    op = torch.ops.fastloss.distribution_focal_loss.default
    for args in [(x, t, None, -1.0, 2), (x, t, w, 4.5, 0), (x.float(), t.float(), None, -1.0, 1)]:
        torch.library.opcheck(op, args)
    loss, lse = op(x.detach(), t, w, -1.0, 1)
    torch.library.opcheck(
        torch.ops.fastloss.distribution_focal_loss_backward.default,
        (torch.ones((), dtype=torch.float64), x.detach(), t, w, lse, -1.0, 1),
    )


@pytest.mark.parametrize("device", DEVICES)
def test_compile_fullgraph(device):
    x, t = dfl_inputs(40, 16, seed=5, device=device, dtype=torch.float32)

    def step(v):
        return fastloss.distribution_focal_loss(v, t, target_max=15 - 0.01)

    for dynamic in (False, True):
        assert_same(
            value_and_grad(torch.compile(step, fullgraph=True, dynamic=dynamic), x),
            value_and_grad(step, x),
            torch.float32,
        )


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(0, 40), bins=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_properties(rows, bins, seed):
    """The loss is >= 0 (a mixture of two cross entropies); it equals
    the reference; the gradient of each row sums to 0 (softmax minus weights that sum to 1)."""
    x, t = dfl_inputs(rows, bins, seed=seed)
    loss, grad = value_and_grad(fastloss.distribution_focal_loss, x, t, reduction="none")
    assert (loss >= 0).all()
    assert_close(loss, reference.distribution_focal_loss(x, t, reduction="none"))
    assert_close(grad.sum(-1), torch.zeros(rows, dtype=torch.float64), atol=1e-12)


def test_bad_input_is_a_clear_error():
    x, t = dfl_inputs(5, 8)
    cases = [
        (lambda: fastloss.distribution_focal_loss(x, t + 8), ValueError, "outside \\[0, 7\\]"),
        (lambda: fastloss.distribution_focal_loss(x, t - 8), ValueError, "outside \\[0, 7\\]"),
        (lambda: fastloss.distribution_focal_loss(x, t[:3]), ValueError, "shape"),
        (lambda: fastloss.distribution_focal_loss(x, t, target_max=7.5), ValueError, "target_max"),
        (lambda: fastloss.distribution_focal_loss(x, t.long()), TypeError, "target"),
        (lambda: fastloss.distribution_focal_loss(x, t.clone().requires_grad_()), ValueError, "target"),
        (lambda: fastloss.distribution_focal_loss(x[:, :0], t), ValueError, "bin"),
        (lambda: fastloss.distribution_focal_loss(x, t, reduction="avg"), ValueError, "reduction"),
        (lambda: ultralytics_face.DFLoss(16)(x, t), ValueError, "pred_dist"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message):
            call()
    # target_max clamps what is outside instead
    assert torch.isfinite(fastloss.distribution_focal_loss(x, t + 8, target_max=6.99))


def test_empty_and_nan():
    x, t = dfl_inputs(0, 17)
    loss, grad = value_and_grad(fastloss.distribution_focal_loss, x, t)
    assert loss.item() == 0 and grad.shape == (0, 17)
    x, t = dfl_inputs(3, 5)
    x[1, 2] = float("nan")
    assert torch.isnan(fastloss.distribution_focal_loss(x, t, reduction="none")[1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_cuda_equals_cpu(dtype):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    x, t = dfl_inputs(4000, 17, seed=6, dtype=dtype)
    for reduction in REDUCTIONS:
        got = value_and_grad(fastloss.distribution_focal_loss, x.cuda(), t.cuda(), reduction=reduction)
        want = value_and_grad(fastloss.distribution_focal_loss, x, t, reduction=reduction)
        assert_same(tuple(v.cpu() for v in got), want, dtype)
