"""fastloss.ultralytics' RT-DETR criteria (DETRLoss, RTDETRDetectionLoss) against ultralytics 8.4.190's:
every loss and the gradients of the predictions, over the constructor's options (focal, varifocal,
BCE, auxiliary layers or not, one shared match), empty images, no target at all, more targets than
queries, the denoising queries of ultralytics' own get_cdn_group; then a few optimizer steps of a
real rtdetr-l.yaml model (no weights) with each criterion, step by step."""

import copy

import pytest
import torch

import fastloss.ultralytics as face
from helpers import needs, peer

pytestmark = needs("ultralytics")

CLASSES, QUERIES = 10, 30


def predictions(layers, batch, seed, queries=QUERIES):
    g = torch.Generator().manual_seed(seed)
    boxes = (torch.rand(layers, batch, queries, 4, generator=g) * 0.5 + 0.25).requires_grad_()
    scores = (torch.randn(layers, batch, queries, CLASSES, generator=g) * 2).requires_grad_()
    return boxes, scores


def targets(groups, seed):
    g = torch.Generator().manual_seed(seed)
    n = sum(groups)
    boxes = torch.cat([torch.rand(n, 2, generator=g) * 0.6 + 0.2, torch.rand(n, 2, generator=g) * 0.3 + 0.02], -1)
    return {"cls": torch.randint(0, CLASSES, (n,), generator=g), "bboxes": boxes, "gt_groups": list(groups)}


def assert_same_losses(got, want, inputs, rtol=2e-5, atol=1e-6):
    assert list(got) == list(want)
    for key in want:
        assert got[key].shape == want[key].shape, key
        torch.testing.assert_close(got[key], want[key], rtol=rtol, atol=atol, msg=key)
    ours = torch.autograd.grad(sum(got.values()), inputs, allow_unused=True)
    theirs = torch.autograd.grad(sum(want.values()), inputs, allow_unused=True)
    for g, w in zip(ours, theirs):
        w = torch.zeros_like(g) if w is None else w
        torch.testing.assert_close(g, w, rtol=rtol, atol=atol)


OPTIONS = [
    {},
    {"use_vfl": True},
    {"use_fl": False},
    {"use_uni_match": True, "uni_match_ind": 1},
    {"aux_loss": False},
    {"loss_gain": {"class": 2.0, "bbox": 3.0, "giou": 1.5}, "gamma": 2.0, "alpha": 0.3, "use_vfl": True},
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "defaults")
@pytest.mark.parametrize("groups", [(4, 0, 9), (0, 0), (40, 1)], ids=["ragged", "no targets", "more than queries"])
def test_detr_loss_equals_ultralytics(options, groups):
    loss = peer("ultralytics.models.utils.loss")
    boxes, scores = predictions(4, len(groups), seed=len(groups))
    batch = targets(groups, seed=sum(groups))
    want = loss.DETRLoss(nc=CLASSES, **options)(boxes, scores, batch)
    got = face.DETRLoss(nc=CLASSES, **options)(boxes, scores, batch)
    assert_same_losses(got, want, (boxes, scores))


def denoising(groups, seed, dn_queries=None):
    """ultralytics' own denoising queries for these targets: dn_meta and the (layers, B, dn, ·)
    predictions of the denoising queries."""
    ops = peer("ultralytics.models.utils.ops")
    batch = targets(groups, seed)
    batch["batch_idx"] = torch.cat([torch.full((n,), i) for i, n in enumerate(groups)]).long()
    torch.manual_seed(seed)
    embed = torch.nn.Embedding(CLASSES, 8)
    _, _, _, meta = ops.get_cdn_group(batch, CLASSES, QUERIES, embed.weight, num_dn=20, training=True)
    dn = meta["dn_num_split"][0]
    boxes, scores = predictions(4, len(groups), seed=seed + 1, queries=dn)
    return batch, meta, boxes, scores


@pytest.mark.parametrize("options", [{"use_vfl": True}, {}], ids=["vfl (RT-DETR's)", "focal"])
def test_rtdetr_loss_with_denoising_equals_ultralytics(options):
    loss = peer("ultralytics.models.utils.loss")
    batch, meta, dn_boxes, dn_scores = denoising((3, 5), seed=3)
    boxes, scores = predictions(4, 2, seed=4)
    inputs = (boxes, scores, dn_boxes, dn_scores)
    want = loss.RTDETRDetectionLoss(nc=CLASSES, **options)((boxes, scores), batch, dn_boxes, dn_scores, meta)
    got = face.RTDETRDetectionLoss(nc=CLASSES, **options)((boxes, scores), batch, dn_boxes, dn_scores, meta)
    assert len(got) == 12 and all(key.endswith("_dn") for key in list(got)[6:])
    assert_same_losses(got, want, inputs)


