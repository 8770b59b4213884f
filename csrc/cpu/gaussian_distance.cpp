// CPU kernels of fastloss::gaussian_distance (math/gaussian_distance.h): SIMD lanes along the aligned
// pairs, each vector's rows transposed as they are read and its gradients as they are written.
#include "cpu/field_lanes.h"
#include "cpu/row_loop.h"
#include "ops/gaussian_distance.h"

namespace fastloss::gaussian_distance {
namespace {

struct CpuKernels {
  template <int R, typename S>
  static void forward(const Args<S>& a, Tensor& result) {
    S* out = result.mutable_data_ptr<S>();
    using Vec = simd::Vec<S>;
    constexpr int64_t W = Vec::size();
    cpu::parallel_chunks(a.n, [&](int64_t, int64_t begin, int64_t end) {
      Vec p[Layout<R>::kFields], t[Layout<R>::kFields];
      for (int64_t i = begin; i < end; i += W) {
        const int64_t n = std::min(W, end - i);
        cpu::load_rows(a.pred, i, n, p);
        cpu::load_rows(a.target, i, n, t);
        pair_loss<R>(p, t, a.params).store(out + i, n);
      }
    });
  }

  template <int R, typename S>
  static void backward(const Args<S>& a, const Tensor& upstream, S* gp, S* gt) {
    const S* grad = upstream.const_data_ptr<S>();
    using Vec = simd::Vec<S>;
    constexpr int64_t W = Vec::size();
    cpu::parallel_chunks(a.n, [&](int64_t, int64_t begin, int64_t end) {
      Vec p[Layout<R>::kFields], t[Layout<R>::kFields], dp[Layout<R>::kFields], dt[Layout<R>::kFields];
      for (int64_t i = begin; i < end; i += W) {
        const int64_t n = std::min(W, end - i);
        cpu::load_rows(a.pred, i, n, p);
        cpu::load_rows(a.target, i, n, t);
        pair_gradient<R>(p, t, a.params, Vec::loadu(grad + i, n), dp, dt);
        if (gp != nullptr) cpu::store_rows(dp, gp, i, n);
        if (gt != nullptr) cpu::store_rows(dt, gt, i, n);
      }
    });
  }
};

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(fastloss, CPU, m) {
  m.impl("gaussian_distance", TORCH_BOX(&forward<CpuKernels>));
  m.impl("gaussian_distance_backward", TORCH_BOX(&backward<CpuKernels>));
}

}  // namespace fastloss::gaussian_distance
