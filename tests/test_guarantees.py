"""The guarantees every fastloss op keeps (docs/guarantees.md), held over every loss in
tests/op_cases.py: higher-order gradients, torch.func, torch.compile with dynamic shapes, pickling,
infinite and other special inputs, mixed dtypes, autocast, and the errors of bad input."""

import copy
import io
import pickle

import pytest
import torch
import torch.nn.functional as F

import fastloss
from fastloss import nn as fnn
from helpers import DEVICES, HAS_CUDA, assert_close, needs, peer
from op_cases import CASES, make

torchvision_ops = peer("torchvision.ops")
needs_torchvision = needs("torchvision.ops")


def split(case, **kw):
    tensors, kwargs = make(case, **kw)
    return tensors[0], tensors[1:], kwargs


# ---------------------------------------------------------------------------------- double backward


@pytest.mark.parametrize("case", [c for c in CASES if not c.frozen_factor], ids=repr)
def test_gradgradcheck(case):
    x, rest, kwargs = split(case, n=5)
    assert torch.autograd.gradgradcheck(lambda x: case.fn(x, *rest, **kwargs), (x,))


def test_gradgradcheck_with_respect_to_soft_targets():
    x, (t,), kwargs = split(next(c for c in CASES if c.name == "sigmoid_focal soft"), n=4)
    assert torch.autograd.gradgradcheck(
        lambda x, t: fastloss.sigmoid_focal_loss(x, t, gamma=1.5, reduction="none"), (x, t.requires_grad_())
    )


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_gradient_penalty_equals_the_reference(case):
    """A gradient penalty needs the gradient's own graph: create_graph=True gives it (it was silently
    missing), and its derivative is the reference's — for CIoU/Focal-EIoU with the same constant factor."""
    results = []
    for fn in (case.fn, case.ref):
        x, rest, kwargs = split(case)
        (g,) = torch.autograd.grad(fn(x, *rest, **kwargs), x, create_graph=True)
        assert g.requires_grad and g.grad_fn is not None
        (h,) = torch.autograd.grad((g**2).sum() + fn(x, *rest, **kwargs), x)
        results.append((g.detach(), h))
    for got, want in zip(*results):
        assert_close(got, want)


@needs_torchvision
@pytest.mark.parametrize("name", ["generalized_box_iou_loss", "distance_box_iou_loss", "complete_box_iou_loss"])
def test_gradient_penalty_equals_torchvision(name):
    results = []
    for fn in (getattr(fastloss, name), getattr(torchvision_ops, name)):
        x, (t,), _ = split(next(c for c in CASES if c.name == "giou"))
        (g,) = torch.autograd.grad(fn(x, t, reduction="sum"), x, create_graph=True)
        (h,) = torch.autograd.grad((g**2).sum(), x)
        results.append(h)
    assert_close(*results)


def test_retain_graph_then_create_graph_on_the_dice_buffer():
    """The overlap backward turns its saved activation buffer into the gradient; a later backward
    with create_graph must not see that buffer."""
    x, (t,), kwargs = split(next(c for c in CASES if c.name == "dice labels"))
    loss = fastloss.dice_loss(x, t, **kwargs)
    (g1,) = torch.autograd.grad(loss, x, retain_graph=True)
    (g2,) = torch.autograd.grad(loss, x, create_graph=True)
    assert_close(g1, g2.detach())
    assert g2.requires_grad


# ---------------------------------------------------------------------------------------- torch.func


@pytest.fixture
def no_vmap_fallback():
    """vmap raises instead of looping per sample: proves the ops' batching rules are used."""
    torch._C._functorch._set_vmap_fallback_enabled(False)
    yield
    torch._C._functorch._set_vmap_fallback_enabled(True)


