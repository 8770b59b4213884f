// CPU kernels of fastloss::distribution_focal_loss over math/distribution_focal.h. A row's bins are
// contiguous and few (16/17): SIMD runs along a row for its Σ exp (down W rows for the last one or
// two bins), then the log of W rows' sums is one vector log. Rows are cut into fixed chunks
// (partial sums added in chunk order).
// Forward: the loss and each row's lse (saved). Backward: softmax from lse, one exp per logit.
#include <limits>
#include "cpu/row_loop.h"
#include "cpu/vec_ops.h"
#include "ops/distribution_focal.h"

namespace fastloss::distribution_focal {
namespace {

template <typename scalar_t>
struct Kernel {
  using opmath_t = math_type_t<scalar_t>;
  using Vec = simd::Vec<opmath_t>;
  static constexpr int64_t W = Vec::size();
  const Args<scalar_t>& a;

  static constexpr auto kMax = [](const Vec& p, const Vec& q) { return simd::maximum(p, q); };

  // Bins [0, body) run along each row in whole vectors; the last `tail` = bins mod 64 bytes' lanes
  // (1 for 17 bins) run down W rows at once instead, so a 17-bin row costs one vector exp, not two.
  // A wider remainder (3 or more columns) stays in the rows as a partial vector. (64 bytes' lanes,
  // not W: the same split, so the same sums, on every flavour.)
  static constexpr int64_t kLanes = cpu::Wide<Vec>::kLanes;
  const int64_t tail = a.bins % kLanes <= 2 ? a.bins % kLanes : 0;
  const int64_t body = a.bins - tail;

  const scalar_t* row(int64_t r) const { return a.pred + r * a.bins; }

  opmath_t logit(int64_t r, int64_t c) const { return c >= 0 ? static_cast<opmath_t>(row(r)[c]) : opmath_t(0); }

  // Σ exp(x − shift) over bins [0, end) of row r.
  opmath_t sum_exp(int64_t r, opmath_t shift, int64_t end) const {
    const scalar_t* x = row(r);
    cpu::Wide<Vec> s;
    for (int64_t c = 0; c < end; c += W) {
      const int64_t n = std::min(W, end - c);
      s += cpu::first_lanes(Ops<Vec>::exp(cpu::load_as<Vec>(x + c, n) - Vec(shift)), n);
    }
    return s.sum();
  }

  opmath_t max_logit(int64_t r) const {
    constexpr opmath_t kInf = std::numeric_limits<opmath_t>::infinity();
    const scalar_t* x = row(r);
    cpu::Wide<Vec> m(-kInf);
    for (int64_t c = 0; c < a.bins; c += W) {
      const int64_t n = std::min(W, a.bins - c);
      const Vec v = cpu::load_as<Vec>(x + c, n);
      m.fold(kMax, n == W ? v : Vec::set(Vec(-kInf), v, n));
    }
    return m.reduce(kMax);
  }

  // The first loads of a row are its two target bins, scalar and data-dependent: without a hint they
  // wait on memory (a fifth of the forward's time here). Rows kAhead blocks ahead are requested early.
  static constexpr int64_t kAhead = 4;
  void prefetch_rows(int64_t r, int64_t end) const {
    const char* first = reinterpret_cast<const char*>(row(std::min(r, end)));
    const char* last = reinterpret_cast<const char*>(row(std::min(r + W, end)));
    for (const char* p = first; p < last; p += 64) __builtin_prefetch(p);
  }

  // Column c of rows [r, r + k) minus each row's shift, as one vector (lanes past k: 0).
  Vec column(int64_t r, int64_t k, int64_t c, const opmath_t* shift) const {
    opmath_t v[W] = {};
    for (int64_t j = 0; j < k; ++j) v[j] = logit(r + j, c) - shift[j];
    return Vec::loadu(v);
  }

  // Loss of rows [begin, end) ("none": written to out), their lse, and their weighted sum. A row's
  // Σ exp is shifted by its left bin's logit, which needs no max pass (the bins are few and near
  // each other); by the row's max only where that sum overflows (a logit ~88 above it) or is NaN.
  // The log of W rows' sums is one vector log.
  double forward_chunk(int64_t begin, int64_t end, opmath_t* out, opmath_t* lse_out) const {
    constexpr opmath_t kInf = std::numeric_limits<opmath_t>::infinity();
    cpu::Wide<Vec> total;
    for (int64_t r = begin; r < end; r += W) {
      const int64_t k = std::min(W, end - r);
      opmath_t shift[W] = {}, x_left[W] = {}, x_right[W] = {}, w_left[W] = {}, w_right[W] = {}, weight[W] = {}, sum[W];
      prefetch_rows(r + kAhead * W, end);
      for (int64_t j = 0; j < k; ++j) {
        const Bins<opmath_t> b = a.row_bins(r + j);
        shift[j] = x_left[j] = logit(r + j, b.left);
        x_right[j] = logit(r + j, b.right);
        w_left[j] = b.w_left;
        w_right[j] = b.w_right;
        weight[j] = a.weight_of(r + j);
      }
      for (int64_t j = 0; j < W; ++j) sum[j] = j < k ? sum_exp(r + j, shift[j], body) : opmath_t(1);
      Vec sums = Vec::loadu(sum);
      for (int64_t c = body; c < a.bins; ++c) sums = sums + Ops<Vec>::exp(column(r, k, c, shift));
      if ((sums < Vec(kInf)).zero_mask() != 0) {  // rare: a row whose Σ overflowed (or is NaN): by its max
        sums.store(sum);
        for (int64_t j = 0; j < k; ++j) {
          if (sum[j] < kInf) continue;
          shift[j] = max_logit(r + j);
          sum[j] = sum_exp(r + j, shift[j], a.bins);
        }
        sums = Vec::loadu(sum);
      }
      const Vec lse = Vec::loadu(shift) + sums.log();
      lse.store(lse_out + r, k);
      const Vec loss = row_loss(lse, Vec::loadu(w_left), Vec::loadu(x_left), Vec::loadu(w_right), Vec::loadu(x_right)) *
                       Vec::loadu(weight);
      if (out != nullptr) loss.store(out + r, k);
      total += cpu::first_lanes(loss, k);
    }
    return cpu::sum_lanes(total);
  }

