#pragma once
// Host side of fastloss::task_aligned_assign (math: math/task_aligned.h), shared by
// cpu/task_aligned.cpp and cuda/task_aligned.cu: argument checks, the outputs, the kernels' arguments.
// Nothing of (batch, GTs, anchors) is materialised: per GT its top-k list (B·M·k), per anchor the
// outputs themselves.
#include "math/task_aligned.h"
#include "ops/tensor_args.h"

namespace fastloss::task_aligned {

constexpr const char* kOp = "fastloss::task_aligned_assign";

struct Tensors {
  Tensor scores, pd, anchors, labels, gt, gt_in, mask;  // pd, anchors, gt in the math type; gt_in: the target boxes
  int64_t batch = 0, anchors_n = 0, classes = 0, gts = 0;
  ScalarType math = kFloat, out = kFloat;
};

// G: the geometry (math/task_aligned.h); boxes: the GTs' boxes the targets copy (B, M, G::kBoxFields).
template <typename G>
Tensors check(const char* op, const Tensor& scores, const Tensor& pd, const Tensor& anchors, const Tensor& labels,
              const Tensor& gt, const Tensor& boxes, const Tensor& mask, int64_t topk, int64_t topk2,
              int64_t num_classes, double alpha, double beta, double eps, double stride_val) {
  for (const Tensor* t : {&pd, &anchors, &labels, &gt, &boxes, &mask}) check_same_device(op, scores, *t, "an input");
  FASTLOSS_CHECK_VALUE(is_floating(scores.scalar_type()) && scores.dim() == 3, op,
                       ": pd_scores must be a floating (B, A, C) tensor, got ", scores.scalar_type(), " ",
                       scores.sizes());
  const int64_t b = scores.size(0), a = scores.size(1);
  FASTLOSS_CHECK_VALUE(is_floating(pd.scalar_type()) && pd.dim() == 3 && pd.size(0) == b && pd.size(1) == a &&
                           pd.size(2) == G::kPdFields,
                       op, ": pd_bboxes must be a floating (B, A, ", G::kPdFields,
                       ") tensor with pd_scores' B and A, got ", pd.sizes());
  FASTLOSS_CHECK_VALUE(
      is_floating(anchors.scalar_type()) && anchors.dim() == 2 && anchors.size(0) == a && anchors.size(1) == 2, op,
      ": anc_points must be a floating (A, 2) tensor, got ", anchors.sizes());
  FASTLOSS_CHECK_VALUE(is_floating(gt.scalar_type()) && gt.dim() == 3 && gt.size(0) == b && gt.size(2) == G::kGtFields,
                       op, ": gt_bboxes must be a floating (B, M, ", G::kGtFields, ") tensor, got ", gt.sizes());
  const int64_t m = gt.size(1);
  FASTLOSS_CHECK_VALUE(is_floating(boxes.scalar_type()) && boxes.dim() == 3 && boxes.size(0) == b &&
                           boxes.size(1) == m && boxes.size(2) == G::kBoxFields,
                       op, ": the target boxes must be a floating (B, M, ", G::kBoxFields, ") tensor, got ",
                       boxes.sizes());
  FASTLOSS_CHECK_VALUE(labels.scalar_type() == kLong && labels.dim() == 2 && labels.size(0) == b && labels.size(1) == m,
                       op, ": gt_labels must be an int64 (B, M) tensor, got ", labels.scalar_type(), " ",
                       labels.sizes());
  FASTLOSS_CHECK_VALUE(
      mask.scalar_type() == ScalarType::Bool && mask.dim() == 2 && mask.size(0) == b && mask.size(1) == m, op,
      ": mask_gt must be a bool (B, M) tensor, got ", mask.scalar_type(), " ", mask.sizes());
  FASTLOSS_CHECK_VALUE(topk >= 1 && topk <= kMaxTopk, op, ": topk must be in [1, ", kMaxTopk, "], got ", topk);
  FASTLOSS_CHECK_VALUE(topk2 >= 1 && topk2 <= topk, op, ": topk2 must be in [1, topk], got ", topk2);
  FASTLOSS_CHECK_VALUE(num_classes >= 1, op, ": num_classes must be >= 1, got ", num_classes);
  for (double v : {alpha, beta, eps, stride_val})
    FASTLOSS_CHECK_VALUE(std::isfinite(v), op, ": alpha, beta, eps and stride_val must be finite");
  FASTLOSS_CHECK_VALUE(eps >= 0 && stride_val >= 0, op, ": eps and stride_val must be >= 0");
  Tensors t;
  t.batch = b, t.anchors_n = a, t.classes = scores.size(2), t.gts = m;
  t.out = promote_floating(promote_floating(scores.scalar_type(), pd.scalar_type()), boxes.scalar_type());
  t.math = op_math_type(t.out);
  t.scores = as_contiguous(scores);
  t.pd = as_contiguous(as_type(pd, t.math));
  t.anchors = as_contiguous(as_type(anchors, t.math));
  t.gt_in = as_contiguous(boxes);
  t.gt = as_contiguous(as_type(gt, t.math));
  t.labels = as_contiguous(labels);
  t.mask = as_contiguous(mask);
  return t;
}

// The kernels' view: inputs in the math type S but the scores (scalar_t), per-GT top-k lists, outputs.
template <typename G, typename scalar_t, typename S>
struct Args {
  const scalar_t* scores;  // (B, A, C)
  const S* pd;             // (B, A, G::kPdFields)
  const S* anchors;        // (A, 2)
  const int64_t* labels;   // (B, M)
  const S* gt;             // (B, M, G::kGtFields)
  const bool* mask;        // (B, M)
  int64_t batch, anchors_n, classes, gts, num_classes;
  int topk, topk2;
  S alpha, beta, eps, stride_val;
  // per GT (B, M, topk): its positives' anchors (−1 past the count), and (B, M) the normalisers
  int64_t* list;
  S* pos_metric;   // max metric over the GT's final positives
  S* pos_overlap;  // max overlap over them
  // outputs
  int64_t* target_gt_idx;  // (B, A): also the owner while assigning
  bool* fg;                // (B, A)
  S* norm;                 // (B, A): the target score of each anchor (its label's), in S: in place of metrics
  // per anchor (B, A), zeroed: how many GTs claim it, M − (the lowest claiming GT), and the metric
  // and overlap with the GT it goes to
  int32_t* claims;
  int32_t* first_claim;
  S* metrics;
  S* overlaps;
  S* prepared;  // (G::kPrepared, B, A): each prediction's values for the overlaps (prepare() fills them)

