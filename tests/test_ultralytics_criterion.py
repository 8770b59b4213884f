"""fastloss.ultralytics' training criteria (v8DetectionLoss, v8SegmentationLoss, E2EDetectLoss, E2ELoss) against
ultralytics 8.4.190's own, on models built from their yaml (no weights, no download): the loss vector,
its items and the gradients of every prediction tensor, on random heads with no GT, 1 GT, 100 and
1,000 GTs per image, boxes partly outside the image, tal_topk2, DFL and reg_max = 1 heads, and under
autocast; then a few optimizer steps of real training with each criterion, step by step.

Where ultralytics' assignment is left to a tie (a GT whose top-k is completed by anchors of zero
metric: torch.topk's order decides), fastloss's follows its tie rule (tests/test_task_aligned.py). The
criterion is then compared with ultralytics' own running on fastloss's assigner (its drop-in,
fastloss.ultralytics.TaskAlignedAssigner), and with ultralytics' as it stands wherever the two
assignments agree."""

import copy

import pytest
import torch

import fastloss.ultralytics as face
from helpers import needs, peer

pytestmark = needs("ultralytics")

IMGSZ = 128  # three levels of 16², 8², 4² anchors


def model(yaml, nc=5, overlap_mask=True):
    tasks, cfg = peer("ultralytics.nn.tasks"), peer("ultralytics.cfg")
    torch.manual_seed(0)
    kind = tasks.SegmentationModel if "-seg" in yaml else tasks.OBBModel if "-obb" in yaml else tasks.DetectionModel
    m = kind(yaml, nc=nc, verbose=False)
    m.args = cfg.get_cfg()
    m.args.overlap_mask = overlap_mask
    return m.train()


