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

import fastloss
from cuda_emulation import emulation
from helpers import HAS_CUDA, random_boxes

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


FLOATS = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
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

WAVES = 132 * 8 * 256 * 2 + 1  # past two full grid-stride waves of a 132-SM GPU (H200)

SIGMOID = dict(
    dtype=FLOATS,
    rows=[1, 31, 33, 1025, 65537],
    classes=[1, 4, 31, 33, 80, 1203],
    targets=["labels", "one-hot", "soft"],
    reduction=["none", "mean", "sum"],
    weight=[None, "row", "class", "full"],
    contiguous=[True, False],
    gamma=[0.0, 0.5, 2.0, 1.7],
    alpha=[0.25, -1.0],
    avg_factor=[None, "tensor"],
)
SOFTMAX = dict(
    dtype=FLOATS,
    layout=["rows", "spatial"],
    positions=[1, 31, 33, 1025, 65537],
    classes=[1, 4, 31, 33, 80, 1203, 32768],
    reduction=["none", "mean", "sum"],
    alpha=[None, "tensor"],
    weight=[None, "position"],
    ignore=[False, True],
    smoothing=[0.0, 0.1],
    gamma=[0.0, 2.0, 0.5],
    contiguous=[True, False],
)
BOXES = dict(
    dtype=FLOATS,
    pairs=[1, 31, 33, 1025, 65537, WAVES],
    kind=["iou", "giou", "diou", "ciou", "eiou", "focal_eiou", "cdiou", "siou", "smooth_eiou", "bounded_iou"],
    box_format=["xyxy", "xywh", "cxcywh"],
    convention=["torchvision", "mmdet", "ultralytics"],
    reduction=["none", "mean", "sum"],
    weight=[None, "pair", "coordinate"],
    contiguous=[True, False],
    target_grad=[False, True],
)
BALANCED_L1 = dict(
    dtype=FLOATS,
    elements=[1, 31, 33, 1025, 65537, WAVES],
    reduction=["none", "mean", "sum"],
    weight=[None, "full", "row"],
    contiguous=[True, False],
)
OVERLAP = dict(
    dtype=FLOATS,
    activation=["softmax", "sigmoid", "none"],
    target=["labels", "float"],
    n=[1, 2, 5],
    classes=[2, 4, 21],
    spatial=[(1,), (31,), (33, 33), (128, 128), (16, 16, 16)],
    squared=[False, True],
    loss=["dice", "jaccard", "tversky", "focal_tversky"],
    batch=[False, True],
    include_background=[True, False],
    reduction=["none", "mean", "sum"],
    ignore=[False, True],
)
BOX_MATRIX = dict(
    dtype=FLOATS,
    n=[1, 31, 33, 257, 1025],
    m=[1, 17, 33, 4099],
    batch=[1, 3],
    kind=["iou", "giou", "diou", "ciou", "eiou", "iof"],
    box_format=["xyxy", "xywh", "cxcywh"],
    convention=["torchvision", "mmdet"],
    aligned=[False, True],
    out_dtype=[None, torch.float16],
    grad=["boxes1", "both"],
    contiguous=[True, False],
)
# The quality-aware losses (VFL, QFL: variants of the sigmoid focal kernel) and DFL; layers: per_layer.
QUALITY = dict(
    dtype=FLOATS,
    loss=["varifocal", "quality_focal"],
    rows=[1, 33, 1025, 20000],
    classes=[1, 4, 80],
    target=["sparse", "dense"],
    reduction=["none", "mean", "sum"],
    negative_mask=["score", "label"],
    layers=[0, 2],
    weight=[None, "full"],
)
DFL = dict(
    dtype=FLOATS,
    rows=[1, 33, 1025, 40000],
    bins=[2, 8, 16, 17],
    reduction=["none", "mean", "sum"],
    weight=[None, "row"],
    target_max=[None, "clamp"],
)
# Dice + cross entropy / softmax focal / sigmoid focal in one pass (fastloss::overlap_ce_sums).
COMPOUND = dict(
    dtype=FLOATS,
    loss=["dice_ce", "dice_focal", "dice_focal_sigmoid"],
    dice=["dice", "generalized_dice", "tversky"],
    n=[1, 2],
    classes=[2, 4, 21],
    spatial=[(1,), (33,), (16, 16), (8, 8, 8), (128, 128)],
    target=["labels", "soft"],
    gamma=[0.0, 2.0, 0.5],
    smoothing=[0.0, 0.1],
    ignore=[False, True],
    batch=[False, True],
    include_background=[True, False],
    activation=["softmax", "sigmoid", "none"],
    reduction=["mean", "sum"],
)
# Task-aligned assignment (YOLOv8–11) and the DETR matching cost.
# (size 16: fewer anchors than top-k; 100 GTs × 3 images: more GTs than the emulated grid has warps;
# "zero_row": a GT over the first row of anchors, all of zero score but one — its top-k completed by
# zero-metric anchors in index order)
TASK_ALIGNED = dict(
    dtype=FLOATS,
    batch=[1, 3],
    gts=[0, 1, 12, 40, 100],
    classes=[1, 7, 80],
    size=[16, 64, 160, 320],
    topk=[1, 10, 13],
    topk2=[None, 5],
    sparse=[False, True],
    quantized=[False, True],
    scenario=["random", "zero_row"],
)
MATCHING = dict(
    dtype=FLOATS,
    kind=["focal", "softmax"],
    batch=[1, 3],
    queries=[1, 20, 300],
    targets=[0, 1, 7, 40],
    layers=[0, 2],
    classes=[1, 9, 91],
)
# named large-index cases, beyond the per-case limit
LARGE = {
    "sigmoid_focal": dict(rows=400_000, classes=80),
    "box_iou": dict(pairs=5_000_000),
    "overlap": dict(n=2, classes=4, spatial=(160, 160, 160)),
    "softmax_focal": dict(positions=600_000, classes=81),
    "balanced_l1": dict(elements=20_000_000),
    "box_matrix": dict(n=40_000, m=60_000, out_dtype=torch.float16),
    "quality_focal": dict(rows=400_000, classes=80),
    "distribution_focal": dict(rows=2_000_000, bins=17),
    "compound": dict(n=2, classes=4, spatial=(160, 160, 160)),
    "task_aligned": dict(batch=8, gts=400, size=640),
    "matching_cost": dict(layers=6, batch=16, queries=900, targets=300),
}