def summed(case, rest, kwargs):
    return lambda x: case.fn(x, *rest, **kwargs).sum()


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_func_grad(case):
    x, rest, kwargs = split(case)
    got = torch.func.grad(summed(case, rest, kwargs))(x.detach())
    (want,) = torch.autograd.grad(case.fn(x, *rest, **kwargs).sum(), x)
    assert_close(got, want)


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_vmap_uses_the_batching_rule_and_equals_a_loop(case, no_vmap_fallback):
    samples = [split(case, seed=s, grad=False) for s in range(3)]
    xs = torch.stack([s[0] for s in samples])
    rests = [torch.stack([s[1][i] for s in samples]) for i in range(len(samples[0][1]))]
    kwargs = samples[0][2]
    got = torch.vmap(lambda x, *rest: case.fn(x, *rest, **kwargs))(xs, *rests)
    want = torch.stack([case.fn(x, *rest, **kwargs) for x, rest, _ in samples])
    assert_close(got, want)


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_vmap_of_grad_gives_per_sample_gradients(case):
    samples = [split(case, seed=s) for s in range(3)]
    xs = torch.stack([s[0].detach() for s in samples])
    rest, kwargs = samples[0][1], samples[0][2]  # shared targets
    got = torch.func.vmap(torch.func.grad(summed(case, rest, kwargs)))(xs)
    want = torch.stack([torch.autograd.grad(case.fn(x, *rest, **kwargs).sum(), x)[0] for x, _, _ in samples])
    assert_close(got, want)


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.name in ("sigmoid_focal labels", "giou", "dice soft")], ids=repr
)
def test_func_hessian_equals_the_reference(case):
    x, rest, kwargs = split(case, n=3, grad=False)
    got = torch.func.hessian(lambda x: case.fn(x, *rest, **kwargs).sum())(x)
    want = torch.func.hessian(lambda x: case.ref(x, *rest, **kwargs).sum())(x)
    assert_close(got, want)


def test_func_grad_of_a_raw_op():
    x, (t,), _ = split(next(c for c in CASES if c.name == "giou"), grad=False)

    def loss(p):
        return torch.ops.fastloss.box_iou_loss(p, t, None, 1, 0, 0, 1e-7, 0.5, 1.0, 1)

    got = torch.func.grad(loss)(x)
    (want,) = torch.autograd.grad(loss(x.requires_grad_()), x)
    assert_close(got, want)


# -------------------------------------------------------------------------------- torch.compile


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_compile_dynamic_shapes_fullgraph(case):
    """Changing shapes through one dynamic graph (Python float arguments are symbolic there)."""
    torch._dynamo.reset()
    compiled = torch.compile(case.fn, fullgraph=True, dynamic=True)
    for n in (5, 9, 14):
        results = []
        for fn in (compiled, case.fn):
            x, rest, kwargs = split(case, n=n, dtype=torch.float32)
            loss = fn(x, *rest, **kwargs)
            results.append((loss.detach(), torch.autograd.grad(loss.sum(), x)[0]))
        for got, want in zip(*results):
            assert_close(got, want)


@pytest.mark.skipif(not HAS_CUDA, reason="CUDA graphs need a GPU")
@pytest.mark.parametrize("case", CASES, ids=repr)
def test_compile_reduce_overhead_cuda_graphs(case):
    torch._dynamo.reset()
    compiled = torch.compile(case.fn, mode="reduce-overhead")
    for _ in range(3):  # warm-up, record, replay
        x, rest, kwargs = split(case, dtype=torch.float32, device="cuda")
        loss = compiled(x, *rest, **kwargs)
        (g,) = torch.autograd.grad(loss.sum(), x)
    want = case.fn(x, *rest, **kwargs)
    assert_close(loss.detach(), want.detach())
    assert_close(g, torch.autograd.grad(want.sum(), x)[0])


