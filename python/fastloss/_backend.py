"""Which implementation serves a call: the compiled kernels (fastloss._C, one fastloss._cpu_<flavour>
and, under a CUDA torch, fastloss._cuda) or the pure-torch reference — and loud, plain errors whenever
the kernels cannot serve.

The binaries use only the LibTorch stable ABI of torch 2.10, so they load into every torch since
2.10: an older torch is an ImportError saying so, and so is a CUDA torch of another CUDA major than
the CUDA kernels were built for. Under a CPU-only torch a CUDA build loads its CPU kernels; the CUDA
kernels are then unavailable (`python -m fastloss info` says why). The reference serves only when
asked (FASTLOSS_BACKEND=reference) or in a source checkout that was never built (no compiled library
at all: one warning); FASTLOSS_BACKEND=extension makes even the unbuilt checkout an error. At the
first call on a CUDA device, a build without CUDA kernels, or without code for that GPU's
architecture, is a RuntimeError saying so — never a quiet fallback or a raw CUDA error.
"""

import contextlib
import glob
import importlib
import os
import platform
import warnings

import torch

_CHOICES = ("auto", "extension", "reference")
BACKEND = os.environ.get("FASTLOSS_BACKEND", "auto").strip().lower() or "auto"
if BACKEND not in _CHOICES:
    raise ValueError(f"FASTLOSS_BACKEND must be one of {', '.join(_CHOICES)}; got {BACKEND!r}")

CPU_CAPABILITY_REQUEST = os.environ.get("FASTLOSS_CPU_CAPABILITY", "").strip().lower()
_HERE = os.path.dirname(os.path.abspath(__file__))
REBUILD = "pip install --no-build-isolation --force-reinstall --no-deps <fastloss source or sdist>"


def _build_info():
    try:
        from . import _build_info as info
    except ImportError:
        return None
    return info


def _version():
    info = _build_info()
    from ._version import __version__

    return info.VERSION if info is not None else __version__


def _compiled(name):
    return glob.glob(os.path.join(_HERE, f"{name}.*so")) + glob.glob(os.path.join(_HERE, f"{name}.*pyd"))


def _built_fact(name):
    """A build fact (build_facts.mk) the build wrote into _build_info.py; None in an unbuilt checkout."""
    info = _build_info()
    return getattr(info, name, None) if info is not None else None


MIN_TORCH = _built_fact("MIN_TORCH")  # the stable ABI the binaries target (TORCH_TARGET_VERSION)
# The CPU kernels are compiled once per SIMD flavour (setup.py); the best one this CPU runs is loaded
# (FASTLOSS_CPU_CAPABILITY=avx2 picks a lower one). Loading a flavour the CPU lacks would die of an
# illegal instruction, so the CPU's features are checked first: each flavour's, best first.
_X86_FLAVOURS = _built_fact("X86_FLAVOUR_CPU_FEATURES") or {}


def _version_tuple(version):
    return tuple(int(p) for p in version.split("+")[0].split(".")[:2])


def _cuda_major(version):
    return version.split(".")[0] if version else None


def check_torch(running_torch=torch.__version__):
    """An ImportError for a torch older than the stable ABI the binaries target."""
    if MIN_TORCH is None:  # binaries without the facts of this source's build (an older build in place)
        raise ImportError(f"fastloss/_build_info.py lacks the build facts of this source: rebuild ({REBUILD})")
    if _version_tuple(running_torch) < MIN_TORCH:
        raise ImportError(
            f"fastloss {_version()} needs torch {MIN_TORCH[0]}.{MIN_TORCH[1]} or later (its kernels "
            f"use the LibTorch stable ABI of torch {MIN_TORCH[0]}.{MIN_TORCH[1]}); this is torch "
            f"{running_torch}. Upgrade torch: pip install 'torch>={MIN_TORCH[0]}.{MIN_TORCH[1]}'"
        )


def check_cuda_major(built_cuda, running_cuda=torch.version.cuda):
    """An ImportError when the CUDA kernels were built for another CUDA major than this torch's."""
    if built_cuda and running_cuda and _cuda_major(built_cuda) != _cuda_major(running_cuda):
        raise ImportError(
            f"fastloss {_version()}'s CUDA kernels were built for CUDA {_cuda_major(built_cuda)} "
            f"(CUDA {built_cuda}); this torch {torch.__version__} uses CUDA {running_cuda}. Install the "
            f"fastloss wheel for CUDA {_cuda_major(running_cuda)} (local version "
            f"+cu{_cuda_major(running_cuda)}0) or rebuild against this torch: {REBUILD}"
        )


def _cannot_load(name, error):
    info = _build_info()
    built = info.TORCH if info is not None else "an unknown torch"
    return ImportError(
        f"fastloss {_version()}: the compiled library fastloss.{name} is present but cannot be "
        f"loaded ({error}). It was built with torch {built}; this is torch {torch.__version__}. "
        f"Reinstall it or rebuild: {REBUILD}"
    )


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
            raise ImportError(
                f"FASTLOSS_CPU_CAPABILITY={CPU_CAPABILITY_REQUEST} is not a CPU kernel flavour this CPU "
                f"runs (it runs: {', '.join(usable) or 'none'})"
            )
        usable = [CPU_CAPABILITY_REQUEST]
    if not usable:
        raise ImportError(f"fastloss: {why}; set FASTLOSS_BACKEND=reference to use the pure-torch implementation")
    built = [f for f in usable if _compiled(f"_cpu_{f}")] or usable  # (FASTLOSS_CPU_FLAVOURS builds a subset)
    name = f"_cpu_{built[0]}"
    try:
        return importlib.import_module(f"{__package__}.{name}")
    except ImportError as e:
        raise _cannot_load(name, e) from e


