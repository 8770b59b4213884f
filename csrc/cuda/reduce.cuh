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
  __shared__ T warp_sums[kThreads / 32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  __syncthreads();  // a previous call may still be reading warp_sums
  if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x >> 5] = v;
  __syncthreads();
  v = threadIdx.x < kThreads / 32 ? warp_sums[threadIdx.x] : T(0);
  if (threadIdx.x < 32)
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

// Per-block partial sums and counts of a grid-stride kernel.
template <typename acc_t>
struct Partials {
  acc_t* sums;
  int64_t* counts;

  __device__ void store(acc_t sum, int64_t count) const {
    sum = block_sum(sum);
    count = block_sum(count);
    if (threadIdx.x == 0) {
      sums[blockIdx.x] = sum;
      counts[blockIdx.x] = count;
    }
  }
};

template <typename scalar_t, typename acc_t>
__global__ void combine_partials(Partials<acc_t> p, int parts, bool mean, scalar_t* loss, int64_t* count) {
  acc_t sum = 0;
  int64_t n = 0;
  for (int i = threadIdx.x; i < parts; i += kThreads) {
    sum += p.sums[i];
    n += p.counts[i];
  }
  sum = block_sum(sum);
  n = block_sum(n);
  if (threadIdx.x == 0) {
    *count = n;
    *loss = static_cast<scalar_t>(mean ? sum / static_cast<acc_t>(n > 0 ? n : 1) : sum);
  }
}

// Runs kernel(..., Partials) on `blocks` blocks, then writes the sum (or mean over the counted
// elements) into the 0-d `loss` and the count into the 0-d int64 `count`.
template <typename scalar_t, typename acc_t, typename Kernel, typename... Args>
void reduce_launch(int blocks, bool mean, Tensor& loss, Tensor& count, Kernel kernel, Args... args) {
  const Tensor sums = empty({blocks}, options(loss).with(scalar_type_of<acc_t>));
  const Tensor counts = empty({blocks}, options(loss).with(kLong));
  const Partials<acc_t> p{sums.mutable_data_ptr<acc_t>(), counts.mutable_data_ptr<int64_t>()};
  launch(blocks, kernel, args..., p);
  launch(1, combine_partials<scalar_t, acc_t>, p, blocks, mean, loss.mutable_data_ptr<scalar_t>(),
         count.mutable_data_ptr<int64_t>());
}

}  // namespace fastloss::cuda
