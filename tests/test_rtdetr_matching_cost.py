"""fastloss.rtdetr_matching_cost against ultralytics 8.4.190's HungarianMatcher cost (its own bbox_iou,
over the concatenated targets, then split per image) and the pure-torch reference, bit for bit:
stacked layers, degenerate and non-finite boxes, other gains, bad input, hypothesis properties,
opcheck, torch.compile and the CUDA kernel at the matcher's scale."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import fastloss
from fastloss._inputs import detr_inputs
from fastloss.reference.rtdetr_matching_cost import rtdetr_matching_cost as reference
from helpers import HAS_CUDA, needs, peer

metrics = peer("ultralytics.utils.metrics")


def inputs(layers=2, batch=3, queries=20, targets=7, dtype=torch.float32, seed=0):
    _, boxes, _, tgt, _ = detr_inputs(batch, queries, 3, targets, (targets,) * batch, layers, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    cls = torch.randn(layers, batch, queries, targets, generator=g)
    return cls.to(dtype), boxes.to(dtype), tgt.to(dtype)


def ultralytics_blocks(full_class, boxes, tgt, counts, gain):
    """ultralytics' HungarianMatcher.forward's C for one layer, as it computes it: every query against
    every image's real targets ((B·Q) × ΣT, class cost full_class), non-finite set to 0, then each
    image's (Q, T_i) block."""
    batch, queries = boxes.shape[:2]
    pred = boxes.reshape(-1, 4)
    gt = torch.cat([tgt[i, :n] for i, n in enumerate(counts)])
    cost_bbox = (pred.unsqueeze(1) - gt.unsqueeze(0)).abs().sum(-1)
    cost_giou = 1.0 - metrics.bbox_iou(pred.unsqueeze(1), gt.unsqueeze(0), xywh=True, GIoU=True).squeeze(-1)
    c = gain["class"] * full_class + gain["bbox"] * cost_bbox + gain["giou"] * cost_giou
    c[c.isnan() | c.isinf()] = 0.0
    c = c.view(batch, queries, -1)
    return [c[i] for i, c in enumerate(c.split(list(counts), -1))]


@needs("ultralytics")
@pytest.mark.parametrize("gain", [{"class": 1, "bbox": 5, "giou": 2}, {"class": 2.0, "bbox": 0.3, "giou": 1.5}])
@pytest.mark.parametrize("special", ["none", "degenerate", "nonfinite"])
def test_bits_equal_ultralytics_matcher_cost(gain, special):
    counts, batch, queries = (7, 3, 0, 5), 4, 50
    _, boxes, tgt = inputs(layers=1, batch=batch, queries=queries, targets=7)
    full = torch.randn(batch * queries, sum(counts), generator=torch.Generator().manual_seed(5))
    if special == "degenerate":
        tgt[:, ::3, 2:] = 0
        boxes[0, :, ::5, 3] = 0
    elif special == "nonfinite":
        full.view(-1)[::17] = float("nan")
        boxes.view(-1)[::29] = float("inf")
        tgt[1, 1, 0] = -float("inf")
    # the padded class cost: image b's queries against its own targets, from ultralytics' matrix
    cls = torch.zeros(batch, queries, 7)
    for i, block in enumerate(full.view(batch, queries, -1).split(list(counts), -1)):
        cls[i, :, : counts[i]] = block[i]
    got = fastloss.rtdetr_matching_cost(cls, boxes[0], tgt, gain["class"], gain["bbox"], gain["giou"])
    for i, (n, block) in enumerate(zip(counts, ultralytics_blocks(full, boxes[0], tgt, counts, gain))):
        assert torch.equal(got[i, :, :n], block), i


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layers", [None, 1, 7])
@pytest.mark.parametrize("targets", [0, 1, 20])
def test_bits_equal_the_reference(dtype, layers, targets):
    cls, boxes, tgt = inputs(layers=layers or 1, batch=5, queries=33, targets=targets, dtype=dtype)
    if layers is None:
        cls, boxes = cls[0], boxes[0]
    got = fastloss.rtdetr_matching_cost(cls, boxes, tgt)
    want = reference(*(t if t.dim() == 4 else t.unsqueeze(0) for t in (cls, boxes)), tgt, 1.0, 5.0, 2.0)
    assert got.shape == cls.shape and got.dtype == dtype
    assert torch.equal(got, want if layers else want[0])


