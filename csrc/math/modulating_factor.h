#pragma once
// The focal modulating factor (1 − p_t)^γ of Lin et al. 2017 (arXiv 1708.02002), shared by the
// sigmoid and softmax focal losses, and the IoU^γ weight of Focal-EIoU. γ = 0, ½, 1, 3/2, 2 are
// computed without pow (2 is the focal default, ½ Focal-EIoU's, 3/2 RT-DETR's: q·√q); other γ use
// pow, exact at q = 0 for γ > 0.
#include "math/ops.h"

namespace fastloss {

enum GammaKind : int {
  kGammaZero = 0,
  kGammaOne = 1,
  kGammaTwo = 2,
  kGammaAny = 3,
  kGammaHalf = 4,
  kGammaThreeHalves = 5
};

inline int classify_gamma(double gamma) {
  if (gamma == 0.0) return kGammaZero;
  if (gamma == 0.5) return kGammaHalf;
  if (gamma == 1.0) return kGammaOne;
  if (gamma == 1.5) return kGammaThreeHalves;
  if (gamma == 2.0) return kGammaTwo;
  return kGammaAny;
}

// q^γ (forced inline: a one-line switch, which GCC must fold into its caller's arithmetic)
template <typename V, typename S>
FASTLOSS_HD_ALWAYS_INLINE V pow_gamma(V q, S gamma, int kind) {
  using O = Ops<V>;
  switch (kind) {
    case kGammaZero: return V(S(1));
    case kGammaHalf: return O::sqrt(q);
    case kGammaOne: return q;
    case kGammaThreeHalves: return q * O::sqrt(q);
    case kGammaTwo: return q * q;
    default: return O::pow(q, V(gamma));
  }
}

// q^(γ−1), taken as 0 where q = 0 and γ < 1: there it multiplies a factor that vanishes at least
// as fast as q (the loss's derivative stays finite), and pow would give inf · 0 = NaN.
template <typename V, typename S>
FASTLOSS_HD_ALWAYS_INLINE V pow_gamma_minus_one(V q, S gamma, int kind) {
  using O = Ops<V>;
  switch (kind) {
    case kGammaZero: return V(S(0));  // only ever multiplied by γ = 0
    case kGammaHalf: {
      const auto positive = O::gt(q, V(S(0)));
      return O::select(positive, V(S(1)) / O::sqrt(O::select(positive, q, V(S(1)))), V(S(0)));
    }
    case kGammaOne: return V(S(1));
    case kGammaThreeHalves: return O::sqrt(q);
    case kGammaTwo: return q;
    default:
      if (gamma >= S(1)) return O::pow(q, V(gamma - S(1)));
      return O::select(O::gt(q, V(S(0))), O::pow(q, V(gamma - S(1))), V(S(0)));
  }
}

// q = 1 − p from log p: −expm1(log p) does not cancel near p = 1. Clamped at 0, where rounding can
// leave log p a hair above 0 (q^γ of a negative is NaN).
template <typename V>
FASTLOSS_HD V one_minus_p(V log_p) {
  using S = typename Ops<V>::scalar_t;
  return Ops<V>::max(Ops<V>::neg(Ops<V>::expm1(log_p)), V(S(0)));
}

// γ·q^(γ−1)·p·A: the factor q^γ's own share of d(q^γ·A)/d log p (0 for γ = 0), with p = exp(log p).
// p·A → 0 as p → 0 (A grows like −log p): an underflowed p keeps it 0, so a −inf logit keeps the
// finite gradient F.cross_entropy gives.
template <typename V, typename S>
FASTLOSS_HD V focal_factor_slope(V q, S gamma, int kind, V log_p, V a) {
  return times_unless_zero(V(gamma) * pow_gamma_minus_one(q, gamma, kind), times_unless_zero(Ops<V>::exp(log_p), a));
}

}  // namespace fastloss
