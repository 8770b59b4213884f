#pragma once
// Per-element math of the overlap losses (Dice — Milletari et al., V-Net, arXiv 1606.04797; Jaccard;
// Tversky — Salehi et al., arXiv 1706.05721; focal Tversky — Abraham & Khan, arXiv 1810.07842).
// The kernels reduce, per (sample, class) over the spatial positions,
//   S_pt = Σ p·t,  S_p = Σ p (Σ p² with squared_pred),  S_t = Σ t (Σ t²),
// (with MONAI's soft_label and without squared_pred, S_pt = Σ min(p, t) = (Σp + Σt − Σ|p − t|)/2,
// MONAI's tp for soft targets; equal to Σ p·t for 0/1 targets)
// with p the activated input (softmax over the classes, sigmoid, or none) and t the target, both 0
// at ignored positions. Every loss is then a function of these sums on the (N, C) matrix
// (math/overlap_score.h), and its backward reaches the inputs through
//   dL/dp = a·(t | [p < t]) + b·(2p | 1),  a = dL/dS_pt,  b = dL/dS_p,
// then the activation's vector-Jacobian product. Written once against Ops<V> (math/ops.h).
#include "math/ops.h"

namespace fastloss::overlap {

// Codes shared with python/fastloss/reference/overlap.py.
enum Activation : int { kSoftmax = 0, kSigmoid = 1, kNone = 2 };

// A position's softmax statistics: the max, Σ exp(x − max) and its inverse.
template <typename V>
struct SoftmaxStats {
  V max, inv_sum, sum;

  FASTLOSS_HD V prob(V x) const { return Ops<V>::exp(x - max) * inv_sum; }
  FASTLOSS_HD V lse() const { return max + Ops<V>::log(sum); }  // log Σ exp(x)
};

// Softmax over the classes of one position (or SIMD block of positions).
// In place over an array of the classes' values (the CPU keeps a block's classes in L1): one exp
// per logit, stored and reused for p.
template <typename V>
FASTLOSS_HD SoftmaxStats<V> softmax_in_place(int64_t classes, V* x) {
  using O = Ops<V>;
  using S = typename O::scalar_t;
  if (classes <= 0) return {V(S(0)), V(S(0)), V(S(0))};  // (no classes: nothing to read, not even x[0])
  V m = x[0], sum(S(0));
  for (int64_t c = 1; c < classes; ++c) m = O::max(m, x[c]);
  for (int64_t c = 0; c < classes; ++c) {
    x[c] = O::exp(x[c] - m);
    sum = sum + x[c];
  }
  const V inv = V(S(1)) / sum;
  for (int64_t c = 0; c < classes; ++c) x[c] = x[c] * inv;
  return {m, inv, sum};
}

// From logits read through x(c) (CUDA reads them from memory again rather than keep them): the
// statistics, then p_c = prob(x(c)) — two exps per logit.

template <typename V, typename Logit>
FASTLOSS_HD SoftmaxStats<V> softmax_stats(int64_t classes, const Logit& x) {
  using O = Ops<V>;
  using S = typename O::scalar_t;
  V m = x(0), sum(S(0));
  for (int64_t c = 1; c < classes; ++c) m = O::max(m, x(c));
  for (int64_t c = 0; c < classes; ++c) sum = sum + O::exp(x(c) - m);
  return {m, V(S(1)) / sum, sum};
}

// The elementwise activations.
template <typename V>
FASTLOSS_HD V activate_elementwise(int activation, V x) {
  return activation == kSigmoid ? sigmoid(x) : x;
}

// One element's term of S_pt: p·t, or min(p, t) with soft_label.
template <typename V>
FASTLOSS_HD V intersection(V p, V t, bool soft) {
  return soft ? Ops<V>::min(p, t) : p * t;
}

// dL/dp of one element from its class's coefficients a = dL/dS_pt, b = dL/dS_p. min(p, t)'s
// derivative is [p < t], ½ at p = t (MONAI's (1 − sign(p − t))/2).
template <typename V>
FASTLOSS_HD V grad_prob(V a, V b, V t, V p, bool squared, bool soft) {
  using O = Ops<V>;
  using S = typename O::scalar_t;
  const V d_inter = soft ? O::select(O::gt(t, p), V(S(1)), O::select(O::eq(t, p), V(S(0.5)), V(S(0)))) : t;
  return a * d_inter + b * (squared ? V(S(2)) * p : V(S(1)));
}

// dL/dx of an elementwise activation from dL/dp and p (softmax's, p_c·(g_c − Σ_k p_k g_k), needs
// the whole position and lives in the loops).
template <typename V>
FASTLOSS_HD V elementwise_vjp(int activation, V g, V p) {
  using S = typename Ops<V>::scalar_t;
  return activation == kSigmoid ? g * p * (V(S(1)) - p) : g;
}

}  // namespace fastloss::overlap
