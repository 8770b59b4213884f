"""Build fastloss and its extensions: fastloss._C (every op's schema, and the CUDA kernels) and the
CPU kernels once per SIMD flavour, as ATen does — fastloss._cpu_avx512 and fastloss._cpu_avx2 on
x86-64 (fastloss/_backend.py loads the best one the CPU runs), fastloss._cpu_default elsewhere.

CPU sources are always built; CUDA sources when torch has CUDA and nvcc is found.
FASTLOSS_CUDA=1 forces the CUDA build (and fails loudly if it cannot), FASTLOSS_CUDA=0 skips it.
The CUDA toolkit is found from CUDA_HOME / CUDA_PATH, else /usr/local/cuda, else nvcc on PATH;
the CUDA headers that pip's nvidia packages ship beside torch (cusparse.h, cuBLAS) are added to
the search path, so no CPATH/CUDA_HOME export is needed. TORCH_CUDA_ARCH_LIST is honoured; the
default is "8.0;9.0+PTX" (A100, H100/H200, PTX for newer GPUs).
"""
import glob
import os
import platform
import shutil
import subprocess

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))
MIN_TORCH = "2.4"  # torch.library.register_fake / register_autograd
DEFAULT_ARCHS = "8.0;9.0+PTX"


def find_cuda_home():
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var):
            return os.environ[var]
    if os.path.exists("/usr/local/cuda/bin/nvcc"):
        return "/usr/local/cuda"
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        return None
    # nvcc may be a wrapper script in a generic bin folder: ask the compiler where it lives.
    try:
        out = subprocess.run([nvcc, "-v", "--version"], capture_output=True, text=True, check=True)
        for line in (out.stdout + out.stderr).splitlines():
            if line.startswith("#$ TOP="):
                return os.path.dirname(line.split("=", 1)[1].strip())
    except (OSError, subprocess.CalledProcessError):
        pass
    return os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))


def nvidia_include_dirs():
    """Header folders of pip's nvidia packages (e.g. nvidia/cu13/include) that hold cuSPARSE/cuBLAS."""
    try:
        import nvidia
    except ImportError:
        return []
    found = []
    for base in nvidia.__path__:
        for inc in sorted(glob.glob(os.path.join(base, "*", "include"))):
            if any(os.path.exists(os.path.join(inc, h)) for h in ("cusparse.h", "cublas_v2.h")):
                found.append(inc)
    return found


CUDA_REQUEST = os.environ.get("FASTLOSS_CUDA", "auto").strip().lower()
if CUDA_REQUEST not in ("auto", "0", "1"):
    raise SystemExit(f"FASTLOSS_CUDA must be 0, 1 or unset, got {CUDA_REQUEST!r}")
cuda_home = find_cuda_home() if CUDA_REQUEST != "0" else None
if cuda_home:
    os.environ["CUDA_HOME"] = cuda_home  # cpp_extension reads it when first imported

import torch  # noqa: E402

try:
    from packaging.version import Version
except ImportError:  # a bare GPU box may lack packaging; torch vendors it
    from torch._vendor.packaging.version import Version
from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension  # noqa: E402

if Version(torch.__version__.split("+")[0]) < Version(MIN_TORCH):
    raise SystemExit(f"fastloss needs torch >= {MIN_TORCH}, found {torch.__version__}")


def cuda_build_possible():
    if torch.version.cuda is None:
        return False, f"torch {torch.__version__} was built without CUDA"
    if not cuda_home or not os.path.exists(os.path.join(cuda_home, "bin", "nvcc")):
        return False, "no CUDA toolkit found (set CUDA_HOME)"
    return True, ""


with_cuda, why_not = (False, "FASTLOSS_CUDA=0") if CUDA_REQUEST == "0" else cuda_build_possible()
if CUDA_REQUEST == "1" and not with_cuda:
    raise SystemExit(f"FASTLOSS_CUDA=1 but the CUDA sources cannot be built: {why_not}")
