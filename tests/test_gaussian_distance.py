"""fastloss.gaussian_distance_loss / kfiou_loss and fastloss.mmrotate's GDLoss / KFLoss against mmrotate
0.3.4's own loss files (loaded from its wheel: tests/mmrotate_peer.py): values and gradients in
float64 (to rounding) for every loss type, fun, tau, option and representation, weights, avg_factor
and reductions; float32 / half within their error of the float64 truth; degenerate boxes (finite where
mmrotate's are NaN); empty inputs; fp64 gradcheck, hypothesis properties, bad input, opcheck,
torch.compile."""

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import fastloss
import fastloss.mmrotate as face
from fastloss.reference import gaussian_distance as reference
from fastloss.reference.oriented import xywhr_rows
from helpers import DEVICES, HAS_CUDA
from mmrotate_peer import load

GD_TYPES = ("gwd", "kld", "jd", "kld_symmax", "kld_symmin")


@pytest.fixture(scope="module")
def mmrotate(tmp_path_factory):
    return load(str(tmp_path_factory.mktemp("mmrotate")))


def boxes(n, seed, dtype=torch.float64, spread=6.0, pearson=False, degenerate=False):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * spread
    wh = torch.rand(n, 2, generator=g, dtype=torch.float64) * 3 + 0.2
    if degenerate:
        wh[::3, 0] = 0  # no width
        wh[1::3, 0] = wh[1::3, 1] * 2000  # 2000:1
    r = (torch.rand(n, 1, generator=g, dtype=torch.float64) - 0.5) * 2 * math.pi
    if pearson:  # (x, y, σx, σy, ρ)
        r = r.sin() * 0.95
    return torch.cat([xy, wh, r], -1).to(dtype)


def grads(out, inputs, weight=1.0):
    return torch.autograd.grad((out * weight).sum(), inputs)


def assert_same(got, want, inputs, rtol=1e-11):
    torch.testing.assert_close(got, want, rtol=rtol, atol=1e-13)
    weight = torch.rand(want.shape, generator=torch.Generator().manual_seed(99), dtype=want.dtype)
    for x, y in zip(grads(got, inputs, weight), grads(want, inputs, weight)):
        torch.testing.assert_close(x, y, rtol=1e3 * rtol, atol=1e-11 * max(1.0, y.abs().max().item()))


@pytest.mark.parametrize("loss_type", GD_TYPES)
@pytest.mark.parametrize("fun, tau", [("log1p", 1.0), ("sqrt", 2.0), ("none", 0.0), ("log1p", 0.0)])
@pytest.mark.parametrize("option", [True, False])
@pytest.mark.parametrize("representation", ["xy_wh_r", "xy_stddev_pearson"])
def test_gdloss_equals_mmrotate_in_float64(mmrotate, loss_type, fun, tau, option, representation):
    pearson = representation != "xy_wh_r"
    p, t = boxes(64, 0, pearson=pearson).requires_grad_(), boxes(64, 1, pearson=pearson).requires_grad_()
    kwargs = {"normalize" if loss_type == "gwd" else "sqrt": option}
    args = dict(loss_type=loss_type, representation=representation, fun=fun, tau=tau, alpha=1.3, reduction="none")
    ours = face.GDLoss(**args, **kwargs)
    theirs = mmrotate["gaussian_dist_loss"].GDLoss(**args, **kwargs)
    assert_same(ours(p, t), theirs(p, t), (p, t))


