"""Property test of the IoU family against the reference over random box pairs (valid, degenerate
and inverted), shapes, formats, kinds, loss parameters, weights and reductions (hypothesis)."""

import pytest
import torch

import fastloss
from fastloss import reference
from helpers import assert_close, loss_and_grads, peer

if peer("hypothesis") is None:
    pytest.skip("hypothesis is not installed", allow_module_level=True)
from hypothesis import given
from hypothesis import strategies as st

KINDS = ["iou", "giou", "diou", "ciou", "eiou", "focal_eiou", "cdiou"]


@st.composite
def box_problems(draw):
    shape = tuple(draw(st.lists(st.integers(0, 7), min_size=0, max_size=2))) + (4,)
    kind = draw(st.sampled_from(KINDS))
    params = {
        "iou": {"mode": draw(st.sampled_from(["linear", "log", "square"]))},
        "focal_eiou": {"gamma": draw(st.floats(0, 3))},
        "cdiou": {"lambd": draw(st.floats(0, 4))},
    }.get(kind, {})
    return (
        shape,
        kind,
        params,
        draw(st.sampled_from(["xyxy", "xywh", "cxcywh"])),
        draw(st.sampled_from(["none", "mean", "sum"])),
        draw(st.sampled_from([None, "pair", "coordinate"])),
        draw(st.floats(1e-9, 1e-3)),
        draw(st.integers(0, 2**31 - 1)),
    )


@given(box_problems())
def test_property_matches_reference(problem):
    shape, kind, params, box_format, reduction, weight_kind, eps, seed = problem
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(shape, generator=g, dtype=torch.float64) * 10
    pred = target + torch.randn(shape, generator=g, dtype=torch.float64) * 2  # some inverted, some disjoint
    w = {
        None: None,
        "pair": torch.rand(shape[:-1], generator=g, dtype=torch.float64),
        "coordinate": torch.rand(shape, generator=g, dtype=torch.float64),
    }[weight_kind]
    kwargs = dict(reduction=reduction, eps=eps, weight=w, box_format=box_format, **params)
    tensors = (pred.requires_grad_(), target.requires_grad_())
    got, got_grads = loss_and_grads(getattr(fastloss, kind + "_loss"), tensors, **kwargs)
    want, want_grads = loss_and_grads(getattr(reference, kind + "_loss"), tensors, **kwargs)
    assert_close(got, want, rtol=1e-9, atol=1e-10)
    for a, b in zip(got_grads, want_grads):
        assert_close(a, b, rtol=1e-8, atol=1e-9)
