"""fastloss.dice_ce_loss / dice_focal_loss / deep_supervision_loss (one softmax pass for Dice and cross
entropy), their faces fastloss.monai.DiceCELoss / DiceFocalLoss and fastloss.nnunet.DC_and_CE_loss:
against the references, the composition of fastloss's own losses, torch's cross entropy, MONAI and
nnU-Net (loaded from its wheel: tests/nnunet_peer.py); gradients, the op's contract, compile,
properties, memory, bad input."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

import fastloss
import fastloss.monai as monai_face
import fastloss.nnunet as nnunet_face
from fastloss import reference
from helpers import assert_close, needs, peer
from nnunet_peer import load as load_nnunet

monai_losses = peer("monai.losses")
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU"))]
N, C, H, W = 2, 4, 5, 6


def inputs(seed=0, classes=C, dtype=torch.float64, device="cpu", ignore=None, spatial=(H, W), n=N):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(n, classes, *spatial, generator=g, dtype=torch.float64) * 2).to(device=device, dtype=dtype)
    y = torch.randint(0, classes, (n, *spatial), generator=g)
    if ignore is not None:
        y.view(-1)[::5] = ignore
    return x, y.to(device)


def soft_target(x, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(x.shape, generator=g, dtype=torch.float64), 1).to(x.device, x.dtype)


def value_and_grad(fn, x, *args, **kwargs):
    leaf = x.detach().clone().requires_grad_()
    loss = fn(leaf, *args, **kwargs)
    (grad,) = torch.autograd.grad(loss.sum(), leaf)
    return loss.detach(), grad


GRID = [
    dict(),
    dict(dice="generalized_dice"),
    dict(dice="tversky", tversky_alpha=0.3, tversky_beta=0.7),
    dict(dice="tversky", tversky_gamma=1.5, class_weight=[1.0, 2.0, 0.5, 1.0]),
    dict(ce_weight=[1.0, 2.0, 0.5, 1.5], label_smoothing=0.1, include_background=False, batch=True),
    dict(reduction="sum", squared_pred=True),
    dict(jaccard=True, lambda_dice=0.3, lambda_ce=2.0),
    dict(ignore_index=255, ce_weight=2.0, smooth_nr=0.0, smooth_dr=1e-3),
]


@pytest.mark.parametrize("options", GRID, ids=str)
@pytest.mark.parametrize("name", ["dice_ce_loss", "dice_focal_loss"])
def test_equals_the_reference(name, options):
    options = dict(options)
    if name == "dice_focal_loss" and "lambda_ce" in options:
        options["lambda_focal"] = options.pop("lambda_ce")
    x, y = inputs(ignore=options.get("ignore_index"))
    got = value_and_grad(getattr(fastloss, name), x, y, **options)
    want = value_and_grad(getattr(reference, name), x, y, **options)
    for g, w in zip(got, want):
        assert_close(g, w)


SIGMOID_GRID = [
    dict(),
    dict(activation="sigmoid", alpha=0.25, gamma=1.5, include_background=False, ce_weight=[1.0, 2.0, 0.5, 1.5]),
    dict(activation="none", reduction="sum", gamma=0.0, batch=True),
    dict(ignore_index=2, gamma=0.5, dice="generalized_dice"),
    dict(activation="sigmoid", dice="tversky", tversky_alpha=0.7, gamma=3.0, alpha=0.9),
]


@pytest.mark.parametrize("options", SIGMOID_GRID, ids=str)
@pytest.mark.parametrize("labels", [True, False])
def test_sigmoid_focal_term_is_dice_plus_sigmoid_focal(options, labels):
    """focal="sigmoid": the Dice part (any activation) + torchvision's sigmoid focal loss over the scored
    classes' elements, one pass; against the reference and the composition of fastloss's own losses."""
    options = dict(focal="sigmoid", **options)
    x, y = inputs(26, ignore=options.get("ignore_index"))
    t = y if labels else (torch.rand(x.shape, generator=torch.Generator().manual_seed(3)) < 0.3).double()
    if not labels:
        options.pop("ignore_index", None)
    got = value_and_grad(fastloss.dice_focal_loss, x, t, **options)
    for g, w in zip(got, value_and_grad(reference.dice_focal_loss, x, t, **options)):
        assert_close(g, w)
    first = 0 if options.get("include_background", True) else 1
    dice_options = {
        k: v
        for k, v in options.items()
        if k in ("activation", "include_background", "batch", "ignore_index", "reduction")
    }
    dice_fn = {
        "dice": fastloss.dice_loss,
        "generalized_dice": fastloss.generalized_dice_loss,
        "tversky": lambda *a, **k: fastloss.tversky_loss(*a, alpha=options["tversky_alpha"], **k),
    }[options.get("dice", "dice")]

    def composed(v, t):
        target = F.one_hot(t.clamp(0, C - 1), C).movedim(-1, 1).double() if labels else t
        kept = (t != options.get("ignore_index", -1)).unsqueeze(1).double() if labels else torch.ones_like(v)
        w = torch.tensor(options.get("ce_weight", [1.0] * C), dtype=torch.float64).view(1, -1, 1, 1)
        focal = (
            fastloss.sigmoid_focal_loss(
                v, target, alpha=options.get("alpha", -1.0), gamma=options.get("gamma", 2.0), reduction="none"
            )
            * w
            * kept
        )
        focal = focal[:, first:]
        count = kept.expand(-1, C, -1, -1)[:, first:].sum()
        total = focal.sum() if options.get("reduction") == "sum" else focal.sum() / count
        return dice_fn(v, t, **dice_options) + total

    for g, w in zip(got, value_and_grad(composed, x, t)):
        assert_close(g, w)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 1.3])
def test_is_dice_plus_softmax_focal(gamma, smoothing):
    """dice_focal_loss = dice_loss + softmax_focal_loss with the same options (gamma 0: F.cross_entropy)."""
    x, y = inputs(2, ignore=-100)
    w = torch.tensor([1.0, 2.0, 0.5, 1.5], dtype=torch.float64)
    got = value_and_grad(
        fastloss.dice_focal_loss,
        x,
        y,
        gamma=gamma,
        ce_weight=w,
        label_smoothing=smoothing,
        ignore_index=-100,
        lambda_dice=0.7,
    )

    def composed(v, y):
        focal = fastloss.softmax_focal_loss(v, y, alpha=w, gamma=gamma, label_smoothing=smoothing)
        return 0.7 * fastloss.dice_loss(v, y, ignore_index=-100) + focal

    want = value_and_grad(composed, x, y)
    for g, v in zip(got, want):
        assert_close(g, v)
    if gamma == 0:
        ce = value_and_grad(
            lambda v, y: (
                0.7 * fastloss.dice_loss(v, y, ignore_index=-100)
                + F.cross_entropy(v, y, weight=w, label_smoothing=smoothing)
            ),
            x,
            y,
        )
        for g, v in zip(got, ce):
            assert_close(g, v)


@pytest.mark.parametrize("dice", ["dice", "generalized_dice", "tversky"])
def test_soft_targets_are_torch_cross_entropy_with_probabilities(dice):
    x, _ = inputs(3)
    t = soft_target(x)
    got = value_and_grad(fastloss.dice_ce_loss, x, t, dice=dice, label_smoothing=0.1, ce_weight=[1.0, 3.0, 1.0, 0.5])
    dice_fn = fastloss.generalized_dice_loss if dice == "generalized_dice" else getattr(fastloss, dice + "_loss")
    weight = torch.tensor([1.0, 3.0, 1.0, 0.5], dtype=torch.float64)
    want = value_and_grad(lambda v, t: dice_fn(v, t) + F.cross_entropy(v, t, weight=weight, label_smoothing=0.1), x, t)
    for g, w in zip(got, want):
        assert_close(g, w)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_low_precision_follows_float64(dtype):
    x, y = inputs(4, dtype=dtype, ignore=-1)
    for fn, extra in ((fastloss.dice_ce_loss, {}), (fastloss.dice_focal_loss, dict(gamma=2.0))):
        got = value_and_grad(fn, x, y, ignore_index=-1, **extra)
        want = value_and_grad(getattr(reference, fn.__name__), x.double(), y, ignore_index=-1, **extra)
        assert got[0].dtype == torch.float32 if dtype != torch.float64 else True
        assert got[1].dtype == dtype
        assert_close(got[0], want[0], dtype)
        assert_close(got[1], want[1], dtype, atol=2e-3 if dtype != torch.float32 else None)


@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(gamma=1.5, label_smoothing=0.2, ignore_index=0, batch=True),
        dict(gamma=0.5, dice="generalized_dice", ce_weight=[1.0, 0.5, 2.0]),
    ],
)
def test_gradcheck(options):
    x, y = inputs(5, classes=3, spatial=(3, 4))
    x.requires_grad_()
    assert torch.autograd.gradcheck(lambda v: fastloss.dice_focal_loss(v, y, **options), (x,))
    t = soft_target(x.detach())
    assert torch.autograd.gradcheck(lambda v: fastloss.dice_ce_loss(v, t, label_smoothing=0.3), (x,))
    sigmoid = {k: v for k, v in options.items() if k != "label_smoothing"}
    assert torch.autograd.gradcheck(
        lambda v: fastloss.dice_focal_loss(v, y, focal="sigmoid", alpha=0.3, activation="sigmoid", **sigmoid), (x,)
    )


def test_minus_inf_logit_of_another_class_keeps_the_loss_finite():
    x, y = inputs(6)
    x[:, 1][y != 1] = float("-inf")
    for fn in (fastloss.dice_ce_loss, fastloss.dice_focal_loss):
        value, grad = value_and_grad(fn, x, y)
        want = value_and_grad(getattr(reference, fn.__name__), x, y)
        assert torch.isfinite(value) and torch.isfinite(grad).all()
        assert_close(value, want[0])
        assert_close(grad, want[1])


def test_opcheck():
    x, y = inputs(7, classes=3)
    x3, y2 = x.reshape(N, 3, -1), y.reshape(N, -1)
    w = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    for args in (
        (x3.clone().requires_grad_(), y2, w, 2.0, 0.1, False, None, True),
        (x3.clone().requires_grad_(), y2, None, 0.0, 0.0, True, 1, True),
        (x3.clone().requires_grad_(), y2, w, 1.5, 0.1, False, 0, False),
        (x3.clone(), soft_target(x3), None, 0.0, 0.2, False, None, False, True),
    ):
        # As overlap_sums: with keep_probs the probs output is the buffer the backward turns into the
        # gradient, not a graph output; the compiled loss is checked by test_compile_fullgraph.
        utils = ["test_schema", "test_autograd_registration", "test_faketensor"]
        if not args[7]:
            utils.append("test_aot_dispatch_dynamic")
        torch.library.opcheck(torch.ops.fastloss.overlap_ce_sums.default, args, test_utils=utils)
    probs = torch.softmax(x3, 1)
    torch.library.opcheck(
        torch.ops.fastloss.overlap_ce_sums_backward_.default,
        (
            torch.randn(N, 3, 3, dtype=torch.float64),
            torch.randn(N, 2, dtype=torch.float64),
            probs,
            x3,
            y2,
            w,
            1.5,
            0.1,
            False,
            None,
        ),
    )


def test_raw_op_outputs_equal_the_torch_definition():
    from fastloss.compound import sums_op

    x, y = inputs(8)
    x3, y2 = x.reshape(N, C, -1), y.reshape(N, -1)
    w = torch.tensor([1.0, 2.0, 0.5, 1.5], dtype=torch.float64)
    got = torch.ops.fastloss.overlap_ce_sums(x3, y2, w, 2.0, 0.1, False, None, True)
    want = sums_op(x3, y2, w, 2.0, 0.1, False, None, True)
    for g, v in zip(got, want):
        assert_close(g, v)


@pytest.mark.parametrize("dynamic", [False, True])
def test_compile_fullgraph(dynamic):
    torch._dynamo.reset()
    x, y = inputs(9, dtype=torch.float32)
    fn = torch.compile(
        lambda v, y: (
            fastloss.dice_focal_loss(v, y, gamma=2.0, label_smoothing=0.1, batch=True)
            + fastloss.dice_ce_loss(v, y, dice="generalized_dice")
        ),
        fullgraph=True,
        dynamic=dynamic,
    )
    got = value_and_grad(fn, x, y)
    want = value_and_grad(
        lambda v, y: (
            fastloss.dice_focal_loss(v, y, gamma=2.0, label_smoothing=0.1, batch=True)
            + fastloss.dice_ce_loss(v, y, dice="generalized_dice")
        ),
        x,
        y,
    )
    for g, w in zip(got, want):
        assert_close(g, w)


def test_retain_graph_then_second_backward():
    x, y = inputs(10)
    leaf = x.clone().requires_grad_()
    loss = fastloss.dice_focal_loss(leaf, y, gamma=2.0)
    (first,) = torch.autograd.grad(loss, leaf, retain_graph=True)
    (second,) = torch.autograd.grad(loss, leaf)
    assert_close(first, second)


@settings(max_examples=25, deadline=None)
@given(
    lambda_dice=st.floats(0, 3),
    lambda_ce=st.floats(0, 3),
    seed=st.integers(0, 2**16),
    gamma=st.sampled_from([0.0, 1.0, 2.0]),
)
def test_the_lambdas_weigh_the_parts(lambda_dice, lambda_ce, seed, gamma):
    """λ_dice·Dice + λ_ce·CE: the loss is linear in the lambdas; each part alone is its own loss."""
    x, y = inputs(seed, classes=3, spatial=(4, 3))
    whole = fastloss.dice_focal_loss(x, y, gamma=gamma, lambda_dice=lambda_dice, lambda_focal=lambda_ce)
    dice_only = fastloss.dice_focal_loss(x, y, gamma=gamma, lambda_dice=1.0, lambda_focal=0.0)
    ce_only = fastloss.dice_focal_loss(x, y, gamma=gamma, lambda_dice=0.0, lambda_focal=1.0)
    assert_close(whole, lambda_dice * dice_only + lambda_ce * ce_only)
    assert_close(dice_only, fastloss.dice_loss(x, y))
    assert 0 <= dice_only <= 1 and ce_only >= 0


@pytest.mark.parametrize("name", ["dice_ce_loss", "dice_focal_loss"])
def test_memory_is_the_gradient(name):
    from fastloss import bench

    x, y = inputs(11, classes=8, dtype=torch.float32, spatial=(64, 64))
    x.requires_grad_()
    peak = bench.peak_bytes(lambda x, y: getattr(fastloss, name)(x, y), {"x": x, "y": y}, ("x",), torch.device("cpu"))
    assert peak <= 1.1 * x.numel() * x.element_size()


def test_empty_and_all_ignored():
    x = torch.randn(0, C, 3, 3, dtype=torch.float64, requires_grad=True)
    y = torch.zeros(0, 3, 3, dtype=torch.long)
    loss = fastloss.dice_ce_loss(x, y)
    assert loss.item() == 0
    loss.backward()
    assert x.grad.shape == x.shape
    x, y = inputs(12)
    y.fill_(255)
    # every position ignored: F.cross_entropy's "mean" is NaN, its "sum" 0
    assert torch.isnan(fastloss.dice_ce_loss(x, y, ignore_index=255, lambda_dice=0.0))
    assert fastloss.dice_ce_loss(x, y, ignore_index=255, lambda_dice=0.0, reduction="sum") == 0


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda x, y: fastloss.dice_ce_loss(x, y, reduction="none"), ValueError, "reduction"),
        (lambda x, y: fastloss.dice_ce_loss(x[:, :1], y.clamp(max=0)), ValueError, "softmax"),
        (lambda x, y: fastloss.dice_ce_loss(x, y, ce_weight=[1.0, 2.0]), ValueError, "ce_weight"),
        (lambda x, y: fastloss.dice_ce_loss(x, y, ce_weight=[1.0, -2.0, 1.0, 1.0]), ValueError, "ce_weight"),
        (lambda x, y: fastloss.dice_ce_loss(x, y, label_smoothing=1.5), ValueError, "label_smoothing"),
        (lambda x, y: fastloss.dice_ce_loss(x, y, lambda_ce=-1.0), ValueError, "lambda_ce"),
        (lambda x, y: fastloss.dice_ce_loss(x, y, dice="cldice"), ValueError, "dice"),
        (lambda x, y: fastloss.dice_ce_loss(x, y, dice="generalized_dice", class_weight=1.0), ValueError, "w_type"),
        (lambda x, y: fastloss.dice_focal_loss(x, soft_target(x)), ValueError, "gamma"),
        (lambda x, y: fastloss.dice_focal_loss(x, y, gamma=-1.0), ValueError, "gamma"),
        (lambda x, y: fastloss.dice_focal_loss(x, y, activation="sigmoid"), ValueError, "activation"),
        (lambda x, y: fastloss.dice_focal_loss(x, y, alpha=0.25), ValueError, "alpha"),
        (lambda x, y: fastloss.dice_focal_loss(x, y, focal="sigmoid", alpha=1.5), ValueError, "alpha"),
        (
            lambda x, y: fastloss.dice_focal_loss(x, y, focal="sigmoid", label_smoothing=0.1),
            ValueError,
            "label_smoothing",
        ),
        (lambda x, y: fastloss.dice_focal_loss(x, y, focal="tanh"), ValueError, "focal"),
        (lambda x, y: fastloss.dice_ce_loss(x, y + 1), ValueError, "label"),
        (lambda x, y: fastloss.dice_ce_loss(x, y[:, :3]), ValueError, "target"),
        (lambda x, y: fastloss.dice_ce_loss(x, y.float()), ValueError, "target"),
    ],
)
def test_bad_input_is_a_clear_error(call, error, message):
    x, y = inputs(13)
    with pytest.raises(error, match=message):
        call(x, y)


# ------------------------------------------------------------------------------------ deep supervision


def pyramid(seed=14, levels=3, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    xs = [torch.randn(N, C, 16 // 2**i, 12 // 2**i, generator=g, dtype=torch.float64).to(dtype) for i in range(levels)]
    y = torch.randint(0, C, (N, 1, 16, 12), generator=g)
    return xs, y


def test_nnunet_weights():
    assert fastloss.deep_supervision.nnunet_weights(1) == [1.0]
    w = fastloss.deep_supervision.nnunet_weights(4)
    assert w[-1] == 0 and abs(sum(w) - 1) < 1e-12
    assert_close(torch.tensor(w[:3]), torch.tensor([4 / 7, 2 / 7, 1 / 7], dtype=torch.float64))


def test_deep_supervision_is_the_weighted_sum_of_the_levels():
    xs, y = pyramid()
    leaves = [x.clone().requires_grad_() for x in xs]
    loss = fastloss.deep_supervision_loss(leaves, y, weights=[0.5, 0.3, 0.2], batch=True)
    grads = torch.autograd.grad(loss, leaves)
    want_leaves = [x.clone().requires_grad_() for x in xs]
    want = 0
    for w, x in zip([0.5, 0.3, 0.2], want_leaves):
        t = F.interpolate(y.float(), size=x.shape[2:], mode="nearest-exact").long()
        want = want + w * reference.dice_ce_loss(x, t, batch=True)
    want_grads = torch.autograd.grad(want, want_leaves)
    assert_close(loss, want)
    for g, v in zip(grads, want_grads):
        assert_close(g, v)
    # nnU-Net's default weights leave the last level out: no gradient reaches it
    leaves = [x.clone().requires_grad_() for x in xs]
    fastloss.deep_supervision_loss(leaves, y).backward()
    assert leaves[-1].grad is None and leaves[0].grad is not None


def test_deep_supervision_takes_given_targets_and_any_loss():
    xs, y = pyramid(15)
    targets = [F.interpolate(y.float(), size=x.shape[2:], mode="nearest-exact").long()[:, 0] for x in xs]
    got = fastloss.deep_supervision_loss(xs, targets, loss=fastloss.dice_loss, weights=[1, 1, 1])
    want = sum(fastloss.dice_loss(x, t) for x, t in zip(xs, targets))
    assert_close(got, want)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda xs, y: fastloss.deep_supervision_loss([], y), "non-empty"),
        (lambda xs, y: fastloss.deep_supervision_loss(xs[::-1], y), "decreasing"),
        (lambda xs, y: fastloss.deep_supervision_loss([xs[0], xs[1][:, :2]], y), r"inputs\[1\]"),
        (lambda xs, y: fastloss.deep_supervision_loss(xs, y, weights=[1.0]), "one value per level"),
        (lambda xs, y: fastloss.deep_supervision_loss(xs, y[..., :5]), "spatial shape"),
        (lambda xs, y: fastloss.deep_supervision_loss(xs, [y, y]), "one target per level"),
        (lambda xs, y: fastloss.deep_supervision_loss(xs, y.float()), "integer labels"),
        (lambda xs, y: fastloss.deep_supervision_loss(xs, [y, y, y]), "target"),
        (lambda xs, y: fastloss.deep_supervision_loss(xs, y, weights=[0, 0, 0]), "weight"),
    ],
)
def test_deep_supervision_bad_input(call, message):
    xs, y = pyramid(16)
    with pytest.raises(ValueError, match=message):
        call(xs, y)


def test_deep_supervision_memory_is_the_gradients():
    from fastloss import bench

    xs, y = pyramid(17, dtype=torch.float32)
    xs = [torch.randn(N, 8, 64 // 2**i, 64 // 2**i) for i in range(3)]
    y = torch.randint(0, 8, (N, 64, 64))
    tensors = {f"x{i}": x.requires_grad_() for i, x in enumerate(xs)}
    peak = bench.peak_bytes(
        lambda **t: fastloss.deep_supervision_loss([t["x0"], t["x1"], t["x2"]], t["y"]),
        {**tensors, "y": y},
        tuple(tensors),
        torch.device("cpu"),
    )
    # the gradients of the two supervised levels, and the downsampled labels (int64, one per position)
    labels = sum(N * x.shape[2] * x.shape[3] * 8 for x in xs[1:])
    assert peak <= 1.1 * sum(x.numel() * 4 for x in xs[:2]) + labels


# ---------------------------------------------------------------------------------------- MONAI faces


MONAI_CE_GRID = [
    dict(to_onehot_y=True, softmax=True),
    dict(
        to_onehot_y=True,
        softmax=True,
        include_background=False,
        weight=[1.0, 2.0, 0.5, 1.5],
        label_smoothing=0.1,
        batch=True,
    ),
    dict(softmax=True, reduction="sum", squared_pred=True, jaccard=True, lambda_dice=0.5, lambda_ce=2.0),
    dict(softmax=True, weight=[1.0, 2.0, 0.5, 1.5], label_smoothing=0.2),
    dict(sigmoid=True, to_onehot_y=True),
    dict(to_onehot_y=True),
    dict(other_act=torch.tanh, to_onehot_y=True, smooth_nr=0.0, smooth_dr=1e-4),
]


def _compare(ours, theirs, x, target, dtype=None):
    got = value_and_grad(lambda v, t: ours(v, t), x, target)
    want = value_and_grad(lambda v, t: theirs(v, t), x, target)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        assert_close(g, w, dtype)


@needs("monai")
@pytest.mark.parametrize("options", MONAI_CE_GRID, ids=lambda o: ",".join(f"{k}" for k in o))
def test_monai_dice_ce_loss(options):
    x, y = inputs(20)
    target = y.unsqueeze(1).double() if options.get("to_onehot_y") else F.one_hot(y, C).movedim(-1, 1).double()
    kwargs = {k: torch.tensor(v, dtype=torch.float64) if k == "weight" else v for k, v in options.items()}
    _compare(monai_face.DiceCELoss(**kwargs), monai_losses.DiceCELoss(**kwargs), x, target)


@needs("monai")
def test_monai_dice_ce_loss_one_channel_is_bce():
    x, y = inputs(21, classes=2)
    x, target = x[:, 1:], y.unsqueeze(1).double()
    for options in (dict(sigmoid=True), dict(sigmoid=True, weight=torch.tensor([2.0]), reduction="sum")):
        _compare(monai_face.DiceCELoss(**options), monai_losses.DiceCELoss(**options), x, target)


@needs("monai")
def test_monai_dice_ce_loss_state_dict_and_errors():
    w = torch.tensor([1.0, 2.0, 0.5, 1.5])
    ours, theirs = monai_face.DiceCELoss(weight=w, softmax=True), monai_losses.DiceCELoss(weight=w, softmax=True)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    with pytest.raises(ValueError):
        monai_face.DiceCELoss(reduction="none")
    with pytest.raises(ValueError, match="lambda_ce"):
        monai_face.DiceCELoss(lambda_ce=-1.0)
    x, y = inputs(22)
    with pytest.raises(ValueError, match="number of dimensions"):
        monai_face.DiceCELoss(softmax=True, to_onehot_y=True)(x, y)
    with pytest.raises(ValueError, match="number of channels"):
        monai_face.DiceCELoss(softmax=True)(x, x[:, :2])


MONAI_FOCAL_GRID = [
    dict(to_onehot_y=True, softmax=True),
    dict(to_onehot_y=True, sigmoid=True, gamma=1.5, alpha=0.25),
    dict(softmax=True, include_background=False, weight=[2.0, 0.5, 1.5], batch=True, lambda_focal=0.5),
    dict(to_onehot_y=True, softmax=True, reduction="sum", gamma=0.0),
    dict(reduction="sum", weight=2.0, alpha=0.75, include_background=False, gamma=0.5),  # no activation
    dict(sigmoid=True, weight=(3, 2.0, 1, 0.5), squared_pred=True, jaccard=True, lambda_dice=0.3),
    dict(to_onehot_y=True, softmax=True, reduction="none"),  # two kernels: "none" shapes
    dict(to_onehot_y=True, other_act=torch.tanh, reduction="sum"),
]


@needs("monai")
@pytest.mark.parametrize("options", MONAI_FOCAL_GRID, ids=lambda o: ",".join(f"{k}" for k in o))
def test_monai_dice_focal_loss(options):
    x, y = inputs(23)
    target = y.unsqueeze(1).double() if options.get("to_onehot_y") else F.one_hot(y, C).movedim(-1, 1).double()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # MONAI's FocalLoss computes in float32 whatever the input's dtype: float32's tolerance
        for dtype in (torch.float64, torch.float32):
            _compare(
                monai_face.DiceFocalLoss(**options),
                monai_losses.DiceFocalLoss(**options),
                x.to(dtype),
                target.to(dtype),
                torch.float32,
            )


@needs("monai")
def test_monai_dice_focal_loss_is_one_pass():
    """The fused path: one overlap_ce_sums call (no sigmoid focal kernel) and the gradient's memory."""
    from fastloss import bench

    x, y = inputs(25, classes=8, dtype=torch.float32, spatial=(64, 64))
    loss = monai_face.DiceFocalLoss(to_onehot_y=True, softmax=True, include_background=False, alpha=0.25)
    target = y.unsqueeze(1)
    peak = bench.peak_bytes(
        lambda x, t: loss(x, t), {"x": x.requires_grad_(), "t": target}, ("x",), torch.device("cpu")
    )
    assert peak <= 1.1 * x.numel() * x.element_size()
    generalized = monai_face.GeneralizedDiceFocalLoss(to_onehot_y=True, sigmoid=True, weight=2.0)
    peak = bench.peak_bytes(lambda x, t: generalized(x, t), {"x": x, "t": target}, ("x",), torch.device("cpu"))
    assert peak <= 1.1 * x.numel() * x.element_size()
    for module in (loss, generalized):
        with torch.profiler.profile() as prof:
            module(x, target).backward()
        names = {e.name for e in prof.events()}
        assert "fastloss::overlap_ce_sums" in names and "fastloss::sigmoid_focal_loss" not in names
    with pytest.raises(ValueError, match="0 or 1"):
        monai_face.DiceFocalLoss(softmax=True)(x.detach(), F.one_hot(y, 8).movedim(-1, 1).float() * 0.5)


