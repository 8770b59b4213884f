"""Tiny cases of every op family on a real GPU, for NVIDIA's compute-sanitizer (scripts/gpu_check.sh):

    PYTORCH_NO_CUDA_MEMORY_CACHING=1 compute-sanitizer --tool memcheck --error-exitcode 1 \\
        python scripts/gpu_sanitize.py

(racecheck, synccheck and initcheck likewise). Each family's small case of tests/test_cuda_parity.py,
forward and backward, float32 and float16: every kernel runs at least once, on a few blocks. Without
a GPU it says so and exits 0 (the dry run); the CPU emulation (`make cuda-emulate`) checks the same
kernels there.
"""

import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))


def main():
    if not torch.cuda.is_available():
        print("gpu_sanitize: no GPU here; nothing to run")
        return 0
    import test_cuda_parity as parity

    for family in parity.PLANS:
        for dtype in (torch.float32, torch.float16):
            case = parity.small(family, dtype=dtype, reduction="mean")
            parity.run(*parity.make_call(family, case, "cuda"))
        torch.cuda.synchronize()
        print(f"gpu_sanitize: {family} ran", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
