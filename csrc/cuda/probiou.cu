// CUDA kernels of fastloss::probiou over math/probiou.h (the formulas the CPU tests prove): a pair
// per thread forward; backward a pair per thread when aligned, else boxes1's gradient a row per
// thread and boxes2's a column per thread (adjacent threads read adjacent gradients), each sum in
// order and in double: the same order on every launch, no atomics.
#include "cuda/launch.cuh"
#include "ops/probiou.h"

namespace fastloss::probiou {
namespace {

template <typename S>
__global__ void forward_kernel(Args<S> a, S* out) {
  cuda::for_each_element(a.pairs(), a.aligned ? 1 : a.m, [&](int64_t i, int64_t row, int64_t col) {
    S p[kFields], q[kFields];
    load_box(a.first(a.aligned ? i : row), p);
    load_box(a.second(a.aligned ? i : col), q);
    out[i] = evaluate(p, q, a.eps).iou;
  });
}

template <typename S>
__global__ void aligned_backward_kernel(Args<S> a, const S* grad, S* g1, S* g2) {
  cuda::for_each_element(a.n, 1, [&](int64_t i, int64_t, int64_t) {
    S p[kFields], q[kFields], dp[kFields], dq[kFields];
    load_box(a.first(i), p);
    load_box(a.second(i), q);
    gradient(p, q, a.eps, grad[i], dp, dq);
    for (int k = 0; k < kFields; ++k) {
      if (g1 != nullptr) g1[i * kFields + k] = dp[k];
      if (g2 != nullptr) g2[i * kFields + k] = dq[k];
    }
  });
}

// first: true for boxes1's gradient (sums over a row), false for boxes2's (over a column).
template <bool kFirst, typename S>
__global__ void pairwise_backward_kernel(Args<S> a, const S* grad, S* out) {
  const int64_t count = kFirst ? a.n : a.m, others = kFirst ? a.m : a.n;
  cuda::for_each_element(count, 1, [&](int64_t t, int64_t, int64_t) {
    double acc[kFields] = {};
    S p[kFields], q[kFields], dp[kFields], dq[kFields];
    load_box(kFirst ? a.first(t) : a.second(t), kFirst ? p : q);
    for (int64_t o = 0; o < others; ++o) {
      const int64_t i = kFirst ? t : o, j = kFirst ? o : t;
      load_box(kFirst ? a.second(j) : a.first(i), kFirst ? q : p);
      gradient(p, q, a.eps, grad[i * a.m + j], dp, dq);
      for (int k = 0; k < kFields; ++k) acc[k] += static_cast<double>(kFirst ? dp[k] : dq[k]);
    }
    for (int k = 0; k < kFields; ++k) out[t * kFields + k] = static_cast<S>(acc[k]);
  });
}

struct CudaKernels {
  template <typename S>
  static void forward(const Args<S>& a, Tensor& out) {
    const cuda::DeviceGuard guard(out);
    cuda::launch_over(a.pairs(), forward_kernel<S>, a, out.mutable_data_ptr<S>());
  }

  template <typename S>
  static void backward(const Args<S>& a, const Tensor& upstream, S* g1, S* g2) {
    const cuda::DeviceGuard guard(upstream);
    const S* grad = upstream.const_data_ptr<S>();
    if (a.aligned) {
      cuda::launch_over(a.n, aligned_backward_kernel<S>, a, grad, g1, g2);
      return;
    }
    if (g1 != nullptr) cuda::launch_over(a.n, pairwise_backward_kernel<true, S>, a, grad, g1);
    if (g2 != nullptr) cuda::launch_over(a.m, pairwise_backward_kernel<false, S>, a, grad, g2);
  }
};

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(fastloss, CUDA, m) {
  m.impl("probiou", TORCH_BOX(&forward<CudaKernels>));
  m.impl("probiou_backward", TORCH_BOX(&backward<CudaKernels>));
}

}  // namespace fastloss::probiou
