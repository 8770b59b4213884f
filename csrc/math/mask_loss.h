#pragma once
// The YOLACT/YOLOv8 instance-mask loss of one positive anchor (Bolya et al., YOLACT, arXiv
// 1904.02689; ultralytics' v8SegmentationLoss): its mask logit at pixel p is the coefficients'
// combination of the prototypes, z(p) = Σₖ cₖ·Pₖ(p); the loss is the BCE with logits of z against the
// target mask t, kept inside the target box (crop), averaged over all H·W pixels and divided by the
// box's normalised area:
//   L = Σ_{p ∈ box} [softplus(z) − z·t] / (H·W) / area,   ∂L/∂z(p) = (σ(z) − t) / (H·W) / area in the box.
// The box keeps column x where x1 ≤ x < x2 and row y where y1 ≤ y < y2 (ultralytics' crop_mask), so
// the kernels visit the box's pixels only. Written once against Ops<V> (math/ops.h), for CPU SIMD
// and for CUDA.
#include <cmath>
#include <cstdint>
#include "math/ops.h"

namespace fastloss::mask_loss {

// The pixel indices i ∈ [0, n) with lo ≤ i < hi, as [begin, end): empty for a NaN bound.
struct Span {
  int64_t begin, end;
};

template <typename S>
FASTLOSS_HD int64_t first_index_at_least(S x, int64_t n) {
  if (x <= S(0)) return 0;
  if (!(x < static_cast<S>(n))) return n;  // (n, or a NaN: no index is ≥ it, and none < it)
  return static_cast<int64_t>(std::ceil(x));
}

template <typename S>
FASTLOSS_HD Span crop_span(S lo, S hi, int64_t n) {
  if (lo != lo || hi != hi) return {0, 0};
  const int64_t begin = first_index_at_least(lo, n), end = first_index_at_least(hi, n);
  return {begin, end > begin ? end : begin};
}

// softplus(z) − z·t (torch's binary_cross_entropy_with_logits) and, with kGrad, σ(z) − t.
template <bool kGrad, typename V>
FASTLOSS_HD_ALWAYS_INLINE V pixel_loss(V z, V t, V& grad) {
  using O = Ops<V>;
  using S = typename O::scalar_t;
  const Logistic<V> s = logistic(z);
  if constexpr (kGrad) grad = s.sigmoid - t;
  return O::max(z, V(S(0))) - z * t + s.log1p_e;
}

// The target at a pixel: the mask's value m (a 0/1 or soft mask: marker < 0), or 1 where m equals
// the marker (overlapping masks, one image's objects numbered 1, 2, … in one plane) and 0 elsewhere.
template <typename V, typename S>
FASTLOSS_HD_ALWAYS_INLINE V target_value(V m, S marker) {
  using O = Ops<V>;
  if (marker < S(0)) return m;
  return O::select(O::eq(m, V(marker)), V(S(1)), V(S(0)));
}

// σ(z) − t alone.
template <typename V>
FASTLOSS_HD_ALWAYS_INLINE V pixel_grad(V z, V t) {
  return sigmoid(z) - t;
}

}  // namespace fastloss::mask_loss
