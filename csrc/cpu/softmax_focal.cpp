// CPU kernels of fastloss::softmax_focal_loss over math/softmax_focal.h. Positions are cut into
// fixed chunks (independent of the thread count; partial sums added in chunk order). Two layouts:
//   rows      (N, C) logits: one position's classes are contiguous, SIMD runs along the classes;
//   channels  (N, C, *spatial): SIMD runs along W neighbouring positions, classes `inner` apart.
// Forward: one exp per logit for the log-sum-exp, shifted by the label's logit (no max pass; see
// load_rows), plus Σ α_c·x_c with label smoothing; lse is saved. Backward: one exp per logit,
// p_c = exp(x_c − lse).
#include <limits>
#include "cpu/row_loop.h"
#include "cpu/vec_ops.h"
#include "ops/softmax_focal.h"

namespace fastloss::softmax_focal {
namespace {

template <typename scalar_t>
struct Kernel {
  using opmath_t = math_type_t<scalar_t>;
  using Vec = simd::Vec<opmath_t>;
  static constexpr int64_t W = Vec::size();
  static constexpr opmath_t kInf = std::numeric_limits<opmath_t>::infinity();

  const Args<scalar_t>& a;
  cpu::BadLabel& bad;
  const opmath_t alpha_sum = alpha_total(a);  // Σ_c α_c, only used with label smoothing

  static opmath_t alpha_total(const Args<scalar_t>& a) {
    if (!a.prm.smoothing) return 0;
    if (a.alpha == nullptr) return static_cast<opmath_t>(a.classes);
    opmath_t s = 0;
    for (int64_t c = 0; c < a.classes; ++c) s += a.alpha[c];
    return s;
  }

  // Positions per chunk: ~16k logits; whole vectors of positions in the channels layout.
  int64_t span() const {
    const int64_t positions = std::max<int64_t>(1, cpu::kChunk / std::max<int64_t>(1, a.classes));
    constexpr int64_t lanes = cpu::Wide<Vec>::kLanes;  // (a multiple of W on every flavour: the same chunks)
    return a.inner == 1 ? positions : (positions + lanes - 1) / lanes * lanes;
  }

  // The label of a position, or -1 when it is ignored (or, after recording it, out of range).
  int64_t label(int64_t position) const {
    const int64_t y = a.labels[position];
    if (y == a.ignore_index) return -1;
    if (y < 0 || y >= a.classes) {
      bad.record(y);
      return -1;
    }
    return y;
  }

  // ---- rows layout: SIMD along a row's classes for its sums, then along W rows for the math ----
  // log p_c = (x_c − shift) − log_s, log_s = log Σ exp(x − shift): shift = x_y (or the max) in the
  // forward, shift = lse and log_s = 0 in the backward. Per row this needs Σ exp(x − shift), x_y
  // and, with label smoothing, Σ α_c·(x_c − shift); the per-position math then runs on W rows at
  // once (one vector log/expm1 instead of W scalar calls).
  struct RowBlock {
    int64_t y[W];
    opmath_t shift[W], sum[W], xy[W], ay[W], ax[W];
  };

  // (row sums in cpu::Wide: the same lanes and order on every flavour)
  // Σ exp(x − shift) over a row.
  opmath_t row_sum_exp(const scalar_t* x, opmath_t shift) const {
    cpu::Wide<Vec> sum;
    for (int64_t c = 0; c < a.classes; c += W) {
      const int64_t n = std::min(W, a.classes - c);
      sum += cpu::first_lanes(Ops<Vec>::exp(cpu::load_as<Vec>(x + c, n) - Vec(shift)), n);
    }
    return sum.sum();
  }

  opmath_t row_max(const scalar_t* x) const {
    const auto max = [](const Vec& p, const Vec& q) { return simd::maximum(p, q); };
    cpu::Wide<Vec> m(-kInf);
    for (int64_t c = 0; c < a.classes; c += W) {
      const int64_t n = std::min(W, a.classes - c);
      const Vec v = cpu::load_as<Vec>(x + c, n);
      m.fold(max, n == W ? v : Vec::set(Vec(-kInf), v, n));
    }
    return m.reduce(max);
  }

