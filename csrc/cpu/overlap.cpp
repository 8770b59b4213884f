// CPU kernels of fastloss::overlap_sums over math/overlap.h. Work is cut into (sample, chunk of
// positions) items; each item first turns its labels into SIMD-ready valid/label lanes (checking
// them: labels outside [0, C) that are not ignore_index are an error, never an address), then:
//   softmax   a block of Vec::size() positions at a time with all its classes in L1, so softmax
//             takes one exp per logit;
//   sigmoid / none   one class row at a time, streaming, its three sums in registers.
// Forward: per item partial sums of every class, added in item order (deterministic), and p into
// the buffer that becomes the gradient. Backward: one pass over that buffer, in place, no exp.
#include <vector>
#include "cpu/row_loop.h"
#include "cpu/vec_ops.h"
#include "ops/overlap.h"

namespace fastloss::overlap {
namespace {

constexpr int64_t kChunkPositions = 2048;  // per (sample, chunk) partial sums: independent of threads

template <typename scalar_t, typename target_t>
struct Chunk {
  using opmath_t = pair_math_t<scalar_t, target_t>;
  using Vec = simd::Vec<opmath_t>;
  static constexpr int64_t W = Vec::size();

  const Args<scalar_t, target_t>& a;
  int64_t n = 0, begin = 0, size = 0;
  std::vector<opmath_t> valid, label;  // per position of the chunk, zero-padded to whole vectors

  Chunk(const Args<scalar_t, target_t>& args) : a(args), valid(kChunkPositions + W), label(kChunkPositions + W) {}

  void load(int64_t item, int64_t chunks, cpu::BadLabel& bad) {
    n = item / chunks;
    begin = (item % chunks) * kChunkPositions;
    size = std::min(a.hw - begin, kChunkPositions);
    std::fill(valid.begin() + size, valid.end(), opmath_t(0));
    if (a.labels == nullptr) {
      std::fill(valid.begin(), valid.begin() + size, opmath_t(1));
      return;
    }
    // Branch-free, so the compiler vectorises it; a bad label is looked for again only if there is one.
    // (An int reduction: GCC does not vectorise a bool one.)
    const int64_t* __restrict labels = a.labels + n * a.hw + begin;
    opmath_t* __restrict valid_lanes = valid.data();
    opmath_t* __restrict label_lanes = label.data();
    const uint64_t count = static_cast<uint64_t>(a.label_count());
    const int has_ignore = a.has_ignore;
    const int64_t ignore_index = a.ignore_index;
    int any_bad = 0;
    for (int64_t j = 0; j < size; ++j) {
      const int64_t lab = labels[j];
      const int ignored = has_ignore & (lab == ignore_index);
      any_bad |= (ignored ^ 1) & (static_cast<uint64_t>(lab) >= count);
      valid_lanes[j] = ignored ? opmath_t(0) : opmath_t(1);
      label_lanes[j] = static_cast<opmath_t>(static_cast<int32_t>(lab));  // exact for every valid label
    }
    if (any_bad) {
      for (int64_t j = 0; j < size; ++j) {
        const bool ignored = a.has_ignore && labels[j] == a.ignore_index;
        if (!ignored && (labels[j] < 0 || labels[j] >= a.label_count())) bad.record(labels[j]);
      }
    }
  }

  // Lanes of positions [j, j + k) of the chunk (k ≤ W; the padding lanes are invalid).
  int64_t offset(int64_t c, int64_t j) const { return (n * a.classes + c) * a.hw + begin + j; }
  const scalar_t* x(int64_t c, int64_t j) const { return a.x + offset(c, j); }
  Vec target(int64_t c, int64_t j, int64_t k, const Vec& v) const {
    if (a.labels == nullptr) return cpu::load_as<Vec>(a.t + offset(c, j), k) * v;
    return Vec::blendv(Vec(0), v, Vec::loadu(&label[j]) == Vec(static_cast<opmath_t>(c + a.label_offset)));
  }
  // The softmax probabilities of every class at positions [j, j + k), into p[0..C).
  SoftmaxStats<Vec> softmax(int64_t j, int64_t k, Vec* p) const {
    for (int64_t c = 0; c < a.classes; ++c) p[c] = cpu::load_as<Vec>(x(c, j), k);
    return softmax_in_place(a.classes, p);
  }

