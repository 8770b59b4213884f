#pragma once
// Host side of fastloss::matching_cost (math: math/matching_cost.h), shared by cpu/matching_cost.cpp
// and cuda/matching_cost.cu: argument checks, the per-query and per-target values computed once, the
// kernels' arguments.
#include "math/matching_cost.h"
#include "ops/tensor_args.h"

namespace fastloss::matching_cost {

constexpr const char* kOp = "fastloss::matching_cost";

// Predictions (L, B, Q, ·) — L decoder layers sharing the targets (B, T, ·).
struct Tensors {
  Tensor logits, boxes, labels, tgt_boxes, mask;
  int64_t layers = 0, batch = 0, queries = 0, classes = 0, targets = 0;
  ScalarType math = kFloat;
};

inline Tensors check(const Tensor& logits, const Tensor& boxes, const Tensor& labels, const Tensor& tgt_boxes,
                     const Tensor& mask, int64_t class_cost, double alpha, double gamma) {
  for (const Tensor* t : {&boxes, &labels, &tgt_boxes, &mask}) check_same_device(kOp, logits, *t, "an input");
  FASTLOSS_CHECK_VALUE(is_floating(logits.scalar_type()) && logits.dim() == 4, kOp,
                       ": pred_logits must be a floating (L, B, Q, C) tensor, got ", logits.sizes());
  const int64_t l = logits.size(0), b = logits.size(1), q = logits.size(2);
  FASTLOSS_CHECK_VALUE(is_floating(boxes.scalar_type()) && boxes.dim() == 4 && boxes.size(0) == l &&
                           boxes.size(1) == b && boxes.size(2) == q && boxes.size(3) == 4,
                       kOp, ": pred_boxes must be a floating (L, B, Q, 4) tensor matching pred_logits, got ",
                       boxes.sizes());
  FASTLOSS_CHECK_VALUE(
      is_floating(tgt_boxes.scalar_type()) && tgt_boxes.dim() == 3 && tgt_boxes.size(0) == b && tgt_boxes.size(2) == 4,
      kOp, ": tgt_boxes must be a floating (B, T, 4) tensor, got ", tgt_boxes.sizes());
  const int64_t t = tgt_boxes.size(1);
  FASTLOSS_CHECK_VALUE(labels.scalar_type() == kLong && labels.dim() == 2 && labels.size(0) == b && labels.size(1) == t,
                       kOp, ": tgt_labels must be an int64 (B, T) tensor, got ", labels.sizes());
  FASTLOSS_CHECK_VALUE(
      mask.scalar_type() == ScalarType::Bool && mask.dim() == 2 && mask.size(0) == b && mask.size(1) == t, kOp,
      ": tgt_mask must be a bool (B, T) tensor, got ", mask.sizes());
  FASTLOSS_CHECK_VALUE(class_cost == kFocal || class_cost == kSoftmax, kOp, ": unknown class cost ", class_cost);
  FASTLOSS_CHECK_VALUE(logits.size(3) >= (class_cost == kSoftmax ? 2 : 1), kOp,
                       ": pred_logits needs at least one class (and the no-object column for softmax)");
  FASTLOSS_CHECK_VALUE(std::isfinite(alpha) && std::isfinite(gamma) && gamma >= 0, kOp,
                       ": alpha must be finite and gamma finite and >= 0");
  Tensors r;
  r.layers = l, r.batch = b, r.queries = q, r.classes = logits.size(3), r.targets = t;
  r.math = op_math_type(
      promote_floating(promote_floating(logits.scalar_type(), boxes.scalar_type()), tgt_boxes.scalar_type()));
  r.logits = as_contiguous(logits);
  r.boxes = as_contiguous(as_type(boxes, r.math));
  r.labels = as_contiguous(labels);
  r.tgt_boxes = as_contiguous(as_type(tgt_boxes, r.math));
  r.mask = as_contiguous(mask);
  return r;
}

template <typename scalar_t, typename S>
struct Args {
  const scalar_t* logits;  // (L·B·Q, C)
  const S* query_boxes;    // (L·B·Q, 4): each query's box values are computed where they are used
  const S* softmax;        // 2 × (L·B·Q): the softmax's max and 1 / sum per query ("softmax" only)
  const S* target_values;  // kBoxValues × (B·T)
  const int64_t* labels;   // (B, T)
  const bool* mask;        // (B, T)
  int64_t layers, batch, queries, classes, targets;
  Params<S> prm;

