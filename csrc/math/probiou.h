#pragma once
// probIoU — Llerena, Zeni, Kristen, Jung, "Gaussian Bounding Boxes and Probabilistic Intersection-over-
// Union for Object Detection", arXiv 2106.06072 — of two oriented boxes taken as Gaussians: mean (x, y),
// covariance [[a, c], [c, b]] (from xywhr: a = w²/12·cos²r + h²/12·sin²r, b = w²/12·sin²r + h²/12·cos²r,
// c = (w²/12 − h²/12)·cos r·sin r: given per box, or made here from xywhr rows, XywhrPairMath). In
// ultralytics' order of operations
// (ultralytics/utils/metrics.py probiou, batch_probiou), with
//   A = a₁ + a₂, B = b₁ + b₂, C = c₁ + c₂, D = A·B − C², E = D + ε, dx = x₁ − x₂, dy = y₁ − y₂:
//   t₁ = (A·dy² + B·dx²) / E · ¼
//   t₂ = (C·(x₂ − x₁)·(y₁ − y₂)) / E · ½
//   t₃ = log(D / (4·√(P₁·P₂) + ε) + ε) · ½,   Pₖ = max(aₖbₖ − cₖ², 0)
//   bd = clamp(t₁ + t₂ + t₃, ε, 100)            (the Bhattacharyya distance)
//   probIoU = 1 − √(1 − e^(−bd) + ε)
// Its derivatives w.r.t. (x, y, a, b, c) of both boxes follow the lines above back: the clamps pass
// the gradient where their bound holds (inclusive, as torch's clamp), and √(P₁·P₂) passes none at 0
// (a box of zero area; torch's autograd gives inf·0 = NaN there). Written once for both backends.
#include "math/ops.h"

namespace fastloss::probiou {

// A Gaussian box's values, in this order in the op's (…, 5) tensors.
enum Field : int { kX, kY, kA, kB, kC, kFields };

// The forward's intermediate values, shared with the backward. V: a scalar, or a CPU SIMD vector of
// pairs (Ops<V>); the same steps either way, so the same bits.
template <typename V>
struct Pair {
  V A, B, C, D, E, dx, dy, n1, n2, u1, u2, P1, P2, root, Q, R, s, bd, hd, iou;
};

template <typename V, typename S>
FASTLOSS_HD Pair<V> evaluate(const V (&p)[kFields], const V (&q)[kFields], S eps_) {
  using O = Ops<V>;
  const V zero(S(0)), eps(eps_);
  Pair<V> v;
  v.A = p[kA] + q[kA], v.B = p[kB] + q[kB], v.C = p[kC] + q[kC];
  v.dx = p[kX] - q[kX], v.dy = p[kY] - q[kY];
  v.D = v.A * v.B - v.C * v.C;
  v.E = v.D + eps;
  v.n1 = v.A * (v.dy * v.dy) + v.B * (v.dx * v.dx);
  v.n2 = v.C * (q[kX] - p[kX]) * v.dy;
  v.u1 = p[kA] * p[kB] - p[kC] * p[kC], v.u2 = q[kA] * q[kB] - q[kC] * q[kC];
  v.P1 = O::max(v.u1, zero), v.P2 = O::max(v.u2, zero);  // (torch's clamp_(0): a NaN stays)
  v.root = O::sqrt(v.P1 * v.P2);
  v.Q = V(S(4)) * v.root + eps;
  v.R = v.D / v.Q + eps;
  v.s = (v.n1 / v.E * V(S(0.25)) + v.n2 / v.E * V(S(0.5))) + O::log(v.R) * V(S(0.5));
  v.bd = O::min(O::max(v.s, eps), V(S(100)));
  v.hd = O::sqrt(V(S(1)) - O::exp(O::neg(v.bd)) + eps);
  v.iou = V(S(1)) - v.hd;
  return v;
}

// d probIoU / d (x, y, a, b, c) of p and of q, times g.
template <typename V, typename S>
FASTLOSS_HD void gradient(const V (&p)[kFields], const V (&q)[kFields], S eps, V g, V (&dp)[kFields],
                          V (&dq)[kFields]) {
  using O = Ops<V>;
  const V zero(S(0)), two(S(2));
  const Pair<V> v = evaluate(p, q, eps);
  // (the clamp's gradient where eps ≤ s ≤ 100, torch's inclusive bounds; none for a NaN s)
  const V slope = O::neg(g) * O::exp(O::neg(v.bd)) / (two * v.hd);
  const V gs = O::select(O::ge(v.s, V(eps)), O::select(O::ge(V(S(100)), v.s), slope, zero), zero);
  const V g_n1 = gs * V(S(0.25)) / v.E, g_n2 = gs * V(S(0.5)) / v.E;
  const V g_e = O::neg(g_n1 * v.n1 + g_n2 * v.n2) / v.E;
  const V g_r = gs * V(S(0.5)) / v.R;
  const V g_d = g_e + g_r / v.Q;
  const V g_root = O::neg(V(S(4)) * g_r * v.D / (v.Q * v.Q));
  const V g_prod = O::select(O::gt(v.root, zero), g_root / (two * v.root), zero);
  const V g_p1 = O::select(O::ge(v.u1, zero), g_prod * v.P2, zero);
  const V g_p2 = O::select(O::ge(v.u2, zero), g_prod * v.P1, zero);
  const V g_a = g_d * v.B + g_n1 * (v.dy * v.dy);
  const V g_b = g_d * v.A + g_n1 * (v.dx * v.dx);
  const V g_c = O::neg(two * v.C * g_d) - g_n2 * v.dx * v.dy;
  const V g_x = two * g_n1 * v.B * v.dx - g_n2 * v.C * v.dy;
  const V g_y = two * g_n1 * v.A * v.dy - g_n2 * v.C * v.dx;
  dp[kX] = g_x, dp[kY] = g_y, dq[kX] = O::neg(g_x), dq[kY] = O::neg(g_y);
  dp[kA] = g_a + g_p1 * p[kB], dp[kB] = g_b + g_p1 * p[kA], dp[kC] = g_c - two * g_p1 * p[kC];
  dq[kA] = g_a + g_p2 * q[kB], dq[kB] = g_b + g_p2 * q[kA], dq[kC] = g_c - two * g_p2 * q[kC];
}

// A box's fields from a (·, 5) row.
template <typename S>
FASTLOSS_HD void load_box(const S* row, S (&out)[kFields]) {
  for (int k = 0; k < kFields; ++k) out[k] = row[k];
}

// The pair formulas as ops/box_pairs.h's loops take them (of Gaussian boxes: no constant).
struct PairMath {
  static constexpr int kFields = probiou::kFields;
  template <typename V, typename S>
  FASTLOSS_HD static V value(const V (&p)[kFields], const V (&q)[kFields], S eps, S) {
    return evaluate(p, q, eps).iou;
  }
  template <typename V, typename S>
  FASTLOSS_HD static void gradient(const V (&p)[kFields], const V (&q)[kFields], S eps, S, V g, V (&dp)[kFields],
                                   V (&dq)[kFields]) {
    probiou::gradient(p, q, eps, g, dp, dq);
  }
};

// Of xywhr boxes (fastloss::probiou_xywhr: param is the floor added to w²/12 and h²/12): each pair's
// Gaussians made from its boxes, and the gradient taken back through them to w, h and r —
//   ∂/∂a₀ = g_a·cos² + g_b·sin² + g_c·cos·sin,  ∂/∂b₀ = g_a·sin² + g_b·cos² − g_c·cos·sin,
//   ∂/∂w = ∂/∂a₀·w/6,  ∂/∂h = ∂/∂b₀·h/6,  ∂/∂r = (a₀ − b₀)·(2(g_b − g_a)·cos·sin + g_c·(cos² − sin²)),
// a₀ = w²/12 + floor, b₀ = h²/12 + floor.
struct XywhrPairMath {
  static constexpr int kFields = 5;

