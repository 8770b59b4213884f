"""fastloss.nn: each module is its core function with the options given at construction.

Its constructor takes exactly the function's options with the function's defaults (reduction: "mean"),
its forward the function's tensors, and it returns what the function returns. mmdet's conventions
(loss_weight, reduction_override, IoULoss's mode="log") are the mmdet face's: here deprecated, with a
FutureWarning, and still giving their old numbers.
"""

import inspect
import re
import warnings

import pytest
import torch

import fastloss
import fastloss.mmdet
from fastloss import nn as fnn
from fastloss._inputs import mask_inputs

# module -> its function; CrossEntropyLoss (softmax_focal_loss at gamma=0, alpha named class_weight)
# is tested in test_softmax_focal.py
FUNCTIONS = {
    fnn.SigmoidFocalLoss: fastloss.sigmoid_focal_loss,
    fnn.IoULoss: fastloss.iou_loss,
    fnn.GIoULoss: fastloss.giou_loss,
    fnn.DIoULoss: fastloss.diou_loss,
    fnn.CIoULoss: fastloss.ciou_loss,
    fnn.EIoULoss: fastloss.eiou_loss,
    fnn.FocalEIoULoss: fastloss.focal_eiou_loss,
    fnn.CDIoULoss: fastloss.cdiou_loss,
    fnn.DiceLoss: fastloss.dice_loss,
    fnn.TverskyLoss: fastloss.tversky_loss,
    fnn.GeneralizedDiceLoss: fastloss.generalized_dice_loss,
    fnn.DiceCELoss: fastloss.dice_ce_loss,
    fnn.DiceFocalLoss: fastloss.dice_focal_loss,
    fnn.SoftmaxFocalLoss: fastloss.softmax_focal_loss,
    fnn.L1Loss: fastloss.l1_loss,
    fnn.MSELoss: fastloss.mse_loss,
    fnn.SmoothL1Loss: fastloss.smooth_l1_loss,
    fnn.BalancedL1Loss: fastloss.balanced_l1_loss,
    fnn.VarifocalLoss: fastloss.varifocal_loss,
    fnn.QualityFocalLoss: fastloss.quality_focal_loss,
    fnn.DistributionFocalLoss: fastloss.distribution_focal_loss,
    fnn.PrototypeMaskLoss: fastloss.prototype_mask_loss,
    fnn.GaussianDistanceLoss: fastloss.gaussian_distance_loss,
    fnn.KFIoULoss: fastloss.kfiou_loss,
}
# IoULoss's mode has no default until 0.3 (omitting it warns: mmdet's "log" of earlier releases)
NO_DEFAULT_YET = {(fnn.IoULoss, "mode")}


def parameters(f, skip=("self",)):
    return {
        name: p.default
        for name, p in inspect.signature(f).parameters.items()
        if name not in skip and p.kind != inspect.Parameter.VAR_KEYWORD
    }


def test_every_loss_function_has_a_module():
    functions = {f.__name__ for f in FUNCTIONS.values()}
    losses = {n for n in fastloss.__all__ if n.endswith("_loss")}
    drop_ins = {"generalized_box_iou_loss", "distance_box_iou_loss", "complete_box_iou_loss"}
    # deep_supervision_loss takes a loss function, not options: it has no module
    assert losses - drop_ins - {"deep_supervision_loss"} == functions
    assert set(fnn.__all__) >= {cls.__name__ for cls in FUNCTIONS}


@pytest.mark.parametrize("module", list(FUNCTIONS), ids=lambda cls: cls.__name__)
def test_module_takes_the_functions_options_and_defaults(module):
    function = parameters(FUNCTIONS[module])
    init, forward = parameters(module.__init__), parameters(module.forward)
    assert not set(init) & set(forward)
    assert set(init) | set(forward) == set(function), "the module's arguments are not the function's"
    for name, default in init.items():
        want = "mean" if name == "reduction" else function[name]
        if (module, name) in NO_DEFAULT_YET:
            want = None
        assert default == want or (default is want), f"{module.__name__}({name}=) default {default!r}, want {want!r}"
    # forward: the tensors, positional as in the function, their defaults the function's (None, or
    # none where the function requires them: the mask loss's)
    tensors = list(forward)
    assert tensors == [name for name in function if name in forward]
    assert tensors[:2] == list(function)[:2]
    for name in tensors[2:]:
        assert forward[name] is function[name] and function[name] in (None, inspect.Parameter.empty)


def boxes(n, g):
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64)
    return torch.cat([xy, xy + 0.2 + torch.rand(n, 2, generator=g, dtype=torch.float64)], -1)


