"""Property test of softmax focal loss against the reference (and F.cross_entropy at γ = 0) over
random shapes (C = 1, empty and missing spatial dims, C up to 300), ignored positions and options."""

import pytest
import torch
import torch.nn.functional as F

import fastloss
from fastloss import reference
from helpers import assert_close, loss_and_grads, peer

if peer("hypothesis") is None:
    pytest.skip("hypothesis is not installed", allow_module_level=True)
from hypothesis import given
from hypothesis import strategies as st


@st.composite
def problems(draw):
    n, classes = draw(st.integers(0, 4)), draw(st.sampled_from([1, 2, 3, 7, 8, 9, 17, 300]))
    spatial = tuple(draw(st.lists(st.integers(0, 5), min_size=0, max_size=2)))
    options = dict(
        gamma=draw(st.sampled_from([0.0, 0.5, 1.0, 2.0, 2.5])),
        reduction=draw(st.sampled_from(["mean", "sum", "none"])),
        label_smoothing=draw(st.sampled_from([0.0, 0.1, 1.0])),
        ignore_index=draw(st.sampled_from([-100, 0, 2])),
    )
    return n, classes, spatial, draw(st.booleans()), options, draw(st.integers(0, 2**31 - 1))


@given(problems())
def test_property_matches_reference(problem):
    n, classes, spatial, use_alpha, options, seed = problem
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn((n, classes) + spatial, generator=g, dtype=torch.float64) * 3).requires_grad_()
    y = torch.randint(0, classes, (n,) + spatial, generator=g)
    y[torch.rand(y.shape, generator=g) < 0.3] = options["ignore_index"]
    if use_alpha:
        options["alpha"] = torch.rand(classes, generator=g, dtype=torch.float64) + 0.1
    got, (g1,) = loss_and_grads(fastloss.softmax_focal_loss, (x, y), **options)
    want, (g2,) = loss_and_grads(reference.softmax_focal_loss, (x, y), **options)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12, equal_nan=True)
    assert_close(g1, g2)
    if options["gamma"] == 0:
        ce = F.cross_entropy(
            x.detach(),
            y,
            weight=options.get("alpha"),
            ignore_index=options["ignore_index"],
            reduction=options["reduction"],
            label_smoothing=options["label_smoothing"],
        )
        if y.numel() == 0 and options["reduction"] == "mean":
            ce = torch.zeros_like(ce)  # the one documented difference: an empty "mean" is 0 (torch: NaN)
        torch.testing.assert_close(got, ce, rtol=1e-10, atol=1e-12, equal_nan=True)
