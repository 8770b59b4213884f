"""fastloss.probiou / batch_probiou (and fastloss.ultralytics' same names) against ultralytics
8.4.190's ultralytics.utils.metrics.probiou / batch_probiou: values and gradients in float64 (to
rounding) and float32 / half (to those dtypes' error against the float64 truth), CIoU, floor, leading
dimensions and broadcasting, numpy inputs, degenerate boxes (finite where ultralytics' gradient is
NaN), empty inputs; fp64 gradcheck, hypothesis properties, bad input, opcheck, torch.compile."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import fastloss
import fastloss.ultralytics as face
from fastloss.reference import probiou as reference
from helpers import DEVICES, HAS_CUDA, needs, peer

metrics = peer("ultralytics.utils.metrics")
needs_ultralytics = needs("ultralytics")


def obb(n, seed, dtype=torch.float64, spread=10.0, degenerate=False):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * spread
    wh = torch.rand(n, 2, generator=g, dtype=torch.float64) * 3 + 0.1
    if degenerate:
        wh[::3, 0] = 0
    r = (torch.rand(n, 1, generator=g, dtype=torch.float64) - 0.5) * 2 * math.pi
    return torch.cat([xy, wh, r], -1).to(dtype)


def grads(out, inputs, weight):
    return torch.autograd.grad((out * weight).sum(), inputs)


@needs_ultralytics
@pytest.mark.parametrize("spread", [1.0, 10.0])
def test_batch_probiou_equals_ultralytics_in_float64(spread):
    a, b = obb(50, 0, spread=spread).requires_grad_(), obb(70, 1, spread=spread).requires_grad_()
    got, want = fastloss.batch_probiou(a, b), metrics.batch_probiou(a, b)
    assert got.shape == want.shape == (50, 70) and got.dtype == torch.float64
    torch.testing.assert_close(got, want, rtol=1e-13, atol=1e-14)
    weight = torch.rand(50, 70, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    for x, y in zip(grads(got, (a, b), weight), grads(want, (a, b), weight)):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-12)


@needs_ultralytics
@pytest.mark.parametrize("ciou", [False, True])
@pytest.mark.parametrize("floor", [0.0, 0.25])
@pytest.mark.parametrize("shapes", [((40, 5), (40, 5)), ((6, 5), (1, 5)), ((1, 5), (6, 5))])
def test_probiou_equals_ultralytics_in_float64(ciou, floor, shapes):
    (s1, s2), n1, n2 = shapes, math.prod(shapes[0][:-1]), math.prod(shapes[1][:-1])
    a, b = obb(n1, 3).view(s1).requires_grad_(), obb(n2, 4, spread=2.0).view(s2).requires_grad_()
    got, want = face.probiou(a, b, CIoU=ciou, floor=floor), metrics.probiou(a, b, CIoU=ciou, floor=floor)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-13, atol=1e-14)
    weight = torch.rand(want.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    for x, y in zip(grads(got, (a, b), weight), grads(want, (a, b), weight)):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-12)


@needs_ultralytics
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_lower_precision_is_within_its_error_of_the_float64_truth(dtype):
    """Values and gradients against ultralytics in float64, within what the dtype can hold (half boxes
    are rounded first, then computed in float32); ultralytics' own float32 run as the scale."""
    a64, b64 = obb(60, 6, spread=3.0), obb(80, 7, spread=3.0)
    a, b = a64.to(dtype).requires_grad_(), b64.to(dtype).requires_grad_()
    got = fastloss.batch_probiou(a, b)
    assert got.dtype == dtype
    truth_a, truth_b = a.detach().double().requires_grad_(), b.detach().double().requires_grad_()
    truth = metrics.batch_probiou(truth_a, truth_b)
    tol = 2e-6 if dtype == torch.float32 else float(torch.finfo(dtype).eps)
    torch.testing.assert_close(got.double(), truth, rtol=0, atol=tol)
    weight = torch.rand(60, 80, generator=torch.Generator().manual_seed(8))
    ours = grads(got.float(), (a, b), weight.to(dtype))
    exact = grads(truth, (truth_a, truth_b), weight.double().to(dtype).double())
    if dtype == torch.float32:
        theirs = grads(metrics.batch_probiou(a, b), (a, b), weight)
        for o, e, t in zip(ours, exact, theirs):
            assert (o.double() - e).abs().max() <= 2 * (t.double() - e).abs().max() + 1e-6
    for o, e in zip(ours, exact):
        torch.testing.assert_close(o.double(), e, rtol=2 * tol, atol=tol * e.abs().max().item())


@needs_ultralytics
def test_numpy_boxes_as_ultralytics_takes_them():
    a, b = obb(5, 9).float().numpy(), obb(7, 10).float().numpy()
    got, want = fastloss.batch_probiou(a, b), metrics.batch_probiou(a, b)
    assert isinstance(got, torch.Tensor) and got.dtype == want.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


