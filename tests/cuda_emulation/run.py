"""`make cuda-emulate`: every CUDA kernel of csrc/cuda executed on the CPU, twice, each step timed.

1. `tsan`: ThreadSanitizer, 32-lane warps — tests/test_cuda_parity.py (every op family: the pairwise
   plans and every dtype combination the dispatch reaches, against the CPU kernels) and
   tests/test_cuda_emulation.py (three thread schedules, two call histories, the seeded defects);
2. `asan64`: AddressSanitizer + UBSan, 64-lane warps (ROCm's wavefront) — test_cuda_parity.py.

Each run prints `kernels launched: N of M` over every __global__ template instance of its build and
fails unless N = M. Any sanitizer report, barrier, mask or launch error fails it.

    python tests/cuda_emulation/run.py [pytest arguments...]
"""

import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import build  # noqa: E402

# (variant, test files, pytest-xdist workers): TSAN's run is about twice ASAN's, so it takes two
# workers and the three processes share the machine's cores; the launch counts add up over workers
RUNS = [
    ("tsan", ["tests/test_cuda_parity.py", "tests/test_cuda_emulation.py"], 2),
    ("asan64", ["tests/test_cuda_parity.py"], 0),
]


def main(extra):
    """Builds both variants, then runs their tests side by side (each is one CPU thread: fibers), and
    prints each run's output when it ends."""
    start = time.time()
    runs = []
    for variant, files, workers in RUNS:
        t0 = time.time()
        library = build.build(variant)
        print(f"=== cuda-emulate: {variant} built in {time.time() - t0:.0f} s", flush=True)
        env = {
            **os.environ,
            **build.environment(variant, library),
            "FASTLOSS_EMU_COVERAGE": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        # -s: a sanitizer report ends the process at once, and must not die in pytest's capture
        command = [
            sys.executable,
            "-m",
            "pytest",
            *files,
            "-m",
            "emulation",
            "-q",
            "-s",
            "-p",
            "no:cacheprovider",
            *(["-n", str(workers)] if workers else []),
            *extra,
        ]
        runs.append((variant, command, env))
    t0 = time.time()
    logs, processes = {}, {}
    for variant, command, env in runs:
        logs[variant] = open(os.path.join(os.path.dirname(build.library_path(variant)), "tests.log"), "w+")
        processes[variant] = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=logs[variant], stderr=subprocess.STDOUT
        )
    failed = []
    for variant, process in processes.items():
        code = process.wait()
        logs[variant].seek(0)
        print(
            f"=== cuda-emulate: {variant} tests ({'passed' if code == 0 else 'FAILED'}, "
            f"{time.time() - t0:.0f} s since they started)\n{logs[variant].read()}",
            flush=True,
        )
        if code != 0:
            failed.append(variant)
    if failed:
        sys.exit(f"cuda-emulate: the {', '.join(failed)} run failed")
    print(f"=== cuda-emulate passed in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
