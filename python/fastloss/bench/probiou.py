"""Benchmark cases of probIoU on oriented boxes: batch_probiou of 2,000 × 20,000 boxes (the pairwise
matrix of ultralytics' OBB validation and assigner scale; forward only), and the aligned probiou of
200,000 pairs forward + backward (RotatedBboxLoss's use). The peers are ultralytics' own functions
(scripts/bench_peers.py: AGPL, never imported by the package) and torch.compile of the reference."""

import math

import torch

from ..probiou import batch_probiou, probiou
from ..reference import probiou as reference
from . import Case, register


def obb_inputs(n, m, grad=False):
    def make(device, dtype, small):
        rows, cols = (40, 40 if n == m else 300) if small else (n, m)  # (aligned pairs: as many of each)
        g = torch.Generator().manual_seed(0)

        def boxes(k):
            xy = torch.rand(k, 2, generator=g) * 1024
            wh = torch.rand(k, 2, generator=g) * 60 + 4
            r = (torch.rand(k, 1, generator=g) - 0.5) * math.pi
            return torch.cat([xy, wh, r], -1).to(device=device, dtype=dtype)

        return {"obb1": boxes(rows).requires_grad_(grad), "obb2": boxes(cols)}

    return make


register(
    Case(
        name="batch_probiou 2000x20000",
        make_inputs=obb_inputs(2000, 20000),
        grad=(),
        fastloss=batch_probiou,
        reference=reference.batch_probiou,
        forward_only=True,
        dtypes=(torch.float32, torch.float64),
    )
)
register(
    Case(
        name="probiou aligned 200000",
        make_inputs=obb_inputs(200000, 200000, grad=True),
        grad=("obb1",),
        fastloss=probiou,
        reference=reference.probiou,
        dtypes=(torch.float32, torch.float64),
    )
)
