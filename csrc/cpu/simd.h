#pragma once
// fastloss's own SIMD vector, replacing ATen's Vectorized (which the LibTorch stable ABI does not
// offer): Vec<T> holds as many float/double lanes as the flavour's registers (CPU_CAPABILITY_AVX512:
// 64 bytes, CPU_CAPABILITY_AVX2: 32, any other target: 16, e.g. aarch64 NEON). It is written in
// GCC's vector extensions (portable: any other target compiles the generic branches, e.g. aarch64),
// and on x86 every non-arithmetic operation is the intrinsic ATen's Vectorized uses (Native<T>).
// The operations are ATen's Vectorized's (the same IEEE operations, its NaN rules for min/max, its
// reduction order); exp, expm1, log, log1p, pow, atan2, sin and cos are fastloss's own (math/elementary.h).
// Masks are vectors whose true lanes are all ones, as ATen's.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
#include <immintrin.h>
#endif

// Small helpers are forced inline: GCC otherwise calls some of them with vectors passed through
// memory, which made the kernels 1.6–2.9× slower.
#define FASTLOSS_SIMD_INLINE inline __attribute__((always_inline))

namespace fastloss::simd {

#if defined(CPU_CAPABILITY_AVX512)
constexpr int kBytes = 64;
#elif defined(CPU_CAPABILITY_AVX2)
constexpr int kBytes = 32;
#else
constexpr int kBytes = 16;
#endif
}  // namespace fastloss::simd

#include "math/elementary.h"

