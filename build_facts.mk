# fastloss's build facts, written once: setup.py, CMakeLists.txt, the Makefile and the test builds
# (tests/cuda_emulation, tests/replay, tests/test_math_functions.py) read this file, in Make's
# `NAME = value` syntax; setup.py bakes what the package needs at run time (the minimum torch, the
# CPU features of each kernel flavour) into fastloss/_build_info.py.

# The oldest torch whose LibTorch stable ABI the binaries target: TORCH_TARGET_VERSION, the wheel's
# Requires-Dist, the import-time check.
MIN_TORCH = 2.10

# The CUDA architectures of a release build: torch's own cu130 list, PTX for the newest
# (TORCH_CUDA_ARCH_LIST overrides it).
CUDA_ARCHS = 7.5;8.0;8.6;9.0;10.0;12.0+PTX

# The kernels' optimisation and no contraction of a*b + c (GCC and nvcc would fuse where inlining
# lets them, so the last bits would follow their choices; the math writes fma itself).
KERNEL_CXX_FLAGS = -O3 -ffp-contract=off -Wno-unknown-pragmas
KERNEL_NVCC_FLAGS = -O3 -fmad=false

# The x86-64 CPU kernel flavours: their compiler flags and the CPU features (cpuid's names) they need.
AVX2_FLAGS = -mavx2 -mfma -mf16c
AVX2_CPU_FEATURES = avx2 fma f16c
AVX512_FLAGS = -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512dq
AVX512_CPU_FEATURES = avx512f avx512bw avx512vl avx512dq avx2 fma f16c

# AddressSanitizer + UndefinedBehaviorSanitizer (make sanitize, the CUDA emulation's ASAN build);
# vptr checks misreport on torch's uninstrumented types.
SANITIZER_FLAGS = -fsanitize=address,undefined -fno-sanitize=vptr -fno-sanitize-recover=undefined
# What every sanitized build compiles with (make sanitize, the CUDA emulation): line tables (-g1: a
# report's frames and lines, compiled a quarter faster than with -g) and frame pointers.
SANITIZER_BUILD_FLAGS = -O1 -g1 -fno-omit-frame-pointer
