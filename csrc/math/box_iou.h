#pragma once
// The IoU family of box regression losses on aligned pairs pred ↔ target. Boxes become corners
// (x1, y1, x2, y2) from the caller's format; w, h and the centre come from each box; C is the
// smallest enclosing box (width cw, height ch); IoU = inter / (union + eps).
//   IoU   UnitBox, Yu et al., arXiv 1608.01471: 1 − IoU ("linear"), −ln(max(IoU, eps)) ("log"),
//         1 − IoU² ("square")
//   GIoU  Rezatofighi et al., arXiv 1902.09630: 1 − IoU + (area(C) − union) / (area(C) + eps)
//   DIoU  Zheng et al., arXiv 1911.08287: 1 − IoU + ρ²/c², ρ the centre distance, c² = cw² + ch² + eps
//   CIoU  same paper: DIoU + α·v, v = (4/π²)(atan(w_t/h_t) − atan(w_p/h_p))², α = v / (1 − IoU + v + eps)
//         held constant (no gradient through α), as the authors and torchvision do
//   EIoU  Zhang et al., arXiv 2101.08158: DIoU + (w_p − w_t)²/(cw² + eps) + (h_p − h_t)²/(ch² + eps)
//   Focal-EIoU  same paper: IoU^γ · EIoU, IoU^γ held constant (a weight)
//   CDIoU Dong et al., arXiv 2103.11696: 1 − IoU + λ·Σ_k ‖corner_k(p) − corner_k(t)‖ / (4·sqrt(c²))
// Two kinds are mmdet's own losses (its formulas, its eps placement):
//   SIoU  Gevorgyan, arXiv 2205.12740: 1 − clamp(IoU − ½(Δ + Ω), −1, 1), with the angle cost
//         Λ = sin(2·asin(s)) = 2s·sqrt(1 − s²) (s the sine of the centres' offset angle, the smaller of
//         the two), the distance cost Δ = Σ_{x,y} (1 − e^{γ·ρ}), ρ = (offset / enclosing side)²,
//         γ = 2 − Λ (γ = Λ − 2 with mode 1: mmdet's neg_gamma), the shape cost Ω = Σ_{w,h} (1 − e^{−ω})⁴,
//         ω = |w_p − w_t| / max(w_p, w_t)
//   smooth EIoU  Peng & Yu (mmdet's EIoULoss): l = 1 − I/(area_p + area_t − I + eps) with the
//         extended intersection I (negative for disjoint boxes, so they still get a gradient), then
//         ½l²/β below the smooth point β (lambd), l − ½β above
//   BoundedIoU  Tychsen-Smith & Petersson, arXiv 1711.00164, as mmdet: one of four components (mode
//         0..3: dx, dy, dw, dh) of the target-relative offsets, 1 − max((w_t − 2|Δc|)/(w_t + 2|Δc| + eps), 0)
//         and 1 − min(w_t/(w_p + eps), w_p/(w_t + eps)), smooth below β (lambd) as Smooth L1; the target
//         gets no gradient (mmdet computes it under no_grad)
// The peers place eps differently; `convention` picks whose numbers a face gives:
//   kTorchvision  as written above (fastloss's own API, torchvision's names)
//   kMmdet        mmdet 3.x's loss files: IoU and GIoU divide by max(union, eps) and max(area(C), eps),
//                 the IoU losses clamp IoU at aux_eps in every mode; CIoU adds eps to the heights in the
//                 aspect ratio only, α = [IoU > 0.5]·v / (1 − IoU + v), loss = 1 − clamp(CIoU, −1, 1)
//   kUltralytics  ultralytics' bbox_iou: with xyxy boxes the heights get + eps, in the areas and the
//                 aspect ratio
// aux_eps is a second eps where a peer uses two: the IoU clamp of the IoU loss (max(IoU, aux_eps);
// mmdet floors the union at 1e-6 whatever the module's eps) and the eps in CIoU's α (torchvision
// passes its eps only there, 1e-7 everywhere else). It equals eps unless a face sets it.
// Inverted boxes (x2 < x1 or y2 < y1): fastloss's own API takes them as zero-size boxes at the same
// centre; the faces take them as their peers' formulas do (negative sides, their products as areas;
// mmdet clamps the enclosing box's sides at 0). Derivatives are
// hand-written reverse mode; min/max ties split the gradient equally (torch's rule); CIoU's angle
// difference is one atan2, finite at h = 0. Written once against Ops<V> (math/ops.h), for CPU SIMD
// and for CUDA.
#include "math/modulating_factor.h"
#include "math/ops.h"

