"""One record per op family (`OpSpec`), declared at the bottom of the family's own module with
`declare`. Everything outside that module that must know the family reads the record:

* registration: the record's `register` (fake kernels, autograd, vmap and autocast rules) runs once,
  when the module is imported with the kernels loaded;
* the guarantees every op is held to (tests/test_guarantees.py through tests/op_cases.py: opcheck,
  gradcheck, compile, determinism, bad input): `cases`;
* the CUDA parity suite (tests/test_cuda_parity.py), the CUDA emulation, the bitwise digests
  (tests/bitwise.py) and the GPU check's family list (scripts/gpu_check.sh): `plan`;
* the benchmark (`python -m fastloss bench`): `bench`, the module of fastloss.bench that registers its
  cases;
* fastloss.nn: `modules`.

So a new loss edits nothing central but its schema line in csrc/ops.cpp and its exported names
(docs/adding-a-loss.md lists its files).
"""

import dataclasses
import itertools
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch

from . import _backend

FLOATS = [torch.float16, torch.bfloat16, torch.float32, torch.float64]  # a plan's dtype factor
DTYPE_PAIRS = list(itertools.product(FLOATS, FLOATS))  # (first operand's, second's): a dtype sweep's
WAVES = 132 * 8 * 256 * 2 + 1  # past two full grid-stride waves of a 132-SM GPU (H200)


@dataclasses.dataclass(frozen=True)
class Case:
    """One small call of a public loss, for the guarantees every op is held to."""

    name: str
    fn: Callable
    ref: Callable  # the pure-torch definition, same signature
    make: Callable  # make(n, dtype, device, generator) -> (tensors, kwargs); tensors[0] differentiable
    # the derivative of the loss is the kernel's only with a factor held constant (CIoU's α,
    # Focal-EIoU's IoU^γ): gradgradcheck against finite differences does not apply
    frozen_factor: bool = False
    unreduced: bool = True  # takes reduction="none" (the compound losses have no unreduced form)

    def __repr__(self):
        return self.name


@dataclasses.dataclass(frozen=True)
class Plan:
    """The family's CUDA parity plan: factors covered pairwise, and how a case becomes a call.

    A case is a dict with one value per factor (plus `dtype2`, `dtype3`, `autocast` and `grad` in the
    dtype sweep). Sizes: `small` (past a block), `mid` (several blocks; float32, "mean"), `large` (past
    the per-case element limit: 32-bit index arithmetic), `empty` (zero-size operands).
    """

    factors: Dict[str, Sequence]
    # call(case, generator, on, seed) -> (fn, tensors, kwargs): tensors[0] gets the gradient; `on(t,
    # dtype=None)` moves a CPU-made tensor to the target device (so CPU and CUDA see the same values)
    call: Callable
    elements: Callable  # elements(case) -> how many elements the kernels touch
    # the size factors halved, in order, to fit a case within a limit: a key, or (key, floor) to stop
    # at floor; a tuple-valued factor (spatial shapes) is halved in every dimension
    shrink: Tuple = ()
    small: Dict = dataclasses.field(default_factory=dict)
    mid: Dict = dataclasses.field(default_factory=dict)
    large: Dict = dataclasses.field(default_factory=dict)
    empty: Tuple[Dict, ...] = ()
    # sweep(small) -> cases: every combination of dtypes and kernel-picking variants the dispatch can
    # reach, made with small(**overrides)
    sweep: Optional[Callable] = None
    differentiable: bool = True  # False: outputs without a gradient (assignments, costs)
    decisions: bool = False  # outputs hold decisions (indices, masks): compared modulo near-ties
    # the element values are bitwise equal on both devices, only the reduction orders differ
    elementwise: bool = False
    # exact_outputs(case) -> how many leading outputs are bitwise equal on both devices (the others:
    # sums across elements, in each device's order), when not elementwise
    exact_outputs: Callable = lambda case: 0


@dataclasses.dataclass(frozen=True)
class OpSpec:
    name: str  # the family: tests/test_<name>.py is its test file
    ops: Tuple[str, ...]  # its schema names in the fastloss namespace (csrc/ops.cpp)
    register: Optional[Callable] = None  # fake kernels, autograd, vmap and autocast rules
    reference: Optional[object] = None  # its module in fastloss.reference
    modules: Tuple[type, ...] = ()  # its torch.nn modules (fastloss.nn exports them)
    cases: Tuple[Case, ...] = ()
    plan: Optional[Plan] = None
    bench: Optional[str] = None  # its module in fastloss.bench


def operand_dtypes(case):
    """A plan case's dtypes of the first and the second operand (targets, boxes2: `dtype2`, default
    the first's)."""
    return case["dtype"], case.get("dtype2") or case["dtype"]


SPECS: Dict[str, OpSpec] = {}


def declare(spec: OpSpec) -> OpSpec:
    """Record `spec` and, with the kernels loaded, register its op rules."""
    if spec.name in SPECS:
        raise AssertionError(f"fastloss: two records named {spec.name!r}")
    SPECS[spec.name] = spec
    if spec.register is not None and _backend._C is not None:
        spec.register()
    return spec


def specs():
    """Every record (complete once `import fastloss` has returned: its modules declare them)."""
    return list(SPECS.values())


def plans():
    return {s.name: s.plan for s in specs() if s.plan is not None}


def cases():
    return [c for s in specs() for c in s.cases]
