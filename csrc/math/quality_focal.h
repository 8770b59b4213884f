#pragma once
// The quality-aware members of the family w(x, t) · BCEWithLogits(x, t), s = σ(x), target t ∈ [0, 1]:
//   Varifocal — Zhang, Wang, Dayoub, Sünderhauf, "VarifocalNet: An IoU-aware Dense Object Detector",
//     CVPR 2021, arXiv 2008.13367:   w = m·(iou_weighted ? t : 1) + (1 − m)·α·s^γ,
//     m the positive indicator (t > 0 in mmdet; the labelled class in RT-DETR / ultralytics, which
//     blends with a 0/1 label tensor exactly this way).
//   Quality Focal — Li et al., "Generalized Focal Loss", NeurIPS 2020, arXiv 2006.04388:
//     w = |t − s|^β.
// Derivatives (d = t − s = t·s̄ − (1 − t)·s, formed without cancelling at t ∈ {0, 1}; dce/dx = −d):
//   varifocal:     dloss/dx = −w·d + (1 − m)·α·γ·s^γ·s̄·ce   (second term 0 with a detached weight)
//   quality focal: dloss/dx = −w·d − β·|d|^(β−1)·sign(d)·s·s̄·ce  (sign(0) = 0, as torch's abs)
// No s^(γ−1) appears for varifocal; |d|^(β−1) is taken as 0 at d = 0 for β < 1 (pow_gamma_minus_one).
// Infinite logits: ce takes its limit (sigmoid_focal::soft_ce), w·ce is 0 where w is, and
// ce·s̄ → 0, ce·s·s̄ → 0 there. Targets get no gradient from these forms.
// Where t = 0 and m = 0 both reduce to sigmoid_focal::binary of z = −x with a_t = α (varifocal) or
// 1 (quality focal) and γ (β): the kernels use that for the unlabelled classes of sparse targets.
#include "math/sigmoid_focal.h"

namespace fastloss::quality_focal {

using sigmoid_focal::Params;

// Loss and/or dloss/dx of one element; m is the varifocal positive indicator (ignored otherwise).
template <bool kLoss, bool kGrad, typename V, typename S>
FASTLOSS_HD void eval(V x, V t, V m, const Params<S>& prm, V& loss, V& dx) {
  using O = Ops<V>;
  const V zero(S(0)), one(S(1));
  const sigmoid_focal::SoftCe<V> c = sigmoid_focal::soft_ce(x, t);
  const V s = c.l.sigmoid, s_bar = c.l.sigmoid_neg;
  const V d = t * s_bar - (one - t) * s;
  V w, dw_ce;  // the weight, and dw/dx · ce
  if (prm.variant == sigmoid_focal::kVarifocal) {
    const V sg = pow_gamma(s, prm.gamma, prm.gamma_kind);
    const V negative = (one - m) * V(prm.alpha_neg);
    w = m * (prm.iou_weighted ? t : one) + negative * sg;
    if constexpr (kGrad) dw_ce = negative * V(prm.gamma_grad) * (sg * s_bar * c.ce);
  } else {
    const V a = O::abs(d);
    w = pow_gamma(a, prm.gamma, prm.gamma_kind);
    if constexpr (kGrad) {
      const V sign = O::select(O::gt(d, zero), one, O::select(O::gt(zero, d), V(S(-1)), zero));
      dw_ce = O::neg(V(prm.gamma_grad) * pow_gamma_minus_one(a, prm.gamma, prm.gamma_kind) * sign) * (s * s_bar * c.ce);
    }
  }
  if constexpr (kLoss) {
    loss = w * c.ce;
    if (c.any_infinite) loss = O::select(c.infinite, times_unless_zero(w, c.ce), loss);
  }
  if constexpr (kGrad) {
    if (c.any_infinite) dw_ce = O::select(c.infinite, zero, dw_ce);
    dx = O::neg(w * d) + dw_ce;
  }
}

// m of a float target when positives are t > 0 (mmdet's varifocal).
template <typename V>
FASTLOSS_HD V score_positive(V t) {
  using O = Ops<V>;
  using S = typename O::scalar_t;
  return O::select(O::gt(t, V(S(0))), V(S(1)), V(S(0)));
}

}  // namespace fastloss::quality_focal