@needs("monai")
@pytest.mark.parametrize(
    "options",
    [
        dict(to_onehot_y=True, softmax=True),
        dict(to_onehot_y=True, sigmoid=True, w_type="simple", weight=[1.0, 2.0, 0.5, 1.5], reduction="sum", batch=True),
        dict(softmax=True, include_background=False, gamma=1.0, lambda_gdl=0.5),
        dict(w_type="uniform", weight=0.5, reduction="none"),
    ],
    ids=lambda o: ",".join(f"{k}" for k in o),
)
def test_monai_generalized_dice_focal_loss(options):
    x, y = inputs(24)
    target = y.unsqueeze(1).double() if options.get("to_onehot_y") else F.one_hot(y, C).movedim(-1, 1).double()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _compare(
            monai_face.GeneralizedDiceFocalLoss(**options),
            monai_losses.GeneralizedDiceFocalLoss(**options),
            x,
            target,
            torch.float32,
        )
    with pytest.raises(ValueError, match="lambda_gdl"):
        monai_face.GeneralizedDiceFocalLoss(lambda_gdl=-1.0)


# --------------------------------------------------------------------------------------- nnU-Net face


@pytest.fixture(scope="module")
def nnunet(tmp_path_factory):
    return load_nnunet(str(tmp_path_factory.mktemp("nnunet")))


