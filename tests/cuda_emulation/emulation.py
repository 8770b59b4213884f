"""The CUDA emulation from Python (test-only): csrc/cuda's kernels, compiled as host C++ by
tests/cuda_emulation/build.py, run on CPU tensors through their own host code.

`make cuda-emulate` builds the library and runs the emulation tests with FASTLOSS_CUDA_EMULATION set
to its path (and the sanitizer runtime preloaded). Inside `emulated_cuda()` every fastloss op called
on CPU tensors runs its CUDA kernels instead of its CPU ones — the same dispatch, launch sizes and
tensor plumbing as on a GPU — so the CPU kernels, the reference and the emulated CUDA kernels can be
compared in one process.
"""

import contextlib
import ctypes
import os
import warnings

import torch

ENV = "FASTLOSS_CUDA_EMULATION"
SEED_ENV = "FASTLOSS_EMU_SEED"
_lib = None


def library_path():
    return os.environ.get(ENV) or None


def enabled():
    return library_path() is not None


def load():
    """The emulation library (loaded once): its ops register as fastloss_emulated::*."""
    global _lib
    if _lib is None:
        path = library_path()
        if path is None:
            raise RuntimeError(f"the CUDA emulation is not built: run `make cuda-emulate` (or set {ENV})")
        import fastloss  # noqa: F401  (the real ops and their Python registrations first)

        torch.ops.load_library(path)
        lib = ctypes.CDLL(path)
        lib.fastloss_emu_report.restype = ctypes.c_char_p
        lib.fastloss_emu_set_seed.argtypes = [ctypes.c_uint64]
        lib.fastloss_emu_set_current_stream.argtypes = [ctypes.c_size_t]
        lib.fastloss_emu_current_stream.restype = ctypes.c_size_t
        lib.fastloss_emu_set_multiprocessors.argtypes = [ctypes.c_int]
        lib.fastloss_emu_set_seed(int(os.environ.get(SEED_ENV, "0")))
        _lib = lib
    return _lib


def op_names():
    return sorted(
        name.split("::", 1)[1]
        for name in torch._C._dispatch_get_all_op_names()
        if name.startswith("fastloss_emulated::")
    )


@contextlib.contextmanager
def emulated_cuda():
    """Within the block, fastloss ops on CPU tensors run their (emulated) CUDA kernels, and every
    torch.empty tensor comes filled with NaN (or the integer maximum): a kernel that reads one before
    writing it gives another result than the CPU's (torch's deterministic mode fills them)."""
    load()
    lib = torch.library.Library("fastloss", "IMPL")
    deterministic = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.utils.deterministic.fill_uninitialized_memory,
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (overriding the CPU kernels is the point)
            for name in op_names():
                lib.impl(name, getattr(torch.ops.fastloss_emulated, name).default, "CPU")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.utils.deterministic.fill_uninitialized_memory = True
        yield
    finally:
        lib._destroy()
        torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])
        torch.utils.deterministic.fill_uninitialized_memory = deterministic[2]


@contextlib.contextmanager
def schedule(seed):
    """Blocks and threads in another order (0: in order); also switches the shared-memory poison."""
    lib = load()
    lib.fastloss_emu_set_seed(seed)
    try:
        yield
    finally:
        lib.fastloss_emu_set_seed(int(os.environ.get(SEED_ENV, "0")))


@contextlib.contextmanager
def current_stream(handle):
    """torch's current stream, as the emulated kernels are told (a launch elsewhere is an error)."""
    lib = load()
    before = lib.fastloss_emu_current_stream()
    lib.fastloss_emu_set_current_stream(handle)
    try:
        yield
    finally:
        lib.fastloss_emu_set_current_stream(before)


def set_multiprocessors(n):
    """Runs the following launches on an emulated GPU of n SMs: a device of its own (the library asks a
    device's SM count once), so the count is not one that an earlier launch has already cached."""
    load().fastloss_emu_set_multiprocessors(n)


def warp_size():
    return load().fastloss_emu_warp_size()


def report():
    """{kernel instance: (launches so far, the most blocks one had)} over every __global__ instance."""
    out = {}
    for line in load().fastloss_emu_report().decode().splitlines():
        count, blocks, name = line.split("\t", 2)
        out[name] = (int(count), int(blocks))
    return out


def launches():
    """{kernel instance: launches so far} over every __global__ instance in the library."""
    return {name: count for name, (count, _) in report().items()}
