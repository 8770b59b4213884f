"""CUDA kernels against the CPU kernels on the same inputs, over every op family: dtypes, a size
sweep (through several grid-stride waves), layouts, strides, reductions, weights and options —
covered pairwise (every pair of values of two factors appears in some case, not the full product) —
with losses and gradients compared; and what only a GPU shows: bitwise determinism, a side stream,
a second device, CUDA graph capture, device-side asserts.

Every CUDA test runs on two targets: "cuda" (a GPU; skipped without one) and "emulated" (the CUDA
sources executed on the CPU by tests/cuda_emulation, under its race, barrier and bounds checks, with
smaller cases: `make cuda-emulate`; left out of plain `make test` runs). Without either, the
self-checks below run: the pairwise plans cover every pair, every case stays within 2^24 elements
(bar the named large-index cases) and runs on the CPU. scripts/gpu_check.sh runs this file once per
op family (`-k <family>`), each in its own process.
"""

import contextlib
import functools
import itertools
import math
import os
import random
import subprocess
import sys
from math import prod

import pytest
import torch

from fastloss import _spec
from cuda_emulation import emulation
from helpers import HAS_CUDA

needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
# Where the CUDA kernels run: a GPU, or the emulation (tests marked `emulation`, which conftest.py
# selects only in `make cuda-emulate` runs).
TARGETS = [pytest.param("cuda", marks=needs_cuda), pytest.param("emulated", marks=pytest.mark.emulation)]
LIMIT = 1 << 24  # elements per case, but for the named large-index cases
EMULATED_LIMIT = 1 << 13  # elements per case in the emulation (past a few grid-stride waves of its device)


def device_of(target):
    """The device the target's tensors live on."""
    return "cuda" if target == "cuda" else "cpu"


def running_on(target):
    """The context in which fastloss's ops run on the target."""
    return emulation.emulated_cuda() if target == "emulated" else contextlib.nullcontext()


FLOATS = _spec.FLOATS
# (rtol, atol) of CUDA against CPU: both compute in float32 (float64 for float64) but sum in other
# orders, and half types round their outputs.
TOLERANCE = {
    torch.float64: (1e-9, 1e-11),
    torch.float32: (2e-4, 2e-5),
    torch.float16: (1e-2, 2e-3),
    torch.bfloat16: (6e-2, 2e-2),
}


def pairwise(factors, seed=0):
    """A small list of cases (dicts) in which every pair of values of any two factors appears: the
    greedy all-pairs construction, deterministic for a seed."""
    names = list(factors)
    uncovered = {
        (a, va, b, vb)
        for a, b in itertools.combinations(names, 2)
        for va in range(len(factors[a]))
        for vb in range(len(factors[b]))
    }
    rng = random.Random(seed)
    cases = []
    while uncovered:
        a, va, b, vb = min(uncovered)  # start from a pair still missing
        choice = {a: va, b: vb}
        for name in rng.sample(names, len(names)):
            if name in choice:
                continue

            def gain(v, name=name):
                return sum(
                    ((min(name, n), v if name < n else c, max(name, n), c if name < n else v) in uncovered)
                    for n, c in choice.items()
                )

            choice[name] = max(range(len(factors[name])), key=lambda v: (gain(v), -v))
        for x, y in itertools.combinations(names, 2):
            uncovered.discard((x, choice[x], y, choice[y]))
        cases.append({n: factors[n][choice[n]] for n in names})
    return cases


def covered(factors, cases):
    return all(
        {(c[a], c[b]) for c in cases} >= set(itertools.product(factors[a], factors[b]))
        for a, b in itertools.combinations(factors, 2)
    )


# --------------------------------------------------------------------------------------- the plans
# Each op family's plan is in its record (fastloss._spec.Plan, declared in the family's module).

SPECS = {s.name: s for s in _spec.specs() if s.plan is not None}
PLANS = {name: s.plan.factors for name, s in SPECS.items()}
# The families whose outputs include decisions (indices, masks): compared modulo near-ties.
ASSIGNMENTS = {name for name, s in SPECS.items() if s.plan.decisions}
LARGE = {name: s.plan.large for name, s in SPECS.items()}  # named large-index cases, past the limit


def cases_of(family):
    return pairwise(PLANS[family], seed=len(family))


def elements(family, case):
    return SPECS[family].plan.elements(case)


