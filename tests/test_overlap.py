"""Dice, Jaccard, Tversky and focal Tversky against MONAI and the reference: values, gradients,
options, shapes, registration, torch.compile, determinism, bad input."""

import warnings

import pytest
import torch

import fastloss
from fastloss import reference
from helpers import DEVICES, FLOAT_DTYPES, assert_close, loss_and_grads, needs, peer

monai_losses = peer("monai.losses")
needs_monai = needs("monai.losses")
LOSSES = ["dice_loss", "tversky_loss"]


def logits(n=3, c=4, spatial=(6, 7), device="cpu", dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn((n, c) + tuple(spatial), generator=g, dtype=torch.float64) * 2).to(device=device, dtype=dtype)


def labels(n=3, c=4, spatial=(6, 7), device="cpu", seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, c, (n,) + tuple(spatial), generator=g).to(device)


def multilabel(like, seed=2):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(like.shape, generator=g) < 0.4).to(device=like.device, dtype=like.dtype)


def monai(cls, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(monai_losses, cls)(**options)


def monai_call(loss, input, target):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return loss(input, target)


# --------------------------------------------------------------------------------------------- MONAI

DICE_OPTIONS = [
    dict(),
    dict(include_background=False),
    dict(squared_pred=True),
    dict(jaccard=True),
    dict(batch=True),
    dict(smooth_nr=0.0, smooth_dr=1e-6),
    dict(reduction="sum"),
    dict(reduction="none"),
    dict(jaccard=True, squared_pred=True, batch=True, include_background=False),
]


def _same_as_monai(got, want, reduction):
    if reduction == "none":
        want = want.reshape(got.shape)  # MONAI's DiceLoss keeps trailing unit dims
    # MONAI makes its one-hot in float32 and, with squared_pred, takes Σt² through a float32 norm: its
    # float64 result is float32-accurate there (ours is the exact formula).
    assert_close(got, want, rtol=1e-6, atol=1e-7)


@needs_monai
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("options", DICE_OPTIONS, ids=str)
@pytest.mark.parametrize("channel_dim", [False, True])
def test_dice_softmax_labels_matches_monai(device, options, channel_dim):
    x, y = logits(device=device).requires_grad_(), labels(device=device)
    target = y.unsqueeze(1) if channel_dim else y
    got, (g1,) = loss_and_grads(fastloss.dice_loss, (x, target), **options)
    m = monai("DiceLoss", softmax=True, to_onehot_y=True, **options)
    want, (g2,) = loss_and_grads(lambda x, t: monai_call(m, x, t), (x, y.unsqueeze(1)))
    _same_as_monai(got, want, options.get("reduction", "mean"))
    assert_close(g1, g2, rtol=1e-6, atol=1e-9)


@needs_monai
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("options", DICE_OPTIONS[:6], ids=str)
@pytest.mark.parametrize("activation", ["sigmoid", "none"])
def test_dice_float_targets_matches_monai(device, options, activation):
    x = logits(device=device)
    if activation == "none":
        x = torch.softmax(x, 1)
    x.requires_grad_()
    t = multilabel(x)
    got, (g1,) = loss_and_grads(fastloss.dice_loss, (x, t), activation=activation, **options)
    m = monai("DiceLoss", sigmoid=activation == "sigmoid", **options)
    want, (g2,) = loss_and_grads(lambda x, t: monai_call(m, x, t), (x, t))
    _same_as_monai(got, want, "mean")
    assert_close(g1, g2, rtol=1e-6, atol=1e-9)


@needs_monai
@pytest.mark.parametrize("ignore_index", [255, -1, 2])
@pytest.mark.parametrize("loss", LOSSES)
def test_ignore_index_matches_monai(ignore_index, loss):
    x, y = logits().requires_grad_(), labels()
    y[:, :2] = ignore_index
    got, (g1,) = loss_and_grads(getattr(fastloss, loss), (x, y), ignore_index=ignore_index)
    cls = "DiceLoss" if loss == "dice_loss" else "TverskyLoss"
    m = monai(cls, softmax=True, to_onehot_y=True, ignore_index=ignore_index)
    want, (g2,) = loss_and_grads(lambda x, t: monai_call(m, x, t), (x, y.unsqueeze(1)))
    assert_close(got, want)
    assert_close(g1, g2)


@needs_monai
@pytest.mark.parametrize("weight", [[0.5, 1.0, 2.0, 0.0], 3.0])
def test_class_weight_matches_monai(weight):
    x, y = logits().requires_grad_(), labels()
    got, (g1,) = loss_and_grads(fastloss.dice_loss, (x, y), class_weight=weight)
    m = monai("DiceLoss", softmax=True, to_onehot_y=True, weight=weight)
    want, (g2,) = loss_and_grads(lambda x, t: monai_call(m, x, t), (x, y.unsqueeze(1)))
    assert_close(got, want)
    assert_close(g1, g2)


TVERSKY_OPTIONS = [
    dict(),
    dict(alpha=0.3, beta=0.7),
    dict(alpha=0.7, beta=0.3, batch=True),
    dict(include_background=False, alpha=0.2, beta=0.8),
    dict(reduction="sum"),
    dict(reduction="none"),
    dict(smooth_nr=0.0, smooth_dr=1e-6),
]


@needs_monai
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("options", TVERSKY_OPTIONS, ids=str)
@pytest.mark.parametrize("targets", ["labels", "sigmoid"])
def test_tversky_matches_monai(device, options, targets):
    x = logits(device=device).requires_grad_()
    if targets == "labels":
        t, monai_t, act = (
            labels(device=device),
            labels(device=device).unsqueeze(1),
            dict(softmax=True, to_onehot_y=True),
        )
    else:
        t = monai_t = multilabel(x)
        act = dict(sigmoid=True)
    got, (g1,) = loss_and_grads(
        fastloss.tversky_loss, (x, t), activation="softmax" if targets == "labels" else "sigmoid", **options
    )
    m = monai("TverskyLoss", **act, **options)
    want, (g2,) = loss_and_grads(lambda x, t: monai_call(m, x, t), (x, monai_t))
    assert_close(got, want)
    assert_close(g1, g2)


@needs_monai
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("loss", LOSSES)
def test_float32_matches_monai_exact_values(device, loss):
    """fp32 to rel. 1e-5 of MONAI's float64 value of the same inputs."""
    x, y = logits(4, 6, (32, 33), device=device, dtype=torch.float32), labels(4, 6, (32, 33), device=device)
    cls = "DiceLoss" if loss == "dice_loss" else "TverskyLoss"
    m = monai(cls, softmax=True, to_onehot_y=True, reduction="none")
    got = getattr(fastloss, loss)(x, y, reduction="none")
    assert got.dtype == torch.float32
    want = monai_call(m, x.double(), y.unsqueeze(1)).reshape(got.shape)
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-7)


