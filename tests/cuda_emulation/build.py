"""Build the CUDA emulation: csrc/cuda/*.cu, unchanged, compiled as host C++ with the emulation's
headers first on the include path (include/cuda_runtime.h, include/cuda/kernel_launch.cuh), plus the
op schemas (csrc/ops.cpp as fastloss_emulated::*) and the scheduler (runtime.cpp), into one library:

    python tests/cuda_emulation/build.py VARIANT [--source DIR] [--out DIR] [--only FAMILY,...]

VARIANT is one of VARIANTS below (each a build of its own under build/cuda-emulation/VARIANT):
`tsan` (ThreadSanitizer, 32-lane warps), `asan64` (AddressSanitizer + UBSan, 64-lane warps) or
`plain` (no sanitizer). --source builds another copy of the tree (the seeded-defect tests build
patched copies); --only builds some kernel files. Incremental (ninja). Test-only: nothing here is
part of the package or the wheel. Prints the library's path last.
"""

import argparse
import re
import os
import shlex
import subprocess
import sys
import runpy
import sysconfig

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD_FACTS = runpy.run_path(os.path.join(ROOT, "scripts", "build_facts.py"))  # build_facts.mk
FACTS = BUILD_FACTS["read"]()

SANITIZER_COMMON = FACTS["SANITIZER_BUILD_FLAGS"].split()
# preload: the runtimes the Python process must preload (ASAN's __cxa_throw interceptor needs
# libstdc++ loaded when it starts); options: the sanitizer's, any report ending the process.
VARIANTS = {
    "tsan": dict(
        warp=32,
        sanitize=["-fsanitize=thread"],
        preload=["libtsan.so"],
        options={"TSAN_OPTIONS": "halt_on_error=1:exitcode=66:report_signal_unsafe=0"},
    ),
    "asan64": dict(
        warp=64,
        sanitize=FACTS["SANITIZER_FLAGS"].split(),
        preload=["libasan.so", "libstdc++.so"],
        options={
            "ASAN_OPTIONS": "detect_leaks=0:halt_on_error=1:exitcode=86",
            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=87",
        },
    ),
    "plain": dict(warp=32, sanitize=[], preload=[], options={}),
}


def torch_paths():
    """torch's header and library folders (what torch.utils.cpp_extension would give, without its CUDA
    probing)."""
    import torch

    base = os.path.dirname(os.path.abspath(torch.__file__))
    return [os.path.join(base, "include"), os.path.join(base, "include", "torch", "csrc", "api", "include")], [
        os.path.join(base, "lib")
    ]


def environment(variant, library):
    """The environment variables of a process that runs the variant's library: its path, the runtimes
    to preload (LD_PRELOAD, empty without a sanitizer) and the sanitizer's options."""
    cxx = os.environ.get("CXX", "g++")
    paths = [
        subprocess.run([cxx, f"-print-file-name={name}"], capture_output=True, text=True, check=True).stdout.strip()
        for name in VARIANTS[variant]["preload"]
    ]
    # one CPU thread: the CPU kernels' OpenMP threads synchronise in libgomp, which no sanitizer sees
    return {
        "FASTLOSS_CUDA_EMULATION": library,
        "LD_PRELOAD": " ".join(paths),
        "OMP_NUM_THREADS": "1",
        **VARIANTS[variant]["options"],
    }


def library_path(variant, out=None):
    return os.path.join(out or os.path.join(ROOT, "build", "cuda-emulation", variant), "fastloss_emulated.so")


