// CUDA kernels of fastloss::balanced_l1_loss: one element per thread in a grid-stride loop over
// math/balanced_l1.h (the formula the CPU tests prove), fp32 math for half inputs, 64-bit indices,
// reductions through cuda/reduce.cuh.
#include "cuda/launch.cuh"
#include "cuda/reduce.cuh"
#include "ops/balanced_l1.h"

namespace fastloss::balanced_l1 {
namespace {

template <typename scalar_t, typename opmath_t = math_type_t<scalar_t>>
__device__ __forceinline__ opmath_t weighted(const Args<scalar_t>& a, int64_t i) {
  opmath_t unused;
  const opmath_t l = element_loss<false>(a.prm, static_cast<opmath_t>(a.pred[i]), static_cast<opmath_t>(a.target[i]),
                                         unused);
  return a.weight != nullptr ? l * a.weight[i] : l;
}

template <typename scalar_t, typename opmath_t = math_type_t<scalar_t>>
__global__ void forward_none_kernel(Args<scalar_t> a, opmath_t* out) {
  cuda::for_each_element(a.n, 1, [&](int64_t i, int64_t, int64_t) { out[i] = weighted(a, i); });
}

template <typename scalar_t, typename opmath_t = math_type_t<scalar_t>>
__global__ void forward_sum_kernel(Args<scalar_t> a, cuda::Partials<opmath_t> partials) {
  opmath_t sum = 0;
  int64_t count = 0;
  cuda::for_each_element(a.n, 1, [&](int64_t i, int64_t, int64_t) {
    sum += weighted(a, i);
    ++count;
  });
  partials.store(sum, count);
}

// dL/dpred × weight × (the upstream gradient of "none", or of the reduced loss / n for "mean")
template <typename scalar_t, typename opmath_t = math_type_t<scalar_t>>
__global__ void backward_kernel(Args<scalar_t> a, const opmath_t* upstream, const opmath_t* grad_scalar, bool mean,
                                scalar_t* grad_pred) {
  opmath_t scale = 1;
  if (grad_scalar != nullptr) scale = *grad_scalar / static_cast<opmath_t>(mean && a.n > 1 ? a.n : 1);
  cuda::for_each_element(a.n, 1, [&](int64_t i, int64_t, int64_t) {
    opmath_t g;
    element_loss<true>(a.prm, static_cast<opmath_t>(a.pred[i]), static_cast<opmath_t>(a.target[i]), g);
    g *= scale;
    if (a.weight != nullptr) g *= a.weight[i];
    if (upstream != nullptr) g *= upstream[i];
    grad_pred[i] = static_cast<scalar_t>(g);
  });
}

struct CudaKernels {
  template <typename scalar_t>
  static void forward(const Args<scalar_t>& a, int64_t reduction, Tensor& loss) {
    using opmath_t = math_type_t<scalar_t>;
    const cuda::DeviceGuard guard(loss);
    if (reduction == kNone) {
      if (a.n > 0) cuda::launch_over(a.n, forward_none_kernel<scalar_t>, a, loss.mutable_data_ptr<opmath_t>());
      return;
    }
    Tensor count = empty({}, options(loss).with(kLong));
    cuda::reduce_launch<opmath_t, opmath_t>(cuda::grid_size(forward_sum_kernel<scalar_t>, a.n), reduction == kMean,
                                            loss, count, forward_sum_kernel<scalar_t>, a);
  }

  template <typename scalar_t>
  static void backward(const Args<scalar_t>& a, const Tensor& grad, int64_t reduction, Tensor& grad_pred) {
    using opmath_t = math_type_t<scalar_t>;
    const cuda::DeviceGuard guard(grad);
    if (a.n == 0) return;
    const bool unreduced = reduction == kNone;
    cuda::launch_over(a.n, backward_kernel<scalar_t>, a, unreduced ? grad.const_data_ptr<opmath_t>() : nullptr,
                      unreduced ? nullptr : grad.const_data_ptr<opmath_t>(), reduction == kMean,
                      grad_pred.mutable_data_ptr<scalar_t>());
  }
};

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(fastloss, CUDA, m) {
  m.impl("balanced_l1_loss", TORCH_BOX(&forward<CudaKernels>));
  m.impl("balanced_l1_loss_backward", TORCH_BOX(&backward<CudaKernels>));
}

}  // namespace fastloss::balanced_l1
