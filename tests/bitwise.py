"""SHA-256 digests of the CPU kernels' outputs on the test suite's own inputs: every small case of
the CUDA parity plans (tests/test_cuda_parity.py) and every case of the op records (tests/op_cases.py), in each
floating dtype — the loss and the gradient of every input that takes one — and the assigners'
outputs (assignment_cases).

One set for every SIMD flavour, tests/data/bitwise.json: tests/test_bitwise.py holds the loaded
build to it, bit for bit (CI runs the suite with the AVX-512 and the AVX2 kernels). The flavours agree
because nothing in the kernels depends on the vector width: the same math functions
(math/elementary.h), no contracted a·b + c (-ffp-contract=off), divisions rather than reciprocal
estimates, and every sum across lanes kept in 64 bytes of lanes (cpu::Wide).

Record (only when a kernel's numbers change on purpose, with the reason in the commit):
    python tests/bitwise.py record
"""

import hashlib
import json
import os
import sys
from typing import NamedTuple

import torch
from torch.utils._python_dispatch import TorchDispatchMode

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
    from fastloss._inputs import assigner_inputs as make, detr_inputs

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


class Call(NamedTuple):
    op: object  # the torch.ops.fastloss overload
    args: list  # its arguments before the call (tensors cloned: ops may write)
    results: list  # its returned tensors
    written: list  # (index, value after the call) of each argument it writes (schema `Tensor(a!)`)


class Recorder(TorchDispatchMode):
    """Records every fastloss op dispatched while active."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.namespace != "fastloss":
            return func(*args, **kwargs)
        assert not kwargs, func
        before = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
        out = func(*args)
        returned = list(out) if isinstance(out, (tuple, list)) else [] if out is None else [out]
        written = [
            (i, a.clone())
            for i, (a, spec) in enumerate(zip(args, func._schema.arguments))
            if spec.alias_info is not None and spec.alias_info.is_write
        ]
        self.calls.append(Call(func, before, [r.clone() for r in returned], written))
        return out


def recorded_calls():
    """Every call of a fastloss op that the cases make (forward and backward), in order."""
    recorder = Recorder()
    with recorder:
        for _, thunk in cases():
            thunk()
    return recorder.calls


def flavour():
    import fastloss

    return fastloss._backend._CPU.__name__.rsplit("_cpu_", 1)[-1]


PATH = os.path.join(DATA, "bitwise.json")


def compute():
    return {name: digest(thunk()) for name, thunk in cases()}


if __name__ == "__main__":
    if sys.argv[1:] != ["record"]:
        sys.exit(__doc__)
    digests = compute()
    with open(PATH, "w") as f:
        json.dump(digests, f, indent=0, sort_keys=True)
        f.write("\n")
    print("wrote", PATH, "with the", flavour(), "kernels")
