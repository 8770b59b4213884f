"""Build fastloss and its extensions, all against the LibTorch stable ABI (TORCH_TARGET_VERSION 2.10:
one build loads into every torch since 2.10): fastloss._C (build facts, the CPU's features), the op
schemas and CPU kernels once per SIMD flavour — fastloss._cpu_avx512 and fastloss._cpu_avx2 on x86-64
(fastloss/_backend.py loads the best one the CPU runs), fastloss._cpu_default elsewhere — and the
CUDA kernels in fastloss._cuda, loaded only under a torch built for the same CUDA major.

Build with `pip install --no-build-isolation .` or `pip wheel --no-build-isolation .` (pyproject.toml
says why). The wheel says `Requires-Dist: torch>=2.10` and names its kind in a local version: `+cpu`,
or `+cu130` for CUDA 13 kernels; python/fastloss/_build_info.py (written here) records the torch it
was compiled with, the CUDA version and architectures. The extensions use only the limited Python
API (one abi3 wheel for every CPython >= 3.10), are built without debug information and with
-ffile-prefix-map (no build path inside), and need glibc 2.28 at most, as torch's own wheels
(csrc/compat; tagged manylinux_2_28 on x86-64).

The build needs a C++20 compiler and torch, nothing else: the CPU kernels' exp, log and the rest are
fastloss's own (csrc/math/elementary.h).

CPU sources are always built; CUDA sources when torch has CUDA and nvcc is found.
FASTLOSS_CUDA=1 forces the CUDA build (and fails loudly if it cannot), FASTLOSS_CUDA=0 skips it.
The CUDA toolkit is found from CUDA_HOME / CUDA_PATH, else /usr/local/cuda, else nvcc on PATH;
the CUDA headers that pip's nvidia packages ship beside torch are added to the search path, so no
CPATH/CUDA_HOME export is needed. TORCH_CUDA_ARCH_LIST is honoured; the default is torch's own cu130
list, "7.5;8.0;8.6;9.0;10.0;12.0+PTX" (T4 to Blackwell, PTX for newer GPUs): a GPU outside it gets a
plain error at its first call (fastloss/_backend.py).
"""

import glob
import os
import platform
import runpy
import shutil
import subprocess
import sys

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))
# The build facts (minimum torch, flags, architectures): build_facts.mk, which CMake and make read too.
build_facts = runpy.run_path(os.path.join(ROOT, "scripts", "build_facts.py"))
FACTS = build_facts["read"](os.path.join(ROOT, "build_facts.mk"))
NO_TORCH = (
    "fastloss compiles against the torch installed in your environment, and this build "
    "environment has none: install torch, then build with `pip install --no-build-isolation .` "
    "(pip's default isolated build cannot see your torch)."
)

try:
    import torch
except ImportError:
    sys.exit(NO_TORCH)


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


# FASTLOSS_SANITIZE=1: the AddressSanitizer + UndefinedBehaviorSanitizer build of `make sanitize`
# (scripts/sanitize.sh): the AVX2 CPU kernels only, no CUDA, built out of tree (--build-lib), never
# into python/fastloss. vptr checks are off: they misreport on torch's uninstrumented types.
SANITIZE = os.environ.get("FASTLOSS_SANITIZE", "0").strip() == "1"
SANITIZER_FLAGS = FACTS["SANITIZER_FLAGS"].split()
if SANITIZE:
    os.environ["FASTLOSS_CUDA"] = "0"
    os.environ["FASTLOSS_CPU_FLAVOURS"] = "avx2" if platform.machine().lower() in ("x86_64", "amd64") else ""
CUDA_REQUEST = os.environ.get("FASTLOSS_CUDA", "auto").strip().lower()
if CUDA_REQUEST not in ("auto", "0", "1"):
    raise SystemExit(f"FASTLOSS_CUDA must be 0, 1 or unset, got {CUDA_REQUEST!r}")
cuda_home = find_cuda_home() if CUDA_REQUEST != "0" else None
if cuda_home:
    os.environ["CUDA_HOME"] = cuda_home  # cpp_extension reads it when first imported

from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension  # noqa: E402


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


def read_version():
    scope = {}
    with open(os.path.join(ROOT, "python", "fastloss", "_version.py")) as f:
        exec(f.read(), scope)
    return scope["__version__"]


# The oldest torch whose stable ABI the binaries target (TORCH_TARGET_VERSION below).
MIN_TORCH = build_facts["min_torch"](FACTS)
if tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2]) < MIN_TORCH:
    sys.exit(
        f"fastloss builds against torch >= {MIN_TORCH[0]}.{MIN_TORCH[1]} (its LibTorch stable ABI); "
        f"this is torch {torch.__version__}"
    )
