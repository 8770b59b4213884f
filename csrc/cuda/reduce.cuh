#pragma once
// The one reduction helper of the CUDA kernels, deterministic by construction: each block adds
// its threads' values in a fixed tree and writes one partial; a single block then adds the
// partials in index order. No float atomics, so the same inputs on the same device give bitwise
// the same loss on every run.
#include "cuda/launch.cuh"

namespace fastloss::cuda {

// Sum over the block (blockDim.x == kThreads); the result is valid in thread 0.
template <typename T>
__device__ T block_sum(T v) {
  static_assert(kThreads % kWarpSize == 0 && kThreads / kWarpSize <= kWarpSize, "one warp adds the warps' sums");
  __shared__ T warp_sums[kThreads / kWarpSize];
  for (int o = kWarpSize / 2; o > 0; o >>= 1) v += __shfl_down_sync(kAllLanes, v, o);
  __syncthreads();  // a previous call may still be reading warp_sums
  if (lane_id() == 0) warp_sums[warp_id()] = v;
  __syncthreads();
  v = threadIdx.x < kThreads / kWarpSize ? warp_sums[threadIdx.x] : T(0);
  if (threadIdx.x < kWarpSize)
    for (int o = kWarpSize / 2; o > 0; o >>= 1) v += __shfl_down_sync(kAllLanes, v, o);
  return v;
}

// Per-block partial sums and counts of a grid-stride kernel (one row of gridDim.x blocks per
// blockIdx.y, the segment of a segmented reduction).
template <typename acc_t>
struct Partials {
  acc_t* sums;
  int64_t* counts;

  __device__ void store(acc_t sum, int64_t count) const {
    sum = block_sum(sum);
    count = block_sum(count);
    if (threadIdx.x == 0) {
      const int64_t at = static_cast<int64_t>(blockIdx.y) * gridDim.x + blockIdx.x;
      sums[at] = sum;
      counts[at] = count;
    }
  }
};

// Block s adds the partials of segment s.
template <typename scalar_t, typename acc_t>
__global__ void combine_partials(Partials<acc_t> p, int parts, bool mean, scalar_t* loss, int64_t* count) {
  acc_t sum = 0;
  int64_t n = 0;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * parts;
  for (int i = threadIdx.x; i < parts; i += kThreads) {
    sum += p.sums[first + i];
    n += p.counts[first + i];
  }
  sum = block_sum(sum);
  n = block_sum(n);
  if (threadIdx.x == 0) {
    count[blockIdx.x] = n;
    loss[blockIdx.x] = static_cast<scalar_t>(mean ? sum / static_cast<acc_t>(n > 0 ? n : 1) : sum);
  }
}

// Runs kernel(..., Partials) on a blocks × segments grid, then writes each segment's sum (or mean
// over its counted elements) into loss[s] and its count into count[s] (0-d tensors for one segment).
template <typename scalar_t, typename acc_t, typename Kernel, typename... Args>
void reduce_launch_segments(int blocks, int segments, bool mean, Tensor& loss, Tensor& count, Kernel kernel,
                            Args... args) {
  const Tensor sums = empty({int64_t(blocks) * segments}, options(loss).with(scalar_type_of<acc_t>));
  const Tensor counts = empty({int64_t(blocks) * segments}, options(loss).with(kLong));
  const Partials<acc_t> p{sums.mutable_data_ptr<acc_t>(), counts.mutable_data_ptr<int64_t>()};
  launch(dim3(blocks, segments), kernel, args..., p);
  launch(segments, combine_partials<scalar_t, acc_t>, p, blocks, mean, loss.mutable_data_ptr<scalar_t>(),
         count.mutable_data_ptr<int64_t>());
}

template <typename scalar_t, typename acc_t, typename Kernel, typename... Args>
void reduce_launch(int blocks, bool mean, Tensor& loss, Tensor& count, Kernel kernel, Args... args) {
  reduce_launch_segments<scalar_t, acc_t>(blocks, 1, mean, loss, count, kernel, args...);
}

}  // namespace fastloss::cuda
