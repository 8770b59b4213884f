"""fastloss.monai against installed MONAI (pinned in requirements-dev.txt) over its option grid:
values, gradients, "none" shapes, state_dict keys, warnings."""

import itertools
import warnings

import pytest
import torch

import fastloss.monai as face
from helpers import assert_close, needs, peer

pytestmark = needs("monai")
monai_losses = peer("monai.losses")
N, C, H, W = 2, 4, 5, 6


def inputs(seed, classes=C, label_target=True, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, classes, H, W, generator=g, dtype=torch.float64).to(dtype) * 2
    labels = torch.randint(0, classes, (N, 1, H, W), generator=g)
    if label_target:
        return x, labels
    return x, torch.nn.functional.one_hot(labels[:, 0], classes).movedim(-1, 1).to(dtype)


def compare(ours, theirs, x, target, dtype=None, rtol=None, atol=None):
    """dtype: the tolerance's (default x's; MONAI's FocalLoss computes in float32 whatever x's dtype)."""
    dtype = dtype or x.dtype
    results = []
    for module in (ours, theirs):
        leaf = x.detach().clone().requires_grad_()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loss = module(leaf, target)
        (grad,) = torch.autograd.grad(loss.sum(), leaf)
        results.append((loss.detach(), grad, len(caught) > 0))
    (got, got_grad, got_warned), (want, want_grad, want_warned) = results
    assert got.shape == want.shape
    assert got_warned == want_warned
    assert_close(got, want, dtype, rtol, atol)
    assert_close(got_grad, want_grad, dtype, rtol, atol)


def grid(**options):
    keys = list(options)
    for values in itertools.product(*options.values()):
        yield dict(zip(keys, values))