NNUNET_GRID = [
    (dict(batch_dice=False, smooth=1e-5, do_bg=False, ddp=False), {}, None),
    (dict(batch_dice=True, smooth=1e-5, do_bg=False, ddp=False), {}, 3),
    (dict(batch_dice=True, smooth=1e-5, do_bg=True, ddp=False), dict(label_smoothing=0.1), None),
    (dict(batch_dice=False, smooth=1.0, do_bg=True, ddp=False), dict(weight=[1.0, 2.0, 0.5]), 3),
    (dict(batch_dice=False, smooth=0.0, do_bg=False, ddp=False), {}, None),
]


@pytest.mark.parametrize("dice_kwargs, ce_kwargs, ignore_label", NNUNET_GRID, ids=str)
@pytest.mark.parametrize("dice_class", ["MemoryEfficientSoftDiceLoss", "SoftDiceLoss"])
def test_nnunet_dc_and_ce_loss(nnunet, dice_kwargs, ce_kwargs, ignore_label, dice_class):
    x, y = inputs(30, n=3)
    if ignore_label is not None:
        x, y = inputs(30, classes=3, n=3)
        y.view(-1)[::4] = ignore_label
    target = y.unsqueeze(1).float()  # nnU-Net's float labels (b, 1, ...)
    theirs_ce = dict(ce_kwargs)
    if "weight" in theirs_ce:
        theirs_ce["weight"] = torch.tensor(theirs_ce["weight"], dtype=torch.float64)
    theirs = nnunet.DC_and_CE_loss(
        dict(dice_kwargs), theirs_ce, ignore_label=ignore_label, dice_class=getattr(nnunet, dice_class)
    )
    ours = nnunet_face.DC_and_CE_loss(
        dict(dice_kwargs), dict(ce_kwargs), ignore_label=ignore_label, dice_class=getattr(nnunet, dice_class)
    )
    # nnU-Net sums in float32 (its sum dtype), whatever the input's dtype
    _compare(ours, theirs, x, target, torch.float32)


