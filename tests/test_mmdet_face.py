"""fastloss.mmdet against mmdet 3.3.0's own loss modules (loaded from its wheel: tests/mmdet_peer.py),
values and gradients, over their options; mmdet's registry through mmengine."""

import itertools
import pickle
import sys
import types
import warnings

import pytest
import torch

import fastloss
import fastloss.mmdet as face
from helpers import assert_close, peer, random_boxes
from mmdet_peer import load

N, C = 37, 5


@pytest.fixture(scope="module")
def mmdet(tmp_path_factory):
    return load(str(tmp_path_factory.mktemp("mmdet")))


def compare(ours, theirs, inputs, args=(), kwargs=None, dtype=torch.float64, rtol=None, atol=None):
    """Both modules on copies of `inputs` (the first requires grad) with the same forward arguments:
    equal values and equal gradients of the first input."""
    kwargs = kwargs or {}
    results = []
    for module in (ours, theirs):
        leaves = [inputs[0].detach().clone().requires_grad_()] + list(inputs[1:])
        loss = module(*leaves, *args, **kwargs)
        (grad,) = torch.autograd.grad(loss.sum(), leaves[0], allow_unused=True)
        results.append((loss.detach(), torch.zeros_like(leaves[0]) if grad is None else grad))
    (got, got_grad), (want, want_grad) = results
    assert got.shape == want.shape
    assert_close(got, want, dtype, rtol, atol)
    assert_close(got_grad, want_grad, dtype, rtol, atol)


REDUCTIONS = ["mean", "sum", "none"]


# ---- FocalLoss -------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("target_kind", ["labels", "one_hot_float", "one_hot_int"])
@pytest.mark.parametrize("weight_kind", [None, "anchor", "element", "flat"])
def test_focal_loss(mmdet, reduction, target_kind, weight_kind):
    g = torch.Generator().manual_seed(1)
    pred = torch.randn(N, C, generator=g, dtype=torch.float64) * 3
    labels = torch.randint(0, C + 1, (N,), generator=g)
    target = {
        "labels": labels,
        "one_hot_float": torch.nn.functional.one_hot(labels, C + 1)[:, :C].double(),
        "one_hot_int": torch.nn.functional.one_hot(labels, C + 1)[:, :C],
    }[target_kind]
    weight = {
        None: None,
        "anchor": torch.rand(N, generator=g, dtype=torch.float64),
        "element": torch.rand(N, C, generator=g, dtype=torch.float64),
        "flat": torch.rand(N * C, generator=g, dtype=torch.float64),
    }[weight_kind]
    for options in ({}, {"gamma": 1.5, "alpha": 0.6, "loss_weight": 2.0}):
        compare(
            face.FocalLoss(reduction=reduction, **options),
            mmdet["focal_loss"].FocalLoss(reduction=reduction, **options),
            (pred, target),
            (weight,),
        )


@pytest.mark.parametrize("avg_factor", [7, 0, 0.0, "tensor", "tensor0"])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_focal_loss_avg_factor(mmdet, avg_factor, reduction):
    """avg_factor divides by avg_factor + eps (a zero sum over a zero avg_factor is 0, a tensor too:
    not NaN); with "none" it is ignored."""
    pred = torch.randn(N, C, dtype=torch.float64)
    labels = torch.randint(0, C + 1, (N,))
    avg_factor = {"tensor": torch.tensor(5.0, dtype=torch.float64), "tensor0": torch.tensor(0.0)}.get(
        avg_factor, avg_factor
    )
    compare(
        face.FocalLoss(),
        mmdet["focal_loss"].FocalLoss(),
        (pred, labels),
        (),
        {"avg_factor": avg_factor, "reduction_override": reduction},
    )
    if float(avg_factor) == 0 and reduction == "mean":
        assert face.FocalLoss()(pred, labels, torch.zeros(N, dtype=torch.float64), avg_factor=avg_factor).item() == 0