def fitted(family, case, limit=LIMIT):
    """The case with its size factors halved, in the plan's order, until it stays within `limit`
    elements."""
    case = dict(case)
    for step in SPECS[family].plan.shrink:
        key, floor = step if isinstance(step, tuple) else (step, 1)
        if isinstance(case[key], tuple):  # a spatial shape: every dimension
            while elements(family, case) > limit and max(case[key]) > floor:
                case[key] = tuple((s + 1) // 2 for s in case[key])
            continue
        while elements(family, case) > limit and case[key] > floor:
            case[key] = (case[key] + 1) // 2
    return case


ALL_CASES = [(family, i, fitted(family, c)) for family in PLANS for i, c in enumerate(cases_of(family))]


def case_id(item):
    family, i, case = item
    return f"{family}-{i}"


# ------------------------------------------------------------------------------------- the inputs


def make_call(family, case, device, seed=0):
    """(fn, tensors, kwargs) of the family's plan: tensors[0] gets the gradient; built on the CPU and
    moved to `device`, so CPU and CUDA see identical values."""
    g = torch.Generator().manual_seed(seed)

    def on(t, dt=None):
        return t.to(device=device, dtype=dt or t.dtype)

    fn, tensors, kwargs = SPECS[family].plan.call(case, g, on, seed)
    if not SPECS[family].plan.differentiable:  # (its outputs, not gradients: run() calls it under no_grad)
        fn = functools.partial(fn)
        fn.without_grad = True
    return fn, tensors, kwargs


def run(fn, tensors, kwargs, grad=True, autocast=None):
    """Loss and the gradients of every tensor that requires grad (tensors[0] always); an op without a
    gradient (the assignment, the matching cost), or grad=False, gives its outputs. autocast: run
    under torch.autocast to that dtype."""
    if autocast is not None:
        with torch.autocast(tensors[0].device.type, dtype=autocast):
            return run(fn, tensors, kwargs, grad)
    if not grad or getattr(fn, "without_grad", False):
        with torch.no_grad():
            out = fn(*tensors, **kwargs)
        return list(out) if isinstance(out, (tuple, list)) else [out]

    def leaf(t, grad):
        return tuple(leaf(u, False) for u in t) if isinstance(t, tuple) else t.detach().requires_grad_(grad)

    leaves = [leaf(tensors[0], True)] + [
        leaf(t, False) if isinstance(t, tuple) else leaf(t, t.requires_grad) for t in tensors[1:]
    ]
    loss = fn(*leaves, **kwargs)
    wanted = [t for t in leaves if isinstance(t, torch.Tensor) and t.requires_grad]
    if grad == "twice":  # (a second backward: an op that kept its gradient recomputes it)
        torch.autograd.grad(loss.float().sum(), wanted, retain_graph=True)
    grads = torch.autograd.grad(loss.float().sum(), wanted)
    return [loss.detach()] + list(grads)


# --------------------------------------------------------------------------- self-checks (any machine)


@pytest.mark.parametrize("family", list(PLANS))
def test_plan_covers_every_pair(family):
    cases = cases_of(family)
    assert covered(PLANS[family], cases)
    full = prod(len(v) for v in PLANS[family].values())
    # pairwise, not the product: no more cases than the two largest factors' pairs need, with slack
    sizes = sorted(len(v) for v in PLANS[family].values())
    assert len(cases) <= 3 * sizes[-1] * sizes[-2] and len(cases) < full / 4, (len(cases), full)


@pytest.mark.parametrize("family", list(PLANS))
def test_cases_stay_within_the_element_limit(family):
    assert all(elements(f, c) <= LIMIT for f, _, c in ALL_CASES if f == family)
    large = {**{k: v[0] for k, v in PLANS[family].items()}, **LARGE[family]}
    assert elements(family, large) > LIMIT  # the named large-index case is what goes beyond


@pytest.mark.parametrize("item", [c for c in ALL_CASES if elements(c[0], c[2]) <= 1 << 18], ids=case_id)
def test_small_cases_run_on_the_cpu(item):
    """Every plan builds valid inputs (checked on the CPU for the small ones)."""
    family, _, case = item
    results = run(*make_call(family, case, "cpu"))
    assert results and all(isinstance(r, torch.Tensor) for r in results)
    exact = family in ASSIGNMENTS or not SPECS[family].plan.differentiable  # (indices: the linear assignment's)
    assert exact or all(r.dtype.is_floating_point for r in results)


def test_reduction_bound_mirrors_the_kernels():
    """The bound's chunk and block sizes are the kernels' (csrc/cpu/row_loop.h, csrc/cuda/launch.cuh)."""
    from test_enum_mirrors import cpp_constant

    assert cpp_constant("cpu/row_loop.h", "kChunk") == CPU_CHUNK
    assert cpp_constant("cuda/launch.cuh", "kThreads") == CUDA_THREADS


def test_pairwise_generator_on_a_known_plan():
    factors = dict(a=[1, 2, 3], b=["x", "y"], c=[True, False], d=[0, 1, 2])
    cases = pairwise(factors)
    assert covered(factors, cases) and len(cases) <= 12 < 36


# ----------------------------------------------------------------------------------------- CUDA


# Families whose outputs are element-wise (each value from its own inputs alone: no sum across
# elements), but for the loss under "mean"/"sum". Both devices evaluate the same formulas
# (csrc/math) in the same order, without contraction (-ffp-contract=off, -fmad=false), with the same
# exp/log/pow/atan2 (math/elementary.h): those values are bitwise equal. Sums across elements add in
# each device's order: their reduced losses within the bound below, the other families' sums
# (softmax's row sums, Dice's per-class sums, box_matrix's gradient along a row) within TOLERANCE
# (docs/cuda-emulation.md, "Reductions").
# (a record's `plan.elementwise`)
ELEMENTWISE = {name for name, s in SPECS.items() if s.plan.elementwise}


# The reduced loss of those families: the same element values, summed in each device's order. Its
# bound (docs/cuda-emulation.md, "Reductions"): every float addition on the way from an element
# to the sum loses at most u = 2^-24 (2^-53 in double) relative, so two orders whose longest chains of
# additions are k_cpu and k_cuda give sums apart by at most (k_cpu + k_cuda)·u·Σ|ℓ| (Higham, Accuracy
# and Stability of Numerical Algorithms, §4.2), plus each side's roundings of the sum, the division by
# the count or avg_factor and the output dtype.
CPU_CHUNK = 1 << 14  # csrc/cpu/row_loop.h: kChunk flat indices per partial sum
CPU_LANE_BYTES = 64  # cpu::Wide: one running sum per lane of 64 bytes (16 float, 8 double)
CUDA_THREADS = 256  # csrc/cuda/launch.cuh: kThreads


def longest_chains(n, cols, acc_dtype):
    """(k_cpu, k_cuda): the most additions in the accumulation type on any element's way to the sum of
    n elements in rows of `cols` (one row segment restarts the CPU's lanes at lane 0)."""
    lanes = CPU_LANE_BYTES * 8 // torch.finfo(acc_dtype).bits
    n, cols = max(n, 1), max(cols, 1)
    chunk = min(n, CPU_CHUNK)
    # a lane takes one element per `lanes` of a row segment, and at least one per segment; its sum
    # then goes through the chunk's lanes and the chunks' partials (in double: counted as such)
    segments = min(-(-chunk // cols) + 1, -(-n // cols))
    k_cpu = -(-chunk // lanes) + segments + lanes + -(-n // CPU_CHUNK)
    # a thread's grid-stride run (longest with one block), the block's tree (a shuffle level per halving
    # of the warp, within the warps and then across them: 2·5 with 32 lanes, 2·6 with the emulation's
    # 64), then the partials' run and tree: any grid from 1 block up
    blocks, tree = -(-n // CUDA_THREADS), 2 * 6
    k_cuda = blocks + tree + -(-blocks // CUDA_THREADS) + tree
    return k_cpu, k_cuda


def assert_reduction_within_bound(got, want, elements):
    """got (CUDA) against want (CPU), reduced losses of `elements` (the same call's "none" losses, one
    row of them per reduced value: (values, n) or (n,)), within the bound above. The sums run in the
    math type: double for a float64 loss, else float."""
    acc_dtype = torch.float64 if want.dtype == torch.float64 else torch.float32
    u_acc, u_out = torch.finfo(acc_dtype).eps / 2, torch.finfo(want.dtype).eps / 2
    got, want = got.cpu().double().reshape(-1), want.double().reshape(-1)
    per_value = elements.double().reshape(want.numel(), -1)
    cols = elements.shape[-1] if elements.dim() > 1 else per_value.shape[1]
    k_cpu, k_cuda = longest_chains(per_value.shape[1], cols, acc_dtype)
    for g, w, terms in zip(got.tolist(), want.tolist(), per_value):
        if not math.isfinite(w):
            assert g == w or (math.isnan(g) and math.isnan(w)), (g, w)
            continue
        total, magnitude = float(terms.sum()), float(terms.abs().sum())
        # Σ|ℓ| over the divisor (count, avg_factor or 1): the sum's scale in the result's units
        scale = abs(w) * magnitude / abs(total) if total != 0 else magnitude
        bound = (k_cpu + k_cuda) * u_acc * scale + 4 * (u_acc + u_out) * abs(w)
        assert abs(g - w) <= bound, (
            f"reduced loss {g!r} vs the CPU's {w!r}: {abs(g - w):.3g} over the bound {bound:.3g}"
        )


def bitwise_outputs(family, case, count):
    """Indices of the outputs that must equal the CPU's bit for bit."""
    if family in ELEMENTWISE:
        return range(0 if case.get("reduction", "none") == "none" else 1, count)
    return range(SPECS[family].plan.exact_outputs(case))  # (box_matrix: not the gradient, a sum along a row)


def assert_parity(got, want, dtype, exact=range(0)):
    rtol, atol = TOLERANCE[dtype]
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape and g.dtype == w.dtype
        if i in exact:
            g = g.cpu()
            assert torch.equal(g.isnan(), w.isnan()) and torch.equal(g.nan_to_num(), w.nan_to_num()), (
                f"output {i} is not bitwise the CPU's: {int((g != w).sum())} of {g.numel()} values differ, by up "
                f"to {float((g.double() - w.double()).abs().nan_to_num().max()):.3g}"
            )
        else:
            torch.testing.assert_close(g.cpu().double(), w.double(), rtol=rtol, atol=atol, equal_nan=True)


def assert_same_assignment(got, want):
    """Task-aligned assignments are equal, every output bit for bit, near-ties included: both devices
    compute the metrics with the same math and order (tests/test_cuda_emulation.py holds a near-tie)."""
    for name, g, w in zip(("target_labels", "target_bboxes", "target_scores", "fg_mask", "target_gt_idx"), got, want):
        g = g.cpu()
        assert g.shape == w.shape and g.dtype == w.dtype, name
        assert torch.equal(g, w), f"{name}: {int((g != w).sum())} of {g.numel()} values differ"


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("item", ALL_CASES, ids=case_id)
def test_cuda_matches_cpu(item, target):
    family, _, case = item
    if target == "emulated":
        case = fitted(family, case, EMULATED_LIMIT)
    assert_target_matches_cpu(target, family, case)


def assert_target_matches_cpu(target, family, case, dtype=None, **options):
    """The family's case run on the target, against the CPU kernels (assignments modulo near-ties;
    dtype: the tolerance's, default the case's; options: run()'s)."""
    call = make_call(family, case, "cpu")
    want = run(*call, **options)
    with running_on(target):
        got = run(*make_call(family, case, device_of(target)), **options)
    if family in ASSIGNMENTS:
        assert_same_assignment(got, want)
        return
    assert_parity(got, want, dtype or case["dtype"], bitwise_outputs(family, case, len(want)))
    if family in ELEMENTWISE and case.get("reduction", "none") != "none":
        elements = run(*make_call(family, {**case, "reduction": "none"}, "cpu"), grad=False)[0]
        assert_reduction_within_bound(got[0], want[0], elements)


@needs_cuda
@pytest.mark.parametrize("family", list(PLANS))
def test_cuda_large_index_case(family):
    case = {**{k: v[0] for k, v in PLANS[family].items()}, **LARGE[family], "dtype": torch.float16}
    assert_target_matches_cpu("cuda", family, case)


# ----------------------------------------------------------- every instance the dispatch can reach


def small(family, **overrides):
    """A small case of the family: each factor's first value, sizes past a block, then `overrides`."""
    return {**{k: v[0] for k, v in PLANS[family].items()}, **SPECS[family].plan.small, **overrides}


def dtype_sweep(family):
    """Small cases over every combination of the dtypes (and the variants that pick a kernel instance)
    the family's dispatch can reach: the pairwise plans cover pairs, these the full product."""
    return SPECS[family].plan.sweep(functools.partial(small, family))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("family", list(PLANS))
def test_empty_inputs_match_cpu(family, target):
    """Defined results (or the same error) for empty inputs, every reduction."""
    for sizes in SPECS[family].plan.empty:
        for reduction in PLANS[family].get("reduction", ("none", "mean", "sum")):
            case = small(family, reduction=reduction, **sizes)
            try:
                run(*make_call(family, case, "cpu"))
            except (ValueError, RuntimeError) as e:
                with pytest.raises(type(e)), running_on(target):
                    run(*make_call(family, case, device_of(target)))
                continue
            assert_target_matches_cpu(target, family, case)


def loosest(*dtypes):
    return max((d for d in dtypes if d is not None), key=lambda d: TOLERANCE[d][0])


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("family", list(PLANS))
def test_every_dtype_combination_matches_cpu(family, target):
    for case in dtype_sweep(family):
        assert_target_matches_cpu(
            target,
            family,
            case,
            loosest(case["dtype"], case.get("dtype2"), case.get("dtype3"), case.get("autocast")),
            grad=case.get("grad", True),
            autocast=case.get("autocast"),
        )


def mid(family, **sizes):
    """A mid-size case of the family (float32, "mean"): several blocks, one device wave or more."""
    return {**{k: v[0] for k, v in PLANS[family].items()}, "dtype": torch.float32, "reduction": "mean", **sizes}


MID = {family: mid(family, **s.plan.mid) for family, s in SPECS.items()}
# (the emulation's: past a few waves of its small device)
EMULATED_MID = {family: fitted(family, case, 4 * EMULATED_LIMIT) for family, case in MID.items()}
DIFFERENTIABLE = [family for family, s in SPECS.items() if s.plan.differentiable]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("family", list(PLANS))
def test_cuda_bitwise_deterministic(family, target):
    case = MID[family] if target == "cuda" else EMULATED_MID[family]
    call = make_call(family, case, device_of(target))
    with running_on(target):
        first = run(*call)
        for _ in range(2):
            for a, b in zip(run(*call), first):
                assert torch.equal(a, b)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("family", list(PLANS))
def test_cuda_side_stream(family, target):
    """On another stream, the kernels launch there (the emulation fails a launch elsewhere) and give
    the same bits."""
    case = MID[family] if target == "cuda" else EMULATED_MID[family]
    call = make_call(family, case, device_of(target))
    with running_on(target):
        want = run(*call)
        if target == "emulated":
            with emulation.current_stream(0x5EED5):
                got = run(*call)
        else:
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                got = run(*call)
            torch.cuda.current_stream().wait_stream(stream)
    for a, b in zip(got, want):
        assert torch.equal(a, b)


@pytest.mark.skipif(not HAS_CUDA or torch.cuda.device_count() < 2, reason="needs two CUDA GPUs")
@pytest.mark.parametrize("family", list(PLANS))
def test_cuda_second_device_while_the_first_is_current(family):
    want = run(*make_call(family, MID[family], "cuda:0"))
    with torch.cuda.device(0):
        got = run(*make_call(family, MID[family], "cuda:1"))
    assert all(g.device == torch.device("cuda:1") for g in got)
    for a, b in zip(got, want):
        assert torch.equal(a.cpu(), b.cpu())


@needs_cuda
@pytest.mark.parametrize("family", DIFFERENTIABLE)
def test_cuda_graph_capture_and_replay(family):
    """Forward + backward captured once and replayed on new inputs: no op syncs with the host
    (a sync would fail the capture), tensor avg_factor included."""
    fn, tensors, kwargs = make_call(family, MID[family], "cuda")
    if family == "sigmoid_focal":
        kwargs = {**kwargs, "reduction": "mean", "avg_factor": torch.tensor(5.0, device="cuda")}
    static = [t.detach().clone().requires_grad_(i == 0) for i, t in enumerate(tensors)]
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up on a side stream, as torch's docs do
        for _ in range(2):
            static[0].grad = None
            fn(*static, **kwargs).float().sum().backward()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    static[0].grad = None
    with torch.cuda.graph(graph):
        loss = fn(*static, **kwargs).float().sum()
        loss.backward()
    fresh = make_call(family, MID[family], "cuda", seed=1)[1]
    with torch.no_grad():
        for s, f in zip(static, fresh):
            s.copy_(f)
    graph.replay()
    want = run(fn, fresh, kwargs)
    torch.testing.assert_close(loss.detach(), want[0].float().sum())
    torch.testing.assert_close(static[0].grad, want[1])


BAD_LABELS = {
    "softmax_focal": "fastloss.softmax_focal_loss(torch.randn(8, 5, device='cuda'), "
    "torch.tensor([0, 1, 7, 2, 3, 4, 0, 1], device='cuda'))",
    "overlap": "fastloss.dice_loss(torch.randn(2, 3, 8, device='cuda'), torch.full((2, 8), 7, device='cuda'))",
}


@needs_cuda
@pytest.mark.parametrize("family", list(BAD_LABELS))
def test_cuda_bad_label_is_a_device_assert_naming_it(family):
    """In its own process: a device-side assert poisons the CUDA context for the rest of a process."""
    code = f"import torch, fastloss\n{BAD_LABELS[family]}\ntorch.cuda.synchronize()\n"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "CUDA_LAUNCH_BLOCKING": "1"},
    )
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "label 7 outside [0," in text and "device-side assert" in text