if not with_cuda:
    print(f"fastloss: building CPU kernels only ({why_not})")

core_sources = [os.path.join("csrc", "ops.cpp"), os.path.join("csrc", "module.cpp")]
cpu_sources = [os.path.join("csrc", "module.cpp")] + sorted(glob.glob(os.path.join("csrc", "cpu", "*.cpp")))

# -fopenmp: at::parallel_for is inline in ATen's headers; without it our loops run serially.
cxx_flags = ["-O3", "-fopenmp", "-Wno-unknown-pragmas"]
common = dict(extra_link_args=["-fopenmp"], include_dirs=[os.path.join(ROOT, "csrc")])

# The CPU kernels per vector flavour: ATen picks Vectorized<T>'s width from CPU_CAPABILITY_* at
# compile time (csrc/cpu/vec_ops.h), so each flavour is its own library with its own flags.
if platform.machine().lower() in ("x86_64", "amd64"):
    avx2 = ["-mavx2", "-mfma", "-mf16c"]
    CPU_FLAVOURS = {
        # (GCC 12 warns about _mm512_undefined_* inside its own AVX-512 headers: silenced.)
        "avx512": avx2 + ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-Wno-uninitialized",
                          "-Wno-maybe-uninitialized", "-DCPU_CAPABILITY_AVX512",
                          "-DCPU_CAPABILITY=AVX512"],
        "avx2": avx2 + ["-DCPU_CAPABILITY_AVX2", "-DCPU_CAPABILITY=AVX2"],
    }
else:
    CPU_FLAVOURS = {"default": []}
extensions = [
    CppExtension(name=f"fastloss._cpu_{flavour}", sources=cpu_sources,
                 extra_compile_args={"cxx": cxx_flags + flags},
                 define_macros=[("FASTLOSS_CPU_CAPABILITY", f'"{flavour}"')], **common)
    for flavour, flags in CPU_FLAVOURS.items()
]

core_macros = []
if with_cuda:
    archs = os.environ.setdefault("TORCH_CUDA_ARCH_LIST", DEFAULT_ARCHS)
    # After the toolkit's own headers, like CPATH: pip's copies only fill what the toolkit lacks.
    extra = os.pathsep.join(nvidia_include_dirs())
    if extra:
        os.environ["CPATH"] = os.pathsep.join(p for p in (os.environ.get("CPATH"), extra) if p)
    core_macros += [("FASTLOSS_WITH_CUDA", None), ("FASTLOSS_CUDA_ARCHS", f'"{archs}"')]
    extensions.insert(0, CUDAExtension(name="fastloss._C", sources=core_sources + sorted(glob.glob(os.path.join(
        "csrc", "cuda", "*.cu"))), extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3"]}, define_macros=core_macros,
        **common))
else:
    extensions.insert(0, CppExtension(name="fastloss._C", sources=core_sources, extra_compile_args={"cxx": cxx_flags},
                                      define_macros=core_macros, **common))


class BuildPerExtension(BuildExtension):
    """One object folder per extension: the same source compiled with each flavour's flags keeps its
    own object file, so incremental builds stay incremental."""

    def build_extension(self, ext):
        build_temp = self.build_temp
        self.build_temp = os.path.join(build_temp, ext.name)
        try:
            super().build_extension(ext)
        finally:
            self.build_temp = build_temp


def read_version():
    scope = {}
    with open(os.path.join(ROOT, "python", "fastloss", "_version.py")) as f:
        exec(f.read(), scope)
    return scope["__version__"]


setup(
    name="fastloss",
    version=read_version(),
    description="Fused forward/backward kernels for detection and segmentation losses (CPU and CUDA)",
    package_dir={"": "python"},
    packages=find_packages("python"),
    ext_modules=extensions,
    cmdclass={"build_ext": BuildPerExtension.with_options(use_ninja=True)},
    python_requires=">=3.9",
    install_requires=["torch>=" + MIN_TORCH],
)