def test_nnunet_value_is_ce_minus_dice_and_can_be_negative(nnunet):
    x, y = inputs(31)
    x = F.one_hot(y, C).movedim(-1, 1).double() * 20  # confident and right: CE ~ 0, Dice ~ 1
    loss = nnunet_face.DC_and_CE_loss(dict(batch_dice=True, smooth=1e-5, do_bg=False, ddp=False), {})(
        x, y.unsqueeze(1).float()
    )
    assert loss < -0.99
    theirs = nnunet.DC_and_CE_loss(
        dict(batch_dice=True, smooth=1e-5, do_bg=False, ddp=False), {}, dice_class=nnunet.MemoryEfficientSoftDiceLoss
    )(x, y.unsqueeze(1).float())
    assert_close(loss, theirs, torch.float32)


def test_nnunet_all_ignored_has_no_cross_entropy(nnunet):
    x, y = inputs(32, classes=3)
    target = torch.full_like(y, 3).unsqueeze(1).float()
    options = dict(batch_dice=False, smooth=1e-5, do_bg=False, ddp=False)
    ours = nnunet_face.DC_and_CE_loss(dict(options), {}, ignore_label=3)(x, target)
    theirs = nnunet.DC_and_CE_loss(dict(options), {}, ignore_label=3, dice_class=nnunet.MemoryEfficientSoftDiceLoss)(
        x, target
    )
    assert torch.isfinite(ours)
    assert_close(ours, theirs, torch.float32)


