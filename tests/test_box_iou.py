"""The IoU family (IoU, GIoU, DIoU, CIoU, EIoU, Focal-EIoU, CDIoU) against the reference and
torchvision: values, gradients, formats, bad boxes, registration, torch.compile, bad input."""

import pytest
import torch

import fastloss
from fastloss import reference
from helpers import DEVICES, FLOAT_DTYPES, assert_close, loss_and_grads, needs, peer, random_boxes, to_format

torchvision_ops = peer("torchvision.ops")
needs_torchvision = needs("torchvision.ops")
KINDS = ["iou", "giou", "diou", "ciou", "eiou", "focal_eiou", "cdiou"]
FORMATS = ["xyxy", "xywh", "cxcywh"]
REDUCTIONS = ["none", "mean", "sum"]
TORCHVISION_NAMES = {
    "giou": "generalized_box_iou_loss",
    "diou": "distance_box_iou_loss",
    "ciou": "complete_box_iou_loss",
}


def fused(kind):
    return getattr(fastloss, kind + "_loss")


def ref(kind):
    return getattr(reference, kind + "_loss")


def pairs(n=300, device="cpu", dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    target = random_boxes(n, generator=g)
    pred = random_boxes(n, generator=g, near=target)
    pred[: n // 5] = random_boxes(n // 5, generator=g)  # some far apart (no overlap)
    return pred.to(device=device, dtype=dtype), target.to(device=device, dtype=dtype)


# ------------------------------------------------------------------------------------- torchvision


@needs_torchvision
def test_torchvision_published_cases():
    box1, box2 = torch.tensor([-1.0, -1, 1, 1]), torch.tensor([0.0, 0, 1, 1])
    box3, box4 = torch.tensor([0.0, 1, 1, 2]), torch.tensor([1.0, 1, 2, 2])
    firsts, seconds = torch.stack([box1, box1, box2, box2]), torch.stack([box1, box2, box3, box4])
    assert fastloss.generalized_box_iou_loss(firsts, seconds).tolist() == pytest.approx([0.0, 0.75, 1.0, 1.5], abs=1e-6)
    assert fastloss.distance_box_iou_loss(firsts, seconds).tolist() == pytest.approx([0.0, 0.8125, 1.2, 1.25], abs=1e-6)
    assert fastloss.complete_box_iou_loss(box1, box2).item() == pytest.approx(0.8125, abs=1e-6)  # a (4,) pair
    for name in TORCHVISION_NAMES.values():
        want = getattr(torchvision_ops, name)(firsts, seconds)
        torch.testing.assert_close(getattr(fastloss, name)(firsts, seconds), want)


@needs_torchvision
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", list(TORCHVISION_NAMES))
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_matches_torchvision_float64_with_gradients(device, kind, reduction):
    pred, target = pairs(device=device)
    tv = getattr(torchvision_ops, TORCHVISION_NAMES[kind])
    got, got_grads = loss_and_grads(
        getattr(fastloss, TORCHVISION_NAMES[kind]),
        (pred.requires_grad_(), target.requires_grad_()),
        reduction=reduction,
    )
    want, want_grads = loss_and_grads(tv, (pred, target), reduction=reduction)
    assert_close(got, want)
    for g, w in zip(got_grads, want_grads):
        assert_close(g, w)


@needs_torchvision
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", list(TORCHVISION_NAMES))
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_matches_torchvision_float32(device, kind, reduction):
    """fp32 equals torchvision to rel. 1e-5: against torchvision's exact (fp64) value of the same
    fp32 boxes, and against torchvision's fp32 result."""
    pred, target = pairs(2000, device=device, dtype=torch.float32)
    tv = getattr(torchvision_ops, TORCHVISION_NAMES[kind])
    got = fused(kind)(pred, target, reduction)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), tv(pred.double(), target.double(), reduction), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(got, tv(pred, target, reduction), rtol=1e-5, atol=1e-6)


def test_ciou_aspect_ratio_term():
    """Non-square boxes: the α·v term that torchvision's tests never exercise."""
    pred = torch.tensor([[0.0, 0.0, 4.0, 1.0], [1.0, 1.0, 2.0, 5.0]], dtype=torch.float64, requires_grad=True)
    target = torch.tensor([[0.5, 0.0, 2.5, 2.0], [1.0, 1.0, 3.0, 2.0]], dtype=torch.float64)
    ciou, diou = fastloss.ciou_loss(pred, target), fastloss.diou_loss(pred, target)
    iou = 1 - fastloss.iou_loss(pred, target)
    w_p, h_p = pred[:, 2] - pred[:, 0], pred[:, 3] - pred[:, 1]
    w_t, h_t = target[:, 2] - target[:, 0], target[:, 3] - target[:, 1]
    v = 4 / torch.pi**2 * (torch.atan(w_t / h_t) - torch.atan(w_p / h_p)) ** 2
    alpha = v / (1 - iou + v + 1e-7)
    assert (v > 0.05).all()
    assert_close(ciou, diou + alpha * v)
    assert_close(ciou, reference.ciou_loss(pred, target))
    if torchvision_ops is not None:
        assert_close(ciou, torchvision_ops.complete_box_iou_loss(pred, target))
    (g1,) = torch.autograd.grad(ciou.sum(), pred)
    (g2,) = torch.autograd.grad(reference.ciou_loss(pred, target).sum(), pred)
    assert_close(g1, g2)


# --------------------------------------------------------------------------------------- reference


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("box_format", FORMATS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_matches_reference_all_kinds_and_formats(device, kind, box_format, reduction):
    pred, target = (to_format(b, box_format) for b in pairs(device=device))
    got, got_grads = loss_and_grads(
        fused(kind), (pred.requires_grad_(), target.requires_grad_()), reduction=reduction, box_format=box_format
    )
    want, want_grads = loss_and_grads(ref(kind), (pred, target), reduction=reduction, box_format=box_format)
    assert_close(got, want)
    for g, w in zip(got_grads, want_grads):
        assert_close(g, w)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("box_format", ["xywh", "cxcywh"])
def test_formats_give_the_xyxy_loss(kind, box_format):
    pred, target = pairs()
    want = fused(kind)(pred, target)
    assert_close(
        fused(kind)(to_format(pred, box_format), to_format(target, box_format), box_format=box_format),
        want,
        rtol=1e-9,
        atol=1e-12,
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_dtypes(device, dtype, kind):
    pred, target = pairs(257, device=device, dtype=dtype)
    pred.requires_grad_()
    got, (gp,) = loss_and_grads(fused(kind), (pred, target), reduction="mean")
    want, (wp,) = loss_and_grads(ref(kind), (pred, target), reduction="mean")
    assert got.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)  # torchvision's rule
    assert gp.dtype == dtype
    assert_close(got, want, dtype)
    assert_close(gp, wp)


@pytest.mark.parametrize("mode", ["linear", "log", "square"])
def test_iou_modes(mode):
    pred, target = pairs()
    iou = 1 - fastloss.iou_loss(pred, target)
    want = {"linear": 1 - iou, "log": -iou.clamp(min=1e-7).log(), "square": 1 - iou**2}[mode]
    assert_close(fastloss.iou_loss(pred, target, mode=mode), want)


def test_focal_eiou_weights_eiou_by_iou_power():
    pred, target = pairs()
    iou = 1 - fastloss.iou_loss(pred, target)
    for gamma in (0.5, 0.0, 1.0, 2.0, 1.7):
        want = iou**gamma * fastloss.eiou_loss(pred, target)
        assert_close(fastloss.focal_eiou_loss(pred, target, gamma=gamma), want)


def test_cdiou_lambda_scales_the_corner_term():
    pred, target = pairs()
    base = fastloss.iou_loss(pred, target)
    one = fastloss.cdiou_loss(pred, target) - base
    assert (one > 0).all()
    assert_close(fastloss.cdiou_loss(pred, target, lambd=2.5) - base, 2.5 * one)


# ---------------------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["iou", "giou", "diou", "eiou", "cdiou"])
@pytest.mark.parametrize("box_format", FORMATS)
def test_gradcheck(device, kind, box_format):
    pred, target = (to_format(b, box_format).requires_grad_() for b in pairs(12, device=device, seed=3))
    assert torch.autograd.gradcheck(lambda p, t: fused(kind)(p, t, "sum", box_format=box_format), (pred, target))


@pytest.mark.parametrize("box_format", FORMATS)
def test_gradcheck_iou_modes(box_format):
    pred, target = (to_format(b, box_format).requires_grad_() for b in pairs(12, seed=4))
    for mode in ("log", "square"):
        assert torch.autograd.gradcheck(
            lambda p, t: fastloss.iou_loss(p, t, "sum", box_format=box_format, mode=mode), (pred, target)
        )


@pytest.mark.parametrize("box_format", FORMATS)
def test_gradcheck_ciou_with_alpha_frozen(box_format):
    """α is a constant of the gradient by definition, so gradcheck the loss with α frozen at the
    base point: value DIoU + α₀·v, gradient from the fused kernel."""
    pred0, target0 = (to_format(b, box_format) for b in pairs(12, seed=5))
    with torch.no_grad():
        alpha0 = _alpha(pred0, target0, box_format)

    def frozen(p, t):
        with torch.no_grad():
            correction = (alpha0 - _alpha(p, t, box_format)) * _v(p, t, box_format)
        return fastloss.ciou_loss(p, t, "none", box_format=box_format) + correction

    assert torch.autograd.gradcheck(frozen, (pred0.requires_grad_(), target0.requires_grad_()))


def _corners(boxes, box_format):
    x1, y1, x2, y2 = boxes.unbind(-1) if box_format == "xyxy" else to_xyxy(boxes, box_format).unbind(-1)
    return x1, y1, x2, y2


def to_xyxy(boxes, box_format):
    a, b, c, d = boxes.unbind(-1)
    if box_format == "xywh":
        return torch.stack([a, b, a + c, b + d], -1)
    return torch.stack([a - c / 2, b - d / 2, a + c / 2, b + d / 2], -1)


def _v(p, t, box_format):
    x1, y1, x2, y2 = _corners(p, box_format)
    x1g, y1g, x2g, y2g = _corners(t, box_format)
    return 4 / torch.pi**2 * (torch.atan2(x2g - x1g, y2g - y1g) - torch.atan2(x2 - x1, y2 - y1)) ** 2


def _alpha(p, t, box_format):
    iou = 1 - fastloss.iou_loss(p, t, box_format=box_format)
    v = _v(p, t, box_format)
    return v / (1 - iou + v + 1e-7)


@pytest.mark.parametrize("box_format", FORMATS)
@pytest.mark.parametrize("gamma", [0.5, 1.3])
def test_gradcheck_focal_eiou_with_weight_frozen(box_format, gamma):
    """IoU^γ is a constant of the gradient by definition: gradcheck IoU₀^γ · EIoU."""
    pred0, target0 = (to_format(b, box_format) for b in pairs(12, seed=6))
    with torch.no_grad():
        weight0 = (1 - fastloss.iou_loss(pred0, target0, box_format=box_format)) ** gamma

    def frozen(p, t):
        with torch.no_grad():
            iou = 1 - fastloss.iou_loss(p, t, box_format=box_format)
            correction = (weight0 - iou**gamma) * fastloss.eiou_loss(p, t, box_format=box_format)
        return fastloss.focal_eiou_loss(p, t, box_format=box_format, gamma=gamma) + correction

    assert torch.autograd.gradcheck(frozen, (pred0.requires_grad_(), target0.requires_grad_()))


def test_gradcheck_weighted_mean_three_dim():
    pred, target = pairs(24, seed=7)
    pred, target = pred.reshape(2, 12, 4).requires_grad_(), target.reshape(2, 12, 4).requires_grad_()
    w = torch.rand(2, 12, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda p, t: fastloss.giou_loss(p, t, "mean", weight=w), (pred, target))


# ---------------------------------------------------------------------------------------- bad boxes


def bad_boxes(dtype=torch.float32):
    """(pred, target) rows: zero width, zero height, zero size both, identical, touching, one inside
    the other, inverted pred, inverted both, huge coordinates."""
    pred = [
        [0, 0, 0, 2],
        [0, 0, 2, 0],
        [1, 1, 1, 1],
        [1, 2, 3, 5],
        [0, 0, 1, 1],
        [2, 2, 3, 3],
        [3, 3, 1, 1],
        [3, 3, 1, 1],
        [0, 0, 1e4, 1e4],
        [1e4, 1e4, 1.2e4, 1.1e4],
    ]
    target = [
        [0, 0, 1, 2],
        [0, 0, 2, 1],
        [1, 1, 1, 1],
        [1, 2, 3, 5],
        [1, 0, 2, 1],
        [0, 0, 5, 5],
        [0, 0, 2, 2],
        [2, 2, 0, 0],
        [1, 1, 9e3, 9.5e3],
        [0, 0, 1, 1],
    ]
    return torch.tensor(pred, dtype=dtype), torch.tensor(target, dtype=dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("box_format", FORMATS)
def test_bad_boxes_give_finite_loss_and_gradients(device, dtype, kind, box_format):
    pred, target = (to_format(b, box_format).to(device=device, dtype=dtype) for b in bad_boxes())
    pred.requires_grad_()
    target.requires_grad_()
    params = {"mode": "log"} if kind == "iou" else {}
    loss = fused(kind)(pred, target, box_format=box_format, **params)
    loss.sum().backward()
    assert torch.isfinite(loss).all(), loss
    assert torch.isfinite(pred.grad).all() and torch.isfinite(target.grad).all()


def test_identical_boxes_have_zero_loss_and_gradient():
    box = torch.tensor([[1.0, 2.0, 4.0, 7.0]], dtype=torch.float64)
    for kind in KINDS:
        pred = box.clone().requires_grad_()
        loss = fused(kind)(pred, box)
        loss.sum().backward()
        assert loss.item() == pytest.approx(0.0, abs=1e-6), kind
        assert pred.grad.abs().max().item() < 1e-6, kind


def test_inverted_boxes_are_zero_size_at_their_centre():
    inverted = torch.tensor([[3.0, 4.0, 1.0, 1.0]], dtype=torch.float64)
    collapsed = torch.tensor([[2.0, 2.5, 2.0, 2.5]], dtype=torch.float64)
    target = torch.tensor([[0.0, 0.0, 3.0, 3.0]], dtype=torch.float64)
    for kind in KINDS:
        assert_close(fused(kind)(inverted, target), fused(kind)(collapsed, target))


def test_disjoint_boxes_still_get_a_gradient_from_giou_and_diou():
    pred = torch.tensor([[0.0, 0.0, 1.0, 1.0]], requires_grad=True)
    target = torch.tensor([[3.0, 3.0, 4.0, 4.0]])
    for kind in ("giou", "diou", "ciou", "eiou", "cdiou"):
        (grad,) = torch.autograd.grad(fused(kind)(pred, target).sum(), pred)
        assert (grad[0, 2:] < 0).all(), kind  # moving the box towards the target lowers the loss


# ------------------------------------------------------------------------- weights, reductions, empty


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(30,), (30, 4), (), (1,)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_weights(device, shape, reduction):
    pred, target = pairs(30, device=device)
    pred.requires_grad_()
    w = torch.rand(shape, dtype=torch.float64, device=device)
    got, (gp,) = loss_and_grads(fastloss.diou_loss, (pred, target), reduction=reduction, weight=w)
    per_pair = w.mean(-1) if shape == (30, 4) else w
    unweighted = reference.diou_loss(pred.detach(), target)
    want = {
        "none": unweighted * per_pair,
        "sum": (unweighted * per_pair).sum(),
        "mean": (unweighted * per_pair).mean(),
    }[reduction]
    assert_close(got, want)
    _, (wp,) = loss_and_grads(reference.diou_loss, (pred, target), reduction=reduction, weight=w)
    assert_close(gp, wp)


@pytest.mark.parametrize("avg_factor", [5.0, torch.tensor(3.5)])
def test_avg_factor(avg_factor):
    pred, target = pairs(20)
    got = fastloss.giou_loss(pred, target, "mean", avg_factor=avg_factor)
    assert_close(got, fastloss.giou_loss(pred, target, "sum") / avg_factor)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_empty_inputs(device, kind, reduction):
    pred = torch.zeros(0, 4, device=device, requires_grad=True)
    loss = fused(kind)(pred, torch.zeros(0, 4, device=device), reduction)
    assert loss.shape == ((0,) if reduction == "none" else ())
    if reduction != "none":
        assert loss.item() == 0
    loss.sum().backward()
    assert pred.grad.shape == (0, 4)


def test_three_dim_and_single_pair_shapes():
    pred, target = pairs(24)
    batched = fastloss.ciou_loss(pred.reshape(2, 3, 4, 4), target.reshape(2, 3, 4, 4))
    assert batched.shape == (2, 3, 4)
    assert_close(batched.reshape(-1), fastloss.ciou_loss(pred, target))
    assert fastloss.ciou_loss(pred[0], target[0]).shape == ()


def test_integer_boxes_and_mixed_dtype_drop_ins():
    target = torch.tensor([[0, 0, 4, 4], [1, 1, 3, 5]])
    pred = torch.tensor([[1.0, 1, 5, 5], [1, 2, 3, 4]], dtype=torch.float64)
    assert_close(fastloss.giou_loss(target, target.float()), torch.zeros(2), torch.float32)
    got = fastloss.generalized_box_iou_loss(pred, target.float())  # torchvision promotes
    assert got.dtype == torch.float64
    assert_close(got, fastloss.giou_loss(pred, target.double()))


@pytest.mark.parametrize("kind", ["giou", "ciou"])
def test_deterministic_across_runs_and_thread_counts(kind):
    pred, target = pairs(50_000, dtype=torch.float32)
    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3, threads):
            torch.set_num_threads(n)
            results += [fused(kind)(pred, target, "mean") for _ in range(2)]
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(r, results[0]) for r in results)


# ------------------------------------------------------------------------------ registration, modules


OPCHECK_ARGS = {
    "giou mean": lambda d: (*[b.requires_grad_() for b in pairs(9, device=d)], None, 1, 0, 0, 1e-7, 0.5, 1.0, 2),
    "ciou none cxcywh weighted": lambda d: (
        *[to_format(b, "cxcywh").requires_grad_() for b in pairs(9, device=d)],
        torch.rand(9, dtype=torch.float64, device=d),
        3,
        0,
        2,
        1e-7,
        0.5,
        1.0,
        0,
    ),
    "focal_eiou sum float32": lambda d: (
        *[b.float().requires_grad_() for b in pairs(9, device=d)],
        None,
        5,
        0,
        1,
        1e-6,
        0.5,
        1.0,
        1,
    ),
    "iou log bfloat16": lambda d: (
        *[b.bfloat16().requires_grad_() for b in pairs(9, device=d)],
        None,
        0,
        1,
        0,
        1e-7,
        0.5,
        1.0,
        2,
    ),
    # the faces' conventions (1 mmdet, 2 ultralytics) and the second eps
    "ciou mmdet": lambda d: (
        *[b.requires_grad_() for b in pairs(9, device=d)],
        None,
        3,
        0,
        0,
        1e-6,
        0.5,
        1.0,
        0,
        1,
        0.0,
    ),
    "giou ultralytics": lambda d: (
        *[b.requires_grad_() for b in pairs(9, device=d)],
        None,
        1,
        0,
        0,
        1e-7,
        0.5,
        1.0,
        2,
        2,
        -1.0,
    ),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(OPCHECK_ARGS))
def test_opcheck(device, case):
    torch.library.opcheck(torch.ops.fastloss.box_iou_loss.default, OPCHECK_ARGS[case](device))


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck_backward_op(device):
    pred, target = pairs(9, device=device)
    grad = torch.ones(9, dtype=torch.float64, device=device)
    torch.library.opcheck(
        torch.ops.fastloss.box_iou_loss_backward.default,
        (grad, pred, target, None, 6, 0, 0, 1e-7, 0.5, 1.0, 0, True, True),
    )
    torch.library.opcheck(
        torch.ops.fastloss.box_iou_loss_backward.default,
        (grad, pred, target, None, 0, 2, 0, 1e-6, 0.5, 1.0, 0, True, True, 1, 1e-3),
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["giou", "ciou"])
def test_torch_compile_fullgraph_matches_eager(device, kind):
    pred, target = pairs(64, device=device, dtype=torch.float32)
    pred.requires_grad_()

    def step(p, t):
        return fused(kind)(p, t, "mean", box_format="xyxy") * 3.0

    got, (g1,) = loss_and_grads(torch.compile(step, fullgraph=True), (pred, target))
    want, (g2,) = loss_and_grads(step, (pred, target))
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(g1, g2)


def test_modules():
    pred, target = pairs(16, dtype=torch.float32)
    w = torch.rand(16, 4)
    module = fastloss.nn.GIoULoss()
    assert module.eps == 1e-7 and module.reduction == "mean"
    got = module(pred, target, weight=w, avg_factor=4.0)
    assert_close(got, fastloss.giou_loss(pred, target, "sum", weight=w.mean(-1)) / 4.0)
    assert fastloss.nn.GIoULoss(reduction="none")(pred, target).shape == (16,)
    assert_close(fastloss.nn.IoULoss(mode="log")(pred, target), fastloss.iou_loss(pred, target, "mean", mode="log"))
    assert_close(
        fastloss.nn.FocalEIoULoss(gamma=1.0)(pred, target),
        fastloss.focal_eiou_loss(pred, target, "mean", gamma=1.0),
    )
    assert_close(
        fastloss.nn.CDIoULoss(1e-6, lambd=0.5, box_format="xywh")(pred, target),
        fastloss.cdiou_loss(pred, target, "mean", 1e-6, box_format="xywh", lambd=0.5),
    )
    for name in ("DIoULoss", "CIoULoss", "EIoULoss"):
        kind = name[: -len("Loss")].lower()
        assert_close(getattr(fastloss.nn, name)()(pred, target), fused(kind)(pred, target, "mean"))


# ---------------------------------------------------------------------------------------- bad input


def _args(**changes):
    pred, target = pairs(6)
    args = dict(pred=pred, target=target, reduction="mean")
    args.update(changes)
    return args


BAD_INPUTS = [
    (_args(pred=[[0.0, 0, 1, 1]]), TypeError, "pred must be a torch.Tensor"),
    (_args(pred=torch.zeros(6, 3, dtype=torch.float64)), ValueError, r"pred must have shape \(\.\.\., 4\)"),
    (_args(target=torch.zeros(6, 5, dtype=torch.float64)), ValueError, r"target must have shape \(\.\.\., 4\)"),
    (_args(target=torch.zeros(5, 4, dtype=torch.float64)), ValueError, "pred and target must have the same shape"),
    (
        _args(target=torch.zeros(6, 4, dtype=torch.float64, device="meta")),
        ValueError,
        "target and pred must be on the same device",
    ),
    (_args(pred=torch.zeros(6, 4, dtype=torch.bool)), TypeError, "pred must be a floating point"),
    (_args(box_format="yxyx"), ValueError, "box_format must be one of"),
    (_args(mode="cubic"), ValueError, "mode must be one of"),
    (_args(reduction="avg"), ValueError, "Invalid reduction"),
    (_args(eps=-1.0), ValueError, "eps must be >= 0"),
    (_args(weight=torch.ones(5)), ValueError, "weight of shape"),
    (_args(reduction="none", avg_factor=2.0), ValueError, "avg_factor can only be used with reduction='mean'"),
]


@pytest.mark.parametrize("args,error,message", BAD_INPUTS, ids=[m for _, _, m in BAD_INPUTS])
@pytest.mark.parametrize("impl", [fastloss, reference])
def test_bad_input_raises_clear_error(impl, args, error, message):
    args = dict(args)
    loss = impl.iou_loss if "mode" in args else impl.giou_loss
    with pytest.raises(error, match=message):
        loss(args.pop("pred"), args.pop("target"), **args)


@pytest.mark.parametrize("impl", [fastloss, reference])
def test_bad_loss_parameters(impl):
    pred, target = pairs(4)
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        impl.focal_eiou_loss(pred, target, gamma=-0.5)
    with pytest.raises(ValueError, match="lambd must be >= 0"):
        impl.cdiou_loss(pred, target, lambd=-1.0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'mode'"):
        impl.giou_loss(pred, target, mode="log")


def test_direct_op_call_checks_shapes():
    pred, target = pairs(6)
    with pytest.raises(RuntimeError, match="target must have pred's shape"):
        torch.ops.fastloss.box_iou_loss(pred, target[:5], None, 1, 0, 0, 1e-7, 0.5, 1.0, 2)
    with pytest.raises(RuntimeError, match="unknown kind"):
        torch.ops.fastloss.box_iou_loss(pred, target, None, 99, 0, 0, 1e-7, 0.5, 1.0, 2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("kind", KINDS)
def test_cuda_matches_cpu_and_is_deterministic(kind):
    pred, target = pairs(100_000, dtype=torch.float32)
    cpu = fused(kind)(pred, target, "sum")
    runs = [fused(kind)(pred.cuda(), target.cuda(), "sum") for _ in range(3)]
    assert all(torch.equal(r, runs[0]) for r in runs)
    torch.testing.assert_close(runs[0].cpu(), cpu, rtol=1e-5, atol=0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_ciou_of_a_point_box_uses_its_angle_zero(dtype):
    """A point box (w = h = 0, e.g. inverted in both axes) has the angle atan2(0, 0) = 0, as in the
    reference: the kernel's one-atan2 form of the angle difference once made it 0 against any box."""
    pred = torch.tensor([[-0.5, 2.7, 7.9, 0.4], [0.0, 0.0, 2.0, 1.0], [1.0, 1.0, 1.0, 1.0]], dtype=dtype)
    target = torch.tensor([[5.8, 2.9, 4.5, 1.8], [3.0, 3.0, 3.0, 3.0], [0.0, 0.0, 1.0, 3.0]], dtype=dtype)
    got, got_grads = loss_and_grads(fastloss.ciou_loss, (pred.requires_grad_(), target.requires_grad_()))
    want, want_grads = loss_and_grads(reference.ciou_loss, (pred, target))
    assert_close(got, want)
    for g in got_grads:
        assert torch.isfinite(g).all()


# ------------------------------------------------------------------------------ torchvision's names: every argument


@pytest.mark.skipif(torchvision_ops is None, reason="torchvision cannot be imported next to this torch")
@pytest.mark.parametrize("eps", [1e-7, 1e-3, 0.1, 1.0])
@pytest.mark.parametrize("name", ["generalized_box_iou_loss", "distance_box_iou_loss", "complete_box_iou_loss"])
def test_torchvision_names_every_eps(name, eps):
    """torchvision's numbers for any eps: complete_box_iou_loss uses its eps in α only (1e-7 in its
    DIoU part), as torchvision does."""
    pred, target = pairs(300, seed=21)
    got = loss_and_grads(getattr(fastloss, name), (pred.requires_grad_(), target), reduction="none", eps=eps)
    want = loss_and_grads(getattr(torchvision_ops, name), (pred, target), reduction="none", eps=eps)
    assert_close(got[0], want[0])
    assert_close(got[1][0], want[1][0])
    with pytest.raises(ValueError, match="Invalid"):  # torchvision's tests match this word
        getattr(fastloss, name)(pred, target, reduction="avg")


@pytest.mark.skipif(torchvision_ops is None, reason="torchvision cannot be imported next to this torch")
def test_float16_collinear_zero_height_boxes_overflow_as_torchvision():
    """Two collinear zero-height boxes: GIoU's exact derivative w.r.t. the heights is ±(cw − w)/eps
    (5e6 here), beyond float16: float16 gradients are ±inf, as torchvision's — an overflow that AMP's
    GradScaler sees and skips (a saturated finite value would slip through it). float32: finite."""
    pred = torch.tensor([[0.0, 0.0, 2.0, 0.0]])
    target = torch.tensor([[1.0, 0.0, 3.0, 0.0]])
    for dtype in (torch.float16, torch.float32):
        got = loss_and_grads(
            fastloss.generalized_box_iou_loss, (pred.to(dtype).requires_grad_(), target.to(dtype)), reduction="sum"
        )
        want = loss_and_grads(
            torchvision_ops.generalized_box_iou_loss,
            (pred.to(dtype).requires_grad_(), target.to(dtype)),
            reduction="sum",
        )
        assert torch.equal(got[1][0].isinf(), want[1][0].isinf())
        assert got[1][0].isfinite().all() == (dtype == torch.float32)
        assert torch.equal(got[1][0].sign(), want[1][0].sign())


def test_torch_export():
    """torch.export, the supported way to export a model using fastloss (TorchScript is refused)."""

    class Head(torch.nn.Module):
        def forward(self, pred, target):
            return fastloss.giou_loss(pred, target, "mean") + fastloss.ciou_loss(pred, target, "sum")

    pred, target = pairs(16, dtype=torch.float32)
    exported = torch.export.export(Head(), (pred, target))
    assert_close(exported.module()(pred, target), Head()(pred, target))