def test_compile_with_a_tensor_avg_factor():
    x, (t,), _ = split(CASES[0], dtype=torch.float32)
    step = torch.compile(
        lambda x, t, a: fastloss.sigmoid_focal_loss(x, t, reduction="mean", avg_factor=a), fullgraph=True, dynamic=True
    )
    a = torch.tensor(3.0)
    assert_close(step(x, t, a), fastloss.sigmoid_focal_loss(x, t, reduction="mean", avg_factor=a))


# ----------------------------------------------------------------------------------- nn modules


MODULES = [
    fnn.SigmoidFocalLoss(alpha=0.3),
    fnn.IoULoss(mode="linear"),
    fnn.GIoULoss(),
    fnn.DIoULoss(),
    fnn.CIoULoss(),
    fnn.EIoULoss(),
    fnn.FocalEIoULoss(gamma=0.7),
    fnn.CDIoULoss(lambd=0.5),
    fnn.DiceLoss(class_weight=[1.0, 2.0, 3.0]),
    fnn.TverskyLoss(class_weight=torch.tensor([0.5, 1.0, 2.0])),
    fnn.DiceLoss(class_weight=0.5),
    fnn.SoftmaxFocalLoss(alpha=torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])),
    fnn.CrossEntropyLoss(class_weight=[1.0, 2.0, 3.0, 4.0, 5.0]),
    fnn.L1Loss(),
    fnn.MSELoss(),
    fnn.SmoothL1Loss(beta=0.5),
    fnn.DiceCELoss(ce_weight=[1.0, 2.0, 0.5]),
    fnn.DiceFocalLoss(class_weight=torch.tensor([0.5, 1.0, 2.0]), gamma=1.5, ce_weight=2.0),
    fnn.DiceFocalLoss(focal="sigmoid", alpha=0.25, activation="sigmoid", ce_weight=[1.0, 2.0, 0.5]),
]


def module_inputs(module):
    g = torch.Generator().manual_seed(0)
    if isinstance(module, fnn.BoxIoULoss) or isinstance(module, (fnn.L1Loss, fnn.MSELoss, fnn.SmoothL1Loss)):
        t = random_boxes_for_modules(g)
        return t + 0.1, t
    if isinstance(module, (fnn.DiceLoss, fnn.TverskyLoss, fnn.DiceCELoss, fnn.DiceFocalLoss)):
        return torch.randn(2, 3, 6, generator=g), torch.randint(0, 3, (2, 6), generator=g)
    return torch.randn(6, 5, generator=g), torch.randint(0, 5, (6,), generator=g)


def random_boxes_for_modules(g):
    xy = torch.rand(6, 2, generator=g)
    return torch.cat([xy, xy + 1], -1)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: type(m).__name__)
def test_module_pickles_copies_and_saves(module):
    inputs = module_inputs(module)
    want = module(*inputs)
    buffer = io.BytesIO()
    torch.save(module, buffer)
    buffer.seek(0)
    for other in (pickle.loads(pickle.dumps(module)), copy.deepcopy(module), torch.load(buffer, weights_only=False)):
        assert type(other) is type(module)
        assert_close(other(*inputs), want)


@pytest.mark.parametrize("module", [m for m in MODULES if len(m.state_dict())], ids=lambda m: type(m).__name__)
def test_class_weights_are_buffers(module):
    """state_dict holds them, .to() moves them, and a fresh module loads them strictly."""
    ((name, value),) = module.state_dict().items()
    moved = copy.deepcopy(module).to(torch.float64)
    assert getattr(moved, name).dtype == torch.float64
    fresh = copy.deepcopy(module)
    getattr(fresh, name).zero_()
    fresh.load_state_dict(module.state_dict(), strict=True)
    assert torch.equal(getattr(fresh, name), value)


# --------------------------------------------------------------------------- infinite and special inputs

INF = float("inf")


def loss_and_grad(fn, x, *rest, **kwargs):
    x = x.detach().clone().requires_grad_()
    loss = fn(x, *rest, **kwargs)
    (g,) = torch.autograd.grad(loss.sum(), x)
    return loss.detach(), g


