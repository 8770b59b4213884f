// CUDA kernels of fastloss::prototype_mask_loss over math/mask_loss.h (the formulas the CPU tests
// prove). Forward and the coefficients' gradient: a block per positive anchor, its threads over the
// box's pixels, summed in the block's fixed tree. The prototypes' gradient: each image's positives
// listed in anchor order (a warp per image), then a thread per pixel adding every positive whose box
// holds it, in that order, so each pixel's sum is the CPU's to the bit. No atomics, no host sync.
#include <cmath>
#include "cuda/launch.cuh"
#include "cuda/reduce.cuh"
#include "ops/mask_loss.h"

namespace fastloss::mask_loss {
namespace {

// Blocks for a loop of one anchor per block: enough to fill the GPU; the results do not depend on it.
inline int anchor_blocks(int64_t anchors) {
  return static_cast<int>(std::clamp<int64_t>(anchors, 1, cuda::multiprocessors() * 32));
}

// z = Σⱼ cⱼ·Pⱼ at flat pixel `offset` of image b (j in order, as the CPU's).
template <typename scalar_t, typename opmath_t = math_type_t<scalar_t>>
__device__ __forceinline__ opmath_t logit(const Args<scalar_t>& a, const opmath_t* c, int64_t b, int64_t offset) {
  opmath_t z = 0;
  for (int64_t j = 0; j < a.k; ++j) z = z + c[j] * static_cast<opmath_t>(a.proto(b, j)[offset]);
  return z;
}

// The block's anchor p: its coefficients into shared c; false where it has no loss (or names no mask).
template <typename scalar_t, typename opmath_t = math_type_t<scalar_t>>
__device__ __forceinline__ bool load_anchor(const Args<scalar_t>& a, int64_t p, opmath_t* c, const opmath_t*& plane,
                                            opmath_t& marker, bool& bad) {
  bad = false;
  if (!a.fg_mask[p]) return false;
  if (!a.target(p, plane, marker)) return bad = true, false;
  const int64_t b = p / a.anchors, anchor = p % a.anchors;
  __syncthreads();  // (the previous anchor's threads may still read c)
  for (int64_t j = threadIdx.x; j < a.k; j += blockDim.x) c[j] = a.coefficient(b, j, anchor);
  __syncthreads();
  return true;
}

template <typename scalar_t, typename opmath_t = math_type_t<scalar_t>>
__global__ void forward_kernel(Args<scalar_t> a, opmath_t* loss) {
  __shared__ opmath_t c[kMaxCoefficients];
  for (int64_t p = blockIdx.x; p < a.batch * a.anchors; p += gridDim.x) {
    const opmath_t* plane;
    opmath_t marker;
    bool bad;
    if (!load_anchor(a, p, c, plane, marker, bad)) {  // (uniform across the block)
      if (threadIdx.x == 0) loss[p] = bad ? opmath_t(NAN) : opmath_t(0);
      continue;
    }
    const int64_t b = p / a.anchors;
    const Span cols = a.columns(p), rows = a.rows(p);
    const int64_t width = cols.end - cols.begin, n = width * (rows.end - rows.begin);
    opmath_t sum = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const int64_t offset = (rows.begin + i / width) * a.w + cols.begin + i % width;
      opmath_t unused;
      sum += pixel_loss<false>(logit(a, c, b, offset), target_value(plane[offset], marker), unused);
    }
    sum = cuda::block_sum(sum);
    if (threadIdx.x == 0) loss[p] = a.finish(p, sum);
  }
}

// ∂/∂cⱼ = g / (H·W) / area · Σ_{box} (σ(z) − t)·Pⱼ: a block per anchor.
template <typename scalar_t, typename opmath_t = math_type_t<scalar_t>>
__global__ void coefficients_grad_kernel(Args<scalar_t> a, const opmath_t* upstream, scalar_t* out) {
  __shared__ opmath_t c[kMaxCoefficients];
  for (int64_t p = blockIdx.x; p < a.batch * a.anchors; p += gridDim.x) {
    const int64_t b = p / a.anchors, anchor = p % a.anchors;
    const opmath_t* plane;
    opmath_t marker;
    bool bad;
    if (!load_anchor(a, p, c, plane, marker, bad)) {
      for (int64_t j = threadIdx.x; j < a.k; j += blockDim.x) out[(b * a.k + j) * a.anchors + anchor] = scalar_t(0);
      continue;
    }
    const Span cols = a.columns(p), rows = a.rows(p);
    const int64_t width = cols.end - cols.begin, n = width * (rows.end - rows.begin);
    opmath_t acc[kMaxCoefficients];
#pragma unroll
    for (int j = 0; j < kMaxCoefficients; ++j) acc[j] = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const int64_t offset = (rows.begin + i / width) * a.w + cols.begin + i % width;
      const opmath_t r = pixel_grad(logit(a, c, b, offset), target_value(plane[offset], marker));
#pragma unroll
      for (int j = 0; j < kMaxCoefficients; ++j)
        if (j < a.k) acc[j] += r * static_cast<opmath_t>(a.proto(b, j)[offset]);
    }
    const opmath_t scale = a.finish(p, upstream[p]);
    for (int j = 0; j < a.k; ++j) {
      const opmath_t s = cuda::block_sum(acc[j]);
      if (threadIdx.x == 0) out[(b * a.k + j) * a.anchors + anchor] = static_cast<scalar_t>(s * scale);
    }
  }
}