PLANS = {
    "sigmoid_focal": SIGMOID,
    "softmax_focal": SOFTMAX,
    "box_iou": BOXES,
    "overlap": OVERLAP,
    "balanced_l1": BALANCED_L1,
    "box_matrix": BOX_MATRIX,
    "quality_focal": QUALITY,
    "distribution_focal": DFL,
    "compound": COMPOUND,
    "task_aligned": TASK_ALIGNED,
    "matching_cost": MATCHING,
}
# The families whose outputs include decisions (indices, masks): compared modulo near-ties.
ASSIGNMENTS = {"task_aligned"}


def cases_of(family):
    return pairwise(PLANS[family], seed=len(family))


def elements(family, case):
    if family == "sigmoid_focal":
        return max(case.get("layers", 0), 1) * case["rows"] * case["classes"]
    if family == "quality_focal":
        return max(case["layers"], 1) * case["rows"] * case["classes"]
    if family == "distribution_focal":
        return case["rows"] * case["bins"]
    if family == "task_aligned":
        return case["batch"] * max(case["gts"], 1) * anchor_count(case["size"])
    if family == "matching_cost":
        return max(case["layers"], 1) * case["batch"] * case["queries"] * max(case["targets"], 1)
    if family == "softmax_focal":
        return case["positions"] * case["classes"]
    if family == "box_iou":
        return case["pairs"] * 4
    if family == "balanced_l1":
        return case["elements"]
    if family == "box_matrix":
        return case["batch"] * case["n"] * (1 if case["aligned"] else case["m"])
    return case["n"] * case["classes"] * prod(case["spatial"])


