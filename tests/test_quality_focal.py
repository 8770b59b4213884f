"""fastloss.varifocal_loss and fastloss.quality_focal_loss against their peers — mmdet 3.3.0's
varifocal_loss.py / gfocal_loss.py (from its wheel: tests/mmdet_peer.py), ultralytics' VarifocalLoss,
RT-DETR's / D-FINE's VFL as their code writes it — and the pure-torch reference; dense and sparse
targets, per-layer losses, gradients, registration, numerics and bad input. (gradgradcheck, vmap,
torch.func, compile dynamic/CUDA graphs, autocast, empty inputs and SIMD tails: the op record's
cases in test_guarantees.py.)"""

import itertools

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

import fastloss
import fastloss.mmdet as mmdet_face
import fastloss.ultralytics as ultralytics_face
from fastloss import reference
from helpers import DEVICES, FLOAT_DTYPES, assert_close, peer
from mmdet_peer import load

N, C = 53, 7
REDUCTIONS = ["none", "mean", "sum"]


@pytest.fixture(scope="module")
def mmdet(tmp_path_factory):
    return load(str(tmp_path_factory.mktemp("mmdet")))


def inputs(n=N, c=C, seed=0, device="cpu", dtype=torch.float64, scale=3.0):
    """Logits, labels (with background C and -1), scores (with zeros) and the dense one_hot·score."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(n, c, generator=g, dtype=torch.float64) * scale).to(device=device, dtype=dtype)
    labels = torch.randint(-1, c + 1, (n,), generator=g).to(device)
    scores = torch.rand(n, generator=g, dtype=torch.float64)
    scores[::6] = 0
    scores[1::6] = 1
    scores = scores.to(device=device, dtype=dtype)
    dense = (labels.unsqueeze(-1) == torch.arange(c, device=device)).to(dtype) * scores.unsqueeze(-1)
    return x, labels, scores, dense


def value_and_grad(fn, x, *args, **kwargs):
    x = x.detach().clone().requires_grad_()
    loss = fn(x, *args, **kwargs)
    (grad,) = torch.autograd.grad(loss.sum(), x)
    return loss.detach(), grad


def assert_same(got, want, dtype=torch.float64, rtol=None, atol=None):
    assert got[0].shape == want[0].shape
    for a, b in zip(got, want):
        assert_close(a, b, dtype, rtol, atol)


# ---- varifocal against mmdet ---------------------------------------------------------------------


@pytest.mark.parametrize("alpha,gamma", [(0.75, 2.0), (0.25, 1.5), (1.0, 0.5), (0.5, 0.0)])
@pytest.mark.parametrize("iou_weighted", [True, False])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_varifocal_equals_mmdet(mmdet, alpha, gamma, iou_weighted, reduction, weighted):
    x, labels, scores, dense = inputs()
    weight = torch.rand(N, C, dtype=torch.float64) if weighted else None
    kwargs = dict(alpha=alpha, gamma=gamma, iou_weighted=iou_weighted, reduction=reduction)
    want = value_and_grad(mmdet["varifocal_loss"].varifocal_loss, x, dense, weight, **kwargs)
    assert_same(value_and_grad(fastloss.varifocal_loss, x, dense, weight=weight, **kwargs), want)
    # the sparse form means the same target (mmdet's score mask: a zero score is a negative)
    assert_same(value_and_grad(fastloss.varifocal_loss, x, (labels, scores), weight=weight, **kwargs), want)


@pytest.mark.parametrize("avg_factor", [None, 9.0, torch.tensor(13.0, dtype=torch.float64)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("options", [{}, dict(alpha=0.5, gamma=1.0, iou_weighted=False, loss_weight=2.0)])
def test_mmdet_varifocal_module(mmdet, avg_factor, reduction, options):
    if avg_factor is not None and reduction == "sum":
        return  # mmdet raises there, as the face (tested below)
    x, _, _, dense = inputs(seed=1)
    ours = mmdet_face.VarifocalLoss(**options)
    theirs = mmdet["varifocal_loss"].VarifocalLoss(**options)
    kwargs = dict(avg_factor=avg_factor, reduction_override=reduction)
    assert_same(value_and_grad(ours, x, dense, **kwargs), value_and_grad(theirs, x, dense, **kwargs))
    with pytest.raises(ValueError, match="avg_factor"):
        ours(x, dense, avg_factor=3.0, reduction_override="sum")


# ---- RT-DETR / D-FINE and ultralytics -------------------------------------------------------------


def rtdetr_vfl(logits, labels, scores, num_boxes, alpha=0.75, gamma=2.0):
    """RT-DETR's loss_labels_vfl (and D-FINE's), as their criterion writes it: a one-hot target over C
    classes (labels == C: no object), the IoU score at the label, a detached weight, mean(1).sum()
    · Q / num_boxes."""
    c = logits.shape[-1]
    target = F.one_hot(labels, c + 1)[..., :c].to(logits.dtype)
    target_score = scores.unsqueeze(-1) * target
    pred_score = torch.sigmoid(logits).detach()
    weight = alpha * pred_score.pow(gamma) * (1 - target) + target_score
    loss = F.binary_cross_entropy_with_logits(logits, target_score, weight=weight, reduction="none")
    return loss.mean(1).sum() * logits.shape[1] / num_boxes


@pytest.mark.parametrize("alpha,gamma", [(0.75, 2.0), (0.5, 1.5)])
def test_varifocal_equals_rtdetr(alpha, gamma):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4, 30, C, generator=g, dtype=torch.float64) * 3
    labels = torch.randint(0, C + 1, (4, 30), generator=g)  # C: no object
    scores = torch.rand(4, 30, generator=g, dtype=torch.float64) * (labels < C)
    num_boxes = 17.0
    want = value_and_grad(lambda v: rtdetr_vfl(v, labels, scores, num_boxes, alpha, gamma), x)
    got = value_and_grad(
        fastloss.varifocal_loss,
        x,
        (labels, scores),
        alpha=alpha,
        gamma=gamma,
        negative_mask="label",
        detach_weight=True,
        avg_factor=num_boxes,
    )
    assert_same(got, want)
    module = fastloss.nn.VarifocalLoss(alpha=alpha, gamma=gamma, negative_mask="label", detach_weight=True)
    assert_same(value_and_grad(module, x, (labels, scores), avg_factor=torch.tensor(num_boxes)), want)


def test_per_layer_equals_one_call_per_decoder_layer():
    """(L, B, Q, C) with per-layer labels and scores: one launch, one loss per layer, each the layer's
    own RT-DETR loss; gradients of a weighted sum of layers as well."""
    g = torch.Generator().manual_seed(3)
    L = 6
    x = torch.randn(L, 2, 25, C, generator=g, dtype=torch.float64) * 3
    labels = torch.randint(0, C + 1, (L, 2, 25), generator=g)
    scores = torch.rand(L, 2, 25, generator=g, dtype=torch.float64)
    boxes = torch.arange(1.0, L + 1, dtype=torch.float64) * 3
    layer_weight = torch.rand(L, generator=g, dtype=torch.float64)
    want = value_and_grad(
        lambda v: torch.stack([rtdetr_vfl(v[i], labels[i], scores[i], boxes[i]) for i in range(L)]) * layer_weight, x
    )
    got = value_and_grad(
        lambda v: (
            fastloss.varifocal_loss(
                v, (labels, scores), negative_mask="label", detach_weight=True, avg_factor=boxes, per_layer=True
            )
            * layer_weight
        ),
        x,
    )
    assert_same(got, want)
    # "mean" per layer without avg_factor, and "sum"; the summed loss is the sum of the layers'
    for reduction in ("mean", "sum"):
        per_layer = fastloss.quality_focal_loss(x, (labels, scores), reduction=reduction, per_layer=True)
        each = torch.stack(
            [fastloss.quality_focal_loss(x[i], (labels[i], scores[i]), reduction=reduction) for i in range(L)]
        )
        assert per_layer.shape == (L,)
        assert_close(per_layer, each)
    assert_close(
        fastloss.quality_focal_loss(x, (labels, scores), reduction="sum", per_layer=True).sum(),
        fastloss.quality_focal_loss(x, (labels, scores), reduction="sum"),
    )
    # reduction "none" is elementwise whatever per_layer says
    assert fastloss.varifocal_loss(x, (labels, scores), reduction="none", per_layer=True).shape == x.shape


def test_per_layer_opcheck_and_compile():
    x, labels, scores, _ = inputs(n=12)
    x3 = torch.stack([x, x * 0.5, -x]).requires_grad_()
    lab3, sc3 = labels.expand(3, -1).contiguous(), scores.expand(3, -1).contiguous()
    torch.library.opcheck(
        torch.ops.fastloss.sigmoid_focal_loss.default,
        (x3, lab3, None, 0.75, 2.0, 2, -100, False, sc3, 1 | 4 | 8 | 32, None, 3),
    )

    def step(v):
        return fastloss.varifocal_loss(v, (lab3, sc3), negative_mask="label", per_layer=True)

    compiled = torch.compile(step, fullgraph=True, dynamic=True)
    assert_same(value_and_grad(compiled, x3), value_and_grad(step, x3))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16])
def test_ultralytics_varifocal(dtype):
    loss_module = peer("ultralytics.utils.loss")
    if loss_module is None:
        pytest.skip("ultralytics is not installed")
    g = torch.Generator().manual_seed(4)
    pred = (torch.randn(2, 40, C, generator=g, dtype=torch.float64) * 3).to(dtype)
    label = (torch.rand(2, 40, C, generator=g) > 0.8).long()
    gt_score = torch.rand(2, 40, C, generator=g, dtype=torch.float64).to(dtype)  # off the mask too
    for gamma, alpha in [(2.0, 0.75), (1.5, 0.25)]:
        ours = ultralytics_face.VarifocalLoss(gamma, alpha)
        theirs = loss_module.VarifocalLoss(gamma, alpha)
        got = value_and_grad(ours, pred, gt_score, label)
        want = value_and_grad(theirs, pred, gt_score, label)
        assert got[0].dtype == want[0].dtype and got[1].dtype == want[1].dtype
        if dtype == torch.float16:  # ours runs in float32 throughout: compare with theirs in float32
            want = value_and_grad(theirs, pred.float(), gt_score.float(), label)
            assert_same((got[0], got[1].float()), want, torch.float16)
        else:  # theirs takes its BCE in float32 even for float64 inputs
            assert_same(got, want, torch.float32)


# ---- quality focal against mmdet ------------------------------------------------------------------


@pytest.mark.parametrize("beta", [2.0, 1.0, 0.5, 1.7])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_quality_focal_equals_mmdet(mmdet, beta, reduction, weighted):
    gfl = mmdet["gfocal_loss"]
    x, labels, scores, dense = inputs(seed=5)
    weight = torch.rand(N, dtype=torch.float64) if weighted else None
    kwargs = dict(beta=beta, reduction=reduction)
    want = value_and_grad(
        gfl.quality_focal_loss, x, (labels.clamp(min=0) * (labels >= 0) + C * (labels < 0), scores), weight, **kwargs
    )
    want_dense = value_and_grad(gfl.quality_focal_loss_tensor_target, x, dense, weight, **kwargs)
    assert_same(want, want_dense)  # mmdet's two forms agree here
    # mmdet sums each row over its classes: the face does; the core reduces elements
    face = mmdet_face.QualityFocalLoss(beta=beta, reduction=reduction)
    assert_same(value_and_grad(face, x, (labels, scores), weight), want)
    assert_same(value_and_grad(face, x, dense, weight), want)
    core = value_and_grad(fastloss.quality_focal_loss, x, (labels, scores), beta=beta, reduction="none", weight=weight)
    assert_close(core[0].sum(-1) if reduction == "none" else core[0].sum() / (N if reduction == "mean" else 1), want[0])


@pytest.mark.parametrize("avg_factor", [None, 11.0])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("activated", [False, True])
def test_mmdet_quality_focal_module(mmdet, avg_factor, reduction, activated):
    if avg_factor is not None and reduction == "sum":
        return
    x, labels, scores, dense = inputs(seed=6)
    pred = torch.sigmoid(x) if activated else x
    options = dict(beta=1.5, loss_weight=0.5, activated=activated)
    ours = mmdet_face.QualityFocalLoss(**options)
    theirs = mmdet["gfocal_loss"].QualityFocalLoss(**options)
    weight = torch.rand(N, dtype=torch.float64)
    for target in ((labels, scores), dense):
        kwargs = dict(weight=weight, avg_factor=avg_factor, reduction_override=reduction)
        mm_target = (
            (labels.clamp(min=0) * (labels >= 0) + C * (labels < 0), scores) if isinstance(target, tuple) else target
        )
        assert_same(
            value_and_grad(ours, pred, target, **kwargs),
            value_and_grad(theirs, pred, mm_target, **kwargs),
            rtol=1e-9,
            atol=1e-10,
        )


def test_mmdet_constructor_arguments(mmdet):
    import inspect

    for name, file in (
        ("VarifocalLoss", "varifocal_loss"),
        ("QualityFocalLoss", "gfocal_loss"),
        ("DistributionFocalLoss", "gfocal_loss"),
    ):
        ours, theirs = getattr(mmdet_face, name), getattr(mmdet[file], name)

        def names_defaults(f):
            return [(p.name, p.default) for p in inspect.signature(f).parameters.values()]

        assert names_defaults(ours.__init__) == names_defaults(theirs.__init__), name
        assert list(inspect.signature(ours.forward).parameters) == list(inspect.signature(theirs.forward).parameters)
        assert "Fast" + name in mmdet_face.REGISTERED_NAMES


# ---- against the reference: every dtype, device, option ---------------------------------------------


VFL_OPTIONS = [
    dict(),
    dict(iou_weighted=False),
    dict(negative_mask="label"),
    dict(negative_mask="label", detach_weight=True, gamma=0.5),
    dict(alpha=0.3, gamma=3.0),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("options", range(len(VFL_OPTIONS) + 3))
@pytest.mark.parametrize("sparse", [True, False])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_matches_reference(device, dtype, options, sparse, reduction):
    x, labels, scores, dense = inputs(seed=7, device=device, dtype=dtype)
    if options < len(VFL_OPTIONS):
        fn, ref, kwargs = fastloss.varifocal_loss, reference.varifocal_loss, VFL_OPTIONS[options]
        if kwargs.get("negative_mask") == "label" and not sparse:
            kwargs = {**kwargs, "positive": (dense > 0) | (torch.rand_like(dense.double()) > 0.9)}
    else:
        fn, ref = fastloss.quality_focal_loss, reference.quality_focal_loss
        kwargs = dict(beta=[2.0, 0.5, 1.3][options - len(VFL_OPTIONS)])
    target = (labels, scores) if sparse else dense
    got = value_and_grad(fn, x, target, reduction=reduction, **kwargs)
    exact = value_and_grad(
        ref,
        x.double(),
        (labels, scores.double()) if sparse else dense.double(),
        reduction=reduction,
        **{k: (v.double() if isinstance(v, torch.Tensor) and v.is_floating_point() else v) for k, v in kwargs.items()},
    )
    assert got[0].dtype == dtype and got[1].dtype == dtype
    assert_same(got, exact, dtype)


@pytest.mark.parametrize("sparse", [True, False])
@pytest.mark.parametrize(
    "case",
    [
        ("vfl", {}),
        ("vfl", dict(iou_weighted=False, gamma=0.7)),
        ("vfl", dict(negative_mask="label")),
        ("qfl", {}),
        ("qfl", dict(beta=0.6)),
        ("qfl", dict(beta=1.0)),
    ],
)
def test_gradcheck(sparse, case):
    kind, kwargs = case
    fn = fastloss.varifocal_loss if kind == "vfl" else fastloss.quality_focal_loss
    x, labels, scores, dense = inputs(n=9, c=5, seed=8)
    # keep QFL away from its kink at t = σ(x) for β = 1 (finite differences straddle it)
    if kind == "vfl" and kwargs.get("negative_mask") == "label" and not sparse:
        kwargs = {**kwargs, "positive": dense > 0}
    target = (labels, scores) if sparse else dense
    x.requires_grad_()
    assert torch.autograd.gradcheck(lambda v: fn(v, target, reduction="none", **kwargs), (x,))
    assert torch.autograd.gradcheck(lambda v: fn(v, target, reduction="mean", **kwargs), (x,))


def test_opcheck_variants():
    x, labels, scores, dense = inputs(n=11, c=5, seed=9)
    x.requires_grad_()
    op = torch.ops.fastloss.sigmoid_focal_loss.default
    positive = (dense > 0).double()
    for args in [
        (x, dense, None, 0.75, 2.0, 0, -100, False, None, 1 | 4),
        (x, labels, None, 0.75, 2.0, 2, -100, False, scores, 1 | 4 | 8 | 16 | 32),
        (x, dense, None, 0.75, 1.5, 1, -100, False, None, 1 | 8, positive),
        (x, labels, None, 1.0, 2.0, 1, -1, False, scores, 2),
        (x, dense, torch.rand(11, 1, dtype=torch.float64), 1.0, 0.5, 2, -100, False, None, 2 | 32),
    ]:
        torch.library.opcheck(op, args)
    torch.library.opcheck(
        torch.ops.fastloss.sigmoid_focal_loss_backward.default,
        (
            torch.ones((), dtype=torch.float64),
            x.detach(),
            labels,
            None,
            torch.tensor(55),
            0.75,
            2.0,
            1,
            -100,
            False,
            scores,
            1 | 4 | 32,
        ),
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("sparse", [True, False])
def test_compile_fullgraph(device, sparse):
    x, labels, scores, dense = inputs(seed=10, device=device, dtype=torch.float32)
    target = (labels, scores) if sparse else dense

    def step(v):
        return fastloss.varifocal_loss(v, target) + fastloss.quality_focal_loss(v, target, reduction="sum")

    for dynamic in (False, True):
        compiled = torch.compile(step, fullgraph=True, dynamic=dynamic)
        assert_same(value_and_grad(compiled, x), value_and_grad(step, x), torch.float32)


# ---- numerics -------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("kind", ["vfl", "vfl_label", "qfl", "qfl_half"])
def test_extreme_logits_are_finite(dtype, kind):
    """±1e4 logits (finite in every dtype) and scores of exactly 0 and 1: finite losses and gradients."""
    values = torch.tensor([-1e4, -80.0, -20.0, 0.0, 20.0, 80.0, 1e4], dtype=torch.float64)
    x = values.repeat(6, 1).to(dtype)
    labels = torch.tensor([0, 3, 6, 7, -1, 2])
    scores = torch.tensor([1.0, 0.0, 0.5, 1.0, 0.3, 1e-30], dtype=torch.float64).to(dtype)
    fn, kwargs = {
        "vfl": (fastloss.varifocal_loss, {}),
        "vfl_label": (fastloss.varifocal_loss, dict(negative_mask="label", gamma=0.5)),
        "qfl": (fastloss.quality_focal_loss, {}),
        "qfl_half": (fastloss.quality_focal_loss, dict(beta=0.5)),
    }[kind]
    loss, grad = value_and_grad(fn, x, (labels, scores), reduction="none", **kwargs)
    assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
    ref, ref_grad = value_and_grad(
        getattr(reference, fn.__name__), x.double(), (labels, scores.double()), reduction="none", **kwargs
    )
    assert_close(loss, ref, dtype)
    # the reference's p^γ for γ < 1 has a NaN derivative where p rounds to 0 (pow's inf · 0, even where
    # it is multiplied by 0); ours takes the limit there (finite, checked above)
    finite = torch.isfinite(ref_grad)
    assert_close(grad[finite], ref_grad[finite], dtype)


def test_infinite_logits_take_their_limits():
    x = torch.tensor([[float("inf"), float("-inf"), 3.0]], dtype=torch.float64)
    for fn in (fastloss.varifocal_loss, fastloss.quality_focal_loss):
        for target in (
            (torch.tensor([0]), torch.tensor([1.0], dtype=torch.float64)),
            (torch.tensor([1]), torch.tensor([0.5], dtype=torch.float64)),
        ):
            loss, grad = value_and_grad(fn, x, target, reduction="none")
            ref = getattr(reference, fn.__name__)(x, target, reduction="none")
            torch.testing.assert_close(loss, ref)
            assert not torch.isnan(grad).any()


def test_half_logits_need_no_autocast_guard():
    """Saturated fp16 logits: the math is float32 inside, no overflow to inf or NaN (ultralytics turns
    autocast off around its VFL for this)."""
    x = torch.full((4, 8), 60000.0, dtype=torch.float16)
    x[1] = -60000.0
    labels, scores = torch.tensor([0, 1, 8, -1]), torch.tensor([0.9, 0.1, 0.0, 0.0], dtype=torch.float16)
    for fn in (fastloss.varifocal_loss, fastloss.quality_focal_loss):
        loss, grad = value_and_grad(fn, x, (labels, scores), reduction="none")  # each loss fits float16
        assert loss.dtype == torch.float16 and torch.isfinite(loss).all() and torch.isfinite(grad).all()
        with torch.autocast("cpu", dtype=torch.float16):  # under AMP the reduced loss is float32, as torch's
            loss, grad = value_and_grad(fn, x, (labels, scores), reduction="sum")
        assert loss.dtype == torch.float32 and torch.isfinite(loss) and torch.isfinite(grad).all()


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(0, 20),
    c=st.integers(1, 19),
    seed=st.integers(0, 2**16),
    beta=st.sampled_from([0.0, 0.5, 2.0]),
    gamma=st.sampled_from([0.0, 1.0, 2.0, 2.5]),
    iou=st.booleans(),
)
def test_properties(n, c, seed, beta, gamma, iou):
    """Sparse equals dense; both losses are >= 0; γ = 0, α = 1 VFL with iou_weighted=False is BCE; β = 0
    QFL is BCE."""
    x, labels, scores, dense = inputs(n, c, seed)
    for fn, kwargs in (
        (fastloss.varifocal_loss, dict(gamma=gamma, iou_weighted=iou)),
        (fastloss.quality_focal_loss, dict(beta=beta)),
    ):
        sparse = fn(x, (labels, scores), reduction="none", **kwargs)
        torch.testing.assert_close(sparse, fn(x, dense, reduction="none", **kwargs))
        assert (sparse >= 0).all()
    bce = F.binary_cross_entropy_with_logits(x, dense, reduction="none")
    assert_close(fastloss.quality_focal_loss(x, (labels, scores), beta=0.0, reduction="none"), bce)
    assert_close(
        fastloss.varifocal_loss(x, (labels, scores), alpha=1.0, gamma=0.0, iou_weighted=False, reduction="none"), bce
    )


# ---- bad input ------------------------------------------------------------------------------------


def test_bad_input_is_a_clear_error():
    x, labels, scores, dense = inputs(n=5, c=3)
    cases = [
        (lambda: fastloss.varifocal_loss(x, (labels, scores * 2)), ValueError, "outside \\[0, 1\\]"),
        (lambda: fastloss.varifocal_loss(x, dense - 0.5), ValueError, "outside \\[0, 1\\]"),
        (lambda: fastloss.quality_focal_loss(x, dense + 1), ValueError, "outside \\[0, 1\\]"),
        (lambda: fastloss.varifocal_loss(x, (labels[:3], scores[:3])), ValueError, "shape"),
        (lambda: fastloss.varifocal_loss(x, (labels, scores[:3])), ValueError, "labels' shape"),
        (lambda: fastloss.quality_focal_loss(x, dense[:, :2]), ValueError, "shape"),
        (lambda: fastloss.varifocal_loss(x, dense, negative_mask="iou"), ValueError, "negative_mask"),
        (lambda: fastloss.varifocal_loss(x, dense, negative_mask="label"), ValueError, "positive"),
        (
            lambda: fastloss.varifocal_loss(x, (labels, scores), negative_mask="label", positive=dense > 0),
            ValueError,
            "positive",
        ),
        (
            lambda: fastloss.varifocal_loss(x, dense, negative_mask="label", positive=dense[:2] > 0),
            ValueError,
            "positive must have",
        ),
        (lambda: fastloss.varifocal_loss(x, dense, alpha=-1.0), ValueError, "alpha"),
        (lambda: fastloss.quality_focal_loss(x, dense, beta=-1.0), ValueError, "gamma|beta"),
        (lambda: fastloss.varifocal_loss(x, (labels.float(), scores)), TypeError, "integer"),
        (lambda: fastloss.varifocal_loss(x, dense, iou_weighted=1), TypeError, "iou_weighted"),
        (
            lambda: fastloss.quality_focal_loss(x, dense, per_layer=True, avg_factor=torch.ones(3)),
            ValueError,
            "avg_factor",
        ),
        (lambda: fastloss.quality_focal_loss(x[0], (labels[0], scores[0]), per_layer=True), ValueError, "per_layer"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message):
            call()


def test_targets_take_no_gradient():
    x, labels, scores, dense = inputs(n=5, c=3)
    x.requires_grad_()
    for fn in (fastloss.varifocal_loss, fastloss.quality_focal_loss):
        with pytest.raises(RuntimeError, match="targets are not supported"):
            fn(x, dense.clone().requires_grad_()).backward()
        with pytest.raises(ValueError, match="scores"):
            fn(x, (labels, scores.clone().requires_grad_()))


@pytest.mark.parametrize(
    "cls,args",
    [
        (fastloss.nn.VarifocalLoss, dict(negative_mask="label")),
        (fastloss.nn.QualityFocalLoss, dict(beta=1.5)),
        (mmdet_face.VarifocalLoss, {}),
        (mmdet_face.QualityFocalLoss, {}),
        (ultralytics_face.VarifocalLoss, {}),
    ],
)
def test_modules_pickle(cls, args):
    import pickle

    module = cls(**args)
    assert repr(pickle.loads(pickle.dumps(module))) == repr(module)
    assert module.state_dict() == {} or isinstance(module.state_dict(), dict)


@pytest.mark.parametrize("sparse", [True, False])
def test_cuda_equals_cpu(sparse):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    x, labels, scores, dense = inputs(n=3000, c=80, seed=11, dtype=torch.float32)
    target = (labels, scores) if sparse else dense
    cuda_target = (labels.cuda(), scores.cuda()) if sparse else dense.cuda()
    for fn, reduction in itertools.product((fastloss.varifocal_loss, fastloss.quality_focal_loss), REDUCTIONS):
        got = value_and_grad(fn, x.cuda(), cuda_target, reduction=reduction)
        want = value_and_grad(fn, x, target, reduction=reduction)
        assert_same(tuple(t.cpu() for t in got), want, torch.float32)
    L = torch.stack([x, -x])
    lab2, sc2 = labels.expand(2, -1).contiguous(), scores.expand(2, -1).contiguous()
    got = value_and_grad(
        fastloss.varifocal_loss, L.cuda(), (lab2.cuda(), sc2.cuda()), per_layer=True, negative_mask="label"
    )
    want = value_and_grad(fastloss.varifocal_loss, L, (lab2, sc2), per_layer=True, negative_mask="label")
    assert_same(tuple(t.cpu() for t in got), want, torch.float32)
