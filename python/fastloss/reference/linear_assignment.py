"""The rectangular linear assignment problem (formula and steps: csrc/math/linear_assignment.h) in
plain Python over float64, one problem at a time, and the argument checks fastloss.linear_assignment
shares. The same steps as scipy's linear_sum_assignment, so the same solution, ties included."""

import math
from typing import NamedTuple, Optional

import torch

from .._common import check_bool, check_same_device, check_tensor

SOLVED, INVALID, INFEASIBLE, BAD_COUNT = 0, 1, 2, 3
MESSAGES = {
    INVALID: "matrix contains invalid numeric entries",
    INFEASIBLE: "cost matrix is infeasible",
}


class AssignmentArgs(NamedTuple):
    cost: torch.Tensor  # (..., Q, T), floating
    num_targets: Optional[torch.Tensor]  # (...) int64, or None
    maximize: bool


def check_args(cost, num_targets, maximize) -> AssignmentArgs:
    check_tensor("cost", cost)
    check_bool("maximize", maximize)
    if cost.dtype == torch.bool or cost.is_complex():
        raise TypeError(f"cost must be a real tensor, got {cost.dtype}")
    if not cost.dtype.is_floating_point:
        cost = cost.double()  # (integers: scipy solves them in float64 too)
    if cost.dim() < 2:
        raise ValueError(f"cost must be (..., Q, T): a matrix per problem, got shape {tuple(cost.shape)}")
    if num_targets is not None:
        num_targets = torch.as_tensor(num_targets, device=cost.device)
        check_same_device("num_targets", num_targets, "cost", cost)
        if num_targets.dtype.is_floating_point or num_targets.dtype == torch.bool or num_targets.is_complex():
            raise TypeError(f"num_targets must hold integers, got {num_targets.dtype}")
        if tuple(num_targets.shape) != tuple(cost.shape[:-2]):
            raise ValueError(
                f"num_targets must have the cost's leading shape {tuple(cost.shape[:-2])}, "
                f"got {tuple(num_targets.shape)}"
            )
        num_targets = num_targets.long()
    return AssignmentArgs(cost, num_targets, bool(maximize))


def _augmenting_path(cost, nc, u, v, path, row4col, shortest, i, row_in_tree, col_in_tree):
    min_value = 0.0
    remaining = [nc - it - 1 for it in range(nc)]
    num_remaining = nc
    for j in range(nc):
        col_in_tree[j], shortest[j] = False, math.inf
    for r in range(len(row_in_tree)):
        row_in_tree[r] = False
    sink = -1
    while sink == -1:
        index, lowest = -1, math.inf
        row_in_tree[i] = True
        for it in range(num_remaining):
            j = remaining[it]
            r = min_value + cost(i, j) - u[i] - v[j]
            if r < shortest[j]:
                path[j], shortest[j] = i, r
            if shortest[j] < lowest or (shortest[j] == lowest and row4col[j] == -1):
                lowest, index = shortest[j], it
        min_value = lowest
        if min_value == math.inf:
            return -1, min_value
        j = remaining[index]
        if row4col[j] == -1:
            sink = j
        else:
            i = row4col[j]
        col_in_tree[j] = True
        num_remaining -= 1
        remaining[index] = remaining[num_remaining]
    return sink, min_value


