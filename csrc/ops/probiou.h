#pragma once
// Host side of fastloss::probiou (math: math/probiou.h): Gaussian boxes (N, 5) and (M, 5), (x, y, a, b, c),
// every pair (N, M) or the aligned ones (N,), through the pair loops of ops/box_pairs.h.
#include "math/probiou.h"
#include "ops/box_pairs.h"

namespace fastloss::probiou {

struct Op {
  static constexpr const char* kOp = "fastloss::probiou";
  using Math = PairMath;
};

// fastloss::probiou_xywhr: xywhr boxes (N, 5) and (M, 5), each pair's Gaussians made in the kernel
// (the aligned use: pairwise, each box's would be made M or N times), param the floor.
struct XywhrOp {
  static constexpr const char* kOp = "fastloss::probiou_xywhr";
  static constexpr const char* kParam = "floor";
  using Math = XywhrPairMath;
};

}  // namespace fastloss::probiou