  // The cross-entropy sums of positions [j, j + k) (math/overlap_ce.h) from their targets t[0..C),
  // the logits at x (the input's, or the backward's a.logits) and lse: A = Σ u_c·(lse − x_c),
  // log p_y, and Σ u_c, Σ w_c·t_c.
  struct CeSums {
    Vec a = Vec(0), log_py = Vec(0), u = Vec(0), w = Vec(0);
  };
  CeSums ce_sums(const scalar_t* logits, int64_t j, int64_t k, const Vec& v, const Vec* t, const Vec& lse) const {
    CeSums s;
    for (int64_t c = 0; c < a.classes; ++c) {
      const Vec u = smoothed_weight(a.ce, c, t[c], v);
      s.u = s.u + u;
      s.w = s.w + Vec(a.ce.weight_of(c)) * t[c];
      if (logits == nullptr) continue;
      // (0 where u or t is 0, even at an infinite logit: a −inf logit of another class is finite CE)
      const Vec log_p = cpu::load_as<Vec>(logits + offset(c, j), k) - lse;
      s.a = s.a - times_unless_zero(u, log_p);
      s.log_py = s.log_py + times_unless_zero(t[c], log_p);
    }
    return s;
  }
};

struct CpuKernels {
  template <typename scalar_t, typename target_t>
  static void forward(const Args<scalar_t, target_t>& a, Tensor& sums, scalar_t* probs) {
    using K = Chunk<scalar_t, target_t>;
    using Vec = typename K::Vec;
    using opmath_t = typename K::opmath_t;
    const int64_t chunks = (a.hw + kChunkPositions - 1) / kChunkPositions, classes = a.classes;
    const int64_t width = 3 * classes + (a.ce.on ? 2 : 0);  // per item: the sums, then Σ CE and Σ w_y
    std::vector<double> partial(a.n * chunks * width);
    cpu::BadLabel bad;
    torch::stable::parallel_for(0, a.n * chunks, 1, [&](int64_t first, int64_t last) {
      K chunk(a);
      std::vector<Vec> p(classes), t(classes);       // a block's p_c, t_c
      std::vector<cpu::Wide<Vec>> acc(3 * classes);  // the sums (the same lanes on every flavour)
      for (int64_t item = first; item < last; ++item) {
        chunk.load(item, chunks, bad);
        double* out = partial.data() + item * width;  // (not &partial[…]: empty when C = 0)
        // locals, so the compiler can take the branches out of the loops
        const bool squared = a.squared, soft = a.soft;
        auto add = [squared, soft](auto& pt, auto& pp, auto& tt, const Vec& pc, const Vec& tc) {
          pt += intersection(pc, tc, soft);
          pp += squared ? pc * pc : pc;
          tt += squared ? tc * tc : tc;
        };
        if (a.activation == kSoftmax) {
          std::fill(acc.begin(), acc.end(), cpu::Wide<Vec>());
          cpu::Wide<Vec> ce_loss_sum, ce_norm;
          for (int64_t j = 0; j < chunk.size; j += K::W) {
            const int64_t k = std::min(K::W, chunk.size - j);
            const Vec v = Vec::loadu(&chunk.valid[j]);
            const SoftmaxStats<Vec> stats = chunk.softmax(j, k, p.data());
            for (int64_t c = 0; c < classes; ++c) {
              if (probs != nullptr) cpu::store_as(p[c], probs + chunk.offset(c, j), k);
              t[c] = chunk.target(c, j, k, v);
              add(acc[3 * c], acc[3 * c + 1], acc[3 * c + 2], p[c] * v, t[c]);
            }
            if (a.ce.softmax_ce()) {
              const auto ce = chunk.ce_sums(a.x, j, k, v, t.data(), stats.lse());
              ce_loss_sum.current() += ce_loss(a.ce, ce.a, ce.log_py);
              ce_norm.current() += a.labels != nullptr ? ce.w : v;
            }
            if (a.ce.sigmoid_focal()) {
              for (int64_t c = a.ce.first_class; c < classes; ++c) {  // (p overwrote the logits: read again)
                const Vec xc = cpu::load_as<Vec>(chunk.x(c, j), k);
                ce_loss_sum.current() += element_focal<false>(a.ce, c, xc, t[c], v);
                ce_norm.current() += v;
              }
            }
            ce_loss_sum.rotate();
            ce_norm.rotate();
          }
          for (int64_t i = 0; i < 3 * classes; ++i) out[i] = cpu::sum_lanes(acc[i]);
          if (a.ce.on) {
            out[3 * classes] = cpu::sum_lanes(ce_loss_sum);
            out[3 * classes + 1] = cpu::sum_lanes(ce_norm);
          }
          continue;
        }
        cpu::Wide<Vec> focal_sum, focal_count;  // the sigmoid focal term's (math/overlap_ce.h)
        for (int64_t c = 0; c < classes; ++c) {
          cpu::Wide<Vec> pt, pp, tt;
          const bool focal = a.ce.sigmoid_focal() && c >= a.ce.first_class;
          focal_sum.restart();
          focal_count.restart();
          for (int64_t j = 0; j < chunk.size; j += K::W) {
            const int64_t k = std::min(K::W, chunk.size - j);
            const Vec v = Vec::loadu(&chunk.valid[j]), xc = cpu::load_as<Vec>(chunk.x(c, j), k);
            const Vec pc = activate_elementwise(a.activation, xc), tc = chunk.target(c, j, k, v);
            if (probs != nullptr) cpu::store_as(pc, probs + chunk.offset(c, j), k);
            add(pt, pp, tt, pc * v, tc);
            if (focal) {
              focal_sum += element_focal<false>(a.ce, c, xc, tc, v);
              focal_count += v;
            }
          }
          out[3 * c] = cpu::sum_lanes(pt);
          out[3 * c + 1] = cpu::sum_lanes(pp);
          out[3 * c + 2] = cpu::sum_lanes(tt);
        }
        if (a.ce.on) {
          out[3 * classes] = cpu::sum_lanes(focal_sum);
          out[3 * classes + 1] = cpu::sum_lanes(focal_count);
        }
      }
    });
    bad.check(kOp, a.label_count());
    opmath_t* result = sums.mutable_data_ptr<opmath_t>();
    for (int64_t n = 0; n < a.n; ++n) {
      for (int64_t i = 0; i < width; ++i) {
        double total = 0;
        for (int64_t chunk = 0; chunk < chunks; ++chunk) total += partial[((n * chunks) + chunk) * width + i];
        (i < 3 * classes ? result[n * 3 * classes + i] : a.ce_out[n * 2 + i - 3 * classes]) =
            static_cast<opmath_t>(total);
      }
    }
  }