namespace fastloss::simd {

template <typename T>
struct Lanes {
  using Int = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
  typedef T raw __attribute__((vector_size(kBytes)));
  typedef Int raw_int __attribute__((vector_size(kBytes)));
};

#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
// The x86 instructions of each operation, the very intrinsics ATen's Vectorized uses: besides giving
// the same bits, one intrinsic is one statement to GCC's inliner, as it was with ATen, so functions
// around them inline (and fuse a·b + c) as they did with ATen.
#if defined(CPU_CAPABILITY_AVX512)
#define FASTLOSS_X86(op, sfx) _mm512_##op##_##sfx
#else
#define FASTLOSS_X86(op, sfx) _mm256_##op##_##sfx
#endif
#define FASTLOSS_NATIVE(T, sfx, epi, ones)                                                            \
  template <>                                                                                         \
  struct Native<T> {                                                                                  \
    using R = typename Lanes<T>::raw;                                                                 \
    static inline R set1(T s) { return FASTLOSS_X86(set1, sfx)(s); }                                  \
    static inline R abs(R v) { return FASTLOSS_X86(andnot, sfx)(FASTLOSS_X86(set1, sfx)(-0.), v); }   \
    static inline R neg(R v) { return FASTLOSS_X86(xor, sfx)(FASTLOSS_X86(set1, sfx)(-0.), v); }      \
    static inline R reciprocal(R v) { return FASTLOSS_X86(div, sfx)(FASTLOSS_X86(set1, sfx)(1), v); } \
    static inline R max(R a, R b) { return FASTLOSS_X86(max, sfx)(a, b); }                            \
    static inline R min(R a, R b) { return FASTLOSS_X86(min, sfx)(a, b); }                            \
    static inline R bit_or(R a, R b) { return FASTLOSS_X86(or, sfx)(a, b); }                          \
    static inline R floor(R v) { return FASTLOSS_X86(floor, sfx)(v); }                                \
    static inline R sqrt(R v) { return FASTLOSS_X86(sqrt, sfx)(v); }                                  \
    static inline R fmadd(R a, R b, R c) { return FASTLOSS_X86(fmadd, sfx)(a, b, c); }                \
    FASTLOSS_NATIVE_CMP(T, sfx, epi, ones)                                                            \
  };
#if defined(CPU_CAPABILITY_AVX512)
// (comparisons give a bit mask; ATen widens it to all-ones lanes, and blends on all-ones lanes)
#define FASTLOSS_NATIVE_CMP(T, sfx, epi, ones)                                                                      \
  template <int P>                                                                                                  \
  static inline R cmp(R a, R b) {                                                                                   \
    return _mm512_castsi512_##sfx(                                                                                  \
        _mm512_mask_set1_##epi(_mm512_set1_##epi(0), _mm512_cmp_##sfx##_mask(a, b, P), ones));                      \
  }                                                                                                                 \
  static inline R blendv(R a, R b, R mask) {                                                                        \
    const auto m = _mm512_cmp_##epi##_mask(_mm512_cast##sfx##_si512(mask), _mm512_set1_##epi(ones), _MM_CMPINT_EQ); \
    return _mm512_mask_blend_##sfx(m, a, b);                                                                        \
  }
#else
#define FASTLOSS_NATIVE_CMP(T, sfx, epi, ones) \
  template <int P>                             \
  static inline R cmp(R a, R b) {              \
    return _mm256_cmp_##sfx(a, b, P);          \
  }                                            \
  static inline R blendv(R a, R b, R mask) { return _mm256_blendv_##sfx(a, b, mask); }
#endif
template <typename T>
struct Native;
FASTLOSS_NATIVE(float, ps, epi32, static_cast<int>(0xFFFFFFFF))
FASTLOSS_NATIVE(double, pd, epi64, static_cast<long long>(0xFFFFFFFFFFFFFFFFULL))
#undef FASTLOSS_NATIVE
#undef FASTLOSS_NATIVE_CMP
#undef FASTLOSS_X86
#define FASTLOSS_SIMD_X86 1
#endif

// Vectors built without loops ({s, s, …}, {0, 1, …}): GCC's early inliner weighs a function by its
// statements before loops are unrolled, and a loop here made callers look larger than with ATen's
// intrinsics, which moved inlining decisions and with them which a·b + c were fused (the results).
template <typename R, typename S, size_t... I>
FASTLOSS_SIMD_INLINE R splat(S s, std::index_sequence<I...>) {
  return R{((void)I, s)...};
}
template <typename R, typename S, size_t... I>
FASTLOSS_SIMD_INLINE R iota(std::index_sequence<I...>) {
  return R{static_cast<S>(I)...};
}

template <typename T>
class Vec {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, int32_t>,
                "Vec holds float, double or int32 lanes");

 public:
  using value_type = T;
  using raw = typename Lanes<T>::raw;
  using raw_int = typename Lanes<T>::raw_int;
  raw v;

  using Int = typename Lanes<T>::Int;
  static constexpr int64_t size() { return kBytes / sizeof(T); }
  using Indices = std::make_index_sequence<kBytes / sizeof(T)>;

  FASTLOSS_SIMD_INLINE Vec() : v{} {}
  FASTLOSS_SIMD_INLINE Vec(raw r) : v(r) {}
#ifdef FASTLOSS_SIMD_X86
  FASTLOSS_SIMD_INLINE Vec(T s) : v(Native<T>::set1(s)) {}
#else
  FASTLOSS_SIMD_INLINE Vec(T s) : v(splat<raw>(s, Indices{})) {}  // (not 0 + s: that turns −0 into +0)
#endif
  FASTLOSS_SIMD_INLINE operator raw() const { return v; }

  FASTLOSS_SIMD_INLINE static Vec loadu(const void* p) {
    Vec r;
    std::memcpy(&r.v, p, sizeof(raw));
    return r;
  }
  // The first n elements; the other lanes are 0. (x86: masked loads and stores, which touch only the
  // n elements — no copy through a buffer, no memcpy call per row end.)
  FASTLOSS_SIMD_INLINE static Vec loadu(const void* p, int64_t n) {
    if (n == size()) return loadu(p);
#if defined(CPU_CAPABILITY_AVX512)
    if constexpr (sizeof(T) == 4)
      return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), p);
    else
      return _mm512_maskz_loadu_pd(static_cast<__mmask8>((1u << n) - 1), p);
#elif defined(CPU_CAPABILITY_AVX2)
    if constexpr (sizeof(T) == 4)
      return _mm256_maskload_ps(static_cast<const float*>(p), lanes_below(n));
    else
      return _mm256_maskload_pd(static_cast<const double*>(p), lanes_below(n));
#else
    Vec r;
    std::memcpy(&r.v, p, n * sizeof(T));
    return r;
#endif
  }
  FASTLOSS_SIMD_INLINE void store(void* p) const { std::memcpy(p, &v, sizeof(raw)); }
  FASTLOSS_SIMD_INLINE void store(void* p, int64_t n) const {
    if (n == size()) return store(p);
#if defined(CPU_CAPABILITY_AVX512)
    if constexpr (sizeof(T) == 4)
      _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1), v);
    else
      _mm512_mask_storeu_pd(p, static_cast<__mmask8>((1u << n) - 1), v);
