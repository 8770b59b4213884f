"""Pairwise box metrics (fastloss.box_iou_matrix, torchvision's box_iou family as drop-ins,
fastloss.mmdet.bbox_overlaps) against torchvision, mmdet 3.3.0's bbox_overlaps and the pure-torch
reference: values, gradients of both sets, dtypes, formats, batching, edge cases, bad input,
opcheck and torch.compile."""

import pytest
import torch

import fastloss
import fastloss.mmdet
from fastloss.reference import box_matrix as reference
from helpers import DEVICES, HAS_CUDA, assert_close, needs, peer, random_boxes, to_format
from mmdet_peer import load

torchvision_ops = peer("torchvision.ops")
needs_torchvision = needs("torchvision.ops")
hypothesis = peer("hypothesis")
DROP_INS = ["box_iou", "generalized_box_iou", "distance_box_iou", "complete_box_iou"]
KIND_OF = {"box_iou": "iou", "generalized_box_iou": "giou", "distance_box_iou": "diou", "complete_box_iou": "ciou"}
KINDS = list(reference.KINDS)
# (rtol, atol) against torchvision, which rounds its half inputs' differences in half before upcasting
PEER_TOLERANCE = {
    torch.float64: (1e-12, 1e-12),
    torch.float32: (2e-6, 2e-6),
    torch.float16: (0, 2e-3),
    torch.bfloat16: (0, 2e-2),
}


def boxes(*shape, dtype=torch.float64, device="cpu", seed=0, spread=10.0):
    """(*shape, 4) valid xyxy boxes, many overlapping."""
    g = torch.Generator().manual_seed(seed)
    n = 1
    for s in shape:
        n *= s
    return random_boxes(n, generator=g, scale=spread).reshape(*shape, 4).to(device=device, dtype=dtype)


def grads_of(fn, a, b, upstream):
    a, b = a.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
    out = fn(a, b)
    return (out.detach(),) + torch.autograd.grad((out * upstream.to(out.dtype)).sum(), (a, b))


@pytest.fixture(scope="module")
def mmdet_overlaps(tmp_path_factory):
    return load(str(tmp_path_factory.mktemp("mmdet")))["iou_loss"].bbox_overlaps


# ---------------------------------------------------------------------------------- torchvision


@needs_torchvision
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", DROP_INS)
@pytest.mark.parametrize("shape", [((37,), (53,)), ((2, 3, 17), (3, 40)), ((1, 5), (4, 1))], ids=str)
def test_drop_ins_equal_torchvision(name, dtype, device, shape):
    a, b = boxes(*shape[0], dtype=dtype, device=device), boxes(*shape[1], dtype=dtype, device=device, seed=1)
    got, want = getattr(fastloss, name)(a, b), getattr(torchvision_ops, name)(a, b)
    assert got.dtype == want.dtype and got.shape == want.shape
    rtol, atol = PEER_TOLERANCE[dtype]
    torch.testing.assert_close(got, want, rtol=rtol, atol=atol)


@needs_torchvision
@pytest.mark.parametrize("name", DROP_INS)
def test_drop_in_gradients_equal_autograd_through_torchvision(name):
    """Both sets' gradients (summed over the other set) under a random upstream gradient; CIoU's α is
    held constant in both."""
    a, b = boxes(2, 23), boxes(2, 31, seed=1)
    upstream = torch.randn(2, 23, 31, dtype=torch.float64)
    got = grads_of(getattr(fastloss, name), a, b, upstream)
    want = grads_of(getattr(torchvision_ops, name), a, b, upstream)
    for x, y in zip(got, want):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-12)


@needs_torchvision
def test_integer_boxes_as_torchvision():
    """torchvision's own int test: int16/32/64 boxes give float32 IoU."""
    int_boxes = [[0, 0, 100, 100], [0, 0, 50, 50], [200, 200, 300, 300], [0, 0, 25, 25]]
    for dtype in (torch.int16, torch.int32, torch.int64):
        b = torch.tensor(int_boxes, dtype=dtype)
        for name in DROP_INS:
            got, want = getattr(fastloss, name)(b, b), getattr(torchvision_ops, name)(b, b)
            assert got.dtype == want.dtype == torch.float32
            torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


@needs_torchvision
@pytest.mark.parametrize("fmt", ["xyxy", "xywh", "cxcywh"])
def test_box_iou_formats_equal_torchvision(fmt):
    a, b = to_format(boxes(29, dtype=torch.float32), fmt), to_format(boxes(33, dtype=torch.float32, seed=1), fmt)
    torch.testing.assert_close(
        fastloss.box_iou(a, b, fmt=fmt), torchvision_ops.box_iou(a, b, fmt=fmt), rtol=2e-6, atol=2e-6
    )


