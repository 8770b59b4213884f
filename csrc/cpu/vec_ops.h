#pragma once
// CPU SIMD side of math/ops.h: Ops<simd::Vec<T>>, so the math headers run 8 (float, AVX2) or
// 4 (double) lanes at a time, plus loads/stores that convert between the tensors' dtype and the
// math type (whole vectors in registers; a row's last partial vector through a buffer).
// The vector flavour is picked at compile time (CPU_CAPABILITY_AVX2 / _AVX512, set by setup.py and
// CMakeLists.txt on x86-64; cpu/simd.h); exp, log and the rest are math/elementary.h's.
#include <cmath>
#include <type_traits>
#include <torch/headeronly/util/BFloat16.h>
#include <torch/headeronly/util/Half.h>
#include "common/row_operand.h"
#include "cpu/simd.h"
#include "math/ops.h"

namespace fastloss {

template <typename T>
struct Ops<simd::Vec<T>> {
  using V = simd::Vec<T>;
  using scalar_t = T;
  using Mask = V;  // all-ones lanes where true
  // The function calls are forced inline: left to GCC, a kernel called them with its vectors passed
  // through memory (Dice's sigmoid forward + backward ran 1.4× longer on AVX2).
  FASTLOSS_SIMD_INLINE static V exp(const V& x) { return x.exp(); }
  FASTLOSS_SIMD_INLINE static V log1p(const V& x) { return x.log1p(); }
  FASTLOSS_SIMD_INLINE static V expm1(const V& x) { return x.expm1(); }
  // a division: correctly rounded, as on CUDA
  FASTLOSS_SIMD_INLINE static V reciprocal(const V& x) { return x.reciprocal(); }
  FASTLOSS_SIMD_INLINE static V pow(const V& x, const V& y) { return x.pow(y); }
  static V abs(const V& x) { return x.abs(); }
  static V neg(const V& x) { return x.neg(); }
  FASTLOSS_SIMD_INLINE static V log(const V& x) { return x.log(); }
  static V sqrt(const V& x) { return x.sqrt(); }
  FASTLOSS_SIMD_INLINE static V atan2(const V& y, const V& x) { return y.atan2(x); }
  FASTLOSS_SIMD_INLINE static void sincos(const V& x, V& s, V& c) {
    typename V::raw sr, cr;
    math::sincos(typename V::raw(x), sr, cr);
    s = V(sr), c = V(cr);
  }
  static V fma(const V& a, const V& b, const V& c) { return simd::fmadd(a, b, c); }
  static V max(const V& a, const V& b) { return simd::clamp_min(a, b); }  // NaN in a propagates
  static V min(const V& a, const V& b) { return simd::clamp_max(a, b); }
  static Mask ge(const V& a, const V& b) { return a >= b; }
  static Mask gt(const V& a, const V& b) { return a > b; }
  static Mask eq(const V& a, const V& b) { return a == b; }
  static V select(const Mask& m, const V& if_true, const V& if_false) { return V::blendv(if_false, if_true, m); }
  // true lanes are all ones (never 0.0): some lane is true unless every lane compares equal to 0
  static bool any(const Mask& m) { return m.zero_mask() != (1 << V::size()) - 1; }
};

namespace cpu {

#if defined(FASTLOSS_SIMD_X86)
// Whole float vectors to and from float16 / bfloat16 in registers, with the bits of the scalar
// conversions of torch's Half and BFloat16: F16C's, round to nearest even; bfloat16 is a float's
// upper half, rounded to nearest even, NaN → 0x7FC0. Lane by lane through a buffer, float16 inputs
// made the sigmoid focal kernel 1.9× slower than float32.
template <typename scalar_t>
constexpr bool kHalfLanes =
    std::is_same_v<scalar_t, torch::headeronly::Half> || std::is_same_v<scalar_t, torch::headeronly::BFloat16>;

#if defined(CPU_CAPABILITY_AVX512)
using HalfBits = __m256i;  // 16 half lanes
using FloatBits = __m512i;
#else
using HalfBits = __m128i;  // 8 half lanes
using FloatBits = __m256i;
#endif

template <typename scalar_t>
FASTLOSS_SIMD_INLINE simd::Vec<float> load_half_lanes(const scalar_t* p) {
  HalfBits h;
  std::memcpy(&h, p, sizeof(h));
  FloatBits bits;
#if defined(CPU_CAPABILITY_AVX512)
  if constexpr (std::is_same_v<scalar_t, torch::headeronly::Half>) return simd::Vec<float>(_mm512_cvtph_ps(h));
  bits = _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16);
#else
  if constexpr (std::is_same_v<scalar_t, torch::headeronly::Half>) return simd::Vec<float>(_mm256_cvtph_ps(h));
  bits = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
#endif
  simd::Vec<float> r;
  std::memcpy(&r.v, &bits, sizeof(bits));
  return r;
}

template <typename scalar_t>
FASTLOSS_SIMD_INLINE void store_half_lanes(const simd::Vec<float>& v, scalar_t* p) {
  HalfBits h;
  FloatBits bits;
  std::memcpy(&bits, &v.v, sizeof(bits));
#if defined(CPU_CAPABILITY_AVX512)
  if constexpr (std::is_same_v<scalar_t, torch::headeronly::Half>) {
    h = _mm512_cvtps_ph(v.v, _MM_FROUND_TO_NEAREST_INT);
  } else {
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7FFF))), 16);
    r = _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(v.v, v.v, _CMP_UNORD_Q), _mm512_set1_epi32(0x7FC0));
    h = _mm512_cvtepi32_epi16(r);
  }