@pytest.mark.parametrize(
    "weight, avg_factor, reduction",
    [
        (None, None, "mean"),
        (None, None, "sum"),
        ("box", None, "mean"),
        ("row", None, "sum"),
        ("row", 7.5, "mean"),
        ("box", None, "none"),
        ("zero", None, "mean"),
        ("zero", None, "none"),
    ],
)
def test_gdloss_weights_and_reductions_as_mmrotate(mmrotate, weight, avg_factor, reduction):
    p, t = boxes(30, 2).requires_grad_(), boxes(30, 3)
    w = {
        None: None,
        "box": torch.rand(30, 5, dtype=torch.float64),
        "row": torch.rand(30, dtype=torch.float64),
        "zero": torch.zeros(30, 5, dtype=torch.float64),
    }[weight]
    args = dict(loss_type="kld", fun="log1p", tau=1.0, loss_weight=2.5)
    ours, theirs = face.GDLoss(**args), mmrotate["gaussian_dist_loss"].GDLoss(**args)
    got = ours(p, t, weight=w, avg_factor=avg_factor, reduction_override=reduction)
    want = theirs(p, t, weight=w, avg_factor=avg_factor, reduction_override=reduction)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(grads(got, (p,)), grads(want, (p,)), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("fun", ["none", "ln", "exp"])
@pytest.mark.parametrize("beta", [1.0 / 9.0, 0.5])
def test_kfloss_equals_mmrotate_in_float64(mmrotate, fun, beta):
    p, t = boxes(50, 4, spread=0.3).requires_grad_(), boxes(50, 5, spread=0.3).requires_grad_()
    pd, td = boxes(50, 6, spread=2.0).requires_grad_(), boxes(50, 7, spread=2.0).requires_grad_()
    ours, theirs = face.KFLoss(fun=fun, reduction="none"), mmrotate["kf_iou_loss"].KFLoss(fun=fun, reduction="none")
    kw = dict(pred_decode=pd, targets_decode=td, beta=beta)
    assert_same(ours(p, t, **kw), theirs(p, t, **kw), (p, t, pd, td))
    w = torch.rand(50, 5, dtype=torch.float64)
    for r, avg in (("mean", None), ("sum", None), ("mean", 3.0)):
        got = ours(p, t, weight=w, avg_factor=avg, reduction_override=r, **kw)
        want = theirs(p, t, weight=w, avg_factor=avg, reduction_override=r, **kw)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("loss_type", ["gwd", "kld", "jd", "kfiou"])
def test_lower_precision_is_within_its_error_of_the_float64_truth(dtype, loss_type):
    """Half boxes are rounded, then computed in float32: against the float64 loss of the rounded boxes."""
    p, t = boxes(200, 8, dtype), boxes(200, 9, dtype)
    if loss_type == "kfiou":
        got = fastloss.kfiou_loss(p, t, p, t, "ln")
        truth = fastloss.kfiou_loss(p.double(), t.double(), p.double(), t.double(), "ln")
    else:
        got = fastloss.gaussian_distance_loss(p, t, loss_type)
        truth = fastloss.gaussian_distance_loss(p.double(), t.double(), loss_type)
    assert got.dtype == dtype
    tol = 1e-5 if dtype == torch.float32 else 2 * float(torch.finfo(dtype).eps)
    torch.testing.assert_close(got.double(), truth, rtol=tol, atol=tol)


@pytest.mark.parametrize("loss_type", GD_TYPES + ("kfiou",))
def test_degenerate_boxes_give_finite_and_accurate_losses(mmrotate, loss_type):
    """Zero-width (clamped to 1e-7), 2000:1 and identical boxes in float32: finite losses and gradients,
    within float32's error of the float64 loss. There mmrotate's float32 KLDs are NaN, its KFLoss
    raises (Σp + Σt is singular to it) and its GWD is finite but 2e-2 off; GWD's own formula (a
    difference of traces) keeps 1e-2 of it here in float32."""
    p64 = boxes(60, 10, degenerate=True)
    t64 = torch.cat([p64[:20], boxes(40, 11, degenerate=True)])
    p, t = p64.float().requires_grad_(), t64.float().requires_grad_()

    def run(module, p, t):
        return module(p, t, pred_decode=p, targets_decode=t) if loss_type == "kfiou" else module(p, t)

    if loss_type == "kfiou":
        ours, theirs = face.KFLoss(reduction="none"), mmrotate["kf_iou_loss"].KFLoss(reduction="none")
    else:
        args = dict(loss_type=loss_type, fun="log1p", tau=1.0, reduction="none")
        ours, theirs = face.GDLoss(**args), mmrotate["gaussian_dist_loss"].GDLoss(**args)
    got = run(ours, p, t)
    assert got.isfinite().all() and all(g.isfinite().all() for g in grads(got, (p, t)))
    tol = 1e-2 if loss_type == "gwd" else 1e-3
    assert (got.double() - run(ours, p64, t64)).abs().max() < tol
    if loss_type == "kfiou":
        with pytest.raises(RuntimeError, match="singular"):
            run(theirs, p, t)
    elif loss_type != "gwd":
        assert not run(theirs, p, t).isfinite().all()  # (the case the documented rule is for)


def test_identical_boxes_are_the_minimum():
    p = boxes(40, 12)
    for loss_type in GD_TYPES:
        same = fastloss.gaussian_distance_loss(p, p, loss_type, "none", 0.0, sqrt=False, normalize=False)
        other = fastloss.gaussian_distance_loss(p, boxes(40, 13), loss_type, "none", 0.0, sqrt=False, normalize=False)
        floor = math.sqrt(1e-7) if loss_type == "gwd" else 0.0  # (GWD's √ of its clamp(·, 1e-7))
        assert ((same - floor).abs() < 1e-9).all() and (other > same).all(), loss_type


def test_reference_and_kernels_agree_on_the_raw_op():
    p, t = xywhr_rows(boxes(33, 14)), xywhr_rows(boxes(33, 15))
    for kind, fun, flag in itertools.product(range(6), range(3), (False, True)):
        fun = (0, 3, 4)[fun] if kind == 5 else fun
        args = (0, kind, fun, 1.0, 1.5, 0.2, 1e-6, flag)
        torch.testing.assert_close(
            torch.ops.fastloss.gaussian_distance(p, t, *args), reference.gaussian_distance_op(p, t, *args)
        )


@pytest.mark.parametrize("loss_type", GD_TYPES + ("kfiou",))
def test_gradcheck_float64(loss_type):
    p, t = boxes(5, 16, spread=2.0).requires_grad_(), boxes(5, 17, spread=2.0).requires_grad_()
    if loss_type == "kfiou":
        fn = lambda a, b: fastloss.kfiou_loss(a, b, a, b, "exp")  # noqa: E731
    else:
        fn = lambda a, b: fastloss.gaussian_distance_loss(a, b, loss_type, "sqrt", 1.5, 1.2)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (p, t))
    q = boxes(5, 18, pearson=True).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda a: fastloss.gaussian_distance_loss(a, q.detach(), "kld", representation="xy_stddev_pearson"), (q,)
    )