def test_nnunet_deep_supervision_wrapper(nnunet):
    xs, y = pyramid(33)
    targets = [F.interpolate(y.float(), size=x.shape[2:], mode="nearest-exact") for x in xs]
    weights = fastloss.nnunet.nnunet_weights(len(xs))
    options = dict(batch_dice=True, smooth=1e-5, do_bg=False, ddp=False)
    ours = nnunet_face.DeepSupervisionWrapper(nnunet_face.DC_and_CE_loss(dict(options), {}), weights)
    theirs = nnunet.DeepSupervisionWrapper(
        nnunet.DC_and_CE_loss(dict(options), {}, dice_class=nnunet.MemoryEfficientSoftDiceLoss), weights
    )
    assert_close(ours(xs, targets), theirs(xs, targets), torch.float32)
    # fastloss's core call with the same weights and nnU-Net's own target downsampling
    core = fastloss.deep_supervision_loss(xs, y, loss=lambda x, t: ours.loss(x, t.float()))
    assert_close(core, theirs(xs, targets), torch.float32)


def test_nnunet_bad_input():
    with pytest.raises(TypeError, match="apply_nonlin"):
        nnunet_face.DC_and_CE_loss(dict(apply_nonlin=torch.sigmoid), {})
    with pytest.raises(TypeError, match="size_average"):
        nnunet_face.DC_and_CE_loss({}, dict(size_average=True))
    with pytest.raises(ValueError, match="dice_class"):
        nnunet_face.DC_and_CE_loss({}, {}, dice_class=torch.nn.MSELoss)
    x, y = inputs(34)
    with pytest.raises(ValueError, match="target"):
        nnunet_face.DC_and_CE_loss({}, {})(x, y)
    with pytest.raises(ValueError, match="At least one"):
        nnunet_face.DeepSupervisionWrapper(None, [0, 0])