ARCHS = os.environ.setdefault("TORCH_CUDA_ARCH_LIST", FACTS["CUDA_ARCHS"]) if with_cuda else ""
# The CUDA kernels run under any torch of the same CUDA major: the tag names only the major.
CUDA_TAG = f"cu{torch.version.cuda.split('.')[0]}0" if with_cuda else "cpu"
# A wheel names what it was built for; an sdist builds for whatever torch it meets.
SDIST = "sdist" in sys.argv
VERSION = read_version() if SDIST else f"{read_version()}+{CUDA_TAG}"
X86_64_LINUX = sys.platform.startswith("linux") and platform.machine().lower() in ("x86_64", "amd64")
# What the extensions need of the system: glibc 2.28 at most (csrc/compat), as torch's wheels.
PLAT_NAME = "manylinux_2_28_x86_64" if X86_64_LINUX else None

# The build facts, for the import-time check (fastloss/_backend.py) — also compiled into the modules.
# MIN_TORCH and each x86 flavour's CPU features come from build_facts.mk.
CPU_FEATURES = {f: tuple(FACTS[f"{f.upper()}_CPU_FEATURES"].split()) for f in ("avx512", "avx2")}  # best first
BUILD_INFO = (
    '"""Written by setup.py: what these binaries were built for (fastloss/_backend.py checks it)."""\n'
    f"VERSION = {VERSION!r}\nTORCH = {torch.__version__!r}\n"
    f"CUDA = {torch.version.cuda if with_cuda else None!r}\nCUDA_ARCHS = {ARCHS!r}\n"
    f"MIN_TORCH = {MIN_TORCH!r}\nX86_FLAVOUR_CPU_FEATURES = {CPU_FEATURES!r}\n"
)

module_source = os.path.join("csrc", "module.cpp")
cpu_sources = [os.path.join("csrc", "ops.cpp"), module_source] + sorted(glob.glob(os.path.join("csrc", "cpu", "*.cpp")))

COMPAT = os.path.join(ROOT, "csrc", "compat")
# Release builds: no debug information, no build path in the binaries, and the compat header that
# keeps glibc 2.28 enough (forced into every translation unit).
# (torch's headers are mapped too: their __FILE__ in inlined checks would name the build's environment.)
TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__))
release = ["-g0", f"-ffile-prefix-map={ROOT}=.", f"-ffile-prefix-map={TORCH_DIR}=torch"] + (
    ["-include", os.path.join(COMPAT, "glibc_2_28.h")] if X86_64_LINUX else []
)
# Hidden by default: nothing but PyInit_* is exported (torch's stable types are hidden too).
# (build_facts.mk says why -ffp-contract=off and -fmad=false.)
cxx_flags = FACTS["KERNEL_CXX_FLAGS"].split() + ["-fvisibility=hidden"]
if SANITIZE:  # readable reports (frames, lines; its -O1 after the kernels' -O3 wins); -fno-wrapv undoes
    # Python's -fwrapv, which would make signed overflow defined and so hide it from UBSAN (a wrapped
    # 32-bit index is what it must catch)
    cxx_flags += FACTS["SANITIZER_BUILD_FLAGS"].split() + ["-fno-wrapv"] + SANITIZER_FLAGS
else:
    cxx_flags += release
# The stable ABI of torch 2.10 and nothing newer (torch/csrc/stable/version.h).
STABLE_ABI = ("TORCH_TARGET_VERSION", build_facts["torch_target_version"](FACTS))
build_macros = [STABLE_ABI, ("FASTLOSS_BUILT_TORCH", f'"{torch.__version__}"')]
# libtorch_cpu (and libtorch_cuda) stay NEEDED even where unused symbols would let the linker drop
# them: the stable C shim the kernels call lives there.
common = dict(
    extra_link_args=["-Wl,--no-as-needed", "-ldl"] + (SANITIZER_FLAGS if SANITIZE else []),
    include_dirs=[COMPAT, os.path.join(ROOT, "csrc")],
    py_limited_api=True,
)

# The CPU kernels per vector flavour: simd::Vec<T> takes its width from CPU_CAPABILITY_* at compile
# time (csrc/cpu/simd.h), so each flavour is its own library with its own flags.
if platform.machine().lower() in ("x86_64", "amd64"):
    CPU_FLAVOURS = {
        f: FACTS[f"{f.upper()}_FLAGS"].split() + [f"-DCPU_CAPABILITY_{f.upper()}", f"-DCPU_CAPABILITY={f.upper()}"]
        for f in ("avx512", "avx2")
    }
    # (GCC 12 warns about _mm512_undefined_* inside its own AVX-512 headers: silenced.)
    CPU_FLAVOURS["avx512"] += ["-Wno-uninitialized", "-Wno-maybe-uninitialized"]
