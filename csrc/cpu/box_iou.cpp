// CPU kernels of fastloss::box_iou_loss: the pairs run Vec::size() at a time through
// math/box_iou.h on SIMD vectors, gathered from the (..., 4) layout into lanes and scattered back.
// Forward: one pass (loss written out, or summed per chunk). Backward: one pass recomputing from
// the boxes, writing the gradient of pred and/or target.
#include <type_traits>

#include "cpu/field_lanes.h"
#include "cpu/row_loop.h"
#include "ops/box_iou.h"

namespace fastloss::box_iou {
namespace {

template <typename opmath_t>
struct Lanes {
  using Vec = simd::Vec<opmath_t>;
  static constexpr int64_t W = Vec::size();

  // Coordinates of pairs [i, i + n) as four vectors (x1s, y1s, ...); lanes past n hold zero boxes.
  template <typename scalar_t>
  static void gather(const scalar_t* boxes, int64_t i, int64_t n, Vec (&out)[4]) {
    if (n == W) return cpu::load_box_fields(boxes + i * 4, out);
    opmath_t buf[4][W] = {};
    for (int64_t k = 0; k < n; ++k)
      for (int c = 0; c < 4; ++c) buf[c][k] = static_cast<opmath_t>(boxes[(i + k) * 4 + c]);
    for (int c = 0; c < 4; ++c) out[c] = Vec::loadu(buf[c]);
  }

  template <typename scalar_t>
  static void scatter(const Vec (&in)[4], const Vec& factor, scalar_t* boxes, int64_t i, int64_t n) {
    if (n == W) {
      const Vec scaled[4] = {in[0] * factor, in[1] * factor, in[2] * factor, in[3] * factor};
      return cpu::store_box_fields(scaled, boxes + i * 4);
    }
    opmath_t buf[4][W];
    for (int c = 0; c < 4; ++c) (in[c] * factor).store(buf[c]);
    for (int64_t k = 0; k < n; ++k)
      for (int c = 0; c < 4; ++c) boxes[(i + k) * 4 + c] = static_cast<scalar_t>(buf[c][k]);
  }

  // A per-pair operand (weight, or the incoming gradient of "none") for pairs [i, i + n).
  static Vec operand(const RowOperand<opmath_t>& op, int64_t i, int64_t n) {
    if (!op.present()) return Vec(opmath_t(1));
    if (op.row_stride == 0) return Vec(*op.data);
    if (op.row_stride == 1) return Vec::loadu(op.data + i, n);
    opmath_t buf[W] = {};
    for (int64_t k = 0; k < n; ++k) buf[k] = *op.at(i + k, 0);
    return Vec::loadu(buf);
  }
};

template <bool kGrad, typename scalar_t, typename target_t, typename opmath_t = pair_math_t<scalar_t, target_t>,
          typename Vec = typename Lanes<opmath_t>::Vec>
FASTLOSS_SIMD_INLINE Vec eval(const Args<scalar_t, target_t>& a, int64_t i, int64_t n, Vec (&dp)[4], Vec (&dt)[4]) {
  Vec p[4], t[4];
  Lanes<opmath_t>::gather(a.p, i, n, p);
  Lanes<opmath_t>::gather(a.t, i, n, t);
  return pair_loss<kGrad>(a.prm, p, t, dp, dt);
}

struct CpuKernels {
  template <typename scalar_t, typename target_t>
  static void forward(const Args<scalar_t, target_t>& a, int64_t reduction, Tensor& loss) {
    using opmath_t = pair_math_t<scalar_t, target_t>;
    using L = Lanes<opmath_t>;
    using Vec = typename L::Vec;
    if (reduction == kNone) {
      opmath_t* out = loss.mutable_data_ptr<opmath_t>();
      cpu::parallel_chunks(a.pairs, [&](int64_t, int64_t begin, int64_t end) {
        Vec unused[4];
        for (int64_t i = begin; i < end; i += L::W) {
          const int64_t n = std::min(L::W, end - i);
          (eval<false>(a, i, n, unused, unused) * L::operand(a.weight, i, n)).store(out + i, n);
        }
      });
      return;
    }
    const cpu::SumCount s = cpu::sum_chunks(a.pairs, [&](int64_t begin, int64_t end) {
      cpu::Wide<Vec> acc;
      Vec unused[4];
      for (int64_t i = begin; i < end; i += L::W) {
        const int64_t n = std::min(L::W, end - i);
        acc += cpu::first_lanes(eval<false>(a, i, n, unused, unused) * L::operand(a.weight, i, n), n);
      }
      return cpu::SumCount{cpu::sum_lanes(acc), end - begin};
    });
    const double total = reduction == kMean ? s.sum / static_cast<double>(std::max<int64_t>(s.count, 1)) : s.sum;
    *loss.mutable_data_ptr<opmath_t>() = static_cast<opmath_t>(total);
  }

  template <typename scalar_t, typename target_t>
  static void backward(const Args<scalar_t, target_t>& a, const Tensor& grad, int64_t reduction, Tensor& gp,
                       Tensor& gt) {
    using opmath_t = pair_math_t<scalar_t, target_t>;
    using L = Lanes<opmath_t>;
    using Vec = typename L::Vec;
    RowOperand<opmath_t> grad_pairs;
    opmath_t scale = 1;
    if (reduction == kNone) {
      grad_pairs = row_operand<opmath_t>(grad);
    } else {
      scale = *grad.const_data_ptr<opmath_t>() /
              static_cast<opmath_t>(reduction == kMean ? std::max<int64_t>(a.pairs, 1) : 1);
    }
    scalar_t* out_p = gp.numel() > 0 ? gp.mutable_data_ptr<scalar_t>() : nullptr;
    target_t* out_t = gt.numel() > 0 ? gt.mutable_data_ptr<target_t>() : nullptr;
    // (the target's adjoints, half of the backward's work, are left to dead-code elimination when
    // the target needs no gradient: a compile-time flag, not a branch per vector)
    auto loop = [&](auto grad_target) {
      cpu::parallel_chunks(a.pairs, [&](int64_t, int64_t begin, int64_t end) {
        Vec dp[4], dt[4];
        for (int64_t i = begin; i < end; i += L::W) {
          const int64_t n = std::min(L::W, end - i);
          eval<true>(a, i, n, dp, dt);
          const Vec f = Vec(scale) * L::operand(a.weight, i, n) * L::operand(grad_pairs, i, n);
          if (out_p != nullptr) L::scatter(dp, f, out_p, i, n);
          if constexpr (decltype(grad_target)::value) L::scatter(dt, f, out_t, i, n);
        }
      });
    };
    if (out_t != nullptr)
      loop(std::true_type{});
    else
      loop(std::false_type{});
  }
};

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(fastloss, CPU, m) {
  m.impl("box_iou_loss", TORCH_BOX(&forward<CpuKernels>));
  m.impl("box_iou_loss_backward", TORCH_BOX(&backward<CpuKernels>));
}

}  // namespace fastloss::box_iou
