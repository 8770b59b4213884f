#pragma once
// The exact IoU of two rotated rectangles: the area of their intersection, a convex polygon, by
// Green's theorem — area = ½ ∮ (x dy − y dx) = Σ ½ (x₀y₁ − y₀x₁) over the boundary's segments —
// whose boundary is the part of each rectangle's edges inside the other: each edge clipped to the
// other rectangle's four half-planes (Cyrus & Beck, "Generalized two- and three-dimensional clipping",
// 1978), an interval [t₀, t₁] of the edge from maxima and minima, with no branch and no vertex list.
// An edge lying on the other's edge is counted once if the two run the same way (identical or nested
// flush boxes: the first box's edge), never if they run against each other (boxes that only touch).
//   IoU = I / (A₁ + A₂ − I + ε),   A = w·h,   I = max(Σ, 0)
// Boxes are rows (x, y, w, h, cos r, sin r) — cos and sin as inputs of their own (torch's functions,
// whose gradient torch chains to r), normalised to cos² + sin² = 1 here — with w and h below 0 taken
// as 0 (an empty box). Coordinates are taken relative to the first box's centre, so far-away boxes
// lose no digits. The gradient runs the same lines back: the clipped interval's ends move with the
// half-plane that set them (none where a clamp at 0 or 1 did). Written once for both backends.
#include "math/ops.h"

