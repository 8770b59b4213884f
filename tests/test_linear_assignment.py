"""fastloss.linear_sum_assignment against scipy.optimize.linear_sum_assignment: identical row and
column indices (ties included) on random, tie-heavy integer, constant, rectangular (both ways) and
DETR-sized problems, float32 and float64, minimising and maximising, batched with per-problem target
counts; scipy's errors; the pure-Python reference; opcheck, torch.compile; empty problems."""

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import fastloss
from fastloss._inputs import assignment_costs
from fastloss.reference import linear_assignment as reference
from helpers import DEVICES, peer

scipy_optimize = peer("scipy.optimize")


def scipy_pairs(cost, maximize=False):
    rows, cols = scipy_optimize.linear_sum_assignment(cost.double().cpu().numpy(), maximize=maximize)
    return torch.from_numpy(rows).long(), torch.from_numpy(cols).long()


def assert_scipy(cost, num_targets=None, maximize=False, device="cpu"):
    """Every problem's pairs are scipy's on its unpadded block, then −1."""
    rows, cols = fastloss.linear_sum_assignment(cost.to(device), num_targets, maximize)
    q, t = cost.shape[-2:]
    assert rows.shape == cols.shape == (*cost.shape[:-2], min(q, t)) and rows.dtype == torch.long
    assert rows.device.type == torch.device(device).type
    problems = int(np.prod(cost.shape[:-2]))
    flat_cost = cost.reshape(problems, q, t)
    flat_rows, flat_cols = rows.reshape(problems, min(q, t)), cols.reshape(problems, min(q, t))
    counts = [t] * flat_cost.shape[0] if num_targets is None else torch.as_tensor(num_targets).reshape(-1).tolist()
    for p, count in enumerate(counts):
        want_rows, want_cols = scipy_pairs(flat_cost[p, :, :count], maximize)
        k = len(want_rows)
        assert torch.equal(flat_rows[p, :k].cpu(), want_rows), (p, flat_rows[p, :k], want_rows)
        assert torch.equal(flat_cols[p, :k].cpu(), want_cols), (p, flat_cols[p, :k], want_cols)
        assert (flat_rows[p, k:] == -1).all() and (flat_cols[p, k:] == -1).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["random", "integer", "constant"])
