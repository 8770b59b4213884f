#pragma once
// Pairwise box metrics M(a, b) for every box a of one set and b of another (the N × M matrices of
// assigners and matchers), or for aligned pairs. Boxes become corners (x1, y1, x2, y2) from the
// caller's format; w, h, the area w·h and the centre come from each box; the intersection's sides
// are clamped at 0; C is the smallest enclosing box (sides clamped at 0):
//   IoU   Jaccard: inter / union, union = area_a + area_b − inter
//   IoF   inter / area_a (intersection over the first box's area; mmdet's "iof")
//   GIoU  Rezatofighi et al., arXiv 1902.09630: IoU − (area(C) − union) / area(C)
//   DIoU  Zheng et al., arXiv 1911.08287: IoU − ρ²/c², ρ the centre distance, c² = cw² + ch² + eps
//   CIoU  same paper: DIoU − α·v, v = (4/π²)(atan(w_a/h_a) − atan(w_b/h_b))², α = v / (1 − IoU + v + eps),
//         α held constant (no gradient through it), as torchvision
//   EIoU  Zhang et al., arXiv 2101.08158: DIoU − (w_a − w_b)²/(cw² + eps) − (h_a − h_b)²/(ch² + eps)
// eps where each peer puts it (`convention`):
//   kTorchvision  torchvision.ops.box_iou / generalized_box_iou / distance_box_iou / complete_box_iou:
//                 none in IoU, IoF and GIoU (0/0 is NaN, as theirs), eps only in c² and α (above)
//   kMmdet        mmdet's bbox_overlaps: union (or area_a for IoF) and area(C) floored at eps
// Boxes are taken as given (an inverted box has a negative side and area), as both peers do.
// Per-box quantities (the fields below, CIoU's angle included) are computed once per box, the pair
// math from them. Reverse mode for the corners of both boxes: min/max ties split the adjoint equally
// and the clamps at 0 pass it where the side is ≥ 0 (torch's rules, so gradients equal autograd's on
// the peers' formulas). Written once against Ops<V> (math/ops.h), for CPU SIMD and for CUDA.
#include "math/box_iou.h"

