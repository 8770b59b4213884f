// CPU kernels of fastloss::matching_cost (math/matching_cost.h): each target's box values once (and
// each query's softmax statistics), then a query at a time — its box values in every lane — against
// Vec::size() targets of its image, the logits gathered at the targets' labels, written straight into
// the (L, B, Q, T) cost.
#include "cpu/field_lanes.h"
#include "cpu/row_loop.h"
#include "ops/matching_cost.h"

namespace fastloss::matching_cost {
namespace {

struct CpuKernels {
  template <typename scalar_t, typename S>
  static void prepare(const Tensors& t, int64_t class_cost, Tensor& softmax, Tensor& target_values) {
    const int64_t rows = softmax.size(1), columns = target_values.size(1);
    const S* tgt = t.tgt_boxes.const_data_ptr<S>();
    S* v = target_values.mutable_data_ptr<S>();
    if (class_cost == kSoftmax) {
      const scalar_t* logits = t.logits.const_data_ptr<scalar_t>();
      S* stats = softmax.mutable_data_ptr<S>();
      torch::stable::parallel_for(0, rows, 256, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r)
          softmax_stats(logits + r * t.classes, t.classes, stats[r], stats[rows + r]);
      });
    }
    for (int64_t i = 0; i < columns; ++i) write_box_values(tgt, i, columns, v);
  }

  template <typename scalar_t, typename S>
  static void costs(const Args<scalar_t, S>& a, Tensor& out) {
    using Vec = simd::Vec<S>;
    constexpr int64_t W = Vec::size();
    S* cost = out.mutable_data_ptr<S>();
    const int64_t rows = a.rows(), columns = a.batch * a.targets;
    torch::stable::parallel_for(0, rows, cpu::rows_grain(a.targets), [&](int64_t begin, int64_t end) {
      Vec q[kBoxValues], t[kBoxValues];
      for (int64_t r = begin; r < end; ++r) {
        const int64_t image = (r / a.queries) % a.batch;
        const scalar_t* row = a.logits + r * a.classes;
        S values[kBoxValues];
        a.query_values(r, values);
        cpu::broadcast_item(values, 1, 0, q);
        const bool softmax = a.prm.class_cost == kSoftmax;
        const Vec max(softmax ? a.softmax[r] : S(0)), inv_sum(softmax ? a.softmax[rows + r] : S(0));
        for (int64_t j = 0; j < a.targets; j += W) {
          const int64_t n = std::min(W, a.targets - j);
          cpu::load_items(a.target_values, columns, image * a.targets + j, n, t);
          S x[W] = {}, valid[W] = {};
          for (int64_t k = 0; k < n; ++k) {
            const int64_t c = a.label(image, j + k);
            x[k] = c >= 0 ? static_cast<S>(row[c]) : S(0);
            valid[k] = c >= 0 ? S(1) : S(0);
          }
          const Vec logit = Vec::loadu(x);
          const Vec class_cost =
              a.prm.class_cost == kFocal ? focal_class(a.prm, logit) : (Ops<Vec>::exp(logit - max) * inv_sum).neg();
          const Vec c = pair_cost(a.prm, q, t, class_cost);
          // padded targets (and labels outside the classes, refused before) cost exactly 0
          Ops<Vec>::select(Vec::loadu(valid) > Vec(S(0)), c, Vec(S(0))).store(cost + r * a.targets + j, n);
        }
      }
    });
  }
};

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(fastloss, CPU, m) { m.impl("matching_cost", TORCH_BOX(&costs<CpuKernels>)); }

}  // namespace fastloss::matching_cost
