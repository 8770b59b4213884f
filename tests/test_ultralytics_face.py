"""fastloss.ultralytics.bbox_iou against ultralytics' own bbox_iou (the installed package, pinned in
requirements-dev.txt; AGPL: a test oracle only), values and gradients, and its BboxLoss patched."""

import itertools

import pytest
import torch

import fastloss.ultralytics as face
from helpers import assert_close, needs, peer, random_boxes, to_format

pytestmark = needs("ultralytics")
metrics = peer("ultralytics.utils.metrics")
FLAGS = [{}, {"GIoU": True}, {"DIoU": True}, {"CIoU": True}, {"GIoU": True, "DIoU": True, "CIoU": True}]


def pairs(n, seed, near=True):
    g = torch.Generator().manual_seed(seed)
    target = random_boxes(n, generator=g)
    return (random_boxes(n, generator=g, near=target) if near else random_boxes(n, generator=g)), target


def compare(box1, box2, dtype=torch.float64, **options):
    results = []
    for fn in (face.bbox_iou, metrics.bbox_iou):
        a, b = box1.detach().clone().requires_grad_(), box2.detach().clone().requires_grad_()
        iou = fn(a, b, **options)
        grads = torch.autograd.grad(iou.sum(), (a, b))
        results.append((iou.detach(), grads))
    (got, got_grads), (want, want_grads) = results
    assert got.shape == want.shape and got.dtype == want.dtype
    assert_close(got, want, dtype)
    for g, w in zip(got_grads, want_grads):
        assert_close(g, w, dtype)


@pytest.mark.parametrize("flags", FLAGS)
@pytest.mark.parametrize("xywh", [False, True])
@pytest.mark.parametrize("eps", [1e-7, 1e-2])
@pytest.mark.parametrize("near", [True, False])
def test_bbox_iou(flags, xywh, eps, near):
    box1, box2 = pairs(300, 1, near)
    if xywh:
        box1, box2 = to_format(box1, "cxcywh"), to_format(box2, "cxcywh")
    compare(box1, box2, xywh=xywh, eps=eps, **flags)


@pytest.mark.parametrize("flags", FLAGS[:4])
def test_bbox_iou_broadcasts(flags):
    """(1, 4) against (n, 4) (ultralytics' metrics), (B, N, 1, 4) against (B, 1, M, 4) (its assigner)."""
    box1, box2 = pairs(40, 2)
    compare(box1[:1], box2, xywh=False, **flags)
    compare(box1.view(2, 20, 1, 4), box2.view(2, 1, 20, 4), xywh=False, **flags)
    compare(box1[0], box2[0], xywh=False, **flags)  # (4,) boxes


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_bbox_iou_dtypes(dtype):
    """float32, and float16: the math runs in float32 here (ultralytics runs it in float16), so the
    float16 result is compared with ultralytics' float32 result on the same float16 boxes."""
    box1, box2 = pairs(200, 3)
    box1, box2 = box1.to(dtype), box2.to(dtype)
    for flags in FLAGS[:4]:
        got = face.bbox_iou(box1, box2, xywh=False, **flags)
        assert got.dtype == metrics.bbox_iou(box1, box2, xywh=False, **flags).dtype == dtype
        want = metrics.bbox_iou(box1.float(), box2.float(), xywh=False, **flags)
        assert_close(got, want, dtype)


def test_bbox_iou_empty_and_bad_input():
    assert face.bbox_iou(torch.zeros(0, 4), torch.zeros(0, 4), CIoU=True).shape == (0, 1)
    with pytest.raises(ValueError, match="broadcast"):
        face.bbox_iou(torch.zeros(3, 4), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\)"):
        face.bbox_iou(torch.zeros(3, 5), torch.zeros(3, 5))


def test_bbox_loss_one_line_switch(monkeypatch):
    """README's one line: ultralytics' BboxLoss (CIoU + DFL) gives the same loss and gradients."""
    loss_module = peer("ultralytics.utils.loss")
    g = torch.Generator().manual_seed(4)
    batch, anchors, reg_max = 2, 64, 16
    anchor_points = torch.rand(anchors, 2, generator=g) * 20
    target = random_boxes(batch * anchors, generator=g, dtype=torch.float32).view(batch, anchors, 4)
    pred_boxes = random_boxes(batch * anchors, generator=g, near=target.view(-1, 4).double(), dtype=torch.float32).view(
        batch, anchors, 4
    )
    pred_dist = torch.randn(batch, anchors, 4 * reg_max, generator=g)
    scores = torch.rand(batch, anchors, 3, generator=g)
    fg = torch.rand(batch, anchors, generator=g) > 0.5
    results = []
    for patched in (False, True):
        if patched:
            monkeypatch.setattr(loss_module, "bbox_iou", face.bbox_iou)
        boxes, dist = pred_boxes.clone().requires_grad_(), pred_dist.clone().requires_grad_()
        loss_iou, loss_dfl = loss_module.BboxLoss(reg_max)(
            dist, boxes, anchor_points, target, scores, scores.sum(), fg, torch.tensor([640, 640]), torch.tensor(8.0)
        )
        results.append((loss_iou.detach(), torch.autograd.grad(loss_iou, boxes)[0]))
    (want, want_grad), (got, got_grad) = results
    assert_close(got, want, torch.float32)
    assert_close(got_grad, want_grad, torch.float32)


def test_flags_take_ultralytics_precedence():
    """CIoU over DIoU over GIoU, as ultralytics' branches."""
    box1, box2 = pairs(20, 5)
    for a, b in itertools.combinations(["GIoU", "DIoU", "CIoU"], 2):
        assert torch.equal(
            face.bbox_iou(box1, box2, xywh=False, **{a: True, b: True}),
            face.bbox_iou(box1, box2, xywh=False, **{b: True}),
        )


@pytest.mark.parametrize("flags", FLAGS[:4])
@pytest.mark.parametrize("xywh", [False, True])
def test_inverted_boxes_as_ultralytics(flags, xywh):
    """Random corners (or negative sizes): ultralytics' formulas on them, not fastloss's repair."""
    g = torch.Generator().manual_seed(6)
    box1, box2 = (
        torch.rand(500, 4, generator=g, dtype=torch.float64) * 10 - 2,
        torch.rand(500, 4, generator=g, dtype=torch.float64) * 10 - 2,
    )
    results = []
    for fn in (face.bbox_iou, metrics.bbox_iou):
        a = box1.clone().requires_grad_()
        iou = fn(a, box2, xywh=xywh, **flags)
        results.append((iou.detach(), torch.autograd.grad(iou.sum(), a)[0]))
    assert_close(results[0][0], results[1][0], rtol=1e-7, atol=1e-9)
    assert_close(results[0][1], results[1][1], rtol=1e-7, atol=1e-9)
