// CPU kernels of fastloss::sigmoid_focal_loss: SIMD loops over math/sigmoid_focal.h and
// math/quality_focal.h (the varifocal and quality focal variants).
// Forward: one pass, loss written out ("none") or summed per chunk. Backward: one pass that
// recomputes from the logits, so nothing of the inputs' size is saved between the two.
#include "cpu/row_loop.h"
#include "cpu/vec_ops.h"
#include "ops/sigmoid_focal.h"

namespace fastloss::sigmoid_focal {
namespace {

template <typename scalar_t, typename target_t>
struct Row {
  using opmath_t = typename Args<scalar_t, target_t>::opmath_t;
  using Vec = simd::Vec<opmath_t>;
  static constexpr int64_t W = Vec::size();
  const Args<scalar_t, target_t>& a;

  bool ignored(int64_t r) const { return a.labels != nullptr && a.ignored(a.labels[r]); }

  // Loss and/or derivatives of the n ≤ W elements (r, c .. c+n).
  template <bool kLoss, bool kGradX, bool kGradT>
  void eval(int64_t r, int64_t c, int64_t n, Vec& loss, Vec& dx, Vec& dt) const {
    const int64_t off = r * a.cols + c;
    const Vec x = cpu::load_as<Vec>(a.x + off, n);
    const bool quality = a.prm.variant != kFocal;
    if (a.labels == nullptr) {
      const Vec t = cpu::load_as<Vec>(a.t + off, n);
      if (!quality) {
        soft<kLoss, kGradX, kGradT>(x, t, a.prm, loss, dx, dt);
        return;
      }
      const Vec m = a.positive != nullptr ? cpu::load_as<Vec>(a.positive + off, n) : quality_focal::score_positive(t);
      quality_focal::eval<kLoss, kGradX>(x, t, m, a.prm, loss, dx);
      return;
    }
    // Labels: every column is a negative except the label's, if it falls in this vector. The
    // label is only ever compared (never subtracted from before that: −2^63 − c would overflow),
    // never used as an address, so any value is safe. Each lane takes the formula the CUDA kernel
    // gives its element (the negatives' binary one; the label's own when it is a quality or scored
    // target), whatever else shares its vector: the bits do not depend on the vector width.
    const int64_t label = a.labels[r];
    const bool here = label >= c && label - c < n;
    const Vec positive = Vec::arange(opmath_t(0), opmath_t(1)) == Vec(here ? opmath_t(label - c) : opmath_t(-1));
    const Vec sign = Vec::blendv(Vec(opmath_t(-1)), Vec(opmath_t(1)), positive);
    const Vec a_t = Vec::blendv(Vec(a.prm.alpha_neg), Vec(a.prm.alpha_pos), positive);
    Vec dz;
    binary<kLoss, kGradX>(x * sign, a_t, a.prm, loss, dz);
    if constexpr (kGradX) dx = dz * sign;
    if (!here || (!quality && a.scores == nullptr)) return;
    Vec label_loss, label_dx;
    if (quality) {  // the label's target is its score (1 without scores)
      const opmath_t score = a.scores != nullptr ? a.scores[r] : opmath_t(1);
      const opmath_t m = a.prm.label_mask || score > 0 ? opmath_t(1) : opmath_t(0);
      quality_focal::eval<kLoss, kGradX>(x, Vec(score), Vec(m), a.prm, label_loss, label_dx);
    } else {  // the label's target is its score (soft)
      Vec unused_dt;
      soft<kLoss, kGradX, false>(x, Vec(a.scores[r]), a.prm, label_loss, label_dx, unused_dt);
    }
    if constexpr (kLoss) loss = Vec::blendv(loss, label_loss, positive);
    if constexpr (kGradX) dx = Vec::blendv(dx, label_dx, positive);
  }
};

// Float targets carry no per-row state: when every operand is absent or dense, view the tensor as
// one long row so that small C (even C = 1) still fills whole vectors.
template <typename scalar_t, typename target_t, typename G>
void flatten_if_dense(Args<scalar_t, target_t>& a, RowOperand<G>& grad) {
  auto dense = [&](const auto& op) {
    return !op.present() || (op.col_stride == 1 && op.row_stride == a.cols) || (a.cols == 1 && op.row_stride == 1);
  };
  if (a.labels != nullptr || !dense(a.weight) || !dense(grad)) return;
  if (a.weight.present()) a.weight = {a.weight.data, 0, 1};
  if (grad.present()) grad = {grad.data, 0, 1};
  a.cols = a.rows * a.cols;
  a.rows = 1;
}

// out: the loss in the inputs' dtype or the math type (ops/sigmoid_focal.h: loss_dtype)
template <typename scalar_t, typename target_t, typename out_t>
void forward_none(Args<scalar_t, target_t> a, out_t* out) {
  using R = Row<scalar_t, target_t>;
  using Vec = typename R::Vec;
  RowOperand<scalar_t> no_grad;
  flatten_if_dense(a, no_grad);
  const R row{a};
  cpu::parallel_chunks(a.rows * a.cols, [&](int64_t, int64_t begin, int64_t end) {
    cpu::for_each_segment(begin, end, a.cols, [&](int64_t r, int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; c += R::W) {
        const int64_t n = std::min(R::W, c1 - c);
        Vec loss(0), unused;
        if (!row.ignored(r)) {
          row.template eval<true, false, false>(r, c, n, loss, unused, unused);
          loss = loss * cpu::load_operand<Vec>(a.weight, r, c, n);
        }
        cpu::store_as(loss, out + r * a.cols + c, n);
      }
    });
  });
}

template <typename scalar_t, typename target_t>
cpu::SumCount forward_sum(Args<scalar_t, target_t> a) {
  using R = Row<scalar_t, target_t>;
  using Vec = typename R::Vec;
  RowOperand<scalar_t> no_grad;
  flatten_if_dense(a, no_grad);
  const R row{a};
  return cpu::sum_chunks(a.rows * a.cols, [&](int64_t begin, int64_t end) {
    cpu::Wide<Vec> acc;
    Vec loss, unused;
    int64_t count = 0;
    cpu::for_each_segment(begin, end, a.cols, [&](int64_t r, int64_t c0, int64_t c1) {
      if (row.ignored(r)) return;
      count += c1 - c0;
      acc.restart();
      for (int64_t c = c0; c < c1; c += R::W) {
        const int64_t n = std::min(R::W, c1 - c);
        row.template eval<true, false, false>(r, c, n, loss, unused, unused);
        acc += cpu::first_lanes(loss * cpu::load_operand<Vec>(a.weight, r, c, n), n);
      }
    });
    return cpu::SumCount{cpu::sum_lanes(acc), count};
  });
}

// grad_x (and grad_t) = d loss / d input × scale × weight × grad (grad: "none" only, in G).
template <typename scalar_t, typename target_t, bool kGradT, typename G>
void backward_loop(Args<scalar_t, target_t> a, RowOperand<G> grad, typename Args<scalar_t, target_t>::opmath_t scale,
                   scalar_t* gx, target_t* gt) {
  using R = Row<scalar_t, target_t>;
  using Vec = typename R::Vec;
  flatten_if_dense(a, grad);
  const R row{a};
  cpu::parallel_chunks(a.rows * a.cols, [&](int64_t, int64_t begin, int64_t end) {
    cpu::for_each_segment(begin, end, a.cols, [&](int64_t r, int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; c += R::W) {
        const int64_t n = std::min(R::W, c1 - c), off = r * a.cols + c;
        Vec dx(0), dt(0), unused;
        if (!row.ignored(r)) {
          row.template eval<false, true, kGradT>(r, c, n, unused, dx, dt);
          const Vec f = Vec(scale) * cpu::load_operand<Vec>(a.weight, r, c, n) * cpu::load_operand<Vec>(grad, r, c, n);
          dx = dx * f;
          dt = dt * f;
        }
        cpu::store_as(dx, gx + off, n);
        if constexpr (kGradT) cpu::store_as(dt, gt + off, n);
      }
    });
  });
}