@needs_torchvision
def test_degenerate_boxes_give_torchvision_s_nan_and_numbers():
    """Zero-area and identical boxes, touching boxes, a point box: NaN exactly where torchvision's
    is (0/0), equal numbers elsewhere."""
    b = torch.tensor([[0.0, 0, 0, 0], [0, 0, 1, 1], [1, 0, 2, 1], [0, 0, 1, 1], [2, 2, 2, 5], [-1, -1, 3, 3]])
    for name in DROP_INS:
        got, want = getattr(fastloss, name)(b, b), getattr(torchvision_ops, name)(b, b)
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6, equal_nan=True)


# ---------------------------------------------------------------------------------------- mmdet


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16])
@pytest.mark.parametrize("mode", ["iou", "iof", "giou"])
@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("batch", [(), (2,), (2, 3)], ids=str)
def test_bbox_overlaps_equals_mmdet(mmdet_overlaps, mode, aligned, batch, dtype):
    a = boxes(*batch, 19, dtype=dtype)
    b = boxes(*batch, 19 if aligned else 26, dtype=dtype, seed=1)
    for eps in (1e-6, 0.5):
        got = fastloss.mmdet.bbox_overlaps(a, b, mode, aligned, eps)
        want = mmdet_overlaps(a, b, mode, aligned, eps)
        assert got.dtype == want.dtype and got.shape == want.shape
        tol = {torch.float16: 2e-3}.get(dtype, 1e-6)
        torch.testing.assert_close(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("mode", ["iou", "iof", "giou"])
@pytest.mark.parametrize("aligned", [False, True])
def test_bbox_overlaps_gradients_equal_mmdet(mmdet_overlaps, mode, aligned):
    a = boxes(2, 11)
    b = boxes(2, 11 if aligned else 14, seed=1)
    b[0, 0] = torch.tensor([3.0, 3.0, 3.0, 3.0])  # a zero-area box: the floors hold
    upstream = torch.randn((2, 11) if aligned else (2, 11, 14), dtype=torch.float64)
    got = grads_of(lambda x, y: fastloss.mmdet.bbox_overlaps(x, y, mode, aligned), a, b, upstream)
    want = grads_of(lambda x, y: mmdet_overlaps(x, y, mode, aligned), a, b, upstream)
    for x, y in zip(got, want):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("aligned", [False, True])
def test_bbox_overlaps_empty_as_mmdet(mmdet_overlaps, aligned):
    for a, b in (
        (torch.zeros(0, 4), boxes(5, dtype=torch.float32)),
        (torch.zeros(2, 0, 4), torch.zeros(2, 0, 4)),
        (torch.zeros(0, 4), torch.zeros(0, 4)),
    ):
        if aligned and a.shape[-2] != b.shape[-2]:
            continue
        got, want = fastloss.mmdet.bbox_overlaps(a, b, is_aligned=aligned), mmdet_overlaps(a, b, is_aligned=aligned)
        assert got.shape == want.shape and got.dtype == want.dtype


def test_bbox_overlaps_refuses_what_mmdet_asserts():
    a = boxes(3)
    with pytest.raises(ValueError, match="Unsupported mode"):
        fastloss.mmdet.bbox_overlaps(a, a, mode="diou")
    with pytest.raises(ValueError, match="same batch shape"):
        fastloss.mmdet.bbox_overlaps(boxes(2, 3), boxes(3, 3))
    with pytest.raises(ValueError, match="as many boxes"):
        fastloss.mmdet.bbox_overlaps(boxes(3), boxes(4), is_aligned=True)


# -------------------------------------------------------------------------- the core function


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("box_format", ["xyxy", "xywh", "cxcywh"])
def test_every_kind_and_format_equals_the_reference(kind, box_format, device):
    a = to_format(boxes(2, 21, spread=4.0), box_format).to(device)
    b = to_format(boxes(2, 35, seed=1, spread=4.0), box_format).to(device)
    upstream = torch.randn(2, 21, 35, dtype=torch.float64, device=device)
    fn = lambda x, y: fastloss.box_iou_matrix(x, y, kind, box_format=box_format, eps=1e-3)  # noqa: E731
    code = reference.FORMATS[box_format]
    ref = lambda x, y: reference.box_iou_matrix(x, y, reference.KINDS[kind], code, 1e-3, 0, False, 0)  # noqa: E731
    for got, want in zip(grads_of(fn, a, b, upstream), grads_of(ref, a, b, upstream)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "ciou"])
def test_gradcheck(kind):
    a, b = boxes(3, 5).requires_grad_(), boxes(3, 7, seed=1).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, y: fastloss.box_iou_matrix(x, y, kind), (a, b))