#elif defined(CPU_CAPABILITY_AVX2)
    if constexpr (sizeof(T) == 4)
      _mm256_maskstore_ps(static_cast<float*>(p), lanes_below(n), v);
    else
      _mm256_maskstore_pd(static_cast<double*>(p), lanes_below(n), v);
#else
    T buf[size()];
    store(buf);
    std::memcpy(p, buf, n * sizeof(T));
#endif
  }

  // (A cast between GCC vector types of one size reinterprets the bits.)
  FASTLOSS_SIMD_INLINE raw_int bits() const { return (raw_int)v; }
  FASTLOSS_SIMD_INLINE static Vec from_bits(raw_int b) { return Vec((raw)b); }

  // b where mask is true, else a.
  FASTLOSS_SIMD_INLINE static Vec blendv(const Vec& a, const Vec& b, const Vec& mask) {
#ifdef FASTLOSS_SIMD_X86
    return Native<T>::blendv(a.v, b.v, mask.v);
#else
    return Vec(mask.bits() != 0 ? b.v : a.v);
#endif
  }
  // Lanes [0, n) from b, the rest from a.
  FASTLOSS_SIMD_INLINE static Vec set(const Vec& a, const Vec& b, int64_t n) {
    return Vec(iota<raw_int, Int>(Indices{}) < splat<raw_int>(static_cast<Int>(n), Indices{}) ? b.v : a.v);
  }
  FASTLOSS_SIMD_INLINE static Vec arange(T base, T step) {
    return Vec(splat<raw>(base, Indices{}) + iota<raw, T>(Indices{}) * splat<raw>(step, Indices{}));
  }

#ifdef FASTLOSS_SIMD_X86
  FASTLOSS_SIMD_INLINE Vec abs() const { return Native<T>::abs(v); }
  FASTLOSS_SIMD_INLINE Vec neg() const { return Native<T>::neg(v); }
  FASTLOSS_SIMD_INLINE Vec reciprocal() const { return Native<T>::reciprocal(v); }
#else
  FASTLOSS_SIMD_INLINE Vec abs() const { return from_bits(bits() & ~sign_bits()); }
  FASTLOSS_SIMD_INLINE Vec neg() const { return from_bits(bits() ^ sign_bits()); }
  FASTLOSS_SIMD_INLINE Vec reciprocal() const { return Vec(T(1)).v / v; }
#endif
  FASTLOSS_SIMD_INLINE Vec floor() const;
  FASTLOSS_SIMD_INLINE Vec sqrt() const;
  FASTLOSS_SIMD_INLINE Vec exp() const { return math::exp(v); }
  FASTLOSS_SIMD_INLINE Vec expm1() const { return math::expm1(v); }
  FASTLOSS_SIMD_INLINE Vec log() const { return math::log(v); }
  FASTLOSS_SIMD_INLINE Vec log1p() const { return math::log1p(v); }
  FASTLOSS_SIMD_INLINE Vec pow(const Vec& e) const { return math::pow(v, e.v); }
  FASTLOSS_SIMD_INLINE Vec atan2(const Vec& x) const { return math::atan2(v, x.v); }

  // Bit i set where lane i equals 0 (a true mask lane, all ones, is a NaN: never 0).
  FASTLOSS_SIMD_INLINE int zero_mask() const {
#if defined(CPU_CAPABILITY_AVX512)
    if constexpr (sizeof(T) == 4)
      return _mm512_cmp_ps_mask(v, raw{}, _CMP_EQ_OQ);
    else
      return _mm512_cmp_pd_mask(v, raw{}, _CMP_EQ_OQ);
#elif defined(CPU_CAPABILITY_AVX2)
    if constexpr (sizeof(T) == 4)
      return _mm256_movemask_ps(_mm256_cmp_ps(v, raw{}, _CMP_EQ_OQ));
    else
      return _mm256_movemask_pd(_mm256_cmp_pd(v, raw{}, _CMP_EQ_OQ));
#else
    const raw_int z = v == raw{};
    int m = 0;
    for (int i = 0; i < size(); ++i) m |= (z[i] != 0) << i;
    return m;
#endif
  }

  FASTLOSS_SIMD_INLINE Vec operator-() const { return neg(); }
  FASTLOSS_SIMD_INLINE friend Vec operator+(const Vec& a, const Vec& b) { return Vec(a.v + b.v); }
  FASTLOSS_SIMD_INLINE friend Vec operator-(const Vec& a, const Vec& b) { return Vec(a.v - b.v); }
  FASTLOSS_SIMD_INLINE friend Vec operator*(const Vec& a, const Vec& b) { return Vec(a.v * b.v); }
  FASTLOSS_SIMD_INLINE friend Vec operator/(const Vec& a, const Vec& b) { return Vec(a.v / b.v); }
  FASTLOSS_SIMD_INLINE Vec& operator+=(const Vec& b) { return *this = *this + b; }
  FASTLOSS_SIMD_INLINE Vec& operator-=(const Vec& b) { return *this = *this - b; }
  FASTLOSS_SIMD_INLINE Vec& operator*=(const Vec& b) { return *this = *this * b; }
  FASTLOSS_SIMD_INLINE Vec& operator/=(const Vec& b) { return *this = *this / b; }