namespace fastloss::box_iou {

// Codes shared with python/fastloss/reference/box_iou.py.
enum Kind : int {
  kIoU = 0,
  kGIoU = 1,
  kDIoU = 2,
  kCIoU = 3,
  kEIoU = 4,
  kFocalEIoU = 5,
  kCDIoU = 6,
  kSIoU = 7,
  kSmoothEIoU = 8,
  kBoundedIoU = 9
};
enum IouMode : int { kLinear = 0, kLog = 1, kSquare = 2 };
enum BoxFormat : int { kXYXY = 0, kXYWH = 1, kCXCYWH = 2 };
enum Convention : int { kTorchvision = 0, kMmdet = 1, kUltralytics = 2 };

template <typename S>
struct Params {
  int kind, mode, format, convention;
  S eps, gamma, lambd, aux_eps;
  int gamma_kind;  // GammaKind of gamma (Focal-EIoU)
};

template <typename V>
struct Box {
  V x1, y1, x2, y2;
};

template <typename V>
FASTLOSS_HD_ALWAYS_INLINE Box<V> to_corners(const V (&b)[4], int format) {
  using S = typename Ops<V>::scalar_t;
  if (format == kXYWH) return {b[0], b[1], b[0] + b[2], b[1] + b[3]};
  if (format == kCXCYWH) {
    const V hw = V(S(0.5)) * b[2], hh = V(S(0.5)) * b[3];
    return {b[0] - hw, b[1] - hh, b[0] + hw, b[1] + hh};
  }
  return {b[0], b[1], b[2], b[3]};
}

// The adjoint of to_corners: corner gradients into the caller's format.
template <typename V>
FASTLOSS_HD_ALWAYS_INLINE void corners_grad_to_format(const Box<V>& g, int format, V (&out)[4]) {
  using S = typename Ops<V>::scalar_t;
  out[0] = g.x1;
  out[1] = g.y1;
  out[2] = g.x2;
  out[3] = g.y2;
  if (format == kXYWH || format == kCXCYWH) {
    out[0] = g.x1 + g.x2;
    out[1] = g.y1 + g.y2;
    out[2] = format == kXYWH ? g.x2 : V(S(0.5)) * (g.x2 - g.x1);
    out[3] = format == kXYWH ? g.y2 : V(S(0.5)) * (g.y2 - g.y1);
  }
}

// An inverted interval (lo > hi) becomes the empty interval at its midpoint.
template <typename V>
struct Repaired {
  typename Ops<V>::Mask inverted;

