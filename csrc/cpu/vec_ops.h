#pragma once
// CPU SIMD side of math/ops.h: Ops<Vectorized<T>>, so the math headers run 8 (float, AVX2) or
// 4 (double) lanes at a time, plus loads/stores that convert half types to float lane by lane.
// ATen picks the vector flavour at compile time (CPU_CAPABILITY_AVX2, set by setup.py and
// CMakeLists.txt on x86-64); exp is inline (exp_avx2 below), log1p/pow/atan2 ATen's Sleef calls.
#include <ATen/cpu/vec/vec.h>
#include <cmath>
#include <type_traits>
#include "common/row_operand.h"
#include "math/ops.h"

namespace fastloss {

namespace cpu {

#if defined(CPU_CAPABILITY_AVX2)
// exp on 8 floats, inline: Cephes' expf scheme (Cody–Waite reduction by ln 2 in two parts, a
// degree-5 polynomial; ≤ 2 ulp). Sleef's exp is a call, and every call spills the loop's live
// vectors: inline, the focal and Dice kernels ran faster. Inputs below ln(FLT_MIN) give exactly 0
// (as exp must: exp(−1e4) is 0, not FLT_MIN), above ln(FLT_MAX) +inf; NaN stays NaN (max/min
// return their second operand when one is NaN, so x goes second).
inline __m256 exp_avx2(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.3365447505531f), hi = _mm256_set1_ps(88.7228391116729f);
  const __m256 underflow = _mm256_cmp_ps(x, lo, _CMP_LT_OQ), overflow = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
  __m256 v = _mm256_min_ps(hi, _mm256_max_ps(lo, x));
  const __m256 n = _mm256_floor_ps(_mm256_fmadd_ps(v, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
  v = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), v);
  v = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), v);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, v, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, v, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, v, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, v, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, v, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(v, v), _mm256_add_ps(v, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
  y = _mm256_blendv_ps(y, _mm256_setzero_ps(), underflow);
  return _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), overflow);
}
#endif

template <typename V>
inline V exp(const V& x) {
#if defined(CPU_CAPABILITY_AVX2)
  if constexpr (std::is_same_v<V, at::vec::Vectorized<float>>) return V(exp_avx2(x));
#endif
  return x.exp();
}

}  // namespace cpu

template <typename T>
struct Ops<at::vec::Vectorized<T>> {
  using V = at::vec::Vectorized<T>;
  using scalar_t = T;
  using Mask = V;  // all-ones lanes where true
  static V exp(const V& x) { return cpu::exp(x); }
  static V log1p(const V& x) { return x.log1p(); }
  static V pow(const V& x, const V& y) { return x.pow(y); }
  static V abs(const V& x) { return x.abs(); }
  static V neg(const V& x) { return x.neg(); }
  static V log(const V& x) { return x.log(); }
  static V sqrt(const V& x) { return x.sqrt(); }
  static V atan2(const V& y, const V& x) { return y.atan2(x); }
  static V max(const V& a, const V& b) { return at::vec::clamp_min(a, b); }  // NaN in a propagates
  static V min(const V& a, const V& b) { return at::vec::clamp_max(a, b); }
  static Mask ge(const V& a, const V& b) { return a >= b; }
  static Mask gt(const V& a, const V& b) { return a > b; }
  static Mask eq(const V& a, const V& b) { return a == b; }
  static V select(const Mask& m, const V& if_true, const V& if_false) { return V::blendv(if_false, if_true, m); }
};

namespace cpu {

// Loads n ≤ Vec::size() elements (the rest zero) as the vector's type.
template <typename Vec, typename scalar_t>
inline Vec load_as(const scalar_t* p, int64_t n) {
  using T = typename Vec::value_type;
  if constexpr (std::is_same_v<scalar_t, T>) {
    return Vec::loadu(p, n);
  } else {
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

}  // namespace cpu
}  // namespace fastloss
