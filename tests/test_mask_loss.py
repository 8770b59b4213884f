"""fastloss.prototype_mask_loss (YOLACT / YOLOv8-seg's mask loss) against its pure-torch reference in
float64 and against ultralytics' single_mask_loss: values and both gradients over dtypes, overlapping
and per-object masks, boxes on and past the borders, at half pixels, empty and reversed; gradcheck,
opcheck, torch.compile, hypothesis properties, determinism across thread counts, bad input."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import fastloss
from fastloss import reference
from fastloss._inputs import mask_inputs
from helpers import DEVICES, FLOAT_DTYPES, assert_close, loss_and_grads, needs, peer


def inputs(dtype=torch.float64, device="cpu", seed=0, **shape):
    """mask_inputs() of batch 2, 60 anchors, 32 prototypes of 40², 5 objects per image (overlapping
    masks, random boxes) unless `shape` says otherwise; coefficients and protos require grad."""
    shape = dict(dict(batch=2, anchors=60, k=32, size=40, objects=5, overlap=True, scenario="random"), **shape)
    g = torch.Generator().manual_seed(seed)
    coefficients, protos, masks, index, boxes, areas, fg = mask_inputs(generator=g, **shape)
    math = torch.float64 if dtype == torch.float64 else torch.float32
    floats = [t.to(device=device, dtype=dtype).requires_grad_() for t in (coefficients, protos)]
    rest = [masks.to(device, math), index.to(device), boxes.to(device, math), areas.to(device, math), fg.to(device)]
    return floats + rest


def against_reference(tensors, overlap, dtype):
    got = loss_and_grads(fastloss.prototype_mask_loss, tensors, overlap=overlap)
    exact = [t.double() if t.is_floating_point() else t for t in tensors]
    exact = [t.detach().requires_grad_(i < 2) for i, t in enumerate(exact)]
    want = loss_and_grads(reference.prototype_mask_loss, exact, overlap=overlap)
    assert got[0].dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    assert_close(got[0], want[0], dtype)
    for g, w in zip(got[1], want[1]):
        assert g.dtype == dtype
        assert_close(g, w, dtype, atol=None if dtype != torch.float32 else 1e-6)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("overlap", [True, False])
@pytest.mark.parametrize("scenario", ["random", "edges"])
def test_matches_the_float64_reference(device, dtype, overlap, scenario):
    against_reference(inputs(overlap=overlap, scenario=scenario, dtype=dtype, device=device), overlap, dtype)


@pytest.mark.parametrize("k, size", [(1, 1), (3, 17), (32, 33), (64, 8), (7, 160)])
def test_every_row_tail_and_prototype_count(k, size):
    """Rows of every length against the SIMD width (1 … 17 lanes, 33, 160), 1 to 64 prototypes."""
    against_reference(inputs(anchors=40, k=k, size=size, seed=k), True, torch.float64)


def test_crop_follows_ultralytics_crop_mask_at_half_pixels_and_borders():
    """x1 ≤ x < x2 on integer pixel indices: a box [0.5, 2.5) keeps columns 1 and 2, [2, 2) none; a box
    past the borders keeps the whole plane; a reversed box keeps nothing (loss 0)."""
    crop_mask = peer("ultralytics.utils.ops").crop_mask
    boxes = torch.tensor(
        [
            [0.5, 1.5, 2.5, 2.5],
            [2.0, 2.0, 2.0, 5.0],
            [-3.0, -3.0, 12.0, 12.0],
            [5.0, 5.0, 1.0, 1.0],
            [1.0, 0.0, 7.0, 3.0],
        ],
        dtype=torch.float64,
    )
    want = crop_mask(torch.ones(len(boxes), 8, 8, dtype=torch.float64), boxes)
    got = reference.mask_loss.crop(boxes[None], 8, 8)[0]
    assert torch.equal(got.double(), want)
    # the kernel's loss is the BCE summed over exactly those pixels
    coefficients = torch.zeros(1, 1, len(boxes), dtype=torch.float64)  # z = 0: each pixel's BCE is log 2
    protos = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
    loss = fastloss.prototype_mask_loss(
        coefficients,
        protos,
        torch.zeros(1, 8, 8, dtype=torch.float64),
        torch.zeros(1, len(boxes), dtype=torch.long),
        boxes[None],
        torch.ones(1, len(boxes), dtype=torch.float64),
        torch.ones(1, len(boxes), dtype=torch.bool),
    )
    torch.testing.assert_close(loss[0], want.sum((1, 2)) * torch.log(torch.tensor(2.0, dtype=torch.float64)) / 64)


@needs("ultralytics")
@pytest.mark.parametrize("overlap", [True, False])
def test_equals_ultralytics_single_mask_loss(overlap):
    """Per image, ultralytics' v8SegmentationLoss.single_mask_loss over its positives (in float32, its
    dtype) equals the sum of the kernel's per-anchor losses."""
    single_mask_loss = peer("ultralytics.utils.loss").v8SegmentationLoss.single_mask_loss
    coefficients, protos, masks, index, boxes, areas, fg = inputs(overlap=overlap, dtype=torch.float32, seed=3)
    loss = fastloss.prototype_mask_loss(coefficients, protos, masks, index, boxes, areas, fg, overlap)
    for b in range(coefficients.shape[0]):
        keep = fg[b]
        if overlap:
            gt = (masks[b] == (index[b][keep] + 1).view(-1, 1, 1)).float()
        else:
            gt = masks[index[b][keep]]
        want = single_mask_loss(gt, coefficients[b].T[keep], protos[b], boxes[b][keep], areas[b][keep])
        torch.testing.assert_close(loss[b].sum(), want, rtol=2e-5, atol=1e-5)


