// CUDA kernels of fastloss::distribution_focal_loss over math/distribution_focal.h: a thread per row
// (rows have few bins — 16/17 — and a warp's rows are one contiguous span, served from L1), a
// grid-stride loop with 64-bit indices, fp32 math for half inputs, the loss sum through
// cuda/reduce.cuh (deterministic). The forward saves each row's lse for the backward.
#include "cuda/launch.cuh"
#include "cuda/reduce.cuh"
#include "ops/distribution_focal.h"

namespace fastloss::distribution_focal {
namespace {

// lse of row r (max-shifted), and its loss.
template <typename scalar_t, typename opmath_t = math_type_t<scalar_t>>
__device__ __forceinline__ opmath_t row_forward(const Args<scalar_t>& a, int64_t r, opmath_t& lse) {
  const scalar_t* x = a.pred + r * a.bins;
  opmath_t top = -INFINITY;
  for (int64_t c = 0; c < a.bins; ++c) top = fmax(top, static_cast<opmath_t>(x[c]));
  opmath_t sum = 0;
  for (int64_t c = 0; c < a.bins; ++c) sum += Ops<opmath_t>::exp(static_cast<opmath_t>(x[c]) - top);
  lse = top + Ops<opmath_t>::log(sum);
  const Bins<opmath_t> b = a.row_bins(r);
  const opmath_t right = b.right >= 0 ? static_cast<opmath_t>(x[b.right]) : opmath_t(0);
  return row_loss(lse, b.w_left, static_cast<opmath_t>(x[b.left]), b.w_right, right) * a.weight_of(r);
}

template <typename scalar_t, typename opmath_t = math_type_t<scalar_t>>
__global__ void forward_none_kernel(Args<scalar_t> a, opmath_t* out, opmath_t* lse) {
  cuda::for_each_element(a.rows, 1, [&](int64_t r, int64_t, int64_t) { out[r] = row_forward(a, r, lse[r]); });
}

template <typename scalar_t, typename opmath_t = math_type_t<scalar_t>>
__global__ void forward_sum_kernel(Args<scalar_t> a, opmath_t* lse, cuda::Partials<opmath_t> partials) {
  opmath_t sum = 0;
  int64_t count = 0;
  cuda::for_each_element(a.rows, 1, [&](int64_t r, int64_t, int64_t) {
    sum += row_forward(a, r, lse[r]);
    ++count;
  });
  partials.store(sum, count);
}

// grad of row r = (grad of "none" at r, or grad / rows of "mean") · weight · (softmax − w_l·e_l − w_r·e_r)
template <typename scalar_t, typename opmath_t = math_type_t<scalar_t>>
__global__ void backward_kernel(Args<scalar_t> a, const opmath_t* upstream, const opmath_t* grad_scalar, bool mean,
                                const opmath_t* lse, scalar_t* gx) {
  opmath_t scale = 1;
  if (grad_scalar != nullptr) scale = *grad_scalar / static_cast<opmath_t>(mean && a.rows > 1 ? a.rows : 1);
  cuda::for_each_element(a.rows, 1, [&](int64_t r, int64_t, int64_t) {
    const Bins<opmath_t> b = a.row_bins(r);
    const opmath_t f = scale * a.weight_of(r) * (upstream != nullptr ? upstream[r] : opmath_t(1));
    const scalar_t* x = a.pred + r * a.bins;
    scalar_t* g = gx + r * a.bins;
    for (int64_t c = 0; c < a.bins; ++c) {
      opmath_t v = Ops<opmath_t>::exp(static_cast<opmath_t>(x[c]) - lse[r]);
      if (c == b.left) v -= b.w_left;
      if (c == b.right) v -= b.w_right;
      g[c] = static_cast<scalar_t>(v * f);
    }
  });
}

struct CudaKernels {
  template <typename scalar_t>
  static void forward(const Args<scalar_t>& a, int64_t reduction, Tensor& loss, Tensor& lse) {
    using opmath_t = math_type_t<scalar_t>;
    const cuda::DeviceGuard guard(loss);
    opmath_t* lse_out = lse.mutable_data_ptr<opmath_t>();
    if (reduction == kNone) {
      if (a.rows == 0) return;
      cuda::launch_over(a.rows, forward_none_kernel<scalar_t>, a, loss.mutable_data_ptr<opmath_t>(), lse_out);
      return;
    }
    Tensor count = empty({}, options(loss).with(kLong));
    cuda::reduce_launch<opmath_t, opmath_t>(cuda::grid_size(forward_sum_kernel<scalar_t>, a.rows), reduction == kMean,
                                            loss, count, forward_sum_kernel<scalar_t>, a, lse_out);
  }

  template <typename scalar_t>
  static void backward(const Args<scalar_t>& a, const Tensor& grad, const Tensor& lse, int64_t reduction,
                       Tensor& grad_pred) {
    using opmath_t = math_type_t<scalar_t>;
    const cuda::DeviceGuard guard(grad_pred);
    if (a.rows == 0) return;
    const bool none = reduction == kNone;
    cuda::launch_over(a.rows, backward_kernel<scalar_t>, a, none ? grad.const_data_ptr<opmath_t>() : nullptr,
                      none ? nullptr : grad.const_data_ptr<opmath_t>(), reduction == kMean,
                      lse.const_data_ptr<opmath_t>(), grad_pred.mutable_data_ptr<scalar_t>());
  }
};

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(fastloss, CUDA, m) {
  m.impl("distribution_focal_loss", TORCH_BOX(&forward<CudaKernels>));
  m.impl("distribution_focal_loss_backward", TORCH_BOX(&backward<CudaKernels>));
}

}  // namespace fastloss::distribution_focal