def test_alpha_beta_half_is_dice():
    x, y = logits(), labels()
    tversky = fastloss.tversky_loss(x, y, alpha=0.5, beta=0.5, smooth_nr=0.0, smooth_dr=1e-9, reduction="none")
    dice = fastloss.dice_loss(x, y, smooth_nr=0.0, smooth_dr=1e-9, reduction="none")
    assert_close(tversky, dice, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("gamma", [0.75, 1.5, 2.0])
def test_focal_tversky_is_tversky_to_the_gamma(gamma):
    x, y = logits(), labels()
    tversky = fastloss.tversky_loss(x, y, alpha=0.3, beta=0.7, reduction="none")
    focal = fastloss.tversky_loss(x, y, alpha=0.3, beta=0.7, gamma=gamma, reduction="none")
    assert_close(focal, tversky**gamma)
    assert_close(fastloss.tversky_loss(x, y, gamma=gamma), reference.tversky_loss(x, y, gamma=gamma))


# -------------------------------------------------------------------------------------- reference


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_dtypes_match_reference(device, dtype, loss, activation):
    x = logits(2, 5, (9, 8), device=device, dtype=dtype).requires_grad_()
    y = labels(2, 5, (9, 8), device=device)
    got, (g1,) = loss_and_grads(getattr(fastloss, loss), (x, y), activation=activation, reduction="none")
    want, (g2,) = loss_and_grads(getattr(reference, loss), (x, y), activation=activation, reduction="none")
    assert got.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    assert g1.dtype == dtype
    assert_close(got, want, dtype)
    assert_close(g1, g2)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("spatial", [(), (0,), (5,), (3, 4, 5), (2, 3, 2, 2)], ids=str)
@pytest.mark.parametrize("loss", LOSSES)
def test_any_number_of_spatial_dims(device, spatial, loss):
    x = logits(2, 3, spatial, device=device).requires_grad_()
    y = labels(2, 3, spatial, device=device)
    got, (g1,) = loss_and_grads(getattr(fastloss, loss), (x, y), reduction="none")
    want, (g2,) = loss_and_grads(getattr(reference, loss), (x, y), reduction="none")
    assert got.shape == (2, 3)
    assert_close(got, want)
    assert_close(g1, g2)


def test_single_class_labels_are_the_binary_target():
    """C = 1 (sigmoid): labels 1 are the foreground, as MONAI takes them."""
    x = logits(2, 1, (6, 6))
    y = (labels(2, 2, (6, 6)) == 1).long()
    got = fastloss.dice_loss(x, y, activation="sigmoid", reduction="none")
    assert_close(got, fastloss.dice_loss(x, y.unsqueeze(1).double(), activation="sigmoid", reduction="none"))
    if monai_losses is not None:
        want = monai_call(monai("DiceLoss", sigmoid=True, reduction="none"), x, y.unsqueeze(1).double())
        assert_close(got, want.reshape(got.shape))


def test_absent_class_and_all_ignored():
    x, y = logits(), labels()
    y[y == 2] = 0  # class 2 absent: its score is 1 − smooth_nr / (Σp + smooth_dr), finite
    loss = fastloss.dice_loss(x, y, reduction="none")
    assert torch.isfinite(loss).all() and (loss[:, 2] > 0.99).all()
    x.requires_grad_()
    every = torch.full_like(y, 255)
    loss = fastloss.dice_loss(x, every, ignore_index=255)
    loss.backward()
    assert loss.item() == 0.0 and (x.grad == 0).all()  # nothing left: 1 − smooth_nr / smooth_dr = 0


def test_channels_last_and_non_contiguous_inputs():
    x = logits(2, 3, (8, 9))
    y = labels(2, 3, (8, 9))
    want = fastloss.dice_loss(x, y, reduction="none")
    assert_close(fastloss.dice_loss(x.to(memory_format=torch.channels_last), y, reduction="none"), want)
    wide = logits(2, 6, (8, 9))
    assert_close(
        fastloss.dice_loss(wide[:, ::2], y, reduction="none"),
        fastloss.dice_loss(wide[:, ::2].contiguous(), y, reduction="none"),
    )


@pytest.mark.parametrize("loss", LOSSES)
def test_deterministic_across_runs_and_thread_counts(loss):
    x, y = logits(2, 5, (96, 97), dtype=torch.float32), labels(2, 5, (96, 97))
    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3, threads):
            torch.set_num_threads(n)
            results += [getattr(fastloss, loss)(x, y, reduction="none") for _ in range(2)]
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(r, results[0]) for r in results)


