#pragma once
// Per-item values kept as a structure of arrays (value k of item i at k · columns + i: the box
// matrices' fields, the matchers' box values), read into SIMD lanes.
#include "cpu/vec_ops.h"

namespace fastloss::cpu {

// Values of items [i, i + n) as N vectors; lanes past n hold zeros.
template <typename Vec, int N>
inline void load_items(const typename Vec::value_type* values, int64_t columns, int64_t i, int64_t n, Vec (&out)[N]) {
  for (int k = 0; k < N; ++k) out[k] = Vec::loadu(values + k * columns + i, n);
}

// One item's N values, each in every lane.
template <typename Vec, int N>
inline void broadcast_item(const typename Vec::value_type* values, int64_t columns, int64_t i, Vec (&out)[N]) {
  for (int k = 0; k < N; ++k) out[k] = Vec(values[k * columns + i]);
}

}  // namespace fastloss::cpu
