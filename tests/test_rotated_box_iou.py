"""fastloss.rotated_box_iou against shapely (the intersection polygon's exact area) on random, touching,
nested, identical, flush and degenerate boxes, pairwise and aligned, float64 to rounding and float32
within its error; gradients against the pure-torch reference (fp64 gradcheck where the IoU is smooth);
hypothesis properties, bad input, empty inputs, opcheck, torch.compile."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import fastloss
from fastloss.reference import rotated_box_iou as reference
from fastloss.reference.oriented import xywhr_rows
from fastloss.rotated_box_iou import rotated_boxes
from helpers import DEVICES, HAS_CUDA, needs, peer

geometry = peer("shapely.geometry")
needs_shapely = needs("shapely")


def polygon(box):
    x, y, w, h, r = box.tolist()
    c, s = math.cos(r), math.sin(r)
    w, h = max(w, 0.0), max(h, 0.0)
    return geometry.Polygon(
        [
            (x + a * w / 2 * c - b * h / 2 * s, y + a * w / 2 * s + b * h / 2 * c)
            for a, b in ((1, 1), (-1, 1), (-1, -1), (1, -1))
        ]
    )


def shapely_iou(boxes1, boxes2, aligned=False, eps=1e-7):
    pairs = zip(boxes1, boxes2) if aligned else ((a, b) for a in boxes1 for b in boxes2)
    values = []
    for a, b in pairs:
        p, q = polygon(a), polygon(b)
        inter = p.intersection(q).area
        values.append(inter / (p.area + q.area - inter + eps))
    out = torch.tensor(values, dtype=torch.float64)
    return out if aligned else out.view(len(boxes1), len(boxes2))


def boxes(n, kind="random", seed=0):
    return rotated_boxes(n, kind, torch.Generator().manual_seed(seed))


@needs_shapely
@pytest.mark.parametrize("kind", ["random", "flush", "degenerate"])
@pytest.mark.parametrize("aligned", [False, True])
def test_equals_shapely_in_float64(kind, aligned):
    a, b = boxes(30, kind, 1), boxes(30 if aligned else 40, kind, 2)
    got = fastloss.rotated_box_iou(a, b, aligned=aligned)
    want = shapely_iou(a, b, aligned)
    assert got.shape == want.shape and got.dtype == torch.float64
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    assert (want > 0).any()


@needs_shapely
def test_touching_nested_identical_and_far_boxes():
    base = torch.tensor([[2.0, 1.0, 2.0, 1.0, 0.3]], dtype=torch.float64)
    c, s = math.cos(0.3), math.sin(0.3)
    cases = torch.cat(
        [
            base,  # identical
            base + torch.tensor([[2.0 * c, 2.0 * s, 0, 0, 0]]),  # flush along the width: touching
            base + torch.tensor([[0, 0, -1.0, -0.5, 0]]),  # nested, same centre
            base + torch.tensor([[0.5 * c, 0.5 * s, -1.0, 0, 0]]),  # nested, sharing three edges
            base + torch.tensor([[0, 0, 0, 0, math.pi]]),  # the same box turned half a turn
            base + torch.tensor([[0, 0, 0, 0, math.pi / 2]]),  # a cross
            base + torch.tensor([[1e4, -3e4, 0, 0, 0]]),  # far away
        ]
    )
    got = fastloss.rotated_box_iou(base.expand(len(cases), 5), cases, aligned=True)
    # (half a turn: cos π and sin π leave the edges 1e-16 apart, nearly parallel: 1e-9 of the area)
    torch.testing.assert_close(got, shapely_iou(base.expand(len(cases), 5), cases, True), rtol=1e-9, atol=1e-12)
    assert got[0] > 1 - 1e-6 and got[1] == 0 and got[4] > 1 - 1e-6


@needs_shapely
def test_far_from_the_origin_keeps_its_digits_in_float32():
    """Coordinates are taken relative to the first box's centre: boxes at 10⁴ px in float32 still give
    the IoU to float32's error of their sizes."""
    a, b = boxes(20, seed=3), boxes(20, seed=4)
    a[:, :2] += 1e4
    b[:, :2] += 1e4
    a32, b32 = a.float(), b.float()
    got = fastloss.rotated_box_iou(a32, b32, aligned=True)
    want = shapely_iou(a32.double(), b32.double(), True)
    torch.testing.assert_close(got.double(), want, rtol=0, atol=2e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_lower_precision_is_within_its_error_of_the_float64_value(dtype):
    a, b = boxes(40, seed=5).to(dtype), boxes(50, seed=6).to(dtype)
    got = fastloss.rotated_box_iou(a, b)
    assert got.dtype == dtype
    want = fastloss.rotated_box_iou(a.double(), b.double())
    tol = 2e-6 if dtype == torch.float32 else float(torch.finfo(dtype).eps)
    torch.testing.assert_close(got.double(), want, rtol=0, atol=tol)


@pytest.mark.parametrize("aligned", [False, True])
def test_gradients_equal_the_reference(aligned):
    """Where the IoU is smooth (random boxes: no two edges parallel and touching), the kernels' gradient
    is the reference's autograd, rows and angles included."""
    a, b = boxes(30, seed=7), boxes(30 if aligned else 20, seed=8)
    ra, rb = xywhr_rows(a).requires_grad_(), xywhr_rows(b).requires_grad_()
    out = torch.ops.fastloss.rotated_box_iou(ra, rb, 1e-7, aligned)
    ref = reference.rotated_box_iou_op(ra, rb, 1e-7, aligned)
    torch.testing.assert_close(out, ref, rtol=1e-13, atol=1e-14)
    w = torch.rand(out.shape, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    for x, y in zip(torch.autograd.grad((out * w).sum(), (ra, rb)), torch.autograd.grad((ref * w).sum(), (ra, rb))):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("aligned", [False, True])
def test_gradcheck_float64(aligned):
    a, b = boxes(5, seed=10).requires_grad_(), boxes(5 if aligned else 4, seed=11).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, y: fastloss.rotated_box_iou(x, y, aligned=aligned), (a, b))


def test_flush_and_degenerate_boxes_give_finite_gradients():
    for kind in ("flush", "degenerate"):
        a, b = boxes(60, kind, 12).requires_grad_(), boxes(60, kind, 13).requires_grad_()
        for g in torch.autograd.grad(fastloss.rotated_box_iou(a, b).sum(), (a, b)):
            assert g.isfinite().all()


@pytest.mark.parametrize("n, m", [(0, 4), (3, 0), (0, 0)])
def test_empty_inputs(n, m):
    a, b = boxes(n, seed=14).requires_grad_(), boxes(m, seed=15).requires_grad_()
    out = fastloss.rotated_box_iou(a, b)
    assert out.shape == (n, m)
    out.sum().backward()
    assert a.grad.shape == (n, 5) and b.grad.shape == (m, 5)
    assert fastloss.rotated_box_iou(boxes(n, seed=16), boxes(n, seed=17), aligned=True).shape == (n,)


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 8), m=st.integers(1, 8), kind=st.sampled_from(["random", "flush"]), seed=st.integers(0, 2**16))
def test_properties(n, m, kind, seed):
    """In [0, 1]; symmetric (to rounding: each pair is computed around its first box); the aligned
    pairs the pairwise diagonal; a box against itself 1 (w, h > 0); invariant under a common shift."""
    a, b = boxes(n, kind, seed), boxes(m, kind, seed + 1)
    ab = fastloss.rotated_box_iou(a, b)
    assert (ab >= 0).all() and (ab <= 1).all()
    torch.testing.assert_close(ab, fastloss.rotated_box_iou(b, a).T, rtol=1e-12, atol=1e-12)
    k = min(n, m)
    assert torch.equal(fastloss.rotated_box_iou(a[:k], b[:k], aligned=True), ab[:k, :k].diagonal())
    shift = torch.tensor([37.0, -11.0, 0, 0, 0], dtype=torch.float64)
    torch.testing.assert_close(fastloss.rotated_box_iou(a + shift, b + shift), ab, rtol=1e-9, atol=1e-12)
    assert (fastloss.rotated_box_iou(a, a, aligned=True) > 1 - 1e-6).all()


