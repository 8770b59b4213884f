#pragma once
// Host side of fastloss::rotated_box_iou (math: math/rotated_iou.h): rows (N, 6) and (M, 6) of
// (x, y, w, h, cos, sin), every pair (N, M) or the aligned ones (N,), through ops/box_pairs.h's loops.
#include "math/rotated_iou.h"
#include "ops/box_pairs.h"

namespace fastloss::rotated_iou {

struct Op {
  static constexpr const char* kOp = "fastloss::rotated_box_iou";
  using Math = PairMath;
};

}  // namespace fastloss::rotated_iou