def solve_one(block, maximize):
    """(row_ind, col_ind, status) of one problem (a 2-D float64 list of lists)."""
    rows = len(block)
    cols = len(block[0]) if rows else 0
    if rows == 0 or cols == 0:
        return [], [], SOLVED
    transpose = cols < rows
    nr, nc = (cols, rows) if transpose else (rows, cols)
    sign = -1.0 if maximize else 1.0

    def cost(i, j):
        return sign * (block[j][i] if transpose else block[i][j])

    for i in range(nr):
        for j in range(nc):
            c = cost(i, j)
            if c != c or c == -math.inf:
                return [], [], INVALID
    u, v, shortest = [0.0] * nr, [0.0] * nc, [0.0] * nc
    path, col4row, row4col = [-1] * nc, [-1] * nr, [-1] * nc
    row_in_tree, col_in_tree = [False] * nr, [False] * nc
    for row in range(nr):
        sink, min_val = _augmenting_path(cost, nc, u, v, path, row4col, shortest, row, row_in_tree, col_in_tree)
        if sink < 0:
            return [], [], INFEASIBLE
        u[row] += min_val
        for r in range(nr):
            if row_in_tree[r] and r != row:
                u[r] += min_val - shortest[col4row[r]]
        for c in range(nc):
            if col_in_tree[c]:
                v[c] -= min_val - shortest[c]
        j = sink
        while True:
            r = path[j]
            row4col[j] = r
            col4row[r], j = j, col4row[r]
            if r == row:
                break
    if not transpose:
        return list(range(nr)), col4row, SOLVED
    pairs = sorted((col4row[r], r) for r in range(nr))
    return [p[0] for p in pairs], [p[1] for p in pairs], SOLVED


def compute(a: AssignmentArgs):
    """(row_ind, col_ind, status) as the kernels return them: (..., min(Q, T)) int64 padded with −1
    (−2 throughout a problem without a solution), status (...) int32."""
    q, t = a.cost.shape[-2:]
    width = min(q, t)
    batch = a.cost.shape[:-2]
    problems = math.prod(batch)
    costs = a.cost.detach().double().reshape(problems, q, t).cpu().tolist()
    if t == 0:  # (tolist() of a (P, Q, 0) tensor: P lists of Q empty rows)
        costs = [[[] for _ in range(q)] for _ in range(problems)]
    counts = [t] * len(costs) if a.num_targets is None else a.num_targets.reshape(-1).cpu().tolist()
    rows = torch.full((len(costs), width), -1, dtype=torch.long)
    cols = torch.full((len(costs), width), -1, dtype=torch.long)
    status = torch.zeros(len(costs), dtype=torch.int32)
    for p, (block, count) in enumerate(zip(costs, counts)):
        if not 0 <= count <= t:
            r, c, s = [], [], BAD_COUNT
        else:
            r, c, s = solve_one([line[:count] for line in block], a.maximize)
        status[p] = s
        if s != SOLVED:
            rows[p], cols[p] = -2, -2
            continue
        rows[p, : len(r)], cols[p, : len(c)] = torch.tensor(r, dtype=torch.long), torch.tensor(c, dtype=torch.long)
    device = a.cost.device
    return (
        rows.reshape(*batch, width).to(device),
        cols.reshape(*batch, width).to(device),
        status.reshape(batch).to(device),
    )


def op(cost, num_targets, maximize):
    """fastloss::linear_sum_assignment in Python."""
    return compute(AssignmentArgs(cost, num_targets, maximize))


def raise_for_status(status, num_targets, cols):
    """scipy's error for the first problem of a CPU call without a solution (its index too, when there
    are several problems)."""
    failed = (status.reshape(-1) != SOLVED).nonzero()
    if failed.numel() == 0:
        return
    first = int(failed[0])
    code = int(status.reshape(-1)[first])
    where = f" (problem {first})" if status.dim() > 0 else ""
    if code == BAD_COUNT:
        raise ValueError(
            f"num_targets must be in [0, T] = [0, {cols}], got {int(num_targets.reshape(-1)[first])}{where}"
        )
    raise ValueError(MESSAGES[code] + where)


def linear_sum_assignment(cost, num_targets=None, maximize=False):
    """fastloss.linear_sum_assignment in plain Python: the same arguments, the same results."""
    a = check_args(cost, num_targets, maximize)
    row_ind, col_ind, status = compute(a)
    if a.cost.device.type == "cpu":
        raise_for_status(status, a.num_targets, a.cost.shape[-1])
    return row_ind, col_ind


__all__ = ["linear_sum_assignment"]