@pytest.mark.parametrize("layout", ["rows", "spatial"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_minus_inf_at_the_label_is_inf_with_a_finite_gradient(layout, smoothing):
    """F.cross_entropy's numbers: loss inf, gradient p − onehot (finite); it was NaN in the spatial layout."""
    x = torch.tensor([[-INF, 1.0, 2.0], [0.0, -INF, 1.0], [1.0, 2.0, 3.0]])
    y = torch.tensor([0, 0, 1])
    if layout == "spatial":
        x, y = x.T.unsqueeze(0).contiguous(), y.unsqueeze(0)
    got = loss_and_grad(fastloss.softmax_focal_loss, x, y, gamma=0.0, reduction="none", label_smoothing=smoothing)
    want = loss_and_grad(F.cross_entropy, x, y, reduction="none", label_smoothing=smoothing)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, equal_nan=True)


def test_softmax_focal_minus_inf_at_the_label_keeps_a_finite_gradient():
    loss, g = loss_and_grad(
        fastloss.softmax_focal_loss, torch.tensor([[-INF, 1.0, 2.0]]), torch.tensor([0]), gamma=2.0, reduction="none"
    )
    assert loss.item() == INF and torch.isfinite(g).all()


@pytest.mark.parametrize("targets", ["float", "labels"])
def test_sigmoid_focal_infinite_logits_take_their_limits(targets):
    """+inf on a negative: inf (torchvision: inf) with slope 1 − α; −inf on a positive: inf with slope
    −α (torchvision: NaN); ±inf confidently right: exactly 0 and gradient 0 (torchvision: NaN)."""
    x = torch.tensor([[INF, INF], [-INF, -INF]])
    y = torch.tensor([1, 0])  # row 0: +inf on a negative and on a positive; row 1: −inf on each
    t = y if targets == "labels" else F.one_hot(y, 2).float()
    loss, g = loss_and_grad(fastloss.sigmoid_focal_loss, x, t, alpha=0.25)
    assert loss.tolist() == [[INF, 0.0], [INF, 0.0]]
    # (the limits up to float32 rounding: the AVX2 kernels' reciprocal is within 2 ulp)
    torch.testing.assert_close(g, torch.tensor([[0.75, 0.0], [-0.25, 0.0]]), rtol=1e-6, atol=0)
    if torchvision_ops is not None and targets == "float":
        tv = torchvision_ops.sigmoid_focal_loss(x, t, alpha=0.25)
        assert tv[0, 0] == INF  # the peer's finite or infinite values are the same


def test_nan_propagates():
    for case in CASES:
        x, rest, kwargs = split(case, grad=False)
        x = x.clone()
        x.view(-1)[x.shape[-1] + 1] = float("nan")  # (the first row is an ignored one in some cases)
        assert torch.isnan(case.fn(x, *rest, **kwargs)).any(), case.name


def classes(t):
    return torch.where(torch.isnan(t), 2, torch.where(torch.isinf(t), 1, 0))


hypothesis = peer("hypothesis")
if hypothesis is not None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    SPECIAL = [INF, -INF, float("nan"), 1e4, -1e4, 1e-40, -1e-40, 0.0, 1.0, -1.0]

    @settings(max_examples=300)
    @given(
        case=st.sampled_from(CASES),
        seed=st.integers(0, 2**16),
        specials=st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(SPECIAL)), min_size=1, max_size=6),
    )
    def test_special_values_are_classified_as_the_reference(case, seed, specials):
        """±inf, NaN, ±1e4, subnormals, exact 0 and 1 pushed into the inputs (and soft targets): each
        element of the loss is finite / inf / NaN exactly where the reference's is, and — where no loss
        is NaN — the gradient is never NaN where the reference's is a number."""
        tensors, kwargs = make(case, seed=seed, grad=False)
        tensors = [t.clone() for t in tensors]
        for position, value in specials:
            floats = [t for t in tensors if t.dtype.is_floating_point]
            target = floats[position % len(floats)]
            if target is not tensors[0] and case.name.startswith(
                ("sigmoid", "dice", "tversky", "varifocal", "quality_focal", "distribution_focal")
            ):
                # soft targets and quality scores are probabilities (a DFL target in [0, 1] is two bins')
                value = min(max(value, 0.0), 1.0) if value == value else 0.5
            target.view(-1)[position % target.numel()] = value
        kwargs = {**kwargs, "reduction": "none" if case.unreduced else "sum"}
        got_loss, got_grad = loss_and_grad(case.fn, *tensors, **kwargs)
        want_loss, want_grad = loss_and_grad(case.ref, *tensors, **kwargs)
        assert torch.equal(classes(got_loss), classes(want_loss)), (got_loss, want_loss)
        if not torch.isnan(want_loss).any():
            numbers = ~torch.isnan(want_grad)
            assert not torch.isnan(got_grad[numbers]).any(), (got_grad, want_grad)