def anchor_count(size):
    return sum((size // stride) ** 2 for stride in (8, 16, 32))


def fitted(family, case, limit=LIMIT):
    """The case with its leading size cut so that it stays within `limit` elements (the overlap
    family's spatial sizes halved, once LIMIT is below its largest cases)."""
    case = dict(case)
    while family == "task_aligned" and elements(family, case) > limit and case["size"] > 32:
        case["size"] //= 2  # (fewer anchors first: the GTs' count decides the warps' loop)
    key = {
        "sigmoid_focal": "rows",
        "softmax_focal": "positions",
        "box_iou": "pairs",
        "balanced_l1": "elements",
        "box_matrix": "m",
        "quality_focal": "rows",
        "distribution_focal": "rows",
        "matching_cost": "queries",
        "task_aligned": "gts",
    }.get(family)
    while elements(family, case) > limit and key is not None and case[key] > 1:
        case[key] = (case[key] + 1) // 2
    while family in ("overlap", "compound") and elements(family, case) > limit and max(case["spatial"]) > 1:
        case["spatial"] = tuple((s + 1) // 2 for s in case["spatial"])

    if family == "box_matrix":
        while elements(family, case) > limit and case["n"] > 1:
            case["n"] = (case["n"] + 1) // 2
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
    dtype2 = case.get("dtype2") or dtype  # the second operand's (targets, boxes2, the boxes of assignments)

    def on(t, dt=None):
        return t.to(device=device, dtype=dt or t.dtype)

    if family == "sigmoid_focal":
        rows, classes, layers = case["rows"], case["classes"], case.get("layers", 0)
        lead = (layers, rows) if layers else (rows,)
        x = on(torch.randn(*lead, classes, generator=g, dtype=torch.float64) * 3, dtype)
        labels = torch.randint(-1, classes + 1, lead, generator=g)
        labels[::7] = -100
        if case["targets"] == "labels":
            t = on(labels)
        elif case["targets"] == "one-hot":
            t = on((labels.unsqueeze(-1) == torch.arange(classes)).double(), dtype2)
        else:
            t = on(torch.rand(*lead, classes, generator=g, dtype=torch.float64), dtype2)
        if case.get("target_grad") and t.is_floating_point():
            t.requires_grad_()
        w = {
            None: None,
            "row": torch.rand(*lead, generator=g),
            "class": torch.rand(1, classes, generator=g),
            "full": torch.rand(*lead, classes, generator=g),
        }[case["weight"]]
        kwargs = dict(
            alpha=case["alpha"],
            gamma=case["gamma"],
            reduction=case["reduction"],
            weight=None if w is None else on(w, dtype),
        )
        if case["avg_factor"] == "tensor" and case["reduction"] == "mean":
            kwargs["avg_factor"] = on(torch.tensor(7.0))
        if layers and case["reduction"] != "none":
            kwargs["per_layer"] = True
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

        pred, target = on(to_format(pred, case["box_format"]), dtype), on(to_format(target, case["box_format"]), dtype2)
        w = {None: None, "pair": torch.rand(n, generator=g), "coordinate": torch.rand(n, 4, generator=g)}[
            case["weight"]
        ]
        kwargs = dict(
            reduction=case["reduction"], box_format=case["box_format"], weight=None if w is None else on(w, dtype)
        )
        fn = functools.partial(box_loss, case["kind"], case["convention"])
        return fn, [strided(pred, case["contiguous"]), target.requires_grad_(case["target_grad"])], kwargs
    if family == "box_matrix":
        from helpers import to_format

        n, m = case["n"], case["n"] if case["aligned"] else case["m"]
        a = random_boxes(case["batch"] * n, generator=g).reshape(case["batch"], n, 4)
        b = random_boxes(case["batch"] * m, generator=g).reshape(case["batch"], m, 4)
        a, b = on(to_format(a, case["box_format"]), dtype), on(to_format(b, case["box_format"]), dtype2)
        kind = case["kind"] if case["convention"] == "torchvision" or case["kind"] in ("iou", "giou", "iof") else "iou"
        fn = functools.partial(
            box_matrix, kind, case["box_format"], case["convention"], case["aligned"], case["out_dtype"]
        )
        return fn, [strided(a, case["contiguous"]), b.requires_grad_(case["grad"] == "both")], {}
    if family == "balanced_l1":
        n = case["elements"]
        target = torch.randn(n, generator=g, dtype=torch.float64)
        pred = on(target + torch.randn(n, generator=g, dtype=torch.float64) * 1.5, dtype)
        w = {None: None, "full": torch.rand(n, generator=g), "row": torch.rand(1, generator=g)}[case["weight"]]
        kwargs = dict(reduction=case["reduction"], weight=None if w is None else on(w, dtype))
        return fastloss.balanced_l1_loss, [strided(pred, case["contiguous"]), on(target, dtype2)], kwargs
    if family == "quality_focal":
        return quality_call(case, g, on)
    if family == "distribution_focal":
        rows, bins = case["rows"], case["bins"]
        x = on(torch.randn(rows, bins, generator=g, dtype=torch.float64) * 2, dtype)
        t = torch.rand(rows, generator=g, dtype=torch.float64) * (bins - 1)
        t[::7] = 0
        t[3::7] = bins - 1
        kwargs = dict(reduction=case["reduction"])
        if case["weight"] == "row":
            kwargs["weight"] = on(torch.rand(rows, generator=g), dtype)
        if case["target_max"] == "clamp":
            kwargs["target_max"] = bins - 1 - 0.01
        return fastloss.distribution_focal_loss, [x, on(t, dtype)], kwargs
    if family == "compound":
        return compound_call(case, g, on)
    if family == "task_aligned":
        from assign_cases import make

        args = list(
            make(
                batch=case["batch"],
                gts=case["gts"],
                valid=max(case["gts"] - 2, 0),
                classes=case["classes"],
                size=case["size"],
                seed=seed,
                quantized=case["quantized"],
                dtype=dtype,
            )
        )
        if case.get("scenario") == "zero_row" and case["gts"] > 0:
            zero_row(args, case["size"])
        args[1], args[4] = args[1].to(dtype2), args[4].to(case.get("dtype3") or args[4].dtype)
        fn = functools.partial(
            fastloss.task_aligned_assign,
            num_classes=case["classes"],
            topk=case["topk"],
            topk2=None if case["topk2"] is None else min(case["topk2"], case["topk"]),
            sparse=case["sparse"],
        )
        return fn, [on(t) for t in args], {}
    if family == "matching_cost":
        from assign_cases import detr_inputs

        counts = tuple(min(case["targets"], (i * 7) % (case["targets"] + 1)) for i in range(case["batch"]))
        counts = (case["targets"],) + counts[1:]
        args = detr_inputs(
            batch=case["batch"],
            queries=case["queries"],
            classes=case["classes"],
            targets=case["targets"],
            counts=counts,
            layers=case["layers"] or None,
            softmax=case["kind"] == "softmax",
            dtype=dtype,
            seed=seed,
        )
        args = [args[0], args[1].to(dtype2), args[2], args[3].to(case.get("dtype3") or dtype2), args[4]]
        return functools.partial(fastloss.matching_cost, class_cost=case["kind"]), [on(t) for t in args], {}
    shape = (case["n"], case["classes"]) + tuple(case["spatial"])
    x = on(torch.randn(shape, generator=g, dtype=torch.float64) * 2, dtype)
    if case["target"] == "labels":
        t = torch.randint(0, case["classes"], (shape[0],) + shape[2:], generator=g)
        if case["ignore"]:
            t.view(-1)[::6] = 255
        t = on(t)
    else:
        t = on((torch.rand(shape, generator=g) < 0.3).double(), dtype2)
    activation = case["activation"]
    if activation == "none":
        x = on(torch.rand(shape, generator=g, dtype=torch.float64), dtype)
    loss = case["loss"]
    kwargs = dict(
        activation=activation,
        include_background=case["include_background"],
        batch=case["batch"],
        reduction=case["reduction"],
    )
    if case["target"] == "labels" and case["ignore"]:
        kwargs["ignore_index"] = 255
    if loss in ("dice", "jaccard"):
        fn = fastloss.dice_loss
        kwargs.update(squared_pred=case["squared"], jaccard=loss == "jaccard")
    else:
        fn = fastloss.tversky_loss
        kwargs.update(alpha=0.3, beta=0.7, gamma=0.75 if loss == "focal_tversky" else 1.0)
    return fn, [x, t], kwargs


def zero_row(args, size):
    """GT 0 over the first row of anchors, class 0, every anchor's class-0 score 0 but one's (whose
    box is GT 0's): its top-k is one positive, then zero-metric candidates in index order."""
    scores, pd, _, labels, gt, mask = args
    gt[:, 0] = torch.tensor([0.0, 0.0, float(size), 6.0])
    labels[:, 0], mask[:, 0] = 0, 1
    scores[..., 0] = 0
    one = min(3, scores.shape[1] - 1)
    scores[:, one, 0] = 0.9
    pd[:, one] = gt[:, 0]


def quality_call(case, g, on):
    """VFL or QFL on (rows, C) logits (or (L, rows, C) per layer): sparse (labels, scores) or dense
    targets."""
    dtype, rows, classes, layers = case["dtype"], case["rows"], case["classes"], case["layers"]
    lead = (layers, rows) if layers else (rows,)
    x = on(torch.randn(*lead, classes, generator=g, dtype=torch.float64) * 3, dtype)
    labels = torch.randint(-1, classes + 1, lead, generator=g)
    scores = torch.rand(lead, generator=g, dtype=torch.float64)
    scores.view(-1)[::6] = 0
    scores.view(-1)[1::6] = 1
    if case["target"] == "sparse":
        target = (on(labels), on(scores, dtype))
    else:
        target = on((labels.unsqueeze(-1) == torch.arange(classes)).double() * scores.unsqueeze(-1), dtype)
    kwargs = dict(reduction=case["reduction"])
    if case["weight"] == "full":
        kwargs["weight"] = on(torch.rand(*lead, classes, generator=g), dtype)
    if layers and case["reduction"] != "none":
        kwargs["per_layer"] = True
    if case["loss"] == "varifocal":
        if case["target"] == "dense" and case["negative_mask"] == "label":  # (the labelled classes, as a mask)
            kwargs["positive"] = on((labels.unsqueeze(-1) == torch.arange(classes)).double(), dtype)
        return functools.partial(fastloss.varifocal_loss, negative_mask=case["negative_mask"]), [x, target], kwargs
    return functools.partial(fastloss.quality_focal_loss, beta=1.5), [x, target], kwargs


def compound_call(case, g, on):
    """dice_ce_loss / dice_focal_loss (softmax or sigmoid focal) under the family's options."""
    dtype, loss = case["dtype"], case["loss"]
    shape = (case["n"], case["classes"]) + tuple(case["spatial"])
    x = on(torch.randn(shape, generator=g, dtype=torch.float64) * 2, dtype)
    soft = case["target"] == "soft" and loss == "dice_ce"
    kwargs = dict(
        dice=case["dice"],
        batch=case["batch"],
        include_background=case["include_background"],
        reduction=case["reduction"],
    )
    if soft:
        t = on(torch.softmax(torch.randn(shape, generator=g, dtype=torch.float64), 1), dtype)
    else:
        y = torch.randint(0, case["classes"], (shape[0],) + shape[2:], generator=g)
        if case["ignore"]:
            y.view(-1)[::5] = -1
            kwargs["ignore_index"] = -1
        t = on(y)
    if case["dice"] == "tversky":
        kwargs.update(tversky_alpha=0.3, tversky_beta=0.7)
    if loss == "dice_ce":
        kwargs["label_smoothing"] = case["smoothing"]
        return fastloss.dice_ce_loss, [x, t], kwargs
    kwargs["gamma"] = case["gamma"]
    if loss == "dice_focal":
        kwargs["label_smoothing"] = case["smoothing"]
        return fastloss.dice_focal_loss, [x, t], kwargs
    kwargs.update(focal="sigmoid", activation=case["activation"], alpha=0.25)
    return fastloss.dice_focal_loss, [x, t], kwargs


def box_loss(kind, convention, pred, target, reduction, box_format, weight):
    """Any kind of the fused box kernel under any face's convention (bounded_iou: its dx component)."""
    from fastloss.box_iou_loss import _fused

    params = {"mode": "dx", "lambd": 0.2} if kind == "bounded_iou" else {}
    return _fused(kind, pred, target, reduction, 1e-6, weight, None, box_format, convention=convention, **params)


def box_matrix(kind, box_format, convention, aligned, out_dtype, boxes1, boxes2):
    """The pairwise metric kernel under any option, as the faces call it."""
    from fastloss.box_matrix import pairwise

    return pairwise(boxes1, boxes2, kind, box_format, 1e-6, convention, aligned, out_dtype)


def run(fn, tensors, kwargs, grad=True, autocast=None):
    """Loss and the gradients of every tensor that requires grad (tensors[0] always); an op without a
    gradient (the assignment, the matching cost), or grad=False, gives its outputs. autocast: run
    under torch.autocast to that dtype."""
    if autocast is not None:
        with torch.autocast(tensors[0].device.type, dtype=autocast):
            return run(fn, tensors, kwargs, grad)
    if not grad or fn in NO_GRAD or getattr(fn, "func", None) in NO_GRAD:
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


NO_GRAD = {fastloss.task_aligned_assign, fastloss.matching_cost}


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
    assert family in ASSIGNMENTS or all(r.dtype.is_floating_point for r in results)


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
ELEMENTWISE = {"sigmoid_focal", "quality_focal", "box_iou", "balanced_l1"}


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
    if family == "box_matrix" or (family == "matching_cost" and case.get("kind") == "focal"):
        return range(1)  # the matrix (not the gradient: a sum along each row)
    return range(0)


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
    if family == "sigmoid_focal":
        case["targets"] = "labels"
    assert_target_matches_cpu("cuda", family, case)


# ----------------------------------------------------------- every instance the dispatch can reach

SMALL = {
    "sigmoid_focal": dict(rows=257, classes=4),
    "softmax_focal": dict(positions=257, classes=4),
    "box_iou": dict(pairs=300),
    "balanced_l1": dict(elements=1000),
    "overlap": dict(n=2, classes=4, spatial=(33,)),
    "box_matrix": dict(n=31, m=17),
    "quality_focal": dict(rows=257, classes=4),
    "distribution_focal": dict(rows=300),
    "compound": dict(classes=4, spatial=(33,)),
    "task_aligned": dict(gts=12, size=64),
    "matching_cost": dict(queries=20, targets=7),
}


def small(family, **overrides):
    """A small case of the family: each factor's first value, sizes past a block, then `overrides`."""
    return {**{k: v[0] for k, v in PLANS[family].items()}, **SMALL[family], **overrides}


def dtype_sweep(family):
    """Small cases over every combination of the dtypes (and the variants that pick a kernel instance)
    the family's dispatch can reach: the pairwise plans cover pairs, these the full product."""
    pairs = list(itertools.product(FLOATS, FLOATS))
    reductions = ["none", "mean"]
    if family == "sigmoid_focal":
        return [
            small(family, dtype=a, targets="labels", reduction=r, autocast=ac)
            for a in FLOATS
            for r in reductions
            for ac in (None, torch.bfloat16)
        ] + [
            small(family, dtype=a, dtype2=b, targets="soft", target_grad=tg, reduction=r, autocast=ac)
            for a, b in pairs
            for tg in (False, True)
            for r in reductions
            for ac in (None, torch.bfloat16)
        ]
    if family == "softmax_focal":  # the classes pick the lanes per row: 1, 2, 4, 8, 16, 32
        return [
            small(family, dtype=a, classes=c, layout=layout, reduction=r)
            for a in FLOATS
            for c, layout in (
                (1, "rows"),
                (2, "rows"),
                (3, "rows"),
                (5, "rows"),
                (9, "rows"),
                (33, "rows"),
                (5, "spatial"),
            )
            for r in reductions
        ]
    if family == "box_iou":
        return [
            small(family, dtype=a, dtype2=b, reduction=r, target_grad=tg)
            for a, b in pairs
            for tg in (False, True)
            for r in reductions
        ]
    if family == "box_matrix":  # the output's dtype is any, from either math type
        return [small(family, dtype=a, dtype2=b, grad="both") for a, b in pairs] + [
            small(family, dtype=a, out_dtype=o) for a in (torch.float32, torch.float64) for o in FLOATS
        ]
    if family == "balanced_l1":
        return [
            small(family, dtype=a, dtype2=b, reduction=r, grad=gr)
            for a, b in pairs
            for r in reductions
            for gr in (True, False, "twice")
        ]
    if family == "overlap":  # n · chunks ≥ 2 SMs' worth of blocks picks 4 positions per thread
        return [small(family, dtype=a, dtype2=b, target="float", n=n) for a, b in pairs for n in (2, 4)] + [
            small(family, dtype=a, target="labels", n=n) for a in FLOATS for n in (2, 4)
        ]
    if family == "quality_focal":
        return [
            small(family, dtype=a, dtype2=b, target=t, reduction=r)
            for a, b in pairs
            for t in ("sparse", "dense")
            for r in reductions
        ]
    if family == "distribution_focal":
        return [small(family, dtype=a, reduction=r) for a in FLOATS for r in reductions]
    if family == "compound":
        return [
            small(family, dtype=a, loss=loss, n=n) for a in FLOATS for loss in PLANS["compound"]["loss"] for n in (2, 4)
        ]
    if family == "task_aligned":
        return [
            small(family, dtype=a, dtype2=b, dtype3=c, sparse=i % 2 == 1, topk=10, topk2=5 if i % 3 else None)
            for i, (a, b, c) in enumerate(itertools.product(FLOATS, FLOATS, FLOATS))
        ]
    if family == "matching_cost":
        return [small(family, dtype=a, dtype2=b, kind=k) for a, b in pairs for k in ("focal", "softmax")]
    raise KeyError(family)


# Empty inputs: a zero-size dimension of each family's operands.
EMPTY = {
    "sigmoid_focal": [dict(rows=0), dict(classes=0)],
    "softmax_focal": [dict(positions=0)],
    "box_iou": [dict(pairs=0)],
    "balanced_l1": [dict(elements=0)],
    "overlap": [dict(spatial=(0,)), dict(n=0)],
    "box_matrix": [dict(n=0), dict(m=0)],
    "quality_focal": [dict(rows=0)],
    "distribution_focal": [dict(rows=0)],
    "compound": [dict(spatial=(0,))],
    "task_aligned": [dict(gts=0), dict(batch=0)],
    "matching_cost": [dict(queries=0), dict(targets=0)],
}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("family", list(PLANS))
def test_empty_inputs_match_cpu(family, target):
    """Defined results (or the same error) for empty inputs, every reduction."""
    for sizes in EMPTY[family]:
        for reduction in ("none", "mean", "sum"):
            case = small(family, reduction=reduction, **sizes)
            if family == "compound" and reduction == "none":
                continue
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


MID = {
    "sigmoid_focal": mid("sigmoid_focal", rows=70001, classes=80),
    "softmax_focal": mid("softmax_focal", positions=70001, classes=81),
    "box_iou": mid("box_iou", pairs=300001),
    "overlap": mid("overlap", spatial=(64, 64), n=2),
    "balanced_l1": mid("balanced_l1", elements=1_000_001),
    "box_matrix": mid("box_matrix", n=1025, m=4099),
    "quality_focal": mid("quality_focal", rows=70001, classes=80),
    "distribution_focal": mid("distribution_focal", rows=300001, bins=17),
    "compound": mid("compound", spatial=(64, 64), n=2),
    "task_aligned": mid("task_aligned", gts=100, size=640),
    "matching_cost": mid("matching_cost", layers=6, queries=300, targets=100),
}
# (the emulation's: past a few waves of its small device)
EMULATED_MID = {family: fitted(family, case, 4 * EMULATED_LIMIT) for family, case in MID.items()}
DIFFERENTIABLE = [family for family in PLANS if family not in ("task_aligned", "matching_cost")]


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
