"""Fuzz every fastloss op through torch.ops.fastloss.* directly, past the Python layer's checks:

    python scripts/fuzz_ops.py [--seconds 180] [--seed 0] [--replay N]

The corpus is every call of a fastloss op that the bitwise cases make (tests/bitwise.py: the test
suite's own inputs, forward and backward, all ops and options), recorded once. Each iteration takes
one recorded call and mutates it: tensors get other dtypes, shapes (also empty ones), strides (0,
transposed, gaps), storage offsets, flips, hostile values (NaN, ±inf, labels from −2^63 to 2^63−1),
or are dropped (None) or added; enum codes, floats and flags get out-of-range or special values.
The op must either return or raise a plain Python error (RuntimeError, ValueError, TypeError,
IndexError, OverflowError, NotImplementedError); anything else fails the run. Under the sanitizer
build (scripts/sanitize.sh) any out-of-bounds access or undefined behaviour ends the process with
the sanitizer's report. Iteration i depends on (seed, i) only: `--replay N`, N the last iteration
number printed (every 20,000), runs from there describing each call before it is made, so the last
description before a report is the call that caused it.
"""

import argparse
import math
import os
import random
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

ALLOWED = (RuntimeError, ValueError, TypeError, IndexError, OverflowError, NotImplementedError)
MAX_ELEMENTS = 1 << 14  # per mutated tensor: many calls per second, little memory under ASAN
DTYPES = [
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
    torch.int64,
    torch.int32,
    torch.uint8,
    torch.bool,
]
INTS = [-(2**63), -(2**31), -101, -100, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 100, 2**31 - 1, 2**31, 2**63 - 1]
FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 1e-30, 1e30, -1e30, math.inf, -math.inf, math.nan]
SPECIAL = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1e30, -1e30, 6e4, 1e-40]


def corpus():
    """The recorded calls (tests/bitwise.py), by op name."""
    import bitwise

    by_op = {}
    for call in bitwise.recorded_calls():
        by_op.setdefault(op_name(call.op), []).append((call.op, call.args))
    return by_op


def random_shape(rng, like):
    dims = rng.choice([0, 1, 2, 3, 4, len(like), len(like)])
    shape = [rng.choice([0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33]) for _ in range(dims)]
    while math.prod(shape) > MAX_ELEMENTS:
        shape[rng.randrange(len(shape))] //= 2
    return shape


def fill(rng, shape, dtype):
    if dtype == torch.bool:
        return torch.rand(shape) < 0.5
    if dtype.is_floating_point:
        return (torch.randn(shape, dtype=torch.float64) * rng.choice([0.1, 3.0, 1e4])).to(dtype)
    return torch.randint(-3, 10, shape).to(dtype)


def strided_copy(rng, t):
    """The same values in a view with gaps, a storage offset and (some) zero strides."""
    if t.dim() == 0 or t.numel() == 0:
        return t
    sizes = list(t.shape)
    zero = [rng.random() < 0.2 and s == 1 for s in sizes]
    strides, step = [0] * len(sizes), rng.choice([1, 2, 3])
    for d in reversed(range(len(sizes))):
        strides[d] = 0 if zero[d] else step
        step *= sizes[d] + rng.choice([0, 0, 1, 5])
    offset = rng.choice([0, 1, 7])
    base = torch.zeros(offset + sum((s - 1) * st for s, st in zip(sizes, strides)) + 1, dtype=t.dtype)
    view = base.as_strided(sizes, strides, offset)
    view.copy_(t)
    return view