  FASTLOSS_HD_ALWAYS_INLINE void apply(V& lo, V& hi) {
    using O = Ops<V>;
    using S = typename O::scalar_t;
    inverted = O::gt(lo, hi);
    const V mid = V(S(0.5)) * (lo + hi);
    lo = O::select(inverted, mid, lo);
    hi = O::select(inverted, mid, hi);
  }
  FASTLOSS_HD_ALWAYS_INLINE void adjoint(V& g_lo, V& g_hi) const {
    using O = Ops<V>;
    using S = typename O::scalar_t;
    const V g_mid = V(S(0.5)) * (g_lo + g_hi);
    g_lo = O::select(inverted, g_mid, g_lo);
    g_hi = O::select(inverted, g_mid, g_hi);
  }
};

// Adds the adjoint g of max(a, b) to a's and b's: to the greater, split equally on a tie.
// (Written as "x gets the share where x > y" so that min can reuse it with x, y swapped.)
template <typename V>
FASTLOSS_HD_ALWAYS_INLINE void add_max_adjoint(V x, V y, V g, V& g_first, V& g_second) {
  using O = Ops<V>;
  using S = typename O::scalar_t;
  // selected, not multiplied by a 0/1 share: an infinite adjoint must not become 0·inf = NaN on the
  // side that does not get it
  const V zero(S(0)), half_g = V(S(0.5)) * g;
  const auto first = O::gt(x, y), tie = O::eq(x, y);
  g_first = g_first + O::select(first, g, O::select(tie, half_g, zero));
  g_second = g_second + O::select(first, zero, O::select(tie, half_g, g));
}

// The same for min(a, b): to the smaller (a gets it where b > a).
template <typename V>
FASTLOSS_HD_ALWAYS_INLINE void add_min_adjoint(V a, V b, V g, V& g_a, V& g_b) {
  add_max_adjoint(b, a, g, g_a, g_b);
}

// a / b where b > 0, else 0 (b ≥ 0): guards the derivatives of atan2 at w = h = 0 and of a corner
// distance at 0, whose limits along any path are bounded and whose loss terms are 0 there.
template <typename V>
FASTLOSS_HD_ALWAYS_INLINE V div_or_zero(V a, V b) {
  using O = Ops<V>;
  using S = typename O::scalar_t;
  const auto positive = O::gt(b, V(S(0)));
  return O::select(positive, a / O::select(positive, b, V(S(1))), V(S(0)));
}

template <typename V>
FASTLOSS_HD_ALWAYS_INLINE V sign_of(V x) {
  using O = Ops<V>;
  using S = typename O::scalar_t;
  const V zero(S(0)), one(S(1));
  return O::select(O::gt(x, zero), one, O::select(O::gt(zero, x), O::neg(one), zero));
}

// d(|a − b| / max(a, b)) into g_a and g_b, times g (ω of SIoU's shape cost; |x|' = sign(x), 0 at 0).
template <typename V>
FASTLOSS_HD_ALWAYS_INLINE void add_relative_difference_adjoint(V a, V b, V omega, V m, V g, V& g_a, V& g_b) {
  const V direct = g * sign_of(a - b) / m;
  g_a = g_a + direct;
  g_b = g_b - direct;
  add_max_adjoint(a, b, Ops<V>::neg(g * omega / m), g_a, g_b);
}

// mmdet's SIoU (see the top): the loss, and with kGrad the adjoints of the centre offsets, the
// enclosing sides and the sizes (the IoU's adjoint is the caller's −1; `scale` zeroes the gradient
// where the clamp holds). h_p, h_t are the heights + eps, as mmdet's shape cost takes them.
template <bool kGrad, typename V, typename S>
FASTLOSS_HD_ALWAYS_INLINE V siou(const Params<S>& prm, const Box<V>& p, const Box<V>& t, V w_p, V w_t, V h_p, V h_t,
                                 V cw, V ch, V iou, V& scale, V& g_dx, V& g_dy, V& g_cw, V& g_ch, V& g_wp, V& g_hp,
                                 V& g_wt, V& g_ht) {
  using O = Ops<V>;
  const V zero(S(0)), one(S(1)), two(S(2)), half(S(0.5)), eps(prm.eps);
  const V cw_s = O::max(cw, eps), ch_s = O::max(ch, eps);
  const V ox = (t.x1 + t.x2 - p.x1 - p.x2) * half + eps, oy = (t.y1 + t.y2 - p.y1 - p.y2) * half + eps;
  const V sigma2 = ox * ox + oy * oy, sigma = O::sqrt(sigma2);
  const V sin_x = O::abs(ox) / sigma, sin_y = O::abs(oy) / sigma;
  const auto use_y = O::gt(sin_x, V(S(0.707106781186547524)));
  const V s = O::select(use_y, sin_y, sin_x), root = O::sqrt(one - s * s), angle = two * s * root;
  const V sg = prm.mode == 1 ? one : O::neg(one), gam = sg * (angle - two);
  const V rx = ox / cw_s, ry = oy / ch_s, rho_x = rx * rx, rho_y = ry * ry;
  const V ex = O::exp(gam * rho_x), ey = O::exp(gam * rho_y);
  const V mw = O::max(w_p, w_t), mh = O::max(h_p, h_t);
  const V ow = O::abs(w_p - w_t) / mw, oh = O::abs(h_p - h_t) / mh;
  const V ew = O::exp(O::neg(ow)), eh = O::exp(O::neg(oh)), fw = one - ew, fh = one - eh;
  const V fw2 = fw * fw, fh2 = fh * fh;
  const V raw = one - iou + half * ((two - ex - ey) + fw2 * fw2 + fh2 * fh2);
  scale = O::select(O::gt(raw, two), zero, O::select(O::gt(zero, raw), zero, one));  // 1 − clamp(SIoU, −1, 1)
  if constexpr (kGrad) {
    // the distance cost, through γ (the angle) and ρ
    const V g_gam = O::neg(half) * (rho_x * ex + rho_y * ey);
    const V g_rho_x = O::neg(half) * gam * ex, g_rho_y = O::neg(half) * gam * ey;
    const V g_s = g_gam * sg * two * (one - two * s * s) / root;
    const V g_sx = O::select(use_y, zero, g_s), g_sy = O::select(use_y, g_s, zero), sigma3 = sigma2 * sigma;
    const V g_ox = g_sx * sign_of(ox) * oy * oy / sigma3 - g_sy * O::abs(oy) * ox / sigma3 + g_rho_x * two * rx / cw_s;
    const V g_oy = g_sy * sign_of(oy) * ox * ox / sigma3 - g_sx * O::abs(ox) * oy / sigma3 + g_rho_y * two * ry / ch_s;
    g_dx = g_dx - g_ox;  // o = −(centre_p − centre_t) + eps
    g_dy = g_dy - g_oy;
    g_cw = g_cw + O::select(O::gt(eps, cw), zero, O::neg(g_rho_x * two * rho_x / cw_s));
    g_ch = g_ch + O::select(O::gt(eps, ch), zero, O::neg(g_rho_y * two * rho_y / ch_s));
    // the shape cost: d(1 − e^{−ω})⁴/dω = 4(1 − e^{−ω})³·e^{−ω}, times ½
    add_relative_difference_adjoint(w_p, w_t, ow, mw, two * fw2 * fw * ew, g_wp, g_wt);
    add_relative_difference_adjoint(h_p, h_t, oh, mh, two * fh2 * fh * eh, g_hp, g_ht);
  }
  return O::min(O::max(raw, zero), two);
}

// mmdet's smooth EIoU (see the top): the loss; with kGrad the adjoint of the areas' sum into g_areas
// and the corners' adjoints through the extended intersection into gp, gt.
template <bool kGrad, typename V, typename S>
FASTLOSS_HD_ALWAYS_INLINE V smooth_eiou(const Params<S>& prm, const Box<V>& p, const Box<V>& t, V areas, V& g_areas,
                                        Box<V>& gp, Box<V>& gt) {
  using O = Ops<V>;
  const V one(S(1)), half(S(0.5)), eps(prm.eps), beta(prm.lambd);
  const V ex1 = O::min(p.x1, t.x1), ey1 = O::min(p.y1, t.y1);
  const V ix1 = O::max(p.x1, t.x1), iy1 = O::max(p.y1, t.y1), ix2 = O::min(p.x2, t.x2), iy2 = O::min(p.y2, t.y2);
  const V xmin = O::min(ix1, ix2), ymin = O::min(iy1, iy2), xmax = O::max(ix1, ix2), ymax = O::max(iy1, iy2);
  const V x2 = ix2 - ex1, y2 = iy2 - ey1, xn = xmin - ex1, yn = ymin - ey1;
  const V x1 = ix1 - ex1, ym = ymax - ey1, xm = xmax - ex1, y1 = iy1 - ey1;
  const V inter = x2 * y2 + xn * yn - x1 * ym - xm * y1, u = areas - inter + eps, l = one - inter / u;
  const auto smooth = O::gt(beta, l);
  if constexpr (kGrad) {
    const V g_l = O::select(smooth, l / beta, one);
    g_areas = g_l * inter / (u * u);
    // dl/dI with u's −I; 0 where the areas are infinite (as −1/u − I/u², not the NaN of inf/inf)
    const V g_i = O::select(is_infinite(u), V(S(0)), O::neg(g_l) * (u + inter) / (u * u));
    const V g_x2 = g_i * y2, g_y2 = g_i * x2, g_xn = g_i * yn, g_yn = g_i * xn;
    const V g_x1 = O::neg(g_i * ym), g_ym = O::neg(g_i * x1), g_xm = O::neg(g_i * y1), g_y1 = O::neg(g_i * xm);
    V g_ix1 = g_x1, g_ix2 = g_x2, g_iy1 = g_y1, g_iy2 = g_y2;
    add_min_adjoint(ix1, ix2, g_xn, g_ix1, g_ix2);
    add_max_adjoint(ix1, ix2, g_xm, g_ix1, g_ix2);
    add_min_adjoint(iy1, iy2, g_yn, g_iy1, g_iy2);
    add_max_adjoint(iy1, iy2, g_ym, g_iy1, g_iy2);
    add_max_adjoint(p.x1, t.x1, g_ix1, gp.x1, gt.x1);
    add_max_adjoint(p.y1, t.y1, g_iy1, gp.y1, gt.y1);
    add_min_adjoint(p.x2, t.x2, g_ix2, gp.x2, gt.x2);
    add_min_adjoint(p.y2, t.y2, g_iy2, gp.y2, gt.y2);
    add_min_adjoint(p.x1, t.x1, O::neg(g_x2 + g_xn + g_x1 + g_xm), gp.x1, gt.x1);
    add_min_adjoint(p.y1, t.y1, O::neg(g_y2 + g_yn + g_ym + g_y1), gp.y1, gt.y1);
  }
  return O::select(smooth, half * l * l / beta, l - half * beta);
}

// The share of an adjoint that goes to a where a > b in max(a, b): 1, ½ on a tie, else 0 (torch's rule).
template <typename V>
FASTLOSS_HD_ALWAYS_INLINE V max_share(V a, V b) {
  using O = Ops<V>;
  using S = typename O::scalar_t;
  return O::select(O::gt(a, b), V(S(1)), O::select(O::eq(a, b), V(S(0.5)), V(S(0))));
}

// mmdet's BoundedIoU, component prm.mode (see the top): the loss; with kGrad the adjoints of pred's
// corners into gp (the target's are 0).
template <bool kGrad, typename V, typename S>
FASTLOSS_HD_ALWAYS_INLINE V bounded_iou(const Params<S>& prm, const Box<V>& p, const Box<V>& t, Box<V>& gp) {
  using O = Ops<V>;
  const V zero(S(0)), one(S(1)), two(S(2)), half(S(0.5)), eps(prm.eps), beta(prm.lambd);
  const bool along_y = prm.mode == 1 || prm.mode == 3;
  const V p1 = along_y ? p.y1 : p.x1, p2 = along_y ? p.y2 : p.x2, t1 = along_y ? t.y1 : t.x1,
          t2 = along_y ? t.y2 : t.x2;
  const V w_t = t2 - t1;
  V comb, g_p1 = zero, g_p2 = zero;  // g_*: d comb / d p1, p2
  if (prm.mode <= 1) {               // the centre's offset, relative to the target's size
    const V d = half * (t1 + t2) - half * (p1 + p2), a = O::abs(d), den = w_t + two * a + eps,
            r = (w_t - two * a) / den;
    comb = one - O::max(r, zero);
    if constexpr (kGrad) {
      const V g_d = O::neg(max_share(r, zero)) * (O::neg(two) * (two * w_t + eps) / (den * den)) * sign_of(d);
      g_p1 = O::neg(half) * g_d;  // d = centre_t − centre_p
      g_p2 = g_p1;
    }
  } else {  // the size ratio
    const V w_p = p2 - p1, q1 = w_t / (w_p + eps), q2 = w_p / (w_t + eps);
    comb = one - O::min(q1, q2);
    if constexpr (kGrad) {
      const V g_w = O::neg(max_share(q2, q1) * (O::neg(w_t) / ((w_p + eps) * (w_p + eps))) +
                           max_share(q1, q2) / (w_t + eps));  // min's share is max's with the roles swapped
      g_p2 = g_w;
      g_p1 = O::neg(g_w);
    }
  }
  const auto smooth = O::gt(beta, comb);
  if constexpr (kGrad) {
    const V g_comb = O::select(smooth, comb / beta, one);
    if (along_y) {
      gp.y1 = gp.y1 + g_comb * g_p1;
      gp.y2 = gp.y2 + g_comb * g_p2;
    } else {
      gp.x1 = gp.x1 + g_comb * g_p1;
      gp.x2 = gp.x2 + g_comb * g_p2;
    }
  }
  return O::select(smooth, half * comb * comb / beta, comb - half * beta);
}

// Whose numbers the formulas give (see the top): where each peer puts eps, and how it takes
// inverted boxes.
template <typename V>
struct ConventionPolicy {
  bool repair;       // fastloss's own API: an inverted box is a zero-size box at its centre
  bool mmdet;        // mmdet's eps placement and clamps
  bool floor_union;  // mmdet's IoU and GIoU: max(union, eps), where the others add eps
  V area_shift;      // + eps on the heights in the areas (ultralytics, xyxy boxes)
  V aspect_shift;    // + eps on the heights in CIoU's aspect ratio and SIoU's shape cost

