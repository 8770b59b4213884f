#pragma once
// Distances between oriented boxes taken as 2-D Gaussians N(μ, Σ), Σ = [[a, c], [c, b]], and the
// losses made of them, as mmrotate 0.3.4 computes them (mmrotate/models/losses/gaussian_dist_loss.py,
// kf_iou_loss.py):
//   GWD  — Yang et al., "Rethinking Rotated Object Detection with Gaussian Wasserstein Distance Loss"
//          (ICML 2021): d² = |μp − μt|² + α²·(tr Σp + tr Σt − 2·√(tr(ΣpΣt) + 2·√(det Σp·det Σt))),
//          d = √d², normalised by 2·⁴√(det Σp·det Σt) when asked;
//   KLD  — Yang et al., "Learning High-Precision Bounding Box for Rotated Object Detection via
//          Kullback-Leibler Divergence" (NeurIPS 2021): ½(Δμᵀ Σp⁻¹ Δμ / α² + tr(Σp⁻¹Σt) + ln det Σp
//          − ln det Σt) − 1, its square root when asked; JD = ½(KLD(p‖t) + KLD(t‖p)), and the larger
//          (symmax) or smaller (symmin) of the two directions;
//   KFIoU — Yang et al., "The KFIoU Loss for Rotated Object Detection" (ICLR 2023): the overlap
//          V(Σ)/(V(Σp) + V(Σt) − V(Σ) + ε), V(S) = 4√det S, Σ = Σp − Σp(Σp + Σt)⁻¹Σp, plus the
//          smooth L1 of the centres.
// mmrotate's clamps are kept (each √ of a clamp(·, 1e-7); w and h clamped to [1e-7, 1e7]; the
// gradient passes where the bound holds, inclusive, as torch's clamp), then its post-processing:
// log1p, √ or none, then 1 − 1/(τ + d) when τ ≥ 1.
//
// Every loss is a function of a few invariants of the pair — Mahalanobis terms m₁ = Δμᵀ Σp⁻¹ Δμ and
// m₂ = Δμᵀ Σt⁻¹ Δμ, t₁ = tr(Σp⁻¹ Σt), t₂ = tr(Σt⁻¹ Σp), the traces, tr(Σp Σt), det Σp, det Σt and
// Δμ — computed per representation (first stage), then the loss from them (second stage); the
// gradient runs the two stages back.
//
// Where mmrotate's float arithmetic breaks down, these formulas do not, by construction. mmrotate
// builds Σ = [[a, c], [c, b]] and works with a·b − c² and adj(Σp)·Σt: for thin or huge-aspect boxes
// (w or h → 0, 1000:1) these cancel to nothing or below 0, giving log(≤ 0), infinite inverses, NaN
// (or, in float32, losses off by O(1)). Here xywhr boxes are compared in each other's frames:
// with δ = r_t − r_p, Σt seen from p's axes is [[c²A_t + s²B_t, ·], [·, s²A_t + c²B_t]] (A = (w/2)²,
// B = (h/2)², c = cos δ, s = sin δ from the boxes' cos and sin), so
//   t₁ = (c²A_t + s²B_t)/A_p + (s²A_t + c²B_t)/B_p,   m₁ = u²/A_p + v²/B_p  (Δμ in p's axes: u, v),
//   tr(Σp Σt) = A_p(c²A_t + s²B_t) + B_p(s²A_t + c²B_t),   det Σ = A·B,
//   det(Σp + Σt) = det Σp·(1 + t₁) + det Σt    (KFIoU's, never below det Σp + det Σt),
// sums of positive terms; t₂, m₂ the same from t's axes. The derivatives through A, B and det are
// carried as ∂L/∂ln(·), so none overflows. The cos and sin inputs are normalised (cos² + sin² = 1),
// so the op is a function of the angle alone and its gradient is tangent to the circle.
// (x, y, σx, σy, ρ) Gaussians come as mmrotate gives them, with det Σ = σx²σy²(1 − ρ)(1 + ρ).
#include "math/ops.h"