# --------------------------------------------------------------------------------------- gradients


GRADCHECK_CASES = [
    ("dice_loss", "softmax", "labels", dict()),
    ("dice_loss", "softmax", "labels", dict(squared_pred=True, include_background=False)),
    ("dice_loss", "softmax", "labels", dict(jaccard=True, batch=True, ignore_index=1)),
    ("dice_loss", "sigmoid", "float", dict(squared_pred=True, class_weight=[1.0, 2.0, 0.5])),
    ("dice_loss", "none", "float", dict(jaccard=True, reduction="sum")),
    ("dice_loss", "sigmoid", "labels", dict(reduction="none")),
    ("tversky_loss", "softmax", "labels", dict(alpha=0.3, beta=0.7)),
    ("tversky_loss", "softmax", "labels", dict(gamma=1.5, ignore_index=0, include_background=False)),
    ("tversky_loss", "sigmoid", "float", dict(gamma=0.75, batch=True)),
    ("tversky_loss", "none", "float", dict(alpha=0.6, beta=0.2, reduction="none")),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("loss,activation,targets,options", GRADCHECK_CASES, ids=str)
def test_gradcheck(device, loss, activation, targets, options):
    x = logits(2, 3, (4, 5), device=device)
    if activation == "none":
        x = torch.softmax(x, 1)
    t = labels(2, 3, (4, 5), device=device) if targets == "labels" else multilabel(x)
    fn = getattr(fastloss, loss)
    assert torch.autograd.gradcheck(lambda x: fn(x, t, activation=activation, **options), (x.requires_grad_(),))


OPCHECK_ARGS = {
    "softmax labels ignore": lambda d: (
        logits(2, 4, (15,), device=d).requires_grad_(),
        labels(2, 4, (15,), device=d),
        0,
        False,
        3,
        True,
    ),
    "sigmoid float squared": lambda d: (
        logits(2, 4, (15,), device=d).requires_grad_(),
        multilabel(logits(2, 4, (15,), device=d)),
        1,
        True,
        None,
        True,
    ),
    "none bfloat16 no probs": lambda d: (
        logits(2, 4, (15,), device=d, dtype=torch.bfloat16),
        labels(2, 4, (15,), device=d),
        2,
        False,
        None,
        False,
    ),
    "softmax soft_label no probs": lambda d: (
        logits(2, 4, (15,), device=d),
        multilabel(logits(2, 4, (15,), device=d)),
        0,
        False,
        None,
        False,
        True,
    ),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(OPCHECK_ARGS))
def test_opcheck(device, case):
    args = OPCHECK_ARGS[case](device)
    # With keep_probs the probs output is the buffer its backward consumes (turns into the gradient),
    # so it must not be a graph output, and AOT's check returns it as one. The compiled loss, which
    # keeps it internal, is checked under AOTAutograd by test_torch_compile_fullgraph_matches_eager.
    utils = ["test_schema", "test_autograd_registration", "test_faketensor"]
    if not args[5]:  # keep_probs
        utils.append("test_aot_dispatch_dynamic")
    torch.library.opcheck(torch.ops.fastloss.overlap_sums.default, args, test_utils=utils)


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck_backward_op(device):
    x, y = logits(2, 4, (15,), device=device), labels(2, 4, (15,), device=device)
    grad = torch.randn(2, 4, 3, dtype=torch.float64, device=device)
    torch.library.opcheck(torch.ops.fastloss.overlap_sums_backward_.default, (grad, x.softmax(1), y, 0, True, 1))


SCORE_ARGS = {  # sums, class_weight, loss, jaccard, smooth_nr, smooth_dr, alpha, beta, gamma, background, batch, red.
    "dice mean": lambda s, d: (s, None, 0, False, 1e-5, 1e-5, 0.5, 0.5, 1.0, True, False, 2),
    "jaccard none weights": lambda s, d: (
        s,
        torch.tensor([1.0, 2.0, 0.5], dtype=s.dtype, device=d),
        0,
        True,
        0.0,
        1e-5,
        0.5,
        0.5,
        1.0,
        False,
        False,
        0,
    ),
    "focal tversky batch sum": lambda s, d: (s, None, 1, False, 1.0, 1.0, 0.3, 0.7, 0.75, True, True, 1),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(SCORE_ARGS))
def test_opcheck_score_op(device, case):
    """fastloss::overlap_score, the loss from the sums (math/overlap_score.h), and its backward."""
    sums = (torch.rand(2, 4, 3, dtype=torch.float64, device=device) * 5 + 0.5).requires_grad_()
    args = SCORE_ARGS[case](sums, device)
    torch.library.opcheck(torch.ops.fastloss.overlap_score.default, args)
    assert torch.autograd.gradcheck(lambda s: torch.ops.fastloss.overlap_score(s, *args[1:]), (sums,))
    out = torch.ops.fastloss.overlap_score(*args)
    grad = torch.rand_like(out)
    torch.library.opcheck(torch.ops.fastloss.overlap_score_backward.default, (grad, sums.detach()) + args[1:])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_second_backward_with_retain_graph(device, activation):
    """The first backward turns the kept probabilities into the gradient; a second one through
    the same graph computes them again and gives the same gradient."""
    x = logits(2, 3, (4, 5), device=device, dtype=torch.float32).requires_grad_()
    loss = fastloss.dice_loss(x, labels(2, 3, (4, 5), device=device), activation=activation)
    (first,) = torch.autograd.grad(loss, x, retain_graph=True)
    (second,) = torch.autograd.grad(loss, x)
    assert torch.equal(first, second)
    (expected,) = torch.autograd.grad(
        fastloss.reference.dice_loss(x, labels(2, 3, (4, 5), device=device), activation=activation), x
    )
    assert_close(first, expected)


def test_no_probabilities_kept_without_grad():
    """Inference (no grad) writes no buffer of the input's size."""
    x, y = logits(2, 3, (4, 5), dtype=torch.float32), labels(2, 3, (4, 5))
    _, probs = torch.ops.fastloss.overlap_sums(x.view(2, 3, -1), y.view(2, -1), 0, False, None, False)
    assert probs.numel() == 0
    with torch.no_grad():
        assert_close(fastloss.dice_loss(x.requires_grad_(), y), fastloss.reference.dice_loss(x, y))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("loss", LOSSES)
def test_torch_compile_fullgraph_matches_eager(device, loss):
    x = logits(2, 4, (8, 8), device=device, dtype=torch.float32).requires_grad_()
    y = labels(2, 4, (8, 8), device=device)

    def step(x, y):
        return getattr(fastloss, loss)(x, y, include_background=False, ignore_index=3) * 2.0

    got, (g1,) = loss_and_grads(torch.compile(step, fullgraph=True), (x, y))
    want, (g2,) = loss_and_grads(step, (x, y))
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(g1, g2)


def test_modules():
    x, y = logits(), labels()
    module = fastloss.nn.DiceLoss(include_background=False, jaccard=True)
    assert_close(module(x, y), fastloss.dice_loss(x, y, include_background=False, jaccard=True))
    focal = fastloss.nn.TverskyLoss(alpha=0.3, beta=0.7, gamma=0.75, reduction="none")
    assert_close(focal(x, y), fastloss.tversky_loss(x, y, alpha=0.3, beta=0.7, gamma=0.75, reduction="none"))
    assert "jaccard=True" in repr(module)


# ---------------------------------------------------------------------------------------- bad input


def _call(loss="dice_loss", **changes):
    args = dict(input=logits(), target=labels())
    args.update(changes)
    return loss, args


BAD_INPUTS = [
    (_call(input=torch.zeros(3, 4, 6, 7, dtype=torch.long)), TypeError, "input must be a float16"),
    (_call(input=torch.zeros(4)), ValueError, r"input must have shape \(N, C, \*spatial\)"),
    (_call(target=torch.zeros(3, 4, 6, 6)), ValueError, "a float target must have the input's shape"),
    (_call(target=torch.zeros(3, 6, 6, dtype=torch.long)), ValueError, r"integer label target must have shape"),
    (_call(target=torch.zeros(3, 2, 6, 7, dtype=torch.long)), ValueError, r"integer label target must have shape"),
    (_call(target=torch.zeros(3, 6, 7, dtype=torch.bool)), TypeError, "target must be a float tensor or integer"),
    (
        _call(target=torch.zeros(3, 4, 6, 7, dtype=torch.float64), ignore_index=0),
        ValueError,
        "ignore_index needs integer label targets",
    ),
    (
        _call(target=torch.zeros(3, 4, 6, 7, dtype=torch.float64, requires_grad=True)),
        ValueError,
        "target requires grad",
    ),
    (_call(activation="relu"), ValueError, "activation must be one of"),
    (_call(input=logits(3, 1)), ValueError, "activation='softmax' needs more than one class"),
    (
        _call(input=logits(3, 1), activation="sigmoid", include_background=False),
        ValueError,
        "include_background=False needs more than one class",
    ),
    (_call(target=labels().fill_(7)), ValueError, r"label 7 outside \[0, 4\)"),
    (_call(target=labels().fill_(-1)), ValueError, r"label -1 outside \[0, 4\)"),
    (_call(class_weight=[1.0, 2.0]), ValueError, "class_weight must have one weight per class"),
    (_call(class_weight=[1.0, -2.0, 1.0, 1.0]), ValueError, "class_weight must be finite and >= 0"),
    (_call(reduction="avg"), ValueError, "Invalid reduction"),
    (_call(batch=1), TypeError, "batch must be True or False"),
    (_call(smooth_dr=-1.0), ValueError, "smooth_dr must be >= 0"),
    (_call("tversky_loss", alpha=-0.1), ValueError, "alpha must be >= 0"),
    (_call("tversky_loss", gamma=0.0), ValueError, "gamma must be > 0"),
    (_call(target=labels(device="meta")), ValueError, "target and input must be on the same device"),
]


@pytest.mark.parametrize("call,error,message", BAD_INPUTS, ids=[m for _, _, m in BAD_INPUTS])
@pytest.mark.parametrize("impl", [fastloss, reference])
def test_bad_input_raises_clear_error(impl, call, error, message):
    loss, args = call
    args = dict(args)
    with pytest.raises(error, match=message):
        getattr(impl, loss)(args.pop("input"), args.pop("target"), **args)


@pytest.mark.parametrize("activation", [0, 1, 2])
def test_no_classes_give_empty_sums(activation):
    """The raw op with C = 0 (the Python layer refuses it): empty sums, nothing read (the softmax once
    read its first class unconditionally: scripts/sanitize.sh's fuzzer found it)."""
    sums, probs = torch.ops.fastloss.overlap_sums(
        torch.randn(2, 0, 5), torch.zeros(2, 0, 5), activation, False, None, True
    )
    assert sums.shape == (2, 0, 3) and probs.shape == (2, 0, 5)
