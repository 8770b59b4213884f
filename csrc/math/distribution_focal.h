#pragma once
// Distribution Focal Loss — Li et al., "Generalized Focal Loss: Learning Qualified and Distributed
// Bounding Boxes for Dense Object Detection", NeurIPS 2020, arXiv 2006.04388. A row of n bin logits
// x and a continuous target t ∈ [0, n − 1] (a box side in bin units); l = ⌊t⌋, r = l + 1,
// w_l = r − t, w_r = t − l (mmdet's weights):
//   loss = w_l·CE(x, l) + w_r·CE(x, r) = lse(x) − w_l·x_l − w_r·x_r          (w_l + w_r = 1)
//   dloss/dx_c = softmax(x)_c − w_l·[c = l] − w_r·[c = r]
// t = n − 1 has w_r = 0 and no bin r: that term is dropped (mmdet would index bin n). An optional
// clamp of t to [0, t_max] first is ultralytics' DFLoss (t_max = reg_max − 1 − 0.01).
#include <cstdint>
#include "math/ops.h"

namespace fastloss::distribution_focal {

template <typename S>
struct Bins {
  int64_t left;       // l, always a valid bin (NaN or out-of-range targets are caught before the kernels;
                      // here they only pick a safe bin, and a NaN target still gives a NaN loss)
  int64_t right;      // r, or -1 where it is past the last bin
  S w_left, w_right;  // w_right = 0 without a right bin
};

// target_max < 0: no clamp.
template <typename S>
FASTLOSS_HD Bins<S> bins(S t, int64_t n, S target_max) {
  if (target_max >= S(0)) t = t < S(0) ? S(0) : (t > target_max ? target_max : t);
  const int64_t l = t >= S(0) ? (t < S(n - 1) ? static_cast<int64_t>(t) : n - 1) : 0;
  const bool has_right = l + 1 < n;
  return {l, has_right ? l + 1 : -1, S(l + 1) - t, has_right ? t - S(l) : S(0)};
}

// The loss of a row from its lse and its two target bins' logits (x_right: any finite value, e.g. 0,
// where there is no right bin: its weight is 0).
template <typename V>
FASTLOSS_HD V row_loss(V lse, V w_left, V x_left, V w_right, V x_right) {
  return lse - w_left * x_left - w_right * x_right;
}

}  // namespace fastloss::distribution_focal