def write_ninja(variant, source, out, only):
    config = VARIANTS[variant]
    includes, libdirs = torch_paths()
    cxx = os.environ.get("CXX", "g++")
    # (-ffp-contract=off: the kernels' nvcc build has -fmad=false, the CPU build this flag)
    base = [
        "-std=c++20",
        "-ffp-contract=off",
        "-fPIC",
        "-fvisibility=hidden",
        "-Wall",
        "-Wno-unknown-pragmas",
        "-Wno-maybe-uninitialized",
        f"-DTORCH_TARGET_VERSION={BUILD_FACTS['torch_target_version'](FACTS)}",
        f"-DFASTLOSS_EMU_WARP_SIZE={config['warp']}",
        f"-I{os.path.join(HERE, 'include')}",
        f"-I{os.path.join(source, 'csrc')}",
    ]
    base += [f"-isystem{p}" for p in includes]
    opt = SANITIZER_COMMON if config["sanitize"] else ["-O2", "-g"]
    kernel_flags = base + opt + config["sanitize"] + ["-include", "cuda_runtime.h"]
    plain_flags = base + opt
    link = (
        ["-shared", "-Wl,-Bsymbolic", "-Wl,--no-as-needed", "-Wl,-z,defs"]
        + config["sanitize"]
        + [f"-L{p}" for p in libdirs]
        + [f"-Wl,-rpath,{p}" for p in libdirs]
        + ["-ltorch_cpu", "-lc10", "-ldl"]
    )
    kernels = sorted(f for f in os.listdir(os.path.join(source, "csrc", "cuda")) if f.endswith(".cu"))
    if only:
        kernels = [f for f in kernels if f[:-3] in only]
        missing = set(only) - {f[:-3] for f in kernels}
        if missing:
            raise SystemExit(f"--only: no csrc/cuda/{sorted(missing)[0]}.cu")
    q = shlex.quote
    lines = [
        f"cxx = {q(cxx)}",
        f"kernel_flags = {' '.join(q(f) for f in kernel_flags)}",
        f"plain_flags = {' '.join(q(f) for f in plain_flags)}",
        f"link_flags = {' '.join(q(f) for f in link)}",
        "rule kernel\n  command = $cxx -MMD -MF $out.d -x c++ $kernel_flags -c $in -o $out\n  depfile = $out.d\n"
        "  deps = gcc\n  description = emulated CUDA $in",
        "rule plain\n  command = $cxx -MMD -MF $out.d $plain_flags $extra -c $in -o $out\n  depfile = $out.d\n"
        "  deps = gcc\n  description = C++ $in",
        "rule link\n  command = $cxx $in -o $out $link_flags\n  description = link $out",
    ]
    objects = []
    for f in kernels:
        obj = os.path.join(out, "obj", f[:-3] + ".o")
        lines.append(f"build {q(obj)}: kernel {q(os.path.join(source, 'csrc', 'cuda', f))}")
        objects.append(obj)
    ops = os.path.join(out, "obj", "ops.o")
    lines.append(
        f"build {q(ops)}: plain {q(os.path.join(source, 'csrc', 'ops.cpp'))}\n"
        "  extra = -DFASTLOSS_OPS_NAMESPACE=fastloss_emulated"
    )
    runtime = os.path.join(out, "obj", "runtime.o")
    lines.append(
        f"build {q(runtime)}: plain {q(os.path.join(HERE, 'runtime.cpp'))}\n"
        f"  extra = -include cuda_runtime.h -I{q(out)}"
    )
    lines.append(f"build {q(library_path(variant, out))}: link {' '.join(q(o) for o in objects + [ops, runtime])}")
    os.makedirs(os.path.join(out, "obj"), exist_ok=True)
    kernels, shared = emulated_names(source)
    update(
        os.path.join(out, "emulated_names.inc"),
        f"#define FASTLOSS_EMU_KERNELS {', '.join(chr(34) + k + chr(34) for k in kernels)}\n"
        f"#define FASTLOSS_EMU_SHARED {', '.join(chr(34) + v + chr(34) for v in shared)}\n",
    )
    path = os.path.join(out, "build.ninja")
    update(path, "\n".join(lines) + "\n")
    return path


def update(path, text):
    """Writes the file unless it already holds `text` (so that ninja rebuilds only what changed)."""
    if not os.path.exists(path) or open(path).read() != text:
        with open(path, "w") as f:
            f.write(text)


def emulated_names(source):
    """The names of csrc/cuda's __global__ templates (coverage counts their instances) and of its
    __shared__ variables (the runtime gives each block fresh ones)."""
    kernels, shared = set(), set()
    folder = os.path.join(source, "csrc", "cuda")
    for f in sorted(os.listdir(folder)):
        if f.endswith((".cu", ".cuh")):
            text = open(os.path.join(folder, f)).read()
            kernels.update(re.findall(r"__global__\s+void\s+(\w+)\s*\(", text))
            shared.update(re.findall(r"__shared__\s+[\w:]+(?:<[^;]*?>)?\s+(\w+)\s*[\[;]", text))
    return sorted(kernels), sorted(shared)


def build(variant, source=ROOT, out=None, only=None, quiet=False):
    """Builds the variant and returns its library's path."""
    out = out or os.path.dirname(library_path(variant))
    write_ninja(variant, source, out, only)
    ninja = os.path.join(os.path.dirname(sys.executable), "ninja")
    if not os.path.exists(ninja):
        ninja = "ninja"
    jobs = os.environ.get("MAX_JOBS", str(os.cpu_count() or 2))
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}  # (a sanitizer runtime would crash g++)
    result = subprocess.run([ninja, "-C", out, "-j", jobs], capture_output=quiet, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"the CUDA emulation ({variant}) did not build:\n{result.stdout or ''}{result.stderr or ''}")
    return library_path(variant, out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("--source", default=ROOT, help="the source tree to build (default: this one)")
    parser.add_argument("--out", help="the build folder (default: build/cuda-emulation/VARIANT)")
    parser.add_argument("--only", help="comma-separated kernel files (csrc/cuda/<name>.cu) to build")
    args = parser.parse_args()
    only = [f for f in (args.only or "").split(",") if f]
    print(build(args.variant, os.path.abspath(args.source), args.out and os.path.abspath(args.out), only))


if __name__ == "__main__":
    sysconfig.get_paths()  # (the interpreter of the build's virtualenv)
    main()