@pytest.mark.parametrize(
    "call, error, message",
    [
        (
            lambda: fastloss.rotated_box_iou(boxes(3)[:, :4], boxes(3)),
            ValueError,
            "boxes1 must have shape \\(..., 5\\)",
        ),
        (lambda: fastloss.rotated_box_iou(boxes(3)[None], boxes(3)), ValueError, "boxes1 must have shape \\(N, 5\\)"),
        (lambda: fastloss.rotated_box_iou(boxes(3), boxes(3).long()), TypeError, "boxes2 must be a floating"),
        (lambda: fastloss.rotated_box_iou(boxes(3), boxes(4), aligned=True), ValueError, "aligned pairs need"),
        (lambda: fastloss.rotated_box_iou(boxes(3), boxes(3), eps=0.0), ValueError, "eps must be > 0"),
        (lambda: fastloss.rotated_box_iou(boxes(3), boxes(3).to("meta")), ValueError, "boxes2 must be on"),
        (
            lambda: torch.ops.fastloss.rotated_box_iou(boxes(3), boxes(3), 1e-7, False),
            ValueError,
            "must have shape \\(N, 6\\)",
        ),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_bad_input_is_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("aligned", [False, True])
def test_opcheck(aligned):
    a = xywhr_rows(boxes(5, seed=18)).requires_grad_()
    b = xywhr_rows(boxes(5 if aligned else 3, seed=19)).requires_grad_()
    torch.library.opcheck(torch.ops.fastloss.rotated_box_iou.default, (a, b, 1e-7, aligned))


@pytest.mark.parametrize("dynamic", [False, True])
def test_compile_fullgraph(dynamic):
    torch._dynamo.reset()

    def step(a, b):
        return fastloss.rotated_box_iou(a, b).sum() + fastloss.rotated_box_iou(a, a.flip(0), aligned=True).sum()

    compiled = torch.compile(step, fullgraph=True, dynamic=dynamic)
    for n, m in ((5, 4), (9, 7)):
        a, b = boxes(n, seed=20).requires_grad_(), boxes(m, seed=21).requires_grad_()
        got, want = compiled(a, b), step(a, b)
        torch.testing.assert_close(got, want)
        torch.testing.assert_close(torch.autograd.grad(got, (a, b)), torch.autograd.grad(want, (a, b)))


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("device", DEVICES[1:])
def test_cuda_equals_cpu(device):
    a, b = boxes(500, seed=22).float(), boxes(700, seed=23).float()
    ca, cb = a.to(device).requires_grad_(), b.to(device).requires_grad_()
    out = fastloss.rotated_box_iou(ca, cb)
    torch.testing.assert_close(out.cpu(), fastloss.rotated_box_iou(a, b), rtol=1e-5, atol=1e-6)
    xa, xb = a.clone().requires_grad_(), b.clone().requires_grad_()
    for x, y in zip(
        torch.autograd.grad(out.sum(), (ca, cb)), torch.autograd.grad(fastloss.rotated_box_iou(xa, xb).sum(), (xa, xb))
    ):
        torch.testing.assert_close(x.cpu(), y, rtol=1e-4, atol=1e-5)
