#pragma once
// Balanced L1 loss (Pang et al., Libra R-CNN, arXiv 1904.02701), elementwise on d = |pred − target|:
//   d < β:  α/b·(b·d + 1)·ln(b·d/β + 1) − α·d        b = e^{γ/α} − 1, so both pieces meet at d = β
//   d ≥ β:  γ·d + γ/b − α·β
// and its derivative dL/dd: α·ln(b·d/β + 1) + α·(b·d + 1)/(b·d + β) − α below β (the paper's
// α·ln(b·d + 1) at β = 1), γ above; dL/dpred = dL/dd · sign(pred − target), 0 at d = 0 (torch's |·|).
// One log per element serves both: a forward that will be differentiated writes dL/dpred into the
// buffer that becomes the gradient (the backward only scales it), so the log is taken once, not twice.
// Written once against Ops<V> (math/ops.h), for CPU SIMD and for CUDA.
#include "math/ops.h"

namespace fastloss::balanced_l1 {

template <typename S>
struct Params {
  S alpha, gamma, beta;
  S b_over_beta, inv_beta, alpha_over_b, high_offset;  // b/β, 1/β, α/b, γ/b − α·β (b = e^{γ/α} − 1): on the host
  bool unit_beta;  // β = 1 (the paper's and mmdet's default): the slope below β is α·ln(b·d + 1), no division
};

// The loss of one element (kLoss; else 0 is returned) and, with kGrad, dL/dpred into grad: the
// forward that keeps the gradient computes both from one log.
template <bool kLoss, bool kGrad, typename V, typename S>
FASTLOSS_HD_ALWAYS_INLINE V element_loss(const Params<S>& prm, V x, V y, V& grad) {
  using O = Ops<V>;
  const V zero(S(0)), one(S(1)), alpha(prm.alpha), gamma(prm.gamma), beta(prm.beta);
  const V diff = x - y, d = O::abs(diff), u = V(prm.b_over_beta) * d;  // u = b·d/β
  const auto below = O::gt(beta, d);
  const V log_term = O::log(u + one);
  if constexpr (kGrad) {
    // α·(b·d + 1)/(b·d + β) = α·(u + 1/β)/(u + 1)
    const V low = prm.unit_beta ? alpha * log_term : alpha * (log_term + (u + V(prm.inv_beta)) / (u + one) - one);
    const V slope = O::select(below, low, gamma);
    const V sign = O::select(O::gt(diff, zero), one, O::select(O::gt(zero, diff), O::neg(one), zero));
    grad = slope * sign;
  }
  if constexpr (!kLoss) {
    return zero;
  } else {
    return O::select(below, V(prm.alpha_over_b) * (u * beta + one) * log_term - alpha * d,
                     gamma * d + V(prm.high_offset));
  }
}

}  // namespace fastloss::balanced_l1