namespace fastloss::rotated_iou {

constexpr int kFields = 6;  // x, y, w, h, cos, sin

// A rectangle's corners, counter-clockwise, relative to an origin, and what made them.
template <typename V>
struct Rect {
  V x[4], y[4];
  V hw, hh, co, si, norm;  // half sizes (clamped at 0), the unit direction and its norm before
};

template <typename V>
FASTLOSS_HD Rect<V> rect(const V (&r)[kFields], V ox, V oy) {
  using O = Ops<V>;
  using S = typename O::scalar_t;
  const V half(S(0.5)), zero(S(0));
  Rect<V> b;
  b.hw = half * O::max(r[2], zero), b.hh = half * O::max(r[3], zero);
  b.norm = O::sqrt(r[4] * r[4] + r[5] * r[5]);
  b.co = r[4] / b.norm, b.si = r[5] / b.norm;
  const V cx = r[0] - ox, cy = r[1] - oy;
  const V ux = b.hw * b.co, uy = b.hw * b.si, vx = O::neg(b.hh * b.si), vy = b.hh * b.co;
  // (+u +v), (−u +v), (−u −v), (+u −v)
  b.x[0] = cx + ux + vx, b.y[0] = cy + uy + vy;
  b.x[1] = cx - ux + vx, b.y[1] = cy - uy + vy;
  b.x[2] = cx - ux - vx, b.y[2] = cy - uy - vy;
  b.x[3] = cx + ux - vx, b.y[3] = cy + uy - vy;
  return b;
}

// Which side of the edge q[j] → q[j + 1] the point (px, py) lies on: > 0 inside (left of it).
template <typename V>
FASTLOSS_HD V side(const Rect<V>& q, int j, V px, V py) {
  const int k = (j + 1) & 3;
  return (q.x[k] - q.x[j]) * (py - q.y[j]) - (q.y[k] - q.y[j]) * (px - q.x[j]);
}

// Edge i of p (p[i] → p[i + 1]) clipped to q's half-planes: the interval [t0, t1] and the half-plane
// that set each end (−1: the edge's own end), and the segment's term ½ (x₀y₁ − y₀x₁) (0 if empty).
template <typename V>
struct Clip {
  V t0, t1, j0, j1, live, term;  // live: 1 where the segment is not empty
};

template <typename V>
FASTLOSS_HD Clip<V> clip(const Rect<V>& p, int i, const Rect<V>& q, bool keep_boundary) {
  using O = Ops<V>;
  using S = typename O::scalar_t;
  const V zero(S(0)), one(S(1));
  const int n = (i + 1) & 3;
  Clip<V> c{zero, one, V(S(-1)), V(S(-1)), zero, zero};
  V empty = zero;  // 1 where a parallel half-plane rules the whole edge out
  for (int j = 0; j < 4; ++j) {
    const V sa = side(q, j, p.x[i], p.y[i]), sb = side(q, j, p.x[n], p.y[n]), d = sb - sa;
    const V t = O::neg(sa) / d;
    const auto entering = O::gt(d, zero), leaving = O::gt(zero, d);
    const auto raises = O::select(entering, O::select(O::gt(t, c.t0), one, zero), zero);
    const auto lowers = O::select(leaving, O::select(O::gt(c.t1, t), one, zero), zero);
    c.j0 = O::select(O::gt(raises, zero), V(S(j)), c.j0), c.t0 = O::select(O::gt(raises, zero), t, c.t0);
    c.j1 = O::select(O::gt(lowers, zero), V(S(j)), c.j1), c.t1 = O::select(O::gt(lowers, zero), t, c.t1);
    // d = 0: the edge is parallel to this side: empty outside it; on it, kept for the first box where
    // both edges run the same way
    const int k = (j + 1) & 3;
    const V along = (p.x[n] - p.x[i]) * (q.x[k] - q.x[j]) + (p.y[n] - p.y[i]) * (q.y[k] - q.y[j]);
    const V on_kept = keep_boundary ? O::select(O::gt(along, zero), one, zero) : zero;
    const V out = O::select(O::gt(zero, sa), one, O::select(O::eq(sa, zero), one - on_kept, zero));
    empty = O::select(O::eq(d, zero), O::select(O::gt(out, zero), one, empty), empty);
  }
  const V dx = p.x[n] - p.x[i], dy = p.y[n] - p.y[i];
  const V x0 = p.x[i] + c.t0 * dx, y0 = p.y[i] + c.t0 * dy, x1 = p.x[i] + c.t1 * dx, y1 = p.y[i] + c.t1 * dy;
  c.live = O::select(O::gt(c.t1, c.t0), one - empty, zero);
  c.term = O::select(O::gt(c.live, zero), V(S(0.5)) * (x0 * y1 - y0 * x1), zero);
  return c;
}

template <typename V>
struct Pair {
  Rect<V> p, q;
  V sum, inter, area_p, area_q, uni, iou;
};

template <typename V, typename S>
FASTLOSS_HD Pair<V> evaluate(const V (&a)[kFields], const V (&b)[kFields], S eps) {
  using O = Ops<V>;
  Pair<V> v;
  v.p = rect(a, a[0], a[1]), v.q = rect(b, a[0], a[1]);
  v.sum = V(S(0));
  for (int i = 0; i < 4; ++i) v.sum = v.sum + clip(v.p, i, v.q, true).term;
  for (int i = 0; i < 4; ++i) v.sum = v.sum + clip(v.q, i, v.p, false).term;
  const V four(S(4));
  v.inter = O::max(v.sum, V(S(0)));
  v.area_p = four * v.p.hw * v.p.hh, v.area_q = four * v.q.hw * v.q.hh;
  v.uni = v.area_p + v.area_q - v.inter + V(eps);
  v.iou = v.inter / v.uni;
  return v;
}

// Corner adjoints of both rectangles.
template <typename V>
struct Corners {
  V x[4], y[4];
};

// d side(q, j, px, py) back to the point and to q's corners j, j + 1, times g.
template <typename V>
FASTLOSS_HD void side_gradient(const Rect<V>& q, int j, V px, V py, V g, V& gpx, V& gpy, Corners<V>& gq) {
  const int k = (j + 1) & 3;
  const V ex = q.x[k] - q.x[j], ey = q.y[k] - q.y[j], rx = px - q.x[j], ry = py - q.y[j];
  gpx = gpx - g * ey, gpy = gpy + g * ex;
  // ∂/∂q[k] = (ry, −rx); ∂/∂q[j] = −(ry, −rx) − (−ey, ex)
  gq.x[k] = gq.x[k] + g * ry, gq.y[k] = gq.y[k] - g * rx;
  gq.x[j] = gq.x[j] - g * ry + g * ey, gq.y[j] = gq.y[j] + g * rx - g * ex;
}

// The term of clip(p, i, q) back to p's and q's corners, times g.
template <typename V>
FASTLOSS_HD void clip_gradient(const Rect<V>& p, int i, const Rect<V>& q, bool keep_boundary, V g, Corners<V>& gp,
                               Corners<V>& gq) {
  using O = Ops<V>;
  using S = typename O::scalar_t;
  const V zero(S(0)), half(S(0.5));
  const int n = (i + 1) & 3;
  const Clip<V> c = clip(p, i, q, keep_boundary);
  g = O::select(O::gt(c.live, zero), g, zero);  // (an empty segment passes none)
  const V dx = p.x[n] - p.x[i], dy = p.y[n] - p.y[i];
  const V x0 = p.x[i] + c.t0 * dx, y0 = p.y[i] + c.t0 * dy, x1 = p.x[i] + c.t1 * dx, y1 = p.y[i] + c.t1 * dy;
  const V gx0 = half * g * y1, gy0 = O::neg(half * g * x1), gx1 = O::neg(half * g * y0), gy1 = half * g * x0;
  gp.x[i] = gp.x[i] + gx0 * (V(S(1)) - c.t0) + gx1 * (V(S(1)) - c.t1);
  gp.y[i] = gp.y[i] + gy0 * (V(S(1)) - c.t0) + gy1 * (V(S(1)) - c.t1);
  gp.x[n] = gp.x[n] + gx0 * c.t0 + gx1 * c.t1, gp.y[n] = gp.y[n] + gy0 * c.t0 + gy1 * c.t1;
  const V gt0 = gx0 * dx + gy0 * dy, gt1 = gx1 * dx + gy1 * dy;
  for (int j = 0; j < 4; ++j) {
    // t = −sa / (sb − sa): ∂t/∂sa = −sb/d², ∂t/∂sb = sa/d²
    const V gt = O::select(O::eq(c.j0, V(S(j))), gt0, zero) + O::select(O::eq(c.j1, V(S(j))), gt1, zero);
    const V sa = side(q, j, p.x[i], p.y[i]), sb = side(q, j, p.x[n], p.y[n]), d = sb - sa;
    const V gsa = O::select(O::eq(gt, zero), zero, O::neg(gt) * sb / (d * d));
    const V gsb = O::select(O::eq(gt, zero), zero, gt * sa / (d * d));
    side_gradient(q, j, p.x[i], p.y[i], gsa, gp.x[i], gp.y[i], gq);
    side_gradient(q, j, p.x[n], p.y[n], gsb, gp.x[n], gp.y[n], gq);
  }
}

// A rectangle's corner adjoint (and its area's) back to its row; its centre's also to the origin's box.
template <typename V>
FASTLOSS_HD void rect_gradient(const V (&r)[kFields], const Rect<V>& b, const Corners<V>& g, V g_area, V (&d)[kFields],
                               V& g_origin_x, V& g_origin_y) {
  using O = Ops<V>;
  using S = typename O::scalar_t;
  const V zero(S(0)), half(S(0.5)), four(S(4));
  // corner k = centre + a·u + c·v, (a, c) = (+, +), (−, +), (−, −), (+, −); u = hw·(co, si), v = hh·(−si, co)
  const S sa[4] = {1, -1, -1, 1}, sc[4] = {1, 1, -1, -1};
  V gcx = zero, gcy = zero, gux = zero, guy = zero, gvx = zero, gvy = zero;
  for (int k = 0; k < 4; ++k) {
    gcx = gcx + g.x[k], gcy = gcy + g.y[k];
    gux = gux + V(sa[k]) * g.x[k], guy = guy + V(sa[k]) * g.y[k];
    gvx = gvx + V(sc[k]) * g.x[k], gvy = gvy + V(sc[k]) * g.y[k];
  }
  const V ghw = gux * b.co + guy * b.si + four * b.hh * g_area;
  const V ghh = O::neg(gvx * b.si) + gvy * b.co + four * b.hw * g_area;
  const V gco = gux * b.hw + gvy * b.hh, gsi = guy * b.hw - gvx * b.hh;
  d[0] = gcx, d[1] = gcy;
  g_origin_x = g_origin_x - gcx, g_origin_y = g_origin_y - gcy;
  d[2] = O::select(O::ge(r[2], zero), half * ghw, zero);
  d[3] = O::select(O::ge(r[3], zero), half * ghh, zero);
  const V radial = b.co * gco + b.si * gsi;  // (the normalisation removes it)
  d[4] = (gco - b.co * radial) / b.norm;
  d[5] = (gsi - b.si * radial) / b.norm;
}

// d IoU / d (both rows), times g.
template <typename V, typename S>
FASTLOSS_HD void gradient(const V (&a)[kFields], const V (&b)[kFields], S eps, V g, V (&da)[kFields],
                          V (&db)[kFields]) {
  using O = Ops<V>;
  const V zero(S(0));
  const Pair<V> v = evaluate(a, b, eps);
  const V g_inter = O::select(O::ge(v.sum, zero), g * (v.uni + v.inter) / (v.uni * v.uni), zero);
  const V g_area = O::neg(g * v.inter / (v.uni * v.uni));
  Corners<V> gp, gq;
  for (int k = 0; k < 4; ++k) gp.x[k] = gp.y[k] = gq.x[k] = gq.y[k] = zero;
  for (int i = 0; i < 4; ++i) clip_gradient(v.p, i, v.q, true, g_inter, gp, gq);
  for (int i = 0; i < 4; ++i) clip_gradient(v.q, i, v.p, false, g_inter, gq, gp);
  V ox = zero, oy = zero;  // (the origin is a's centre: b's corners move against it)
  rect_gradient(b, v.q, gq, g_area, db, ox, oy);
  V unused_x = zero, unused_y = zero;
  rect_gradient(a, v.p, gp, g_area, da, unused_x, unused_y);
  da[0] = ox, da[1] = oy;  // (a's own corners are relative to its centre: only b's move with it)
}

// The pair formulas as ops/box_pairs.h's loops take them.
struct PairMath {
  static constexpr int kFields = rotated_iou::kFields;
  template <typename V, typename S>
  FASTLOSS_HD static V value(const V (&p)[kFields], const V (&q)[kFields], S eps, S) {
    return evaluate(p, q, eps).iou;
  }
  template <typename V, typename S>
  FASTLOSS_HD static void gradient(const V (&p)[kFields], const V (&q)[kFields], S eps, S, V g, V (&dp)[kFields],
                                   V (&dq)[kFields]) {
    rotated_iou::gradient(p, q, eps, g, dp, dq);
  }
};

}  // namespace fastloss::rotated_iou
