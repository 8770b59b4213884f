// CPU kernels of fastloss::overlap_sums over math/overlap.h. Work is cut into (sample, chunk of
// positions) items; each item first turns its labels into SIMD-ready valid/label lanes (checking
// them: labels outside [0, C) that are not ignore_index are an error, never an address), then:
//   softmax   a block of Vec::size() positions at a time with all its classes in L1, so softmax
//             takes one exp per logit;
//   sigmoid / none   one class row at a time, streaming, its three sums in registers.
// Forward: per item partial sums of every class, added in item order (deterministic). Backward:
// one pass recomputing the activation.
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <atomic>
#include <vector>
#include "cpu/vec_ops.h"
#include "ops/overlap.h"

namespace fastloss::overlap {
namespace {

constexpr int64_t kChunkPositions = 2048;  // per (sample, chunk) partial sums: independent of threads

// A label outside [0, C) that is not ignore_index, seen by any thread: an error after the loop.
struct BadLabel {
  std::atomic<bool> seen{false};
  std::atomic<int64_t> value{0};

  void record(int64_t label) {
    value.store(label, std::memory_order_relaxed);
    seen.store(true, std::memory_order_relaxed);
  }
  void check(int64_t label_count) const {
    TORCH_CHECK_VALUE(!seen.load(), kOp, ": target has label ", value.load(), " outside [0, ", label_count,
                ") that is not ignore_index");
  }
};

template <typename scalar_t>
struct Chunk {
  using opmath_t = at::opmath_type<scalar_t>;
  using Vec = at::vec::Vectorized<opmath_t>;
  static constexpr int64_t W = Vec::size();

  const Args<scalar_t>& a;
  int64_t n = 0, begin = 0, size = 0;
  std::vector<opmath_t> valid, label;  // per position of the chunk, zero-padded to whole vectors

  Chunk(const Args<scalar_t>& args) : a(args), valid(kChunkPositions + W), label(kChunkPositions + W) {}

  void load(int64_t item, int64_t chunks, BadLabel& bad) {
    n = item / chunks;
    begin = (item % chunks) * kChunkPositions;
    size = std::min(a.hw - begin, kChunkPositions);
    std::fill(valid.begin(), valid.end(), opmath_t(0));
    for (int64_t j = 0; j < size; ++j) {
      if (a.labels == nullptr) {
        valid[j] = 1;
        continue;
      }
      const int64_t lab = a.labels[n * a.hw + begin + j];
      if (a.has_ignore && lab == a.ignore_index) continue;
      if (lab < 0 || lab >= a.label_count()) bad.record(lab);
      valid[j] = 1;
      label[j] = static_cast<opmath_t>(lab);
    }
  }

  // Lanes of positions [j, j + k) of the chunk (k ≤ W; the padding lanes are invalid).
  const scalar_t* x(int64_t c, int64_t j) const { return a.x + (n * a.classes + c) * a.hw + begin + j; }
  Vec p_elementwise(int64_t c, int64_t j, int64_t k) const {
    return activate_elementwise(a.activation, cpu::load_as<Vec>(x(c, j), k));
  }
  Vec target(int64_t c, int64_t j, int64_t k, const Vec& v) const {
    if (a.labels == nullptr) return cpu::load_as<Vec>(a.t + (n * a.classes + c) * a.hw + begin + j, k) * v;
    return Vec::blendv(Vec(0), v, Vec::loadu(&label[j]) == Vec(static_cast<opmath_t>(c + a.label_offset)));
  }
  // The softmax probabilities of every class at positions [j, j + k), into p[0..C).
  void softmax(int64_t j, int64_t k, Vec* p) const {
    for (int64_t c = 0; c < a.classes; ++c) p[c] = cpu::load_as<Vec>(x(c, j), k);
    softmax_in_place(a.classes, p);
  }
};

struct CpuKernels {
  template <typename scalar_t>
  static void forward(const Args<scalar_t>& a, at::Tensor& sums) {
    using K = Chunk<scalar_t>;
    using Vec = typename K::Vec;
    using opmath_t = typename K::opmath_t;
    const int64_t chunks = (a.hw + kChunkPositions - 1) / kChunkPositions, classes = a.classes;
    std::vector<double> partial(a.n * chunks * classes * 3);
    BadLabel bad;
    at::parallel_for(0, a.n * chunks, 1, [&](int64_t first, int64_t last) {
      K chunk(a);
      std::vector<Vec> p(classes), acc(3 * classes);
      for (int64_t item = first; item < last; ++item) {
        chunk.load(item, chunks, bad);
        double* out = &partial[item * 3 * classes];
        auto add = [&](Vec& pt, Vec& pp, Vec& tt, const Vec& pc, const Vec& tc) {
          pt = pt + pc * tc;
          pp = pp + (a.squared ? pc * pc : pc);
          tt = tt + (a.squared ? tc * tc : tc);
        };
        if (a.activation == kSoftmax) {
          std::fill(acc.begin(), acc.end(), Vec(0));
          for (int64_t j = 0; j < chunk.size; j += K::W) {
            const int64_t k = std::min(K::W, chunk.size - j);
            const Vec v = Vec::loadu(&chunk.valid[j]);
            chunk.softmax(j, k, p.data());
            for (int64_t c = 0; c < classes; ++c)
              add(acc[3 * c], acc[3 * c + 1], acc[3 * c + 2], p[c] * v, chunk.target(c, j, k, v));
          }
          for (int64_t i = 0; i < 3 * classes; ++i) out[i] = cpu::sum_lanes(acc[i]);
          continue;
        }
        for (int64_t c = 0; c < classes; ++c) {
          Vec pt(0), pp(0), tt(0);
          for (int64_t j = 0; j < chunk.size; j += K::W) {
            const int64_t k = std::min(K::W, chunk.size - j);
            const Vec v = Vec::loadu(&chunk.valid[j]);
            add(pt, pp, tt, chunk.p_elementwise(c, j, k) * v, chunk.target(c, j, k, v));
          }
          out[3 * c] = cpu::sum_lanes(pt);
          out[3 * c + 1] = cpu::sum_lanes(pp);
          out[3 * c + 2] = cpu::sum_lanes(tt);
        }
      }
    });
    bad.check(a.label_count());
    opmath_t* result = sums.mutable_data_ptr<opmath_t>();
    for (int64_t n = 0; n < a.n; ++n) {
      for (int64_t i = 0; i < 3 * classes; ++i) {
        double total = 0;
        for (int64_t chunk = 0; chunk < chunks; ++chunk) total += partial[((n * chunks) + chunk) * 3 * classes + i];
        result[n * 3 * classes + i] = static_cast<opmath_t>(total);
      }
    }
  }