def _load_cuda():
    """fastloss._cuda under a CUDA torch of the build's CUDA major; (None, why) otherwise."""
    if not _compiled("_cuda"):
        return None, "this build has no CUDA kernels"
    if torch.version.cuda is None:
        return None, f"this torch ({torch.__version__}) is CPU-only"
    info = _build_info()
    check_cuda_major(info.CUDA if info is not None else None)
    try:
        return importlib.import_module(f"{__package__}._cuda"), ""
    except ImportError as e:
        raise _cannot_load("_cuda", e) from e


def _load():
    if BACKEND == "reference":
        return None, None, None, "FASTLOSS_BACKEND=reference", ""
    try:
        from . import _C
    except ImportError as e:
        if _compiled("_C") or BACKEND == "extension":
            raise (
                _cannot_load("_C", e)
                if _compiled("_C")
                else ImportError(f"FASTLOSS_BACKEND=extension, but fastloss._C is not built ({e})")
            ) from e
        return None, None, None, f"fastloss._C is not built ({e})", ""
    check_torch()
    cpu = _load_cpu(_C)
    cuda, cuda_reason = _load_cuda()
    return _C, cpu, cuda, None, cuda_reason


_C, _CPU, _CUDA, unavailable_reason, cuda_unavailable_reason = _load()
if _C is None and BACKEND == "auto":
    warnings.warn(
        f"fastloss: {unavailable_reason}: this source checkout was never built, so the pure-torch reference "
        "implementation serves (slower, more memory). Build with `pip install --no-build-isolation .`.",
        RuntimeWarning,
        stacklevel=2,
    )

_checked_cuda_devices = set()


def _arch_runs(archs, capability):
    """True when code built for `archs` (TORCH_CUDA_ARCH_LIST: "8.6;9.0+PTX") runs on a GPU of
    `capability` (major, minor): machine code for the same major and a minor not above it, or PTX
    for a capability not above it (the driver compiles it)."""
    for arch in archs.replace(",", ";").replace(" ", ";").split(";"):
        if not arch:
            continue
        ptx = arch.endswith("+PTX")
        major, minor = (int(p) for p in arch.replace("+PTX", "").split("."))
        if (major == capability[0] and minor <= capability[1]) or (ptx and (major, minor) <= tuple(capability)):
            return True
    return False


def check_cuda_device(device: torch.device):
    """At the first call on each CUDA device: a plain RuntimeError when this build has no CUDA kernels
    or none that run on this GPU."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index in _checked_cuda_devices:
        return
    if _CUDA is None:
        raise RuntimeError(
            f"fastloss {_version()} has no CUDA kernels loaded ({cuda_unavailable_reason}), and this "
            f"tensor is on {device}. Install a CUDA wheel of fastloss (local version +cu130) or rebuild "
            f"with FASTLOSS_CUDA=1: {REBUILD}; FASTLOSS_BACKEND=reference runs the pure-torch "
            "implementation instead."
        )
    capability = torch.cuda.get_device_capability(index)
    if not _arch_runs(_CUDA.cuda_archs, capability):
        name = torch.cuda.get_device_name(index)
        raise RuntimeError(
            f"fastloss {_version()}'s CUDA kernels were built for the architectures {_CUDA.cuda_archs}, "
            f"none of which runs on this GPU ({name}, compute capability "
            f"{capability[0]}.{capability[1]}). Rebuild for it: TORCH_CUDA_ARCH_LIST="
            f'"{capability[0]}.{capability[1]}" FASTLOSS_CUDA=1 {REBUILD}'
        )
    _checked_cuda_devices.add(index)


_reference_only = False


@contextlib.contextmanager
def reference_only():
    """Every fastloss call inside runs its pure-torch reference: the reference of the composite
    criteria (fastloss.ultralytics'), for `python -m fastloss check` and the benchmark."""
    global _reference_only
    saved, _reference_only = _reference_only, True
    try:
        yield
    finally:
        _reference_only = saved


def use_kernels(device: torch.device) -> bool:
    """True when the compiled kernels serve tensors on `device`; False means the reference (only with
    FASTLOSS_BACKEND=reference, an unbuilt checkout or inside reference_only()). A CUDA device the
    build cannot serve raises."""
    if _C is None or _reference_only:
        return False
    if device.type == "cuda":
        check_cuda_device(device)
    return device.type in ("cpu", "cuda", "meta")


def info() -> dict:
    """Build facts, for `python -m fastloss info` and the tests."""
    build = _build_info()
    return {
        "backend": "kernels" if _C is not None and _CPU is not None else "reference",
        "unavailable_reason": unavailable_reason,
        "version": _version(),
        "built_torch": _C.built_torch if _C is not None else (build.TORCH if build else ""),
        "stable_abi": f"torch >= {MIN_TORCH[0]}.{MIN_TORCH[1]}" if MIN_TORCH else "",
        "built_cuda": build.CUDA or "" if build else "",
        "cuda_compiled": bool(_compiled("_cuda")),
        "cuda_loaded": _CUDA is not None,
        "cuda_unavailable_reason": cuda_unavailable_reason,
        "cuda_archs": build.CUDA_ARCHS if build else "",
        "cpu_capability": _CPU.cpu_capability if _CPU is not None else "",
    }