def test_half_boxes_are_taken_in_the_class_costs_dtype():
    cls, boxes, tgt = inputs()
    got = fastloss.rtdetr_matching_cost(cls, boxes.half(), tgt.bfloat16())
    assert torch.equal(got, reference(cls, boxes.half().float(), tgt.bfloat16().float(), 1.0, 5.0, 2.0))


def test_empty_inputs():
    for shape in ((2, 3, 0, 4), (2, 3, 5, 0), (0, 3, 5, 4), (2, 0, 5, 4)):
        cls = torch.zeros(shape)
        layers, b, q, t = shape
        out = fastloss.rtdetr_matching_cost(cls, torch.zeros(layers, b, q, 4), torch.zeros(b, t, 4))
        assert out.shape == shape


@settings(max_examples=60, deadline=None)
@given(
    queries=st.integers(1, 9),
    targets=st.integers(1, 9),
    scale=st.sampled_from([1e-6, 1.0, 1e3, 1e20]),
    zero_sizes=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_properties(queries, targets, scale, zero_sizes, seed):
    """Bitwise the reference at every scale (overflowing areas included), always finite, and with no
    class term at least the L1 + (1 − GIoU) floor of 0: GIoU ≤ 1."""
    g = torch.Generator().manual_seed(seed)
    boxes = torch.rand(1, 2, queries, 4, generator=g) * scale
    tgt = torch.rand(2, targets, 4, generator=g) * scale
    if zero_sizes:
        tgt[..., 2:] = 0
    cls = torch.randn(1, 2, queries, targets, generator=g)
    got = fastloss.rtdetr_matching_cost(cls, boxes, tgt)
    assert torch.equal(got, reference(cls, boxes, tgt, 1.0, 5.0, 2.0))
    assert got.isfinite().all()
    assert (fastloss.rtdetr_matching_cost(cls, boxes, tgt, cost_class=0.0) >= 0).all()


@pytest.mark.parametrize(
    "change, error, message",
    [
        (lambda a: (a[0].half(),) + a[1:], TypeError, "class_cost must be a float32 or float64"),
        (lambda a: (a[0][0, 0],) + a[1:], ValueError, "class_cost must have shape"),
        (lambda a: (a[0], a[1][:, :, :-1]) + a[2:], ValueError, "pred_boxes must have shape"),
        (lambda a: (a[0], a[1].long()) + a[2:], TypeError, "pred_boxes must be a floating"),
        (lambda a: a[:2] + (a[2][:, :-1],), ValueError, "tgt_boxes must have shape"),
        (lambda a: a[:2] + (a[2].to("meta"),), ValueError, "tgt_boxes must be on class_cost's device"),
        (lambda a: (a[0].tolist(),) + a[1:], TypeError, "class_cost must be a torch.Tensor"),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_bad_input_is_a_clear_error(change, error, message):
    with pytest.raises(error, match=message):
        fastloss.rtdetr_matching_cost(*change(inputs()))


def test_bad_gains_are_a_clear_error():
    with pytest.raises(ValueError, match="cost_giou must be finite"):
        fastloss.rtdetr_matching_cost(*inputs(), cost_giou=float("inf"))
    with pytest.raises(TypeError, match="cost_bbox must be a real number"):
        fastloss.rtdetr_matching_cost(*inputs(), cost_bbox="5")


def test_opcheck():
    torch.library.opcheck(torch.ops.fastloss.rtdetr_matching_cost.default, (*inputs(), 1.0, 5.0, 2.0))


@pytest.mark.parametrize("dynamic", [False, True])
def test_compile_fullgraph(dynamic):
    torch._dynamo.reset()
    step = torch.compile(lambda *a: fastloss.rtdetr_matching_cost(*a), fullgraph=True, dynamic=dynamic)
    for queries, targets in ((10, 4), (17, 6)):
        args = inputs(queries=queries, targets=targets)
        assert torch.equal(step(*args), fastloss.rtdetr_matching_cost(*args))


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
def test_cuda_bits_equal_cpu_at_scale():
    args = inputs(layers=7, batch=16, queries=300, targets=100)
    assert torch.equal(
        fastloss.rtdetr_matching_cost(*(t.cuda() for t in args)).cpu(), fastloss.rtdetr_matching_cost(*args)
    )
