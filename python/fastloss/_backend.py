"""Which implementation serves a call: the compiled kernels (fastloss._C) or the pure-torch reference.

FASTLOSS_BACKEND=auto (default) uses the kernels when they load and falls back to the reference with
one warning otherwise; =extension makes a missing extension an ImportError; =reference always uses
the reference.
"""
import os
import platform
import warnings

import torch

_CHOICES = ("auto", "extension", "reference")
BACKEND = os.environ.get("FASTLOSS_BACKEND", "auto").strip().lower() or "auto"
if BACKEND not in _CHOICES:
    raise ValueError(f"FASTLOSS_BACKEND must be one of {', '.join(_CHOICES)}; got {BACKEND!r}")

# The CPU kernels are compiled for AVX2 + FMA + F16C on x86-64 (setup.py); loading them on a CPU
# without those would die of an illegal instruction, so check first.
_X86_FEATURES = ("avx2", "fma", "f16c")


def _missing_cpu_features():
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return []
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), None)
    except OSError:
        return []
    return [] if flags is None else [feat for feat in _X86_FEATURES if feat not in flags]


def _load():
    if BACKEND == "reference":
        return None, "FASTLOSS_BACKEND=reference"
    missing = _missing_cpu_features()
    if missing:
        return None, f"this CPU lacks {', '.join(missing)}, which the kernels are compiled for"
    try:
        from . import _C
    except ImportError as e:
        return None, f"fastloss._C could not be imported ({e})"
    return _C, None


_C, unavailable_reason = _load()
if _C is None and BACKEND == "extension":
    raise ImportError(f"FASTLOSS_BACKEND=extension, but {unavailable_reason}")
if _C is None and BACKEND == "auto":
    warnings.warn(
        f"fastloss: compiled kernels unavailable: {unavailable_reason}; using the pure-torch reference "
        "implementation (slower, more memory). Build with `pip install --no-build-isolation .`.",
        RuntimeWarning,
        stacklevel=2,
    )

_warned_no_cuda = False


def use_kernels(device: torch.device) -> bool:
    """True when the compiled kernels serve tensors on `device`; False means use the reference."""
    global _warned_no_cuda
    if _C is None:
        return False
    if device.type == "cuda" and not _C.cuda_compiled:
        if not _warned_no_cuda:
            warnings.warn(
                "fastloss was built without CUDA kernels (rebuild with FASTLOSS_CUDA=1); CUDA tensors use "
                "the pure-torch reference implementation",
                RuntimeWarning,
                stacklevel=3,
            )
            _warned_no_cuda = True
        return False
    return device.type in ("cpu", "cuda", "meta")


def info() -> dict:
    """Build facts, for `python -m fastloss info` and the tests."""
    return {
        "backend": "kernels" if _C is not None else "reference",
        "unavailable_reason": unavailable_reason,
        "cuda_compiled": bool(_C is not None and _C.cuda_compiled),
        "cuda_archs": _C.cuda_archs if _C is not None else "",
        "cpu_capability": _C.cpu_capability if _C is not None else "",
    }