# ------------------------------------------------------------------------------------ mixed dtypes

PAIRS = [
    (torch.float16, torch.float32),
    (torch.bfloat16, torch.float32),
    (torch.float32, torch.float64),
    (torch.float64, torch.float32),
    (torch.float32, torch.float16),
    (torch.float16, torch.bfloat16),
]
MIXED = [c for c in CASES if c.name in ("sigmoid_focal soft", "giou", "ciou", "dice soft")]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", MIXED, ids=repr)
@pytest.mark.parametrize("dtypes", PAIRS, ids=str)
def test_mixed_dtypes_promote_inside_the_kernel(device, case, dtypes):
    """Each operand read in its own dtype: the loss in the promoted dtype (box and overlap losses: its
    math type), each gradient in its operand's dtype, the values of the promoted computation."""
    (x, t), kwargs = make(case, grad=False, device=device)
    x, t = x.to(dtypes[0]).requires_grad_(), t.to(dtypes[1]).requires_grad_(case.name != "dice soft")
    loss = case.fn(x, t, **kwargs)
    promoted = torch.promote_types(*dtypes)
    want_dtype = (
        promoted if case.name.startswith("sigmoid") else (torch.float64 if promoted == torch.float64 else torch.float32)
    )
    assert loss.dtype == want_dtype
    wanted = [x, t] if t.requires_grad else [x]
    grads = torch.autograd.grad(loss, wanted)
    assert [g.dtype for g in grads] == [w.dtype for w in wanted]
    exact = case.ref(x.detach().double(), t.detach().double(), **kwargs)
    assert_close(loss, exact, dtype=min(dtypes, key=lambda d: torch.finfo(d).bits if d != torch.bfloat16 else 8))


def test_mixed_dtype_memory_is_the_gradient():
    """float16 logits with float32 targets (AMP) used to cost 4x the gradient in converted copies."""
    from fastloss import bench

    x = torch.randn(4000, 80).half().requires_grad_()
    t = (torch.rand(4000, 80) < 0.02).float()
    peak = bench.peak_bytes(
        lambda x, t: fastloss.sigmoid_focal_loss(x, t, reduction="mean"), {"x": x, "t": t}, ("x",), torch.device("cpu")
    )
    assert peak <= 1.1 * x.numel() * x.element_size()


# -------------------------------------------------------------------------------------------- autocast


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", CASES, ids=repr)
def test_autocast_computes_in_float32_and_returns_float32(case, device):
    """As torch's losses under autocast: float32 result (equal to the float32 computation on the same
    values, also for unreduced losses), gradient in the input's dtype."""
    half = torch.bfloat16 if device == "cpu" else torch.float16
    x, rest, kwargs = split(case, dtype=half, device=device)
    rest = tuple(r.to(half) if r.dtype.is_floating_point else r for r in rest)
    reduction = "none" if case.unreduced else "sum"
    with torch.autocast(device, dtype=half):
        loss = case.fn(x, *rest, **{**kwargs, "reduction": reduction})
        (g,) = torch.autograd.grad(loss.sum(), x)
    assert loss.dtype == torch.float32 and g.dtype == half
    want = case.fn(
        x.detach().float(),
        *(r.float() if r.dtype.is_floating_point else r for r in rest),
        **{**kwargs, "reduction": reduction},
    )
    assert_close(loss, want, dtype=torch.float32, rtol=1e-5, atol=1e-5)


