#pragma once
// Ops<V> gives the math headers one spelling of the few non-arithmetic functions they need, for
// scalars (this file: CPU and CUDA) and for CPU SIMD vectors (cpu/vec_ops.h specialises it for
// simd::Vec). A formula written against Ops<V> is therefore the same code on every backend; only
// the loops around it differ. exp, log and the rest are math/elementary.h's on both: the same bits.
#include <cmath>
#include <type_traits>
#include "common/host_device.h"
#include "math/elementary.h"

namespace fastloss {

template <typename V>
struct Ops {  // V = float or double
  using scalar_t = V;
  using Mask = bool;
  static FASTLOSS_HD V exp(V x) { return math::exp(x); }
  static FASTLOSS_HD V log1p(V x) { return math::log1p(x); }
  static FASTLOSS_HD V expm1(V x) { return math::expm1(x); }
  static FASTLOSS_HD V reciprocal(V x) { return V(1) / x; }
  static FASTLOSS_HD V pow(V x, V y) { return math::pow(x, y); }
  static FASTLOSS_HD V abs(V x) { return std::abs(x); }
  static FASTLOSS_HD V neg(V x) { return -x; }
  static FASTLOSS_HD V log(V x) { return math::log(x); }
  static FASTLOSS_HD V sqrt(V x) { return std::sqrt(x); }
  static FASTLOSS_HD V atan2(V y, V x) { return math::atan2(y, x); }
  static FASTLOSS_HD void sincos(V x, V& s, V& c) { math::sincos(x, s, c); }
  static FASTLOSS_HD V fma(V a, V b, V c) { return std::fma(a, b, c); }
  // a NaN in a propagates, as in the SIMD versions (cpu/vec_ops.h) and torch
  static FASTLOSS_HD V max(V a, V b) { return a < b ? b : a; }
  static FASTLOSS_HD V min(V a, V b) { return a > b ? b : a; }
  static FASTLOSS_HD Mask ge(V a, V b) { return a >= b; }
  static FASTLOSS_HD Mask gt(V a, V b) { return a > b; }
  static FASTLOSS_HD Mask eq(V a, V b) { return a == b; }
  static FASTLOSS_HD V select(Mask m, V if_true, V if_false) { return m ? if_true : if_false; }
  static FASTLOSS_HD bool any(Mask m) { return m; }
};

// Lanes where x is ±inf.
template <typename V>
FASTLOSS_HD auto is_infinite(V x) {
  using O = Ops<V>;
  using S = typename O::scalar_t;
  return O::eq(O::abs(x), V(S(INFINITY)));
}

// a·b, but exactly 0 where a is 0: a zero coefficient of an infinite term contributes nothing
// (IEEE would give 0·inf = NaN). Used on the rare paths where an input is infinite.
template <typename V>
FASTLOSS_HD V times_unless_zero(V a, V b) {
  using O = Ops<V>;
  using S = typename O::scalar_t;
  return O::select(O::eq(a, V(S(0))), V(S(0)), a * b);
}

// σ(x), σ(−x) and log(1 + exp(−|x|)) — the pieces of every sigmoid, log-sigmoid and softplus —
// from one exp and one division, none formed by subtraction (1 − σ(x) would cancel):
//   e = exp(−|x|) ∈ (0, 1], σ(|x|) = 1 / (1 + e), σ(−|x|) = e / (1 + e), softplus(x) = max(x, 0) + log(1 + e).
// log(1 + e) in float: 2·atanh(s), s = e / (2 + e) ≤ 1/3, by its series up to s^13 (truncation
// < 2e-8 relative: float-accurate, and exact-relative for tiny e). On this interval no range
// reduction is needed, so it is seven FMAs in Estrin's order (depth 4) sharing the division with σ:
// several times cheaper than a general log1p with its range reduction.
// Double precision uses math::log1p.
template <typename V>
struct Logistic {
  V sigmoid;      // σ(x)
  V sigmoid_neg;  // σ(−x) = 1 − σ(x)
  V log1p_e;      // log(1 + exp(−|x|)) = softplus(x) − max(x, 0)
};

template <typename V>
FASTLOSS_HD Logistic<V> logistic(V x) {
  using O = Ops<V>;
  using S = typename O::scalar_t;
  const V zero(S(0)), one(S(1)), two(S(2));
  const V e = O::exp(O::neg(O::abs(x)));
  V r, log1p_e;
  if constexpr (std::is_same_v<S, float>) {
    const V one_e = one + e, two_e = two + e;
    const V inv = O::reciprocal(one_e * two_e);
    const V s = e * one_e * inv;
    const V w = s * s, w2 = w * w, w4 = w2 * w2;
    const V lo = (V(1.0f) + V(1.0f / 3) * w) + w2 * (V(1.0f / 5) + V(1.0f / 7) * w);
    const V hi = (V(1.0f / 9) + V(1.0f / 11) * w) + w2 * V(1.0f / 13);
    r = two_e * inv;
    log1p_e = two * s * (lo + w4 * hi);
  } else {
    r = one / (one + e);
    log1p_e = O::log1p(e);
  }
  const auto nonneg = O::ge(x, zero);
  return {O::select(nonneg, r, e * r), O::select(nonneg, e * r, r), log1p_e};
}

// σ(x) = 1 / (1 + exp(−x)): no cancellation anywhere (for x ≪ 0 it is exp(x) to full relative
// precision, for x ≫ 0 it rounds to 1), and exp(−x) overflowing to inf gives exactly 0.
template <typename V>
FASTLOSS_HD V sigmoid(V x) {
  using O = Ops<V>;
  using S = typename O::scalar_t;
  return O::reciprocal(V(S(1)) + O::exp(O::neg(x)));
}

// atan2(y, x) for x ≥ 0 (so in [−π/2, π/2], and 0 at the origin). In float: atan(r) on
// r = min(|y|, x) / max(|y|, x) ∈ [0, 1] as r·P(r²), P a degree-8 least-squares minimax fit (≤ 2 ulp
// evaluated in float), then π/2 − atan(r) where |y| > x, and y's sign: one division and nine FMAs
// instead of a general atan2 with its reduction (math::atan2).
// Double precision uses math::atan2.
template <typename V>
FASTLOSS_HD V atan2_right_half(V y, V x) {
  using O = Ops<V>;
  using S = typename O::scalar_t;
  if constexpr (std::is_same_v<S, float>) {
    const V zero(0.0f), ay = O::abs(y), hi = O::max(ay, x), lo = O::min(ay, x);
    const V r = lo / O::select(O::gt(hi, zero), hi, V(1.0f)), t = r * r, t2 = t * t, t4 = t2 * t2;
    const V p0 = (V(0.999999986f) + V(-0.333330941f) * t) + t2 * (V(0.199930564f) + V(-0.142071481f) * t);
    const V p1 = (V(0.106547257f) + V(-0.0753376744f) * t) + t2 * (V(0.0430403491f) + V(-0.016283566f) * t);
    const V a = r * (p0 + t4 * (p1 + t4 * V(0.00290368297f)));
    const V angle = O::select(O::gt(ay, x), V(1.57079632679489662f) - a, a);
    return O::select(O::gt(zero, y), O::neg(angle), angle);
  } else {
    return O::atan2(y, x);
  }
}

}  // namespace fastloss