else:
    CPU_FLAVOURS = {"default": []}
# FASTLOSS_CPU_FLAVOURS=avx2 builds only those (scripts/gpu_check.sh: minutes matter there); the
# import loads the best flavour that is both built and run by the CPU.
ONLY = [f for f in os.environ.get("FASTLOSS_CPU_FLAVOURS", "").replace(",", " ").split() if f]
if ONLY:
    unknown = sorted(set(ONLY) - set(CPU_FLAVOURS))
    if unknown:
        raise SystemExit(f"FASTLOSS_CPU_FLAVOURS: {unknown} are not among this platform's {sorted(CPU_FLAVOURS)}")
    CPU_FLAVOURS = {f: flags for f, flags in CPU_FLAVOURS.items() if f in ONLY}
extensions = [
    CppExtension(
        name=f"fastloss._cpu_{flavour}",
        sources=cpu_sources,
        extra_compile_args={"cxx": cxx_flags + flags},
        define_macros=build_macros + [("FASTLOSS_CPU_CAPABILITY", f'"{flavour}"'), ("FASTLOSS_CPU_MODULE", None)],
        **common,
    )
    for flavour, flags in CPU_FLAVOURS.items()
]

extensions.insert(
    0,
    CppExtension(
        name="fastloss._C",
        sources=[module_source],
        extra_compile_args={"cxx": cxx_flags},
        define_macros=build_macros,
        **common,
    ),
)
if with_cuda:
    # After the toolkit's own headers, like CPATH: pip's copies only fill what the toolkit lacks.
    extra = os.pathsep.join(nvidia_include_dirs())
    if extra:
        os.environ["CPATH"] = os.pathsep.join(p for p in (os.environ.get("CPATH"), extra) if p)
    cuda_macros = build_macros + [
        ("FASTLOSS_WITH_CUDA", None),
        ("FASTLOSS_CUDA_ARCHS", f'"{ARCHS}"'),
        ("FASTLOSS_BUILT_CUDA", f'"{torch.version.cuda}"'),
    ]
    # (-fmad=false: also the decisions of top-k and argmax on near-ties would follow nvcc's choices.)
    nvcc_flags = FACTS["KERNEL_NVCC_FLAGS"].split() + [flag for f in release for flag in ("-Xcompiler", f)]
    extensions.append(
        CUDAExtension(
            name="fastloss._cuda",
            sources=[module_source] + sorted(glob.glob(os.path.join("csrc", "cuda", "*.cu"))),
            extra_compile_args={"cxx": cxx_flags, "nvcc": nvcc_flags},
            define_macros=cuda_macros,
            **common,
        )
    )


class BuildPerExtension(BuildExtension):
    """One object folder per extension: the same source compiled with each flavour's flags keeps its
    own object file, so incremental builds stay incremental. Writes fastloss/_build_info.py beside
    the binaries it builds (in place, and in the wheel's tree)."""

    def run(self):
        targets = [os.path.join(ROOT, "python", "fastloss")]
        if SANITIZE:
            if self.inplace:
                raise SystemExit("FASTLOSS_SANITIZE=1 builds out of tree: build_ext --build-lib DIR (make sanitize)")
            targets = []
        if not self.inplace:
            targets.append(os.path.join(self.build_lib, "fastloss"))
        for folder in targets:
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, "_build_info.py"), "w") as f:
                f.write(BUILD_INFO)
        super().run()

    def build_extension(self, ext):
        build_temp = self.build_temp
        self.build_temp = os.path.join(build_temp, ext.name)
        try:
            super().build_extension(ext)
        finally:
            self.build_temp = build_temp


bdist_wheel = {"py_limited_api": "cp310"}
if PLAT_NAME:
    bdist_wheel["plat_name"] = PLAT_NAME

setup(
    name="fastloss",
    version=VERSION,
    description="Fused forward/backward kernels for detection and segmentation losses (CPU and CUDA)",
    long_description=open(os.path.join(ROOT, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    license_files=["LICENSE"],
    package_dir={"": "python"},
    packages=find_packages("python"),
    ext_modules=extensions,
    cmdclass={"build_ext": BuildPerExtension.with_options(use_ninja=True)},
    options={"bdist_wheel": bdist_wheel},
    python_requires=">=3.10",
    install_requires=[f"torch>={MIN_TORCH[0]}.{MIN_TORCH[1]}"],
)
