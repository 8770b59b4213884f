// CPU kernels of fastloss::prototype_mask_loss (math/mask_loss.h): Vec::size() pixels of a box's row
// at a time. Forward and the coefficients' gradient: one anchor per task, over its box only. The
// prototypes' gradient: one image row per task, adding every positive anchor whose box covers it,
// in anchor order. Nothing depends on the thread count.
#include <atomic>
#include <cmath>
#include <limits>
#include <vector>
#include "cpu/row_loop.h"
#include "cpu/vec_ops.h"
#include "ops/mask_loss.h"

namespace fastloss::mask_loss {
namespace {

template <typename scalar_t>
using Vec = simd::Vec<math_type_t<scalar_t>>;

// z = Σⱼ cⱼ·Pⱼ at n pixels from flat pixel `offset` of image b (j in order: the CUDA kernels' sum).
template <typename scalar_t, typename opmath_t = math_type_t<scalar_t>>
inline Vec<scalar_t> logits(const Args<scalar_t>& a, const opmath_t* c, int64_t b, int64_t offset, int64_t n) {
  Vec<scalar_t> z(opmath_t(0));
  for (int64_t j = 0; j < a.k; ++j)
    z = z + Vec<scalar_t>(c[j]) * cpu::load_as<Vec<scalar_t>>(a.proto(b, j) + offset, n);
  return z;
}

// Anchor p's coefficients into c; false (and a flag for the error) where its target names no mask.
template <typename scalar_t, typename opmath_t = math_type_t<scalar_t>>
inline bool prepare(const Args<scalar_t>& a, int64_t p, opmath_t* c, const opmath_t*& plane, opmath_t& marker) {
  const int64_t b = p / a.anchors, anchor = p % a.anchors;
  for (int64_t j = 0; j < a.k; ++j) c[j] = a.coefficient(b, j, anchor);
  return a.target(p, plane, marker);
}

struct BadIndex {
  std::atomic<bool> seen{false};
  void check() const {
    FASTLOSS_CHECK_VALUE(!seen.load(), kOp, ": a foreground anchor's target_index names no target mask");
  }
};

struct CpuKernels {
  template <typename scalar_t>
  static void forward(const Args<scalar_t>& a, math_type_t<scalar_t>* loss) {
    using opmath_t = math_type_t<scalar_t>;
    using V = Vec<scalar_t>;
    constexpr int64_t W = V::size();
    BadIndex bad;
    torch::stable::parallel_for(0, a.batch * a.anchors, 64, [&](int64_t begin, int64_t end) {
      opmath_t c[kMaxCoefficients];
      for (int64_t p = begin; p < end; ++p) {
        loss[p] = 0;
        if (!a.fg_mask[p]) continue;
        const opmath_t* plane;
        opmath_t marker;
        if (!prepare(a, p, c, plane, marker)) {
          bad.seen = true;
          loss[p] = std::numeric_limits<opmath_t>::quiet_NaN();
          continue;
        }
        const int64_t b = p / a.anchors;
        const Span cols = a.columns(p), rows = a.rows(p);
        cpu::Wide<V> acc;
        for (int64_t y = rows.begin; y < rows.end; ++y) {
          acc.restart();  // (each row from lane 0: the same lanes on every SIMD width)
          for (int64_t x = cols.begin; x < cols.end; x += W) {
            const int64_t n = std::min(W, cols.end - x), offset = y * a.w + x;
            const V z = logits(a, c, b, offset, n);
            V unused;
            acc += cpu::first_lanes(pixel_loss<false>(z, target_value(V::loadu(plane + offset, n), marker), unused), n);
          }
        }
        loss[p] = a.finish(p, static_cast<opmath_t>(acc.sum_lanes()));
      }
    });
    bad.check();
  }

  template <typename scalar_t>
  static void backward(const Args<scalar_t>& a, const math_type_t<scalar_t>* upstream, scalar_t* grad_coefficients,
                       scalar_t* grad_protos, const Tensor&) {
    coefficients_grad(a, upstream, grad_coefficients);
    protos_grad(a, upstream, grad_protos);
  }

