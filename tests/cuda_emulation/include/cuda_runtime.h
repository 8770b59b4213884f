#pragma once
// The CUDA emulation's stand-in for <cuda_runtime.h> (test-only; never in the wheel): with it first
// on the include path and forced into every translation unit, csrc/cuda/*.cu compile unchanged as
// host C++. It supplies the CUDA language (qualifiers, built-in variables, warp intrinsics, atomics,
// the device-side assert) and the runtime API that csrc/cuda uses; runtime.cpp executes them: each
// block's threads are fibers, a warp's lanes exchange values through the scheduler, __syncthreads is
// a real barrier, and every misuse the emulation can see (a barrier or mask that not every named
// thread reaches, a launch outside CUDA's limits or off torch's current stream, a host sync) stops
// the launch with an error naming the kernel, block and thread. The one `<<<>>>` of the sources is
// replaced by include/cuda/kernel_launch.cuh.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <type_traits>
// torch's macros first, so that the emulation's CUDA_KERNEL_ASSERT below replaces theirs
#include <torch/headeronly/macros/Macros.h>
#include <torch/csrc/stable/library.h>

#ifndef FASTLOSS_EMU_WARP_SIZE
#define FASTLOSS_EMU_WARP_SIZE 32
#endif
// The warp width csrc/cuda/warp.cuh builds for (32 on NVIDIA GPUs; 64 is ROCm's wavefront).
#define FASTLOSS_WARP_SIZE FASTLOSS_EMU_WARP_SIZE
#define FASTLOSS_CUDA_EMULATION 1

// ------------------------------------------------------------------------- the CUDA language

#define __global__ __attribute__((noinline))
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
// Blocks run one at a time on the launching thread: one copy of each __shared__ variable, which the
// runtime poisons and makes new memory for the race detector before each block.
#define __shared__ static
#define warpSize FASTLOSS_EMU_WARP_SIZE

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};

// The built-in variables of the running fiber, written by the scheduler at every switch.
struct FastlossEmuBuiltins {
  uint3 thread_idx, block_idx;
  dim3 block_dim, grid_dim;
};
extern "C" FastlossEmuBuiltins fastloss_emu_builtins;
#define threadIdx (fastloss_emu_builtins.thread_idx)
#define blockIdx (fastloss_emu_builtins.block_idx)
#define blockDim (fastloss_emu_builtins.block_dim)
#define gridDim (fastloss_emu_builtins.grid_dim)

// ------------------------------------------------------------------ synchronisation and warps

enum FastlossEmuWarpOp {
  kEmuShflIdx,
  kEmuShflUp,
  kEmuShflDown,
  kEmuShflXor,
  kEmuBallot,
  kEmuSyncWarp,
  kEmuAny,
  kEmuAll
};

extern "C" void fastloss_emu_syncthreads(const char* file, int line);
// Blocks the calling lane until every lane its mask names has reached the same operation with the
// same mask; value (size bytes) is its operand on entry and its result on return.
extern "C" void fastloss_emu_warp_op(int op, unsigned long long mask, int arg, int width, void* value, size_t size,
                                     const char* file, int line);
extern "C" unsigned long long fastloss_emu_activemask();
extern "C" void fastloss_emu_device_assert(const char* condition, const char* file, int line);

// A lane mask: 32 bits on a 32-lane warp, as CUDA's; 64 on a 64-lane one, as ROCm's.
using fastloss_emu_lanes_t = std::conditional_t<(FASTLOSS_EMU_WARP_SIZE > 32), unsigned long long, unsigned>;

inline void __syncthreads(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  fastloss_emu_syncthreads(file, line);
}
inline void __syncwarp(unsigned long long mask = ~0ull >> (64 - FASTLOSS_EMU_WARP_SIZE),
                       const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  fastloss_emu_warp_op(kEmuSyncWarp, mask, 0, warpSize, nullptr, 0, file, line);
}

