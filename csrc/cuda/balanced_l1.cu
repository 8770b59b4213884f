// CUDA kernels of fastloss::balanced_l1_loss: one element per thread in a grid-stride loop over
// math/balanced_l1.h (the formula the CPU tests prove), fp32 math for half inputs, 64-bit indices,
// reductions through cuda/reduce.cuh.
#include "cuda/launch.cuh"
#include "cuda/reduce.cuh"
#include "ops/balanced_l1.h"

namespace fastloss::balanced_l1 {
namespace {

// The weighted loss of element i; with kKeep also its dL/dpred into kept[i].
template <bool kKeep, typename scalar_t, typename opmath_t = math_type_t<scalar_t>>
__device__ __forceinline__ opmath_t weighted(const Args<scalar_t>& a, int64_t i, scalar_t* kept) {
  opmath_t g;
  const opmath_t l =
      element_loss<true, kKeep>(a.prm, static_cast<opmath_t>(a.pred[i]), static_cast<opmath_t>(a.target[i]), g);
  if constexpr (kKeep) kept[i] = static_cast<scalar_t>(g);
  return a.weight != nullptr ? l * a.weight[i] : l;
}

template <bool kKeep, typename scalar_t, typename opmath_t = math_type_t<scalar_t>>
__global__ void forward_none_kernel(Args<scalar_t> a, opmath_t* out, scalar_t* kept) {
  cuda::for_each_element(a.n, 1, [&](int64_t i, int64_t, int64_t) { out[i] = weighted<kKeep>(a, i, kept); });
}

template <bool kKeep, typename scalar_t, typename opmath_t = math_type_t<scalar_t>>
__global__ void forward_sum_kernel(Args<scalar_t> a, scalar_t* kept, cuda::Partials<opmath_t> partials) {
  opmath_t sum = 0;
  int64_t count = 0;
  cuda::for_each_element(a.n, 1, [&](int64_t i, int64_t, int64_t) {
    sum += weighted<kKeep>(a, i, kept);
    ++count;
  });
  partials.store(sum, count);
}

// dL/dpred × weight × (the upstream gradient of "none", or of the reduced loss / n for "mean");
// dL/dpred recomputed, or (kInPlace) read from grad_pred, where the forward kept it.
template <bool kInPlace, typename scalar_t, typename opmath_t = math_type_t<scalar_t>>
__global__ void backward_kernel(Args<scalar_t> a, const opmath_t* upstream, const opmath_t* grad_scalar, bool mean,
                                scalar_t* grad_pred) {
  opmath_t scale = 1;
  if (grad_scalar != nullptr) scale = *grad_scalar / static_cast<opmath_t>(mean && a.n > 1 ? a.n : 1);
  cuda::for_each_element(a.n, 1, [&](int64_t i, int64_t, int64_t) {
    opmath_t g;
    if constexpr (kInPlace) {
      g = static_cast<opmath_t>(grad_pred[i]);
    } else {
      element_loss<false, true>(a.prm, static_cast<opmath_t>(a.pred[i]), static_cast<opmath_t>(a.target[i]), g);
    }
    g *= scale;
    if (a.weight != nullptr) g *= a.weight[i];
    if (upstream != nullptr) g *= upstream[i];
    grad_pred[i] = static_cast<scalar_t>(g);
  });
}

struct CudaKernels {
  // (only float32 and float64 keep their gradient: ops/balanced_l1.h refuses it for the half types)
  template <typename scalar_t>
  static void forward(const Args<scalar_t>& a, int64_t reduction, Tensor& loss, scalar_t* kept) {
    if constexpr (std::is_floating_point_v<scalar_t>) {
      if (kept != nullptr) return forward_keeping<true>(a, reduction, loss, kept);
    }
    forward_keeping<false>(a, reduction, loss, kept);
  }

  template <bool kKeep, typename scalar_t>
  static void forward_keeping(const Args<scalar_t>& a, int64_t reduction, Tensor& loss, scalar_t* kept) {
    using opmath_t = math_type_t<scalar_t>;
    const cuda::DeviceGuard guard(loss);
    if (reduction == kNone) {
      if (a.n > 0)
        cuda::launch_over(a.n, forward_none_kernel<kKeep, scalar_t>, a, loss.mutable_data_ptr<opmath_t>(), kept);
      return;
    }
    Tensor count = empty({}, options(loss).with(kLong));
    const auto kernel = forward_sum_kernel<kKeep, scalar_t>;
    cuda::reduce_launch<opmath_t, opmath_t>(cuda::grid_size(kernel, a.n), reduction == kMean, loss, count, kernel, a,
                                            kept);
  }

  template <typename scalar_t>
  static void backward(const Args<scalar_t>& a, const Tensor& grad, int64_t reduction, Tensor& grad_pred,
                       bool in_place) {
    using opmath_t = math_type_t<scalar_t>;
    const cuda::DeviceGuard guard(grad);
    if (a.n == 0) return;
    const bool unreduced = reduction == kNone;
    const opmath_t* upstream = unreduced ? grad.const_data_ptr<opmath_t>() : nullptr;
    const opmath_t* grad_scalar = unreduced ? nullptr : grad.const_data_ptr<opmath_t>();
    scalar_t* out = grad_pred.mutable_data_ptr<scalar_t>();
    if constexpr (std::is_floating_point_v<scalar_t>) {
      if (in_place)
        return cuda::launch_over(a.n, backward_kernel<true, scalar_t>, a, upstream, grad_scalar, reduction == kMean,
                                 out);
    }
    cuda::launch_over(a.n, backward_kernel<false, scalar_t>, a, upstream, grad_scalar, reduction == kMean, out);
  }
};

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(fastloss, CUDA, m) {
  m.impl("balanced_l1_loss", TORCH_BOX(&forward<CudaKernels>));
  m.impl("balanced_l1_loss_backward", TORCH_BOX(&backward<CudaKernels>));
  m.impl("balanced_l1_loss_backward_", TORCH_BOX(&backward_in_place<CudaKernels>));
}

}  // namespace fastloss::balanced_l1
