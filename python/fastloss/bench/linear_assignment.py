"""Benchmark cases of the linear assignment at a DETR-family step's size: 6 decoder layers × batch 16
× 300 queries × 20 or 100 targets (each image its own number: up to that many), every problem in one
call. scipy's linear_sum_assignment in a loop over the problems (what the matchers do today) joins
from scripts/bench_peers.py; the pure-Python reference is left out (seconds per problem)."""

import torch

from .. import linear_assignment as fused
from ..reference import linear_assignment as reference
from . import Case, register

LAYERS, BATCH, QUERIES = 6, 16, 300


def assignment_inputs(targets):
    def make(device, dtype, small):
        layers, batch, queries = (2, 2, 12) if small else (LAYERS, BATCH, QUERIES)
        t = min(targets, 8) if small else targets
        g = torch.Generator().manual_seed(targets)
        cost = torch.rand(layers, batch, queries, t, generator=g)
        counts = torch.randint(t // 2, t + 1, (batch,), generator=g).expand(layers, batch).contiguous()
        return dict(cost=cost.to(device=device, dtype=dtype), num_targets=counts.to(device))

    return make


def _fastloss(cost, num_targets):
    return fused.linear_sum_assignment(cost, num_targets)


def _reference(cost, num_targets):
    return reference.linear_sum_assignment(cost, num_targets)


for targets in (20, 100):
    register(
        Case(
            name=f"linear_sum_assignment {LAYERS}x{BATCH}x{QUERIES}x{targets}",
            make_inputs=assignment_inputs(targets),
            grad=(),
            fastloss=_fastloss,
            reference=_reference,
            forward_only=True,
            dtypes=(torch.float32, torch.float64),
            bench_reference=False,
        )
    )