  template <typename scalar_t, typename target_t>
  static void backward(const Args<scalar_t, target_t>& a, const Tensor& grad_sums, scalar_t* probs) {
    using K = Chunk<scalar_t, target_t>;
    using Vec = typename K::Vec;
    using opmath_t = typename K::opmath_t;
    const opmath_t* coef = grad_sums.const_data_ptr<opmath_t>();  // (N, C, 3): dL/dS_pt, dL/dS_p, dL/dS_t
    const int64_t chunks = (a.hw + kChunkPositions - 1) / kChunkPositions, classes = a.classes;
    const bool squared = a.squared, soft = a.soft;
    cpu::BadLabel bad;
    torch::stable::parallel_for(0, a.n * chunks, 1, [&](int64_t first, int64_t last) {
      K chunk(a);
      std::vector<Vec> p(classes), g(classes), t(classes);
      for (int64_t item = first; item < last; ++item) {
        chunk.load(item, chunks, bad);
        auto dl_dp = [&](int64_t c, const Vec& v, const Vec& pc, const Vec& tc) {
          const opmath_t* abc = coef + (chunk.n * classes + c) * 3;
          return grad_prob(Vec(abc[0]), Vec(abc[1]), tc, pc, squared, soft) * v;
        };
        // s·d(sigmoid focal)/dx of the elements [j, j + k) of class c, from the logits
        auto focal_grad = [&](int64_t c, int64_t j, int64_t k, const Vec& v, const Vec& tc) {
          const Vec xc = cpu::load_as<Vec>(a.logits + chunk.offset(c, j), k);
          return Vec(a.ce_grad[chunk.n * 2]) * element_focal<true>(a.ce, c, xc, tc, v);
        };
        if (a.activation == kSoftmax) {
          for (int64_t j = 0; j < chunk.size; j += K::W) {
            const int64_t k = std::min(K::W, chunk.size - j);
            const Vec v = Vec::loadu(&chunk.valid[j]);
            Vec dot(0);
            for (int64_t c = 0; c < classes; ++c) {
              p[c] = cpu::load_as<Vec>(probs + chunk.offset(c, j), k);
              t[c] = chunk.target(c, j, k, v);
              g[c] = dl_dp(c, v, p[c], t[c]);
              dot = dot + p[c] * g[c];
            }
            if (!a.ce.softmax_ce()) {
              for (int64_t c = 0; c < classes; ++c) {
                Vec d = p[c] * (g[c] - dot);
                if (a.ce.sigmoid_focal() && c >= a.ce.first_class) d = d + focal_grad(c, j, k, v, t[c]);
                cpu::store_as(d, probs + chunk.offset(c, j), k);
              }
              continue;
            }
            // dL/dx_c = p_c·(g_c − dot + s·(f·T + G)) − s·(f·u_c + G·t_c), s = dL/d(Σ CE) of the sample
            const Vec lse =
                a.logits != nullptr
                    ? softmax_stats<Vec>(classes,
                                         [&](int64_t c) { return cpu::load_as<Vec>(a.logits + chunk.offset(c, j), k); })
                          .lse()
                    : Vec(0);
            const auto ce = chunk.ce_sums(a.logits, j, k, v, t.data(), lse);
            const auto coef = ce_coefficients(a.ce, ce.a, ce.log_py);
            const Vec s(a.ce_grad[chunk.n * 2]), shift = s * (coef.f * ce.u + coef.g) - dot;
            for (int64_t c = 0; c < classes; ++c) {
              const Vec u = smoothed_weight(a.ce, c, t[c], v);
              cpu::store_as(p[c] * (g[c] + shift) - s * (coef.f * u + coef.g * t[c]), probs + chunk.offset(c, j), k);
            }
          }
          continue;
        }
        for (int64_t c = 0; c < classes; ++c) {
          const bool focal = a.ce.sigmoid_focal() && c >= a.ce.first_class;
          for (int64_t j = 0; j < chunk.size; j += K::W) {
            const int64_t k = std::min(K::W, chunk.size - j);
            scalar_t* out = probs + chunk.offset(c, j);
            const Vec v = Vec::loadu(&chunk.valid[j]), pc = cpu::load_as<Vec>(out, k), tc = chunk.target(c, j, k, v);
            Vec d = elementwise_vjp(a.activation, dl_dp(c, v, pc, tc), pc);
            if (focal) d = d + focal_grad(c, j, k, v, tc);
            cpu::store_as(d, out, k);
          }
        }
      }
    });
    bad.check(kOp, a.label_count());
  }
};

}  // namespace

// The loss from the sums: a walk over the tiny (N, C) matrix.
struct CpuScores {
  template <typename S>
  static void scores(const Tensor& sums, const Tensor& class_weight, const ScoreParams<S>& p, Tensor* loss,
                     const Tensor* grad, Tensor* grad_sums) {
    overlap::scores<S>(sums.const_data_ptr<S>(), class_weight.defined() ? class_weight.const_data_ptr<S>() : nullptr,
                       sums.size(0), sums.size(1), p, loss ? loss->mutable_data_ptr<S>() : nullptr,
                       grad ? grad->const_data_ptr<S>() : nullptr,
                       grad_sums ? grad_sums->mutable_data_ptr<S>() : nullptr);
  }
};

STABLE_TORCH_LIBRARY_IMPL(fastloss, CPU, m) {
  m.impl("overlap_score", TORCH_BOX(&score_forward<CpuScores>));
  m.impl("overlap_score_backward", TORCH_BOX(&score_backward<CpuScores>));
  m.impl("overlap_sums", TORCH_BOX(&forward<CpuKernels>));
  m.impl("overlap_sums_backward_", TORCH_BOX(&backward<CpuKernels>));
  m.impl("overlap_ce_sums", TORCH_BOX(&ce_forward<CpuKernels>));
  m.impl("overlap_ce_sums_backward_", TORCH_BOX(&ce_backward<CpuKernels>));
}

}  // namespace fastloss::overlap
