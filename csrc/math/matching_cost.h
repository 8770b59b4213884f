#pragma once
// The DETR family's Hungarian matching cost of query q (logits x_q, box b_q) and target t (label c_t,
// box b_t), boxes (cx, cy, w, h):
//   C = cost_bbox · ‖b_q − b_t‖₁ + cost_class · class(q, t) + cost_giou · (−GIoU(xyxy(b_q), xyxy(b_t)))
// class(q, t), with p = σ(x_q[c_t]) (Deformable DETR, Zhu et al., arXiv 2010.04159; DINO):
//   α (1 − p)^γ (−log(p + 1e-8)) − (1 − α) p^γ (−log(1 − p + 1e-8))        "focal"
// or −softmax(x_q)[c_t] over the C + 1 logits whose last is "no object" (DETR, Carion et al., arXiv
// 2005.12872)                                                                  "softmax"
// in the matchers' order of operations (xyxy from cxcywh as cx ∓ 0.5·w, the L1 distance summed over
// cx, cy, w, h in that order, GIoU as torchvision's: math/box_matrix.h), in float32 for half logits
// (their own half arithmetic makes log(p + 1e-8) = log(0) = −inf: "cost matrix is infeasible").
#include "math/box_matrix.h"

namespace fastloss::matching_cost {

enum ClassCost : int { kFocal = 0, kSoftmax = 1 };

template <typename S>
struct Params {
  int class_cost;
  S alpha, gamma;
  int gamma_kind;  // GammaKind of gamma (math/modulating_factor.h)
  S w_class, w_bbox, w_giou;
};

// A box's fields (math/box_matrix.h) from cxcywh through the matchers' xyxy conversion, and the
// four cxcywh values for the L1 distance: kFields + 4 values.
constexpr int kRaw = box_matrix::kFields;
constexpr int kBoxValues = box_matrix::kFields + 4;

template <typename S>
FASTLOSS_HD void box_values(const S (&cxcywh)[4], S (&f)[kBoxValues]) {
  const S hw = S(0.5) * cxcywh[2], hh = S(0.5) * cxcywh[3];
  const S corners[4] = {cxcywh[0] - hw, cxcywh[1] - hh, cxcywh[0] + hw, cxcywh[1] + hh};
  S fields[box_matrix::kFields];
  box_matrix::box_fields(corners, box_iou::kXYXY, false, fields);
  for (int k = 0; k < box_matrix::kFields; ++k) f[k] = fields[k];
  for (int k = 0; k < 4; ++k) f[kRaw + k] = cxcywh[k];
}

// The focal class cost of logit x.
template <typename V, typename S>
FASTLOSS_HD_ALWAYS_INLINE V focal_class(const Params<S>& prm, V x) {
  using O = Ops<V>;
  const V one(S(1)), tiny(S(1e-8));
  const V p = one / (one + O::exp(O::neg(x)));
  const V neg = V(S(1) - prm.alpha) * pow_gamma(p, prm.gamma, prm.gamma_kind) * O::neg(O::log(one - p + tiny));
  const V pos = V(prm.alpha) * pow_gamma(one - p, prm.gamma, prm.gamma_kind) * O::neg(O::log(p + tiny));
  return pos - neg;
}

// The cost of a pair from the query's and the target's box values and the class cost.
template <typename V, typename S>
FASTLOSS_HD_ALWAYS_INLINE V pair_cost(const Params<S>& prm, const V (&q)[kBoxValues], const V (&t)[kBoxValues],
                                      V class_cost) {
  using O = Ops<V>;
  const V l1 = ((O::abs(q[kRaw] - t[kRaw]) + O::abs(q[kRaw + 1] - t[kRaw + 1])) + O::abs(q[kRaw + 2] - t[kRaw + 2])) +
               O::abs(q[kRaw + 3] - t[kRaw + 3]);
  const box_matrix::Params<S> giou{box_matrix::kGIoU, box_matrix::kTorchvision, S(0)};
  V fa[box_matrix::kFields], fb[box_matrix::kFields], unused_a[4], unused_b[4];
  for (int k = 0; k < box_matrix::kFields; ++k) fa[k] = q[k], fb[k] = t[k];
  const V g = box_matrix::pair_metric<false>(giou, fa, fb, V(S(1)), unused_a, unused_b);
  return (V(prm.w_bbox) * l1 + V(prm.w_class) * class_cost) + V(prm.w_giou) * O::neg(g);
}

// RT-DETR's matching cost (ultralytics' HungarianMatcher, ultralytics/models/utils/ops.py) of query
// box p and target box t (cxcywh) from the pair's class cost c, which the caller computes as
// ultralytics does (its sigmoid, log and pow are torch's):
//   (w_class·c + w_bbox·L1(p, t)) + w_giou·(1 − GIoU(p, t)),   NaN and ±inf set to 0,
// L1 summed over cx, cy, w, h in that order, GIoU as ultralytics' bbox_iou(xywh=True, GIoU=True):
// corners x ∓ w/2, union w₁h₁ + w₂h₂ − inter + eps, hull + eps, eps = 1e-7. Every step is one IEEE
// operation in ultralytics' order (torch's minimum, maximum and clamp(0) pass a NaN on, as Ops<V>'s
// do here with the NaN first), so the float32 bits are ultralytics': the matcher's near-ties break alike.
namespace rtdetr {

// A box's values, computed once per box: cx, cy, w, h, then its corners and its area.
enum BoxValue : int { kCx, kCy, kW, kH, kLeft, kTop, kRight, kBottom, kArea, kValues };

template <typename S>
FASTLOSS_HD void box_values(const S* cxcywh, S (&v)[kValues]) {
  const S half_w = cxcywh[2] / S(2), half_h = cxcywh[3] / S(2);
  v[kCx] = cxcywh[0], v[kCy] = cxcywh[1], v[kW] = cxcywh[2], v[kH] = cxcywh[3];
  v[kLeft] = cxcywh[0] - half_w, v[kRight] = cxcywh[0] + half_w;
  v[kTop] = cxcywh[1] - half_h, v[kBottom] = cxcywh[1] + half_h;
  v[kArea] = cxcywh[2] * cxcywh[3];
}

template <typename S>
struct Gains {
  S w_class, w_bbox, w_giou;
};

template <typename V, typename S>
FASTLOSS_HD_ALWAYS_INLINE V pair_cost(const Gains<S>& g, V class_cost, const V (&p)[kValues], const V (&t)[kValues]) {
  using O = Ops<V>;
  const V zero(S(0)), one(S(1)), eps(S(1e-7));
  const V l1 = ((O::abs(p[kCx] - t[kCx]) + O::abs(p[kCy] - t[kCy])) + O::abs(p[kW] - t[kW])) + O::abs(p[kH] - t[kH]);
  const V inter = O::max(O::min(p[kRight], t[kRight]) - O::max(p[kLeft], t[kLeft]), zero) *
                  O::max(O::min(p[kBottom], t[kBottom]) - O::max(p[kTop], t[kTop]), zero);
  const V uni = ((p[kArea] + t[kArea]) - inter) + eps;
  const V iou = inter / uni;
  const V hull = (O::max(p[kRight], t[kRight]) - O::min(p[kLeft], t[kLeft])) *
                     (O::max(p[kBottom], t[kBottom]) - O::min(p[kTop], t[kTop])) +
                 eps;
  const V giou = iou - (hull - uni) / hull;
  const V c = (V(g.w_class) * class_cost + V(g.w_bbox) * l1) + V(g.w_giou) * (one - giou);
  return O::select(O::eq(c - c, zero), c, zero);  // (c − c is 0 exactly where c is finite)
}

}  // namespace rtdetr

}  // namespace fastloss::matching_cost