def test_gradcheck_float64():
    coefficients, protos, masks, index, boxes, areas, fg = inputs(anchors=12, k=3, size=7, scenario="edges")
    for overlap_masks, overlap, idx in ((masks, True, index), (None, False, None)):
        if not overlap:
            overlap_masks = (torch.rand(10, 7, 7, generator=torch.Generator().manual_seed(1)) < 0.5).double()
            idx = index % 10
        assert torch.autograd.gradcheck(
            lambda c, p: fastloss.prototype_mask_loss(c, p, overlap_masks, idx, boxes, areas, fg, overlap),
            (coefficients, protos),
        )


def test_opcheck():
    for overlap in (True, False):
        args = inputs(anchors=20, k=4, size=12, overlap=overlap)
        torch.library.opcheck(torch.ops.fastloss.prototype_mask_loss.default, (*args, overlap))


@pytest.mark.parametrize("dynamic", [False, True])
def test_compile_fullgraph(dynamic):
    step = torch.compile(
        lambda *t: fastloss.prototype_mask_loss(*t).sum(), fullgraph=True, dynamic=dynamic, backend="aot_eager"
    )
    for anchors in (20, 33):
        tensors = inputs(anchors=anchors, k=4, size=12, dtype=torch.float32)
        got = loss_and_grads(step, tensors)
        want = loss_and_grads(lambda *t: fastloss.prototype_mask_loss(*t).sum(), tensors)
        torch.testing.assert_close(got[0], want[0])
        for g, w in zip(got[1], want[1]):
            torch.testing.assert_close(g, w)


def test_same_bits_for_every_thread_count_and_call():
    tensors = inputs(batch=3, anchors=200, size=48, dtype=torch.float32, seed=5)
    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2, 1):
            torch.set_num_threads(n)
            results.append(loss_and_grads(fastloss.prototype_mask_loss, tensors))
    finally:
        torch.set_num_threads(threads)
    for other in results[1:]:
        assert torch.equal(other[0], results[0][0])
        for g, w in zip(other[1], results[0][1]):
            assert torch.equal(g, w)


def test_background_anchors_have_no_loss_and_no_gradient():
    coefficients, protos, masks, index, boxes, areas, fg = inputs(seed=7)
    areas = torch.where(fg, areas, torch.zeros_like(areas))  # (off the foreground, any area: even 0)
    loss, (grad_c, grad_p) = loss_and_grads(
        fastloss.prototype_mask_loss, (coefficients, protos, masks, index, boxes, areas, fg)
    )
    assert torch.equal(loss[~fg], torch.zeros_like(loss[~fg]))
    assert torch.isfinite(loss).all()
    assert torch.equal(grad_c.transpose(1, 2)[~fg], torch.zeros_like(grad_c.transpose(1, 2)[~fg]))
    nothing = fg.clone().fill_(False)
    _, (_, grad_p) = loss_and_grads(
        fastloss.prototype_mask_loss, (coefficients, protos, masks, index, boxes, areas, nothing)
    )
    assert torch.equal(grad_p, torch.zeros_like(grad_p))


@pytest.mark.parametrize("batch, anchors, size", [(0, 5, 8), (2, 0, 8), (2, 5, 0)])
def test_empty_inputs(batch, anchors, size):
    tensors = inputs(batch=batch, anchors=anchors, size=size, k=3)
    loss, grads = loss_and_grads(fastloss.prototype_mask_loss, tensors)
    assert loss.shape == (batch, anchors)
    assert torch.equal(loss, torch.zeros_like(loss))
    assert [g.shape for g in grads] == [tensors[0].shape, tensors[1].shape]
    assert all(torch.equal(g, torch.zeros_like(g)) for g in grads)


