// CPU kernels of fastloss::task_aligned_assign (math/task_aligned.h): each GT scans the anchors for
// its candidates and keeps its top-k (GTs in parallel); then each image, in parallel, counts the
// claims on its anchors, gives an anchor claimed twice to the GT of highest overlap, applies top-k2,
// and normalises the target scores. Every step is in a fixed order: the same result for every thread
// count.
#include <vector>
#include "cpu/row_loop.h"
#include "ops/task_aligned.h"

namespace fastloss::task_aligned {
namespace {

// GT (b, j)'s positives: its top-k anchors by metric (ties: lowest anchor; the anchors without a
// positive metric count as 0 in index order), kept where they are its candidates; −1 fills the list.
template <typename G, typename scalar_t, typename S>
void gt_positives(const Args<G, scalar_t, S>& a, int64_t b, int64_t j) {
  const int64_t g = b * a.gts + j;
  int64_t* out = a.list + g * a.topk;
  for (int i = 0; i < a.topk; ++i) out[i] = -1;
  if (!a.mask[g]) return;
  TopK<S> top;
  int64_t zeros[kMaxTopk];  // the first k anchors without a positive metric, and whether candidates
  bool zero_is_candidate[kMaxTopk];
  int zero_count = 0;
  for (int64_t anchor = 0; anchor < a.anchors_n; ++anchor) {
    S overlap = 0, metric = 0;
    const bool candidate = a.pair(b, j, anchor, overlap, metric);
    if (candidate && metric > S(0)) {
      top.offer(a.topk, metric, anchor);
    } else if (zero_count < a.topk) {
      zeros[zero_count] = anchor;
      zero_is_candidate[zero_count++] = candidate;
    }
  }
  int n = 0;
  for (int i = 0; i < top.count; ++i) out[n++] = top.anchor[i];
  for (int i = 0; i < a.topk - top.count && i < zero_count; ++i)
    if (zero_is_candidate[i]) out[n++] = zeros[i];
}

// Image b: claims, conflicts, top-k2, the normalisers and each anchor's target score.
template <typename G, typename scalar_t, typename S>
void assign_image(const Args<G, scalar_t, S>& a, int64_t b) {
  const int64_t na = a.anchors_n;
  int64_t* owner = a.target_gt_idx + b * na;
  bool* fg = a.fg + b * na;
  int32_t* claims = a.claims + b * na;
  for (int64_t j = 0; j < a.gts; ++j) {
    const int64_t* list = a.list + (b * a.gts + j) * a.topk;
    for (int i = 0; i < a.topk && list[i] >= 0; ++i)
      if (claims[list[i]]++ == 0) owner[list[i]] = j;
  }
  S overlap, metric;
  for (int64_t anchor = 0; anchor < na; ++anchor) {
    fg[anchor] = claims[anchor] > 0;
    if (claims[anchor] < 2) continue;
    // the GT of highest overlap over all GTs (0 where it is not a candidate; ties: the lowest GT)
    int64_t best = 0;
    S best_overlap = 0;
    for (int64_t j = 0; j < a.gts; ++j) {
      const S o = a.pair(b, j, anchor, overlap, metric) ? overlap : S(0);
      if (j == 0 || o > best_overlap) best = j, best_overlap = o;
    }
    owner[anchor] = best;
  }
  // Each positive's metric and overlap with its GT.
  S* metrics = a.metrics + b * na;
  S* overlaps = a.overlaps + b * na;
  for (int64_t anchor = 0; anchor < na; ++anchor)
    if (fg[anchor] && a.pair(b, owner[anchor], anchor, overlap, metric))
      metrics[anchor] = metric, overlaps[anchor] = overlap;
  if (a.topk2 < a.topk) {  // each GT keeps its top-k2 positives by metric (zeros by index, as above)
    std::vector<TopK<S>> tops(a.gts);
    for (int64_t anchor = 0; anchor < na; ++anchor) {
      if (!fg[anchor]) continue;
      if (metrics[anchor] > S(0)) tops[owner[anchor]].offer(a.topk2, metrics[anchor], anchor);
    }
    for (int64_t anchor = 0; anchor < na; ++anchor) {
      if (!fg[anchor]) continue;
      const int64_t j = owner[anchor];
      bool kept;
      if (metrics[anchor] > S(0)) {
        kept = false;
        for (int i = 0; i < tops[j].count; ++i) kept |= tops[j].anchor[i] == anchor;
      } else {  // its rank among the row's zeros: the anchors before it but the GT's positive-metric ones
        int64_t positive_before = 0;
        for (int i = 0; i < tops[j].count; ++i) positive_before += tops[j].anchor[i] < anchor;
        kept = anchor - positive_before < a.topk2 - tops[j].count;
      }
      if (!kept) fg[anchor] = false, owner[anchor] = 0;
    }
  }
  S* pos_metric = a.pos_metric + b * a.gts;
  S* pos_overlap = a.pos_overlap + b * a.gts;
  for (int64_t anchor = 0; anchor < na; ++anchor) {
    if (!fg[anchor]) continue;
    const int64_t j = owner[anchor];
    pos_metric[j] = std::max(pos_metric[j], metrics[anchor]);
    pos_overlap[j] = std::max(pos_overlap[j], overlaps[anchor]);
  }
  S* norm = a.norm + b * na;
  for (int64_t anchor = 0; anchor < na; ++anchor) {
    if (!fg[anchor]) continue;
    const int64_t j = owner[anchor];
    norm[anchor] = metrics[anchor] * pos_overlap[j] / (pos_metric[j] + a.eps);
  }
}

struct CpuKernels {
  template <typename G, typename scalar_t, typename S>
  static void assign(const Tensor&, const Args<G, scalar_t, S>& a) {
    if constexpr (G::kPrepared > 0)
      torch::stable::parallel_for(0, a.batch * a.anchors_n, cpu::kChunk, [&](int64_t begin, int64_t end) {
        for (int64_t p = begin; p < end; ++p) a.prepare(p);
      });
    torch::stable::parallel_for(0, a.batch * a.gts, 1, [&](int64_t begin, int64_t end) {
      for (int64_t g = begin; g < end; ++g) gt_positives(a, g / a.gts, g % a.gts);
    });
    torch::stable::parallel_for(0, a.batch, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) assign_image(a, b);
    });
  }