@needs_ultralytics
def test_degenerate_boxes_give_finite_gradients():
    """Zero-width boxes, identical boxes and far-apart boxes: ultralytics' values; gradients finite
    (ultralytics' are NaN where a box has no area) and ultralytics' wherever its are finite."""
    a = obb(30, 11, degenerate=True)
    b = torch.cat([a[:10], obb(10, 12, spread=1e4), obb(10, 13, degenerate=True)])
    a, b = a.requires_grad_(), b.requires_grad_()
    got, want = fastloss.batch_probiou(a, b), metrics.batch_probiou(a, b)
    torch.testing.assert_close(got, want, rtol=1e-13, atol=1e-14)
    ours, theirs = grads(got, (a, b), 1.0), grads(want, (a, b), 1.0)
    for o, t in zip(ours, theirs):
        assert o.isfinite().all()
        finite = t.isfinite().all(-1)
        torch.testing.assert_close(o[finite], t[finite], rtol=1e-10, atol=1e-12)
    assert not all(t.isfinite().all() for t in theirs)  # (the case the documented rule is for)


def test_leading_dimensions_broadcast_as_the_flattened_pairs():
    """(ultralytics' probiou slices boxes[:, 2:4]: (N, 5) only; fastloss takes any leading dims)"""
    a, b = obb(8, 29).view(2, 4, 5), obb(4, 30)
    got = fastloss.probiou(a, b, CIoU=True)
    assert got.shape == (2, 4, 1)
    want = torch.cat([fastloss.probiou(a[i], b, CIoU=True) for i in range(2)])
    assert torch.equal(got.view(-1, 1), want)


def test_reference_and_kernels_agree_with_the_raw_op():
    a, b = reference.gaussians(obb(13, 14)), reference.gaussians(obb(9, 15))
    torch.testing.assert_close(torch.ops.fastloss.probiou(a, b, 1e-7, False), reference.probiou_op(a, b, 1e-7, False))
    assert torch.equal(
        torch.ops.fastloss.probiou(a[:9], b, 1e-7, True), torch.ops.fastloss.probiou(a[:9], b, 1e-7, False).diagonal()
    )


@pytest.mark.parametrize("floor", [0.0, 0.01])
def test_the_xywhr_op_is_the_reference_pairwise_and_aligned(floor):
    """fastloss::probiou_xywhr (the Gaussians made in the kernel: probiou's op) against the reference
    in float64, values and gradients, both modes; its pairwise mode (no public function uses it) too."""
    # (degenerate boxes, whose gradient hangs on the last bits of cos and sin:
    # test_degenerate_boxes_give_finite_gradients)
    a, b = obb(13, 22).requires_grad_(), obb(9, 23).requires_grad_()
    for aligned, (x, y) in ((False, (a, b)), (True, (a[:9], b))):
        got = torch.ops.fastloss.probiou_xywhr(x, y, 1e-7, aligned, floor)
        want = reference.probiou_xywhr_op(x, y, 1e-7, aligned, floor)
        torch.testing.assert_close(got, want, rtol=1e-13, atol=1e-14)
        for o, t in zip(grads(got, (a, b), 1.0), grads(want, (a, b), 1.0)):
            torch.testing.assert_close(o, t, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(
        lambda x, y: torch.ops.fastloss.probiou_xywhr(x, y, 1e-7, False, floor),
        (obb(4, 24, spread=3.0).requires_grad_(), obb(3, 25, spread=3.0).requires_grad_()),
    )


@pytest.mark.parametrize("aligned", [False, True])
def test_gradcheck_float64(aligned):
    a, b = obb(6, 16, spread=3.0).requires_grad_(), obb(6 if aligned else 4, 17, spread=3.0).requires_grad_()
    fn = (lambda x, y: fastloss.probiou(x, y, floor=0.1)) if aligned else fastloss.batch_probiou
    assert torch.autograd.gradcheck(fn, (a, b))


@pytest.mark.parametrize("n, m", [(0, 4), (3, 0), (0, 0)])
def test_empty_inputs(n, m):
    a, b = obb(n, 18).requires_grad_(), obb(m, 19).requires_grad_()
    out = fastloss.batch_probiou(a, b)
    assert out.shape == (n, m)
    out.sum().backward()
    assert a.grad.shape == (n, 5) and not a.grad.any() and b.grad.shape == (m, 5)
    assert fastloss.probiou(obb(n, 20), obb(n, 21)).shape == (n, 1)


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 8), m=st.integers(1, 8), spread=st.sampled_from([0.1, 3.0, 1e3]), seed=st.integers(0, 2**16))
def test_properties(n, m, spread, seed):
    """Symmetric bit for bit, the aligned pairs the pairwise diagonal (bit for bit on one op; to
    rounding across the two, whose cos and sin are fastloss's and torch's), every value in
    [1 − √(1 + eps), 1], a box against itself the maximum."""
    a, b = obb(n, seed, spread=spread), obb(m, seed + 1, spread=spread)
    ab = fastloss.batch_probiou(a, b)
    assert torch.equal(ab, fastloss.batch_probiou(b, a).T)
    k = min(n, m)
    aligned = fastloss.probiou(a[:k], b[:k])[:, 0]
    torch.testing.assert_close(aligned, ab[:k, :k].diagonal(), rtol=1e-12, atol=1e-14)
    assert torch.equal(aligned, torch.ops.fastloss.probiou_xywhr(a, b, 1e-7, False, 0.0)[:k, :k].diagonal())
    assert (ab <= 1).all() and (ab >= 1 - math.sqrt(1 + 1e-7)).all()
    self_iou = fastloss.batch_probiou(a, a)
    assert (self_iou.diagonal()[:, None] >= self_iou - 1e-12).all()


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: fastloss.batch_probiou(obb(3, 0)[:, :4], obb(3, 1)), ValueError, "obb1 must have shape \\(..., 5\\)"),
        (lambda: fastloss.batch_probiou(obb(3, 0)[None], obb(3, 1)), ValueError, "obb1 must have shape \\(N, 5\\)"),
        (lambda: fastloss.batch_probiou(obb(3, 0), obb(3, 1).long()), TypeError, "obb2 must be a floating"),
        (lambda: fastloss.batch_probiou(obb(3, 0), [1.0] * 5), TypeError, "obb2 must be a torch.Tensor"),
        (lambda: fastloss.batch_probiou(obb(3, 0), obb(3, 1).to("meta")), ValueError, "obb2 must be on"),
        (lambda: fastloss.batch_probiou(obb(3, 0), obb(3, 1), eps=0.0), ValueError, "eps must be > 0"),
        (lambda: fastloss.probiou(obb(3, 0), obb(4, 1)), ValueError, "obb1 and obb2 must broadcast"),
        (lambda: fastloss.probiou(obb(3, 0), obb(3, 1), floor=float("nan")), ValueError, "floor must be finite"),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_bad_input_is_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("aligned", [False, True])
