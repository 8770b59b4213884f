// CUDA kernels of fastloss::box_iou_loss: one pair per thread in a grid-stride loop over
// math/box_iou.h (the formulas the CPU tests prove), fp32 math for half inputs, 64-bit indices,
// reductions through cuda/reduce.cuh.
#include "cuda/launch.cuh"
#include "cuda/reduce.cuh"
#include "ops/box_iou.h"

namespace fastloss::box_iou {
namespace {

template <bool kGrad, typename scalar_t, typename target_t, typename opmath_t>
__device__ __forceinline__ opmath_t eval(const Args<scalar_t, target_t>& a, int64_t i, opmath_t (&dp)[4],
                                         opmath_t (&dt)[4]) {
  opmath_t p[4], t[4];
  for (int c = 0; c < 4; ++c) {
    p[c] = static_cast<opmath_t>(a.p[i * 4 + c]);
    t[c] = static_cast<opmath_t>(a.t[i * 4 + c]);
  }
  return pair_loss<kGrad>(a.prm, p, t, dp, dt);
}

template <typename scalar_t, typename target_t, typename opmath_t = pair_math_t<scalar_t, target_t>>
__global__ void forward_none_kernel(Args<scalar_t, target_t> a, opmath_t* out) {
  cuda::for_each_element(a.pairs, 1, [&](int64_t i, int64_t, int64_t) {
    opmath_t unused[4];
    out[i] = eval<false>(a, i, unused, unused) * a.weight.template value<opmath_t>(i, 0);
  });
}

template <typename scalar_t, typename target_t, typename opmath_t = pair_math_t<scalar_t, target_t>>
__global__ void forward_sum_kernel(Args<scalar_t, target_t> a, cuda::Partials<opmath_t> partials) {
  opmath_t sum = 0;
  int64_t count = 0;
  cuda::for_each_element(a.pairs, 1, [&](int64_t i, int64_t, int64_t) {
    opmath_t unused[4];
    sum += eval<false>(a, i, unused, unused) * a.weight.template value<opmath_t>(i, 0);
    ++count;
  });
  partials.store(sum, count);
}

// d loss / d pred and (kGradT) / d target × weight × (grad of "none", or grad / pairs of "mean"); without
// kGradT the target's adjoints are dead code
template <typename scalar_t, typename target_t, bool kGradT, typename opmath_t = pair_math_t<scalar_t, target_t>>
__global__ void backward_kernel(Args<scalar_t, target_t> a, RowOperand<opmath_t> grad, const opmath_t* grad_scalar,
                                bool mean, scalar_t* gp, target_t* gt) {
  opmath_t scale = 1;
  if (grad_scalar != nullptr) scale = *grad_scalar / static_cast<opmath_t>(mean && a.pairs > 1 ? a.pairs : 1);
  cuda::for_each_element(a.pairs, 1, [&](int64_t i, int64_t, int64_t) {
    opmath_t dp[4], dt[4];
    eval<true>(a, i, dp, dt);
    const opmath_t f = scale * a.weight.template value<opmath_t>(i, 0) * grad.template value<opmath_t>(i, 0);
    for (int c = 0; c < 4; ++c) {
      if (gp != nullptr) gp[i * 4 + c] = static_cast<scalar_t>(dp[c] * f);
      if constexpr (kGradT) gt[i * 4 + c] = static_cast<target_t>(dt[c] * f);
    }
  });
}

struct CudaKernels {
  template <typename scalar_t, typename target_t>
  static void forward(const Args<scalar_t, target_t>& a, int64_t reduction, Tensor& loss) {
    using opmath_t = pair_math_t<scalar_t, target_t>;
    const cuda::DeviceGuard guard(loss);
    if (reduction == kNone) {
      if (a.pairs > 0)
        cuda::launch_over(a.pairs, forward_none_kernel<scalar_t, target_t>, a, loss.mutable_data_ptr<opmath_t>());
      return;
    }
    Tensor count = empty({}, options(loss).with(kLong));
    cuda::reduce_launch<opmath_t, opmath_t>(cuda::grid_size(forward_sum_kernel<scalar_t, target_t>, a.pairs),
                                            reduction == kMean, loss, count, forward_sum_kernel<scalar_t, target_t>, a);
  }

  template <typename scalar_t, typename target_t>
  static void backward(const Args<scalar_t, target_t>& a, const Tensor& grad, int64_t reduction, Tensor& gp,
                       Tensor& gt) {
    using opmath_t = pair_math_t<scalar_t, target_t>;
    const cuda::DeviceGuard guard(grad);
    if (a.pairs == 0) return;
    const bool unreduced = reduction == kNone;
    const auto launch = [&](auto kernel) {
      cuda::launch_over(a.pairs, kernel, a, unreduced ? row_operand<opmath_t>(grad) : RowOperand<opmath_t>{},
                        unreduced ? nullptr : grad.const_data_ptr<opmath_t>(), reduction == kMean,
                        gp.numel() > 0 ? gp.mutable_data_ptr<scalar_t>() : nullptr,
                        gt.numel() > 0 ? gt.mutable_data_ptr<target_t>() : nullptr);
    };
    if (gt.numel() > 0)
      launch(backward_kernel<scalar_t, target_t, true>);
    else
      launch(backward_kernel<scalar_t, target_t, false>);
  }
};

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(fastloss, CUDA, m) {
  m.impl("box_iou_loss", TORCH_BOX(&forward<CudaKernels>));
  m.impl("box_iou_loss_backward", TORCH_BOX(&backward<CudaKernels>));
}

}  // namespace fastloss::box_iou
