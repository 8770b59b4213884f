#pragma once
// CUDA loops over pairs of boxes (ops/box_pairs.h; the formulas the CPU tests prove): a pair per thread
// forward; backward a pair per thread when aligned, else boxes1's gradient a row per thread and
// boxes2's a column per thread (adjacent threads read adjacent gradients), each sum in order and in
// double: the same order on every launch, no atomics.
#include "cuda/launch.cuh"
#include "ops/box_pairs.h"

namespace fastloss::box_pairs {

// A box's kFields values from its row.
template <int kFields, typename S>
__device__ void load_row(const S* row, S (&out)[kFields]) {
  for (int k = 0; k < kFields; ++k) out[k] = row[k];
}

template <typename Math, typename S>
__global__ void forward_kernel(Args<Math::kFields, S> a, S* out) {
  constexpr int kFields = Math::kFields;
  cuda::for_each_element(a.pairs(), a.aligned ? 1 : a.m, [&](int64_t i, int64_t row, int64_t col) {
    S p[kFields], q[kFields];
    load_row(a.first(a.aligned ? i : row), p);
    load_row(a.second(a.aligned ? i : col), q);
    out[i] = Math::value(p, q, a.eps, a.param);
  });
}

template <typename Math, typename S>
__global__ void aligned_backward_kernel(Args<Math::kFields, S> a, const S* grad, S* g1, S* g2) {
  constexpr int kFields = Math::kFields;
  cuda::for_each_element(a.n, 1, [&](int64_t i, int64_t, int64_t) {
    S p[kFields], q[kFields], dp[kFields], dq[kFields];
    load_row(a.first(i), p);
    load_row(a.second(i), q);
    Math::gradient(p, q, a.eps, a.param, grad[i], dp, dq);
    for (int k = 0; k < kFields; ++k) {
      if (g1 != nullptr) g1[i * kFields + k] = dp[k];
      if (g2 != nullptr) g2[i * kFields + k] = dq[k];
    }
  });
}

// first: true for boxes1's gradient (sums over a row), false for boxes2's (over a column).
template <bool kFirst, typename Math, typename S>
__global__ void pairwise_backward_kernel(Args<Math::kFields, S> a, const S* grad, S* out) {
  constexpr int kFields = Math::kFields;
  const int64_t count = kFirst ? a.n : a.m, others = kFirst ? a.m : a.n;
  cuda::for_each_element(count, 1, [&](int64_t t, int64_t, int64_t) {
    double acc[kFields] = {};
    S p[kFields], q[kFields], dp[kFields], dq[kFields];
    load_row(kFirst ? a.first(t) : a.second(t), kFirst ? p : q);
    for (int64_t o = 0; o < others; ++o) {
      const int64_t i = kFirst ? t : o, j = kFirst ? o : t;
      load_row(kFirst ? a.second(j) : a.first(i), kFirst ? q : p);
      Math::gradient(p, q, a.eps, a.param, grad[i * a.m + j], dp, dq);
      for (int k = 0; k < kFields; ++k) acc[k] += static_cast<double>(kFirst ? dp[k] : dq[k]);
    }
    for (int k = 0; k < kFields; ++k) out[t * kFields + k] = static_cast<S>(acc[k]);
  });
}

template <typename Math>
struct CudaKernels {
  static constexpr int kFields = Math::kFields;

  template <typename S>
  static void forward(const Args<kFields, S>& a, Tensor& out) {
    const cuda::DeviceGuard guard(out);
    cuda::launch_over(a.pairs(), forward_kernel<Math, S>, a, out.mutable_data_ptr<S>());
  }

  template <typename S>
  static void backward(const Args<kFields, S>& a, const Tensor& upstream, S* g1, S* g2) {
    const cuda::DeviceGuard guard(upstream);
    const S* grad = upstream.const_data_ptr<S>();
    if (a.aligned) {
      cuda::launch_over(a.n, aligned_backward_kernel<Math, S>, a, grad, g1, g2);
      return;
    }
    if (g1 != nullptr) cuda::launch_over(a.n, pairwise_backward_kernel<true, Math, S>, a, grad, g1);
    if (g2 != nullptr) cuda::launch_over(a.m, pairwise_backward_kernel<false, Math, S>, a, grad, g2);
  }
};

}  // namespace fastloss::box_pairs
