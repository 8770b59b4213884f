#pragma once
// Host side of fastloss::rtdetr_matching_cost (math: math/matching_cost.h, namespace rtdetr), shared
// by cpu/ and cuda/rtdetr_matching_cost.*: argument checks, each target's box values once, the
// kernels' arguments.
#include "math/matching_cost.h"
#include "ops/tensor_args.h"

namespace fastloss::matching_cost::rtdetr {

constexpr const char* kRtdetrOp = "fastloss::rtdetr_matching_cost";

template <typename S>
struct Args {
  const S* class_cost;     // (L·B·Q, T)
  const S* query_boxes;    // (L·B·Q, 4) cxcywh: each query's values are computed where they are used
  const S* target_values;  // kValues × (B·T)
  int64_t rows, batch, queries, targets;
  Gains<S> gains;

  FASTLOSS_HD int64_t image(int64_t r) const { return (r / queries) % batch; }
  FASTLOSS_HD void query_values(int64_t r, S (&v)[kValues]) const { box_values(query_boxes + r * 4, v); }
};

// One target's values from a (·, 4) cxcywh row, into column i of `values`.
template <typename S>
FASTLOSS_HD void write_target_values(const S* boxes, int64_t i, int64_t columns, S* values) {
  S v[kValues];
  box_values(boxes + i * 4, v);
  for (int k = 0; k < kValues; ++k) values[k * columns + i] = v[k];
}

// Entry points, registered by the CPU and CUDA files:
//   struct Kernels {
//     template <typename S> static void target_values(const Tensor& tgt_boxes, Tensor& values);
//     template <typename S> static void costs(const Args<S>&, Tensor& out);
//   };
template <typename Kernels>
Tensor costs(const Tensor& class_cost, const Tensor& pred_boxes, const Tensor& tgt_boxes, double cost_class,
             double cost_bbox, double cost_giou) {
  check_same_device(kRtdetrOp, class_cost, pred_boxes, "pred_boxes");
  check_same_device(kRtdetrOp, class_cost, tgt_boxes, "tgt_boxes");
  const ScalarType math = class_cost.scalar_type();
  FASTLOSS_CHECK_VALUE((math == kFloat || math == kDouble) && class_cost.dim() == 4, kRtdetrOp,
                       ": class_cost must be a float32 or float64 (L, B, Q, T) tensor, got ", math, " ",
                       class_cost.sizes());
  const int64_t l = class_cost.size(0), b = class_cost.size(1), q = class_cost.size(2), t = class_cost.size(3);
  FASTLOSS_CHECK_VALUE(pred_boxes.scalar_type() == math && sizes(pred_boxes) == (Shape{l, b, q, 4}), kRtdetrOp,
                       ": pred_boxes must be ", math, " of shape (L, B, Q, 4) = ", Shape{l, b, q, 4}, ", got ",
                       pred_boxes.scalar_type(), " ", pred_boxes.sizes());
  FASTLOSS_CHECK_VALUE(tgt_boxes.scalar_type() == math && sizes(tgt_boxes) == (Shape{b, t, 4}), kRtdetrOp,
                       ": tgt_boxes must be ", math, " of shape (B, T, 4) = ", Shape{b, t, 4}, ", got ",
                       tgt_boxes.scalar_type(), " ", tgt_boxes.sizes());
  const Tensor cls = as_contiguous(class_cost), boxes = as_contiguous(pred_boxes), tgt = as_contiguous(tgt_boxes);
  Tensor out = empty({l, b, q, t}, options(cls));
  if (out.numel() == 0) return out;
  Tensor values = empty({kValues, b * t}, options(cls));
  dispatch_math(math, [&](auto m_type) {
    using S = typename decltype(m_type)::type;
    Kernels::template target_values<S>(tgt, values);
    Kernels::costs(
        Args<S>{cls.const_data_ptr<S>(), boxes.const_data_ptr<S>(), values.const_data_ptr<S>(), l * b * q, b, q, t,
                Gains<S>{static_cast<S>(cost_class), static_cast<S>(cost_bbox), static_cast<S>(cost_giou)}},
        out);
  });
  return out;
}

}  // namespace fastloss::matching_cost::rtdetr
