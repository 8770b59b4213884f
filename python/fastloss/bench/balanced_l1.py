"""Benchmark case of the Balanced L1 loss: 1M box-delta regressions (4M elements), the mean loss,
against mmdet's formula in torch (fastloss.reference.balanced_l1.element_losses)."""

import torch

from .. import balanced_l1 as fused
from ..reference import balanced_l1 as reference
from . import Case, register

ELEMENTS = 4_000_000


def deltas(device, dtype, small):
    n = 4000 if small else ELEMENTS
    g = torch.Generator().manual_seed(0)
    target = torch.randn(n // 4, 4, generator=g, dtype=torch.float64)
    pred = target + torch.randn(n // 4, 4, generator=g, dtype=torch.float64) * 0.7
    return {
        "pred": pred.to(device=device, dtype=dtype).requires_grad_(),
        "target": target.to(device=device, dtype=dtype),
    }


def _mean(fn):
    return lambda pred, target: fn(pred, target, "mean")


register(
    Case(
        name=f"balanced_l1 {ELEMENTS // 1_000_000}M elements",
        make_inputs=deltas,
        grad=("pred",),
        fastloss=_mean(fused.balanced_l1_loss),
        reference=_mean(reference.balanced_l1_loss),
        peers={"mmdet formula": lambda pred, target: reference.element_losses(pred, target, 0.5, 1.5, 1.0).mean()},
    )
)
