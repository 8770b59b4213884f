"""Property test of fastloss.sigmoid_focal_loss against the reference over random shapes, targets,
α, γ, reductions and weights (hypothesis)."""

import pytest
import torch

import fastloss
from fastloss import reference
from helpers import assert_close, loss_and_grads, one_hot, peer

if peer("hypothesis") is None:
    pytest.skip("hypothesis is not installed", allow_module_level=True)
from hypothesis import given
from hypothesis import strategies as st

REDUCTIONS = ["none", "mean", "sum"]


@st.composite
def focal_problems(draw):
    lead = draw(st.lists(st.integers(0, 9), min_size=0, max_size=2))
    classes = draw(st.integers(1, 12))
    shape = tuple(lead) + (classes,)
    kind = draw(st.sampled_from(["labels", "one-hot", "soft"]))
    alpha = draw(st.one_of(st.just(-1.0), st.floats(0, 1)))
    gamma = draw(st.one_of(st.sampled_from([0.0, 1.0, 2.0]), st.floats(0, 4)))
    reduction = draw(st.sampled_from(REDUCTIONS))
    weight_kind = draw(st.sampled_from([None, "element", "anchor", "class"]))
    seed = draw(st.integers(0, 2**31 - 1))
    return shape, kind, alpha, gamma, reduction, weight_kind, seed


@given(focal_problems())
def test_property_matches_reference(problem):
    shape, kind, alpha, gamma, reduction, weight_kind, seed = problem
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=g, dtype=torch.float64) * 4).requires_grad_()
    labels = torch.randint(-1, shape[-1] + 2, shape[:-1], generator=g)
    labels[torch.rand(shape[:-1], generator=g) < 0.2] = -100
    if kind == "labels":
        t = labels
    elif kind == "one-hot":
        t = one_hot(labels, shape[-1], torch.float64)
    else:
        t = torch.rand(shape, generator=g, dtype=torch.float64).requires_grad_()
    w = {
        None: None,
        "element": torch.rand(shape, generator=g, dtype=torch.float64),
        "anchor": torch.rand(shape[:-1], generator=g, dtype=torch.float64),
        "class": torch.rand(shape[-1:], generator=g, dtype=torch.float64),
    }[weight_kind]
    tensors = (x, t)
    got, got_grads = loss_and_grads(
        fastloss.sigmoid_focal_loss, tensors, alpha=alpha, gamma=gamma, reduction=reduction, weight=w
    )
    want, want_grads = loss_and_grads(
        reference.sigmoid_focal_loss, tensors, alpha=alpha, gamma=gamma, reduction=reduction, weight=w
    )
    assert_close(got, want, rtol=1e-9, atol=1e-11)
    for a, b in zip(got_grads, want_grads):
        assert_close(a, b, rtol=1e-9, atol=1e-11)