  // ∂/∂cⱼ = g / (H·W) / area · Σ_{box} (σ(z) − t)·Pⱼ, per anchor.
  template <typename scalar_t>
  static void coefficients_grad(const Args<scalar_t>& a, const math_type_t<scalar_t>* upstream, scalar_t* out) {
    using opmath_t = math_type_t<scalar_t>;
    using V = Vec<scalar_t>;
    constexpr int64_t W = V::size();
    torch::stable::parallel_for(0, a.batch * a.anchors, 64, [&](int64_t begin, int64_t end) {
      opmath_t c[kMaxCoefficients];
      cpu::Wide<V> acc[kMaxCoefficients];
      for (int64_t p = begin; p < end; ++p) {
        const int64_t b = p / a.anchors, anchor = p % a.anchors;
        const opmath_t* plane;
        opmath_t marker;
        if (!a.fg_mask[p] || !prepare(a, p, c, plane, marker)) {
          for (int64_t j = 0; j < a.k; ++j) out[(b * a.k + j) * a.anchors + anchor] = scalar_t(0);
          continue;
        }
        for (int64_t j = 0; j < a.k; ++j) acc[j] = cpu::Wide<V>();
        const Span cols = a.columns(p), rows = a.rows(p);
        for (int64_t y = rows.begin; y < rows.end; ++y) {
          for (int64_t j = 0; j < a.k; ++j) acc[j].restart();
          for (int64_t x = cols.begin; x < cols.end; x += W) {
            const int64_t n = std::min(W, cols.end - x), offset = y * a.w + x;
            const V z = logits(a, c, b, offset, n);
            const V r = cpu::first_lanes(pixel_grad(z, target_value(V::loadu(plane + offset, n), marker)), n);
            for (int64_t j = 0; j < a.k; ++j) acc[j] += r * cpu::load_as<V>(a.proto(b, j) + offset, n);
          }
        }
        const opmath_t scale = a.finish(p, upstream[p]);
        for (int64_t j = 0; j < a.k; ++j)
          out[(b * a.k + j) * a.anchors + anchor] =
              static_cast<scalar_t>(static_cast<opmath_t>(acc[j].sum_lanes()) * scale);
      }
    });
  }

  // ∂/∂Pⱼ(pixel) = Σ over the positives whose box holds the pixel of g / (H·W) / area · (σ(z) − t)·cⱼ,
  // in anchor order; one image row per task.
  template <typename scalar_t>
  static void protos_grad(const Args<scalar_t>& a, const math_type_t<scalar_t>* upstream, scalar_t* out) {
    using opmath_t = math_type_t<scalar_t>;
    using V = Vec<scalar_t>;
    constexpr int64_t W = V::size();
    // Each image's positives, in anchor order: their coefficients, scales, targets and boxes.
    struct Positive {
      int64_t p;
      opmath_t scale, marker;
      const opmath_t* plane;
      Span cols, rows;
    };
    std::vector<std::vector<Positive>> positives(a.batch);
    std::vector<std::vector<opmath_t>> coefficients(a.batch);
    for (int64_t b = 0; b < a.batch; ++b) {
      for (int64_t anchor = 0; anchor < a.anchors; ++anchor) {
        const int64_t p = b * a.anchors + anchor;
        Positive q{p, a.finish(p, upstream[p]), 0, nullptr, a.columns(p), a.rows(p)};
        opmath_t c[kMaxCoefficients];
        if (!a.fg_mask[p] || !prepare(a, p, c, q.plane, q.marker)) continue;
        positives[b].push_back(q);
        coefficients[b].insert(coefficients[b].end(), c, c + a.k);
      }
    }
    torch::stable::parallel_for(0, a.batch * a.h, 1, [&](int64_t begin, int64_t end) {
      std::vector<opmath_t> acc(a.k * a.w);
      for (int64_t row = begin; row < end; ++row) {
        const int64_t b = row / a.h, y = row % a.h;
        std::fill(acc.begin(), acc.end(), opmath_t(0));
        for (size_t i = 0; i < positives[b].size(); ++i) {
          const Positive& q = positives[b][i];
          if (y < q.rows.begin || y >= q.rows.end) continue;
          const opmath_t* c = coefficients[b].data() + i * a.k;
          for (int64_t x = q.cols.begin; x < q.cols.end; x += W) {
            const int64_t n = std::min(W, q.cols.end - x), offset = y * a.w + x;
            const V z = logits(a, c, b, offset, n);
            const V r = pixel_grad(z, target_value(V::loadu(q.plane + offset, n), q.marker)) * V(q.scale);
            for (int64_t j = 0; j < a.k; ++j) {
              opmath_t* dst = acc.data() + j * a.w + x;
              (V::loadu(dst, n) + r * V(c[j])).store(dst, n);
            }
          }
        }
        for (int64_t j = 0; j < a.k; ++j) {
          scalar_t* dst = out + ((b * a.k + j) * a.h + y) * a.w;
          for (int64_t x = 0; x < a.w; x += W) {
            const int64_t n = std::min(W, a.w - x);
            cpu::store_as(V::loadu(acc.data() + j * a.w + x, n), dst + x, n);
          }
        }
      }
    });
  }
};

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(fastloss, CPU, m) {
  m.impl("prototype_mask_loss", TORCH_BOX(&forward<CpuKernels>));
  m.impl("prototype_mask_loss_backward", TORCH_BOX(&backward<CpuKernels>));
}

}  // namespace fastloss::mask_loss