ACTIVATIONS = [dict(softmax=True), dict(sigmoid=True), dict(other_act=torch.tanh), {}]


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=["softmax", "sigmoid", "other_act", "none"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_dice_loss(activation, reduction):
    for options in grid(
        include_background=[True, False],
        squared_pred=[False, True],
        jaccard=[False, True],
        batch=[False, True],
        weight=[None, [1.0, 2.0, 0.5, 1.5]],
    ):
        if options["weight"] is not None and not options["include_background"]:
            options["weight"] = [2.0, 0.5, 1.5]
        x, labels = inputs(1)
        kwargs = dict(activation, reduction=reduction, smooth_nr=1e-4, smooth_dr=1e-3, **options)
        # with squared_pred MONAI takes tp = (‖p‖² + ‖t‖² − ‖p − t‖²) / 2, equal to fastloss's Σ p·t up
        # to its cancellation (1e-8 relative in float64)
        tolerance = dict(rtol=1e-6, atol=1e-9) if options["squared_pred"] else {}
        compare(
            face.DiceLoss(to_onehot_y=True, **kwargs),
            monai_losses.DiceLoss(to_onehot_y=True, **kwargs),
            x,
            labels,
            **tolerance,
        )
        x, one_hot = inputs(2, label_target=False)
        compare(face.DiceLoss(**kwargs), monai_losses.DiceLoss(**kwargs), x, one_hot, **tolerance)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_dice_ignore_index_and_soft_label(reduction):
    x, labels = inputs(3)
    labels[:, :, 0] = 255
    for options in grid(ignore_index=[255], soft_label=[False, True], softmax=[True], include_background=[True, False]):
        compare(
            face.DiceLoss(to_onehot_y=True, reduction=reduction, **options),
            monai_losses.DiceLoss(to_onehot_y=True, reduction=reduction, **options),
            x,
            labels,
        )


@pytest.mark.parametrize("cls", ["DiceLoss", "TverskyLoss", "GeneralizedDiceLoss"])
@pytest.mark.parametrize("squared_pred", [False, True])
def test_soft_label_with_soft_targets(cls, squared_pred):
    """soft_label=True: tp = Σ min(p, t) (MONAI's (‖p‖₁ + ‖t‖₁ − ‖p − t‖₁)/2) in the fused sums."""
    if squared_pred and cls != "DiceLoss":
        return
    g = torch.Generator().manual_seed(11)
    x = torch.randn(N, C, H, W, generator=g, dtype=torch.float64)
    target = torch.softmax(torch.randn(N, C, H, W, generator=g, dtype=torch.float64) * 2, 1)
    options = dict(softmax=True, soft_label=True, **({"squared_pred": True} if squared_pred else {}))
    for reduction in ("mean", "none"):
        compare(
            getattr(face, cls)(reduction=reduction, **options),
            getattr(monai_losses, cls)(reduction=reduction, **options),
            x,
            target,
            rtol=1e-6,
            atol=1e-9,
        )


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=["softmax", "sigmoid", "other_act", "none"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_tversky_loss(activation, reduction):
    for options in grid(include_background=[True, False], alpha=[0.5, 0.3], beta=[0.5, 0.9], batch=[False, True]):
        x, labels = inputs(4)
        kwargs = dict(activation, reduction=reduction, **options)
        compare(
            face.TverskyLoss(to_onehot_y=True, **kwargs),
            monai_losses.TverskyLoss(to_onehot_y=True, **kwargs),
            x,
            labels,
        )


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=["softmax", "sigmoid", "other_act", "none"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_generalized_dice_loss(activation, reduction):
    for options in grid(include_background=[True, False], w_type=["square", "simple", "uniform"], batch=[False, True]):
        x, labels = inputs(5)
        labels[0] = labels[0].clamp(max=1)  # classes with no ground truth in a sample: the infinite weights
        kwargs = dict(activation, reduction=reduction, **options)
        compare(
            face.GeneralizedDiceLoss(to_onehot_y=True, **kwargs),
            monai_losses.GeneralizedDiceLoss(to_onehot_y=True, **kwargs),
            x,
            labels,
        )
        x, one_hot = inputs(6, label_target=False)
        compare(face.GeneralizedDiceLoss(**kwargs), monai_losses.GeneralizedDiceLoss(**kwargs), x, one_hot)


@pytest.mark.parametrize("use_softmax", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_focal_loss(use_softmax, reduction):
    for options in grid(
        include_background=[True, False],
        gamma=[2.0, 0.5],
        alpha=[None, 0.25, "per class"],
        weight=[None, 2.0, "per class"],
    ):
        scored = C if options["include_background"] else C - 1
        if options["alpha"] == "per class":
            options["alpha"] = [0.1, 0.4, 0.3, 0.8][:scored]
        if options["weight"] == "per class":
            options["weight"] = [1.0, 0.5, 2.0, 1.5][:scored]
        kwargs = dict(options, reduction=reduction, use_softmax=use_softmax)
        x, labels = inputs(7, dtype=torch.float32)
        compare(
            face.FocalLoss(to_onehot_y=True, **kwargs), monai_losses.FocalLoss(to_onehot_y=True, **kwargs), x, labels
        )
        x, one_hot = inputs(8, label_target=False, dtype=torch.float32)
        compare(face.FocalLoss(**kwargs), monai_losses.FocalLoss(**kwargs), x, one_hot)


@pytest.mark.parametrize("use_softmax", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_focal_loss_ignore_index(use_softmax, reduction):
    x, labels = inputs(9, dtype=torch.float32)
    labels[:, :, 1] = 255
    kwargs = dict(to_onehot_y=True, ignore_index=255, reduction=reduction, use_softmax=use_softmax)
    compare(face.FocalLoss(**kwargs), monai_losses.FocalLoss(**kwargs), x, labels)


def test_single_channel_warns_like_monai():
    """One channel with include_background=False / softmax / to_onehot_y: MONAI warns and ignores."""
    x, _ = inputs(10, classes=1)
    target = (torch.rand(x.shape) > 0.5).float()
    for cls in ("DiceLoss", "GeneralizedDiceLoss", "TverskyLoss"):
        for options in (dict(include_background=False, sigmoid=True), dict(softmax=True), dict(to_onehot_y=True)):
            compare(getattr(face, cls)(**options), getattr(monai_losses, cls)(**options), x, target)
    compare(
        face.FocalLoss(include_background=False),
        monai_losses.FocalLoss(include_background=False),
        x,
        target,
        torch.float32,
    )


def test_state_dict_and_arguments_match_monai():
    import inspect

    for cls in ("DiceLoss", "GeneralizedDiceLoss", "TverskyLoss", "FocalLoss"):
        ours, theirs = getattr(face, cls), getattr(monai_losses, cls)
        assert [p.name for p in inspect.signature(ours.__init__).parameters.values()] == [
            p.name for p in inspect.signature(theirs.__init__).parameters.values()
        ], cls
        assert [p.default for p in inspect.signature(ours.__init__).parameters.values()][1:] == [
            getattr(p.default, "value", p.default) for p in inspect.signature(theirs.__init__).parameters.values()
        ][1:], cls
    for options in ({}, {"weight": [1.0, 2.0]}):
        for cls in ("DiceLoss", "FocalLoss"):
            ours, theirs = getattr(face, cls)(**options), getattr(monai_losses, cls)(**options)
            assert list(ours.state_dict()) == list(theirs.state_dict())
            ours.load_state_dict(theirs.state_dict(), strict=True)


def test_bad_options():
    with pytest.raises(ValueError, match="at most one"):
        face.DiceLoss(sigmoid=True, softmax=True)
    with pytest.raises(TypeError, match="other_act"):
        face.DiceLoss(other_act=3)
    with pytest.raises(ValueError, match="0 or 1"):
        face.FocalLoss()(torch.randn(2, 3, 4), torch.rand(2, 3, 4))
