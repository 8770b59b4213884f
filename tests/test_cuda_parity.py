"""CUDA kernels against the CPU kernels on the same inputs, over every op family: dtypes, a size
sweep (through several grid-stride waves), layouts, strides, reductions, weights and options —
covered pairwise (every pair of values of two factors appears in some case, not the full product) —
with losses and gradients compared; and what only a GPU shows: bitwise determinism, a side stream,
a second device, CUDA graph capture, device-side asserts.

Without a GPU the CUDA cases skip and the self-checks below run: the pairwise plans cover every
pair, every case stays within 2^24 elements (bar the named large-index cases) and runs on the CPU.
scripts/gpu_check.sh runs this file once per op family (`-k <family>`), each in its own process.
"""
import functools
import itertools
import os
import random
import subprocess
import sys
from math import prod

import pytest
import torch

import fastloss
from helpers import HAS_CUDA, random_boxes

needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
LIMIT = 1 << 24  # elements per case, but for the named large-index cases
FLOATS = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
# (rtol, atol) of CUDA against CPU: both compute in float32 (float64 for float64) but sum in other
# orders, and half types round their outputs.
TOLERANCE = {torch.float64: (1e-9, 1e-11), torch.float32: (2e-4, 2e-5), torch.float16: (1e-2, 2e-3),
             torch.bfloat16: (6e-2, 2e-2)}


def pairwise(factors, seed=0):
    """A small list of cases (dicts) in which every pair of values of any two factors appears: the
    greedy all-pairs construction, deterministic for a seed."""
    names = list(factors)
    uncovered = {(a, va, b, vb) for a, b in itertools.combinations(names, 2)
                 for va in range(len(factors[a])) for vb in range(len(factors[b]))}
    rng = random.Random(seed)
    cases = []
    while uncovered:
        a, va, b, vb = min(uncovered)  # start from a pair still missing
        choice = {a: va, b: vb}
        for name in rng.sample(names, len(names)):
            if name in choice:
                continue

            def gain(v, name=name):
                return sum(((min(name, n), v if name < n else c, max(name, n), c if name < n else v) in uncovered)
                           for n, c in choice.items())
            choice[name] = max(range(len(factors[name])), key=lambda v: (gain(v), -v))
        for x, y in itertools.combinations(names, 2):
            uncovered.discard((x, choice[x], y, choice[y]))
        cases.append({n: factors[n][choice[n]] for n in names})
    return cases


def covered(factors, cases):
    return all({(c[a], c[b]) for c in cases} >= set(itertools.product(factors[a], factors[b]))
               for a, b in itertools.combinations(factors, 2))


# --------------------------------------------------------------------------------------- the plans

WAVES = 132 * 8 * 256 * 2 + 1  # past two full grid-stride waves of a 132-SM GPU (H200)

SIGMOID = dict(dtype=FLOATS, rows=[1, 31, 33, 1025, 65537], classes=[1, 4, 31, 33, 80, 1203],
               targets=["labels", "one-hot", "soft"], reduction=["none", "mean", "sum"],
               weight=[None, "row", "class", "full"], contiguous=[True, False], gamma=[0.0, 0.5, 2.0, 1.7],
               alpha=[0.25, -1.0], avg_factor=[None, "tensor"])
SOFTMAX = dict(dtype=FLOATS, layout=["rows", "spatial"], positions=[1, 31, 33, 1025, 65537],
               classes=[1, 4, 31, 33, 80, 1203, 32768], reduction=["none", "mean", "sum"],
               alpha=[None, "tensor"], weight=[None, "position"], ignore=[False, True], smoothing=[0.0, 0.1],
               gamma=[0.0, 2.0, 0.5], contiguous=[True, False])
BOXES = dict(dtype=FLOATS, pairs=[1, 31, 33, 1025, 65537, WAVES],
             kind=["iou", "giou", "diou", "ciou", "eiou", "focal_eiou", "cdiou", "siou", "smooth_eiou", "bounded_iou"],
             box_format=["xyxy", "xywh", "cxcywh"], convention=["torchvision", "mmdet", "ultralytics"],
             reduction=["none", "mean", "sum"], weight=[None, "pair", "coordinate"], contiguous=[True, False],
             target_grad=[False, True])