def test_empty_inputs():
    p, t = boxes(0, 19).requires_grad_(), boxes(0, 20)
    out = fastloss.gaussian_distance_loss(p, t, "gwd")
    assert out.shape == (0,)
    out.sum().backward()
    assert p.grad.shape == (0, 5)
    assert fastloss.gaussian_distance_loss(p, t, reduction="mean").item() == 0
    assert face.KFLoss()(p, t, pred_decode=p, targets_decode=t).item() == 0


def test_leading_dimensions():
    p, t = boxes(12, 21).view(3, 4, 5), boxes(12, 22).view(3, 4, 5)
    got = fastloss.gaussian_distance_loss(p, t, "jd")
    assert got.shape == (3, 4)
    assert torch.equal(got.view(-1), fastloss.gaussian_distance_loss(p.view(-1, 5), t.view(-1, 5), "jd"))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 9), spread=st.sampled_from([0.01, 3.0, 1e3]), seed=st.integers(0, 2**16))
def test_properties(n, spread, seed):
    """GWD, JD and the symmetric KLDs are symmetric (to rounding: each direction is computed in its
    own box's axes); every loss is ≥ 0 and finite; KFIoU's
    loss with fun "none" is in [2/3, 1] plus the centres' term."""
    p, t = boxes(n, seed, spread=spread), boxes(n, seed + 1, spread=spread)
    for loss_type in ("gwd", "jd", "kld_symmax", "kld_symmin"):
        pt = fastloss.gaussian_distance_loss(p, t, loss_type)
        torch.testing.assert_close(pt, fastloss.gaussian_distance_loss(t, p, loss_type), rtol=1e-12, atol=1e-14)
        assert (pt >= 0).all() and pt.isfinite().all()
    kf = fastloss.kfiou_loss(p[:, :0].new_zeros(n, 5), t[:, :0].new_zeros(n, 5), p, t)
    assert (kf >= 2 / 3 - 1e-12).all() and (kf <= 1).all()


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: fastloss.gaussian_distance_loss(boxes(3, 0)[:, :4], boxes(3, 1)), ValueError, "pred must have shape"),
        (
            lambda: fastloss.gaussian_distance_loss(boxes(3, 0), boxes(4, 1)),
            ValueError,
            "target must have pred's shape",
        ),
        (
            lambda: fastloss.gaussian_distance_loss(boxes(3, 0), boxes(3, 1).long()),
            TypeError,
            "target must be a floating",
        ),
        (lambda: fastloss.gaussian_distance_loss(boxes(3, 0), boxes(3, 1), "kfiou"), ValueError, "loss_type must be"),
        (lambda: fastloss.gaussian_distance_loss(boxes(3, 0), boxes(3, 1), fun="ln"), ValueError, "fun must be"),
        (lambda: fastloss.gaussian_distance_loss(boxes(3, 0), boxes(3, 1), alpha=0.0), ValueError, "alpha must not"),
        (lambda: fastloss.gaussian_distance_loss(boxes(3, 0), boxes(3, 1), tau=math.inf), ValueError, "tau must be"),
        (
            lambda: fastloss.gaussian_distance_loss(boxes(3, 0), boxes(3, 1), representation="xyxy"),
            ValueError,
            "representation must be",
        ),
        (lambda: fastloss.gaussian_distance_loss(boxes(3, 0), boxes(3, 1), reduction="avg"), ValueError, "reduction"),
        (lambda: fastloss.kfiou_loss(*[boxes(3, 0)] * 4, beta=0.0), ValueError, "beta must be > 0"),
        (
            lambda: fastloss.gaussian_distance_loss(boxes(3, 0), boxes(3, 1), weight=torch.ones(3, 5)),
            ValueError,
            "weight must broadcast",
        ),
        (lambda: fastloss.kfiou_loss(*[boxes(3, 0)] * 3, boxes(2, 0)), ValueError, "targets_decode must have"),
        (lambda: fastloss.kfiou_loss(boxes(3, 0)[:, :1], *[boxes(3, 0)] * 3), ValueError, "pred must have shape"),
        (lambda: face.GDLoss("kld", normalize=True), TypeError, "unexpected keyword"),
        (lambda: face.GDLoss("gwd")(boxes(3, 0), boxes(3, 1), sqrt=True), TypeError, "unexpected keyword"),
        (lambda: face.GDLoss("gwd", fun="exp"), ValueError, "fun must be"),
        (lambda: face.KFLoss(fun="log1p"), ValueError, "fun must be"),
        (lambda: face.KFLoss()(boxes(3, 0), boxes(3, 1)), ValueError, "needs pred_decode"),
        (lambda: face.GDLoss("kld")(boxes(3, 0), boxes(3, 1), weight=torch.ones(3, 4)), ValueError, "weight must"),
        (
            lambda: torch.ops.fastloss.gaussian_distance(boxes(3, 0), boxes(3, 1), 0, 1, 1, 0.0, 1.0, 1.0, 1e-6, True),
            ValueError,
            "must have shape \\(N, 6\\)",
        ),
        (
            lambda: torch.ops.fastloss.gaussian_distance(boxes(3, 0), boxes(3, 1), 1, 5, 1, 0.0, 1.0, 1.0, 1e-6, True),
            ValueError,
            "is not one of kind",
        ),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_bad_input_is_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("representation, kind, fun", [(0, 0, 1), (0, 3, 2), (1, 1, 0), (0, 5, 3)])
