// CPU kernels of fastloss::balanced_l1_loss: Vec::size() elements at a time through
// math/balanced_l1.h. Forward: one pass (loss written out, or summed per fixed chunk; dL/dpred kept
// when asked). Backward: one pass, scaling the kept dL/dpred in place, or from pred and target.
#include "cpu/row_loop.h"
#include "cpu/vec_ops.h"
#include "ops/balanced_l1.h"

namespace fastloss::balanced_l1 {
namespace {

struct CpuKernels {
  template <typename scalar_t>
  static void forward(const Args<scalar_t>& a, int64_t reduction, Tensor& loss, scalar_t* kept) {
    if (kept != nullptr) return forward_keeping<true>(a, reduction, loss, kept);
    forward_keeping<false>(a, reduction, loss, kept);
  }

  template <bool kKeep, typename scalar_t>
  static void forward_keeping(const Args<scalar_t>& a, int64_t reduction, Tensor& loss, scalar_t* kept) {
    using opmath_t = math_type_t<scalar_t>;
    using Vec = simd::Vec<opmath_t>;
    constexpr int64_t W = Vec::size();
    auto eval = [&](int64_t i, int64_t n) {
      Vec g;
      Vec l = element_loss<true, kKeep>(a.prm, cpu::load_as<Vec>(a.pred + i, n), cpu::load_as<Vec>(a.target + i, n), g);
      if constexpr (kKeep) cpu::store_as(g, kept + i, n);
      return a.weight != nullptr ? l * Vec::loadu(a.weight + i, n) : l;
    };
    if (reduction == kNone) {
      opmath_t* out = loss.mutable_data_ptr<opmath_t>();
      cpu::parallel_chunks(a.n, [&](int64_t, int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; i += W) {
          const int64_t n = std::min(W, end - i);
          eval(i, n).store(out + i, n);
        }
      });
      return;
    }
    const cpu::SumCount s = cpu::sum_chunks(a.n, [&](int64_t begin, int64_t end) {
      cpu::Wide<Vec> acc;
      for (int64_t i = begin; i < end; i += W) {
        const int64_t n = std::min(W, end - i);
        acc += cpu::first_lanes(eval(i, n), n);
      }
      return cpu::SumCount{cpu::sum_lanes(acc), end - begin};
    });
    const double total = reduction == kMean ? s.sum / static_cast<double>(std::max<int64_t>(s.count, 1)) : s.sum;
    *loss.mutable_data_ptr<opmath_t>() = static_cast<opmath_t>(total);
  }

  template <typename scalar_t>
  static void backward(const Args<scalar_t>& a, const Tensor& grad, int64_t reduction, Tensor& grad_pred,
                       bool in_place) {
    using opmath_t = math_type_t<scalar_t>;
    using Vec = simd::Vec<opmath_t>;
    constexpr int64_t W = Vec::size();
    const opmath_t* upstream = reduction == kNone ? grad.const_data_ptr<opmath_t>() : nullptr;
    const opmath_t scale = reduction == kNone
                               ? opmath_t(1)
                               : *grad.const_data_ptr<opmath_t>() /
                                     static_cast<opmath_t>(reduction == kMean ? std::max<int64_t>(a.n, 1) : 1);
    scalar_t* out = grad_pred.mutable_data_ptr<scalar_t>();
    cpu::parallel_chunks(a.n, [&](int64_t, int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; i += W) {
        const int64_t n = std::min(W, end - i);
        Vec g;
        if (in_place) {  // the forward's dL/dpred
          g = cpu::load_as<Vec>(out + i, n);
        } else {
          element_loss<false, true>(a.prm, cpu::load_as<Vec>(a.pred + i, n), cpu::load_as<Vec>(a.target + i, n), g);
        }
        g = g * Vec(scale);
        if (a.weight != nullptr) g = g * Vec::loadu(a.weight + i, n);
        if (upstream != nullptr) g = g * Vec::loadu(upstream + i, n);
        cpu::store_as(g, out + i, n);
      }
    });
  }
};

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(fastloss, CPU, m) {
  m.impl("balanced_l1_loss", TORCH_BOX(&forward<CpuKernels>));
  m.impl("balanced_l1_loss_backward", TORCH_BOX(&backward<CpuKernels>));
  m.impl("balanced_l1_loss_backward_", TORCH_BOX(&backward_in_place<CpuKernels>));
}

}  // namespace fastloss::balanced_l1