BALANCED_L1 = dict(dtype=FLOATS, elements=[1, 31, 33, 1025, 65537, WAVES], reduction=["none", "mean", "sum"],
                   weight=[None, "full", "row"], contiguous=[True, False])
OVERLAP = dict(dtype=FLOATS, activation=["softmax", "sigmoid", "none"], target=["labels", "float"], n=[1, 2, 5],
               classes=[2, 4, 21], spatial=[(1,), (31,), (33, 33), (128, 128), (16, 16, 16)], squared=[False, True],
               loss=["dice", "jaccard", "tversky", "focal_tversky"], batch=[False, True],
               include_background=[True, False], reduction=["none", "mean", "sum"], ignore=[False, True])
BOX_MATRIX = dict(dtype=FLOATS, n=[1, 31, 33, 257, 1025], m=[1, 17, 33, 4099], batch=[1, 3],
                  kind=["iou", "giou", "diou", "ciou", "eiou", "iof"], box_format=["xyxy", "xywh", "cxcywh"],
                  convention=["torchvision", "mmdet"], aligned=[False, True], out_dtype=[None, torch.float16],
                  grad=["boxes1", "both"], contiguous=[True, False])
# named large-index cases, beyond the per-case limit
LARGE = {"sigmoid_focal": dict(rows=400_000, classes=80), "box_iou": dict(pairs=5_000_000),
         "overlap": dict(n=2, classes=4, spatial=(160, 160, 160)), "softmax_focal": dict(positions=600_000, classes=81),
         "balanced_l1": dict(elements=20_000_000), "box_matrix": dict(n=40_000, m=60_000, out_dtype=torch.float16)}

PLANS = {"sigmoid_focal": SIGMOID, "softmax_focal": SOFTMAX, "box_iou": BOXES, "overlap": OVERLAP,
         "balanced_l1": BALANCED_L1, "box_matrix": BOX_MATRIX}


def cases_of(family):
    return pairwise(PLANS[family], seed=len(family))


def elements(family, case):
    if family == "sigmoid_focal":
        return case["rows"] * case["classes"]
    if family == "softmax_focal":
        return case["positions"] * case["classes"]
    if family == "box_iou":
        return case["pairs"] * 4
    if family == "balanced_l1":
        return case["elements"]
    if family == "box_matrix":
        return case["batch"] * case["n"] * (1 if case["aligned"] else case["m"])
    return case["n"] * case["classes"] * prod(case["spatial"])


def fitted(family, case):
    """The case with its leading size cut so that it stays within LIMIT elements."""
    case = dict(case)
    key = {"sigmoid_focal": "rows", "softmax_focal": "positions", "box_iou": "pairs",
           "balanced_l1": "elements", "box_matrix": "m"}.get(family)
    while elements(family, case) > LIMIT and key is not None:
        case[key] //= 2
    return case


ALL_CASES = [(family, i, fitted(family, c)) for family in PLANS for i, c in enumerate(cases_of(family))]


def case_id(item):
    family, i, case = item
    return f"{family}-{i}"


# ------------------------------------------------------------------------------------- the inputs


def strided(t, contiguous):
    """t itself, or the same values behind a non-contiguous view (a transposed copy, transposed back)."""
    if contiguous or t.dim() < 2:
        return t
    return t.transpose(0, -1).contiguous().transpose(0, -1)


