"""fastloss.softmax_focal_loss: equal to F.cross_entropy at γ = 0 (weights, ignore_index, label
smoothing, every reduction, gradients), to the reference for γ > 0, on (N, C) and (N, C, *spatial)
inputs and every dtype; gradcheck, opcheck, torch.compile, determinism, edge cases, bad input."""

import pytest
import torch
import torch.nn.functional as F

import fastloss
from fastloss import reference
from fastloss._common import SUM
from helpers import DEVICES, FLOAT_DTYPES, assert_close, logits, loss_and_grads

REDUCTIONS = ["mean", "sum", "none"]
SHAPES = {"rows": (37, 5), "rows 1203": (9, 1203), "spatial": (3, 4, 5, 6), "3-D": (2, 3, 2, 3, 5), "C=1": (6, 1)}


def labels(shape, device="cpu", ignore_index=-100, seed=0):
    """Labels in [0, C) for input `shape`, every third position ignored."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, shape[1], (shape[0],) + tuple(shape[2:]), generator=g)
    y.view(-1)[::3] = ignore_index
    return y.to(device)


def class_weights(classes, device="cpu", dtype=torch.float64):
    return (torch.rand(classes, generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 0.2).to(
        device, dtype
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("alpha", [None, "tensor"])
@pytest.mark.parametrize("smoothing", [0.0, 0.15])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_gamma_zero_is_cross_entropy(device, shape, reduction, alpha, smoothing, dtype):
    shape = SHAPES[shape]
    x, y = logits(*shape, device=device, dtype=dtype).requires_grad_(), labels(shape, device)
    w = class_weights(shape[1], device, dtype) if alpha else None
    got, (g1,) = loss_and_grads(
        fastloss.softmax_focal_loss, (x, y), gamma=0, alpha=w, reduction=reduction, label_smoothing=smoothing
    )
    want, (g2,) = loss_and_grads(F.cross_entropy, (x, y), weight=w, reduction=reduction, label_smoothing=smoothing)
    # The fp32 rel. 1e-6. Per position ("none") a loss is a difference of logs, exact to the
    # rounding of log Σ exp (about 1e-7 absolute in both torch and fastloss, whose sums add in
    # different orders), so tiny per-position losses get that absolute tolerance.
    rtol = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(got, want, rtol=rtol, atol=rtol * (0.25 if reduction == "none" else 0.1))
    assert_close(g1, g2)  # p_y − 1 rounds to float's ulp of 1 in both


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("ignore_index", [-100, 0, 255])
def test_gamma_zero_ignore_index_is_cross_entropy(device, ignore_index):
    x = logits(20, 6, device=device).requires_grad_()
    y = labels((20, 6), device, ignore_index=ignore_index)
    got, (g1,) = loss_and_grads(fastloss.softmax_focal_loss, (x, y), gamma=0, ignore_index=ignore_index)
    want, (g2,) = loss_and_grads(F.cross_entropy, (x, y), ignore_index=ignore_index)
    assert_close(got, want)
    assert_close(g1, g2)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("gamma", [2.0, 0.5, 1.0, 1.7, 3.0])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"alpha": "tensor"},
        {"alpha": 0.25, "reduction": "sum"},
        {"label_smoothing": 0.1, "alpha": "tensor"},
        {"reduction": "none"},
    ],
)
def test_matches_reference(device, shape, gamma, options):
    shape, options = SHAPES[shape], dict(options)
    if options.get("alpha") == "tensor":
        options["alpha"] = class_weights(shape[1], device)
    x, y = logits(*shape, device=device).requires_grad_(), labels(shape, device)
    got, (g1,) = loss_and_grads(fastloss.softmax_focal_loss, (x, y), gamma=gamma, **options)
    want, (g2,) = loss_and_grads(reference.softmax_focal_loss, (x, y), gamma=gamma, **options)
    assert_close(got, want)
    assert_close(g1, g2)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", ["rows", "spatial"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_dtypes_match_reference(device, dtype, shape, reduction):
    shape = SHAPES[shape]
    x, y = logits(*shape, device=device, dtype=dtype).requires_grad_(), labels(shape, device)
    got, (g1,) = loss_and_grads(fastloss.softmax_focal_loss, (x, y), reduction=reduction, label_smoothing=0.05)
    want, (g2,) = loss_and_grads(reference.softmax_focal_loss, (x, y), reduction=reduction, label_smoothing=0.05)
    assert got.dtype == dtype and g1.dtype == dtype
    assert_close(got, want)
    assert_close(g1, g2)


def test_focal_factor_is_one_minus_p_to_the_gamma():
    """The definition written out for one row: −α_y (1 − p_y)^γ log p_y."""
    x, y, alpha = logits(1, 7), torch.tensor([3]), class_weights(7)
    p = x.softmax(1)[0, 3]
    want = -alpha[3] * (1 - p) ** 2.5 * p.log()
    assert_close(fastloss.softmax_focal_loss(x, y, alpha=alpha, gamma=2.5, reduction="sum"), want)


def test_label_smoothing_with_focal_factor():
    """The focal factor of the labelled class scales the whole smoothed cross entropy."""
    x, y = logits(5, 4), torch.tensor([0, 1, 2, 3, 1])
    p_y = x.softmax(1).gather(1, y[:, None]).squeeze(1)
    ce = F.cross_entropy(x, y, label_smoothing=0.2, reduction="none")
    assert_close(fastloss.softmax_focal_loss(x, y, gamma=2, label_smoothing=0.2, reduction="none"), (1 - p_y) ** 2 * ce)


@pytest.mark.parametrize("device", DEVICES)
def test_per_position_weight_and_avg_factor(device):
    shape = SHAPES["spatial"]
    x, y = logits(*shape, device=device), labels(shape, device)
    weight = torch.rand((shape[0],) + shape[2:], dtype=torch.float64, device=device)
    per_position = fastloss.softmax_focal_loss(x, y, reduction="none")
    assert_close(fastloss.softmax_focal_loss(x, y, weight=weight, reduction="none"), per_position * weight)
    assert_close(fastloss.softmax_focal_loss(x, y, weight=weight, reduction="sum"), (per_position * weight).sum())
    kept = (y != -100).sum()
    assert_close(fastloss.softmax_focal_loss(x, y, weight=weight), (per_position * weight).sum() / kept)
    assert_close(fastloss.softmax_focal_loss(x, y, weight=weight, avg_factor=7.5), (per_position * weight).sum() / 7.5)


@pytest.mark.parametrize("device", DEVICES)
def test_all_ignored(device):
    x = logits(4, 3, device=device).requires_grad_()
    y = torch.full((4,), -100, device=device)
    assert fastloss.softmax_focal_loss(x, y, reduction="sum").item() == 0
    mean = fastloss.softmax_focal_loss(x, y)
    assert torch.isnan(mean) and torch.isnan(F.cross_entropy(x, y))  # as F.cross_entropy
    (grad,) = torch.autograd.grad(fastloss.softmax_focal_loss(x, y, reduction="sum"), x)
    assert torch.equal(grad, torch.zeros_like(grad))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(0, 5), (2, 3, 0), (0, 3, 4)])
def test_empty(device, shape):
    x = torch.zeros(shape, dtype=torch.float64, device=device, requires_grad=True)
    y = torch.zeros((shape[0],) + shape[2:], dtype=torch.long, device=device)
    got = fastloss.softmax_focal_loss(x, y, reduction="sum")
    assert got.item() == 0
    got.backward()
    assert x.grad.shape == x.shape


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_extreme_logits_are_finite(device, dtype, gamma):
    x = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [30.0, -30.0, 0.0]], device=device).to(dtype)
    y = torch.tensor([0, 0, 0], device=device)
    for layout in ("rows", "spatial"):  # spatial: the same three positions as (1, C, 3)
        xl = (x if layout == "rows" else x.t().unsqueeze(0).contiguous()).requires_grad_()
        yl = y if layout == "rows" else y.unsqueeze(0)
        loss = fastloss.softmax_focal_loss(xl, yl, gamma=gamma, reduction="none").view(-1)
        (grad,) = torch.autograd.grad(loss.sum(), xl)
        assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
        assert loss[0].item() == 0 and loss[1].item() > 1e3


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", ["rows", "spatial", "C=1"])
@pytest.mark.parametrize(
    "options",
    [
        {"gamma": 2.0},
        {"gamma": 0.5, "alpha": "tensor", "label_smoothing": 0.2},
        {"gamma": 0.0, "reduction": "none", "label_smoothing": 0.1},
    ],
)
def test_gradcheck(device, shape, options):
    shape, options = SHAPES[shape], dict(options)
    if options.get("alpha") == "tensor":
        options["alpha"] = class_weights(shape[1], device)
    x, y = logits(*shape, device=device, scale=1.0).requires_grad_(), labels(shape, device)
    weight = torch.rand(y.shape, dtype=torch.float64, device=device)
    assert torch.autograd.gradcheck(lambda x: fastloss.softmax_focal_loss(x, y, weight=weight, **options), (x,))


OPCHECK_ARGS = {
    "rows sum": lambda d: (
        logits(9, 5, 1, device=d).requires_grad_(),
        labels((9, 5), d).view(9, 1),
        None,
        None,
        2.0,
        0.0,
        1,
        -100,
    ),
    "spatial none alpha weight": lambda d: (
        logits(2, 4, 6, device=d).requires_grad_(),
        labels((2, 4, 6), d),
        class_weights(4, d),
        torch.rand(2, 6, dtype=torch.float64, device=d),
        0.5,
        0.1,
        0,
        -100,
    ),
    "bfloat16": lambda d: (
        logits(7, 3, 1, device=d, dtype=torch.bfloat16).requires_grad_(),
        labels((7, 3), d).view(7, 1),
        None,
        None,
        2.0,
        0.0,
        1,
        -100,
    ),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(OPCHECK_ARGS))
def test_opcheck(device, case):
    torch.library.opcheck(torch.ops.fastloss.softmax_focal_loss.default, OPCHECK_ARGS[case](device))


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck_backward_op(device):
    x, y = logits(2, 4, 6, device=device), labels((2, 4, 6), device)
    _, lse, _ = torch.ops.fastloss.softmax_focal_loss(x, y, None, None, 2.0, 0.1, 0, -100)
    grad = torch.randn(2, 6, dtype=torch.float64, device=device)
    torch.library.opcheck(
        torch.ops.fastloss.softmax_focal_loss_backward.default, (grad, x, y, None, None, lse, 2.0, 0.1, 0, -100)
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", ["rows", "spatial"])
def test_torch_compile_fullgraph_matches_eager(device, shape):
    shape = SHAPES[shape]
    x = logits(*shape, device=device, dtype=torch.float32).requires_grad_()
    y, w = labels(shape, device), class_weights(shape[1], device, torch.float32)

    def step(x, y):
        return fastloss.softmax_focal_loss(x, y, alpha=w, label_smoothing=0.1) * 2.0

    got, (g1,) = loss_and_grads(torch.compile(step, fullgraph=True), (x, y))
    want, (g2,) = loss_and_grads(step, (x, y))
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(g1, g2)


@pytest.mark.parametrize("shape", ["rows", "spatial"])
def test_deterministic_across_runs_and_thread_counts(shape):
    shape = (3000, 40) if shape == "rows" else (2, 21, 70, 90)
    x, y = logits(*shape, dtype=torch.float32).requires_grad_(), labels(shape)
    results = []
    threads = torch.get_num_threads()
    try:
        for n in (1, 2, 3, 1):
            torch.set_num_threads(n)
            results.append(loss_and_grads(fastloss.softmax_focal_loss, (x, y), label_smoothing=0.1))
    finally:
        torch.set_num_threads(threads)
    for loss, (grad,) in results[1:]:
        assert torch.equal(loss, results[0][0]) and torch.equal(grad, results[0][1][0])


def test_non_contiguous_and_channels_last():
    x = logits(2, 5, 6, 7, dtype=torch.float32).to(memory_format=torch.channels_last)
    y = labels((2, 5, 6, 7))
    assert_close(fastloss.softmax_focal_loss(x, y), reference.softmax_focal_loss(x.contiguous(), y))
    xt = logits(5, 9, dtype=torch.float32).t()  # (9, 5), not contiguous
    yt = labels((9, 5))
    assert_close(fastloss.softmax_focal_loss(xt, yt), reference.softmax_focal_loss(xt.contiguous(), yt))


@pytest.mark.parametrize("label_dtype", [torch.int64, torch.int32, torch.uint8])
def test_integer_label_dtypes(label_dtype):
    x, y = logits(10, 4), labels((10, 4), ignore_index=0)
    assert_close(
        fastloss.softmax_focal_loss(x, y.to(label_dtype), ignore_index=0),
        fastloss.softmax_focal_loss(x, y, ignore_index=0),
    )


# ---------------------------------------------------------------------------------------- bad input


def _call(**changes):
    args = dict(input=logits(6, 4), target=labels((6, 4)))
    args.update(changes)
    return args


BAD_INPUTS = [
    (_call(input=torch.zeros(6, 4, dtype=torch.long)), TypeError, "input must be a float16"),
    (_call(input=torch.zeros(6)), ValueError, r"input must have shape \(N, C\)"),
    (_call(target=torch.zeros(6, 4)), TypeError, "target must be integer class labels"),
    (_call(target=torch.zeros(5, dtype=torch.long)), ValueError, r"target must have shape \(N, \*spatial\)"),
    (_call(target=labels((6, 4)).fill_(4)), ValueError, r"label 4 outside \[0, 4\)"),
    (_call(target=labels((6, 4)).fill_(-1)), ValueError, r"label -1 outside \[0, 4\)"),
    (_call(alpha=torch.ones(3, dtype=torch.float64)), ValueError, r"alpha must be None, a number or a float tensor"),
    (_call(gamma=-1.0), ValueError, "gamma must be >= 0"),
    (_call(label_smoothing=1.5), ValueError, r"label_smoothing must be in \[0, 1\]"),
    (_call(weight=torch.ones(6, 4, dtype=torch.float64)), ValueError, "weight must have one value per position"),
    (_call(reduction="avg"), ValueError, "Invalid reduction"),
    (_call(reduction="sum", avg_factor=3.0), ValueError, "avg_factor can only be used with reduction='mean'"),
    (_call(ignore_index=1.5), TypeError, "ignore_index must be an int"),
    (_call(target=labels((6, 4), device="meta")), ValueError, "target and input must be on the same device"),
]


@pytest.mark.parametrize("call,error,message", BAD_INPUTS, ids=[m for _, _, m in BAD_INPUTS])
@pytest.mark.parametrize("impl", [fastloss, reference])
def test_bad_input_raises_clear_error(impl, call, error, message):
    args = dict(call)
    with pytest.raises(error, match=message):
        impl.softmax_focal_loss(args.pop("input"), args.pop("target"), **args)


def test_modules():
    x, y = logits(8, 5), labels((8, 5))
    weight = torch.rand(8, dtype=torch.float64)
    focal = fastloss.nn.SoftmaxFocalLoss(gamma=1.5, label_smoothing=0.1)
    assert_close(
        focal(x, y, weight=weight, avg_factor=4.0),
        fastloss.softmax_focal_loss(x, y, gamma=1.5, label_smoothing=0.1, weight=weight, avg_factor=4.0),
    )
    assert_close(
        fastloss.nn.SoftmaxFocalLoss(gamma=1.5, label_smoothing=0.1, reduction="none")(x, y),
        fastloss.softmax_focal_loss(x, y, gamma=1.5, label_smoothing=0.1, reduction="none"),
    )
    w = class_weights(5)
    ce = fastloss.nn.CrossEntropyLoss(class_weight=w, label_smoothing=0.05)
    assert_close(ce(x, y), F.cross_entropy(x, y, weight=w, label_smoothing=0.05))
    assert "gamma=1.5" in repr(focal)


@pytest.mark.parametrize("device", DEVICES)
def test_32k_classes(device):
    x = logits(3, 32768, device=device, dtype=torch.float32).requires_grad_()
    y = torch.tensor([0, 32767, 12345], device=device)
    got, (g1,) = loss_and_grads(fastloss.softmax_focal_loss, (x, y), gamma=0, label_smoothing=0.1)
    # against torch's cross entropy in float64: its float32 kernel is the less exact one on an AVX2-only
    # CPU (gradient 1.3e-6 from float64, ours 6e-8)
    want, (g2,) = loss_and_grads(F.cross_entropy, (x.double(), y), label_smoothing=0.1)
    torch.testing.assert_close(got.double(), want, rtol=1e-6, atol=1e-7)
    assert_close(g1, g2, torch.float32)
    got, (g1,) = loss_and_grads(fastloss.softmax_focal_loss, (x, y), gamma=2.0)
    want, (g2,) = loss_and_grads(reference.softmax_focal_loss, (x, y), gamma=2.0)
    assert_close(got, want)
    assert_close(g1, g2)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("avg_factor", [None, 20_000.0])
def test_half_mean_of_a_sum_beyond_float16_range(dtype, avg_factor):
    """The sum (~1e5 here) exceeds float16's range; "mean" must divide before casting, as torch does."""
    x, y = logits(20_000, 10, dtype=dtype, scale=4.0), labels((20_000, 10))
    want = F.cross_entropy(x.float(), y)
    got = fastloss.softmax_focal_loss(x, y, gamma=0, avg_factor=avg_factor)
    assert got.dtype == dtype and torch.isfinite(got)
    if avg_factor is None:
        assert_close(got, want)
    else:
        assert_close(got, F.cross_entropy(x.float(), y, reduction="sum") / avg_factor)


@pytest.mark.parametrize("grad_shape", [(), (1,), (1, 1)])
def test_a_reduced_loss_grad_of_one_element_is_one_scale_for_every_position(grad_shape):
    """The raw backward takes a reduced loss's grad as one number whatever its shape (a (1,) grad once
    read one value per position, past its end: scripts/sanitize.sh's fuzzer found it)."""
    x = torch.randn(6, 5, 3, dtype=torch.float64)
    y = torch.randint(0, 5, (6, 3))
    _, lse, _ = torch.ops.fastloss.softmax_focal_loss(x, y, None, None, 2.0, 0.1, SUM, -100)
    grad = torch.full(grad_shape, 0.5, dtype=torch.float64)
    got = torch.ops.fastloss.softmax_focal_loss_backward(grad, x, y, None, None, lse, 2.0, 0.1, SUM, -100)
    want = torch.ops.fastloss.softmax_focal_loss_backward(
        torch.tensor(0.5, dtype=torch.float64), x, y, None, None, lse, 2.0, 0.1, SUM, -100
    )
    assert torch.equal(got, want)