# --------------------------------------------------------------------------------------------- CUDA


@pytest.mark.parametrize("device", DEVICES[1:])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(gamma=2.0, label_smoothing=0.1, ignore_index=-1, batch=True),
        dict(gamma=0.5, ce_weight=[1.0, 2.0, 0.5, 1.5], include_background=False),
    ],
    ids=str,
)
def test_cuda_equals_cpu(device, dtype, options):
    x, y = inputs(40, dtype=dtype, ignore=-1, spatial=(33, 65))
    got = value_and_grad(fastloss.dice_focal_loss, x.to(device), y.to(device), **options)
    want = value_and_grad(fastloss.dice_focal_loss, x, y, **options)
    for g, w in zip(got, want):
        assert_close(g.cpu(), w, dtype)
    t = soft_target(x)
    got = value_and_grad(fastloss.dice_ce_loss, x.to(device), t.to(device), label_smoothing=0.1)
    want = value_and_grad(fastloss.dice_ce_loss, x, t, label_smoothing=0.1)
    for g, w in zip(got, want):
        assert_close(g.cpu(), w, dtype)
    for activation in ("softmax", "sigmoid", "none"):
        sigmoid = dict(
            focal="sigmoid",
            activation=activation,
            alpha=0.25,
            gamma=options.get("gamma", 2.0),
            include_background=options.get("include_background", True),
        )
        got = value_and_grad(fastloss.dice_focal_loss, x.to(device), y.to(device), ignore_index=-1, **sigmoid)
        want = value_and_grad(fastloss.dice_focal_loss, x, y, ignore_index=-1, **sigmoid)
        for g, w in zip(got, want):
            assert_close(g.cpu(), w, dtype)


def test_grid_is_exhaustive_over_the_dice_kinds():
    kinds = {o.get("dice", "dice") for o in GRID}
    assert kinds == set(reference.compound.DICE_KINDS)