  template <typename V>
  struct Box {
    V g[probiou::kFields];  // the Gaussian
    V a0, b0, cos, sin;
  };
  template <typename V, typename S>
  FASTLOSS_HD static Box<V> gaussian(const V (&row)[kFields], S floor) {
    using O = Ops<V>;
    Box<V> box;
    box.a0 = row[2] * row[2] / V(S(12)) + V(floor), box.b0 = row[3] * row[3] / V(S(12)) + V(floor);
    O::sincos(row[4], box.sin, box.cos);
    const V cos2 = box.cos * box.cos, sin2 = box.sin * box.sin;
    box.g[kX] = row[0], box.g[kY] = row[1];
    box.g[kA] = box.a0 * cos2 + box.b0 * sin2, box.g[kB] = box.a0 * sin2 + box.b0 * cos2;
    box.g[kC] = (box.a0 - box.b0) * box.cos * box.sin;
    return box;
  }
  template <typename V, typename S>
  FASTLOSS_HD static void back(const Box<V>& box, const V (&row)[kFields], const V (&dg)[probiou::kFields],
                               V (&out)[kFields]) {
    const V cos2 = box.cos * box.cos, sin2 = box.sin * box.sin, cs = box.cos * box.sin, sixth(S(6)), two(S(2));
    const V d_a0 = dg[kA] * cos2 + dg[kB] * sin2 + dg[kC] * cs, d_b0 = dg[kA] * sin2 + dg[kB] * cos2 - dg[kC] * cs;
    out[0] = dg[kX], out[1] = dg[kY];
    out[2] = d_a0 * row[2] / sixth, out[3] = d_b0 * row[3] / sixth;
    out[4] = (box.a0 - box.b0) * (two * (dg[kB] - dg[kA]) * cs + dg[kC] * (cos2 - sin2));
  }
  template <typename V, typename S>
  FASTLOSS_HD static V value(const V (&p)[kFields], const V (&q)[kFields], S eps, S floor) {
    return evaluate(gaussian(p, floor).g, gaussian(q, floor).g, eps).iou;
  }
  template <typename V, typename S>
  FASTLOSS_HD static void gradient(const V (&p)[kFields], const V (&q)[kFields], S eps, S floor, V g, V (&dp)[kFields],
                                   V (&dq)[kFields]) {
    const Box<V> bp = gaussian(p, floor), bq = gaussian(q, floor);
    V gp[probiou::kFields], gq[probiou::kFields];
    probiou::gradient(bp.g, bq.g, eps, g, gp, gq);
    back<V, S>(bp, p, gp, dp);
    back<V, S>(bq, q, gq, dq);
  }
};

}  // namespace fastloss::probiou
