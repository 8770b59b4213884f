"""fastloss.l1_loss / mse_loss / smooth_l1_loss and their modules: torch's results without weight,
mmdet's weighted-loss convention with weight and avg_factor, bad input."""

import pytest
import torch
import torch.nn.functional as F

import fastloss
from fastloss import reference
from helpers import DEVICES, assert_close, logits, loss_and_grads

# The formulas written out, the definition the torch kernels must match.
FORMULAS = {
    "l1_loss": lambda d: d.abs(),
    "mse_loss": lambda d: d * d,
    "smooth_l1_loss": lambda d: torch.where(d.abs() < 1.0, 0.5 * d * d, d.abs() - 0.5),
}
TORCH = {"l1_loss": F.l1_loss, "mse_loss": F.mse_loss, "smooth_l1_loss": F.smooth_l1_loss}
MODULES = {"l1_loss": fastloss.nn.L1Loss, "mse_loss": fastloss.nn.MSELoss, "smooth_l1_loss": fastloss.nn.SmoothL1Loss}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("loss", list(FORMULAS))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_unweighted_is_torch_and_the_formula(device, loss, reduction):
    x, y = logits(50, 4, device=device), logits(50, 4, device=device, scale=1.0)
    got = getattr(fastloss, loss)(x, y, reduction)
    torch.testing.assert_close(got, TORCH[loss](x, y, reduction=reduction), rtol=0, atol=0)
    per_element = FORMULAS[loss](x - y)
    want = {"none": per_element, "sum": per_element.sum(), "mean": per_element.mean()}[reduction]
    assert_close(got, want)


@pytest.mark.parametrize("loss", list(FORMULAS))
def test_weight_and_avg_factor_follow_mmdet(loss):
    x, y = logits(30, 4), logits(30, 4, scale=1.0)
    weight = torch.rand(30, 1, dtype=torch.float64)  # per box, broadcast over its 4 coordinates
    per_element = FORMULAS[loss](x - y) * weight
    fn = getattr(fastloss, loss)
    assert_close(fn(x, y, "none", weight=weight), per_element)
    assert_close(fn(x, y, "mean", weight=weight), per_element.mean())
    assert_close(fn(x, y, "sum", weight=weight), per_element.sum())
    assert_close(fn(x, y, "mean", weight=weight, avg_factor=12.0), per_element.sum() / 12.0)
    assert_close(MODULES[loss]()(x, y, weight=weight, avg_factor=12.0), per_element.sum() / 12.0)
    assert_close(MODULES[loss](reduction="none")(x, y), FORMULAS[loss](x - y))


def test_smooth_l1_beta():
    x, y = logits(20, 4), logits(20, 4, scale=1.0)
    d = (x - y).abs()
    assert_close(
        fastloss.smooth_l1_loss(x, y, beta=0.5, reduction="none"), torch.where(d < 0.5, 0.5 * d * d / 0.5, d - 0.25)
    )
    assert_close(fastloss.smooth_l1_loss(x, y, beta=0.0), fastloss.l1_loss(x, y))
    assert "beta=0.5" in repr(fastloss.nn.SmoothL1Loss(beta=0.5))


def test_gradients_reach_pred_and_a_weight_that_requires_grad_is_refused():
    """As every other fastloss loss: a weight that requires grad is an error, not silently detached."""
    x, y = logits(10, 4).requires_grad_(), logits(10, 4)
    w = torch.rand(10, 4, dtype=torch.float64)
    fastloss.l1_loss(x, y, weight=w).backward()
    assert_close(x.grad, torch.sign(x - y).detach() * w / 40)
    with pytest.raises(ValueError, match="weight requires grad"):
        fastloss.l1_loss(x, y, weight=w.requires_grad_())


@pytest.mark.parametrize("loss", list(FORMULAS))
@pytest.mark.parametrize(
    "call,error,message",
    [
        (dict(target=torch.zeros(3, 4)), ValueError, "pred and target must have the same shape"),
        (dict(target=torch.zeros(5, 4, dtype=torch.long)), TypeError, "target must be a float16"),
        (dict(weight=torch.ones(3)), ValueError, "weight of shape"),
        (dict(reduction="avg"), ValueError, "Invalid reduction"),
        (dict(reduction="sum", avg_factor=2.0), ValueError, "avg_factor can only be used with reduction='mean'"),
    ],
)
def test_bad_input(loss, call, error, message):
    args = dict(pred=torch.zeros(5, 4), target=torch.zeros(5, 4))
    args.update(call)
    with pytest.raises(error, match=message):
        getattr(fastloss, loss)(**args)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("loss", list(FORMULAS))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_matches_reference_with_weight(device, loss, reduction):
    x, y = logits(40, 4, device=device).requires_grad_(), logits(40, 4, device=device, scale=1.0)
    weight = torch.rand(40, 1, dtype=torch.float64, device=device)
    got, (g1,) = loss_and_grads(getattr(fastloss, loss), (x, y), reduction=reduction, weight=weight)
    want, (g2,) = loss_and_grads(getattr(reference, loss), (x, y), reduction=reduction, weight=weight)
    assert_close(got, want)
    assert_close(g1, g2)


@pytest.mark.parametrize("loss", list(FORMULAS))
def test_gradcheck_and_compile(loss):
    x, y = logits(12, 4, scale=1.0).requires_grad_(), logits(12, 4, scale=1.0)
    weight = torch.rand(12, 1, dtype=torch.float64)
    fn = getattr(fastloss, loss)
    assert torch.autograd.gradcheck(lambda x: fn(x, y, weight=weight, avg_factor=5.0), (x,))

    def step(x, y):
        return fn(x, y, weight=weight) * 2.0

    got, (g1,) = loss_and_grads(torch.compile(step, fullgraph=True), (x.float(), y.float()))
    want, (g2,) = loss_and_grads(step, (x.float(), y.float()))
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(g1, g2)
