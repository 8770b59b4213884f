"""Comparison tolerances per dtype, shared by `python -m fastloss check` and the tests."""

import torch

# (rtol, atol): the kernels compute in float32 (float64 for float64), so half types differ from the
# reference by their own rounding of inputs and outputs.
TOLERANCES = {
    torch.float64: (1e-10, 1e-12),
    torch.float32: (1e-5, 1e-6),
    torch.float16: (5e-3, 1e-3),
    torch.bfloat16: (3e-2, 1e-2),
}


def tolerance(dtype):
    return TOLERANCES[dtype]