@pytest.mark.parametrize("maximize", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_identical_to_scipy_on_every_shape(device, kind, maximize, dtype):
    g = torch.Generator().manual_seed(hash((kind, maximize)) % 1000)
    for q, t in itertools.product([1, 2, 3, 8, 21], [0, 1, 2, 3, 8, 21]):
        cost, _ = assignment_costs(4, q, t, kind, False, g)
        assert_scipy(cost.to(dtype), maximize=maximize, device=device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("targets", [0, 1, 50, 100, 300])
@pytest.mark.parametrize("kind", ["random", "integer"])
def test_detr_sized_problems(device, targets, kind):
    """300 queries × {0, 1, 50, 100, 300} targets, as a DETR decoder layer's images."""
    cost, _ = assignment_costs(2, 300, targets, kind, False, torch.Generator().manual_seed(targets))
    assert_scipy(cost.float(), device=device)


@pytest.mark.parametrize("device", DEVICES)
def test_layers_and_images_in_one_call_with_target_counts(device):
    """(layers, images, Q, T) padded costs with each image's own number of targets."""
    g = torch.Generator().manual_seed(1)
    cost = torch.randint(0, 6, (6, 4, 30, 25), generator=g).double()
    counts = torch.tensor([0, 25, 7, 13]).expand(6, 4)
    assert_scipy(cost, counts, device=device)
    tall = torch.rand(3, 10, 40, generator=g, dtype=torch.float64)  # (more targets than queries)
    assert_scipy(tall, torch.tensor([40, 3, 12]), maximize=True, device=device)


def test_integer_costs_and_scipys_two_arrays():
    cost = torch.tensor([[4, 1, 3], [2, 0, 5], [3, 2, 2]])
    rows, cols = fastloss.linear_sum_assignment(cost)
    want = scipy_pairs(cost)
    assert torch.equal(rows, want[0]) and torch.equal(cols, want[1])


@pytest.mark.parametrize(
    "entries, message",
    [
        ([[float("inf"), float("inf")], [1.0, 2.0]], "cost matrix is infeasible"),
        ([[float("nan"), 1.0], [1.0, 2.0]], "matrix contains invalid numeric entries"),
        ([[-float("inf"), 1.0], [1.0, 2.0]], "matrix contains invalid numeric entries"),
    ],
)
def test_scipys_errors_on_the_cpu(entries, message):
    cost = torch.tensor(entries, dtype=torch.float64)
    with pytest.raises(ValueError) as theirs:
        scipy_optimize.linear_sum_assignment(cost.numpy())
    assert str(theirs.value) == message
    with pytest.raises(ValueError, match=f"^{message}$"):
        fastloss.linear_sum_assignment(cost)
    batched = torch.stack([torch.ones(2, 2, dtype=torch.float64), cost])
    with pytest.raises(ValueError, match=rf"^{message} \(problem 1\)$"):
        fastloss.linear_sum_assignment(batched)


def test_maximize_turns_plus_inf_invalid_as_scipy():
    cost = torch.tensor([[float("inf"), 1.0], [1.0, 2.0]])
    with pytest.raises(ValueError, match="invalid numeric entries"):
        fastloss.linear_sum_assignment(cost, maximize=True)


def test_problems_without_a_solution_are_flagged_by_the_op():
    """The op (what CUDA callers read) marks a problem without a solution −2 and gives its status."""
    cost = torch.rand(3, 4, 4, dtype=torch.float64)
    cost[1, 2] = float("inf")
    rows, cols, status = torch.ops.fastloss.linear_sum_assignment(cost, None, False)
    assert status.tolist() == [0, 2, 0]
    assert (rows[1] == -2).all() and (cols[1] == -2).all() and (rows[[0, 2]] >= 0).all()


def test_bad_counts_and_arguments():
    cost = torch.rand(2, 3, 4)
    with pytest.raises(ValueError, match=r"num_targets must be in \[0, T\] = \[0, 4\], got 5 \(problem 1\)"):
        fastloss.linear_sum_assignment(cost, torch.tensor([1, 5]))
    with pytest.raises(ValueError, match="num_targets must have the cost's leading shape"):
        fastloss.linear_sum_assignment(cost, torch.tensor([1, 2, 3]))
    with pytest.raises(TypeError, match="num_targets must hold integers"):
        fastloss.linear_sum_assignment(cost, torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="cost must be"):
        fastloss.linear_sum_assignment(torch.rand(4))
    with pytest.raises(TypeError, match="cost must be a torch.Tensor"):
        fastloss.linear_sum_assignment([[1.0]])
    with pytest.raises(TypeError, match="maximize"):
        fastloss.linear_sum_assignment(cost, maximize="yes")


@pytest.mark.parametrize("shape", [(0, 5, 5), (3, 0, 5), (3, 5, 0), (0, 0)])
def test_empty_problems(shape):
    rows, cols = fastloss.linear_sum_assignment(torch.rand(shape))
    assert rows.shape == cols.shape == (*shape[:-2], min(shape[-2:]))


def test_the_reference_is_the_same_algorithm():
    g = torch.Generator().manual_seed(2)
    for kind in ("random", "integer", "constant"):
        cost, counts = assignment_costs(5, 9, 6, kind, True, g)
        want = reference.op(cost, counts, False)
        got = torch.ops.fastloss.linear_sum_assignment(cost, counts, False)
        for x, y in zip(got, want):
            assert torch.equal(x, y)


def test_opcheck_and_compile():
    cost, counts = assignment_costs(3, 12, 9, "integer", True, torch.Generator().manual_seed(3))
    torch.library.opcheck(torch.ops.fastloss.linear_sum_assignment.default, (cost, counts, False))
    want = fastloss.linear_sum_assignment(cost, counts)
    for dynamic in (False, True):
        compiled = torch.compile(fastloss.linear_sum_assignment, fullgraph=True, dynamic=dynamic, backend="aot_eager")
        got = compiled(cost, counts)
        assert all(torch.equal(x, y) for x, y in zip(got, want))


def test_same_results_for_every_thread_count():
    cost, counts = assignment_costs(16, 40, 30, "integer", True, torch.Generator().manual_seed(4))
    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2):
            torch.set_num_threads(n)
            results.append(fastloss.linear_sum_assignment(cost, counts))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(x, y) for x, y in zip(*results))


@settings(max_examples=40, deadline=None)
@given(
    q=st.integers(1, 12),
    t=st.integers(0, 12),
    high=st.integers(1, 5),
    maximize=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_properties(q, t, high, maximize, seed):
    """scipy's pairs on small integer costs (the tie-heaviest), and an optimum: no permutation of the
    rows' columns costs less (more, maximising)."""
    cost = torch.randint(0, high, (q, t), generator=torch.Generator().manual_seed(seed)).double()
    assert_scipy(cost, maximize=maximize)
    rows, cols = fastloss.linear_sum_assignment(cost, maximize=maximize)
    total = cost[rows, cols].sum()
    if t >= q and q <= 6:
        for perm in itertools.islice(itertools.permutations(range(t), q), 200):
            other = cost[torch.arange(q), torch.tensor(perm)].sum()
            assert (other <= total) if maximize else (other >= total)
    assert np.isfinite(total.item())