def test_rtdetr_loss_without_denoising_gives_zero_dn_losses():
    loss = peer("ultralytics.models.utils.loss")
    boxes, scores = predictions(3, 2, seed=5)
    batch = targets((2, 3), seed=6)
    want = loss.RTDETRDetectionLoss(nc=CLASSES)((boxes, scores), batch)
    got = face.RTDETRDetectionLoss(nc=CLASSES)((boxes, scores), batch)
    assert_same_losses(got, want, (boxes, scores))


def test_rtdetr_loss_rejects_mismatched_denoising_meta():
    batch, meta, dn_boxes, dn_scores = denoising((3, 5), seed=3)
    boxes, scores = predictions(4, 2, seed=4)
    bad = {**meta, "dn_pos_idx": meta["dn_pos_idx"][:1]}
    with pytest.raises(ValueError, match="dn_pos_idx"):
        face.RTDETRDetectionLoss(nc=CLASSES)((boxes, scores), batch, dn_boxes, dn_scores, bad)


def test_another_matcher_is_called_layer_by_layer():
    """A matcher put in place of fastloss's (here ultralytics' own) is called as ultralytics calls it."""
    loss, ops = peer("ultralytics.models.utils.loss"), peer("ultralytics.models.utils.ops")
    boxes, scores = predictions(3, 2, seed=8)
    batch = targets((4, 2), seed=9)
    ours = face.DETRLoss(nc=CLASSES)
    ours.matcher = ops.HungarianMatcher(cost_gain={"class": 2, "bbox": 5, "giou": 2})
    assert_same_losses(ours(boxes, scores, batch), loss.DETRLoss(nc=CLASSES)(boxes, scores, batch), (boxes, scores))


def rtdetr_model():
    tasks, cfg = peer("ultralytics.nn.tasks"), peer("ultralytics.cfg")
    torch.manual_seed(0)
    m = tasks.RTDETRDetectionModel("rtdetr-l.yaml", nc=5, verbose=False)
    m.args, m.nc = cfg.get_cfg(), 5  # (the trainer sets nc; ultralytics' init_criterion reads it)
    return m.train()


def test_init_criterion_gives_rtdetr_its_criterion():
    assert isinstance(face.init_criterion(rtdetr_model()), face.RTDETRDetectionLoss)


def test_rtdetr_training_steps_equal_the_stock_criterion():
    """Three SGD steps of rtdetr-l.yaml on synthetic images (denoising queries included, their noise
    seeded alike), one with the stock criterion and one with fastloss's (through init_criterion) from
    the same weights: the same losses and the same weights after each step. The stock model then takes
    fastloss's weights: the step's float32 rounding (1e-6 of the backbone's gradients) would otherwise
    move the next step's predictions, and with them the matcher's near-ties, which the same predictions
    break alike (the cost is ultralytics' to the bit)."""
    stock_model = rtdetr_model()
    ours = copy.deepcopy(stock_model)
    ours.init_criterion = lambda: face.init_criterion(ours)
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.001, momentum=0.9) for m in (stock_model, ours)]
    g = torch.Generator().manual_seed(21)
    for step in range(3):
        batch = {
            "img": torch.rand(2, 3, 64, 64, generator=g),
            "batch_idx": torch.tensor([0.0, 0.0, 0.0, 1.0]),
            "cls": torch.randint(0, 5, (4, 1), generator=g).float(),
            "bboxes": torch.cat(
                [torch.rand(4, 2, generator=g) * 0.6 + 0.2, torch.rand(4, 2, generator=g) * 0.3 + 0.05], -1
            ),
        }
        losses = []
        for m, optimizer in zip((stock_model, ours), optimizers):
            optimizer.zero_grad()
            torch.manual_seed(100 + step)  # (the denoising noise)
            loss, _ = m.loss(batch)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
        torch.testing.assert_close(losses[1], losses[0], rtol=1e-5, atol=1e-5)
        for p, q in zip(ours.parameters(), stock_model.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)
        stock_model.load_state_dict(ours.state_dict())
    assert isinstance(ours.criterion, face.RTDETRDetectionLoss)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_criterion_equals_cpu_without_a_host_sync():
    """Matching and losses on the GPU: the CPU's numbers, and no host sync (dn_meta's indices are
    CPU tensors in ultralytics, so the denoising part copies them; it is left out here)."""
    boxes, scores = predictions(4, 3, seed=11)
    batch = targets((4, 0, 9), seed=12)
    want = face.DETRLoss(nc=CLASSES, use_vfl=True)(boxes, scores, batch)
    cuda_batch = {k: v.cuda() if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    torch.cuda.set_sync_debug_mode("error")
    try:
        got = face.DETRLoss(nc=CLASSES, use_vfl=True)(boxes.cuda(), scores.cuda(), cuda_batch)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    for key in want:
        torch.testing.assert_close(got[key].cpu(), want[key], rtol=1e-5, atol=1e-6, msg=key)
