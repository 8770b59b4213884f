"""SHA-256 digests of the CPU kernels' outputs on the test suite's own inputs: every small case of
the CUDA parity plans (tests/test_cuda_parity.py) and every case of tests/op_cases.py, in each
floating dtype — the loss and the gradient of every input that takes one — and the assigners'
outputs (assignment_cases).

Two sets, per SIMD flavour (tests/test_bitwise.py holds the build to both):
- tests/data/bitwise_pre_port_<flavour>.json: the kernels before the port to the LibTorch stable ABI
  (built against torch 2.14.1's full C++ API with ATen's Vectorized, commit 2cc93d5). The port
  (cpu/simd.h) matches them bit for bit but in the cases listed in tests/data/bitwise_port_drift.json
  (AVX2: 2, AVX-512: 3 — mmdet-convention IoU/GIoU forward, Dice with labels, one softmax focal
  case), whose outputs differ in the last place in a few elements: GCC fuses a·b + c into
  one FMA (C++'s default -ffp-contract=fast) wherever inlining puts the two next to each other,
  and which of two products it fuses is an accident of its statement order. The pre-port build
  itself was not consistent: in the IoU union wp·hp + wt·ht its AVX2 flavour fused the first
  product and its AVX-512 flavour the second (plan box_iou-87, element by element), so no one
  formula reproduces both; math/box_iou.h now fuses the second explicitly (O::fma), which matches
  the pre-port AVX-512 build and gives both flavours (and CUDA) the same union.
- tests/data/bitwise_<flavour>.json: the kernels since the port, bit for bit.

Record (only when a kernel's numbers change on purpose, with the reason in the commit):
    FASTLOSS_CPU_CAPABILITY=avx512 python tests/bitwise.py record
    FASTLOSS_CPU_CAPABILITY=avx2 python tests/bitwise.py record
"""
import hashlib
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))

DATA = os.path.join(os.path.dirname(__file__), "data")
SMALL = 1 << 18  # elements: the plan cases the CPU runs in the suite (test_small_cases_run_on_the_cpu)
DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


def digest(tensors):
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().contiguous().cpu().reshape(-1)
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def cases():
    """(name, thunk) pairs; thunk() gives the tensors to digest."""
    import test_cuda_parity as parity
    from op_cases import CASES

    for family, i, case in parity.ALL_CASES:
        if parity.elements(family, case) <= SMALL:
            yield f"plan {family}-{i}", lambda f=family, c=case: parity.run(*parity.make_call(f, c, "cpu"))
    for case in CASES:
        for dtype in DTYPES:
            def thunk(case=case, dtype=dtype):
                g = torch.Generator().manual_seed(0)
                tensors, kwargs = case.make(257, dtype, "cpu", g)
                return parity.run(case.fn, list(tensors), kwargs)
            yield f"op {case.name} {str(dtype).split('.')[-1]}", thunk
    yield from assignment_cases()


def assignment_cases():
    """The assigners' and matchers' outputs (no gradient): task-aligned assignment in three dtypes, with
    top-k2; the DETR matching cost, focal and softmax, with stacked layers."""
    import fastloss
    from assign_cases import detr_inputs, make

    for dtype in (torch.float16, torch.float32, torch.float64):
        for topk2 in (None, 4):
            def thunk(dtype=dtype, topk2=topk2):
                args = make(batch=2, gts=9, valid=7, seed=3, dtype=dtype)
                return list(fastloss.task_aligned_assign(*args, num_classes=7, topk2=topk2, sparse=topk2 is None))
            yield f"assign task_aligned {str(dtype).split('.')[-1]} topk2={topk2}", thunk
    for dtype in (torch.float16, torch.float32, torch.float64):
        for kind in ("focal", "softmax"):
            def thunk(dtype=dtype, kind=kind):
                args = detr_inputs(layers=2, softmax=kind == "softmax", dtype=dtype, seed=4)
                return [fastloss.matching_cost(*args, class_cost=kind)]
            yield f"match matching_cost {str(dtype).split('.')[-1]} {kind}", thunk


def flavour():
    import fastloss
    return fastloss._backend._CPU.__name__.rsplit("_cpu_", 1)[-1]


def path(name, pre_port=False):
    return os.path.join(DATA, f"bitwise_{'pre_port_' if pre_port else ''}{name}.json")


def compute():
    return {name: digest(thunk()) for name, thunk in cases()}


if __name__ == "__main__":
    if sys.argv[1:] != ["record"]:
        sys.exit(__doc__)
    digests = compute()
    with open(path(flavour()), "w") as f:
        json.dump(digests, f, indent=0, sort_keys=True)
        f.write("\n")
    print("wrote", path(flavour()))