#ifdef FASTLOSS_SIMD_X86
#define FASTLOSS_SIMD_CMP(op, predicate)                                    \
  FASTLOSS_SIMD_INLINE friend Vec operator op(const Vec& a, const Vec& b) { \
    return Native<T>::template cmp<predicate>(a.v, b.v);                    \
  }
#else
#define FASTLOSS_SIMD_CMP(op, predicate) \
  FASTLOSS_SIMD_INLINE friend Vec operator op(const Vec& a, const Vec& b) { return from_bits(a.v op b.v); }
#endif
  FASTLOSS_SIMD_CMP(==, _CMP_EQ_OQ)
  FASTLOSS_SIMD_CMP(!=, _CMP_NEQ_UQ)
  FASTLOSS_SIMD_CMP(<, _CMP_LT_OQ)
  FASTLOSS_SIMD_CMP(<=, _CMP_LE_OQ)
  FASTLOSS_SIMD_CMP(>, _CMP_GT_OQ)
  FASTLOSS_SIMD_CMP(>=, _CMP_GE_OQ)
#undef FASTLOSS_SIMD_CMP

 private:
  // All-ones integer lanes below n (AVX2's load/store masks).
  FASTLOSS_SIMD_INLINE static __attribute__((unused)) auto lanes_below(int64_t n) {
    const raw_int below = iota<raw_int, Int>(Indices{}) < splat<raw_int>(static_cast<Int>(n), Indices{});
#if defined(CPU_CAPABILITY_AVX2) && !defined(CPU_CAPABILITY_AVX512)
    return (__m256i)below;
#else
    return below;
#endif
  }
  FASTLOSS_SIMD_INLINE static raw_int sign_bits() {
    return splat<raw_int>(static_cast<Int>(Int(1) << (8 * sizeof(T) - 1)), Indices{});
  }
};

// int32 lanes beside float lanes (exp's 2^n), with the shifts and the conversions it needs.
template <>
class Vec<int32_t> {
 public:
  using value_type = int32_t;
  typedef int32_t raw __attribute__((vector_size(kBytes)));
  raw v;
  static constexpr int64_t size() { return kBytes / 4; }
  FASTLOSS_SIMD_INLINE Vec(raw r) : v(r) {}
  FASTLOSS_SIMD_INLINE Vec(int32_t s) : v(splat<raw>(s, std::make_index_sequence<kBytes / 4>{})) {}
  FASTLOSS_SIMD_INLINE friend Vec operator+(const Vec& a, const Vec& b) { return Vec(a.v + b.v); }
  FASTLOSS_SIMD_INLINE friend Vec operator<<(const Vec& a, const Vec& b) { return Vec(a.v << b.v); }
};

// ------------------------------------------------- floor, sqrt, fma: x86 through Native<T>

template <typename T>
FASTLOSS_SIMD_INLINE Vec<T> Vec<T>::floor() const {
#ifdef FASTLOSS_SIMD_X86
  return Native<T>::floor(v);
#else
  Vec r;
  for (int i = 0; i < size(); ++i) r.v[i] = std::floor(v[i]);
  return r;
#endif
}

template <typename T>
FASTLOSS_SIMD_INLINE Vec<T> Vec<T>::sqrt() const {
#ifdef FASTLOSS_SIMD_X86
  return Native<T>::sqrt(v);
#else
  Vec r;
  for (int i = 0; i < size(); ++i) r.v[i] = std::sqrt(v[i]);
  return r;
#endif
}

