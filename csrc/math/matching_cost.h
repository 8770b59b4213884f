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

}  // namespace fastloss::matching_cost
