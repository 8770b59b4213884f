#pragma once
// Task-aligned assignment (TOOD: Feng et al., arXiv 2108.07755), as YOLOv8–11's TaskAlignedAssigner
// (ultralytics/utils/tal.py) computes it, per image, for GT j and anchor a:
//   candidate(j, a)  GT j is valid (mask_gt ≠ 0) and anchor point a lies strictly inside GT j's box,
//                    each side of which is first raised to stride_val where shorter (the box goes
//                    through centre/size form and back, as ultralytics' xyxy2xywh / xywh2xyxy)
//   overlap(j, a)    max(CIoU(gt_j, pred_a), 0) on candidates, 0 elsewhere; ultralytics' bbox_iou
//                    (xyxy, eps = 1e-7 added to the heights and the union, its order of operations)
//   metric(j, a)     score(a, label_j)^α · overlap(j, a)^β
//   positives        the top-k anchors of each valid GT by metric (ties: the lowest anchor index, zero
//                    metrics included) that are its candidates; an anchor claimed by several GTs goes to
//                    the GT of highest overlap over all GTs (ties: the lowest GT index); optionally only
//                    the top-k2 of each GT's positives by metric remain
//   target score     metric(j, a) · max_a' overlap(j, a') / (max_a' metric(j, a') + eps) over GT j's
//                    positives a', for positive anchor a of GT j (0 elsewhere)
// Oriented boxes (ultralytics' RotatedTaskAlignedAssigner): the overlap is max(probIoU(gt, pred), 0)
// (math/probiou.h, of the boxes' Gaussians: the GTs' given, the predictions' made here from their xywhr)
// and the candidate test ultralytics' rotated one — the
// anchor's projections on the edges AB and AD of the GT's rectangle (sides shorter than stride_val
// raised to it, corners from its xywhr as ultralytics' xywhr2xyxyxyxy) within [0, |AB|²], [0, |AD|²].
// Per-pair formulas here, host and device; the loops (and the top-k bookkeeping) in cpu/ and cuda/.
#include <cmath>
#include "common/host_device.h"
#include "math/elementary.h"
#include "math/probiou.h"

