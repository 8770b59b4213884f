#pragma once
// Softmax focal loss (Lin et al. 2017, arXiv 1708.02002, in the multi-class form mmcv computes),
// with PyTorch's cross-entropy conventions for class weights α and label smoothing ε:
//   per position with label y, p = softmax(x) over the C classes, q = 1 − p_y,
//   A = (1 − ε)·α_y·(−log p_y) + (ε/C)·Σ_c α_c·(−log p_c)      (F.cross_entropy's per-position term)
//   loss = q^γ · A
// γ = 0 is F.cross_entropy(weight=α, label_smoothing=ε) exactly; the focal factor of the labelled
// class scales the whole smoothed term. With log p_c = x_c − lse and S = Σ_c α_c·log p_c the
// gradient is, per class,
//   dloss/dx_c = K·p_c + D·[c = y] − E·α_c,
//   K = γ·q^(γ−1)·p_y·A + q^γ·((1 − ε)·α_y + (ε/C)·Σα),  D = −γ·q^(γ−1)·p_y·A − q^γ·(1 − ε)·α_y,
//   E = q^γ·ε/C
// so a kernel needs, per position, lse and x_y (and Σ α_c·x_c when ε > 0): one pass over the
// classes for the loss, one for the gradient. q = −expm1(log p_y) does not cancel near p_y = 1; it
// is clamped at 0, where rounding can leave x_y − lse a hair above 0 (q^γ of a negative is NaN).
#include "math/modulating_factor.h"
#include "math/ops.h"

namespace fastloss::softmax_focal {

template <typename S>
struct Params {
  S gamma;
  int gamma_kind;  // GammaKind of gamma
  S keep;          // 1 − ε
  S spread;        // ε / C
  bool smoothing;  // ε > 0
};

template <typename V>
struct Position {
  V log_py;     // x_y − lse
  V smooth;     // S = Σ_c α_c·log p_c (0 without smoothing)
  V alpha_y;    // α of the label (1 without α)
  V alpha_sum;  // Σ_c α_c (C without α)
};

// A, the (smoothed, weighted) cross entropy of one position.
template <typename V, typename S>
FASTLOSS_HD V cross_entropy(const Position<V>& x, const Params<S>& p) {
  return V(p.keep) * x.alpha_y * Ops<V>::neg(x.log_py) - V(p.spread) * x.smooth;
}

template <typename V, typename S>
FASTLOSS_HD V loss(const Position<V>& x, const Params<S>& p) {
  return pow_gamma(one_minus_p(x.log_py), p.gamma, p.gamma_kind) * cross_entropy(x, p);
}

template <typename V>
struct Coefficients {
  V k, d, e;  // dloss/dx_c = k·p_c + d·[c = y] − e·α_c
};

template <typename V, typename S>
FASTLOSS_HD Coefficients<V> coefficients(const Position<V>& x, const Params<S>& p) {
  using O = Ops<V>;
  const V q = one_minus_p(x.log_py), f = pow_gamma(q, p.gamma, p.gamma_kind);
  const V focal = focal_factor_slope(q, p.gamma, p.gamma_kind, x.log_py, cross_entropy(x, p));
  const V hard = f * V(p.keep) * x.alpha_y;
  return {focal + hard + f * V(p.spread) * x.alpha_sum, O::neg(focal) - hard, f * V(p.spread)};
}

}  // namespace fastloss::softmax_focal
