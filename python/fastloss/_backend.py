"""Which implementation serves a call: the compiled kernels (fastloss._C and one fastloss._cpu_<flavour>)
or the pure-torch reference.

FASTLOSS_BACKEND=auto (default) uses the kernels when they load and falls back to the reference with
one warning otherwise; =extension makes a missing extension an ImportError; =reference always uses
the reference.
"""
import importlib
import os
import platform
import warnings

import torch

_CHOICES = ("auto", "extension", "reference")
BACKEND = os.environ.get("FASTLOSS_BACKEND", "auto").strip().lower() or "auto"
if BACKEND not in _CHOICES:
    raise ValueError(f"FASTLOSS_BACKEND must be one of {', '.join(_CHOICES)}; got {BACKEND!r}")

# The CPU kernels are compiled once per SIMD flavour (setup.py); the best one this CPU runs is loaded
# (FASTLOSS_CPU_CAPABILITY=avx2 picks a lower one). Loading a flavour the CPU lacks would die of an
# illegal instruction, so the CPU's features are checked first.
_X86_FLAVOURS = {  # best first
    "avx512": ("avx512f", "avx512bw", "avx512vl", "avx512dq", "avx2", "fma", "f16c"),
    "avx2": ("avx2", "fma", "f16c"),
}
CPU_CAPABILITY_REQUEST = os.environ.get("FASTLOSS_CPU_CAPABILITY", "").strip().lower()


def _cpu_flavours(core):
    """The CPU kernel flavours this CPU can run, best first, and why the others are out. The CPU's
    features come from the CPU itself (cpuid, in fastloss._C), never guessed."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return ["default"], ""
    flags = set(core.cpu_features.split())
    usable = [name for name, needed in _X86_FLAVOURS.items() if all(f in flags for f in needed)]
    return usable, "" if usable else "this CPU lacks avx2, fma or f16c, which the CPU kernels need"


def _load_cpu(core):
    usable, why = _cpu_flavours(core)
    if CPU_CAPABILITY_REQUEST:
        if CPU_CAPABILITY_REQUEST not in usable:
            return None, f"FASTLOSS_CPU_CAPABILITY={CPU_CAPABILITY_REQUEST} is not one this CPU runs ({usable})"
        usable = [CPU_CAPABILITY_REQUEST]
    for flavour in usable:
        try:
            return importlib.import_module(f"{__package__}._cpu_{flavour}"), None
        except ImportError as e:
            why = f"fastloss._cpu_{flavour} could not be imported ({e})"
    return None, why


def _load():
    if BACKEND == "reference":
        return None, None, "FASTLOSS_BACKEND=reference"
    try:
        from . import _C
    except ImportError as e:
        return None, None, f"fastloss._C could not be imported ({e})"
    cpu, why = _load_cpu(_C)
    return _C, cpu, why


_C, _CPU, unavailable_reason = _load()
if (_C is None or _CPU is None) and BACKEND == "extension":
    raise ImportError(f"FASTLOSS_BACKEND=extension, but {unavailable_reason}")
if (_C is None or _CPU is None) and BACKEND == "auto":
    warnings.warn(
        f"fastloss: compiled {'CPU ' if _C is not None else ''}kernels unavailable: {unavailable_reason}; using the "
        "pure-torch reference implementation (slower, more memory). Build with `pip install --no-build-isolation .`.",
        RuntimeWarning,
        stacklevel=2,
    )

_warned_no_cuda = False


def use_kernels(device: torch.device) -> bool:
    """True when the compiled kernels serve tensors on `device`; False means use the reference."""
    global _warned_no_cuda
    if _C is None:
        return False
    if device.type == "cpu":
        return _CPU is not None
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
        "backend": "kernels" if _C is not None and _CPU is not None else "reference",
        "unavailable_reason": unavailable_reason,
        "cuda_compiled": bool(_C is not None and _C.cuda_compiled),
        "cuda_archs": _C.cuda_archs if _C is not None else "",
        "cpu_capability": _CPU.cpu_capability if _CPU is not None else "",
    }