  // Rows [r, r + k) of the block. With lse given it is the shift. Else the shift is the label's
  // logit x_y, which needs no max pass (log p_y = −log Σ exp(x − x_y), exact for the top class
  // like torch's max-shifted log_softmax), and the row's max where that sum overflows (a logit
  // ~88 above x_y) or the row has no label.
  void load_rows(int64_t r, int64_t k, const opmath_t* lse, RowBlock& b) const {
    for (int64_t j = 0; j < W; ++j) {
      b.y[j] = -1;
      b.shift[j] = b.xy[j] = b.ay[j] = b.ax[j] = 0;
      b.sum[j] = 1;
      if (j >= k) continue;
      const scalar_t* x = a.x + (r + j) * a.classes;
      b.y[j] = label(r + j);
      if (b.y[j] >= 0) {
        b.xy[j] = static_cast<opmath_t>(x[b.y[j]]);
        b.ay[j] = a.alpha_of(b.y[j]);
      }
      if (lse != nullptr) {
        b.shift[j] = lse[r + j];
      } else {
        bool done = false;
        if (b.y[j] >= 0) {
          b.shift[j] = b.xy[j];
          b.sum[j] = row_sum_exp(x, b.shift[j]);
          done = b.sum[j] < kInf;
        }
        if (!done) {
          b.shift[j] = row_max(x);
          b.sum[j] = row_sum_exp(x, b.shift[j]);
        }
      }
      if (a.prm.smoothing) {
        cpu::Wide<Vec> ax;
        for (int64_t c = 0; c < a.classes; c += W) {
          const int64_t n = std::min(W, a.classes - c);
          const Vec alpha = a.alpha == nullptr ? cpu::first_lanes(Vec(1), n) : cpu::load_as<Vec>(a.alpha + c, n);
          const Vec centred = cpu::load_as<Vec>(x + c, n) - Vec(b.shift[j]);
          ax.fold([&](const Vec& acc, const Vec& al) { return simd::fmadd(al, centred, acc); }, alpha);
        }
        b.ax[j] = ax.sum();
      }
    }
  }

  // The block's positions (log_s = log Σ exp, 0 when the shift is lse).
  Position<Vec> row_positions(const RowBlock& b, const Vec& log_s) const {
    const Vec as(alpha_sum);
    return {(Vec::loadu(b.xy) - Vec::loadu(b.shift)) - log_s, Vec::loadu(b.ax) - log_s * as, Vec::loadu(b.ay), as};
  }

  // ---- forward ---------------------------------------------------------------------------
  // Loss of positions [begin, end) (written for "none"), their lse, and their sum and count.
  cpu::SumCount forward_chunk(int64_t begin, int64_t end, const LossOut<scalar_t, opmath_t>& loss_out,
                              opmath_t* lse_out) const {
    cpu::SumCount total;
    auto finish = [&](int64_t position, int64_t y, opmath_t l) {
      l = y < 0 ? opmath_t(0) : l * a.weight_of(position);
      loss_out.store(position, l);
      total.sum += l;
      total.count += y >= 0;
    };
    if (a.inner == 1) {
      RowBlock b;
      for (int64_t r = begin; r < end; r += W) {
        const int64_t k = std::min(W, end - r);
        load_rows(r, k, nullptr, b);
        const Vec log_s = Vec::loadu(b.sum).log();
        cpu::store_as(Vec::loadu(b.shift) + log_s, lse_out + r, k);
        opmath_t l[W];
        loss(row_positions(b, log_s), a.prm).store(l);
        for (int64_t j = 0; j < k; ++j) finish(r + j, b.y[j], l[j]);
      }
      return total;
    }
    cpu::for_each_segment(begin, end, a.inner, [&](int64_t n, int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; i += W) {
        const int64_t k = std::min(W, i1 - i), first = n * a.inner + i;
        const Lanes lanes = channel_lanes(n, i, k, first);
        cpu::store_as(lanes.lse, lse_out + first, k);
        opmath_t l[W];
        loss(lanes.position, a.prm).store(l);
        for (int64_t j = 0; j < k; ++j) finish(first + j, lanes.y[j], l[j]);
      }
    });
    return total;
  }

  // ---- channels layout: W positions at a time, SIMD over positions --------------------------
  struct Lanes {
    int64_t y[W];  // label per lane, -1 if ignored
    Vec lse;
    Position<Vec> position;
  };

  const scalar_t* channel(int64_t n, int64_t c, int64_t i) const { return a.x + (n * a.classes + c) * a.inner + i; }

