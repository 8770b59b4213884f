#pragma once
// The one launch helper of the CUDA kernels: grid size, the grid-stride element loop over a
// rows × cols layout, and the launch on the current stream with its error check.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace fastloss::cuda {

constexpr int kThreads = 256;

// FASTLOSS_CUDA_LAUNCH=legacy selects the launch design every kernel had before the occupancy-based
// one below (8 blocks per SM, a warp per softmax row, 4 positions per overlap thread, chunk sums
// added serially): kept until a GPU run has compared the two side by side.
inline bool legacy_launch() {
  static const bool legacy = [] {
    const char* v = std::getenv("FASTLOSS_CUDA_LAUNCH");
    return v != nullptr && std::strcmp(v, "legacy") == 0;
  }();
  return legacy;
}

// Resident blocks of `kernel` per SM at kThreads threads, from its registers and shared memory
// (cudaOccupancyMaxActiveBlocksPerMultiprocessor), cached per device; 8 in the legacy design.
template <typename Kernel>
inline int blocks_per_sm(Kernel kernel) {
  if (legacy_launch()) return 8;
  static std::array<int, 64> cached{};  // per kernel (this template's instance) and device
  const int device = at::cuda::current_device();
  int& per_sm = cached[device % 64];
  if (per_sm == 0) {
    int n = 0;
    C10_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, kThreads, 0));
    per_sm = std::max(n, 1);
  }
  return per_sm;
}

// Blocks for a grid-stride loop of `kernel` over n elements: one full wave of resident blocks at
// most. The number depends only on n, the kernel and the device, so per-block partial sums (hence
// reductions) are reproducible.
template <typename Kernel>
inline int grid_size(Kernel kernel, int64_t n) {
  const int64_t sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
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

template <typename Kernel, typename... Args>
inline void launch(int blocks, Kernel kernel, Args... args) {
  kernel<<<blocks, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(args...);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// A grid-stride kernel over n elements, on grid_size(kernel, n) blocks.
template <typename Kernel, typename... Args>
inline void launch_over(int64_t n, Kernel kernel, Args... args) {
  launch(grid_size(kernel, n), kernel, args...);
}

}  // namespace fastloss::cuda
