"""One small call of every kernel-backed public loss, for the tests that hold every op to the same
guarantees (tests/test_guarantees.py): every op record's `cases` (fastloss._spec; each op module
declares its own).

A case makes (tensors, kwargs) for fn(*tensors, **kwargs): tensors[0] is the differentiable input
(logits, predicted boxes); `n` scales the leading size so tests can change shapes.
"""

import torch

import fastloss  # noqa: F401  (its modules declare the records)
from fastloss._spec import cases

CASES = cases()


def make(case, n=7, dtype=torch.float64, device="cpu", seed=0, grad=True):
    """The case's tensors (the first requiring grad) and kwargs."""
    g = torch.Generator().manual_seed(seed)
    tensors, kwargs = case.make(n, dtype, device, g)
    if grad:
        tensors = (tensors[0].requires_grad_(),) + tuple(tensors[1:])
    return tensors, kwargs