def test_opcheck(aligned):
    a = reference.gaussians(obb(5, 22)).requires_grad_()
    b = reference.gaussians(obb(5 if aligned else 3, 23)).requires_grad_()
    torch.library.opcheck(torch.ops.fastloss.probiou.default, (a, b, 1e-7, aligned))


@pytest.mark.parametrize("aligned", [False, True])
def test_opcheck_of_the_xywhr_op(aligned):
    a, b = obb(5, 22).requires_grad_(), obb(5 if aligned else 3, 23).requires_grad_()
    torch.library.opcheck(torch.ops.fastloss.probiou_xywhr.default, (a, b, 1e-7, aligned, 0.01))
    with pytest.raises(ValueError, match="probiou_xywhr: floor must be finite, got inf"):
        torch.ops.fastloss.probiou_xywhr(a, b, 1e-7, aligned, math.inf)


@pytest.mark.parametrize("dynamic", [False, True])
def test_compile_fullgraph(dynamic):
    torch._dynamo.reset()

    def step(a, b):
        return fastloss.batch_probiou(a, b).sum() + fastloss.probiou(a, a.flip(0), CIoU=True).sum()

    compiled = torch.compile(step, fullgraph=True, dynamic=dynamic)
    for n, m in ((5, 4), (9, 7)):
        a, b = obb(n, 24).requires_grad_(), obb(m, 25).requires_grad_()
        got, want = compiled(a, b), step(a, b)
        torch.testing.assert_close(got, want)
        torch.testing.assert_close(torch.autograd.grad(got, (a, b)), torch.autograd.grad(want, (a, b)))


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("device", DEVICES[1:])
def test_cuda_equals_cpu_at_scale(device):
    a, b = obb(2000, 26, torch.float32), obb(3000, 27, torch.float32)
    ca, cb = a.to(device).requires_grad_(), b.to(device).requires_grad_()
    out = fastloss.batch_probiou(ca, cb)
    assert torch.equal(out.cpu(), fastloss.batch_probiou(a, b))
    weight = torch.rand(2000, 3000, generator=torch.Generator().manual_seed(28))
    xa, xb = a.requires_grad_(), b.requires_grad_()
    for x, y in zip(grads(out, (ca, cb), weight.to(device)), grads(fastloss.batch_probiou(xa, xb), (xa, xb), weight)):
        torch.testing.assert_close(x.cpu(), y, rtol=1e-5, atol=1e-6)


def test_numpy_stays_supported_without_the_peer():
    out = fastloss.batch_probiou(np.zeros((2, 5), np.float32) + 1, np.ones((3, 5), np.float32))
    assert out.shape == (2, 3) and out.dtype == torch.float32