  // Labels, x_y and α_y of lanes (n, i .. i+k), their lse (given, or computed), and their terms
  // from log p_c = (x_c − shift) − log_s as in load_rows.
  Lanes channel_lanes(int64_t n, int64_t i, int64_t k, int64_t first, const opmath_t* lse_in = nullptr) const {
    Lanes out;
    opmath_t xy[W] = {}, ay[W] = {};
    for (int64_t j = 0; j < W; ++j) {
      out.y[j] = j < k ? label(first + j) : -1;
      if (out.y[j] >= 0) {
        xy[j] = static_cast<opmath_t>(*channel(n, out.y[j], i + j));
        ay[j] = a.alpha_of(out.y[j]);
      }
    }
    Vec shift, log_s(0);
    if (lse_in != nullptr) {
      shift = cpu::load_as<Vec>(lse_in + first, k);
      out.lse = shift;
    } else {
      // As load_rows, lane by lane (whatever shares its vector): shift by x_y when the position has
      // a label and that sum does not overflow, else by the max.
      auto sum_exp = [&](const Vec& m) {
        Vec sum(0);
        for (int64_t c = 0; c < a.classes; ++c) sum = sum + Ops<Vec>::exp(cpu::load_as<Vec>(channel(n, c, i), k) - m);
        return sum;
      };
      Vec max;
      bool have_max = false;
      auto use_max = [&](const Vec& lanes) {  // (lanes: a mask; the max pass only when some lane needs it)
        if (!have_max) {
          max = Vec(-kInf);
          for (int64_t c = 0; c < a.classes; ++c) max = simd::maximum(max, cpu::load_as<Vec>(channel(n, c, i), k));
          have_max = true;
        }
        shift = Vec::blendv(shift, max, lanes);
      };
      opmath_t unlabelled[W];
      for (int64_t j = 0; j < W; ++j) unlabelled[j] = j < k && out.y[j] < 0;  // (lanes past k: x_y = 0 will do)
      shift = Vec::loadu(xy);
      const Vec no_label = Vec::loadu(unlabelled) != Vec(0);
      if (no_label.zero_mask() != (1 << W) - 1) use_max(no_label);
      Vec sum = sum_exp(shift);
      // (a lane's sum is inf when a logit is ~88 above x_y, NaN when x_y = −inf: both need the max)
      const Vec overflow = (sum < Vec(kInf)) == Vec(0);
      if (overflow.zero_mask() != (1 << W) - 1) {
        use_max(overflow);
        sum = sum_exp(shift);
      }
      log_s = sum.log();
      out.lse = shift + log_s;
    }
    Vec ax(0), as(0);
    if (a.prm.smoothing) {
      for (int64_t c = 0; c < a.classes; ++c)
        ax = simd::fmadd(Vec(a.alpha_of(c)), cpu::load_as<Vec>(channel(n, c, i), k) - shift, ax);
      as = Vec(alpha_sum);
    }
    out.position = {(Vec::loadu(xy) - shift) - log_s, ax - log_s * as, Vec::loadu(ay), as};
    return out;
  }

