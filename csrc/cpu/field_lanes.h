#pragma once
// Per-item values kept as a structure of arrays (value k of item i at k · columns + i: the box
// matrices' fields, the matchers' box values), read into SIMD lanes; and whole vectors of boxes
// stored as an array of structures ((…, 4): the box losses), transposed in registers.
#include <utility>
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

// Rows [i, i + n) of a (·, K) array as K vectors of their fields (lanes past n hold zeros), and the
// inverse: K field vectors stored as n rows.
template <typename Vec, int K>
inline void load_rows(const typename Vec::value_type* rows, int64_t i, int64_t n, Vec (&out)[K]) {
  using S = typename Vec::value_type;
  S lanes[K][Vec::size()] = {};
  for (int64_t l = 0; l < n; ++l)
    for (int k = 0; k < K; ++k) lanes[k][l] = rows[(i + l) * K + k];
  for (int k = 0; k < K; ++k) out[k] = Vec::loadu(lanes[k]);
}

template <typename Vec, int K>
inline void store_rows(const Vec (&in)[K], typename Vec::value_type* rows, int64_t i, int64_t n) {
  using S = typename Vec::value_type;
  S lanes[K][Vec::size()];
  for (int k = 0; k < K; ++k) in[k].store(lanes[k]);
  for (int64_t l = 0; l < n; ++l)
    for (int k = 0; k < K; ++k) rows[(i + l) * K + k] = lanes[k][l];
}

// Lanes of a and b concatenated: the even ones, the odd ones, and (zip) lanes [h, h + W/2) of a
// and b alternated, which undoes the other two: a = zip<0>(even, odd), b = zip<W/2>(even, odd).
template <typename R, size_t... I>
FASTLOSS_SIMD_INLINE R even_lanes(R a, R b, std::index_sequence<I...>) {
  return __builtin_shufflevector(a, b, (2 * I)...);
}
template <typename R, size_t... I>
FASTLOSS_SIMD_INLINE R odd_lanes(R a, R b, std::index_sequence<I...>) {
  return __builtin_shufflevector(a, b, (2 * I + 1)...);
}
template <size_t H, typename R, size_t... I>
FASTLOSS_SIMD_INLINE R zip_lanes(R a, R b, std::index_sequence<I...>) {
  return __builtin_shufflevector(a, b, ((I % 2) * sizeof...(I) + H + I / 2)...);
}

// The four fields (x1s, y1s, x2s, y2s) of the Vec::size() boxes at boxes (…, 4): four contiguous
// vector loads, converted whole (load_as), then two rounds of even/odd lanes.
template <typename Vec, typename scalar_t>
FASTLOSS_SIMD_INLINE void load_box_fields(const scalar_t* boxes, Vec (&out)[4]) {
  constexpr int64_t W = Vec::size();
  const auto lanes = std::make_index_sequence<W>{};
  typename Vec::raw v[4];
  for (int m = 0; m < 4; ++m) v[m] = load_as<Vec>(boxes + m * W, W).v;
  const auto e01 = even_lanes(v[0], v[1], lanes), o01 = odd_lanes(v[0], v[1], lanes);
  const auto e23 = even_lanes(v[2], v[3], lanes), o23 = odd_lanes(v[2], v[3], lanes);
  out[0] = Vec(even_lanes(e01, e23, lanes));
  out[1] = Vec(even_lanes(o01, o23, lanes));
  out[2] = Vec(odd_lanes(e01, e23, lanes));
  out[3] = Vec(odd_lanes(o01, o23, lanes));
}

// The inverse: four field vectors stored as Vec::size() boxes (…, 4), converted whole (store_as).
template <typename Vec, typename scalar_t>
FASTLOSS_SIMD_INLINE void store_box_fields(const Vec (&in)[4], scalar_t* boxes) {
  constexpr int64_t W = Vec::size();
  constexpr size_t H = W / 2;
  const auto lanes = std::make_index_sequence<W>{};
  const auto e01 = zip_lanes<0>(in[0].v, in[2].v, lanes), e23 = zip_lanes<H>(in[0].v, in[2].v, lanes);
  const auto o01 = zip_lanes<0>(in[1].v, in[3].v, lanes), o23 = zip_lanes<H>(in[1].v, in[3].v, lanes);
  store_as(Vec(zip_lanes<0>(e01, o01, lanes)), boxes, W);
  store_as(Vec(zip_lanes<H>(e01, o01, lanes)), boxes + W, W);
  store_as(Vec(zip_lanes<0>(e23, o23, lanes)), boxes + 2 * W, W);
  store_as(Vec(zip_lanes<H>(e23, o23, lanes)), boxes + 3 * W, W);
}

}  // namespace fastloss::cpu