@settings(max_examples=30, deadline=None)
@given(
    k=st.integers(1, 8),
    size=st.integers(1, 24),
    anchors=st.integers(1, 30),
    overlap=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_properties(k, size, anchors, overlap, seed):
    """Non-negative; the reference's values; a box over the whole plane with area 1 gives the mean BCE
    of the anchor's mask."""
    tensors = inputs(batch=1, anchors=anchors, k=k, size=size, overlap=overlap, seed=seed)
    loss = fastloss.prototype_mask_loss(*tensors, overlap=overlap)
    assert (loss >= 0).all()
    torch.testing.assert_close(loss, reference.prototype_mask_loss(*tensors, overlap=overlap))
    coefficients, protos, masks, index, boxes, areas, fg = tensors
    whole = torch.tensor([-1.0, -1.0, size + 1.0, size + 1.0], dtype=torch.float64).expand_as(boxes)
    full = fastloss.prototype_mask_loss(coefficients, protos, masks, index, whole, torch.ones_like(areas), fg, overlap)
    logits = torch.einsum("k,khw->hw", coefficients[0, :, 0], protos[0])
    target = (masks[0] == index[0, 0] + 1).double() if overlap else masks[index[0, 0]]
    want = torch.nn.functional.binary_cross_entropy_with_logits(logits, target) if fg[0, 0] else torch.tensor(0.0)
    torch.testing.assert_close(full[0, 0], want.to(full.dtype))


def test_bad_index_is_an_error_on_the_cpu():
    coefficients, protos, masks, index, boxes, areas, fg = inputs(overlap=False)
    index = index.clone()
    index[fg][:1] = 99  # (a copy: no effect) — set one positive's index past the rows
    index[0, int(fg[0].nonzero()[0])] = masks.shape[0]
    with pytest.raises(ValueError, match="target_index names no target mask"):
        fastloss.prototype_mask_loss(coefficients, protos, masks, index, boxes, areas, fg, overlap=False)


def bad_calls():
    c, p, m, i, b, a, f = inputs(anchors=10, k=4, size=8)
    yield lambda: fastloss.prototype_mask_loss(c[0], p, m, i, b, a, f), ValueError, "coefficients must be"
    yield lambda: fastloss.prototype_mask_loss(c, p[:, :2], m, i, b, a, f), ValueError, "protos must be"
    yield lambda: fastloss.prototype_mask_loss(c, p, m[:, :4], i, b, a, f), ValueError, "target_masks must be"
    yield lambda: fastloss.prototype_mask_loss(c, p, m, i.double(), b, a, f), ValueError, "target_index must hold"
    yield lambda: fastloss.prototype_mask_loss(c, p, m, i, b[..., :3], a, f), ValueError, "boxes must be"
    yield lambda: fastloss.prototype_mask_loss(c, p, m, i, b, a[:, :3], f), ValueError, "areas must be"
    yield lambda: fastloss.prototype_mask_loss(c, p, m, i, b, a, f[:1]), ValueError, "fg_mask must be"
    yield lambda: fastloss.prototype_mask_loss(c.long(), p, m, i, b, a, f), TypeError, "coefficients must be a float"
    yield lambda: fastloss.prototype_mask_loss(c, p, m, i, b, a, f, overlap="yes"), TypeError, "overlap"
    big = torch.zeros(1, 65, 3, dtype=torch.float64)
    yield (
        lambda: fastloss.prototype_mask_loss(
            big,
            torch.zeros(1, 65, 2, 2, dtype=torch.float64),
            m[:1, :2, :2],
            i[:1, :3],
            b[:1, :3],
            a[:1, :3],
            f[:1, :3],
        ),
        ValueError,
        "at most 64 prototypes",
    )
    yield (
        lambda: fastloss.prototype_mask_loss(c, p, m, i, b.requires_grad_(), a, f),
        ValueError,
        "boxes requires grad",
    )


@pytest.mark.parametrize("call, error, message", list(bad_calls()))
def test_bad_input_is_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_reductions_sum_and_mean_over_the_foreground():
    """Reduction "mean" is the sum over the foreground anchors' count (ultralytics' loss / fg_mask.sum()), 0
    with no foreground, with a working backward and no host sync."""
    tensors = inputs(seed=9)
    per_anchor = fastloss.prototype_mask_loss(*tensors)
    fg = tensors[-1]
    torch.testing.assert_close(fastloss.prototype_mask_loss(*tensors, reduction="sum"), per_anchor.sum())
    torch.testing.assert_close(fastloss.prototype_mask_loss(*tensors, reduction="mean"), per_anchor.sum() / fg.sum())
    nothing = tensors[:-1] + [torch.zeros_like(fg)]
    loss, grads = loss_and_grads(fastloss.prototype_mask_loss, nothing, reduction="mean")
    assert loss.item() == 0 and all(torch.equal(g, torch.zeros_like(g)) for g in grads)
    with pytest.raises(ValueError, match="Invalid reduction"):
        fastloss.prototype_mask_loss(*tensors, reduction="batchmean")