  FASTLOSS_HD int64_t rows() const { return layers * batch * queries; }
  FASTLOSS_HD void query_values(int64_t r, S (&v)[kBoxValues]) const {
    const S b[4] = {query_boxes[r * 4], query_boxes[r * 4 + 1], query_boxes[r * 4 + 2], query_boxes[r * 4 + 3]};
    box_values(b, v);
  }
  // Target t's label in row r's logits, or −1 where it is padded or outside the classes.
  FASTLOSS_HD int64_t label(int64_t image, int64_t t) const {
    const int64_t i = image * targets + t;
    const int64_t c = labels[i];
    const int64_t limit = prm.class_cost == kSoftmax ? classes - 1 : classes;
    return mask[i] && c >= 0 && c < limit ? c : -1;
  }
};

// Entry points, registered by the CPU and CUDA files:
//   struct Kernels {
//     // per-query softmax statistics ("softmax" only) and per-target box values
//     template <typename scalar_t, typename S> static void prepare(const Tensors&, int64_t class_cost,
//         Tensor& softmax, Tensor& target_values);
//     template <typename scalar_t, typename S> static void costs(const Args<scalar_t, S>&, Tensor& out);
//   };
template <typename Kernels>
Tensor costs(const Tensor& logits, const Tensor& boxes, const Tensor& labels, const Tensor& tgt_boxes,
             const Tensor& mask, int64_t class_cost, double alpha, double gamma, double cost_class, double cost_bbox,
             double cost_giou) {
  const Tensors t = check(logits, boxes, labels, tgt_boxes, mask, class_cost, alpha, gamma);
  const auto opts = options(t.logits).with(t.math);
  Tensor out = zeros({t.layers, t.batch, t.queries, t.targets}, opts);
  if (out.numel() == 0) return out;
  const int64_t rows = t.layers * t.batch * t.queries;
  // (2 numbers per query, against the T of its output row; the box values of the queries, 15 each,
  // are computed where they are used instead of kept)
  Tensor softmax = empty({class_cost == kSoftmax ? 2 : 0, rows}, opts);
  Tensor target_values = empty({kBoxValues, t.batch * t.targets}, opts);
  dispatch_floating(t.logits.scalar_type(), [&](auto s_type) {
    using scalar_t = typename decltype(s_type)::type;
    dispatch_math_from<scalar_t>(t.math, [&](auto m_type) {
      using S = typename decltype(m_type)::type;
      Kernels::template prepare<scalar_t, S>(t, class_cost, softmax, target_values);
      Kernels::costs(
          Args<scalar_t, S>{t.logits.const_data_ptr<scalar_t>(), t.boxes.const_data_ptr<S>(),
                            softmax.numel() > 0 ? softmax.const_data_ptr<S>() : nullptr,
                            target_values.const_data_ptr<S>(), t.labels.const_data_ptr<int64_t>(),
                            t.mask.const_data_ptr<bool>(), t.layers, t.batch, t.queries, t.classes, t.targets,
                            Params<S>{static_cast<int>(class_cost), static_cast<S>(alpha), static_cast<S>(gamma),
                                      classify_gamma(gamma), static_cast<S>(cost_class), static_cast<S>(cost_bbox),
                                      static_cast<S>(cost_giou)}},
          out);
    });
  });
  return out;
}

// One query's (or target's) box values from a (·, 4) cxcywh row, into column i of `values`.
template <typename S>
FASTLOSS_HD void write_box_values(const S* boxes, int64_t i, int64_t columns, S* values) {
  const S b[4] = {boxes[i * 4], boxes[i * 4 + 1], boxes[i * 4 + 2], boxes[i * 4 + 3]};
  S v[kBoxValues];
  box_values(b, v);
  for (int k = 0; k < kBoxValues; ++k) values[k * columns + i] = v[k];
}

// The softmax statistics of a logits row: its max and 1 / Σ exp(x − max) (torch's softmax order).
template <typename scalar_t, typename S>
FASTLOSS_HD void softmax_stats(const scalar_t* row, int64_t classes, S& max, S& inv_sum) {
  max = static_cast<S>(row[0]);
  for (int64_t c = 1; c < classes; ++c) {
    const S x = static_cast<S>(row[c]);
    max = x > max || x != x ? x : max;
  }
  S sum = 0;
  for (int64_t c = 0; c < classes; ++c) sum += std::exp(static_cast<S>(row[c]) - max);
  inv_sum = S(1) / sum;
}

}  // namespace fastloss::matching_cost
