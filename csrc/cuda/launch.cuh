#pragma once
// The one launch helper of the CUDA kernels: grid size, the grid-stride element loop over a
// rows × cols layout, and the launch on torch's current stream with its error check — through the
// CUDA runtime and the stable C shim only (aoti_torch_get_current_cuda_stream, the device guard),
// so the CUDA module loads into every torch with the same CUDA major since 2.10.
#include <cuda_runtime.h>
#include <torch/csrc/stable/accelerator.h>
#include <torch/csrc/stable/c/shim.h>
#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include "common/stable_tensor.h"
#include "cuda/kernel_launch.cuh"
#include "cuda/warp.cuh"

#ifndef USE_CUDA  // declared by the shim only under USE_CUDA; defined in libtorch_cuda
extern "C" AOTITorchError aoti_torch_get_current_cuda_stream(int32_t device_index, void** ret_stream);
#endif

namespace fastloss::cuda {

constexpr int kThreads = 256;

inline void check(cudaError_t status) {
  if (status != cudaSuccess)
    throw std::runtime_error(std::string("fastloss: CUDA error: ") + cudaGetErrorString(status));
}

inline int current_device() {
  int device = 0;
  check(cudaGetDevice(&device));
  return device;
}

// The current device's SM count, asked once per device (the stable API has no device properties).
inline int64_t multiprocessors() {
  static std::array<int, 64> cached{};
  const int device = current_device();
  int& count = cached[device % 64];
  if (count == 0) check(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
  return count;
}

inline cudaStream_t current_stream() {
  void* stream = nullptr;
  STABLE_TORCH_ERROR_CODE_CHECK(aoti_torch_get_current_cuda_stream(current_device(), &stream));
  return static_cast<cudaStream_t>(stream);
}

// Makes a tensor's device current for the guard's lifetime (c10::cuda::CUDAGuard's role).
struct DeviceGuard {
  torch::stable::accelerator::DeviceGuard guard;
  explicit DeviceGuard(const Tensor& t) : guard(t.get_device_index()) {}
};

// Resident blocks of `kernel` per SM at kThreads threads, from its registers and shared memory
// (cudaOccupancyMaxActiveBlocksPerMultiprocessor), asked once per kernel and device. Keyed by the
// kernel's address: template variants of one signature differ in registers, hence in occupancy, and
// a grid (so a reduction's bits) must not depend on which variant a process happened to run first.
inline int blocks_per_sm(const void* kernel) {
  static std::mutex mutex;
  static std::map<std::pair<int, const void*>, int> cached;
  const int device = current_device();
  const std::lock_guard<std::mutex> lock(mutex);
  int& per_sm = cached[{device, kernel}];
  if (per_sm == 0) {
    int n = 0;
    check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, kThreads, 0));
    per_sm = std::max(n, 1);
  }
  return per_sm;
}

template <typename... Params>
inline int blocks_per_sm(void (*kernel)(Params...)) {
  return blocks_per_sm(reinterpret_cast<const void*>(kernel));
}

// Blocks for a grid-stride loop of `kernel` over n elements: one full wave of resident blocks at
// most. The number depends only on n, the kernel and the device, so per-block partial sums (hence
// reductions) are reproducible.
template <typename Kernel>
inline int grid_size(Kernel kernel, int64_t n) {
  const int64_t sms = multiprocessors();
  return static_cast<int>(std::clamp<int64_t>((n + kThreads - 1) / kThreads, 1, sms * blocks_per_sm(kernel)));
}

// fn(i, row, col) for each flat element i of a rows × cols layout owned by this thread. Indices
// are 64-bit; row and col advance by addition, so there is no 64-bit division per element.
template <typename Fn>
__device__ __forceinline__ void for_each_element(int64_t n, int64_t cols, const Fn& fn) {
  int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t stride_rows = stride / cols, stride_cols = stride - stride_rows * cols;
  int64_t row = i / cols, col = i - row * cols;
  for (; i < n; i += stride) {
    fn(i, row, col);
    row += stride_rows;
    col += stride_cols;
    if (col >= cols) {
      col -= cols;
      ++row;
    }
  }
}

// A launch configuration CUDA accepts: a grid beyond its limits is an error here, in words, never a
// launch failure (grid.y and grid.z count segments and layers in some kernels).
inline void check_grid(dim3 blocks) {
  if (blocks.x < 1 || blocks.y < 1 || blocks.z < 1 || blocks.y > 65535 || blocks.z > 65535)
    throw std::invalid_argument(detail::message("fastloss: a CUDA grid of (", blocks.x, ", ", blocks.y, ", ", blocks.z,
                                                ") blocks is outside CUDA's limits (y and z at most 65535, each at "
                                                "least 1): too many layers or segments for one launch"));
}

template <typename Kernel, typename... Args>
inline void launch(dim3 blocks, Kernel kernel, Args... args) {
  check_grid(blocks);
  launch_kernel(kernel, blocks, dim3(kThreads), current_stream(), args...);
  check(cudaGetLastError());
}

// A grid-stride kernel over n elements, on grid_size(kernel, n) blocks.
template <typename Kernel, typename... Args>
inline void launch_over(int64_t n, Kernel kernel, Args... args) {
  launch(grid_size(kernel, n), kernel, args...);
}

}  // namespace fastloss::cuda
