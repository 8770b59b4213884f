#pragma once
// The cross-entropy / softmax-focal term of the compound losses (fastloss.dice_ce_loss,
// dice_focal_loss: nnU-Net's Dice + CE, Isensee et al. 2021, Nature Methods 18:203; MONAI's
// DiceCELoss), computed in the overlap kernels' softmax pass from the same p = softmax(x):
// per position with target t_c (one-hot of the label, or a float target) and validity v,
//   u_c = w_c·((1 − ε)·t_c + (ε/C)·v)          (class weight w, label smoothing ε)
//   A   = Σ_c u_c·(lse − x_c)                   (F.cross_entropy's term, hard or soft targets)
//   loss = q^γ·A,  q = 1 − p_y                  (the focal factor of the label, as softmax_focal.h)
// and, with T = Σ_c u_c, f = q^γ, G = γ·q^(γ−1)·p_y·A,
//   dloss/dx_c = p_c·(f·T + G) − f·u_c − G·t_c
// (γ = 0: T·p_c − u_c, the cross entropy's softmax gradient). The per-sample sums Σ loss and the
// "mean" divisor Σ w_y (labels) are the kernels' extra output; the overlap sums are unchanged.
//
// The other term (kSigmoidFocal, MONAI's DiceFocalLoss, whose FocalLoss is the sigmoid one whatever
// the Dice's activation): per element of the classes c ≥ first_class, with t_c ∈ {0, 1},
//   loss = v·w_c·α_t·(1 − p_t)^γ·BCEWithLogits(x_c, t_c),  p = σ(x_c)   (math/sigmoid_focal.h)
// an elementwise term of the logits: its derivative adds to dL/dx_c after the activation's VJP.
// Its divisor output is the count of the elements summed.
#include "math/modulating_factor.h"
#include "math/ops.h"
#include "math/sigmoid_focal.h"

namespace fastloss::overlap {

enum Term : int { kSoftmaxCe = 0, kSigmoidFocal = 1 };  // codes shared with python/fastloss/reference/compound.py

template <typename S>
struct CrossEntropy {
  bool on = false;            // the op computes a term
  int term = kSoftmaxCe;      // kSoftmaxCe needs the softmax activation; kSigmoidFocal takes any
  const S* weight = nullptr;  // (C,) class weights w, or nullptr (all 1)
  S keep = S(1);              // 1 − ε
  S spread = S(0);            // ε / C
  S gamma = S(0);
  int gamma_kind = kGammaZero;
  sigmoid_focal::Params<S> focal{};  // kSigmoidFocal: α, γ
  int64_t first_class = 0;           // kSigmoidFocal: the classes summed are [first_class, C)

  FASTLOSS_HD S weight_of(int64_t c) const { return weight != nullptr ? weight[c] : S(1); }
  FASTLOSS_HD bool softmax_ce() const { return on && term == kSoftmaxCe; }
  FASTLOSS_HD bool sigmoid_focal() const { return on && term == kSigmoidFocal; }
};

// kSigmoidFocal: the loss of one element (class c ≥ first_class) of a kept position (valid = 1;
// 0 where ignored, which then adds nothing, even at a NaN logit), or (kGrad) its derivative in x.
template <bool kGrad, typename V, typename S>
FASTLOSS_HD V element_focal(const CrossEntropy<S>& ce, int64_t c, V x, V t, V valid) {
  using O = Ops<V>;
  V loss, dx, dt;
  sigmoid_focal::soft<!kGrad, kGrad, false>(x, t, ce.focal, loss, dx, dt);
  return O::select(O::eq(valid, V(S(0))), V(S(0)), V(ce.weight_of(c)) * (kGrad ? dx : loss));
}

// u_c of one class at a position (or SIMD lanes of positions).
template <typename V, typename S>
FASTLOSS_HD V smoothed_weight(const CrossEntropy<S>& ce, int64_t c, V t, V valid) {
  return V(ce.weight_of(c)) * (V(ce.keep) * t + V(ce.spread) * valid);
}

// q^γ·A of a position from A and log p_y.
template <typename V, typename S>
FASTLOSS_HD V ce_loss(const CrossEntropy<S>& ce, V a, V log_py) {
  if (ce.gamma_kind == kGammaZero) return a;
  return pow_gamma(one_minus_p(log_py), ce.gamma, ce.gamma_kind) * a;
}

template <typename V>
struct CeCoefficients {
  V f, g;  // dloss/dx_c = p_c·(f·T + g) − f·u_c − g·t_c
};

// f and G of a position (γ > 0 needs A and log p_y; γ = 0 needs neither).
template <typename V, typename S>
FASTLOSS_HD CeCoefficients<V> ce_coefficients(const CrossEntropy<S>& ce, V a, V log_py) {
  if (ce.gamma_kind == kGammaZero) return {V(S(1)), V(S(0))};
  const V q = one_minus_p(log_py);
  return {pow_gamma(q, ce.gamma, ce.gamma_kind), focal_factor_slope(q, ce.gamma, ce.gamma_kind, log_py, a)};
}

}  // namespace fastloss::overlap