def mutate_tensor(rng, t):
    kind = rng.randrange(10)
    if kind == 0:
        return t.to(rng.choice(DTYPES))
    if kind == 1:
        return strided_copy(rng, t)
    if kind == 2 and t.dim() >= 1:
        d = rng.randrange(t.dim())
        return t.narrow(d, 0, 1).expand(t.shape) if t.shape[d] > 0 else t
    if kind == 3 and t.dim() >= 1:
        return t.flip(rng.randrange(t.dim()))
    if kind == 4 and t.dim() >= 2:
        return t.transpose(-1, -2)
    if kind == 5:
        return fill(rng, random_shape(rng, t.shape), t.dtype)
    if kind == 6 and t.dim() >= 1:
        return t.narrow(rng.randrange(t.dim()), 0, 0)
    if kind == 7 and t.numel():
        t = t.clone(memory_format=torch.contiguous_format)
        flat = t.view(-1)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(flat.numel())
            if t.dtype.is_floating_point:
                flat[i] = rng.choice(SPECIAL)
            elif t.dtype == torch.bool:
                flat[i] = not flat[i]
            else:
                info = torch.iinfo(t.dtype)
                flat[i] = min(max(rng.choice(INTS), info.min), info.max)
        return t
    if kind == 8 and t.dim() >= 1:
        return t.unsqueeze(rng.randrange(t.dim() + 1))
    if kind == 9 and t.numel() > 1:
        return t.reshape(-1)
    return t


def mutate(rng, args):
    args = list(args)
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(args))
        a = args[i]
        if isinstance(a, torch.Tensor):
            args[i] = None if rng.random() < 0.05 else mutate_tensor(rng, a)
        elif a is None:
            args[i] = fill(rng, random_shape(rng, [3]), rng.choice(DTYPES))
        elif isinstance(a, bool):
            args[i] = not a
        elif isinstance(a, int):
            args[i] = rng.choice(INTS + [a])
        elif isinstance(a, float):
            args[i] = rng.choice(FLOATS + [a])
    return args


def describe(func, args):
    def one(a):
        if isinstance(a, torch.Tensor):
            return f"Tensor({a.dtype}, {tuple(a.shape)}, stride={a.stride()}, offset={a.storage_offset()})"
        return repr(a)

    return f"{func}({', '.join(one(a) for a in args)})"


def op_name(func):
    return func._schema.name.split("::")[-1]


def run_unchecked(calls, seed, i):
    """Iteration i's call, not made: an op drawn uniformly (the corpus has far more box calls than
    others), one of its recorded calls, mutated."""
    rng = random.Random(f"{seed}:{i}")
    torch.manual_seed(rng.randrange(2**63))  # (fill() draws from torch's generator)
    ops = sorted(calls)
    func, args = rng.choice(calls[rng.choice(ops)])
    return func, mutate(rng, args), None


def run(calls, seed, i):
    func, args, _ = run_unchecked(calls, seed, i)
    try:
        func(*args)
        return func, args, None
    except ALLOWED as e:
        return func, args, e


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=180)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--replay", type=int, default=None, help="start at iteration N and describe each call before making it"
    )
    a = p.parse_args()
    calls = corpus()
    print(
        f"fuzz: {sum(map(len, calls.values()))} recorded calls of {len(calls)} ops: "
        f"{', '.join(f'{name} ({len(c)})' for name, c in sorted(calls.items()))}",
        flush=True,
    )
    first = a.replay or 0
    start, i, raised, per_op = time.monotonic(), first, 0, {}
    while time.monotonic() - start < a.seconds:
        if a.replay is not None:
            print(f"fuzz: iteration {i}: {describe(*run_unchecked(calls, a.seed, i)[:2])}", flush=True)
        elif i % 20000 == 0:
            print(f"fuzz: iteration {i}", flush=True)
        # (a crash inside the op ends the process here, with the sanitizer's report: --replay with
        # the last iteration printed names the call)
        try:
            func, _, error = run(calls, a.seed, i)
        except Exception:
            func, args, _ = run_unchecked(calls, a.seed, i)
            print(f"fuzz: iteration {i} raised an error that is not a plain Python one: {describe(func, args)}")
            raise
        per_op[op_name(func)] = per_op.get(op_name(func), 0) + 1
        raised += error is not None
        i += 1
    counts = ", ".join(f"{name} {n}" for name, n in sorted(per_op.items()))
    print(
        f"fuzz: {i - first} mutated calls in {a.seconds:.0f} s ({raised} raised a Python error, the rest returned); "
        f"per op: {counts}"
    )
    registered = {s.name.split("::")[-1] for s in torch._C._jit_get_all_schemas() if s.name.startswith("fastloss::")}
    missing = sorted(registered - set(per_op))
    if missing:
        sys.exit(f"fuzz: ops never called: {missing}")


if __name__ == "__main__":
    main()