  template <typename scalar_t>
  static void backward(const Args<scalar_t>& a, const at::Tensor& grad_sums, at::Tensor& grad_input) {
    using K = Chunk<scalar_t>;
    using Vec = typename K::Vec;
    using opmath_t = typename K::opmath_t;
    const opmath_t* coef = grad_sums.const_data_ptr<opmath_t>();  // (N, C, 3): dL/dS_pt, dL/dS_p, dL/dS_t
    scalar_t* gx = grad_input.mutable_data_ptr<scalar_t>();
    const int64_t chunks = (a.hw + kChunkPositions - 1) / kChunkPositions, classes = a.classes;
    BadLabel bad;
    at::parallel_for(0, a.n * chunks, 1, [&](int64_t first, int64_t last) {
      K chunk(a);
      std::vector<Vec> p(classes), g(classes);
      for (int64_t item = first; item < last; ++item) {
        chunk.load(item, chunks, bad);
        auto dl_dp = [&](int64_t c, int64_t j, int64_t k, const Vec& v, const Vec& pc) {
          const opmath_t* abc = coef + (chunk.n * classes + c) * 3;
          return grad_prob(Vec(abc[0]), Vec(abc[1]), chunk.target(c, j, k, v), pc, a.squared) * v;
        };
        auto out = [&](int64_t c, int64_t j) { return gx + (chunk.n * classes + c) * a.hw + chunk.begin + j; };
        if (a.activation == kSoftmax) {
          for (int64_t j = 0; j < chunk.size; j += K::W) {
            const int64_t k = std::min(K::W, chunk.size - j);
            const Vec v = Vec::loadu(&chunk.valid[j]);
            chunk.softmax(j, k, p.data());
            Vec dot(0);
            for (int64_t c = 0; c < classes; ++c) {
              g[c] = dl_dp(c, j, k, v, p[c]);
              dot = dot + p[c] * g[c];
            }
            for (int64_t c = 0; c < classes; ++c) cpu::store_as(p[c] * (g[c] - dot), out(c, j), k);
          }
          continue;
        }
        for (int64_t c = 0; c < classes; ++c) {
          for (int64_t j = 0; j < chunk.size; j += K::W) {
            const int64_t k = std::min(K::W, chunk.size - j);
            const Vec v = Vec::loadu(&chunk.valid[j]), pc = chunk.p_elementwise(c, j, k);
            cpu::store_as(elementwise_vjp(a.activation, dl_dp(c, j, k, v, pc), pc), out(c, j), k);
          }
        }
      }
    });
    bad.check(a.label_count());
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(fastloss, CPU, m) {
  m.impl("overlap_sums", &forward<CpuKernels>);
  m.impl("overlap_sums_backward", &backward<CpuKernels>);
}

}  // namespace fastloss::overlap