def test_autocast_cross_entropy_equals_torch():
    x, y = torch.randn(50, 7).bfloat16().requires_grad_(), torch.randint(0, 7, (50,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for reduction in ("none", "mean"):
            got = fastloss.softmax_focal_loss(x, y, gamma=0.0, reduction=reduction)
            want = F.cross_entropy(x, y, reduction=reduction)
            assert got.dtype == want.dtype == torch.float32
            assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_autocast_does_not_copy_the_logits():
    from fastloss import bench

    x = torch.randn(4000, 80).bfloat16().requires_grad_()
    y = torch.randint(0, 81, (4000,))

    def step(x, y):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return fastloss.sigmoid_focal_loss(x, y, reduction="mean")

    peak = bench.peak_bytes(step, {"x": x, "y": y}, ("x",), torch.device("cpu"))
    assert peak <= 1.1 * x.numel() * x.element_size()


# ------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call,error,message",
    [
        (
            lambda: fastloss.sigmoid_focal_loss(
                torch.randn(3, 4), torch.zeros(3, dtype=torch.long), ignore_index=2**70
            ),
            ValueError,
            "ignore_index must fit in int64",
        ),
        (
            lambda: fastloss.giou_loss(torch.rand(3, 4), torch.rand(3, 4), weight=torch.ones(3, 4, dtype=torch.long)),
            TypeError,
            "weight must be a float16",
        ),
        (
            lambda: fastloss.dice_loss(
                torch.randn(2, 3, 4),
                torch.zeros(2, 4, dtype=torch.long),
                class_weight=torch.ones(3, requires_grad=True),
            ),
            ValueError,
            "class_weight requires grad",
        ),
        (
            lambda: fastloss.dice_loss(
                torch.randn(2, 3, 4), torch.zeros(2, 4, dtype=torch.long), class_weight=[1.0, float("nan"), 1.0]
            ),
            ValueError,
            "class_weight must be finite",
        ),
        (
            lambda: fastloss.tversky_loss(
                torch.randn(2, 3, 4),
                torch.zeros(2, 4, dtype=torch.long),
                class_weight=torch.tensor([1.0, float("inf"), 1.0]),
            ),
            ValueError,
            "class_weight must be finite",
        ),
        (
            lambda: fastloss.dice_loss(torch.randn(2, 0, 4), torch.zeros(2, 4, dtype=torch.long)),
            ValueError,
            "at least one class",
        ),
        (
            lambda: fastloss.softmax_focal_loss(torch.randn(2, 0), torch.zeros(2, dtype=torch.long)),
            ValueError,
            "at least one class",
        ),
        (
            lambda: fastloss.mse_loss(torch.randn(3), torch.randn(3), weight=torch.ones(3, requires_grad=True)),
            ValueError,
            "weight requires grad",
        ),
    ],
)
def test_bad_input_is_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_empty_batch_dice_is_defined(reduction):
    x = torch.randn(0, 3, 4, requires_grad=True)
    loss = fastloss.dice_loss(x, torch.zeros(0, 4, dtype=torch.long), reduction=reduction)
    assert loss.shape == ((0, 3) if reduction == "none" else ())
    assert loss.sum().item() == 0
    loss.sum().backward()
    assert x.grad.shape == x.shape


def test_cpu_flavour_comes_from_the_cpu_itself():
    """The CPU's features are asked of the CPU (cpuid), not read from /proc/cpuinfo: a CPU that reports
    no AVX2 gets no AVX2 kernels, whatever a file says."""

    class NoAvx:
        cpu_features = ""

    class Avx2:
        cpu_features = "avx2 fma f16c"

    import platform

    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("x86-64 only")
    assert fastloss._backend._cpu_flavours(NoAvx)[0] == []
    assert fastloss._backend._cpu_flavours(Avx2)[0] == ["avx2"]
    assert "avx2" in fastloss._backend._C.cpu_features.split()  # this machine's CPU (CI's: AVX-512)


def test_reference_value_checks_never_read_a_device_tensor_on_the_host(monkeypatch):
    """On a non-CPU device a value check is a device-side assert (torch._assert_async), never a host
    read; `meta` stands in for CUDA here (reading it would fail)."""
    calls = []
    monkeypatch.setattr(torch, "_assert_async", lambda cond, msg: calls.append(msg))
    from fastloss._common import check_labels

    target = torch.zeros(4, dtype=torch.long, device="meta")
    check_labels(target, target < 0, 3)
    assert calls and "outside [0, 3)" in calls[0]


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_an_empty_mean_is_zero_with_a_working_backward(case):
    """Every loss, the classic ones and softmax focal included (torch's give NaN)."""
    x, rest, kwargs = split(case, n=0)
    loss = case.fn(x, *rest, **{**kwargs, "reduction": "mean"})
    assert loss.item() == 0  # (Dice/Tversky over no positions: 1 − smooth/smooth = 0 per class)
    (g,) = torch.autograd.grad(loss, x)
    assert g.shape == x.shape


def test_an_empty_softmax_focal_mean_is_zero_in_both_layouts():
    for x, y in (
        (torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)),
        (torch.zeros(2, 4, 0), torch.zeros(2, 0, dtype=torch.long)),
    ):
        assert fastloss.softmax_focal_loss(x.requires_grad_(), y).item() == 0