  template <typename S>
  FASTLOSS_HD_ALWAYS_INLINE static ConventionPolicy of(const Params<S>& prm) {
    const bool mmdet = prm.convention == kMmdet;
    const bool shift_heights = prm.convention == kUltralytics && prm.format == kXYXY;
    const V eps(prm.eps), zero(S(0));
    return {prm.convention == kTorchvision, mmdet, mmdet && (prm.kind == kIoU || prm.kind == kGIoU),
            shift_heights ? eps : zero, shift_heights || mmdet ? eps : zero};
  }
};

// What every kind reads: the corners, sizes, intersection, union, IoU and enclosing box of a pair.
template <typename V>
struct PairGeometry {
  Box<V> p, t;
  Repaired<V> fix[4];  // the repairs of p's and t's x and y intervals (fastloss's convention)
  V wp, hp, wt, ht;    // sizes, the heights as the peer's areas see them (+ area_shift)
  V iw_raw, ih_raw, iw, ih, inter, uni, u, iou;
  typename Ops<V>::Mask union_floored;
  V cw_raw, ch_raw, cw, ch;  // the enclosing box's sides (mmdet clamps them at 0)
};

template <typename V, typename S>
FASTLOSS_HD_ALWAYS_INLINE PairGeometry<V> measure(const Params<S>& prm, const ConventionPolicy<V>& pol,
                                                  const V (&p_in)[4], const V (&t_in)[4]) {
  using O = Ops<V>;
  const V zero(S(0)), eps(prm.eps);
  PairGeometry<V> g;
  g.p = to_corners(p_in, prm.format);
  g.t = to_corners(t_in, prm.format);
  if (pol.repair) {
    g.fix[0].apply(g.p.x1, g.p.x2);
    g.fix[1].apply(g.p.y1, g.p.y2);
    g.fix[2].apply(g.t.x1, g.t.x2);
    g.fix[3].apply(g.t.y1, g.t.y2);
  }
  const Box<V>&p = g.p, &t = g.t;
  // (Heights + eps where the peer adds it: a constant shift, the same derivative.)
  g.wp = p.x2 - p.x1;
  g.hp = p.y2 - p.y1 + pol.area_shift;
  g.wt = t.x2 - t.x1;
  g.ht = t.y2 - t.y1 + pol.area_shift;
  g.iw_raw = O::min(p.x2, t.x2) - O::max(p.x1, t.x1);
  g.ih_raw = O::min(p.y2, t.y2) - O::max(p.y1, t.y1);
  g.iw = O::max(g.iw_raw, zero);
  g.ih = O::max(g.ih_raw, zero);
  // (The target's area is fused into the sum explicitly: left to the compiler, which product it
  // fuses depends on inlining, and with it the union's last bit.)
  g.inter = g.iw * g.ih;
  g.uni = O::fma(g.wt, g.ht, g.wp * g.hp) - g.inter;
  g.union_floored = O::gt(eps, g.uni);
  g.u = pol.floor_union ? O::select(g.union_floored, eps, g.uni) : g.uni + eps;
  g.iou = g.inter / g.u;
  g.cw_raw = O::max(p.x2, t.x2) - O::min(p.x1, t.x1);
  g.ch_raw = O::max(p.y2, t.y2) - O::min(p.y1, t.y1);
  g.cw = pol.mmdet ? O::max(g.cw_raw, zero) : g.cw_raw;
  g.ch = pol.mmdet ? O::max(g.ch_raw, zero) : g.ch_raw;
  return g;
}

// The adjoints (for a unit upstream gradient) of the geometry's quantities, which a kind's term
// sets; back_to_corners takes them to the boxes. A term that works on the corners itself (BoundedIoU,
// smooth EIoU, CDIoU) adds to gp, gt directly.
template <typename V>
struct Adjoints {
  V g_iou, g_uni, g_cw, g_ch, g_dx, g_dy, g_wp, g_hp, g_wt, g_ht;
  V scale;  // a factor held constant (Focal-EIoU's IoU^γ), or 0 where a clamp holds
  Box<V> gp, gt;