def make_call(family, case, device, seed=0):
    """(fn, tensors, kwargs): tensors[0] gets the gradient; built on the CPU and moved to `device`, so
    CPU and CUDA see identical values."""
    g = torch.Generator().manual_seed(seed)
    dtype = case["dtype"]

    def on(t, dt=None):
        return t.to(device=device, dtype=dt or t.dtype)

    if family == "sigmoid_focal":
        rows, classes = case["rows"], case["classes"]
        x = on(torch.randn(rows, classes, generator=g, dtype=torch.float64) * 3, dtype)
        labels = torch.randint(-1, classes + 1, (rows,), generator=g)
        labels[::7] = -100
        if case["targets"] == "labels":
            t = on(labels)
        elif case["targets"] == "one-hot":
            t = on((labels.unsqueeze(-1) == torch.arange(classes)).double(), dtype)
        else:
            t = on(torch.rand(rows, classes, generator=g, dtype=torch.float64), dtype)
        w = {None: None, "row": torch.rand(rows, generator=g), "class": torch.rand(1, classes, generator=g),
             "full": torch.rand(rows, classes, generator=g)}[case["weight"]]
        kwargs = dict(alpha=case["alpha"], gamma=case["gamma"], reduction=case["reduction"],
                      weight=None if w is None else on(w, dtype))
        if case["avg_factor"] == "tensor" and case["reduction"] == "mean":
            kwargs["avg_factor"] = on(torch.tensor(7.0))
        return fastloss.sigmoid_focal_loss, [strided(x, case["contiguous"]), t], kwargs
    if family == "softmax_focal":
        positions, classes = case["positions"], case["classes"]
        shape = (positions, classes) if case["layout"] == "rows" else (2, classes, max(positions // 2, 1))
        x = on(torch.randn(shape, generator=g, dtype=torch.float64) * 3, dtype)
        label_shape = (shape[0],) + shape[2:]
        y = torch.randint(0, classes, label_shape, generator=g)
        if case["ignore"]:
            y.view(-1)[::5] = -100
        kwargs = dict(gamma=case["gamma"], reduction=case["reduction"], label_smoothing=case["smoothing"])
        if case["alpha"] == "tensor":
            kwargs["alpha"] = on(torch.rand(classes, generator=g) + 0.5)
        if case["weight"] == "position":
            kwargs["weight"] = on(torch.rand(label_shape, generator=g), dtype)
        return fastloss.softmax_focal_loss, [strided(x, case["contiguous"]), on(y)], kwargs
    if family == "box_iou":
        n = case["pairs"]
        target = random_boxes(n, generator=g)
        pred = random_boxes(n, generator=g, near=target)
        from helpers import to_format
        pred, target = on(to_format(pred, case["box_format"]), dtype), on(to_format(target, case["box_format"]), dtype)
        w = {None: None, "pair": torch.rand(n, generator=g), "coordinate": torch.rand(n, 4, generator=g)}[case["weight"]]
        kwargs = dict(reduction=case["reduction"], box_format=case["box_format"],
                      weight=None if w is None else on(w, dtype))
        fn = functools.partial(box_loss, case["kind"], case["convention"])
        return fn, [strided(pred, case["contiguous"]), target.requires_grad_(case["target_grad"])], kwargs
    if family == "box_matrix":
        from helpers import to_format
        n, m = case["n"], case["n"] if case["aligned"] else case["m"]
        a = random_boxes(case["batch"] * n, generator=g).reshape(case["batch"], n, 4)
        b = random_boxes(case["batch"] * m, generator=g).reshape(case["batch"], m, 4)
        a, b = on(to_format(a, case["box_format"]), dtype), on(to_format(b, case["box_format"]), dtype)
        kind = case["kind"] if case["convention"] == "torchvision" or case["kind"] in ("iou", "giou", "iof") else "iou"
        fn = functools.partial(box_matrix, kind, case["box_format"], case["convention"], case["aligned"],
                               case["out_dtype"])
        return fn, [strided(a, case["contiguous"]), b.requires_grad_(case["grad"] == "both")], {}
    if family == "balanced_l1":
        n = case["elements"]
        target = torch.randn(n, generator=g, dtype=torch.float64)
        pred = on(target + torch.randn(n, generator=g, dtype=torch.float64) * 1.5, dtype)
        w = {None: None, "full": torch.rand(n, generator=g), "row": torch.rand(1, generator=g)}[case["weight"]]
        kwargs = dict(reduction=case["reduction"], weight=None if w is None else on(w, dtype))
        return fastloss.balanced_l1_loss, [strided(pred, case["contiguous"]), on(target, dtype)], kwargs
    shape = (case["n"], case["classes"]) + tuple(case["spatial"])
    x = on(torch.randn(shape, generator=g, dtype=torch.float64) * 2, dtype)
    if case["target"] == "labels":
        t = torch.randint(0, case["classes"], (shape[0],) + shape[2:], generator=g)
        if case["ignore"]:
            t.view(-1)[::6] = 255
        t = on(t)
    else:
        t = on((torch.rand(shape, generator=g) < 0.3).double(), dtype)
    activation = case["activation"]
    if activation == "none":
        x = on(torch.rand(shape, generator=g, dtype=torch.float64), dtype)
    loss = case["loss"]
    kwargs = dict(activation=activation, include_background=case["include_background"], batch=case["batch"],
                  reduction=case["reduction"])
    if case["target"] == "labels" and case["ignore"]:
        kwargs["ignore_index"] = 255
    if loss in ("dice", "jaccard"):
        fn = fastloss.dice_loss
        kwargs.update(squared_pred=case["squared"], jaccard=loss == "jaccard")
    else:
        fn = fastloss.tversky_loss
        kwargs.update(alpha=0.3, beta=0.7, gamma=0.75 if loss == "focal_tversky" else 1.0)
    return fn, [x, t], kwargs


def box_loss(kind, convention, pred, target, reduction, box_format, weight):
    """Any kind of the fused box kernel under any face's convention (bounded_iou: its dx component)."""
    from fastloss.box_iou_loss import _fused
    params = {"mode": "dx", "lambd": 0.2} if kind == "bounded_iou" else {}
    return _fused(kind, pred, target, reduction, 1e-6, weight, None, box_format, convention=convention, **params)


def box_matrix(kind, box_format, convention, aligned, out_dtype, boxes1, boxes2):
    """The pairwise metric kernel under any option, as the faces call it."""
    from fastloss.box_matrix import pairwise
    return pairwise(boxes1, boxes2, kind, box_format, 1e-6, convention, aligned, out_dtype)


def run(fn, tensors, kwargs):
    """Loss and the gradients of every tensor that requires grad (tensors[0] always)."""
    leaves = [tensors[0].detach().requires_grad_()] + [t.detach().requires_grad_(t.requires_grad) for t in tensors[1:]]
    loss = fn(*leaves, **kwargs)
    wanted = [t for t in leaves if t.requires_grad]
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
    assert all(r.dtype.is_floating_point for r in results)


def test_pairwise_generator_on_a_known_plan():
    factors = dict(a=[1, 2, 3], b=["x", "y"], c=[True, False], d=[0, 1, 2])
    cases = pairwise(factors)
    assert covered(factors, cases) and len(cases) <= 12 < 36


# ----------------------------------------------------------------------------------------- CUDA


def assert_parity(got, want, dtype):
    rtol, atol = TOLERANCE[dtype]
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        torch.testing.assert_close(g.cpu().double(), w.double(), rtol=rtol, atol=atol, equal_nan=True)


@needs_cuda
@pytest.mark.parametrize("item", ALL_CASES, ids=case_id)
def test_cuda_matches_cpu(item):
    family, _, case = item
    want = run(*make_call(family, case, "cpu"))
    got = run(*make_call(family, case, "cuda"))
    assert_parity(got, want, case["dtype"])


@needs_cuda
@pytest.mark.parametrize("family", list(PLANS))
def test_cuda_large_index_case(family):
    case = {**{k: v[0] for k, v in PLANS[family].items()}, **LARGE[family], "dtype": torch.float16}
    if family == "sigmoid_focal":
        case["targets"] = "labels"
    want = run(*make_call(family, case, "cpu"))
    got = run(*make_call(family, case, "cuda"))
    assert_parity(got, want, torch.float16)


def mid(family, **sizes):
    """A mid-size case of the family (float32, "mean"): several blocks, one device wave or more."""
    return {**{k: v[0] for k, v in PLANS[family].items()}, "dtype": torch.float32, "reduction": "mean", **sizes}


MID = {"sigmoid_focal": mid("sigmoid_focal", rows=70001, classes=80),
       "softmax_focal": mid("softmax_focal", positions=70001, classes=81),
       "box_iou": mid("box_iou", pairs=300001), "overlap": mid("overlap", spatial=(64, 64), n=2),
       "balanced_l1": mid("balanced_l1", elements=1_000_001), "box_matrix": mid("box_matrix", n=1025, m=4099)}


@needs_cuda
@pytest.mark.parametrize("family", list(PLANS))
def test_cuda_bitwise_deterministic(family):
    call = make_call(family, MID[family], "cuda")
    first = run(*call)
    for _ in range(2):
        for a, b in zip(run(*call), first):
            assert torch.equal(a, b)


@needs_cuda
@pytest.mark.parametrize("family", list(PLANS))
def test_cuda_side_stream(family):
    call = make_call(family, MID[family], "cuda")
    want = run(*call)
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
@pytest.mark.parametrize("family", list(PLANS))
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
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "CUDA_LAUNCH_BLOCKING": "1"})
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "label 7 outside [0," in text and "device-side assert" in text