#else
  if constexpr (std::is_same_v<scalar_t, torch::headeronly::Half>) {
    h = _mm256_cvtps_ph(v.v, _MM_FROUND_TO_NEAREST_INT);
  } else {
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(bits, _mm256_add_epi32(odd, _mm256_set1_epi32(0x7FFF))), 16);
    r = _mm256_blendv_epi8(r, _mm256_set1_epi32(0x7FC0), _mm256_castps_si256(_mm256_cmp_ps(v.v, v.v, _CMP_UNORD_Q)));
    // (packus pairs within 128-bit halves: lanes 0–3 and 4–7 end in 64-bit quarters 0 and 2)
    h = _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0b1000));
  }
#endif
  std::memcpy(p, &h, sizeof(h));
}
#endif

// Loads n ≤ Vec::size() elements (the rest zero) as the vector's type.
template <typename Vec, typename scalar_t>
inline Vec load_as(const scalar_t* p, int64_t n) {
  using T = typename Vec::value_type;
  if constexpr (std::is_same_v<scalar_t, T>) {
    return Vec::loadu(p, n);
  } else {
#if defined(FASTLOSS_SIMD_X86)
    if constexpr (kHalfLanes<scalar_t> && std::is_same_v<T, float>) {
      if (n == Vec::size()) return load_half_lanes(p);
    }
#endif
    if constexpr (std::is_floating_point_v<scalar_t>) {
      if (n == Vec::size()) {  // in registers, as store_as below
        typedef scalar_t narrow __attribute__((vector_size(sizeof(scalar_t) * Vec::size())));
        narrow c;
        std::memcpy(&c, p, sizeof(c));
        return Vec(__builtin_convertvector(c, typename Vec::raw));
      }
    }
    T buf[Vec::size()] = {};
    for (int64_t i = 0; i < n; ++i) buf[i] = static_cast<T>(p[i]);
    return Vec::loadu(buf);
  }
}

template <typename Vec, typename scalar_t>
inline void store_as(const Vec& v, scalar_t* p, int64_t n) {
  using T = typename Vec::value_type;
  if constexpr (std::is_same_v<scalar_t, T>) {
    v.store(p, n);
  } else {
#if defined(FASTLOSS_SIMD_X86)
    if constexpr (kHalfLanes<scalar_t> && std::is_same_v<T, float>) {
      if (n == Vec::size()) return store_half_lanes(v, p);
    }
#endif
    if constexpr (std::is_floating_point_v<scalar_t>) {
      // A whole vector converts in registers: through the buffer below, GCC reloads a 64-byte store as
      // two 32-byte halves, which store forwarding cannot serve (1.2× on double math, float output).
      if (n == Vec::size()) {
        typedef scalar_t narrow __attribute__((vector_size(sizeof(scalar_t) * Vec::size())));
        const narrow c = __builtin_convertvector(v.v, narrow);
        std::memcpy(p, &c, sizeof(c));
        return;
      }
    }
    T buf[Vec::size()];
    v.store(buf);
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<scalar_t>(buf[i]);
  }
}

// Lanes (r, c .. c+n) of an operand whose column stride is 0 or 1 (see ops/tensor_args.h).
template <typename Vec, typename T>
inline Vec load_operand(const RowOperand<T>& op, int64_t r, int64_t c, int64_t n) {
  using V = typename Vec::value_type;
  if (!op.present()) return Vec(V(1));
  if (op.col_stride == 0) return Vec(static_cast<V>(*op.at(r, 0)));
  return load_as<Vec>(op.at(r, c), n);
}