def random_heads(m, batch, seed, dtype=torch.float32, scale=3.0):
    """The training dict of m's head with random logits and distances (each prediction a leaf)."""
    g = torch.Generator().manual_seed(seed)
    head = m.model[-1]
    sizes = [(IMGSZ // int(s), IMGSZ // int(s)) for s in head.stride]
    anchors = sum(h * w for h, w in sizes)
    feats = [torch.zeros(batch, 1, h, w, dtype=dtype) for h, w in sizes]

    def branch():
        boxes = (torch.randn(batch, 4 * head.reg_max, anchors, generator=g) * scale).to(dtype)
        if head.reg_max == 1:
            boxes = boxes.abs()  # distances in grid units
        scores = (torch.randn(batch, head.nc, anchors, generator=g) * scale - 2).to(dtype)
        out = {"boxes": boxes.requires_grad_(), "scores": scores.requires_grad_(), "feats": feats}
        if hasattr(head, "cv4") and not hasattr(head, "proto"):  # (OBB: the angle, as the head gives it)
            angle = (torch.rand(batch, 1, anchors, generator=g) - 0.25) * 3.14159
            out["angle"] = angle.to(dtype).requires_grad_()
        if hasattr(head, "proto"):  # (segmentation: 32 mask coefficients, prototypes at a quarter of the image)
            out["mask_coefficient"] = (torch.randn(batch, head.nm, anchors, generator=g) / 2).to(dtype).requires_grad_()
            proto = torch.randn(batch, head.nm, IMGSZ // 4, IMGSZ // 4, generator=g)
            out["proto"] = proto.to(dtype).requires_grad_()
        return out

    end_to_end = getattr(head, "one2one_cv2", None) is not None
    return {"one2many": branch(), "one2one": branch()} if end_to_end else branch()


def targets(batch, gts, seed, nc=5, outside=False, oriented=False):
    """ultralytics' flat targets: gts[i] boxes in image i (normalised xywh; oriented: xywhr, some
    under the 2 pixels a side ultralytics drops), classes in [0, nc)."""
    g = torch.Generator().manual_seed(seed)
    counts = [gts] * batch if isinstance(gts, int) else list(gts)
    n = sum(counts)
    xy = torch.rand(n, 2, generator=g) * (1.2 if outside else 0.8) + (-0.1 if outside else 0.1)
    wh = torch.rand(n, 2, generator=g) * 0.5 + 0.02
    boxes = [xy, wh]
    if oriented:
        wh[::7] = 1.5 / IMGSZ  # (dropped)
        boxes.append((torch.rand(n, 1, generator=g) - 0.5) * 3.14159)
    return {
        "batch_idx": torch.cat([torch.full((c,), float(i)) for i, c in enumerate(counts)]),
        "cls": torch.randint(0, nc, (n, 1), generator=g).float(),
        "bboxes": torch.cat(boxes, 1),
    }


def leaves(preds):
    branches = [preds["one2many"], preds["one2one"]] if "one2many" in preds else [preds]
    found = [b[k] for b in branches for k in ("boxes", "scores", "angle", "mask_coefficient", "proto") if k in b]
    return [t for v in found for t in (v if isinstance(v, tuple) else (v,))]  # ((proto, semantic) pairs)


def with_masks(batch, images, seed, overlap=True, size=IMGSZ // 4):
    """The batch with ultralytics' instance masks: overlap: one (images, size, size) plane per image,
    object i of the image drawn as i + 1 (later objects over earlier ones, as its loader); else one 0/1
    (objects, size, size) mask per object, in the targets' order."""
    g = torch.Generator().manual_seed(seed)
    image = batch["batch_idx"].long()
    xy, wh = batch["bboxes"][:, :2] * size, batch["bboxes"][:, 2:] * size
    grid = torch.arange(size) + 0.5
    columns = (grid - xy[:, :1]).abs() <= wh[:, :1] / 2  # (objects, W)
    rows = (grid - xy[:, 1:]).abs() <= wh[:, 1:] / 2  # (objects, H)
    inside = rows[:, :, None] & columns[:, None, :]
    blobs = inside & (torch.rand(len(image), size, size, generator=g) < 0.8)
    if overlap:
        masks = torch.zeros(images, size, size)
        for i in range(len(image)):
            within = int((image[:i] == image[i]).sum())
            masks[image[i]][blobs[i]] = within + 1
    else:
        masks = blobs.float()
    return {**batch, "masks": masks}


def assert_same(got, want, preds, rtol=1e-5, atol=1e-6):
    (loss, items), (want_loss, want_items) = got, want
    torch.testing.assert_close(loss, want_loss, rtol=rtol, atol=atol)
    assert list(items) == list(want_items)
    for name in items:
        torch.testing.assert_close(items[name], want_items[name], rtol=rtol, atol=atol)
    grads = torch.autograd.grad(loss.sum(), leaves(preds), retain_graph=True)
    want_grads = torch.autograd.grad(want_loss.sum(), leaves(preds), retain_graph=True)
    for g, w in zip(grads, want_grads):
        torch.testing.assert_close(g, w, rtol=rtol, atol=atol * max(1.0, float(w.abs().max())))


def stock(m, **kwargs):
    return m.init_criterion() if not kwargs else peer("ultralytics.utils.loss").v8DetectionLoss(m, **kwargs)


def branches(criterion):
    return [criterion.one2many, criterion.one2one] if hasattr(criterion, "one2one") else [criterion]


def recording(criterion):
    """The criterion, its assigners' results recorded (criterion.assignments)."""
    criterion.assignments = []
    for branch in branches(criterion):
        assign = branch.assigner.forward

        def recorded(*args, _assign=assign, **kwargs):
            out = _assign(*args, **kwargs)
            criterion.assignments.append(out)
            return out

        branch.assigner.forward = recorded
    return criterion


def on_fastloss_assigner(criterion):
    """ultralytics' criterion with fastloss's drop-in assigner (same tie rules as fastloss's criterion)."""
    for branch in branches(criterion):
        a = branch.assigner
        rotated = type(a).__name__ == "RotatedTaskAlignedAssigner"
        branch.assigner = (face.RotatedTaskAlignedAssigner if rotated else face.TaskAlignedAssigner)(
            topk=a.topk, num_classes=a.num_classes, alpha=a.alpha, beta=a.beta, stride=a.stride, topk2=a.topk2
        )
    return criterion


def same_assignment(first, second):
    return all(torch.equal(x[3], y[3]) and torch.equal(x[4][x[3]], y[4][y[3]]) for x, y in zip(first, second))


def assert_like_ultralytics(ours, make_stock, preds, batch, rtol=1e-5, atol=1e-6, agree=False):
    """ours(preds, batch) against ultralytics' criterion on fastloss's assigner, and against ultralytics'
    own where both assignments agree (`agree`: they must)."""
    got = ours(preds, batch)
    ties = recording(on_fastloss_assigner(make_stock()))
    assert_same(got, ties(preds, batch), preds, rtol, atol)
    reference = recording(make_stock())
    want = reference(preds, batch)
    assert len(ties.assignments) == len(reference.assignments) == len(branches(reference))
    if same_assignment(ties.assignments, reference.assignments):
        assert_same(got, want, preds, rtol, atol)
    else:
        assert not agree, "the assignments differ where ultralytics' is decided"


@pytest.mark.parametrize("yaml", ["yolov8n.yaml", "yolo11n.yaml", "yolo26n.yaml"])
@pytest.mark.parametrize("gts", [0, 1, (1, 0), 100, 1000])
def test_criterion_equals_ultralytics(yaml, gts):
    m = model(yaml)
    preds = random_heads(m, 2, seed=len(yaml) + (gts if isinstance(gts, int) else 7))
    batch = targets(2, gts, seed=3)
    assert_like_ultralytics(face.init_criterion(m), lambda: stock(m), preds, batch, agree=gts in (0, 1, (1, 0)))


@pytest.mark.parametrize("yaml", ["yolov8n.yaml", "yolo26n.yaml"])
def test_boxes_partly_outside_the_image(yaml):
    m = model(yaml)
    preds = random_heads(m, 3, seed=5)
    batch = targets(3, (4, 9, 2), seed=6, outside=True)
    assert_like_ultralytics(face.init_criterion(m), lambda: stock(m), preds, batch)


@pytest.mark.parametrize("yaml", ["yolov8n.yaml", "yolov8n-obb.yaml"])
def test_targets_in_any_image_order(yaml):
    """batch_idx need not be sorted: each image's targets are taken in their order (targets[batch_idx ==
    j]), which is ultralytics' result on the targets grouped by image (its loader's order; unsorted, its
    preprocess misplaces rows or raises)."""
    m = model(yaml)
    preds = random_heads(m, 3, seed=8)
    batch = targets(3, (5, 8, 3), seed=9, oriented="obb" in yaml)
    shuffled = {k: v[torch.randperm(16, generator=torch.Generator().manual_seed(2))] for k, v in batch.items()}
    grouped = {k: v[torch.argsort(shuffled["batch_idx"], stable=True)] for k, v in shuffled.items()}
    assert not torch.equal(shuffled["batch_idx"], grouped["batch_idx"])
    ours = face.init_criterion(m)
    assert_same(ours(preds, shuffled), ours(preds, grouped), preds, rtol=0, atol=0)
    assert_like_ultralytics(ours, lambda: stock(m), preds, grouped)


@pytest.mark.parametrize("topk, topk2", [(10, 3), (7, 1), (13, None)])
def test_tal_topk_and_topk2(topk, topk2):
    m = model("yolov8n.yaml")
    preds = random_heads(m, 2, seed=topk)
    batch = targets(2, (20, 6), seed=topk)
    ours = face.v8DetectionLoss(m, tal_topk=topk, tal_topk2=topk2)
    assert_like_ultralytics(ours, lambda: stock(m, tal_topk=topk, tal_topk2=topk2), preds, batch)


def test_e2e_detect_loss_equals_ultralytics():
    m = model("yolo26n.yaml")
    preds = random_heads(m, 2, seed=11)
    batch = targets(2, (5, 3), seed=12)
    make_stock = peer("ultralytics.utils.loss").E2EDetectLoss
    assert_like_ultralytics(face.E2EDetectLoss(m), lambda: make_stock(m), preds, batch)


def test_e2e_loss_gains_follow_ultralytics_schedule():
    m = model("yolo26n.yaml")
    m.args.epochs = 5
    ours, theirs = face.E2ELoss(m), peer("ultralytics.utils.loss").E2ELoss(m)
    preds, batch = random_heads(m, 2, seed=13), targets(2, 4, seed=14)
    for _ in range(6):
        assert (ours.o2m, ours.o2o) == pytest.approx((theirs.o2m, theirs.o2o))

        def at_this_step(stock_loss=theirs):
            fresh = peer("ultralytics.utils.loss").E2ELoss(m)
            fresh.o2m, fresh.o2o = stock_loss.o2m, stock_loss.o2o
            return fresh

        assert_like_ultralytics(ours, at_this_step, preds, batch)
        ours.update()
        theirs.update()


def test_class_weights():
    m = model("yolov8n.yaml")
    m.class_weights = torch.tensor([1.0, 2.0, 0.5, 0.0, 3.0])
    preds, batch = random_heads(m, 2, seed=15), targets(2, 6, seed=16)
    assert_like_ultralytics(face.v8DetectionLoss(m), lambda: stock(m), preds, batch)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_heads_under_autocast(dtype):
    """Half-precision heads, the criterion under autocast as ultralytics' AMP runs it."""
    m = model("yolov8n.yaml")
    preds, batch = random_heads(m, 2, seed=17, dtype=dtype), targets(2, 8, seed=18)
    with torch.autocast("cpu", dtype=dtype):
        assert_like_ultralytics(face.v8DetectionLoss(m), lambda: stock(m), preds, batch, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("yaml", ["yolov8n.yaml", "yolo26n.yaml", "yolov8n-seg.yaml", "yolov8n-obb.yaml"])
def test_training_steps_equal_the_stock_criterion(yaml):
    """A few SGD steps on synthetic images: the losses and the parameters after each step, with the
    stock criterion and with fastloss's (through the documented one-liner's init_criterion)."""
    stock_model = model(yaml)
    ours = copy.deepcopy(stock_model)
    ours.init_criterion = lambda: face.init_criterion(ours)
    stock_model.criterion = on_fastloss_assigner(stock_model.init_criterion())  # (the same tie rule)
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for m in (stock_model, ours)]
    g = torch.Generator().manual_seed(19)
    for step in range(3):
        batch = {
            "img": torch.rand(2, 3, IMGSZ, IMGSZ, generator=g),
            **targets(2, (3, 1), seed=20 + step, oriented="-obb" in yaml),
        }
        if "-seg" in yaml:
            batch = with_masks(batch, 2, seed=30 + step)
        losses = []
        for m, optimizer in zip((stock_model, ours), optimizers):
            optimizer.zero_grad()
            loss, items = m.loss(batch)
            loss.sum().backward()
            optimizer.step()
            losses.append(loss.detach())
        torch.testing.assert_close(losses[1], losses[0], rtol=1e-4, atol=1e-5)
        # (float32 rounding of the backbone's gradients, ~1e-6 relative, grows through the momentum steps)
        for p, q in zip(ours.parameters(), stock_model.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-3, atol=2e-4)
    assert type(ours.criterion).__module__ == "fastloss.ultralytics"


@pytest.mark.parametrize("overlap", [True, False])
@pytest.mark.parametrize("gts", [0, 1, (1, 0), 30, 100])
def test_segmentation_criterion_equals_ultralytics(overlap, gts):
    m = model("yolov8n-seg.yaml", overlap_mask=overlap)
    preds = random_heads(m, 2, seed=21 + (gts if isinstance(gts, int) else 7))
    batch = with_masks(targets(2, gts, seed=22), 2, seed=23, overlap=overlap)
    ours = face.init_criterion(m)
    assert type(ours) is face.v8SegmentationLoss
    assert_like_ultralytics(ours, lambda: stock(m), preds, batch, agree=gts in (0, 1, (1, 0)))


@pytest.mark.parametrize("overlap", [True, False])
def test_segmentation_masks_at_another_resolution_and_boxes_outside(overlap):
    """Masks larger than the prototypes (ultralytics resizes the prototypes to them), boxes partly
    outside the image."""
    m = model("yolov8n-seg.yaml", overlap_mask=overlap)
    preds = random_heads(m, 3, seed=24)
    batch = with_masks(targets(3, (4, 9, 2), seed=25, outside=True), 3, seed=26, overlap=overlap, size=IMGSZ // 2)
    assert_like_ultralytics(face.v8SegmentationLoss(m), lambda: stock(m), preds, batch)


def test_segmentation_under_autocast():
    m = model("yolov8n-seg.yaml")
    preds = random_heads(m, 2, seed=27, dtype=torch.bfloat16)
    batch = with_masks(targets(2, 8, seed=28), 2, seed=29)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert_like_ultralytics(face.v8SegmentationLoss(m), lambda: stock(m), preds, batch, rtol=2e-2, atol=2e-2)


def test_init_criterion_refuses_heads_it_has_no_criterion_for():
    tasks = peer("ultralytics.nn.tasks")
    pose = tasks.PoseModel("yolov8n-pose.yaml", nc=1, verbose=False)
    with pytest.raises(NotImplementedError, match="Pose"):
        face.init_criterion(pose)


# ------------------------------------------------------------------------- oriented boxes (OBB)


@pytest.mark.parametrize("yaml", ["yolov8n-obb.yaml", "yolo26n-obb.yaml"])
def test_obb_training_steps_equal_the_stock_criterion_at_every_step(yaml):
    """Five SGD steps of one model trained by the stock criterion; at every step fastloss's criterion
    (through init_criterion) gives the same losses and the same gradient of every parameter. (Two
    models trained apart drift: float32 rounding of the gradients, amplified by momentum, moves
    YOLO26-OBB's predictions across an assignment near-tie by the third step.)"""
    m = model(yaml)
    stock_criterion = on_fastloss_assigner(m.init_criterion())  # (the same tie rule)
    ours = face.init_criterion(m)
    optimizer = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    g = torch.Generator().manual_seed(44)
    for step in range(5):
        batch = {
            "img": torch.rand(2, 3, IMGSZ, IMGSZ, generator=g),
            **targets(2, (3, 1), seed=45 + step, oriented=True),
        }
        preds = m(batch["img"])
        got, want = ours(preds, batch)[0], stock_criterion(preds, batch)[0]
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
        params = [p for p in m.parameters() if p.requires_grad]
        ours_grads = torch.autograd.grad(got.sum(), params, retain_graph=True, allow_unused=True)
        optimizer.zero_grad()
        want.sum().backward()
        for p, ours_grad in zip(params, ours_grads):
            if p.grad is not None:
                scale = max(1.0, float(p.grad.abs().max()))
                torch.testing.assert_close(ours_grad, p.grad, rtol=1e-3, atol=1e-4 * scale)
        optimizer.step()


@pytest.mark.parametrize("yaml", ["yolov8n-obb.yaml", "yolo26n-obb.yaml"])
@pytest.mark.parametrize("gts", [0, 1, (1, 0), 30, 100])
def test_obb_criterion_equals_ultralytics(yaml, gts):
    """v8OBBLoss (YOLOv8's DFL head; YOLO26's reg_max = 1 end-to-end head in E2ELoss): loss, items
    and gradients (the angle's included)."""
    m = model(yaml)
    preds = random_heads(m, 2, seed=40 + (gts if isinstance(gts, int) else 7))
    batch = targets(2, gts, seed=41, oriented=True)
    ours = face.init_criterion(m)
    assert type(ours if "26" not in yaml else ours.one2many) is face.v8OBBLoss
    assert_like_ultralytics(ours, lambda: stock(m), preds, batch, agree=gts in (0, 1, (1, 0)))


def test_obb_under_autocast():
    """bfloat16 heads under autocast: YOLOv8-OBB's losses as ultralytics'; YOLO26-OBB's finite where
    ultralytics' box loss is NaN (its probIoU in bfloat16), and its float32 value on the same heads."""
    m = model("yolov8n-obb.yaml")
    preds = random_heads(m, 2, seed=46, dtype=torch.bfloat16)
    batch = targets(2, 8, seed=47, oriented=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert_like_ultralytics(face.init_criterion(m), lambda: stock(m), preds, batch, rtol=2e-2, atol=2e-2)
    m = model("yolo26n-obb.yaml")
    preds = random_heads(m, 2, seed=27, dtype=torch.bfloat16)
    batch = targets(2, 8, seed=28, oriented=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, _ = face.init_criterion(m)(preds, batch)
        theirs, _ = stock(m)(preds, batch)
    assert got.isfinite().all() and not theirs.isfinite().all()
    as_float = {k: {n: (t.float() if n != "feats" else t) for n, t in v.items()} for k, v in preds.items()}
    exact, _ = on_fastloss_assigner(stock(m))(as_float, batch)
    torch.testing.assert_close(got.float(), exact, rtol=2e-2, atol=2e-2)


def test_obb_tal_topk2_and_boxes_outside():
    m = model("yolov8n-obb.yaml")
    preds = random_heads(m, 3, seed=42)
    batch = targets(3, (4, 9, 2), seed=43, outside=True, oriented=True)
    loss = peer("ultralytics.utils.loss")
    assert_like_ultralytics(
        face.v8OBBLoss(m, tal_topk=13, tal_topk2=3), lambda: loss.v8OBBLoss(m, tal_topk=13, tal_topk2=3), preds, batch
    )


@pytest.mark.parametrize("overlap", [True, False])
def test_segmentation_semantic_term(overlap):
    """Prototypes with semantic logits (Proto26's training output, `(proto, semantic)`): the sem_loss,
    BCE + Dice against the one-hot classes of the pixels an object covers, as ultralytics computes it."""
    m = model("yolov8n-seg.yaml", overlap_mask=overlap)
    preds = random_heads(m, 2, seed=31)
    g = torch.Generator().manual_seed(32)
    side = IMGSZ // 4
    semantic = torch.randn(2, 5, side, side, generator=g).requires_grad_()
    preds["proto"] = (preds["proto"], semantic)
    batch = with_masks(targets(2, (3, 5), seed=33), 2, seed=34, overlap=overlap)
    batch["sem_masks"] = torch.randint(0, 5, (2, side, side), generator=g).float()
    got = face.v8SegmentationLoss(m)(preds, batch)
    assert float(got[1]["sem_loss"]) > 0
    ties = on_fastloss_assigner(stock(m))
    want = ties(preds, batch)
    assert_same(got, want, preds)  # (the semantic logits' gradient among the others)


@pytest.mark.parametrize("criterion", ["E2ELoss", "E2EDetectLoss"])
def test_end_to_end_criteria_pad_the_targets_once(criterion, monkeypatch):
    """The two branches share one padding of the flat targets: the criterion's one host sync."""
    m = model("yolo26n.yaml")
    calls = []
    pad = face._padded_targets
    monkeypatch.setattr(face, "_padded_targets", lambda *args: calls.append(1) or pad(*args))
    getattr(face, criterion)(m)(random_heads(m, 2, seed=35), targets(2, (3, 2), seed=36))
    assert len(calls) == 1


def on_device(tree, device):
    """Prediction dicts (their leaves still leaves) and batches moved to `device`."""
    if isinstance(tree, dict):
        return {k: on_device(v, device) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(on_device(v, device) for v in tree)
    return tree.detach().to(device).requires_grad_(tree.requires_grad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("yaml", ["yolov8n.yaml", "yolov8n-seg.yaml", "yolo26n.yaml"])
def test_cuda_criterion_equals_cpu_without_a_host_sync(yaml):
    """On CUDA, with the targets padded beforehand, the whole criterion (forward and backward) runs
    without a host sync (torch.cuda.set_sync_debug_mode("error")), and gives the CPU's numbers."""
    m = model(yaml)
    preds = random_heads(m, 2, seed=37)
    batch = targets(2, (7, 3), seed=38)
    if "-seg" in yaml:
        batch = with_masks(batch, 2, seed=39)
    want = face.init_criterion(m)(preds, batch)
    want_grads = torch.autograd.grad(want[0].sum(), leaves(preds))
    gpu = m.cuda()
    criterion = face.init_criterion(gpu)
    preds, batch = on_device(preds, "cuda"), on_device(batch, "cuda")
    first = criterion.one2many if hasattr(criterion, "one2many") else criterion
    padded = first.padded_targets(preds["one2many"] if "one2many" in preds else preds, batch)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        got = criterion(preds, batch, padded)
        grads = torch.autograd.grad(got[0].sum(), leaves(preds))
    finally:
        torch.cuda.set_sync_debug_mode(0)
    torch.testing.assert_close(got[0].cpu(), want[0], rtol=1e-4, atol=1e-5)
    for g, w in zip(grads, want_grads):
        torch.testing.assert_close(g.cpu(), w, rtol=1e-4, atol=1e-5 * max(1.0, float(w.abs().max())))
