"""Throughput of fastloss's exp, expm1, log, log1p, pow, atan2, sin and cos (csrc/math/elementary.h) beside
torch's vectorised ones, one thread, in one run, as elements per nanosecond (higher is faster):

    python scripts/math_speed.py [build/math/accuracy]

The fastloss column comes from `tests/math/accuracy.cpp speed` (built by `make math-exhaustive`, or
built here into build/math/ with this CPU's widest flags); torch's from the same inputs' ranges,
16 KiB of float (8 KiB of double) elements in cache, best of 20 rounds of 50 calls.
"""

import os
import re
import subprocess
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def harness(path):
    if not os.path.exists(path):
        flags = subprocess.run(
            ["make", "-s", "-C", ROOT, "--no-print-directory", "print-math-flags"], capture_output=True, text=True
        ).stdout.split()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        subprocess.run(
            [
                "g++",
                "-std=c++20",
                "-O2",
                "-ffp-contract=off",
                *flags,
                "-I",
                os.path.join(ROOT, "csrc"),
                os.path.join(ROOT, "tests", "math", "accuracy.cpp"),
                "-o",
                path,
                "-pthread",
            ],
            check=True,
        )
    out = subprocess.run([path, "speed"], capture_output=True, text=True, check=True).stdout
    return {
        (m.group(1), m.group(2)): float(m.group(3)) for m in re.finditer(r"^speed (\w+) (\w+) ([0-9.]+)", out, re.M)
    }


def torch_speed(dtype):
    n = 65536 // torch.tensor([], dtype=dtype).element_size()
    g = torch.Generator().manual_seed(0)
    pos = torch.rand(n, generator=g, dtype=torch.float64).mul(10).add(1e-3).to(dtype)
    any_ = torch.rand(n, generator=g, dtype=torch.float64).sub(0.5).mul(20).to(dtype)
    small = torch.rand(n, generator=g, dtype=torch.float64).mul(4).to(dtype)
    out = torch.empty(n, dtype=dtype)
    calls = {
        "exp": lambda: torch.exp(any_, out=out),
        "expm1": lambda: torch.expm1(any_, out=out),
        "log": lambda: torch.log(pos, out=out),
        "log1p": lambda: torch.log1p(pos, out=out),
        "pow": lambda: torch.pow(pos, small, out=out),
        "atan2": lambda: torch.atan2(any_, pos, out=out),
        "sin": lambda: torch.sin(any_, out=out),
        "cos": lambda: torch.cos(any_, out=out),
    }
    result = {}
    for name, call in calls.items():
        best = 0.0
        for _ in range(20):
            t0 = time.perf_counter_ns()
            for _ in range(50):
                call()
            best = max(best, 50 * n / (time.perf_counter_ns() - t0))
        result[name] = best
    return result


def main(path):
    torch.set_num_threads(1)
    ours = harness(path)
    print(
        f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}; elements/ns, one thread"
    )
    print("| function | float: fastloss | float: torch | double: fastloss | double: torch |")
    print("|---|---|---|---|---|")
    theirs = {t: torch_speed(d) for t, d in (("float", torch.float32), ("double", torch.float64))}
    for name in ("exp", "expm1", "log", "log1p", "pow", "atan2", "sin", "cos"):
        print(
            f"| {name} | {ours['float', name]:.2f} | {theirs['float'][name]:.2f} | "
            f"{ours['double', name]:.2f} | {theirs['double'][name]:.2f} |"
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "math", "accuracy"))