# ---------------------------------------------------------------------------------------- SIMD tails


def loss_and_input_grad(fn, case, n, dtype):
    x, rest, kwargs = split(case, n=n, dtype=dtype, seed=n)
    loss = fn(x, *rest, **kwargs)
    (g,) = torch.autograd.grad(loss.sum(), x)
    return loss.detach(), g


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", CASES, ids=repr)
def test_every_simd_tail_length(case, dtype):
    """n = 1 … 17 leading rows give every vector tail length 1 … W − 1 of both CPU flavours (W ≤ 16 lanes)
    to the kernels that vectorize along n (the sanitizer job runs this: a tail that read or wrote a lane
    past the end would be reported there, and a wrong lane here)."""
    for n in range(1, 18):
        got, want = loss_and_input_grad(case.fn, case, n, dtype), loss_and_input_grad(case.ref, case, n, dtype)
        for a, b in zip(got, want):  # (a mean over only ignored rows is NaN in both, as in torch)
            assert torch.equal(a.isnan(), b.isnan())
            assert_close(a.nan_to_num(), b.nan_to_num())


@pytest.mark.parametrize("classes", range(1, 18))
def test_every_simd_tail_length_along_the_classes(classes):
    """Softmax focal over rows vectorizes along the classes: C = 1 … 17 gives every tail there."""
    g = torch.Generator().manual_seed(classes)
    x = (torch.randn(5, classes, generator=g, dtype=torch.float64) * 3).float().requires_grad_()
    labels = torch.randint(0, classes, (5,), generator=g)
    kwargs = dict(gamma=2.0, label_smoothing=0.1, reduction="none")
    results = []
    for fn in (fastloss.softmax_focal_loss, fastloss.reference.softmax_focal_loss):
        loss = fn(x, labels, **kwargs)
        results.append((loss.detach(), torch.autograd.grad(loss.sum(), x)[0]))
    for a, b in zip(*results):
        assert_close(a, b)
