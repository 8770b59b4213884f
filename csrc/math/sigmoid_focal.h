#pragma once
// Sigmoid focal loss — Lin, Goyal, Girshick, He, Dollár, "Focal Loss for Dense Object Detection",
// ICCV 2017, arXiv 1708.02002. Per element, with logit x and target t ∈ [0, 1]:
//   p = σ(x),  ce = BCEWithLogits(x, t),  p_t = p·t + (1 − p)(1 − t),  α_t = α·t + (1 − α)(1 − t)
//   loss = α_t · (1 − p_t)^γ · ce                  (α_t = 1 when α weighting is off)
// Written once for every backend (see math/ops.h). Both forms below take one exp per element
// (math/ops.h: logistic), shared by the loss and its derivatives, and never form 1 − p by
// subtraction, so nothing cancels for confident logits and logits of ±1e4 give finite values
// (no log(0), no inf · 0).
#include "math/modulating_factor.h"
#include "math/ops.h"

namespace fastloss::sigmoid_focal {

// Which loss of the family w(x, t) · BCEWithLogits(x, t) the kernels compute (the low bits of the
// ops' `variant` argument), and the varifocal options (its higher bits).
enum Variant : int { kFocal = 0, kVarifocal = 1, kQualityFocal = 2 };
enum VariantFlag : int { kIouWeighted = 4, kLabelMask = 8, kDetachWeight = 16, kNoIgnoreIndex = 32 };
// A packed `variant` code holds its Variant in these low bits and VariantFlags above them.
constexpr int kVariantMask = 3;

template <typename S>
struct Params {
  S alpha_pos;     // α_t of a positive (t = 1): α, or 1 without α weighting
  S alpha_neg;     // α_t of a negative (t = 0): 1 − α, or 1; varifocal: α; quality focal: 1
  S gamma;         // focal γ; varifocal γ; quality focal β
  int gamma_kind;  // GammaKind
  S gamma_grad;    // γ where the modulating factor is differentiated, 0 where it is detached
  int variant = kFocal;
  bool iou_weighted = false;  // varifocal: positives weighted by their target
  bool label_mask = false;    // varifocal: positives are the labelled classes, not t > 0
};

template <typename S>
inline Params<S> make_params(double alpha, double gamma, int variant = kFocal) {
  const int kind = variant & kVariantMask;
  if (kind == kFocal) {
    const bool use_alpha = alpha >= 0;
    return Params<S>{S(use_alpha ? alpha : 1.0), S(use_alpha ? 1.0 - alpha : 1.0), S(gamma), classify_gamma(gamma),
                     S(gamma)};
  }
  const bool detach = (variant & kDetachWeight) != 0;
  return Params<S>{S(1),
                   S(kind == kVarifocal ? alpha : 1.0),
                   S(gamma),
                   classify_gamma(gamma),
                   S(detach ? 0.0 : gamma),
                   kind,
                   (variant & kIouWeighted) != 0,
                   (variant & kLabelMask) != 0};
}

// Hard target given as a signed logit: z = x for the positive class, z = −x otherwise, so that
// p_t = σ(z), 1 − p_t = σ(−z) and ce = softplus(−z). a_t is that element's α_t.
//   dloss/dz = −α_t · q^γ · (γ · p_t · ce + q),  q = 1 − p_t
// (no q^(γ−1) appears, so γ < 1 needs no guard). dloss/dx = ±dloss/dz.
// Infinite logits take their limits: z = +inf gives loss 0 and gradient 0, z = −inf loss inf and the
// finite slope −α_t (p_t·ce → 0 as z → −inf; IEEE would give 0·inf = NaN).
template <bool kLoss, bool kGrad, typename V, typename S>
FASTLOSS_HD void binary(V z, V a_t, const Params<S>& prm, V& loss, V& dz) {
  using O = Ops<V>;
  const V zero(S(0));
  const Logistic<V> l = logistic(z);
  const V p_t = l.sigmoid, q = l.sigmoid_neg;
  const V ce = O::max(O::neg(z), zero) + l.log1p_e;
  const V weighted = a_t * pow_gamma(q, prm.gamma, prm.gamma_kind);
  if constexpr (kLoss) loss = weighted * ce;
  if constexpr (kGrad) {
    V p_ce = p_t * ce;
    const auto infinite = is_infinite(z);
    if (O::any(infinite)) p_ce = O::select(infinite, zero, p_ce);
    dz = O::neg(weighted) * (V(prm.gamma_grad) * p_ce + q);
  }
}

// BCEWithLogits(x, t) of a float target with the pieces of σ it was made from. Infinite logits take
// its limit: (1 − t)·max(x, 0) + t·max(−x, 0) + log(1 + e^−|x|), where a zero coefficient contributes
// 0 (x = +inf, t = 1: 0; t < 1: inf).
template <typename V>
struct SoftCe {
  Logistic<V> l;
  V ce;
  decltype(is_infinite(V())) infinite;  // lanes where x = ±inf
  bool any_infinite;
};

template <typename V>
FASTLOSS_HD SoftCe<V> soft_ce(V x, V t) {
  using O = Ops<V>;
  using S = typename O::scalar_t;
  const V zero(S(0)), one(S(1));
  const Logistic<V> l = logistic(x);
  // (max(x, 0) − t·x) first: exact for t ∈ {0, 1}, so a confident correct logit keeps its tiny ce.
  V ce = (O::max(x, zero) - t * x) + l.log1p_e;
  const auto infinite = is_infinite(x);
  const bool any_infinite = O::any(infinite);
  if (any_infinite) ce = O::select(infinite, times_unless_zero(O::select(O::gt(x, zero), one - t, t), O::abs(x)), ce);
  return {l, ce, infinite, any_infinite};
}

// Soft (or one-hot) float target t, the torchvision.ops.sigmoid_focal_loss definition.
//   s = σ(x), s̄ = σ(−x), q = 1 − p_t = t·s̄ + (1 − t)·s, α_t = α_neg + (α_pos − α_neg)·t
//   dloss/dx = α_t·(γ q^(γ−1) ce · (1 − 2t) s s̄ + q^γ · ((1 − t)s − t s̄))
//   dloss/dt = α_t·(γ q^(γ−1) ce · (s̄ − s) − q^γ · x) + (α_pos − α_neg) · q^γ · ce
// Infinite logits: ce takes its limit (soft_ce), ce·s·s̄ → 0, q^γ·x → 0 where q^γ = 0, so gradients
// stay finite where the limit is (IEEE would give 0·inf = NaN).
template <bool kLoss, bool kGradX, bool kGradT, typename V, typename S>
FASTLOSS_HD void soft(V x, V t, const Params<S>& prm, V& loss, V& dx, V& dt) {
  using O = Ops<V>;
  const V zero(S(0)), one(S(1));
  const SoftCe<V> c = soft_ce(x, t);
  const V s = c.l.sigmoid, s_bar = c.l.sigmoid_neg, ce = c.ce;
  const V u = one - t;
  const auto infinite = c.infinite;
  const bool any_infinite = c.any_infinite;
  const V q = t * s_bar + u * s;
  const V a_t = V(prm.alpha_neg) + V(prm.alpha_pos - prm.alpha_neg) * t;
  const V qg = pow_gamma(q, prm.gamma, prm.gamma_kind);
  if constexpr (kLoss) loss = a_t * qg * ce;
  if constexpr (kGradX || kGradT) {
    const V g = V(prm.gamma) * pow_gamma_minus_one(q, prm.gamma, prm.gamma_kind);
    if constexpr (kGradX) {
      V ce_ss = ce * (s * s_bar);
      if (any_infinite) ce_ss = O::select(infinite, zero, ce_ss);
      dx = a_t * (g * (u - t) * ce_ss + qg * (u * s - t * s_bar));
    }
    if constexpr (kGradT) {
      V qg_x = qg * x;
      if (any_infinite) qg_x = O::select(infinite, times_unless_zero(qg, x), qg_x);
      dt = a_t * (times_unless_zero(g, ce) * (s_bar - s) - qg_x) + V(prm.alpha_pos - prm.alpha_neg) * qg * ce;
    }
  }
}

}  // namespace fastloss::sigmoid_focal