  // Whether anchor a lies in GT g's (flat index) box, by the geometry's test.
  FASTLOSS_HD bool candidate(int64_t g, int64_t a) const {
    return G::candidate(gt + g * G::kGtFields, anchors[a * 2], anchors[a * 2 + 1], stride_val);
  }

  // Prediction p's (flat index) prepared values, before any pair.
  FASTLOSS_HD void prepare(int64_t p) const {
    S values[G::kPrepared > 0 ? G::kPrepared : 1];
    G::prepare(pd + p * G::kPdFields, values);
    for (int k = 0; k < G::kPrepared; ++k) prepared[k * batch * anchors_n + p] = values[k];
  }

  // The candidate test, overlap and metric of pair (image b, GT j, anchor a); false: not a candidate.
  FASTLOSS_HD bool pair(int64_t b, int64_t j, int64_t a, S& overlap, S& metric) const {
    const int64_t g = b * gts + j;
    if (!mask[g] || !candidate(g, a)) return false;
    const int64_t p = b * anchors_n + a;
    S values[G::kPrepared > 0 ? G::kPrepared : 1];
    for (int k = 0; k < G::kPrepared; ++k) values[k] = prepared[k * batch * anchors_n + p];
    overlap = G::overlap(gt + g * G::kGtFields, pd + p * G::kPdFields, values);
    const int64_t label = labels[g];
    const S score = label >= 0 && label < classes ? static_cast<S>(scores[p * classes + label]) : S(0);
    metric = align_metric(score, overlap, alpha, beta);
    // a NaN (a NaN box or score) counts as 0: it never outranks a number
    if (overlap != overlap) overlap = S(0);
    if (metric != metric) metric = S(0);
    return true;
  }
};

// Entry points, registered by the CPU and CUDA files:
//   struct Kernels {
//     // fills target_gt_idx, fg and norm (and the lists and normalisers on the way)
//     template <typename G, typename scalar_t, typename S>
//     static void assign(const Tensor& on, const Args<G, scalar_t, S>&);
//     // the labels, boxes and (dense or sparse) scores of every anchor from those (norm: the math
//     // type's (B, A), which may lie in bboxes' memory: the labels and scores are written first)
//     static void finalize(const Tensors&, const Tensor& gt_idx, const Tensor& fg, const void* norm,
//                          Tensor& labels, Tensor& bboxes, Tensor& scores);
//   };
template <typename Kernels, typename G>
std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> assign_boxes(const char* op, const Tensor& scores, const Tensor& pd,
                                                                const Tensor& anchors, const Tensor& labels,
                                                                const Tensor& gt, const Tensor& boxes,
                                                                const Tensor& mask, int64_t topk, int64_t topk2,
                                                                int64_t num_classes, double alpha, double beta,
                                                                double eps, double stride_val, bool sparse) {
  const Tensors t = check<G>(op, scores, pd, anchors, labels, gt, boxes, mask, topk, topk2, num_classes, alpha, beta,
                             eps, stride_val);
  const auto opts = options(t.scores);
  Tensor target_labels = empty({t.batch, t.anchors_n}, opts.with(kLong));
  Tensor target_bboxes = empty({t.batch, t.anchors_n, G::kBoxFields}, opts.with(boxes.scalar_type()));
  Tensor target_scores =
      zeros(sparse ? Shape{t.batch, t.anchors_n} : Shape{t.batch, t.anchors_n, num_classes}, opts.with(t.out));
  Tensor fg = zeros({t.batch, t.anchors_n}, opts.with(ScalarType::Bool));
  Tensor gt_idx = zeros({t.batch, t.anchors_n}, opts.with(kLong));
  if (t.batch * t.anchors_n == 0 || t.gts == 0) {  // no GT: every anchor background, labelled num_classes
    torch::stable::fill_(target_labels, static_cast<double>(num_classes));
    torch::stable::zero_(target_bboxes);
    return {target_labels, target_bboxes, target_scores, fg, gt_idx};
  }
  Tensor list = empty({t.batch, t.gts, topk}, opts.with(kLong));
  Tensor pos = zeros({2, t.batch, t.gts}, opts.with(t.math));
  // Each anchor's bookkeeping lives in outputs that finalize writes last, so that the op needs no
  // memory of its own per anchor: the claims (two int32) in target_labels' int64; the metrics,
  // overlaps (the metric becomes the target score in place) and the prediction's prepared values in
  // target_bboxes' memory where it holds them (GT boxes of the math type or wider; otherwise a
  // tensor of their own).
  torch::stable::zero_(target_labels);
  const auto bytes = [](ScalarType type) -> int64_t { return type == kDouble ? 8 : type == kFloat ? 4 : 2; };
  constexpr int planes = 2 + G::kPrepared;
  const bool in_boxes = G::kBoxFields * bytes(boxes.scalar_type()) >= planes * bytes(t.math);
  if (in_boxes) torch::stable::zero_(target_bboxes);
  Tensor per_anchor = in_boxes ? target_bboxes : zeros({planes, t.batch, t.anchors_n}, opts.with(t.math));
  const void* norm = nullptr;
  dispatch_floating(t.scores.scalar_type(), [&](auto s_type) {
    using scalar_t = typename decltype(s_type)::type;
    dispatch_math_from<scalar_t>(t.math, [&](auto m_type) {
      using S = typename decltype(m_type)::type;
      S* pos_data = pos.mutable_data_ptr<S>();
      int32_t* claims_data = static_cast<int32_t*>(target_labels.mutable_data_ptr());
      S* anchor_data = static_cast<S*>(per_anchor.mutable_data_ptr());
      norm = anchor_data;
      const int64_t ba = t.batch * t.anchors_n;
      Kernels::assign(gt_idx, Args<G, scalar_t, S>{t.scores.const_data_ptr<scalar_t>(),
                                                   t.pd.const_data_ptr<S>(),
                                                   t.anchors.const_data_ptr<S>(),
                                                   t.labels.const_data_ptr<int64_t>(),
                                                   t.gt.const_data_ptr<S>(),
                                                   t.mask.const_data_ptr<bool>(),
                                                   t.batch,
                                                   t.anchors_n,
                                                   t.classes,
                                                   t.gts,
                                                   num_classes,
                                                   static_cast<int>(topk),
                                                   static_cast<int>(topk2),
                                                   static_cast<S>(alpha),
                                                   static_cast<S>(beta),
                                                   static_cast<S>(eps),
                                                   static_cast<S>(stride_val),
                                                   list.mutable_data_ptr<int64_t>(),
                                                   pos_data,
                                                   pos_data + t.batch * t.gts,
                                                   gt_idx.mutable_data_ptr<int64_t>(),
                                                   fg.mutable_data_ptr<bool>(),
                                                   anchor_data,
                                                   claims_data,
                                                   claims_data + ba,
                                                   anchor_data,
                                                   anchor_data + ba,
                                                   anchor_data + 2 * ba});
    });
  });
  Kernels::finalize(t, gt_idx, fg, norm, target_labels, target_bboxes, target_scores);
  return {target_labels, target_bboxes, target_scores, fg, gt_idx};
}

// fastloss::task_aligned_assign: xyxy boxes.
template <typename Kernels>
std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> assign(const Tensor& scores, const Tensor& pd, const Tensor& anchors,
                                                          const Tensor& labels, const Tensor& gt, const Tensor& mask,
                                                          int64_t topk, int64_t topk2, int64_t num_classes,
                                                          double alpha, double beta, double eps, double stride_val,
                                                          bool sparse) {
  return assign_boxes<Kernels, AxisAligned>(kOp, scores, pd, anchors, labels, gt, gt, mask, topk, topk2, num_classes,
                                            alpha, beta, eps, stride_val, sparse);
}

// fastloss::rotated_task_aligned_assign: the GTs' rows (Gaussian, corner, edges) and xywhr boxes, the
// predictions' Gaussians (the stride is already in the GT rows' rectangles).
template <typename Kernels>
std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> assign_rotated(const Tensor& scores, const Tensor& pd,
                                                                  const Tensor& anchors, const Tensor& labels,
                                                                  const Tensor& gt, const Tensor& boxes,
                                                                  const Tensor& mask, int64_t topk, int64_t topk2,
                                                                  int64_t num_classes, double alpha, double beta,
                                                                  double eps, bool sparse) {
  return assign_boxes<Kernels, Rotated>("fastloss::rotated_task_aligned_assign", scores, pd, anchors, labels, gt, boxes,
                                        mask, topk, topk2, num_classes, alpha, beta, eps, 0.0, sparse);
}

}  // namespace fastloss::task_aligned