namespace fastloss::box_matrix {

using box_iou::kCXCYWH;
using box_iou::kXYWH;
using box_iou::kXYXY;

// Codes shared with python/fastloss/box_matrix.py.
enum Kind : int { kIoU = 0, kGIoU = 1, kDIoU = 2, kCIoU = 3, kEIoU = 4, kIoF = 5 };
enum Convention : int { kTorchvision = 0, kMmdet = 1 };

// A box's quantities, as kFields values (a structure of arrays on the host and the device).
enum Field : int { kX1 = 0, kY1, kX2, kY2, kW, kH, kArea, kCX, kCY, kAngle, kNaN, kFields };

template <typename S>
struct Params {
  int kind, convention;
  S eps;
};

// The fields of one box given in `format` (scalar math; CIoU's angle only when `angle`).
template <typename S>
FASTLOSS_HD void box_fields(const S (&b)[4], int format, bool angle, S (&f)[kFields]) {
  if (format == kXYWH) {
    f[kX1] = b[0], f[kY1] = b[1], f[kX2] = b[0] + b[2], f[kY2] = b[1] + b[3], f[kW] = b[2], f[kH] = b[3];
    f[kCX] = (f[kX1] + f[kX2]) / S(2), f[kCY] = (f[kY1] + f[kY2]) / S(2);
  } else if (format == kCXCYWH) {
    const S hw = b[2] / S(2), hh = b[3] / S(2);
    f[kX1] = b[0] - hw, f[kY1] = b[1] - hh, f[kX2] = b[0] + hw, f[kY2] = b[1] + hh, f[kW] = b[2], f[kH] = b[3];
    f[kCX] = b[0], f[kCY] = b[1];
  } else {
    f[kX1] = b[0], f[kY1] = b[1], f[kX2] = b[2], f[kY2] = b[3], f[kW] = b[2] - b[0], f[kH] = b[3] - b[1];
    f[kCX] = (b[0] + b[2]) / S(2), f[kCY] = (b[1] + b[3]) / S(2);
  }
  f[kArea] = f[kW] * f[kH];
  f[kAngle] = angle ? math::atan(f[kW] / f[kH]) : S(0);  // ±π/2 at h = 0; NaN for 0/0, as torchvision
  // NaN when a coordinate is NaN, else 0: added to every pair's metric (see pair_metric)
  f[kNaN] = b[0] != b[0] || b[1] != b[1] || b[2] != b[2] || b[3] != b[3] ? b[0] + b[1] + b[2] + b[3] : S(0);
}

// Box r of (rows, 4) boxes of scalar_t into field array f (kFields × rows): the one per-box pass.
template <typename scalar_t, typename S>
FASTLOSS_HD void write_box_fields(const scalar_t* in, int64_t r, int64_t rows, int format, bool angle, S* f) {
  const S b[4] = {static_cast<S>(in[r * 4]), static_cast<S>(in[r * 4 + 1]), static_cast<S>(in[r * 4 + 2]),
                  static_cast<S>(in[r * 4 + 3])};
  S v[kFields];
  box_fields(b, format, angle, v);
  for (int k = 0; k < kFields; ++k) f[k * rows + r] = v[k];
}

// A box's summed corner gradients (x1, y1, x2, y2) into its format, written to out[0..3].
template <typename S>
FASTLOSS_HD void store_box_grad(const S (&corners)[4], int format, S* out) {
  S g[4];
  box_iou::corners_grad_to_format(box_iou::Box<S>{corners[0], corners[1], corners[2], corners[3]}, format, g);
  for (int c = 0; c < 4; ++c) out[c] = g[c];
}

// x clamped at 0 passes its adjoint where x ≥ 0 (torch's clamp(min=0)); a NaN side passes it too.
template <typename V>
FASTLOSS_HD_ALWAYS_INLINE V through_clamp(V x, V g) {
  using O = Ops<V>;
  using S = typename O::scalar_t;
  return O::select(O::gt(V(S(0)), x), V(S(0)), g);
}

// The adjoint g of max(x, eps) (mmdet's floors) added to x's, or all of it without the floor.
template <typename V>
FASTLOSS_HD_ALWAYS_INLINE void floor_adjoint(bool floored, V x, V eps, V g, V& g_x, V& g_eps) {
  if (floored) {
    box_iou::add_max_adjoint(x, eps, g, g_x, g_eps);
  } else {
    g_x = g_x + g;
  }
}

// M(a, b) from the two boxes' fields; with kGrad also g · dM/d(corners) of a and b (x1, y1, x2, y2),
// added to ga and gb (g: the upstream gradient of this pair).
template <bool kGrad, typename V, typename S>
FASTLOSS_HD_ALWAYS_INLINE V pair_metric(const Params<S>& prm, const V (&a)[kFields], const V (&b)[kFields], V g,
                                        V (&ga)[4], V (&gb)[4]) {
  using O = Ops<V>;
  const V zero(S(0)), one(S(1)), two(S(2)), half(S(0.5)), eps(prm.eps);
  const bool mmdet = prm.convention == kMmdet, iof = prm.kind == kIoF;
  const bool enclosing = prm.kind != kIoU && !iof;
  const V ix1 = O::max(a[kX1], b[kX1]), iy1 = O::max(a[kY1], b[kY1]);
  const V ix2 = O::min(a[kX2], b[kX2]), iy2 = O::min(a[kY2], b[kY2]);
  const V iw_raw = ix2 - ix1, ih_raw = iy2 - iy1;
  const V iw = O::max(iw_raw, zero), ih = O::max(ih_raw, zero);
  const V inter = iw * ih;
  const V den_raw = iof ? a[kArea] : a[kArea] + b[kArea] - inter;
  const V den = mmdet ? O::max(den_raw, eps) : den_raw;
  const V iou = inter / den;
  // The enclosing box (GIoU and the centre-distance family).
  V cw_raw = zero, ch_raw = zero, cw = zero, ch = zero;
  if (enclosing) {
    cw_raw = O::max(a[kX2], b[kX2]) - O::min(a[kX1], b[kX1]);
    ch_raw = O::max(a[kY2], b[kY2]) - O::min(a[kY1], b[kY1]);
    cw = O::max(cw_raw, zero), ch = O::max(ch_raw, zero);
  }
  // (a NaN coordinate of either box makes the pair NaN, as in torch: max/min above keep only a's)
  V metric = iou + (a[kNaN] + b[kNaN]);
  V g_den = zero, g_cw = zero, g_ch = zero, g_wa = zero, g_ha = zero, g_wb = zero, g_hb = zero;
  V g_dx = zero, g_dy = zero;
  if (prm.kind == kGIoU) {
    const V area_c_raw = cw * ch, area_c = mmdet ? O::max(area_c_raw, eps) : area_c_raw;
    metric = metric - (area_c - den) / area_c;
    if constexpr (kGrad) {
      g_den = g / area_c;
      V g_area_c = zero, unused = zero;
      floor_adjoint(mmdet, area_c_raw, eps, O::neg(g * den / (area_c * area_c)), g_area_c, unused);
      g_cw = g_area_c * ch;
      g_ch = g_area_c * cw;
    }
  } else if (enclosing) {  // the centre-distance family
    const V c2 = cw * cw + ch * ch + eps;
    const V dx = a[kCX] - b[kCX], dy = a[kCY] - b[kCY], rho2 = dx * dx + dy * dy;
    metric = metric - rho2 / c2;
    V g_c2 = zero;
    if constexpr (kGrad) {
      g_dx = O::neg(g * two * dx / c2);
      g_dy = O::neg(g * two * dy / c2);
      g_c2 = g * rho2 / (c2 * c2);
    }
    if (prm.kind == kCIoU) {
      const V k(S(0.405284734569351085775517852838911));  // 4 / π²
      const V d = a[kAngle] - b[kAngle], v = k * (d * d);
      const V alpha = v / (one - iou + v + eps);
      metric = metric - alpha * v;
      if constexpr (kGrad) {
        // d atan(w/h) = (h dw − w dh) / (w² + h²); α constant
        const V g_d = O::neg(g * alpha * two * k * d);
        const V ra = a[kW] * a[kW] + a[kH] * a[kH], rb = b[kW] * b[kW] + b[kH] * b[kH];
        g_wa = box_iou::div_or_zero(g_d * a[kH], ra);
        g_ha = O::neg(box_iou::div_or_zero(g_d * a[kW], ra));
        g_wb = O::neg(box_iou::div_or_zero(g_d * b[kH], rb));
        g_hb = box_iou::div_or_zero(g_d * b[kW], rb);
      }
    } else if (prm.kind == kEIoU) {
      const V cw2 = cw * cw + eps, ch2 = ch * ch + eps, dw = a[kW] - b[kW], dh = a[kH] - b[kH];
      metric = metric - dw * dw / cw2 - dh * dh / ch2;
      if constexpr (kGrad) {
        g_wa = O::neg(g * two * dw / cw2), g_wb = O::neg(g_wa);
        g_ha = O::neg(g * two * dh / ch2), g_hb = O::neg(g_ha);
        g_cw = g * two * cw * dw * dw / (cw2 * cw2);
        g_ch = g * two * ch * dh * dh / (ch2 * ch2);
      }
    }
    if constexpr (kGrad) {
      g_cw = g_cw + two * cw * g_c2;
      g_ch = g_ch + two * ch * g_c2;
    }
  }
  if constexpr (kGrad) {
    // IoU = inter / den (GIoU's term added to den's adjoint above), through mmdet's floor
    V g_den_raw = zero, unused = zero;
    floor_adjoint(mmdet, den_raw, eps, g_den - g * iou / den, g_den_raw, unused);
    const V g_inter = g / den - (iof ? zero : g_den_raw);
    // the areas in den (the union, or a's area for IoF)
    g_wa = g_wa + g_den_raw * a[kH], g_ha = g_ha + g_den_raw * a[kW];
    if (!iof) g_wb = g_wb + g_den_raw * b[kH], g_hb = g_hb + g_den_raw * b[kW];
    const V g_iw = through_clamp(iw_raw, g_inter * ih), g_ih = through_clamp(ih_raw, g_inter * iw);
    box_iou::add_min_adjoint(a[kX2], b[kX2], g_iw, ga[2], gb[2]);
    box_iou::add_max_adjoint(a[kX1], b[kX1], O::neg(g_iw), ga[0], gb[0]);
    box_iou::add_min_adjoint(a[kY2], b[kY2], g_ih, ga[3], gb[3]);
    box_iou::add_max_adjoint(a[kY1], b[kY1], O::neg(g_ih), ga[1], gb[1]);
    if (enclosing) {
      g_cw = through_clamp(cw_raw, g_cw), g_ch = through_clamp(ch_raw, g_ch);
      box_iou::add_max_adjoint(a[kX2], b[kX2], g_cw, ga[2], gb[2]);
      box_iou::add_min_adjoint(a[kX1], b[kX1], O::neg(g_cw), ga[0], gb[0]);
      box_iou::add_max_adjoint(a[kY2], b[kY2], g_ch, ga[3], gb[3]);
      box_iou::add_min_adjoint(a[kY1], b[kY1], O::neg(g_ch), ga[1], gb[1]);
    }
    // sizes (w = x2 − x1) and centres ((x1 + x2) / 2)
    const V hdx = half * g_dx, hdy = half * g_dy;
    ga[0] = ga[0] - g_wa + hdx, ga[2] = ga[2] + g_wa + hdx, ga[1] = ga[1] - g_ha + hdy, ga[3] = ga[3] + g_ha + hdy;
    gb[0] = gb[0] - g_wb - hdx, gb[2] = gb[2] + g_wb - hdx, gb[1] = gb[1] - g_hb - hdy, gb[3] = gb[3] + g_hb - hdy;
  }
  return metric;
}

}  // namespace fastloss::box_matrix