  FASTLOSS_HD_ALWAYS_INLINE static Adjoints start() {
    using S = typename Ops<V>::scalar_t;
    const V zero(S(0)), one(S(1));
    return {
        Ops<V>::neg(one),        zero, zero, zero, zero, zero, zero, zero, zero, zero, one, {zero, zero, zero, zero},
        {zero, zero, zero, zero}};
  }
};

// IoU loss, mode linear / log / square.
template <typename V, typename S>
FASTLOSS_HD_ALWAYS_INLINE V iou_term(const Params<S>& prm, const ConventionPolicy<V>& pol, const PairGeometry<V>& g,
                                     Adjoints<V>& a) {
  using O = Ops<V>;
  const V zero(S(0)), one(S(1)), two(S(2)), floor(prm.aux_eps), iou = g.iou;
  if (prm.mode == kLog) {
    const auto clamped = O::gt(floor, iou);
    a.g_iou = O::select(clamped, zero, O::neg(one / O::select(clamped, one, iou)));
    return O::neg(O::log(O::max(iou, floor)));
  }
  // mmdet clamps IoU in every mode (zero gradient below the floor)
  const auto clamped = pol.mmdet ? O::gt(floor, iou) : O::gt(zero, one);
  const V iou_c = O::select(clamped, floor, iou);
  a.g_iou = O::select(clamped, zero, prm.mode == kSquare ? O::neg(two * iou_c) : O::neg(one));
  return prm.mode == kSquare ? one - iou_c * iou_c : one - iou_c;
}

// GIoU loss: 1 − IoU + (area(C) − union) / (area(C) + eps); mmdet's (a − u) / a with a = max(area(C),
// eps) and u the floored union.
template <bool kGrad, typename V, typename S>
FASTLOSS_HD_ALWAYS_INLINE V giou_term(const Params<S>& prm, const ConventionPolicy<V>& pol, const PairGeometry<V>& g,
                                      Adjoints<V>& a) {
  using O = Ops<V>;
  const V zero(S(0)), one(S(1)), eps(prm.eps), area_c = g.cw * g.ch;
  if (pol.mmdet) {
    const auto enclose_floored = O::gt(eps, area_c);
    const V c = O::select(enclose_floored, eps, area_c);
    if constexpr (kGrad) {
      const V g_c = O::select(enclose_floored, zero, g.u / (c * c));
      a.g_uni = O::neg(one / c);
      a.g_cw = g_c * g.ch;
      a.g_ch = g_c * g.cw;
    }
    return one - g.iou + (c - g.u) / c;
  }
  const V c = area_c + eps;
  if constexpr (kGrad) {
    const V g_area_c = (g.uni + eps) / (c * c);
    a.g_uni = O::neg(one / c);
    a.g_cw = g_area_c * g.ch;
    a.g_ch = g_area_c * g.cw;
  }
  return one - g.iou + (area_c - g.uni) / c;
}

// CDIoU loss: 1 − IoU + λ·(sum of the corner distances) / (4·sqrt(c²)); its adjoint of c² into g_c2.
template <bool kGrad, typename V, typename S>
FASTLOSS_HD_ALWAYS_INLINE V cdiou_term(const Params<S>& prm, const PairGeometry<V>& g, V c2, V& g_c2, Adjoints<V>& a) {
  using O = Ops<V>;
  const V one(S(1)), half(S(0.5)), diag = O::sqrt(c2), lambd(prm.lambd);
  const Box<V>&p = g.p, &t = g.t;
  const V ex1 = p.x1 - t.x1, ex2 = p.x2 - t.x2, ey1 = p.y1 - t.y1, ey2 = p.y2 - t.y2;
  const V d1 = O::sqrt(ex1 * ex1 + ey1 * ey1), d2 = O::sqrt(ex2 * ex2 + ey1 * ey1);
  const V d3 = O::sqrt(ex2 * ex2 + ey2 * ey2), d4 = O::sqrt(ex1 * ex1 + ey2 * ey2);
  const V sum = d1 + d2 + d3 + d4, quarter_per_diag = V(S(0.25)) / diag;
  if constexpr (kGrad) {
    const V g_sum = lambd * quarter_per_diag;
    g_c2 = O::neg(g_sum * sum) * half / c2;  // d(1/diag)/d c2 = −1 / (2 diag c2)
    const V g_ex1 = g_sum * (div_or_zero(ex1, d1) + div_or_zero(ex1, d4));
    const V g_ex2 = g_sum * (div_or_zero(ex2, d2) + div_or_zero(ex2, d3));
    const V g_ey1 = g_sum * (div_or_zero(ey1, d1) + div_or_zero(ey1, d2));
    const V g_ey2 = g_sum * (div_or_zero(ey2, d3) + div_or_zero(ey2, d4));
    a.gp = {g_ex1, g_ey1, g_ex2, g_ey2};
    a.gt = {O::neg(g_ex1), O::neg(g_ey1), O::neg(g_ex2), O::neg(g_ey2)};
  }
  return one - g.iou + lambd * sum * quarter_per_diag;
}

// CIoU's α·v on the DIoU loss `loss` (α held constant); mmdet's 1 − clamp(CIoU, −1, 1).
template <bool kGrad, typename V, typename S>
FASTLOSS_HD_ALWAYS_INLINE V ciou_term(const Params<S>& prm, const ConventionPolicy<V>& pol, const PairGeometry<V>& g,
                                      V loss, Adjoints<V>& a) {
  using O = Ops<V>;
  const V zero(S(0)), one(S(1)), two(S(2)), half(S(0.5));
  const V k(S(0.405284734569351085775517852838911));  // 4 / π²
  const V wt = g.wt, wp = g.wp;
  // atan(w_t/h_t) − atan(w_p/h_p) as one atan2 (w, h ≥ 0): exactly 0 for equal aspect ratios.
  // A point box (w = h = 0) has the angle atan2(0, 0) = 0, as (0, 1) has: without that the
  // product form would make its difference with any box 0.
  const V ht_s = g.ht - pol.area_shift + pol.aspect_shift, hp_s = g.hp - pol.area_shift + pol.aspect_shift;
  const auto point_t = O::eq(O::abs(wt) + O::abs(ht_s), zero), point_p = O::eq(O::abs(wp) + O::abs(hp_s), zero);
  const V ht_a = O::select(point_t, one, ht_s), hp_a = O::select(point_p, one, hp_s);
  V d;
  if (pol.repair) {  // w, h >= 0: both angles in [0, π/2]
    d = atan2_right_half(wt * hp_a - wp * ht_a, ht_a * hp_a + wt * wp);
  } else {  // any signs: atan(w/h) is the angle of sign(h)·(h, w) (sign(0) = 1), in [−π/2, π/2]
    const V st = O::select(O::gt(zero, ht_s), O::neg(one), one), sp = O::select(O::gt(zero, hp_s), O::neg(one), one);
    d = atan2_right_half(st * wt, O::abs(ht_s)) - atan2_right_half(sp * wp, O::abs(hp_s));
  }
  const V v = k * d * d;
  // α = v / (1 − IoU + v): 0/0 for identical boxes (mmdet's has no eps there), where α·v → 0 and
  // its gradient too: that limit, never a NaN
  V alpha = div_or_zero(v, one - g.iou + v + V(prm.aux_eps));
  if (pol.mmdet) alpha = O::select(O::gt(g.iou, half), alpha, zero);
  loss = loss + alpha * v;
  if (pol.mmdet) {  // 1 − clamp(CIoU, −1, 1): no gradient where the clamp holds (loss ≥ 0 already)
    a.scale = O::select(O::gt(loss, two), zero, one);
    loss = O::min(loss, two);
  }
  if constexpr (kGrad) {
    const V g_theta_t = two * k * d * alpha;  // d(α·v)/dθ_t, α constant; θ_p gets the opposite
    const V rp = wp * wp + hp_s * hp_s, rt = wt * wt + ht_s * ht_s;
    a.g_wp = O::neg(div_or_zero(g_theta_t * hp_s, rp));
    a.g_hp = div_or_zero(g_theta_t * wp, rp);
    a.g_wt = div_or_zero(g_theta_t * ht_s, rt);
    a.g_ht = O::neg(div_or_zero(g_theta_t * wt, rt));
  }
  return loss;
}

// EIoU's size terms on the DIoU loss `loss`; Focal-EIoU's IoU^γ weight on the sum.
template <bool kGrad, typename V, typename S>
FASTLOSS_HD_ALWAYS_INLINE V eiou_term(const Params<S>& prm, const PairGeometry<V>& g, V loss, Adjoints<V>& a) {
  using O = Ops<V>;
  const V two(S(2)), eps(prm.eps);
  const V cw2 = g.cw * g.cw + eps, ch2 = g.ch * g.ch + eps, dw = g.wp - g.wt, dh = g.hp - g.ht;
  loss = loss + dw * dw / cw2 + dh * dh / ch2;
  if constexpr (kGrad) {
    a.g_wp = two * dw / cw2;
    a.g_wt = O::neg(a.g_wp);
    a.g_hp = two * dh / ch2;
    a.g_ht = O::neg(a.g_hp);
    a.g_cw = O::neg(two * g.cw * dw * dw / (cw2 * cw2));
    a.g_ch = O::neg(two * g.ch * dh * dh / (ch2 * ch2));
  }
  if (prm.kind == kFocalEIoU) {
    a.scale = pow_gamma(g.iou, prm.gamma, prm.gamma_kind);
    loss = a.scale * loss;
  }
  return loss;
}

// The centre-distance family on c² = cw² + ch² + eps: DIoU (1 − IoU + ρ²/c²) and CIoU, EIoU and
// Focal-EIoU on it; CDIoU's corner distances in place of ρ.
template <bool kGrad, typename V, typename S>
FASTLOSS_HD_ALWAYS_INLINE V centre_distance_term(const Params<S>& prm, const ConventionPolicy<V>& pol,
                                                 const PairGeometry<V>& g, Adjoints<V>& a) {
  using O = Ops<V>;
  const V zero(S(0)), one(S(1)), two(S(2)), half(S(0.5)), eps(prm.eps);
  const Box<V>&p = g.p, &t = g.t;
  const V c2 = g.cw * g.cw + g.ch * g.ch + eps;
  V loss, g_c2 = zero;
  if (prm.kind == kCDIoU) {
    loss = cdiou_term<kGrad>(prm, g, c2, g_c2, a);
  } else {
    const V dx = half * (p.x2 + p.x1) - half * (t.x1 + t.x2), dy = half * (p.y2 + p.y1) - half * (t.y1 + t.y2);
    const V rho2 = dx * dx + dy * dy;
    loss = one - g.iou + rho2 / c2;
    if constexpr (kGrad) {
      a.g_dx = two * dx / c2;
      a.g_dy = two * dy / c2;
      g_c2 = O::neg(rho2 / (c2 * c2));
    }
    if (prm.kind == kCIoU) {
      loss = ciou_term<kGrad>(prm, pol, g, loss, a);
    } else if (prm.kind == kEIoU || prm.kind == kFocalEIoU) {
      loss = eiou_term<kGrad>(prm, g, loss, a);
    }
  }
  a.g_cw = a.g_cw + two * g.cw * g_c2;
  a.g_ch = a.g_ch + two * g.ch * g_c2;
  return loss;
}

// The adjoints of the geometry back to the boxes' coordinates in the caller's format: dp, dt.
template <typename V, typename S>
FASTLOSS_HD_ALWAYS_INLINE void back_to_corners(const Params<S>& prm, const ConventionPolicy<V>& pol,
                                               const PairGeometry<V>& g, Adjoints<V>& a, V (&dp)[4], V (&dt)[4]) {
  using O = Ops<V>;
  const V zero(S(0)), half(S(0.5));
  const Box<V>&p = g.p, &t = g.t;
  Box<V>&gp = a.gp, &gt = a.gt;
  if (pol.mmdet) {  // through the clamp at 0
    a.g_cw = O::select(O::gt(zero, g.cw_raw), zero, a.g_cw);
    a.g_ch = O::select(O::gt(zero, g.ch_raw), zero, a.g_ch);
  }
  // BoundedIoU sent pred's adjoints to the corners itself and uses none of these terms (skipped: an
  // infinite side must not meet a zero adjoint, 0·inf = NaN).
  if (prm.kind != kBoundedIoU) {
    // Back through IoU = inter / (union + eps), union = area_p + area_t − inter.
    a.g_uni = a.g_uni - a.g_iou * g.iou / g.u;
    if (pol.floor_union) a.g_uni = O::select(g.union_floored, zero, a.g_uni);
    // (smooth EIoU's extended intersection has sent its adjoints to the corners already)
    const V g_inter = prm.kind == kSmoothEIoU ? zero : a.g_iou / g.u - a.g_uni;
    a.g_wp = a.g_wp + a.g_uni * g.hp;
    a.g_hp = a.g_hp + a.g_uni * g.wp;
    a.g_wt = a.g_wt + a.g_uni * g.ht;
    a.g_ht = a.g_ht + a.g_uni * g.wt;
    // The intersection: iw = max(min(x2) − max(x1), 0), and the enclosing box: cw = max(x2) − min(x1).
    const V g_iw = O::select(O::gt(g.iw_raw, zero), g_inter * g.ih, zero);
    const V g_ih = O::select(O::gt(g.ih_raw, zero), g_inter * g.iw, zero);
    add_min_adjoint(p.x2, t.x2, g_iw, gp.x2, gt.x2);
    add_max_adjoint(p.x1, t.x1, O::neg(g_iw), gp.x1, gt.x1);
    add_min_adjoint(p.y2, t.y2, g_ih, gp.y2, gt.y2);
    add_max_adjoint(p.y1, t.y1, O::neg(g_ih), gp.y1, gt.y1);
    add_max_adjoint(p.x2, t.x2, a.g_cw, gp.x2, gt.x2);
    add_min_adjoint(p.x1, t.x1, O::neg(a.g_cw), gp.x1, gt.x1);
    add_max_adjoint(p.y2, t.y2, a.g_ch, gp.y2, gt.y2);
    add_min_adjoint(p.y1, t.y1, O::neg(a.g_ch), gp.y1, gt.y1);
  }
  // Centres and sizes.
  const V hdx = half * a.g_dx, hdy = half * a.g_dy;
  gp = {gp.x1 + hdx - a.g_wp, gp.y1 + hdy - a.g_hp, gp.x2 + hdx + a.g_wp, gp.y2 + hdy + a.g_hp};
  gt = {gt.x1 - hdx - a.g_wt, gt.y1 - hdy - a.g_ht, gt.x2 - hdx + a.g_wt, gt.y2 - hdy + a.g_ht};
  // Focal-EIoU's constant weight, the repair of inverted boxes, the caller's format.
  const V scale = a.scale;
  gp = {scale * gp.x1, scale * gp.y1, scale * gp.x2, scale * gp.y2};
  gt = {scale * gt.x1, scale * gt.y1, scale * gt.x2, scale * gt.y2};
  if (pol.repair) {
    g.fix[0].adjoint(gp.x1, gp.x2);
    g.fix[1].adjoint(gp.y1, gp.y2);
    g.fix[2].adjoint(gt.x1, gt.x2);
    g.fix[3].adjoint(gt.y1, gt.y2);
  }
  corners_grad_to_format(gp, prm.format, dp);
  corners_grad_to_format(gt, prm.format, dt);
}

// Loss of the pair (p, t), both in the caller's format; with kGrad also d loss / d p and d t: the
// geometry, the kind's term, then back to the boxes.
template <bool kGrad, typename V, typename S>
FASTLOSS_HD_ALWAYS_INLINE V pair_loss(const Params<S>& prm, const V (&p_in)[4], const V (&t_in)[4], V (&dp)[4],
                                      V (&dt)[4]) {
  const auto pol = ConventionPolicy<V>::of(prm);
  const PairGeometry<V> g = measure(prm, pol, p_in, t_in);
  Adjoints<V> a = Adjoints<V>::start();
  V loss;
  switch (prm.kind) {
    case kIoU: loss = iou_term(prm, pol, g, a); break;
    case kGIoU: loss = giou_term<kGrad>(prm, pol, g, a); break;
    case kSIoU: {
      const V hp = g.hp + pol.aspect_shift - pol.area_shift, ht = g.ht + pol.aspect_shift - pol.area_shift;
      loss = siou<kGrad>(prm, g.p, g.t, g.wp, g.wt, hp, ht, g.cw, g.ch, g.iou, a.scale, a.g_dx, a.g_dy, a.g_cw, a.g_ch,
                         a.g_wp, a.g_hp, a.g_wt, a.g_ht);
      break;
    }
    case kBoundedIoU:
      a.g_iou = V(S(0));  // its own terms: pred's corners' adjoints come back directly
      loss = bounded_iou<kGrad>(prm, g.p, g.t, a.gp);
      break;
    case kSmoothEIoU:
      a.g_iou = V(S(0));  // its own intersection: the corners' adjoints come back directly
      loss = smooth_eiou<kGrad>(prm, g.p, g.t, g.wp * g.hp + g.wt * g.ht, a.g_uni, a.gp, a.gt);
      break;
    default: loss = centre_distance_term<kGrad>(prm, pol, g, a); break;
  }
  if constexpr (kGrad) back_to_corners(prm, pol, g, a, dp, dt);
  return loss;
}

}  // namespace fastloss::box_iou