  // Labels and scores of each anchor from its GT index, foreground flag and target score, then its
  // box (norm may lie in the boxes' memory).
  static void finalize(const Tensors& t, const Tensor& gt_idx, const Tensor& fg, const void* norm, Tensor& labels,
                       Tensor& bboxes, Tensor& scores) {
    const int64_t* idx = gt_idx.const_data_ptr<int64_t>();
    const bool* positive = fg.const_data_ptr<bool>();
    const int64_t* gt_labels = t.labels.const_data_ptr<int64_t>();
    int64_t* out_labels = labels.mutable_data_ptr<int64_t>();
    const int64_t n = t.batch * t.anchors_n, classes = scores.dim() == 3 ? scores.size(2) : 0;
    const int64_t fields = t.gt_in.size(2);
    dispatch_floating(t.gt_in.scalar_type(), [&](auto box_type) {
      using box_t = typename decltype(box_type)::type;
      const box_t* gt = t.gt_in.const_data_ptr<box_t>();
      box_t* out_boxes = bboxes.mutable_data_ptr<box_t>();
      dispatch_floating(scores.scalar_type(), [&](auto out_type) {
        using out_t = typename decltype(out_type)::type;
        dispatch_math(t.math, [&](auto math_type) {
          using S = typename decltype(math_type)::type;
          const S* target = static_cast<const S*>(norm);
          out_t* out_scores = scores.mutable_data_ptr<out_t>();
          torch::stable::parallel_for(0, n, cpu::kChunk, [&](int64_t begin, int64_t end) {
            for (int64_t i = begin; i < end; ++i) {
              const int64_t g = (i / t.anchors_n) * t.gts + idx[i];
              const int64_t label = std::max<int64_t>(gt_labels[g], 0);
              out_labels[i] = label;
              if (!positive[i]) continue;
              if (classes == 0) {
                out_scores[i] = static_cast<out_t>(target[i]);
              } else if (label < classes) {
                out_scores[i * classes + label] = static_cast<out_t>(target[i]);
              }
            }
          });
        });
        torch::stable::parallel_for(0, n, cpu::kChunk, [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i) {
            const int64_t g = (i / t.anchors_n) * t.gts + idx[i];
            for (int64_t c = 0; c < fields; ++c) out_boxes[i * fields + c] = gt[g * fields + c];
          }
        });
      });
    });
  }
};

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(fastloss, CPU, m) {
  m.impl("task_aligned_assign", TORCH_BOX(&assign<CpuKernels>));
  m.impl("rotated_task_aligned_assign", TORCH_BOX(&assign_rotated<CpuKernels>));
}

}  // namespace fastloss::task_aligned
