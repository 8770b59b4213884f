"""Property test of the overlap losses against the reference over random shapes (C = 1 included,
empty and missing spatial dims), activations, target kinds, ignored positions and options."""

import pytest
import torch

import fastloss
from fastloss import reference
from helpers import assert_close, loss_and_grads, peer

if peer("hypothesis") is None:
    pytest.skip("hypothesis is not installed", allow_module_level=True)
from hypothesis import given
from hypothesis import strategies as st


@st.composite
def problems(draw):
    n, classes = draw(st.integers(1, 3)), draw(st.integers(1, 5))
    spatial = tuple(draw(st.lists(st.integers(0, 6), min_size=0, max_size=3)))
    activation = draw(st.sampled_from(["sigmoid", "none"] if classes == 1 else ["softmax", "sigmoid", "none"]))
    targets = draw(st.sampled_from(["labels", "float"]))
    loss = draw(st.sampled_from(["dice_loss", "tversky_loss"]))
    options = dict(
        activation=activation,
        batch=draw(st.booleans()),
        reduction=draw(st.sampled_from(["mean", "sum", "none"])),
        include_background=classes == 1 or draw(st.booleans()),
        smooth_nr=draw(st.sampled_from([0.0, 1e-5, 1.0])),
        smooth_dr=draw(st.sampled_from([1e-5, 1.0])),
    )
    if loss == "dice_loss":
        options.update(squared_pred=draw(st.booleans()), jaccard=draw(st.booleans()))
    else:
        options.update(
            alpha=draw(st.floats(0, 1)), beta=draw(st.floats(0, 1)), gamma=draw(st.sampled_from([1.0, 0.75, 2.0]))
        )
    if targets == "labels" and draw(st.booleans()):
        options["ignore_index"] = draw(st.sampled_from([0, 255, -1]))
    return n, classes, spatial, targets, loss, options, draw(st.integers(0, 2**31 - 1))


@given(problems())
def test_property_matches_reference(problem):
    n, classes, spatial, targets, loss, options, seed = problem
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((n, classes) + spatial, generator=g, dtype=torch.float64) * 3
    if options["activation"] == "none":
        x = torch.rand(x.shape, generator=g, dtype=torch.float64)
    label_count = 2 if classes == 1 else classes
    if targets == "labels":
        t = torch.randint(0, label_count, (n,) + spatial, generator=g)
        if "ignore_index" in options:
            t[torch.rand(t.shape, generator=g) < 0.3] = options["ignore_index"]
    else:
        t = torch.rand(x.shape, generator=g, dtype=torch.float64)
    got, (g1,) = loss_and_grads(getattr(fastloss, loss), (x.requires_grad_(), t), **options)
    want, (g2,) = loss_and_grads(getattr(reference, loss), (x, t), **options)
    assert_close(got, want, rtol=1e-9, atol=1e-10)
    assert_close(g1, g2, rtol=1e-8, atol=1e-10)
