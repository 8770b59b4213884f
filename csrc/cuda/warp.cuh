#pragma once
// The warp as the kernels see it: its width is a compile-time constant of ours (32 lanes on NVIDIA
// GPUs; 64 under ROCm, or in the CUDA emulation's wavefront run), and lane masks are as wide as the
// warp. No kernel writes 32, 31, 5 or 0xffffffff for a warp: they use these.
#include <cstdint>
#include <type_traits>

#ifndef FASTLOSS_WARP_SIZE
#define FASTLOSS_WARP_SIZE 32
#endif

namespace fastloss::cuda {

constexpr int kWarpSize = FASTLOSS_WARP_SIZE;
static_assert(kWarpSize == 32 || kWarpSize == 64, "a warp has 32 or 64 lanes");

// A set of lanes (one bit per lane), the type of the *_sync intrinsics' masks and of __ballot_sync.
using LaneMask = std::conditional_t<(kWarpSize > 32), unsigned long long, unsigned>;
constexpr LaneMask kAllLanes = ~LaneMask(0);

__device__ __forceinline__ int lane_id() { return static_cast<int>(threadIdx.x % kWarpSize); }
__device__ __forceinline__ int warp_id() { return static_cast<int>(threadIdx.x / kWarpSize); }
// The lanes below `lane` (for a rank among the lanes of a ballot).
__device__ __forceinline__ LaneMask lanes_below(int lane) { return (LaneMask(1) << lane) - 1; }
__device__ __forceinline__ int lane_count(LaneMask lanes) {
  if constexpr (sizeof(LaneMask) == 8) {
    return __popcll(lanes);
  } else {
    return __popc(lanes);
  }
}

}  // namespace fastloss::cuda