def test_opcheck(representation, kind, fun):
    rows = xywhr_rows if representation == 0 else (lambda b: b)
    p = rows(boxes(6, 23, pearson=representation == 1)).requires_grad_()
    t = rows(boxes(6, 24, pearson=representation == 1)).requires_grad_()
    torch.library.opcheck(
        torch.ops.fastloss.gaussian_distance.default, (p, t, representation, kind, fun, 1.0, 1.0, 0.2, 1e-6, True)
    )


@pytest.mark.parametrize("dynamic", [False, True])
def test_compile_fullgraph(dynamic):
    torch._dynamo.reset()
    gd, kf = face.GDLoss("kld", fun="log1p", tau=1.0), face.KFLoss(fun="ln")

    def step(p, t):
        return gd(p, t) + kf(p, t, pred_decode=p, targets_decode=t) + fastloss.gaussian_distance_loss(p, t, "gwd").sum()

    compiled = torch.compile(step, fullgraph=True, dynamic=dynamic)
    for n in (5, 9):
        p, t = boxes(n, 25).requires_grad_(), boxes(n, 26)
        got, want = compiled(p, t), step(p, t)
        torch.testing.assert_close(got, want)
        torch.testing.assert_close(torch.autograd.grad(got, p), torch.autograd.grad(want, p))


def test_face_registers_and_has_no_state():
    class Registry:
        def __init__(self):
            self.names = {}

        def register_module(self, name, module, force):
            self.names[name] = module

    registry = face.register(Registry())
    assert registry.names == {"FastGDLoss": face.GDLoss, "FastKFLoss": face.KFLoss}
    loss = face.GDLoss("gwd", normalize=False)
    assert loss.state_dict() == {} and "loss_type='gwd'" in repr(loss) and loss.tau == 0.0


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("device", DEVICES[1:])
def test_cuda_equals_cpu(device):
    p, t = boxes(5000, 27, torch.float32), boxes(5000, 28, torch.float32)
    for loss_type in GD_TYPES:
        cp, ct = p.to(device).requires_grad_(), t.to(device)
        xp = p.clone().requires_grad_()
        out = fastloss.gaussian_distance_loss(cp, ct, loss_type)
        want = fastloss.gaussian_distance_loss(xp, t, loss_type)
        torch.testing.assert_close(out.cpu(), want, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(grads(out, (cp,))[0].cpu(), grads(want, (xp,))[0], rtol=1e-5, atol=1e-6)
