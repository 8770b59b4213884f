"""fastloss.linear_sum_assignment: scipy's linear assignment, batched, on CPU and CUDA.

Kernels: csrc/math/linear_assignment.h (the algorithm, step for step scipy's), csrc/cpu/ and
csrc/cuda/linear_assignment.*: every problem of the batch in one call (one per CPU task, one per
CUDA warp), the results on the cost's device.
"""

import functools

import torch

from . import _backend
from ._inputs import assignment_costs
from ._spec import FLOATS, OpSpec, Plan, declare
from .reference import linear_assignment as _reference

_OP = "fastloss::linear_sum_assignment"


def linear_sum_assignment(cost, num_targets=None, maximize=False):
    """The assignment of least (or greatest) total cost, scipy.optimize.linear_sum_assignment's, for
    every problem of a batch.

    cost: (..., Q, T), one Q × T problem per leading index (float or integer; solved in float64).
    num_targets: optional integers of the leading shape: problem p is the block cost[p, :, :t_p]
        (padded targets, e.g. each image's GTs); all T columns without it.
    maximize: the greatest total instead.

    Returns (row_ind, col_ind), int64 of shape (..., min(Q, T)) on the cost's device: problem p's
    min(Q, t_p) pairs, in the order scipy returns them (rows ascending), then −1. For a 2-D cost, exactly
    scipy's two arrays. The solution is scipy's, ties included: the same shortest augmenting paths
    (Crouse 2016) in the same order, in float64 (csrc/math/linear_assignment.h).

    A problem without a solution (a NaN or −inf entry: "matrix contains invalid numeric entries"; no
    finite assignment: "cost matrix is infeasible"; a count outside [0, T]) raises scipy's ValueError
    for CPU tensors. On CUDA, where raising would wait for the GPU, its row_ind and col_ind are −2
    throughout (no host sync); so it is in a torch.compile'd graph on either device.
    """
    a = _reference.check_args(cost, num_targets, maximize)
    if not _backend.use_kernels(a.cost.device):
        return _reference.linear_sum_assignment(*a)
    row_ind, col_ind, status = torch.ops.fastloss.linear_sum_assignment(*a)
    if a.cost.device.type == "cpu" and not torch.compiler.is_compiling():
        _reference.raise_for_status(status, a.num_targets, a.cost.shape[-1])
    return row_ind, col_ind


__all__ = ["linear_sum_assignment"]


def _register():
    @torch.library.register_fake(_OP)
    def _(cost, num_targets, maximize):
        batch, width = cost.shape[:-2], min(cost.shape[-2], cost.shape[-1])
        pairs = cost.new_empty((*batch, width), dtype=torch.long)
        return pairs, torch.empty_like(pairs), cost.new_empty(batch, dtype=torch.int32)


# ------------------------------------------------------------------------------------ the record


def _parity_call(case, g, on, seed):
    cost, counts = assignment_costs(case["batch"], case["rows"], case["cols"], case["kind"], case["ragged"], g)
    fn = functools.partial(torch.ops.fastloss.linear_sum_assignment, maximize=case["maximize"])
    return fn, [on(cost, case["dtype"]), None if counts is None else on(counts)], {}


SPEC = declare(
    OpSpec(
        "linear_assignment",
        ops=("linear_sum_assignment",),
        register=_register,
        reference=_reference,
        plan=Plan(
            factors=dict(
                dtype=[torch.float32, torch.float64],
                batch=[1, 3, 40],
                rows=[1, 7, 40, 300],
                cols=[0, 1, 5, 40, 300],
                kind=["random", "integer", "constant", "infeasible"],
                ragged=[False, True],
                maximize=[False, True],
            ),
            call=_parity_call,
            elements=lambda case: case["batch"] * case["rows"] * max(case["cols"], 1) * min(case["rows"], 40),
            shrink=("batch", ("rows", 7)),
            small=dict(batch=3, rows=40, cols=40),
            mid=dict(batch=40, rows=300, cols=100),
            large=dict(batch=96, rows=300, cols=300),
            empty=(dict(batch=0), dict(cols=0), dict(rows=0)),
            differentiable=False,
            exact_outputs=lambda case: 3,
            sweep=lambda small: [small(dtype=d, maximize=m) for d in FLOATS for m in (False, True)],
        ),
        bench="linear_assignment",
    )
)