struct CpuKernels {
  template <typename scalar_t, typename target_t>
  static void forward(const Args<scalar_t, target_t>& a, int64_t layers, int64_t reduction, Tensor& loss,
                      Tensor& count) {
    using opmath_t = typename Args<scalar_t, target_t>::opmath_t;
    if (reduction == kNone) {
      if (loss.scalar_type() == scalar_type_of<scalar_t>) {
        forward_none(a, loss.mutable_data_ptr<scalar_t>());
      } else {
        forward_none(a, loss.mutable_data_ptr<opmath_t>());
      }
      return;
    }
    for (int64_t l = 0; l < std::max<int64_t>(layers, 1); ++l) {
      const cpu::SumCount s = forward_sum(layers > 0 ? a.layer(l) : a);
      const double total = reduction == kMean ? s.sum / static_cast<double>(std::max<int64_t>(s.count, 1)) : s.sum;
      loss.mutable_data_ptr<opmath_t>()[l] = static_cast<opmath_t>(total);
      count.mutable_data_ptr<int64_t>()[l] = s.count;
    }
  }

  template <typename scalar_t, typename target_t, bool kGradT>
  static void backward(const Args<scalar_t, target_t>& a, int64_t layers, const Tensor& grad, const Tensor& count,
                       int64_t reduction, Tensor& gx, Tensor& gt) {
    using opmath_t = typename Args<scalar_t, target_t>::opmath_t;
    scalar_t* out_x = gx.mutable_data_ptr<scalar_t>();
    target_t* out_t = kGradT ? gt.mutable_data_ptr<target_t>() : nullptr;
    if (reduction != kNone) {
      for (int64_t l = 0; l < std::max<int64_t>(layers, 1); ++l) {
        const int64_t norm = reduction == kMean ? std::max<int64_t>(count.const_data_ptr<int64_t>()[l], 1) : 1;
        const opmath_t scale = grad.const_data_ptr<opmath_t>()[l] / static_cast<opmath_t>(norm);
        const int64_t offset = l * a.rows * a.cols;
        backward_loop<scalar_t, target_t, kGradT>(layers > 0 ? a.layer(l) : a, RowOperand<opmath_t>{}, scale,
                                                  out_x + offset, kGradT ? out_t + offset : nullptr);
      }
    } else if (grad.scalar_type() == scalar_type_of<scalar_t>) {
      backward_loop<scalar_t, target_t, kGradT>(a, row_operand<scalar_t>(grad), opmath_t(1), out_x, out_t);
    } else {
      backward_loop<scalar_t, target_t, kGradT>(a, row_operand<opmath_t>(grad), opmath_t(1), out_x, out_t);
    }
  }
};

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(fastloss, CPU, m) {
  m.impl("sigmoid_focal_loss", TORCH_BOX(&forward<CpuKernels>));
  m.impl("sigmoid_focal_loss_backward", TORCH_BOX(&backward<CpuKernels>));
}

}  // namespace fastloss::sigmoid_focal