// Image b's positives (with a target mask) in anchor order into list[b·A …], their number into count[b]:
// a warp per image, 32 anchors a step by ballot.
template <typename scalar_t, typename opmath_t = math_type_t<scalar_t>>
__global__ void list_positives_kernel(Args<scalar_t> a, int64_t* list, int64_t* count) {
  const int lane = cuda::lane_id();
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / cuda::kWarpSize);
  for (int64_t b = static_cast<int64_t>(blockIdx.x) * (blockDim.x / cuda::kWarpSize) + cuda::warp_id(); b < a.batch;
       b += warps) {
    int64_t n = 0;
    for (int64_t base = 0; base < a.anchors; base += cuda::kWarpSize) {
      const int64_t anchor = base + lane, p = b * a.anchors + anchor;
      const opmath_t* plane;
      opmath_t marker;
      const bool positive = anchor < a.anchors && a.fg_mask[p] && a.target(p, plane, marker);
      const cuda::LaneMask lanes = __ballot_sync(cuda::kAllLanes, positive);
      if (positive) list[b * a.anchors + n + cuda::lane_count(lanes & cuda::lanes_below(lane))] = anchor;
      n += cuda::lane_count(lanes);
    }
    if (lane == 0) count[b] = n;
  }
}

// ∂/∂Pⱼ at one pixel per thread: Σ over image b's positives whose box holds it, in anchor order, of
// g / (H·W) / area · (σ(z) − t)·cⱼ.
template <typename scalar_t, typename opmath_t = math_type_t<scalar_t>>
__global__ void protos_grad_kernel(Args<scalar_t> a, const opmath_t* upstream, const int64_t* list,
                                   const int64_t* count, scalar_t* out) {
  cuda::for_each_element(a.batch * a.pixels(), a.pixels(), [&](int64_t, int64_t b, int64_t offset) {
    const int64_t y = offset / a.w, x = offset % a.w;
    opmath_t proto[kMaxCoefficients], acc[kMaxCoefficients];
#pragma unroll
    for (int j = 0; j < kMaxCoefficients; ++j) {
      acc[j] = 0;
      proto[j] = j < a.k ? static_cast<opmath_t>(a.proto(b, j)[offset]) : opmath_t(0);
    }
    for (int64_t i = 0; i < count[b]; ++i) {
      const int64_t anchor = list[b * a.anchors + i], p = b * a.anchors + anchor;
      const Span cols = a.columns(p), rows = a.rows(p);
      if (y < rows.begin || y >= rows.end || x < cols.begin || x >= cols.end) continue;
      const opmath_t* plane;
      opmath_t marker;
      a.target(p, plane, marker);
      opmath_t z = 0;
#pragma unroll
      for (int j = 0; j < kMaxCoefficients; ++j)
        if (j < a.k) z = z + a.coefficient(b, j, anchor) * proto[j];
      const opmath_t r = pixel_grad(z, target_value(plane[offset], marker)) * a.finish(p, upstream[p]);
#pragma unroll
      for (int j = 0; j < kMaxCoefficients; ++j)
        if (j < a.k) acc[j] = acc[j] + r * a.coefficient(b, j, anchor);
    }
#pragma unroll
    for (int j = 0; j < kMaxCoefficients; ++j)
      if (j < a.k) out[(b * a.k + j) * a.pixels() + offset] = static_cast<scalar_t>(acc[j]);
  });
}

struct CudaKernels {
  template <typename scalar_t>
  static void forward(const Args<scalar_t>& a, math_type_t<scalar_t>* loss) {
    const int64_t n = a.batch * a.anchors;
    if (n > 0) cuda::launch(anchor_blocks(n), forward_kernel<scalar_t>, a, loss);
  }

  template <typename scalar_t>
  static void backward(const Args<scalar_t>& a, const math_type_t<scalar_t>* upstream, scalar_t* grad_coefficients,
                       scalar_t* grad_protos, const Tensor& like) {
    const int64_t n = a.batch * a.anchors;
    if (n > 0) cuda::launch(anchor_blocks(n), coefficients_grad_kernel<scalar_t>, a, upstream, grad_coefficients);
    if (a.batch * a.pixels() * a.k == 0) return;
    Tensor list = empty({std::max<int64_t>(n, 1)}, options(like).with(kLong));
    Tensor count = empty({a.batch}, options(like).with(kLong));
    int64_t* list_ptr = list.mutable_data_ptr<int64_t>();
    int64_t* count_ptr = count.mutable_data_ptr<int64_t>();
    const int64_t warps_per_block = cuda::kThreads / cuda::kWarpSize;
    cuda::launch(static_cast<int>((a.batch + warps_per_block - 1) / warps_per_block), list_positives_kernel<scalar_t>,
                 a, list_ptr, count_ptr);
    cuda::launch_over(a.batch * a.pixels(), protos_grad_kernel<scalar_t>, a, upstream,
                      static_cast<const int64_t*>(list_ptr), static_cast<const int64_t*>(count_ptr), grad_protos);
  }
};

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(fastloss, CUDA, m) {
  m.impl("prototype_mask_loss", TORCH_BOX(&forward<CudaKernels>));
  m.impl("prototype_mask_loss_backward", TORCH_BOX(&backward<CudaKernels>));
}

}  // namespace fastloss::mask_loss
