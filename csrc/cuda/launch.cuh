#pragma once
// The one launch helper of the CUDA kernels: grid size, the grid-stride element loop over a
// rows × cols layout, and the launch on the current stream with its error check.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <algorithm>
#include <cstdint>

namespace fastloss::cuda {

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n elements: enough to fill the device, and a number that
// depends only on n and the device, so per-block partial sums (hence reductions) are reproducible.
inline int grid_size(int64_t n) {
  const int64_t sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  return static_cast<int>(std::clamp<int64_t>((n + kThreads - 1) / kThreads, 1, sms * 8));
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

}  // namespace fastloss::cuda
