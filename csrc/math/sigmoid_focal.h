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

template <typename S>
struct Params {
  S alpha_pos;  // α_t of a positive (t = 1): α, or 1 without α weighting
  S alpha_neg;  // α_t of a negative (t = 0): 1 − α, or 1
  S gamma;
  int gamma_kind;  // GammaKind
};

template <typename S>
inline Params<S> make_params(double alpha, double gamma) {
  const bool use_alpha = alpha >= 0;
  return Params<S>{S(use_alpha ? alpha : 1.0), S(use_alpha ? 1.0 - alpha : 1.0), S(gamma),
                   classify_gamma(gamma)};
}

// Hard target given as a signed logit: z = x for the positive class, z = −x otherwise, so that
// p_t = σ(z), 1 − p_t = σ(−z) and ce = softplus(−z). a_t is that element's α_t.
//   dloss/dz = −α_t · q^γ · (γ · p_t · ce + q),  q = 1 − p_t
// (no q^(γ−1) appears, so γ < 1 needs no guard). dloss/dx = ±dloss/dz.
template <bool kLoss, bool kGrad, typename V, typename S>
FASTLOSS_HD void binary(V z, V a_t, const Params<S>& prm, V& loss, V& dz) {
  using O = Ops<V>;
  const V zero(S(0));
  const Logistic<V> l = logistic(z);
  const V p_t = l.sigmoid, q = l.sigmoid_neg;
  const V ce = O::max(O::neg(z), zero) + l.log1p_e;
  const V weighted = a_t * pow_gamma(q, prm.gamma, prm.gamma_kind);
  if constexpr (kLoss) loss = weighted * ce;
  if constexpr (kGrad) dz = O::neg(weighted) * (V(prm.gamma) * p_t * ce + q);
}

// Soft (or one-hot) float target t, the torchvision.ops.sigmoid_focal_loss definition.
//   s = σ(x), s̄ = σ(−x), q = 1 − p_t = t·s̄ + (1 − t)·s, α_t = α_neg + (α_pos − α_neg)·t
//   dloss/dx = α_t·(γ q^(γ−1) ce · (1 − 2t) s s̄ + q^γ · ((1 − t)s − t s̄))
//   dloss/dt = α_t·(γ q^(γ−1) ce · (s̄ − s) − q^γ · x) + (α_pos − α_neg) · q^γ · ce
template <bool kLoss, bool kGradX, bool kGradT, typename V, typename S>
FASTLOSS_HD void soft(V x, V t, const Params<S>& prm, V& loss, V& dx, V& dt) {
  using O = Ops<V>;
  const V zero(S(0)), one(S(1));
  const Logistic<V> l = logistic(x);
  const V s = l.sigmoid, s_bar = l.sigmoid_neg;
  // (max(x, 0) − t·x) first: exact for t ∈ {0, 1}, so a confident correct logit keeps its tiny ce.
  const V ce = (O::max(x, zero) - t * x) + l.log1p_e;
  const V u = one - t;
  const V q = t * s_bar + u * s;
  const V a_t = V(prm.alpha_neg) + V(prm.alpha_pos - prm.alpha_neg) * t;
  const V qg = pow_gamma(q, prm.gamma, prm.gamma_kind);
  if constexpr (kLoss) loss = a_t * qg * ce;
  if constexpr (kGradX || kGradT) {
    const V g_ce = V(prm.gamma) * pow_gamma_minus_one(q, prm.gamma, prm.gamma_kind) * ce;
    if constexpr (kGradX) dx = a_t * (g_ce * (u - t) * (s * s_bar) + qg * (u * s - t * s_bar));
    if constexpr (kGradT) dt = a_t * (g_ce * (s_bar - s) - qg * x) + V(prm.alpha_pos - prm.alpha_neg) * qg * ce;
  }
}

}  // namespace fastloss::sigmoid_focal
