"""fastloss.generalized_dice_loss: MONAI's GeneralizedDiceLoss numbers (also through fastloss.monai's face,
tests/test_monai_face.py), shapes, gradients, bad input."""

import pytest
import torch

import fastloss
from helpers import assert_close, peer

monai_losses = peer("monai.losses")


def inputs(seed=0, n=3, c=4):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, 5, 6, generator=g, dtype=torch.float64)
    labels = torch.randint(0, c, (n, 5, 6), generator=g)
    labels[0] = labels[0].clamp(max=1)  # classes without ground truth in a sample: MONAI's infinite weights
    return x, labels


@pytest.mark.parametrize("w_type", ["square", "simple", "uniform"])
@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("include_background", [True, False])
def test_equals_monai(w_type, batch, include_background):
    if monai_losses is None:
        pytest.skip("MONAI is not installed")
    x, labels = inputs()
    ours = fastloss.generalized_dice_loss(x, labels, w_type=w_type, batch=batch, include_background=include_background)
    theirs = monai_losses.GeneralizedDiceLoss(
        softmax=True, to_onehot_y=True, w_type=w_type, batch=batch, include_background=include_background
    )(x, labels.unsqueeze(1))
    assert_close(ours, theirs)


@pytest.mark.parametrize("batch", [False, True])
def test_shapes_gradcheck_and_reference_sums(batch):
    x, labels = inputs(1)
    n = x.shape[0]
    none = fastloss.generalized_dice_loss(x, labels, batch=batch, reduction="none")
    assert none.shape == ((1,) if batch else (n,))
    assert_close(fastloss.generalized_dice_loss(x, labels, batch=batch, reduction="sum"), none.sum())
    x.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda v: fastloss.generalized_dice_loss(v, labels, batch=batch, w_type="simple"), (x,)
    )


def test_bad_input():
    x, labels = inputs()
    with pytest.raises(ValueError, match="w_type"):
        fastloss.generalized_dice_loss(x, labels, w_type="cubic")
    with pytest.raises(ValueError, match="batch=True"):
        fastloss.generalized_dice_loss(x, labels, process_group=object())
    with pytest.raises(ValueError, match="reduction"):
        fastloss.generalized_dice_loss(x, labels, reduction="avg")