def call_arguments(module):
    """Tensors for the module's forward, options for its constructor."""
    g = torch.Generator().manual_seed(0)
    if issubclass(module, fnn.BoxIoULoss):
        return (boxes(8, g), boxes(8, g)), {"box_format": "xyxy"}
    if module in (fnn.L1Loss, fnn.MSELoss, fnn.SmoothL1Loss, fnn.BalancedL1Loss):
        return (
            torch.randn(8, 4, generator=g, dtype=torch.float64),
            torch.randn(8, 4, generator=g, dtype=torch.float64),
        ), {}
    if module in (fnn.DiceLoss, fnn.TverskyLoss, fnn.GeneralizedDiceLoss, fnn.DiceCELoss, fnn.DiceFocalLoss):
        x = torch.randn(2, 3, 5, generator=g, dtype=torch.float64)
        return (x, torch.randint(0, 3, (2, 5), generator=g)), {"include_background": False}
    if module is fnn.DistributionFocalLoss:
        return (
            torch.randn(8, 17, generator=g, dtype=torch.float64),
            torch.rand(8, generator=g, dtype=torch.float64) * 15,
        ), {}
    if module in (fnn.VarifocalLoss, fnn.QualityFocalLoss):
        x = torch.randn(8, 4, generator=g, dtype=torch.float64)
        return (x, torch.rand(8, 4, generator=g, dtype=torch.float64)), {}
    if module in (fnn.GaussianDistanceLoss, fnn.KFIoULoss):
        xy, wh = torch.rand(8, 2, generator=g, dtype=torch.float64), torch.rand(8, 2, generator=g, dtype=torch.float64)
        obb = torch.cat([xy, wh + 0.5, torch.rand(8, 1, generator=g, dtype=torch.float64)], -1)
        tensors = (obb, obb.flip(0)) if module is fnn.GaussianDistanceLoss else (obb, obb.flip(0)) * 2
        return tensors, {"fun": "sqrt"} if module is fnn.GaussianDistanceLoss else {"fun": "ln"}
    if module is fnn.PrototypeMaskLoss:
        return mask_inputs(2, 30, 4, 12, 3, False, g), {"overlap": False}
    x = torch.randn(8, 4, generator=g, dtype=torch.float64)
    return (x, torch.randint(0, 4, (8,), generator=g)), {"gamma": 1.5}


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("module", list(FUNCTIONS), ids=lambda cls: cls.__name__)
def test_module_returns_what_its_function_returns(module, reduction):
    tensors, options = call_arguments(module)
    if module is fnn.IoULoss:
        options["mode"] = "square"
    try:
        want = FUNCTIONS[module](*tensors, reduction=reduction, **options)
    except ValueError as error:  # (the compound losses have no "none"): the module's error is the same
        with pytest.raises(ValueError, match=re.escape(str(error))):
            module(reduction=reduction, **options)(*tensors)
        return
    got = module(reduction=reduction, **options)(*tensors)
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_tensor_options_are_buffers():
    module = fnn.DiceCELoss(class_weight=[1.0, 2.0, 3.0], ce_weight=torch.tensor([0.5, 1.0, 2.0]))
    assert set(module.state_dict()) == {"class_weight", "ce_weight"}
    assert set(fnn.SoftmaxFocalLoss(alpha=[1.0, 2.0]).state_dict()) == {"alpha"}
    assert fnn.DiceLoss(class_weight=0.5).state_dict() == {}
    assert "class_weight=" in repr(module) and "reduction='mean'" in repr(module)


def test_no_module_claims_mmdets_semantics():
    for name in fnn.__all__:
        doc = inspect.getdoc(getattr(fnn, name)) or ""
        assert "mmdet-style" not in doc and "mmdet's FocalLoss" not in doc, name


# ------------------------------------------------------------------------- deprecated, until 0.3


def test_loss_weight_and_reduction_override_warn_and_keep_their_numbers():
    (x, t), _ = call_arguments(fnn.SigmoidFocalLoss)
    with pytest.warns(FutureWarning, match="loss_weight.*fastloss.mmdet"):
        module = fnn.SigmoidFocalLoss(alpha=0.3, loss_weight=2.0)
    torch.testing.assert_close(module(x, t), 2.0 * fastloss.sigmoid_focal_loss(x, t, 0.3, reduction="mean"))
    with pytest.warns(FutureWarning, match="reduction_override"):
        got = module(x, t, reduction_override="sum")
    torch.testing.assert_close(got, 2.0 * fastloss.sigmoid_focal_loss(x, t, 0.3, reduction="sum"))
    with pytest.warns(FutureWarning), pytest.raises(ValueError, match="reduction_override"):
        module(x, t, reduction_override="max")
    with pytest.raises(TypeError, match="'loss_wieght'"):
        fnn.GIoULoss(loss_wieght=2.0)
    with pytest.raises(TypeError, match="'avg'"):
        fnn.L1Loss()(x, x, avg=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fnn.GIoULoss().loss_weight is None  # no deprecated argument, no warning


def test_weighted_loss_is_a_deprecated_alias():
    with pytest.warns(FutureWarning, match="WeightedLoss"):
        alias = fnn.WeightedLoss
    assert alias is fnn.Loss
    with pytest.raises(AttributeError, match="NoSuchLoss"):
        fnn.NoSuchLoss  # noqa: B018


def test_iou_loss_without_mode_warns_and_keeps_mmdets_log():
    (pred, target), _ = call_arguments(fnn.IoULoss)
    with pytest.warns(FutureWarning, match="mode"):
        module = fnn.IoULoss()
    assert module.mode == "log"
    torch.testing.assert_close(module(pred, target), fastloss.iou_loss(pred, target, "mean", mode="log"))
    mmdet = fastloss.mmdet.IoULoss(eps=1e-7)  # mmdet's IoULoss: mode "log" by default
    torch.testing.assert_close(mmdet(pred, target), module(pred, target))