template <typename T>
inline T fastloss_emu_shuffle(int op, unsigned long long mask, T var, int arg, int width, const char* file, int line) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 16, "shuffle of an unsupported type");
  fastloss_emu_warp_op(op, mask, arg, width, &var, sizeof(T), file, line);
  return var;
}
template <typename T>
inline T __shfl_sync(unsigned long long mask, T var, int src, int width = warpSize, const char* file = __builtin_FILE(),
                     int line = __builtin_LINE()) {
  return fastloss_emu_shuffle(kEmuShflIdx, mask, var, src, width, file, line);
}
template <typename T>
inline T __shfl_up_sync(unsigned long long mask, T var, unsigned delta, int width = warpSize,
                        const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return fastloss_emu_shuffle(kEmuShflUp, mask, var, static_cast<int>(delta), width, file, line);
}
template <typename T>
inline T __shfl_down_sync(unsigned long long mask, T var, unsigned delta, int width = warpSize,
                          const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return fastloss_emu_shuffle(kEmuShflDown, mask, var, static_cast<int>(delta), width, file, line);
}
template <typename T>
inline T __shfl_xor_sync(unsigned long long mask, T var, int lane_mask, int width = warpSize,
                         const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return fastloss_emu_shuffle(kEmuShflXor, mask, var, lane_mask, width, file, line);
}
inline fastloss_emu_lanes_t __ballot_sync(unsigned long long mask, int predicate, const char* file = __builtin_FILE(),
                                          int line = __builtin_LINE()) {
  unsigned long long v = predicate != 0;
  fastloss_emu_warp_op(kEmuBallot, mask, 0, warpSize, &v, sizeof(v), file, line);
  return static_cast<fastloss_emu_lanes_t>(v);
}
inline int __any_sync(unsigned long long mask, int predicate, const char* file = __builtin_FILE(),
                      int line = __builtin_LINE()) {
  unsigned long long v = predicate != 0;
  fastloss_emu_warp_op(kEmuAny, mask, 0, warpSize, &v, sizeof(v), file, line);
  return static_cast<int>(v);
}
inline int __all_sync(unsigned long long mask, int predicate, const char* file = __builtin_FILE(),
                      int line = __builtin_LINE()) {
  unsigned long long v = predicate != 0;
  fastloss_emu_warp_op(kEmuAll, mask, 0, warpSize, &v, sizeof(v), file, line);
  return static_cast<int>(v);
}
inline fastloss_emu_lanes_t __activemask() { return static_cast<fastloss_emu_lanes_t>(fastloss_emu_activemask()); }

// ------------------------------------------------------------------------------- atomics
// Real (relaxed) atomics: the race detector knows them. Integer types only: fastloss has no float
// atomics (its reductions are deterministic), and the emulation refuses to compile one.