// a·b + c, rounded once.
template <typename T>
FASTLOSS_SIMD_INLINE Vec<T> fmadd(const Vec<T>& a, const Vec<T>& b, const Vec<T>& c) {
#ifdef FASTLOSS_SIMD_X86
  return Native<T>::fmadd(a.v, b.v, c.v);
#else
  Vec<T> r;
  for (int i = 0; i < Vec<T>::size(); ++i) r.v[i] = std::fma(a.v[i], b.v[i], c.v[i]);
  return r;
#endif
}

// x86's max/min: the second operand where either is NaN, or where they compare equal (±0).
template <typename T>
FASTLOSS_SIMD_INLINE Vec<T> x86_max(const Vec<T>& a, const Vec<T>& b) {
#ifdef FASTLOSS_SIMD_X86
  return Native<T>::max(a.v, b.v);
#else
  return Vec<T>(a.v > b.v ? a.v : b.v);
#endif
}
template <typename T>
FASTLOSS_SIMD_INLINE Vec<T> x86_min(const Vec<T>& a, const Vec<T>& b) {
#ifdef FASTLOSS_SIMD_X86
  return Native<T>::min(a.v, b.v);
#else
  return Vec<T>(a.v < b.v ? a.v : b.v);
#endif
}

// max(a, lo) where a NaN in a propagates (ATen's clamp_min); min(a, hi) likewise.
template <typename T>
FASTLOSS_SIMD_INLINE Vec<T> clamp_min(const Vec<T>& a, const Vec<T>& lo) {
  return x86_max(lo, a);
}
template <typename T>
FASTLOSS_SIMD_INLINE Vec<T> clamp_max(const Vec<T>& a, const Vec<T>& hi) {
  return x86_min(hi, a);
}

// The larger lane, a NaN (all bits set) where either lane is NaN (ATen's maximum).
template <typename T>
FASTLOSS_SIMD_INLINE Vec<T> maximum(const Vec<T>& a, const Vec<T>& b) {
#ifdef FASTLOSS_SIMD_X86
  return Native<T>::bit_or(Native<T>::max(a.v, b.v), Native<T>::template cmp<_CMP_UNORD_Q>(a.v, b.v));
#else
  const Vec<T> m = x86_max(a, b);
  const auto unordered = (a.v != a.v) | (b.v != b.v);
  return Vec<T>::from_bits(m.bits() | unordered);
#endif
}

// x = op(x, x with lanes i and i ^ half swapped), for half, half/2, …, 1.
template <int half, typename T, typename Op, size_t... I>
FASTLOSS_SIMD_INLINE Vec<T> butterfly_step(const Op& op, const Vec<T>& x, std::index_sequence<I...>) {
  return op(x, Vec<T>(__builtin_shufflevector(x.v, x.v, (static_cast<int>(I) ^ half)...)));
}
template <int half, typename T, typename Op>
FASTLOSS_SIMD_INLINE Vec<T> butterfly(const Op& op, const Vec<T>& x) {
  const Vec<T> y = butterfly_step<half>(op, x, typename Vec<T>::Indices{});
  if constexpr (half > 1)
    return butterfly<half / 2>(op, y);
  else
    return y;
}

// op over the lanes, in ATen's order: float pairs lanes i and i ^ half for half = size/2 … 1 (its
// shuffle tree); double folds lane 0 with lanes 1, 2, … in turn.
template <typename T, typename Op>
FASTLOSS_SIMD_INLINE T reduce_all(const Op& op, const Vec<T>& v) {
  constexpr int n = Vec<T>::size();
  if constexpr (std::is_same_v<T, float> && kBytes >= 32) {
    return butterfly<n / 2>(op, v).v[0];
  } else {
    Vec<T> acc = v;
    for (int i = 1; i < n; ++i) {
      Vec<T> next;
      next.v[0] = v.v[i];
      acc = op(acc, next);
    }
    return acc.v[0];
  }
}

// Float lanes to int32, truncated (cvttps2dq).
FASTLOSS_SIMD_INLINE Vec<int32_t> convert_to_int(const Vec<float>& x) {
  return Vec<int32_t>(__builtin_convertvector(x.v, Vec<int32_t>::raw));
}

// The float lanes whose bits are the int lanes.
FASTLOSS_SIMD_INLINE Vec<float> bitcast_float(const Vec<int32_t>& x) {
  return Vec<float>::from_bits((Vec<float>::raw_int)x.v);
}

}  // namespace fastloss::simd