namespace fastloss::gaussian_distance {

enum Kind : int { kGwd, kKld, kJd, kKldSymmax, kKldSymmin, kKfiou };
enum Fun : int { kFunNone, kLog1p, kSqrt, kLn, kExp };  // log1p/sqrt: GD losses; ln/exp: KFIoU
enum Representation : int { kXywhr, kPearson };
constexpr int kXywhrFields = 6, kPearsonFields = 5;  // (x, y, w, h, cos, sin), (x, y, σx, σy, ρ)

template <typename S>
struct Params {
  int kind, fun;
  S tau, alpha, beta, eps;
  bool flag;  // GWD: normalize; KLD family: sqrt
};

// The pair's invariants; as an adjoint, the same fields hold ∂L/∂(field), except dp and dt: ∂L/∂ln.
template <typename V>
struct Invariants {
  V m1, m2, t1, t2, trp, trt, tpt, dp, dt, dx, dy;
};

template <typename V>
FASTLOSS_HD Invariants<V> zero_invariants() {
  const V z(typename Ops<V>::scalar_t(0));
  return Invariants<V>{z, z, z, z, z, z, z, z, z, z, z};
}

// ------------------------------------------------------------------ first stage: xywhr boxes

// The clamp of w and h to [1e-7, 1e7] (xy_wh_r_2_xy_sigma), and g where its gradient passes.
template <typename V>
FASTLOSS_HD V clamp_size(V v) {
  using O = Ops<V>;
  using S = typename O::scalar_t;
  return O::min(O::max(v, V(S(1e-7))), V(S(1e7)));
}
template <typename V>
FASTLOSS_HD V where_inside(V v, V lo, V hi, V g) {
  using O = Ops<V>;
  const V zero(typename O::scalar_t(0));
  return O::select(O::ge(v, lo), O::select(O::ge(hi, v), g, zero), zero);
}

// One box's frame: centre, A = (w/2)², B = (h/2)², the unit vector (cos, sin) and its norm before.
template <typename V>
struct Frame {
  V x, y, w, h, A, B, co, si, norm;
};

template <typename V>
FASTLOSS_HD Frame<V> frame(const V (&r)[kXywhrFields]) {
  using O = Ops<V>;
  using S = typename O::scalar_t;
  Frame<V> f;
  f.x = r[0], f.y = r[1], f.w = clamp_size(r[2]), f.h = clamp_size(r[3]);
  const V hw = V(S(0.5)) * f.w, hh = V(S(0.5)) * f.h;
  f.A = hw * hw, f.B = hh * hh;
  f.norm = O::sqrt(r[4] * r[4] + r[5] * r[5]);
  f.co = r[4] / f.norm, f.si = r[5] / f.norm;
  return f;
}

// The pair seen from each box's axes: c = cos δ, s = sin δ (δ = r_t − r_p); Σt's diagonal in p's axes
// (a1, b1), Σp's in t's (a2, b2); Δμ in p's axes (u1, v1) and in t's (u2, v2).
template <typename V>
struct Relative {
  V c, s, c2, s2, a1, b1, a2, b2, u1, v1, u2, v2, dx, dy;
};

template <typename V>
FASTLOSS_HD Relative<V> relative(const Frame<V>& p, const Frame<V>& t) {
  Relative<V> q;
  q.c = p.co * t.co + p.si * t.si, q.s = p.co * t.si - p.si * t.co;
  q.c2 = q.c * q.c, q.s2 = q.s * q.s;
  q.a1 = q.c2 * t.A + q.s2 * t.B, q.b1 = q.s2 * t.A + q.c2 * t.B;
  q.a2 = q.c2 * p.A + q.s2 * p.B, q.b2 = q.s2 * p.A + q.c2 * p.B;
  q.dx = p.x - t.x, q.dy = p.y - t.y;
  q.u1 = p.co * q.dx + p.si * q.dy, q.v1 = p.co * q.dy - p.si * q.dx;
  q.u2 = t.co * q.dx + t.si * q.dy, q.v2 = t.co * q.dy - t.si * q.dx;
  return q;
}

template <typename V>
FASTLOSS_HD Invariants<V> invariants(const Frame<V>& p, const Frame<V>& t, const Relative<V>& q) {
  Invariants<V> k;
  k.m1 = q.u1 * q.u1 / p.A + q.v1 * q.v1 / p.B, k.m2 = q.u2 * q.u2 / t.A + q.v2 * q.v2 / t.B;
  k.t1 = q.a1 / p.A + q.b1 / p.B, k.t2 = q.a2 / t.A + q.b2 / t.B;
  k.trp = p.A + p.B, k.trt = t.A + t.B;
  k.tpt = p.A * q.a1 + p.B * q.b1;
  k.dp = p.A * p.B, k.dt = t.A * t.B;
  k.dx = q.dx, k.dy = q.dy;
  return k;
}

// ∂L/∂ln A, ∂L/∂ln B, ∂L/∂(unit cos, sin) and ∂L/∂(x, y) of one box.
template <typename V>
struct FrameAdjoint {
  V x, y, lnA, lnB, co, si;
};

// The invariants' adjoint g back to both boxes' frames.
template <typename V>
FASTLOSS_HD void relative_gradient(const Frame<V>& p, const Frame<V>& t, const Relative<V>& q, const Invariants<V>& g,
                                   FrameAdjoint<V>& dp, FrameAdjoint<V>& dt) {
  using S = typename Ops<V>::scalar_t;
  const V two(S(2));
  // (a1, b1, a2, b2, u1, v1, u2, v2): their adjoints
  const V ga1 = g.t1 / p.A + g.tpt * p.A, gb1 = g.t1 / p.B + g.tpt * p.B;
  const V ga2 = g.t2 / t.A, gb2 = g.t2 / t.B;
  const V gu1 = two * g.m1 * q.u1 / p.A, gv1 = two * g.m1 * q.v1 / p.B;
  const V gu2 = two * g.m2 * q.u2 / t.A, gv2 = two * g.m2 * q.v2 / t.B;
  // ln A, ln B: directly (m, t, traces, det) and through a1, b1, a2, b2
  dp.lnA = Ops<V>::neg(g.m1 * q.u1 * q.u1 / p.A + g.t1 * q.a1 / p.A) + (g.trp + g.tpt * q.a1) * p.A + g.dp +
           (ga2 * q.c2 + gb2 * q.s2) * p.A;
  dp.lnB = Ops<V>::neg(g.m1 * q.v1 * q.v1 / p.B + g.t1 * q.b1 / p.B) + (g.trp + g.tpt * q.b1) * p.B + g.dp +
           (ga2 * q.s2 + gb2 * q.c2) * p.B;
  dt.lnA =
      Ops<V>::neg(g.m2 * q.u2 * q.u2 / t.A + g.t2 * q.a2 / t.A) + g.trt * t.A + g.dt + (ga1 * q.c2 + gb1 * q.s2) * t.A;
  dt.lnB =
      Ops<V>::neg(g.m2 * q.v2 * q.v2 / t.B + g.t2 * q.b2 / t.B) + g.trt * t.B + g.dt + (ga1 * q.s2 + gb1 * q.c2) * t.B;
  // c² and s², then c and s
  const V gc2 = ga1 * t.A + gb1 * t.B + ga2 * p.A + gb2 * p.B;
  const V gs2 = ga1 * t.B + gb1 * t.A + ga2 * p.B + gb2 * p.A;
  const V gc = two * q.c * gc2, gs = two * q.s * gs2;
  // Δμ
  const V gdx = g.dx + gu1 * p.co - gv1 * p.si + gu2 * t.co - gv2 * t.si;
  const V gdy = g.dy + gu1 * p.si + gv1 * p.co + gu2 * t.si + gv2 * t.co;
  dp.x = gdx, dp.y = gdy, dt.x = Ops<V>::neg(gdx), dt.y = Ops<V>::neg(gdy);
  // the unit vectors: c = cp·ct + sp·st, s = cp·st − sp·ct, u/v as above
  dp.co = gc * t.co + gs * t.si + gu1 * q.dx + gv1 * q.dy;
  dp.si = gc * t.si - gs * t.co + gu1 * q.dy - gv1 * q.dx;
  dt.co = gc * p.co - gs * p.si + gu2 * q.dx + gv2 * q.dy;
  dt.si = gc * p.si + gs * p.co + gu2 * q.dy - gv2 * q.dx;
}

// A frame's adjoint back to its row (x, y, w, h, cos, sin).
template <typename V>
FASTLOSS_HD void frame_gradient(const V (&r)[kXywhrFields], const Frame<V>& f, const FrameAdjoint<V>& g,
                                V (&d)[kXywhrFields]) {
  using S = typename Ops<V>::scalar_t;
  const V two(S(2)), lo(S(1e-7)), hi(S(1e7));
  d[0] = g.x, d[1] = g.y;
  d[2] = where_inside(r[2], lo, hi, g.lnA * two / f.w);  // ln A = 2 ln w − 2 ln 2
  d[3] = where_inside(r[3], lo, hi, g.lnB * two / f.h);
  const V radial = f.co * g.co + f.si * g.si;  // (the normalisation removes it)
  d[4] = (g.co - f.co * radial) / f.norm;
  d[5] = (g.si - f.si * radial) / f.norm;
}

// ------------------------------------------------------------------ first stage: (x, y, σx, σy, ρ)

template <typename V>
struct Pearson {
  V x, y, sx, sy, rho, a, b, c, det;
};

template <typename V>
FASTLOSS_HD Pearson<V> pearson(const V (&r)[kPearsonFields]) {
  using O = Ops<V>;
  using S = typename O::scalar_t;
  const V one(S(1));
  Pearson<V> g;
  g.x = r[0], g.y = r[1], g.sx = r[2], g.sy = r[3];
  g.rho = O::min(O::max(r[4], V(S(1e-7 - 1))), V(S(1 - 1e-7)));
  g.a = g.sx * g.sx, g.b = g.sy * g.sy, g.c = g.rho * (g.sx * g.sy);
  g.det = g.a * g.b * ((one - g.rho) * (one + g.rho));
  return g;
}

// m = Δμᵀ adj(Σ) Δμ / det Σ and t = tr(adj(Σ) Σo) / det Σ of one direction.
template <typename V>
FASTLOSS_HD V mahalanobis(const Pearson<V>& g, V dx, V dy) {
  const V two(typename Ops<V>::scalar_t(2));
  return (g.b * (dx * dx) - two * g.c * (dx * dy) + g.a * (dy * dy)) / g.det;
}
template <typename V>
FASTLOSS_HD V trace_ratio(const Pearson<V>& g, const Pearson<V>& o) {
  const V two(typename Ops<V>::scalar_t(2));
  return (g.b * o.a - two * g.c * o.c + g.a * o.b) / g.det;
}

template <typename V>
FASTLOSS_HD Invariants<V> invariants(const Pearson<V>& p, const Pearson<V>& t) {
  const V two(typename Ops<V>::scalar_t(2));
  Invariants<V> k;
  k.dx = p.x - t.x, k.dy = p.y - t.y;
  k.m1 = mahalanobis(p, k.dx, k.dy), k.m2 = mahalanobis(t, k.dx, k.dy);
  k.t1 = trace_ratio(p, t), k.t2 = trace_ratio(t, p);
  k.trp = p.a + p.b, k.trt = t.a + t.b;
  k.tpt = p.a * t.a + two * (p.c * t.c) + p.b * t.b;
  k.dp = p.det, k.dt = t.det;
  return k;
}

// ∂L/∂(a, b, c) and ∂L/∂ln det of one Gaussian, then back to its row.
template <typename V>
struct PearsonAdjoint {
  V x, y, a, b, c, lndet;
};

// The adjoint of one direction's m (gm) and t (gt): on g (whose inverse they use) and o.
template <typename V>
FASTLOSS_HD void direction_gradient(const Pearson<V>& g, const Pearson<V>& o, V m, V t, V dx, V dy, V gm, V gt,
                                    PearsonAdjoint<V>& dg, PearsonAdjoint<V>& d_o, V& gdx, V& gdy) {
  const V two(typename Ops<V>::scalar_t(2));
  const V qm = gm / g.det, qt = gt / g.det;
  dg.lndet = dg.lndet - gm * m - gt * t;
  dg.a = dg.a + qm * (dy * dy) + qt * o.b, dg.b = dg.b + qm * (dx * dx) + qt * o.a;
  dg.c = dg.c - two * (qm * (dx * dy) + qt * o.c);
  d_o.a = d_o.a + qt * g.b, d_o.b = d_o.b + qt * g.a, d_o.c = d_o.c - two * qt * g.c;
  gdx = gdx + two * qm * (g.b * dx - g.c * dy), gdy = gdy + two * qm * (g.a * dy - g.c * dx);
}

template <typename V>
FASTLOSS_HD void pearson_gradient(const V (&r)[kPearsonFields], const Pearson<V>& g, const PearsonAdjoint<V>& d,
                                  V (&out)[kPearsonFields]) {
  using S = typename Ops<V>::scalar_t;
  const V one(S(1)), two(S(2));
  out[0] = d.x, out[1] = d.y;
  out[2] = two * d.a * g.sx + d.c * g.rho * g.sy + d.lndet * two / g.sx;
  out[3] = two * d.b * g.sy + d.c * g.rho * g.sx + d.lndet * two / g.sy;
  const V g_rho = d.c * (g.sx * g.sy) - d.lndet * two * g.rho / ((one - g.rho) * (one + g.rho));
  out[4] = where_inside(r[4], V(S(1e-7 - 1)), V(S(1 - 1e-7)), g_rho);
}

// ------------------------------------------------------------------ second stage: the losses

// √max(v, 1e-7) and its derivative times g (none where clamped).
template <typename V>
FASTLOSS_HD V sqrt_clamped(V v) {
  using O = Ops<V>;
  return O::sqrt(O::max(v, V(typename O::scalar_t(1e-7))));
}
template <typename V>
FASTLOSS_HD V sqrt_clamped_gradient(V v, V root, V g) {
  using O = Ops<V>;
  using S = typename O::scalar_t;
  return O::select(O::ge(v, V(S(1e-7))), g * V(S(0.5)) / root, V(S(0)));
}

// KLD(p‖t) and KLD(t‖p) before their square roots, and their adjoints.
template <typename V>
FASTLOSS_HD V kld(const Invariants<V>& k, V alpha2, bool forward_direction) {
  using O = Ops<V>;
  using S = typename O::scalar_t;
  const V half(S(0.5)), m = forward_direction ? k.m1 : k.m2, t = forward_direction ? k.t1 : k.t2;
  const V logs = forward_direction ? O::log(k.dp) - O::log(k.dt) : O::log(k.dt) - O::log(k.dp);
  return half * (m / alpha2 + t) + half * logs - V(S(1));
}
template <typename V>
FASTLOSS_HD void kld_gradient(V alpha2, bool forward_direction, V g, Invariants<V>& d) {
  const V half(typename Ops<V>::scalar_t(0.5)), gh = half * g;
  if (forward_direction)
    d.m1 = d.m1 + gh / alpha2, d.t1 = d.t1 + gh, d.dp = d.dp + gh, d.dt = d.dt - gh;
  else
    d.m2 = d.m2 + gh / alpha2, d.t2 = d.t2 + gh, d.dt = d.dt + gh, d.dp = d.dp - gh;
}

// mmrotate's postprocess: log1p, √(clamp) or nothing, then 1 − 1/(τ + d) when τ ≥ 1.
template <typename V, typename S>
FASTLOSS_HD V postprocess(V d, const Params<S>& pr) {
  using O = Ops<V>;
  const V e = pr.fun == kLog1p ? O::log1p(d) : pr.fun == kSqrt ? sqrt_clamped(d) : d;
  return pr.tau >= S(1) ? V(S(1)) - V(S(1)) / (V(pr.tau) + e) : e;
}

template <typename V, typename S>
FASTLOSS_HD V postprocess_gradient(V d, const Params<S>& pr, V g) {
  using O = Ops<V>;
  const V e = pr.fun == kLog1p ? O::log1p(d) : pr.fun == kSqrt ? sqrt_clamped(d) : d;
  if (pr.tau >= S(1)) g = g / ((V(pr.tau) + e) * (V(pr.tau) + e));
  if (pr.fun == kLog1p) return g / (V(S(1)) + d);
  if (pr.fun == kSqrt) return sqrt_clamped_gradient(d, e, g);
  return g;
}

template <typename V>
struct Gwd {
  V P, root_p, u, root_u, v, dist, s1, s2, scale;
};

template <typename V, typename S>
FASTLOSS_HD Gwd<V> gwd(const Invariants<V>& k, const Params<S>& pr) {
  using O = Ops<V>;
  const V two(S(2)), alpha(pr.alpha);
  Gwd<V> w;
  w.P = k.dp * k.dt;
  w.root_p = sqrt_clamped(w.P);
  w.u = k.tpt + two * w.root_p;
  w.root_u = sqrt_clamped(w.u);
  const V whr = k.trp + k.trt - two * w.root_u;
  w.v = (k.dx * k.dx + k.dy * k.dy) + alpha * alpha * whr;
  w.dist = sqrt_clamped(w.v);
  if (pr.flag) {
    w.s1 = sqrt_clamped(w.root_p), w.s2 = sqrt_clamped(w.s1);
    w.scale = two * O::max(w.s2, V(S(1e-7)));
  }
  return w;
}

template <typename V, typename S>
FASTLOSS_HD void gwd_gradient(const Invariants<V>& k, const Params<S>& pr, V g, Invariants<V>& d) {
  using O = Ops<V>;
  const V two(S(2)), zero(S(0)), alpha(pr.alpha);
  const Gwd<V> w = gwd(k, pr);
  V g_dist = g, g_root_p = zero;
  if (pr.flag) {
    g_dist = g / w.scale;
    const V g_scale = O::neg(g) * (w.dist / w.scale) / w.scale;
    const V g_s2 = O::select(O::ge(w.s2, V(S(1e-7))), two * g_scale, zero);
    g_root_p = sqrt_clamped_gradient(w.root_p, w.s1, sqrt_clamped_gradient(w.s1, w.s2, g_s2));
  }
  const V g_v = sqrt_clamped_gradient(w.v, w.dist, g_dist);
  const V g_whr = g_v * (alpha * alpha);
  const V g_u = sqrt_clamped_gradient(w.u, w.root_u, O::neg(two) * g_whr);
  const V g_lnP = sqrt_clamped_gradient(w.P, w.root_p, g_root_p + two * g_u) * w.P;
  d.dp = d.dp + g_lnP, d.dt = d.dt + g_lnP;
  d.trp = d.trp + g_whr, d.trt = d.trt + g_whr, d.tpt = d.tpt + g_u;
  d.dx = d.dx + two * g_v * k.dx, d.dy = d.dy + two * g_v * k.dy;
}

// JD and the symmetric KLDs from both directions (each √(clamp) first for symmax/symmin when
// flag; JD's after the mean).
template <typename V, typename S>
FASTLOSS_HD V symmetric(V kpt, V ktp, const Params<S>& pr) {
  using O = Ops<V>;
  if (pr.kind == kJd) {
    const V jd = (kpt + ktp) * V(S(0.5));
    return pr.flag ? sqrt_clamped(jd) : jd;
  }
  if (pr.flag) kpt = sqrt_clamped(kpt), ktp = sqrt_clamped(ktp);
  return pr.kind == kKldSymmax ? O::max(kpt, ktp) : O::min(kpt, ktp);
}

// ∂/∂kpt and ∂/∂ktp of symmetric(), times g: torch's maximum/minimum split a tie in halves.
template <typename V, typename S>
FASTLOSS_HD void symmetric_gradient(V kpt, V ktp, const Params<S>& pr, V g, V& g_pt, V& g_tp) {
  using O = Ops<V>;
  const V half(S(0.5)), zero(S(0));
  if (pr.kind == kJd) {
    const V jd = (kpt + ktp) * half;
    g_pt = g_tp = half * (pr.flag ? sqrt_clamped_gradient(jd, sqrt_clamped(jd), g) : g);
    return;
  }
  const V rpt = pr.flag ? sqrt_clamped(kpt) : kpt, rtp = pr.flag ? sqrt_clamped(ktp) : ktp;
  const bool max = pr.kind == kKldSymmax;
  const auto first = max ? O::gt(rpt, rtp) : O::gt(rtp, rpt);  // kpt strictly chosen
  const auto second = max ? O::gt(rtp, rpt) : O::gt(rpt, rtp);
  const V a = O::select(first, g, O::select(second, zero, half * g));
  const V b = O::select(second, g, O::select(first, zero, half * g));
  g_pt = pr.flag ? sqrt_clamped_gradient(kpt, rpt, a) : a;
  g_tp = pr.flag ? sqrt_clamped_gradient(ktp, rtp, b) : b;
}

// KFIoU: the overlap k = V_b/(V_p + V_t − V_b + ε), V = 4√det, det(Σ) = det p·det t/det(Σp + Σt);
// the loss max(smooth L1(Δμ) + fun(k), 0).
template <typename V>
struct Kfiou {
  V vp, vt, sum, vb, denom, k, raw, value;
};

template <typename V, typename S>
FASTLOSS_HD V smooth_l1(V d, S beta) {
  using O = Ops<V>;
  const V ad = O::abs(d), b(beta);
  return O::select(O::gt(b, ad), V(S(0.5)) * ad * ad / b, ad - V(S(0.5)) * b);
}
template <typename V, typename S>
FASTLOSS_HD V smooth_l1_gradient(V d, S beta, V g) {
  using O = Ops<V>;
  const V one(S(1)), b(beta);
  return g * O::select(O::gt(b, O::abs(d)), d / b, O::select(O::gt(d, V(S(0))), one, O::neg(one)));
}

template <typename V, typename S>
FASTLOSS_HD Kfiou<V> kfiou(const Invariants<V>& i, const Params<S>& pr) {
  using O = Ops<V>;
  const V four(S(4)), one(S(1)), eps(pr.eps);
  Kfiou<V> k;
  k.vp = four * O::sqrt(i.dp), k.vt = four * O::sqrt(i.dt);
  k.sum = i.dp * (one + i.t1) + i.dt;
  k.vb = four * O::sqrt(i.dp * i.dt / k.sum);
  k.denom = k.vp + k.vt - k.vb + eps;
  k.k = k.vb / k.denom;
  const V f = pr.fun == kLn ? O::neg(O::log(k.k + eps)) : pr.fun == kExp ? O::exp(one - k.k) - one : one - k.k;
  k.raw = smooth_l1(i.dx, pr.beta) + smooth_l1(i.dy, pr.beta) + f;
  k.value = O::max(k.raw, V(S(0)));
  return k;
}

template <typename V, typename S>
FASTLOSS_HD void kfiou_gradient(const Invariants<V>& i, const Params<S>& pr, V g, Invariants<V>& d) {
  using O = Ops<V>;
  const V half(S(0.5)), one(S(1)), zero(S(0)), eps(pr.eps);
  const Kfiou<V> k = kfiou(i, pr);
  g = O::select(O::ge(k.raw, zero), g, zero);  // (the clamp(0); a NaN loss passes none)
  d.dx = d.dx + smooth_l1_gradient(i.dx, pr.beta, g), d.dy = d.dy + smooth_l1_gradient(i.dy, pr.beta, g);
  const V g_k = pr.fun == kLn ? O::neg(g) / (k.k + eps) : pr.fun == kExp ? O::neg(g) * O::exp(one - k.k) : O::neg(g);
  const V g_edge = g_k * k.k / k.denom;  // −∂k/∂vp = −∂k/∂vt, times g_k
  const V g_lnvb = half * (g_k / k.denom + g_edge) * k.vb;
  const V g_lnsum = O::neg(g_lnvb);  // vb = 4√(dp·dt/sum)
  d.dp = d.dp + g_lnvb - half * g_edge * k.vp + g_lnsum * i.dp * (one + i.t1) / k.sum;
  d.dt = d.dt + g_lnvb - half * g_edge * k.vt + g_lnsum * i.dt / k.sum;
  d.t1 = d.t1 + g_lnsum * i.dp / k.sum;
}

// The loss from the invariants, and its adjoint (times g) added to d.
template <typename V, typename S>
FASTLOSS_HD V loss(const Invariants<V>& k, const Params<S>& pr) {
  const V alpha2(pr.alpha * pr.alpha);
  switch (pr.kind) {
    case kKfiou: return kfiou(k, pr).value;
    case kGwd: {
      const Gwd<V> w = gwd(k, pr);
      return postprocess(pr.flag ? w.dist / w.scale : w.dist, pr);
    }
    case kKld: {
      const V v = kld(k, alpha2, true);
      return postprocess(pr.flag ? sqrt_clamped(v) : v, pr);
    }
    default: return postprocess(symmetric(kld(k, alpha2, true), kld(k, alpha2, false), pr), pr);
  }
}

template <typename V, typename S>
FASTLOSS_HD void loss_gradient(const Invariants<V>& k, const Params<S>& pr, V g, Invariants<V>& d) {
  const V alpha2(pr.alpha * pr.alpha);
  switch (pr.kind) {
    case kKfiou: kfiou_gradient(k, pr, g, d); return;
    case kGwd: {
      const Gwd<V> w = gwd(k, pr);
      gwd_gradient(k, pr, postprocess_gradient(pr.flag ? w.dist / w.scale : w.dist, pr, g), d);
      return;
    }
    case kKld: {
      const V v = kld(k, alpha2, true), r = pr.flag ? sqrt_clamped(v) : v, gr = postprocess_gradient(r, pr, g);
      kld_gradient(alpha2, true, pr.flag ? sqrt_clamped_gradient(v, r, gr) : gr, d);
      return;
    }
    default: {
      const V kpt = kld(k, alpha2, true), ktp = kld(k, alpha2, false);
      V g_pt, g_tp;
      symmetric_gradient(kpt, ktp, pr, postprocess_gradient(symmetric(kpt, ktp, pr), pr, g), g_pt, g_tp);
      kld_gradient(alpha2, true, g_pt, d);
      kld_gradient(alpha2, false, g_tp, d);
    }
  }
}

// ------------------------------------------------------------------ a pair of rows

// The loss of a pair of rows, and its gradient times g w.r.t. both rows, by representation R.
template <int R>
struct Layout;

template <>
struct Layout<kXywhr> {
  static constexpr int kFields = kXywhrFields;
  template <typename V, typename S>
  FASTLOSS_HD static V loss(const V (&p)[kFields], const V (&t)[kFields], const Params<S>& pr) {
    const Frame<V> fp = frame(p), ft = frame(t);
    return gaussian_distance::loss(invariants(fp, ft, relative(fp, ft)), pr);
  }
  template <typename V, typename S>
  FASTLOSS_HD static void gradient(const V (&p)[kFields], const V (&t)[kFields], const Params<S>& pr, V g,
                                   V (&dp)[kFields], V (&dt)[kFields]) {
    const Frame<V> fp = frame(p), ft = frame(t);
    const Relative<V> q = relative(fp, ft);
    Invariants<V> d = zero_invariants<V>();
    loss_gradient(invariants(fp, ft, q), pr, g, d);
    FrameAdjoint<V> ap, at;
    relative_gradient(fp, ft, q, d, ap, at);
    frame_gradient(p, fp, ap, dp);
    frame_gradient(t, ft, at, dt);
  }
};

template <>
struct Layout<kPearson> {
  static constexpr int kFields = kPearsonFields;
  template <typename V, typename S>
  FASTLOSS_HD static V loss(const V (&p)[kFields], const V (&t)[kFields], const Params<S>& pr) {
    return gaussian_distance::loss(invariants(pearson(p), pearson(t)), pr);
  }
  template <typename V, typename S>
  FASTLOSS_HD static void gradient(const V (&p)[kFields], const V (&t)[kFields], const Params<S>& pr, V g,
                                   V (&dp)[kFields], V (&dt)[kFields]) {
    using O = Ops<V>;
    const Pearson<V> gp = pearson(p), gt = pearson(t);
    const Invariants<V> k = invariants(gp, gt);
    Invariants<V> d = zero_invariants<V>();
    loss_gradient(k, pr, g, d);
    const V zero(S(0));
    PearsonAdjoint<V> ap{zero, zero, d.trp, d.trp, zero, d.dp}, at{zero, zero, d.trt, d.trt, zero, d.dt};
    ap.a = ap.a + d.tpt * gt.a, ap.b = ap.b + d.tpt * gt.b, ap.c = ap.c + V(S(2)) * d.tpt * gt.c;
    at.a = at.a + d.tpt * gp.a, at.b = at.b + d.tpt * gp.b, at.c = at.c + V(S(2)) * d.tpt * gp.c;
    V gdx = d.dx, gdy = d.dy;
    direction_gradient(gp, gt, k.m1, k.t1, k.dx, k.dy, d.m1, d.t1, ap, at, gdx, gdy);
    direction_gradient(gt, gp, k.m2, k.t2, k.dx, k.dy, d.m2, d.t2, at, ap, gdx, gdy);
    ap.x = gdx, ap.y = gdy, at.x = O::neg(gdx), at.y = O::neg(gdy);
    pearson_gradient(p, gp, ap, dp);
    pearson_gradient(t, gt, at, dt);
  }
};

template <int R, typename V, typename S>
FASTLOSS_HD V pair_loss(const V (&p)[Layout<R>::kFields], const V (&t)[Layout<R>::kFields], const Params<S>& pr) {
  return Layout<R>::loss(p, t, pr);
}

template <int R, typename V, typename S>
FASTLOSS_HD void pair_gradient(const V (&p)[Layout<R>::kFields], const V (&t)[Layout<R>::kFields], const Params<S>& pr,
                               V g, V (&dp)[Layout<R>::kFields], V (&dt)[Layout<R>::kFields]) {
  Layout<R>::gradient(p, t, pr, g, dp, dt);
}

}  // namespace fastloss::gaussian_distance