// Lanes beyond n are dropped (zeroed), for partial vectors at a row's end.
template <typename Vec>
inline Vec first_lanes(const Vec& v, int64_t n) {
  return n == Vec::size() ? v : Vec::set(Vec(0), v, n);
}

// Sum of a vector's lanes in lane order, in double.
template <typename Vec>
inline double sum_lanes(const Vec& v) {
  typename Vec::value_type buf[Vec::size()];
  v.store(buf);
  double s = 0;
  for (int64_t i = 0; i < Vec::size(); ++i) s += static_cast<double>(buf[i]);
  return s;
}

// A running sum (or max) of consecutive vectors, kept in 64 bytes of lanes (16 float, 8 double) on
// every flavour: one AVX-512 register, two AVX2 ones, four 16-byte ones. Element i of a run always
// lands in lane i mod 16 (8), and the lanes are combined in one order (sum_lanes: lane order, in
// double; reduce: ATen's AVX-512 order), so reductions give the same bits on every CPU. Vector k of
// a run adds into part k mod kParts: the add goes to part[0] and the parts rotate (register
// renames, where an indexed part would live in memory).
template <typename Vec>
struct Wide {
  using T = typename Vec::value_type;
  static constexpr int kParts = 64 / static_cast<int>(sizeof(T) * Vec::size());
  static constexpr int kLanes = 64 / static_cast<int>(sizeof(T));
  Vec part[kParts];
  int turned = 0;  // rotations since the run began, mod kParts

  explicit Wide(T init = T(0)) {
    for (Vec& p : part) p = Vec(init);
  }
  template <typename Op>  // part[0] = op(part[0], x), then the next part's turn
  FASTLOSS_SIMD_INLINE void fold(const Op& op, const Vec& x) {
    part[0] = op(part[0], x);
    rotate();
  }
  FASTLOSS_SIMD_INLINE Wide& operator+=(const Vec& x) {
    part[0] = part[0] + x;
    rotate();
    return *this;
  }
  // Several terms into one vector's lanes: current() += …, then rotate() once.
  FASTLOSS_SIMD_INLINE Vec& current() { return part[0]; }
  // The next vector starts a run of its own (lane 0): a new row segment.
  FASTLOSS_SIMD_INLINE void restart() {
    while (turned != 0) rotate();
  }
  FASTLOSS_SIMD_INLINE void rotate() {
    if constexpr (kParts > 1) {
      const Vec first = part[0];
      for (int k = 0; k + 1 < kParts; ++k) part[k] = part[k + 1];
      part[kParts - 1] = first;
      turned = turned + 1 == kParts ? 0 : turned + 1;
    }
  }
  // Logical part k (lanes [k·size, (k + 1)·size)).
  FASTLOSS_SIMD_INLINE const Vec& logical(int k) const { return part[(k - turned + kParts) % kParts]; }

  double sum_lanes() const {  // one running sum over all 64 bytes' lanes (not a sum of per-part sums)
    T lanes[kLanes];
    for (int k = 0; k < kParts; ++k) logical(k).store(lanes + k * Vec::size());
    double s = 0;
    for (int i = 0; i < kLanes; ++i) s += static_cast<double>(lanes[i]);
    return s;
  }
  // op over the 64 bytes' lanes in ATen's AVX-512 order (simd::reduce_all): float pairs lanes i and
  // i + half for half = 8, 4, 2, 1; double folds lane 0 with lanes 1, 2, … in turn.
  template <typename Op>
  T reduce(const Op& op) const {
    if constexpr (std::is_same_v<T, float>) {
      Vec half[kParts];
      for (int k = 0; k < kParts; ++k) half[k] = logical(k);
      for (int n = kParts / 2; n >= 1; n /= 2)
        for (int k = 0; k < n; ++k) half[k] = op(half[k], half[k + n]);
      if constexpr (Vec::size() > 1)
        return simd::butterfly<static_cast<int>(Vec::size() / 2)>(op, half[0]).v[0];
      else
        return half[0].v[0];
    } else {
      T lanes[kLanes];
      for (int k = 0; k < kParts; ++k) logical(k).store(lanes + k * Vec::size());
      Vec acc(lanes[0]);
      for (int i = 1; i < kLanes; ++i) acc = op(acc, Vec(lanes[i]));
      return acc.v[0];
    }
  }
  T sum() const {
    return reduce([](const Vec& p, const Vec& q) { return p + q; });
  }
};

template <typename Vec>
inline double sum_lanes(const Wide<Vec>& w) {
  return w.sum_lanes();
}

}  // namespace cpu
}  // namespace fastloss
