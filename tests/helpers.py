"""Shared by every test file: devices, dtypes and their tolerances, comparisons, peers."""

import importlib
import os

import pytest
import torch

from fastloss._inputs import random_boxes, to_format  # noqa: F401  (the tests' names for them)
from fastloss._tolerance import TOLERANCES

HAS_CUDA = torch.cuda.is_available()
# CPU always; CUDA where a GPU is present (the CUDA variants skip without one).
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU"))]
FLOAT_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
HALF_DTYPES = [torch.float16, torch.bfloat16]


def logits(*shape, device="cpu", dtype=torch.float64, scale=3.0):
    return (torch.randn(*shape, dtype=torch.float64) * scale).to(device=device, dtype=dtype)


def labels_for(shape, classes, device="cpu"):
    """Labels in [-1, classes]: positives, background (= classes) and -1 (also all-negative)."""
    return torch.randint(-1, classes + 1, shape, device=device)


def one_hot(labels, classes, dtype):
    return (labels.unsqueeze(-1) == torch.arange(classes, device=labels.device)).to(dtype)


def assert_close(got, want, dtype=None, rtol=None, atol=None):
    """got ≈ want with the tolerance of `dtype` (default: got's dtype); want may be more precise."""
    dtype = dtype or got.dtype
    default_rtol, default_atol = TOLERANCES[dtype]
    torch.testing.assert_close(
        got.double(),
        want.double(),
        rtol=default_rtol if rtol is None else rtol,
        atol=default_atol if atol is None else atol,
        equal_nan=False,
    )


def loss_and_grads(fn, tensors, **kwargs):
    """fn(*tensors, **kwargs) and the gradients of its sum w.r.t. each tensor that requires grad."""
    leaves = [t.detach().clone().requires_grad_(t.requires_grad) for t in tensors]
    loss = fn(*leaves, **kwargs)
    wanted = [t for t in leaves if t.requires_grad]
    grads = torch.autograd.grad(loss.sum(), wanted, allow_unused=True) if wanted else []
    return loss.detach(), grads


# Peers (torchvision, MONAI, hypothesis) are required: a missing one is an import error, so CI can
# never skip their tests silently. Two environments name the exceptions:
#   FASTLOSS_TESTS_OPTIONAL_PEERS=1 — scripts/gpu_check.sh's bare GPU machine: any peer may be missing;
#   FASTLOSS_TESTS_MISSING_PEERS=torchvision — CI's second-torch job: PyPI's torchvision is built for
#     its own torch and cannot be imported next to another one.
# A peer that is installed but fails to import (RuntimeError: built for another torch) counts as missing.
OPTIONAL_PEERS = os.environ.get("FASTLOSS_TESTS_OPTIONAL_PEERS") == "1"
MISSING_PEERS = {m for m in os.environ.get("FASTLOSS_TESTS_MISSING_PEERS", "").split(",") if m}
_WHY_MISSING = {}


def peer(module):
    """The imported module, or None where that peer may be missing and is."""
    try:
        return importlib.import_module(module)
    except (ImportError, RuntimeError) as e:
        if not (OPTIONAL_PEERS or module.split(".")[0] in MISSING_PEERS):
            raise
        _WHY_MISSING[module] = f"{type(e).__name__}: {e}".splitlines()[0]
        return None


def needs(module):
    present = peer(module) is not None
    return pytest.mark.skipif(
        not present,
        reason=f"{module} cannot be imported next to torch {torch.__version__} ({_WHY_MISSING.get(module, '')})",
    )
