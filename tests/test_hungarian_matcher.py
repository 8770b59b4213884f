"""The Hungarian matcher faces: fastloss.ultralytics.HungarianMatcher against ultralytics 8.4.190's
(RT-DETR's matcher), fastloss.HungarianMatcher against Deformable DETR / DINO's matcher written from
its formula (torch.cdist, torchvision's generalized_box_iou, scipy per image: the repositories are
not packages). Same pairs, image for image; on the predictions' device; no host sync on the way."""

import pytest
import torch

import fastloss
import fastloss.ultralytics
from helpers import needs, peer

ultralytics_ops = peer("ultralytics.models.utils.ops")
scipy_optimize = peer("scipy.optimize")
torchvision_ops = peer("torchvision.ops")

GROUPS = [[5, 3], [0, 7], [0, 0], [1, 1, 1], [40, 2]]  # (40 > the 30 queries: more targets than queries)


def rtdetr_inputs(groups, queries=30, classes=12, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    batch, total = len(groups), sum(groups)
    centre = torch.rand(batch, queries, 2, generator=g) * 0.6 + 0.2
    pred_bboxes = torch.cat([centre, torch.rand(batch, queries, 2, generator=g) * 0.3 + 0.05], -1)
    pred_scores = (torch.randn(batch, queries, classes, generator=g) * 3).to(dtype)
    gt_bboxes = torch.cat([torch.rand(total, 2, generator=g) * 0.6 + 0.2, torch.rand(total, 2, generator=g) * 0.3], -1)
    gt_cls = torch.randint(0, classes, (total,), generator=g)
    return pred_bboxes, pred_scores, gt_bboxes, gt_cls, groups


def assert_same_pairs(got, want):
    assert len(got) == len(want)
    for (gi, gj), (wi, wj) in zip(got, want):
        assert gi.dtype == gj.dtype == torch.int64
        assert torch.equal(gi.cpu(), wi.cpu()) and torch.equal(gj.cpu(), wj.cpu()), (gi, wi, gj, wj)


@needs("ultralytics.models.utils.ops")
@pytest.mark.parametrize("groups", GROUPS)
@pytest.mark.parametrize("use_fl", [True, False])
@pytest.mark.parametrize("scores_dtype", [torch.float32, torch.float16])
def test_ultralytics_matcher_equals_ultralytics(groups, use_fl, scores_dtype):
    inputs = rtdetr_inputs(groups, dtype=scores_dtype, seed=len(groups) + use_fl)
    for gain in (None, {"class": 2, "bbox": 5, "giou": 2}):
        want = ultralytics_ops.HungarianMatcher(cost_gain=gain, use_fl=use_fl, alpha=0.3, gamma=1.5)(*inputs)
        got = fastloss.ultralytics.HungarianMatcher(cost_gain=gain, use_fl=use_fl, alpha=0.3, gamma=1.5)(*inputs)
        assert_same_pairs(got, want)


@needs("ultralytics.models.utils.ops")
def test_ultralytics_matcher_with_integer_like_ties():
    """Identical predictions and targets: every cost ties, and the pairs are still ultralytics'."""
    pred_bboxes = torch.full((2, 10, 4), 0.5)
    pred_scores = torch.zeros(2, 10, 4)
    gt_bboxes, gt_cls = torch.full((7, 4), 0.5), torch.zeros(7, dtype=torch.long)
    args = (pred_bboxes, pred_scores, gt_bboxes, gt_cls, [3, 4])
    assert_same_pairs(fastloss.ultralytics.HungarianMatcher()(*args), ultralytics_ops.HungarianMatcher()(*args))


def deformable_detr_matcher(outputs, targets, cost_class=1.0, cost_bbox=1.0, cost_giou=1.0, alpha=0.25, gamma=2.0):
    """Deformable DETR's HungarianMatcher.forward, from its formula: the (B·Q) × ΣT cost, split per
    image and solved by scipy."""
    batch, queries = outputs["pred_logits"].shape[:2]
    prob = outputs["pred_logits"].flatten(0, 1).float().sigmoid()
    boxes = outputs["pred_boxes"].flatten(0, 1).float()
    ids = torch.cat([t["labels"] for t in targets])
    tgt = torch.cat([t["boxes"] for t in targets]).float()
    negative = (1 - alpha) * (prob**gamma) * (-(1 - prob + 1e-8).log())
    positive = alpha * ((1 - prob) ** gamma) * (-(prob + 1e-8).log())
    class_cost = positive[:, ids] - negative[:, ids]
    l1 = torch.cdist(boxes, tgt, p=1)
    xyxy = torchvision_ops.box_convert
    giou = -torchvision_ops.generalized_box_iou(xyxy(boxes, "cxcywh", "xyxy"), xyxy(tgt, "cxcywh", "xyxy"))
    cost = (cost_bbox * l1 + cost_class * class_cost + cost_giou * giou).view(batch, queries, -1)
    sizes = [len(t["boxes"]) for t in targets]
    pairs = [scipy_optimize.linear_sum_assignment(c[i].numpy()) for i, c in enumerate(cost.split(sizes, -1))]
    return [(torch.as_tensor(i, dtype=torch.int64), torch.as_tensor(j, dtype=torch.int64)) for i, j in pairs]


def detr_inputs(groups, queries=30, classes=12, seed=0):
    pred_bboxes, pred_scores, gt_bboxes, gt_cls, _ = rtdetr_inputs(groups, queries, classes, seed)
    targets, start = [], 0
    for n in groups:
        targets.append({"labels": gt_cls[start : start + n], "boxes": gt_bboxes[start : start + n]})
        start += n
    return {"pred_logits": pred_scores, "pred_boxes": pred_bboxes}, targets


@needs("scipy.optimize")
@needs("torchvision.ops")
@pytest.mark.parametrize("groups", GROUPS)
def test_detr_matcher_equals_deformable_detrs(groups):
    outputs, targets = detr_inputs(groups, seed=len(groups))
    for costs in ((1.0, 1.0, 1.0, 0.25), (2.0, 5.0, 2.0, 0.3)):
        want = deformable_detr_matcher(outputs, targets, *costs)
        got = fastloss.HungarianMatcher(*costs)(outputs, targets)
        assert_same_pairs(got, want)


def test_detr_matcher_bad_input_names_the_argument():
    outputs, targets = detr_inputs([2, 1])
    with pytest.raises(TypeError, match="outputs"):
        fastloss.HungarianMatcher()(outputs["pred_logits"], targets)
    with pytest.raises(ValueError, match="targets"):
        fastloss.HungarianMatcher()(outputs, targets[:1])
    with pytest.raises(ValueError, match="cost_giou"):
        fastloss.HungarianMatcher(cost_giou=-1.0)
    with pytest.raises(ValueError, match="all costs"):
        fastloss.HungarianMatcher(0, 0, 0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matchers_equal_cpu_without_a_host_sync():
    outputs, targets = detr_inputs([5, 3, 0], seed=3)
    want = fastloss.HungarianMatcher()(outputs, targets)
    inputs = rtdetr_inputs([5, 3, 0], seed=3)
    want_rtdetr = fastloss.ultralytics.HungarianMatcher()(*inputs)
    cuda_outputs = {k: v.cuda() for k, v in outputs.items()}
    cuda_targets = [{k: v.cuda() for k, v in t.items()} for t in targets]
    cuda_inputs = [x.cuda() if isinstance(x, torch.Tensor) else x for x in inputs]
    torch.cuda.set_sync_debug_mode("error")
    try:
        got = fastloss.HungarianMatcher()(cuda_outputs, cuda_targets)
        got_rtdetr = fastloss.ultralytics.HungarianMatcher()(*cuda_inputs)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert all(i.is_cuda for pair in got + got_rtdetr for i in pair)
    assert_same_pairs(got, want)
    assert_same_pairs(got_rtdetr, want_rtdetr)


@needs("ultralytics.models.utils.loss")
@pytest.mark.parametrize("use_vfl", [False, True])
def test_ultralytics_detr_loss_with_the_matcher_swapped_in(use_vfl):
    """ultralytics' own DETRLoss (6 decoder layers, auxiliary losses) with its matcher replaced by
    fastloss's: the same losses, as the pairs are the same."""
    loss_module = peer("ultralytics.models.utils.loss")
    g = torch.Generator().manual_seed(7)
    groups = [4, 0, 9]
    pred_bboxes = torch.rand(6, 3, 30, 4, generator=g) * 0.5 + 0.25
    pred_scores = torch.randn(6, 3, 30, 10, generator=g)
    gt_bboxes = torch.rand(sum(groups), 4, generator=g) * 0.5 + 0.25
    batch = {"cls": torch.randint(0, 10, (sum(groups),), generator=g), "bboxes": gt_bboxes, "gt_groups": groups}
    stock = loss_module.DETRLoss(nc=10, use_vfl=use_vfl)
    swapped = loss_module.DETRLoss(nc=10, use_vfl=use_vfl)
    swapped.matcher = fastloss.ultralytics.HungarianMatcher(cost_gain={"class": 2, "bbox": 5, "giou": 2})
    want, got = stock(pred_bboxes, pred_scores, batch), swapped(pred_bboxes, pred_scores, batch)
    assert want.keys() == got.keys()
    for key in want:
        assert torch.equal(got[key], want[key]), key