@pytest.mark.parametrize("out_dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_out_dtype_rounds_the_math_type_result(out_dtype, dtype):
    a, b = boxes(40, dtype=dtype), boxes(50, dtype=dtype, seed=1)
    got = fastloss.box_iou_matrix(a, b, "giou", out_dtype=out_dtype)
    want = fastloss.box_iou_matrix(a, b, "giou")
    assert got.dtype == out_dtype and want.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    assert torch.equal(got, want.to(out_dtype))


@pytest.mark.parametrize("kind", KINDS)
def test_aligned_pairs_are_the_diagonal(kind):
    a, b = boxes(4, 33), boxes(4, 33, seed=1)
    from fastloss.box_matrix import pairwise

    aligned = pairwise(a, b, kind, aligned=True)
    assert torch.equal(aligned, torch.diagonal(fastloss.box_iou_matrix(a, b, kind), dim1=-2, dim2=-1))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n, m", [(0, 5), (5, 0), (0, 0)])
def test_empty_sets_give_empty_matrices_and_zero_gradients(kind, n, m):
    a, b = boxes(2, n).requires_grad_(), boxes(2, m, seed=1).requires_grad_()
    out = fastloss.box_iou_matrix(a, b, kind)
    assert out.shape == (2, n, m)
    ga, gb = torch.autograd.grad(out.sum(), (a, b))
    assert ga.shape == a.shape and gb.shape == b.shape and not ga.any() and not gb.any()


@pytest.mark.parametrize("kind", KINDS)
def test_nan_boxes_make_only_their_own_rows_and_columns_nan(kind):
    a, b = boxes(6), boxes(9, seed=1)
    a[2, 0], b[4, 3] = float("nan"), float("nan")
    out = fastloss.box_iou_matrix(a, b, kind)
    nan = torch.zeros(6, 9, dtype=torch.bool)
    nan[2, :], nan[:, 4] = True, True
    assert torch.equal(out.isnan(), nan)


def test_backward_is_deterministic_across_thread_counts():
    a, b = boxes(3, 301, dtype=torch.float32).requires_grad_(), boxes(3, 517, dtype=torch.float32, seed=1)
    b.requires_grad_()
    upstream = torch.randn(3, 301, 517)
    results = []
    threads = torch.get_num_threads()
    try:
        for n in (1, threads, 1):
            torch.set_num_threads(n)
            results.append(torch.autograd.grad((fastloss.box_iou_matrix(a, b, "ciou") * upstream).sum(), (a, b)))
    finally:
        torch.set_num_threads(threads)
    for r in results[1:]:
        assert all(torch.equal(x, y) for x, y in zip(r, results[0]))


def test_backward_keeps_nothing_of_n_by_m():
    """A forward + backward of the matrix's sum allocates the output and nothing else of N × M (the
    expanded gradient of the sum is read through its zero strides)."""
    from fastloss import bench

    a, b = boxes(400, dtype=torch.float32).requires_grad_(), boxes(3000, dtype=torch.float32, seed=1)
    a.requires_grad_()
    peak = bench.peak_bytes(lambda a, b: fastloss.box_iou_matrix(a, b, "diou"), {"a": a, "b": b}, ["a", "b"], a.device)
    assert peak <= 1.1 * 400 * 3000 * 4, peak


def test_symmetric_kinds_are_transposes():
    a, b = boxes(2, 17), boxes(2, 29, seed=1)
    for kind in ("iou", "giou", "diou", "ciou", "eiou"):
        assert torch.equal(fastloss.box_iou_matrix(a, b, kind), fastloss.box_iou_matrix(b, a, kind).transpose(-1, -2))


if hypothesis is not None:
    from hypothesis import given
    from hypothesis import strategies as st

    coords = st.floats(-1e3, 1e3, allow_nan=False, width=32)

    sides = st.floats(0.0009765625, 1e3, width=32)
    box_lists = st.lists(st.tuples(coords, coords, sides, sides), min_size=1, max_size=20)

    def corners(xywh, dtype):
        b = torch.tensor(xywh, dtype=torch.float64)
        return torch.cat([b[:, :2], b[:, :2] + b[:, 2:]], -1).to(dtype)

    @given(box_lists, box_lists, st.sampled_from([torch.float32, torch.float64]))
    def test_bounds_of_valid_boxes(xywh1, xywh2, dtype):
        """For boxes of positive area: IoU ∈ [0, 1] (1 on identical boxes), −1 ≤ GIoU ≤ IoU, IoF ≥ IoU,
        DIoU ≤ IoU, bitwise the same whichever set comes first."""
        a, b = corners(xywh1, dtype), corners(xywh2, dtype)
        iou, giou = fastloss.box_iou_matrix(a, b, "iou"), fastloss.box_iou_matrix(a, b, "giou")
        iof, diou = fastloss.box_iou_matrix(a, b, "iof"), fastloss.box_iou_matrix(a, b, "diou")
        slack = 1e-5 if dtype == torch.float32 else 1e-12
        assert ((iou >= 0) & (iou <= 1)).all()
        assert (torch.diagonal(fastloss.box_iou_matrix(a, a, "iou")) == 1).all()
        assert ((giou >= -1 - slack) & (giou <= iou + slack)).all()
        assert (iof >= iou - slack).all() and (diou <= iou).all()
        assert torch.equal(iou, fastloss.box_iou_matrix(b, a, "iou").T)


# ------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: fastloss.box_iou_matrix(boxes(3)[:, :3], boxes(3)), ValueError, "boxes1 must have shape"),
        (lambda: fastloss.box_iou_matrix(boxes(3), boxes(3)[0]), ValueError, "boxes2 must have shape"),
        (lambda: fastloss.box_iou_matrix(boxes(2, 3), boxes(3, 3)), ValueError, "do not broadcast"),
        (lambda: fastloss.box_iou_matrix(boxes(3), boxes(3), "siou"), ValueError, "kind must be one of"),
        (lambda: fastloss.box_iou_matrix(boxes(3), boxes(3), box_format="yxyx"), ValueError, "box_format"),
        (lambda: fastloss.box_iou_matrix(boxes(3), boxes(3), eps=-1.0), ValueError, "eps must be >= 0"),
        (lambda: fastloss.box_iou_matrix(boxes(3), boxes(3), out_dtype=torch.int32), ValueError, "out_dtype"),
        (lambda: fastloss.box_iou_matrix(boxes(3) > 0, boxes(3)), TypeError, "boxes1 must be a floating"),
        (lambda: fastloss.box_iou_matrix([[0, 0, 1, 1]], boxes(3)), TypeError, "boxes1 must be a torch.Tensor"),
        (lambda: fastloss.box_iou_matrix(boxes(3), boxes(3, device="meta")), ValueError, "same device"),
        (lambda: fastloss.box_iou(boxes(3), boxes(3), fmt="cxcywhr"), ValueError, "rotated"),
        (
            lambda: torch.ops.fastloss.box_iou_matrix(boxes(1, 3), boxes(2, 3), 0, 0, 0.0, 0, False, 0),
            ValueError,
            "same batch size",
        ),
        (
            lambda: torch.ops.fastloss.box_iou_matrix(boxes(1, 3), boxes(1, 3), 2, 0, 0.0, 1, False, 0),
            ValueError,
            "unknown convention",
        ),
        (
            lambda: torch.ops.fastloss.box_iou_matrix(boxes(1, 3), boxes(1, 4), 0, 0, 0.0, 0, True, 0),
            ValueError,
            "aligned pairs",
        ),
        (
            lambda: torch.ops.fastloss.box_iou_matrix(boxes(1, 3), boxes(1, 3), 0, 0, float("nan"), 0, False, 0),
            ValueError,
            "eps must be finite",
        ),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_bad_input_is_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


# ---------------------------------------------------------------------------- opcheck, compile


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("kind", [0, 3, 5])
def test_opcheck(kind, aligned):
    a, b = boxes(2, 9).requires_grad_(), boxes(2, 9, seed=1).requires_grad_()
    torch.library.opcheck(torch.ops.fastloss.box_iou_matrix.default, (a, b, kind, 0, 1e-7, 0, aligned, 0))
    mixed = (a.float(), b.half(), kind, 1, 1e-7, 0, aligned, 1)
    torch.library.opcheck(torch.ops.fastloss.box_iou_matrix.default, mixed)


@pytest.mark.parametrize("dynamic", [False, True])
def test_compile_fullgraph(dynamic):
    torch._dynamo.reset()

    def step(a, b):
        return (
            fastloss.box_iou_matrix(a, b, "ciou", out_dtype=torch.bfloat16).float().sum()
            + fastloss.mmdet.bbox_overlaps(a, b, "giou").sum()
        )

    compiled = torch.compile(step, fullgraph=True, dynamic=dynamic)
    for n, m in ((5, 9), (7, 13), (11, 4)):
        a, b = boxes(n, dtype=torch.float32).requires_grad_(), boxes(m, dtype=torch.float32, seed=1)
        got, want = compiled(a, b), step(a, b)
        assert_close(got, want)
        assert_close(torch.autograd.grad(got, a)[0], torch.autograd.grad(want, a)[0])


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("kind", KINDS)
def test_cuda_matches_cpu(kind):
    a, b = boxes(3, 300, dtype=torch.float32), boxes(3, 700, dtype=torch.float32, seed=1)
    upstream = torch.randn(3, 300, 700)
    fn = lambda x, y: fastloss.box_iou_matrix(x, y, kind)  # noqa: E731
    want = grads_of(fn, a, b, upstream)
    got = grads_of(fn, a.cuda(), b.cuda(), upstream.cuda())
    for x, y in zip(got, want):
        torch.testing.assert_close(x.cpu(), y, rtol=2e-5, atol=2e-5)
