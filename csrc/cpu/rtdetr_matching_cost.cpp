// CPU kernels of fastloss::rtdetr_matching_cost (math/matching_cost.h, rtdetr): each target's box
// values once, then a query at a time — its values in every lane — against Vec::size() targets of
// its image, the class cost read and the cost written in place.
#include "cpu/field_lanes.h"
#include "cpu/row_loop.h"
#include "ops/rtdetr_matching_cost.h"

namespace fastloss::matching_cost::rtdetr {
namespace {

struct CpuKernels {
  template <typename S>
  static void target_values(const Tensor& tgt_boxes, Tensor& values) {
    const int64_t columns = values.size(1);
    const S* boxes = tgt_boxes.const_data_ptr<S>();
    S* v = values.mutable_data_ptr<S>();
    for (int64_t i = 0; i < columns; ++i) write_target_values(boxes, i, columns, v);
  }

  template <typename S>
  static void costs(const Args<S>& a, Tensor& out) {
    using Vec = simd::Vec<S>;
    constexpr int64_t W = Vec::size();
    S* cost = out.mutable_data_ptr<S>();
    const int64_t columns = a.batch * a.targets;
    torch::stable::parallel_for(0, a.rows, cpu::rows_grain(a.targets), [&](int64_t begin, int64_t end) {
      Vec q[kValues], t[kValues];
      for (int64_t r = begin; r < end; ++r) {
        S values[kValues];
        a.query_values(r, values);
        cpu::broadcast_item(values, 1, 0, q);
        const int64_t first = a.image(r) * a.targets, row = r * a.targets;
        for (int64_t j = 0; j < a.targets; j += W) {
          const int64_t n = std::min(W, a.targets - j);
          cpu::load_items(a.target_values, columns, first + j, n, t);
          pair_cost(a.gains, Vec::loadu(a.class_cost + row + j, n), q, t).store(cost + row + j, n);
        }
      }
    });
  }
};

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(fastloss, CPU, m) { m.impl("rtdetr_matching_cost", TORCH_BOX(&costs<CpuKernels>)); }

}  // namespace fastloss::matching_cost::rtdetr
