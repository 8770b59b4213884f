// CUDA kernels of fastloss::gaussian_distance over math/gaussian_distance.h (the formulas the CPU
// tests prove): a pair per thread, forward and backward; nothing is summed.
#include "cuda/launch.cuh"
#include "ops/gaussian_distance.h"

namespace fastloss::gaussian_distance {
namespace {

template <int K, typename S>
__device__ void load_row(const S* rows, int64_t i, S (&out)[K]) {
  for (int k = 0; k < K; ++k) out[k] = rows[i * K + k];
}

template <int R, typename S>
__global__ void forward_kernel(Args<S> a, S* out) {
  cuda::for_each_element(a.n, 1, [&](int64_t i, int64_t, int64_t) {
    S p[Layout<R>::kFields], t[Layout<R>::kFields];
    load_row(a.pred, i, p);
    load_row(a.target, i, t);
    out[i] = pair_loss<R>(p, t, a.params);
  });
}

template <int R, typename S>
__global__ void backward_kernel(Args<S> a, const S* grad, S* gp, S* gt) {
  constexpr int K = Layout<R>::kFields;
  cuda::for_each_element(a.n, 1, [&](int64_t i, int64_t, int64_t) {
    S p[K], t[K], dp[K], dt[K];
    load_row(a.pred, i, p);
    load_row(a.target, i, t);
    pair_gradient<R>(p, t, a.params, grad[i], dp, dt);
    for (int k = 0; k < K; ++k) {
      if (gp != nullptr) gp[i * K + k] = dp[k];
      if (gt != nullptr) gt[i * K + k] = dt[k];
    }
  });
}

struct CudaKernels {
  template <int R, typename S>
  static void forward(const Args<S>& a, Tensor& out) {
    const cuda::DeviceGuard guard(out);
    cuda::launch_over(a.n, forward_kernel<R, S>, a, out.mutable_data_ptr<S>());
  }

  template <int R, typename S>
  static void backward(const Args<S>& a, const Tensor& grad, S* gp, S* gt) {
    const cuda::DeviceGuard guard(grad);
    cuda::launch_over(a.n, backward_kernel<R, S>, a, grad.const_data_ptr<S>(), gp, gt);
  }
};

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(fastloss, CUDA, m) {
  m.impl("gaussian_distance", TORCH_BOX(&forward<CudaKernels>));
  m.impl("gaussian_distance_backward", TORCH_BOX(&backward<CudaKernels>));
}

}  // namespace fastloss::gaussian_distance