  // ---- backward --------------------------------------------------------------------------
  // grad_input of positions [begin, end): scale(position) · dloss/dx.
  template <typename Scale>
  void backward_chunk(int64_t begin, int64_t end, const opmath_t* lse, const Scale& scale, scalar_t* gx) const {
    if (a.inner == 1) {
      RowBlock b;
      for (int64_t r = begin; r < end; r += W) {
        const int64_t k = std::min(W, end - r);
        load_rows(r, k, lse, b);
        const Coefficients<Vec> coef = coefficients(row_positions(b, Vec(0)), a.prm);
        opmath_t ck[W], cd[W], ce[W];
        coef.k.store(ck);
        coef.d.store(cd);
        coef.e.store(ce);
        for (int64_t j = 0; j < k; ++j) {
          const scalar_t* x = a.x + (r + j) * a.classes;
          scalar_t* out = gx + (r + j) * a.classes;
          const int64_t y = b.y[j];
          if (y < 0) {
            std::fill(out, out + a.classes, scalar_t(0));
            continue;
          }
          const opmath_t g = scale(r + j);
          const Vec gk(g * ck[j]), ge(g * ce[j]), shift(b.shift[j]);
          for (int64_t c = 0; c < a.classes; c += W) {
            const int64_t n = std::min(W, a.classes - c);
            const Vec p = Ops<Vec>::exp(cpu::load_as<Vec>(x + c, n) - shift);
            const Vec alpha = a.alpha == nullptr ? Vec(1) : cpu::load_as<Vec>(a.alpha + c, n);
            cpu::store_as(gk * p - ge * alpha, out + c, n);
          }
          const opmath_t py = std::exp(b.xy[j] - b.shift[j]);
          out[y] = static_cast<scalar_t>(g * (ck[j] * py + cd[j] - ce[j] * b.ay[j]));
        }
      }
      return;
    }
    cpu::for_each_segment(begin, end, a.inner, [&](int64_t n, int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; i += W) {
        const int64_t k = std::min(W, i1 - i), first = n * a.inner + i;
        const Lanes lanes = channel_lanes(n, i, k, first, lse);
        const Coefficients<Vec> coef = coefficients(lanes.position, a.prm);
        opmath_t g[W] = {};
        opmath_t label_lane[W];
        for (int64_t j = 0; j < W; ++j) {
          if (j < k && lanes.y[j] >= 0) g[j] = scale(first + j);
          label_lane[j] = static_cast<opmath_t>(lanes.y[j]);
        }
        const Vec gv = Vec::loadu(g), gk = gv * coef.k, gd = gv * coef.d, ge = gv * coef.e, y = Vec::loadu(label_lane);
        for (int64_t c = 0; c < a.classes; ++c) {
          const Vec p = Ops<Vec>::exp(cpu::load_as<Vec>(channel(n, c, i), k) - lanes.lse);
          const Vec d = Vec::blendv(Vec(0), gd, y == Vec(static_cast<opmath_t>(c)));
          cpu::store_as(gk * p + d - ge * Vec(a.alpha_of(c)), gx + (n * a.classes + c) * a.inner + i, k);
        }
      }
    });
  }
};

struct CpuKernels {
  template <typename scalar_t>
  static void forward(const Args<scalar_t>& a, int64_t reduction, Tensor& loss, Tensor& lse, Tensor& count) {
    using opmath_t = math_type_t<scalar_t>;
    cpu::BadLabel bad;
    const Kernel<scalar_t> k{a, bad};
    const int64_t positions = a.n * a.inner, span = k.span();
    const auto loss_out = fastloss::loss_out<scalar_t, opmath_t>(loss, reduction == kNone);
    opmath_t* lse_out = lse.mutable_data_ptr<opmath_t>();
    std::vector<cpu::SumCount> partial((positions + span - 1) / span);
    torch::stable::parallel_for(0, static_cast<int64_t>(partial.size()), 1, [&](int64_t first, int64_t last) {
      for (int64_t c = first; c < last; ++c)
        partial[c] = k.forward_chunk(c * span, std::min(positions, (c + 1) * span), loss_out, lse_out);
    });
    bad.check(kOp, a.classes);
    cpu::SumCount total;
    for (const cpu::SumCount& p : partial) total += p;
    torch::stable::fill_(count, total.count);
    if (reduction != kNone) torch::stable::fill_(loss, total.sum);
  }

  template <typename scalar_t>
  static void backward(const Args<scalar_t>& a, const Tensor& grad, const Tensor& lse, Tensor& grad_input) {
    using opmath_t = math_type_t<scalar_t>;
    cpu::BadLabel bad;
    const Kernel<scalar_t> k{a, bad};
    const int64_t positions = a.n * a.inner, span = k.span();
    const opmath_t* g = grad.const_data_ptr<opmath_t>();
    const bool per_position = grad.numel() > 1;  // (a reduced loss's grad may be (1,) or (1, 1): not per position)
    auto scale = [&](int64_t position) { return (per_position ? g[position] : g[0]) * a.weight_of(position); };
    scalar_t* gx = grad_input.mutable_data_ptr<scalar_t>();
    torch::stable::parallel_for(0, (positions + span - 1) / span, 1, [&](int64_t first, int64_t last) {
      for (int64_t c = first; c < last; ++c)
        k.backward_chunk(c * span, std::min(positions, (c + 1) * span), lse.const_data_ptr<opmath_t>(), scale, gx);
    });
    bad.check(kOp, a.classes);
  }
};

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(fastloss, CPU, m) {
  m.impl("softmax_focal_loss", TORCH_BOX(&forward<CpuKernels>));
  m.impl("softmax_focal_loss_backward", TORCH_BOX(&backward<CpuKernels>));
}

}  // namespace fastloss::softmax_focal
