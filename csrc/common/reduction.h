#pragma once
// Reduction codes shared with python/fastloss/_common.py (REDUCTIONS).
namespace fastloss {
enum Reduction : int64_t { kNone = 0, kSum = 1, kMean = 2 };
}  // namespace fastloss