template <typename T>
inline void fastloss_emu_integer_atomic() {
  static_assert(std::is_integral_v<T>, "fastloss: no float atomics (reductions must be deterministic)");
}
template <typename T, typename U>
inline T atomicAdd(T* address, U value) {
  fastloss_emu_integer_atomic<T>();
  return __atomic_fetch_add(address, static_cast<T>(value), __ATOMIC_RELAXED);
}
template <typename T, typename U>
inline T atomicSub(T* address, U value) {
  fastloss_emu_integer_atomic<T>();
  return __atomic_fetch_sub(address, static_cast<T>(value), __ATOMIC_RELAXED);
}
template <typename T, typename U>
inline T atomicExch(T* address, U value) {
  fastloss_emu_integer_atomic<T>();
  return __atomic_exchange_n(address, static_cast<T>(value), __ATOMIC_RELAXED);
}
template <typename T, typename U, typename V>
inline T atomicCAS(T* address, U compare, V value) {
  fastloss_emu_integer_atomic<T>();
  T expected = static_cast<T>(compare);
  __atomic_compare_exchange_n(address, &expected, static_cast<T>(value), false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return expected;
}
template <typename T, typename U>
inline T atomicMax(T* address, U value) {
  fastloss_emu_integer_atomic<T>();
  T old = __atomic_load_n(address, __ATOMIC_RELAXED);
  while (old < static_cast<T>(value) &&
         !__atomic_compare_exchange_n(address, &old, static_cast<T>(value), true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return old;
}
template <typename T, typename U>
inline T atomicMin(T* address, U value) {
  fastloss_emu_integer_atomic<T>();
  T old = __atomic_load_n(address, __ATOMIC_RELAXED);
  while (static_cast<T>(value) < old &&
         !__atomic_compare_exchange_n(address, &old, static_cast<T>(value), true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return old;
}

// ----------------------------------------------------------------------- device functions

inline int __float_as_int(float v) { return __builtin_bit_cast(int, v); }
inline float __int_as_float(int v) { return __builtin_bit_cast(float, v); }
inline unsigned __float_as_uint(float v) { return __builtin_bit_cast(unsigned, v); }
inline long long __double_as_longlong(double v) { return __builtin_bit_cast(long long, v); }
inline double __longlong_as_double(long long v) { return __builtin_bit_cast(double, v); }
inline int __popc(unsigned v) { return __builtin_popcount(v); }
inline int __popcll(unsigned long long v) { return __builtin_popcountll(v); }
inline int __ffs(int v) { return __builtin_ffs(v); }
inline int __ffsll(long long v) { return __builtin_ffsll(v); }
inline int __clz(int v) { return v == 0 ? 32 : __builtin_clz(static_cast<unsigned>(v)); }
template <typename T>
inline T __ldg(const T* p) {
  return *p;
}
// CUDA's max/min: fmax/fmin for floating types (a NaN operand loses), the plain comparison otherwise.
template <bool kMax, typename A, typename B>
inline std::common_type_t<A, B> fastloss_emu_extreme(A a, B b) {
  using T = std::common_type_t<A, B>;
  const T x = static_cast<T>(a), y = static_cast<T>(b);
  if constexpr (std::is_floating_point_v<T>) {
    return kMax ? std::fmax(x, y) : std::fmin(x, y);
  } else {
    return (kMax ? x < y : y < x) ? y : x;
  }
}
template <typename A, typename B>
inline std::common_type_t<A, B> max(A a, B b) {
  return fastloss_emu_extreme<true>(a, b);
}
template <typename A, typename B>
inline std::common_type_t<A, B> min(A a, B b) {
  return fastloss_emu_extreme<false>(a, b);
}

// A failed device-side assert stops the launch; the op raises "device-side assert triggered".
#undef CUDA_KERNEL_ASSERT
#define CUDA_KERNEL_ASSERT(cond) \
  if (!(cond)) fastloss_emu_device_assert(#cond, __FILE__, __LINE__)

// ------------------------------------------------------------------------- the runtime API

typedef enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevice = 101,
  cudaErrorLaunchFailure = 719,
  cudaErrorNotPermitted = 800,
} cudaError_t;
struct CUstream_st;
typedef CUstream_st* cudaStream_t;
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
};
enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxGridDimY = 6,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
};

extern "C" {
const char* cudaGetErrorString(cudaError_t error);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t fastloss_emu_occupancy(int* blocks, const void* kernel, int block_size, size_t dynamic_shared);
cudaError_t cudaMemsetAsync(void* dst, int value, size_t count, cudaStream_t stream);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, cudaMemcpyKind kind, cudaStream_t stream);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, cudaMemcpyKind kind);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaDeviceSynchronize();
}

template <typename Kernel>
inline cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, Kernel kernel, int block_size,
                                                                 size_t dynamic_shared) {
  return fastloss_emu_occupancy(blocks, reinterpret_cast<const void*>(kernel), block_size, dynamic_shared);
}

// The kernels register as the CPU kernels of fastloss_emulated::* (schemas from csrc/ops.cpp, built
// with FASTLOSS_OPS_NAMESPACE=fastloss_emulated): tests/cuda_emulation/emulation.py routes fastloss's
// CPU calls to them inside `emulated_cuda()`.
#undef STABLE_TORCH_LIBRARY_IMPL
#define STABLE_TORCH_LIBRARY_IMPL(ns, k, m) _STABLE_TORCH_LIBRARY_IMPL(fastloss_emulated, CPU, m, C10_UID)