namespace fastloss::task_aligned {

constexpr int kMaxTopk = 64;  // top-k lists live in registers / on the stack

// NaN-propagating min/max and clamp at 0, as torch's minimum/maximum/clamp.
template <typename S>
FASTLOSS_HD S fmin_nan(S a, S b) {
  return a != a || b != b ? a + b : (a < b ? a : b);
}
template <typename S>
FASTLOSS_HD S fmax_nan(S a, S b) {
  return a != a || b != b ? a + b : (a > b ? a : b);
}
template <typename S>
FASTLOSS_HD S clamp0(S x) {
  return x < S(0) ? S(0) : x;
}

// GT j's box for the in-box test: sides shorter than stride_val raised to it about the centre,
// through ultralytics' centre/size round trip (which every box takes).
template <typename S>
FASTLOSS_HD void candidate_box(const S (&g)[4], S stride_val, S (&out)[4]) {
  const S cx = (g[0] + g[2]) / S(2), cy = (g[1] + g[3]) / S(2);
  S w = g[2] - g[0], h = g[3] - g[1];
  w = w < stride_val ? stride_val : w;
  h = h < stride_val ? stride_val : h;
  const S hw = w / S(2), hh = h / S(2);
  out[0] = cx - hw, out[1] = cy - hh, out[2] = cx + hw, out[3] = cy + hh;
}

// Anchor point (x, y) strictly inside the box, by ultralytics' margins (differences > eps).
template <typename S>
FASTLOSS_HD bool inside(const S (&box)[4], S x, S y, S eps) {
  return x - box[0] > eps && y - box[1] > eps && box[2] - x > eps && box[3] - y > eps;
}

// max(CIoU(g, p), 0), both xyxy, in ultralytics' bbox_iou order of operations (eps = 1e-7).
template <typename S>
FASTLOSS_HD S ciou_overlap(const S (&g)[4], const S (&p)[4]) {
  const S eps = S(1e-7);
  const S w1 = g[2] - g[0], h1 = g[3] - g[1] + eps, w2 = p[2] - p[0], h2 = p[3] - p[1] + eps;
  const S iw = fmin_nan(g[2], p[2]) - fmax_nan(g[0], p[0]), ih = fmin_nan(g[3], p[3]) - fmax_nan(g[1], p[1]);
  const S inter = clamp0(iw) * clamp0(ih);
  const S uni = w1 * h1 + w2 * h2 - inter + eps;
  const S iou = inter / uni;
  const S cw = fmax_nan(g[2], p[2]) - fmin_nan(g[0], p[0]), ch = fmax_nan(g[3], p[3]) - fmin_nan(g[1], p[1]);
  const S c2 = cw * cw + ch * ch + eps;
  const S dx = p[0] + p[2] - g[0] - g[2], dy = p[1] + p[3] - g[1] - g[3];
  const S rho2 = (dx * dx + dy * dy) / S(4);
  const S d = math::atan(w2 / h2) - math::atan(w1 / h1);
  const S v = S(0.405284734569351085775517852838911) * (d * d);
  const S alpha = v / (S(1) - iou + v + eps);
  return clamp0(iou - (rho2 / c2 + v * alpha));
}

// The box geometry of an assignment: a GT's and a prediction's row lengths, the candidate test of an
// anchor point and the overlap of a pair, over rows the op's caller prepared; kPrepared values per
// prediction that prepare() computes once (before any pair) and overlap() reads.
struct AxisAligned {  // GT and prediction rows: xyxy
  static constexpr int kGtFields = 4, kPdFields = 4, kBoxFields = 4, kPrepared = 0;
  template <typename S>
  FASTLOSS_HD static bool candidate(const S* g, S x, S y, S stride_val) {
    const S box[4] = {g[0], g[1], g[2], g[3]};
    S cand[4];
    candidate_box(box, stride_val, cand);
    return inside(cand, x, y, S(1e-9));
  }
  template <typename S>
  FASTLOSS_HD static void prepare(const S*, S*) {}
  template <typename S>
  FASTLOSS_HD static S overlap(const S* g, const S* p, const S*) {
    const S box[4] = {g[0], g[1], g[2], g[3]}, pred[4] = {p[0], p[1], p[2], p[3]};
    return ciou_overlap(box, pred);
  }
};

struct Rotated {  // GT rows: its Gaussian (x, y, a, b, c), corner A, edges AB and AD; predictions: xywhr
  // (prepared: the prediction's covariance a, b, c)
  static constexpr int kGtFields = probiou::kFields + 6, kPdFields = 5, kBoxFields = 5, kPrepared = 3;
  template <typename S>
  FASTLOSS_HD static bool candidate(const S* g, S x, S y, S) {
    const S* e = g + probiou::kFields;  // ax, ay, abx, aby, adx, ady
    const S apx = x - e[0], apy = y - e[1];
    const S norm_ab = e[2] * e[2] + e[3] * e[3], norm_ad = e[4] * e[4] + e[5] * e[5];
    const S ap_ab = apx * e[2] + apy * e[3], ap_ad = apx * e[4] + apy * e[5];
    return ap_ab >= S(0) && ap_ab <= norm_ab && ap_ad >= S(0) && ap_ad <= norm_ad;
  }
  template <typename S>
  FASTLOSS_HD static void prepare(const S* p, S* out) {
    const S row[5] = {p[0], p[1], p[2], p[3], p[4]};
    const auto box = probiou::XywhrPairMath::gaussian(row, S(0));
    out[0] = box.g[probiou::kA], out[1] = box.g[probiou::kB], out[2] = box.g[probiou::kC];
  }
  template <typename S>
  FASTLOSS_HD static S overlap(const S* g, const S* p, const S* prepared) {
    S gt[probiou::kFields];
    probiou::load_box(g, gt);
    const S pred[probiou::kFields] = {p[0], p[1], prepared[0], prepared[1], prepared[2]};
    return clamp0(probiou::evaluate(gt, pred, S(1e-7)).iou);
  }
};

// score^α · overlap^β (α = 0.5 as a square root, as torch's pow takes it).
template <typename S>
FASTLOSS_HD S align_metric(S score, S overlap, S alpha, S beta) {
  const S s = alpha == S(0.5) ? std::sqrt(score) : alpha == S(1) ? score : math::pow(score, alpha);
  const S o = beta == S(1) ? overlap : math::pow(overlap, beta);
  return s * o;
}

// A GT's running top-k of positive metrics: sorted by metric (descending), then anchor (ascending).
template <typename S>
struct TopK {
  S metric[kMaxTopk];
  int64_t anchor[kMaxTopk];
  int count = 0;

  // (m, a) ranks before (n, b): a larger metric, or the same metric and a lower anchor.
  static FASTLOSS_HD bool before(S m, int64_t a, S n, int64_t b) { return m > n || (m == n && a < b); }

  FASTLOSS_HD void offer(int k, S m, int64_t a) {
    if (count == k && !before(m, a, metric[k - 1], anchor[k - 1])) return;
    int i = count < k ? count++ : k - 1;
    while (i > 0 && before(m, a, metric[i - 1], anchor[i - 1])) {
      metric[i] = metric[i - 1], anchor[i] = anchor[i - 1];
      --i;
    }
    metric[i] = m, anchor[i] = a;
  }
};

}  // namespace fastloss::task_aligned