  // grad of rows [begin, end): f_r · (softmax − w_l·e_l − w_r·e_r), f_r = scale · weight · upstream.
  void backward_chunk(int64_t begin, int64_t end, const opmath_t* lse, const opmath_t* upstream, opmath_t scale,
                      scalar_t* gx) const {
    const Vec lanes = Vec::arange(opmath_t(0), opmath_t(1));
    for (int64_t r = begin; r < end; r += W) {
      const int64_t k = std::min(W, end - r);
      prefetch_rows(r + kAhead * W, end);
      opmath_t f[W] = {}, w_left[W] = {}, w_right[W] = {}, left[W], right[W];
      for (int64_t j = 0; j < W; ++j) {
        left[j] = right[j] = -1;
        if (j >= k) continue;
        const Bins<opmath_t> b = a.row_bins(r + j);
        f[j] = scale * a.weight_of(r + j) * (upstream != nullptr ? upstream[r + j] : opmath_t(1));
        left[j] = opmath_t(b.left);
        right[j] = opmath_t(b.right);
        w_left[j] = b.w_left;
        w_right[j] = b.w_right;
        const scalar_t* x = row(r + j);
        for (int64_t c = 0; c < body; c += W) {
          const int64_t n = std::min(W, body - c);
          Vec g = Ops<Vec>::exp(cpu::load_as<Vec>(x + c, n) - Vec(lse[r + j]));
          const Vec at = lanes + Vec(opmath_t(c));
          g = g - Vec::blendv(Vec(opmath_t(0)), Vec(w_left[j]), at == Vec(left[j]));
          g = g - Vec::blendv(Vec(opmath_t(0)), Vec(w_right[j]), at == Vec(right[j]));
          cpu::store_as(g * Vec(f[j]), gx + (r + j) * a.bins + c, n);
        }
      }
      for (int64_t c = body; c < a.bins; ++c) {  // the tail columns, down the W rows
        const Vec at = Vec(opmath_t(c));
        Vec g = Ops<Vec>::exp(column(r, k, c, lse + r));
        g = g - Vec::blendv(Vec(opmath_t(0)), Vec::loadu(w_left), at == Vec::loadu(left));
        g = g - Vec::blendv(Vec(opmath_t(0)), Vec::loadu(w_right), at == Vec::loadu(right));
        opmath_t out[W];
        (g * Vec::loadu(f)).store(out);
        for (int64_t j = 0; j < k; ++j) gx[(r + j) * a.bins + c] = static_cast<scalar_t>(out[j]);
      }
    }
  }
};

struct CpuKernels {
  template <typename scalar_t>
  static void forward(const Args<scalar_t>& a, int64_t reduction, Tensor& loss, Tensor& lse) {
    using opmath_t = math_type_t<scalar_t>;
    const Kernel<scalar_t> k{a};
    opmath_t* lse_out = lse.mutable_data_ptr<opmath_t>();
    if (reduction == kNone) {
      opmath_t* out = loss.mutable_data_ptr<opmath_t>();
      cpu::parallel_chunks(a.rows,
                           [&](int64_t, int64_t begin, int64_t end) { k.forward_chunk(begin, end, out, lse_out); });
      return;
    }
    const cpu::SumCount s = cpu::sum_chunks(a.rows, [&](int64_t begin, int64_t end) {
      return cpu::SumCount{k.forward_chunk(begin, end, nullptr, lse_out), end - begin};
    });
    const double total = reduction == kMean ? s.sum / static_cast<double>(std::max<int64_t>(s.count, 1)) : s.sum;
    *loss.mutable_data_ptr<opmath_t>() = static_cast<opmath_t>(total);
  }

  template <typename scalar_t>
  static void backward(const Args<scalar_t>& a, const Tensor& grad, const Tensor& lse, int64_t reduction,
                       Tensor& grad_pred) {
    using opmath_t = math_type_t<scalar_t>;
    const Kernel<scalar_t> k{a};
    const opmath_t* upstream = reduction == kNone ? grad.const_data_ptr<opmath_t>() : nullptr;
    const opmath_t scale = reduction == kNone
                               ? opmath_t(1)
                               : *grad.const_data_ptr<opmath_t>() /
                                     static_cast<opmath_t>(reduction == kMean ? std::max<int64_t>(a.rows, 1) : 1);
    scalar_t* out = grad_pred.mutable_data_ptr<scalar_t>();
    cpu::parallel_chunks(a.rows, [&](int64_t, int64_t begin, int64_t end) {
      k.backward_chunk(begin, end, lse.const_data_ptr<opmath_t>(), upstream, scale, out);
    });
  }
};

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(fastloss, CPU, m) {
  m.impl("distribution_focal_loss", TORCH_BOX(&forward<CpuKernels>));
  m.impl("distribution_focal_loss_backward", TORCH_BOX(&backward<CpuKernels>));
}

}  // namespace fastloss::distribution_focal