def test_focal_loss_activated(mmdet):
    """activated=True: probabilities instead of logits (mmdet's py_focal_loss_with_prob)."""
    g = torch.Generator().manual_seed(2)
    probs = torch.rand(N, C, generator=g, dtype=torch.float64) * 0.98 + 0.01
    labels = torch.randint(0, C + 1, (N,), generator=g)
    for target in (labels, torch.nn.functional.one_hot(labels, C + 1)[:, :C].double()):
        compare(
            face.FocalLoss(activated=True),
            mmdet["focal_loss"].FocalLoss(activated=True),
            (probs, target),
            rtol=1e-9,
            atol=1e-12,
        )


def test_focal_loss_arguments():
    with pytest.raises(ValueError, match="use_sigmoid"):
        face.FocalLoss(use_sigmoid=False)
    with pytest.raises(ValueError, match="avg_factor can not be used"):
        face.FocalLoss()(torch.randn(3, 2), torch.tensor([0, 1, 2]), avg_factor=2, reduction_override="sum")
    with pytest.raises(ValueError, match="Invalid reduction_override"):
        face.FocalLoss()(torch.randn(3, 2), torch.tensor([0, 1, 2]), reduction_override="avg")


# ---- CrossEntropyLoss ------------------------------------------------------------------------


@pytest.mark.parametrize("class_weight", [None, [0.5, 1.0, 2.0, 1.5, 0.25]])
@pytest.mark.parametrize("ignore_index", [None, -100, 2])
@pytest.mark.parametrize("avg_non_ignore", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy(mmdet, class_weight, ignore_index, avg_non_ignore, reduction):
    g = torch.Generator().manual_seed(3)
    pred = torch.randn(N, C, generator=g, dtype=torch.float64) * 2
    labels = torch.randint(0, C, (N,), generator=g)
    labels[::4] = -100 if ignore_index is None else ignore_index
    weight = torch.rand(N, generator=g, dtype=torch.float64)
    options = dict(
        class_weight=class_weight,
        ignore_index=ignore_index,
        avg_non_ignore=avg_non_ignore,
        reduction=reduction,
        loss_weight=1.5,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, theirs = face.CrossEntropyLoss(**options), mmdet["cross_entropy_loss"].CrossEntropyLoss(**options)
    for w in (None, weight):
        compare(ours, theirs, (pred, labels), (w,))
    if reduction != "sum":
        compare(ours, theirs, (pred, labels), (weight,), {"avg_factor": 11.0})


def test_cross_entropy_all_ignored_and_spatial(mmdet):
    """All positions ignored: 0 with avg_non_ignore (mmdet's eps); (N, C, H, W) scores."""
    ours, theirs = (
        face.CrossEntropyLoss(avg_non_ignore=True),
        mmdet["cross_entropy_loss"].CrossEntropyLoss(avg_non_ignore=True),
    )
    pred = torch.randn(6, C, dtype=torch.float64)
    labels = torch.full((6,), -100)
    compare(ours, theirs, (pred, labels))
    assert ours(pred, labels).item() == 0.0
    pred = torch.randn(2, C, 3, 4, dtype=torch.float64)
    labels = torch.randint(0, C, (2, 3, 4))
    compare(ours, theirs, (pred, labels))


@pytest.mark.parametrize("label_kind", ["labels", "float"])
@pytest.mark.parametrize("avg_non_ignore", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy(mmdet, label_kind, avg_non_ignore, reduction):
    """In float32: mmdet casts the labels and weights to float32 (label.float()), whatever the scores."""
    g = torch.Generator().manual_seed(4)
    pred = torch.randn(N, C, generator=g, dtype=torch.float32)
    if label_kind == "labels":  # background C, negative and ignored labels among them
        label = torch.randint(-1, C + 1, (N,), generator=g)
        label[::5] = 255
        weight = torch.rand(N, generator=g, dtype=torch.float32)
    else:
        label = torch.rand(N, C, generator=g, dtype=torch.float32)
        label[0, :2] = -1.0
        weight = torch.rand(N, C, generator=g, dtype=torch.float32)
    for class_weight in (None, [0.5, 2.0, 1.0, 3.0, 0.25]):  # class_weight: BCE's pos_weight
        options = dict(
            use_sigmoid=True,
            ignore_index=255,
            avg_non_ignore=avg_non_ignore,
            reduction=reduction,
            class_weight=class_weight,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours, theirs = face.CrossEntropyLoss(**options), mmdet["cross_entropy_loss"].CrossEntropyLoss(**options)
        for w in (None, weight):
            compare(ours, theirs, (pred, label), (w,), dtype=torch.float32)


def test_mask_cross_entropy(mmdet):
    g = torch.Generator().manual_seed(5)
    pred = torch.randn(6, C, 7, 7, generator=g, dtype=torch.float64)
    target = torch.rand(6, 7, 7, generator=g, dtype=torch.float64).round()
    label = torch.randint(0, C, (6,), generator=g)
    compare(
        face.CrossEntropyLoss(use_mask=True),
        mmdet["cross_entropy_loss"].CrossEntropyLoss(use_mask=True),
        (pred, target),
        (label,),
    )


def test_cross_entropy_state_dict_and_pickle(mmdet):
    """class_weight stays the config's list: mmdet's checkpoints (empty loss state) load strictly."""
    ours = face.CrossEntropyLoss(class_weight=[1.0, 2.0, 0.5])
    theirs = mmdet["cross_entropy_loss"].CrossEntropyLoss(class_weight=[1.0, 2.0, 0.5])
    assert list(ours.state_dict()) == list(theirs.state_dict()) == []
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert ours.class_weight == [1.0, 2.0, 0.5]
    ours(torch.randn(4, 3), torch.tensor([0, 1, 2, 1]))
    clone = pickle.loads(pickle.dumps(ours))
    assert clone.class_weight == [1.0, 2.0, 0.5] and clone._class_weight_tensors == {}


def test_face_constructor_arguments_match_mmdet(mmdet):
    """Each class takes exactly mmdet's constructor arguments, with mmdet's defaults and attributes."""
    import inspect

    pairs = [
        (face.FocalLoss, mmdet["focal_loss"].FocalLoss),
        (face.CrossEntropyLoss, mmdet["cross_entropy_loss"].CrossEntropyLoss),
        (face.IoULoss, mmdet["iou_loss"].IoULoss),
        (face.GIoULoss, mmdet["iou_loss"].GIoULoss),
        (face.DIoULoss, mmdet["iou_loss"].DIoULoss),
        (face.CIoULoss, mmdet["iou_loss"].CIoULoss),
        (face.SIoULoss, mmdet["iou_loss"].SIoULoss),
        (face.EIoULoss, mmdet["iou_loss"].EIoULoss),
        (face.BoundedIoULoss, mmdet["iou_loss"].BoundedIoULoss),
        (face.L1Loss, mmdet["smooth_l1_loss"].L1Loss),
        (face.SmoothL1Loss, mmdet["smooth_l1_loss"].SmoothL1Loss),
        (face.BalancedL1Loss, mmdet["balanced_l1_loss"].BalancedL1Loss),
        (face.MSELoss, mmdet["mse_loss"].MSELoss),
        (face.DiceLoss, mmdet["dice_loss"].DiceLoss),
    ]
    for ours, theirs in pairs:
        ours_params = [(p.name, p.default) for p in inspect.signature(ours.__init__).parameters.values()]
        theirs_params = [(p.name, p.default) for p in inspect.signature(theirs.__init__).parameters.values()]
        assert ours_params == theirs_params, ours
        want = theirs()
        got = ours()
        for name, value in vars(want).items():
            if not name.startswith("_") and name not in ("training", "cls_criterion"):
                assert getattr(got, name) == value, (ours, name)
        assert list(got.state_dict()) == list(want.state_dict())


# ---- the IoU family --------------------------------------------------------------------------


def box_pairs(n, seed, near):
    g = torch.Generator().manual_seed(seed)
    target = random_boxes(n, generator=g)
    pred = random_boxes(n, generator=g, near=target) if near else random_boxes(n, generator=g)
    return pred, target


IOU_CLASSES = ["IoULoss", "GIoULoss", "DIoULoss", "CIoULoss", "SIoULoss", "EIoULoss"]


@pytest.mark.parametrize("name", IOU_CLASSES)
@pytest.mark.parametrize("near", [True, False])
@pytest.mark.parametrize("eps", [1e-6, 1e-2])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_iou_family(mmdet, name, near, eps, reduction):
    pred, target = box_pairs(200, 6, near)
    weight = torch.rand(200, dtype=torch.float64)
    variants = {
        "IoULoss": [{"mode": m} for m in ("log", "linear", "square")],
        "SIoULoss": [{}, {"neg_gamma": True}],
        "EIoULoss": [{}, {"smooth_point": 0.4}],
    }.get(name, [{}])
    for variant, w in itertools.product(variants, (None, weight, weight[:, None].expand(200, 4).contiguous())):
        options = dict(eps=eps, reduction=reduction, loss_weight=1.5, **variant)
        compare(getattr(face, name)(**options), getattr(mmdet["iou_loss"], name)(**options), (pred, target), (w,))
        if reduction == "mean":
            compare(
                getattr(face, name)(**options),
                getattr(mmdet["iou_loss"], name)(**options),
                (pred, target),
                (w,),
                {"avg_factor": 13},
            )


def test_iou_family_gate_and_mixed_overlaps(mmdet):
    """CIoU's α gate at IoU 0.5 and mmdet's floors, on boxes of every overlap (incl. disjoint)."""
    pred, target = box_pairs(500, 7, True)
    far, target_far = box_pairs(500, 8, False)
    pred, target = torch.cat([pred, far]), torch.cat([target, target_far])
    ious = 1 - fastloss.iou_loss(pred, target)
    assert (ious > 0.5).any() and (ious < 0.5).any() and (ious == 0).any()
    for name in IOU_CLASSES:
        compare(getattr(face, name)(), getattr(mmdet["iou_loss"], name)(), (pred, target))
    compare(face.IoULoss(linear=True), mmdet["iou_loss"].IoULoss(linear=True), (pred, target))


@pytest.mark.parametrize("near", [True, False])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bounded_iou(mmdet, near, reduction):
    """Four components per box ((n, 4) losses), the target without gradient; every weight shape."""
    pred, target = box_pairs(200, 14, near)
    g = torch.Generator().manual_seed(15)
    for options in ({}, {"beta": 0.5, "eps": 1e-2, "loss_weight": 2.0}):
        ours, theirs = (
            face.BoundedIoULoss(reduction=reduction, **options),
            mmdet["iou_loss"].BoundedIoULoss(reduction=reduction, **options),
        )
        for w in (
            None,
            torch.rand(200, 4, generator=g, dtype=torch.float64),
            torch.rand(200, 1, generator=g, dtype=torch.float64),
        ):
            compare(ours, theirs, (pred, target), (w,))
        if reduction == "mean":
            compare(ours, theirs, (pred, target), (None,), {"avg_factor": 17.0})
    target = target.clone().requires_grad_()
    face.BoundedIoULoss()(pred.clone().requires_grad_(), target).backward()
    assert target.grad is None or not target.grad.any()


@pytest.mark.parametrize("name", IOU_CLASSES + ["BoundedIoULoss", "L1Loss", "SmoothL1Loss"])
def test_all_zero_weight(mmdet, name):
    """No positive weight: mmdet returns (pred * weight).sum() — here without reading the weights."""
    pred, target = box_pairs(10, 9, True)
    module_file = "iou_loss" if name in IOU_CLASSES else "smooth_l1_loss"
    weights = [torch.zeros(10, 4, dtype=torch.float64)] + (
        [torch.zeros(10, dtype=torch.float64)] if name in IOU_CLASSES else []
    )
    module_file = "iou_loss" if name in IOU_CLASSES + ["BoundedIoULoss"] else module_file
    for weight in weights:
        for reduction in ("mean", "sum"):
            compare(
                getattr(face, name)(reduction=reduction),
                getattr(mmdet[module_file], name)(reduction=reduction),
                (pred, target),
                (weight,),
            )


def test_iou_float16_pred(mmdet):
    """float16 pred, float32 target (AMP): IoU/GIoU computed in float32 and returned in float16, as mmdet."""
    pred, target = box_pairs(64, 10, True)
    for name in ("IoULoss", "GIoULoss"):
        got = getattr(face, name)(reduction="none")(pred.half(), target.float())
        want = getattr(mmdet["iou_loss"], name)(reduction="none")(pred.half(), target.float())
        assert got.dtype == want.dtype == torch.float16
        assert_close(got, want, torch.float16)
    for name in ("DIoULoss", "CIoULoss"):
        got = getattr(face, name)(reduction="none")(pred.half(), target.float())
        want = getattr(mmdet["iou_loss"], name)(reduction="none")(pred.half().float(), target.float())
        assert got.dtype == torch.float32
        assert_close(got, want, torch.float32, rtol=1e-5, atol=1e-6)


# ---- L1, Smooth L1, MSE ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,module_file",
    [
        ("L1Loss", "smooth_l1_loss"),
        ("SmoothL1Loss", "smooth_l1_loss"),
        ("MSELoss", "mse_loss"),
        ("BalancedL1Loss", "balanced_l1_loss"),
    ],
)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_element_losses(mmdet, name, module_file, reduction):
    g = torch.Generator().manual_seed(11)
    pred, target = (
        torch.randn(N, 4, generator=g, dtype=torch.float64),
        torch.randn(N, 4, generator=g, dtype=torch.float64),
    )
    weight = torch.rand(N, 4, generator=g, dtype=torch.float64)
    options = {"SmoothL1Loss": {"beta": 0.5}, "BalancedL1Loss": {"alpha": 0.4, "gamma": 1.8, "beta": 0.8}}.get(name, {})
    ours = getattr(face, name)(reduction=reduction, loss_weight=2.0, **options)
    theirs = getattr(mmdet[module_file], name)(reduction=reduction, loss_weight=2.0, **options)
    for w in (None, weight):
        compare(ours, theirs, (pred, target), (w,))
    if reduction != "sum":
        compare(ours, theirs, (pred, target), (weight,), {"avg_factor": torch.tensor(9.0, dtype=torch.float64)})


@pytest.mark.parametrize("name", ["L1Loss", "SmoothL1Loss"])
def test_empty_element_loss_is_zero(mmdet, name):
    """Empty L1 / Smooth L1: 0, as mmdet (and fastloss's other losses)."""
    pred = torch.zeros(0, 4, dtype=torch.float64, requires_grad=True)
    got = getattr(face, name)()(pred, torch.zeros(0, 4, dtype=torch.float64))
    want = getattr(mmdet["smooth_l1_loss"], name)()(pred, torch.zeros(0, 4, dtype=torch.float64))
    assert got.item() == want.item() == 0.0
    got.backward()


# ---- DiceLoss -------------------------------------------------------------------------------


@pytest.mark.parametrize("naive_dice", [False, True])
@pytest.mark.parametrize("activate", [True, False])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_dice_loss(mmdet, naive_dice, activate, reduction):
    """In float32: mmdet sums the target (and adds eps to it) in float32 (target.float())."""
    g = torch.Generator().manual_seed(12)
    pred = torch.randn(4, 9, 11, generator=g, dtype=torch.float32)
    if not activate:
        pred = pred.sigmoid()
    target = (torch.rand(4, 9, 11, generator=g) > 0.6).float()
    weight = torch.rand(4, generator=g, dtype=torch.float32)
    options = dict(naive_dice=naive_dice, activate=activate, reduction=reduction, eps=1e-2)
    ours, theirs = face.DiceLoss(**options), mmdet["dice_loss"].DiceLoss(**options)
    for w in (None, weight):
        compare(ours, theirs, (pred, target), (w,), dtype=torch.float32)
    if reduction == "mean":
        compare(ours, theirs, (pred, target), (weight,), {"avg_factor": 3}, dtype=torch.float32)


# ---- registry, TorchScript --------------------------------------------------------------------


def test_registry_with_mmengine(monkeypatch):
    """With mmdet installed, importing fastloss.mmdet registers "Fast<Name>" in mmdet's MODELS: a
    stand-in mmdet.registry around a real mmengine Registry, and a config dict built through it."""
    mmengine = peer("mmengine")
    registry = mmengine.Registry("model")
    monkeypatch.setitem(sys.modules, "mmdet", types.ModuleType("mmdet"))
    monkeypatch.setitem(sys.modules, "mmdet.registry", types.SimpleNamespace(MODELS=registry))
    assert face.register() is registry
    loss = registry.build(dict(type="FastFocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0))
    assert isinstance(loss, face.FocalLoss) and loss.gamma == 2.0
    loss = registry.build(dict(type="FastCrossEntropyLoss", use_sigmoid=False, loss_weight=1.0, class_weight=[1, 2]))
    assert loss.class_weight == [1, 2]
    assert set(face.REGISTERED_NAMES) <= set(registry.module_dict)
    face.register()  # importing twice (reload) does not fail
    monkeypatch.setitem(sys.modules, "mmdet.registry", None)  # no mmdet: nothing to register with
    assert face.register() is None


def test_torchscript_says_what_to_use():
    for obj in (
        face.FocalLoss(),
        face.GIoULoss(),
        fastloss.nn.DiceLoss(),
        fastloss.giou_loss,
        fastloss.sigmoid_focal_loss,
        fastloss.reference.dice_loss,
    ):
        with pytest.raises(RuntimeError, match="torch.compile"):
            torch.jit.script(obj)


@pytest.mark.parametrize("name", IOU_CLASSES + ["BoundedIoULoss"])
def test_inverted_boxes_as_mmdet(mmdet, name):
    """Random corners (x2 < x1 half the time): mmdet's formulas on them, not fastloss's repair —
    negative sides, their products as areas, the enclosing box's sides clamped at 0 — NaN where
    mmdet's are (SIoU's |w_p − w_t| / max(w_p, w_t) of two negative widths)."""
    g = torch.Generator().manual_seed(13)
    pred, target = (
        torch.rand(500, 4, generator=g, dtype=torch.float64) * 10,
        torch.rand(500, 4, generator=g, dtype=torch.float64) * 10,
    )
    results = []
    for module in (getattr(face, name)(reduction="none"), getattr(mmdet["iou_loss"], name)(reduction="none")):
        leaf = pred.clone().requires_grad_()
        loss = module(leaf, target)
        results.append((loss.detach(), torch.autograd.grad(loss.sum(), leaf)[0]))
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, rtol=1e-7, atol=1e-9, equal_nan=True)


def test_ciou_of_identical_boxes_is_the_finite_limit():
    """mmdet's CIoU is NaN for identical float32 boxes (α = v / (1 − IoU + v) = 0/0 once IoU rounds to
    1); the face gives the limit (α·v → 0) and a finite gradient, as the core ciou_loss does."""
    box = torch.tensor([[10.0, 10.0, 50.0, 60.0], [0.0, 0.0, 1.0, 1.0], [5.0, 5.0, 5.0, 9.0]])
    for dtype in (torch.float32, torch.float64, torch.float16):
        pred = box.to(dtype).clone().requires_grad_()
        loss = face.CIoULoss(reduction="none")(pred, box.to(dtype))
        loss.sum().backward()
        # (the zero-width box has no area: IoU 0 with itself, loss 1)
        assert torch.isfinite(loss).all() and loss[:2].abs().max() < 1e-3 and loss[2] == 1, (dtype, loss)
        assert torch.isfinite(pred.grad).all(), dtype
