#pragma once
// exp, expm1, log, log1p, pow, atan2, sin and cos in float and double, written once for scalars and GCC
// vector lanes (cpu/simd.h's raw vectors: AVX2, AVX-512, NEON): fastloss's own, so a kernel's bits
// depend on no system library, and the functions inline into the kernels. Every step is an IEEE
// operation or an explicit fma, so every target that runs these lines gets the same bits.
//
// exp(x)   = 2ⁿ·exp(r), n = round(x/ln 2), r = x − n·ln 2 (Cody & Waite 1980: ln 2 in two parts,
//            the first short enough that n·ln2_hi and x − n·ln2_hi are exact), |r| ≤ ½ln 2, and
//            exp(r) = 1 + r + r²/2 + r³·q(r), q the rest of its Taylor series: in double with r²/2
//            in two parts; in float as 1 + (r + (r²/2 + r_lo + r³·q(r))), ≤ 0.85 ULP (exhaustive).
// expm1(x) = 2ⁿ·expm1(r) + (2ⁿ − 1), the three ranges of n arranged so no step cancels.
// log(x)   = k·ln 2 + log(1 + f), x = 2ᵏ(1 + f), 1 + f ∈ [√½, √2); with s = f/(2 + f),
//            log(1 + f) = 2·atanh(s) = f − (f²/2 − s·(f²/2 + R(s²))), R(w) = Σⱼ 2wʲ/(2j + 1):
//            the leading f is exact and the rest is small (the arrangement of Tang 1990 and of
//            fdlibm's e_log.c). log1p(x) takes 1 + f from u = 1 + x and adds (1 + x − u)/u, the
//            rounding error of u (Fast2Sum, exact).
// pow(x,y) = exp(y·log x): float through the double functions (a single final rounding); double
//            with log x in double-double (s and its first odd term carried in two parts), y·log x
//            as a double-double and exp of its low part folded into r.
// atan2    = atan of q = min/max(|x|,|y|) ∈ [0, 1] around the nearest of c ∈ {0, ¼, ½, ¾, 1}:
//            atan q = atan c + atan((q − c)/(1 + qc)), |(q − c)/(1 + qc)| ≤ ⅛, by its Taylor series;
//            the division's remainder (an fma) corrects q; then the octant. Float through double.
//
// sin, cos = the Taylor series of sin r and cos r, |r| ≤ π/4, x = r + n·π/2 (Cody & Waite's reduction
//            with π/2 in four parts up to |x| < 2²⁰, Payne & Hanek's beyond), n mod 4 their quadrant.
//            Float in double, with π/2 in two parts and shorter series (sincos_of_floats).
//
// Special values (±0, ±inf, NaN, overflow, underflow, subnormals) are the C library's. Measured
// accuracy: docs/math.md (`make math-exhaustive`, tests/test_math_functions.py).
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <utility>

#if defined(__AVX512F__) || defined(__FMA__)
#include <immintrin.h>
#endif

#if defined(__CUDACC__)
#define FASTLOSS_MATH_INLINE __host__ __device__ __forceinline__
#else
#define FASTLOSS_MATH_INLINE inline __attribute__((always_inline))
#endif

namespace fastloss::math {

namespace lanes {

template <typename T>
using int_of = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;

// A lane type L is float, double, or a GCC vector of them; int_t is the integer lanes of its size.
template <typename L, typename = void>
struct Traits {
  using scalar_t = L;
  using int_t = int_of<L>;
  static constexpr bool vector = false;
};
template <typename L>
struct Traits<L, std::void_t<decltype(std::declval<L&>()[0])>> {
  using scalar_t = std::remove_cv_t<std::remove_reference_t<decltype(std::declval<L&>()[0])>>;
  typedef int_of<scalar_t> int_t __attribute__((vector_size(sizeof(L))));
  static constexpr bool vector = true;
};
template <typename L>
using scalar_t = typename Traits<L>::scalar_t;
template <typename L>
using int_t = typename Traits<L>::int_t;

template <typename L>
FASTLOSS_MATH_INLINE L splat(scalar_t<L> s) {
  if constexpr (Traits<L>::vector)
    return s - L{};  // (s − 0 keeps −0; 0 + s would not)
  else
    return s;
}
template <typename L>
FASTLOSS_MATH_INLINE int_t<L> bits(L x) {
  return __builtin_bit_cast(int_t<L>, x);
}
template <typename L>
FASTLOSS_MATH_INLINE L from_bits(int_t<L> i) {
  return __builtin_bit_cast(L, i);
}
// where(m, a, b): a where the comparison m holds, else b (m: a bool, or a vector of all-ones lanes).
template <typename M, typename L>
FASTLOSS_MATH_INLINE L where(M m, L a, L b) {
  return m ? a : b;
}
template <typename M>
FASTLOSS_MATH_INLINE M both(M a, M b) {
  if constexpr (std::is_same_v<M, bool>)
    return a && b;
  else
    return a & b;
}
template <typename M>
FASTLOSS_MATH_INLINE M either(M a, M b) {
  if constexpr (std::is_same_v<M, bool>)
    return a || b;
  else
    return a | b;
}

// a·b + c, rounded once.
template <typename L>
FASTLOSS_MATH_INLINE L fma(L a, L b, L c) {
  using S = scalar_t<L>;
  if constexpr (!Traits<L>::vector) {
    return std::fma(a, b, c);
#if defined(__AVX512F__)
  } else if constexpr (sizeof(L) == 64 && std::is_same_v<S, float>) {
    return _mm512_fmadd_ps(a, b, c);
  } else if constexpr (sizeof(L) == 64) {
    return _mm512_fmadd_pd(a, b, c);
#endif
#if defined(__FMA__)
  } else if constexpr (sizeof(L) == 32 && std::is_same_v<S, float>) {
    return _mm256_fmadd_ps(a, b, c);
  } else if constexpr (sizeof(L) == 32) {
    return _mm256_fmadd_pd(a, b, c);
  } else if constexpr (sizeof(L) == 16 && std::is_same_v<S, float>) {
    return _mm_fmadd_ps(a, b, c);
  } else if constexpr (sizeof(L) == 16) {
    return _mm_fmadd_pd(a, b, c);
#endif
  } else {
    L r;
    for (int i = 0; i < int(sizeof(L) / sizeof(S)); ++i) r[i] = std::fma(a[i], b[i], c[i]);
    return r;
  }
}

// Horner's scheme, c0 + x·(c1 + x·(…)), each step one fma. (Coefficients as arguments, not arrays:
// CUDA device code cannot read a host array.)
template <typename L>
FASTLOSS_MATH_INLINE L horner(L, scalar_t<L> c) {
  return splat<L>(c);
}
template <typename L, typename... Rest>
FASTLOSS_MATH_INLINE L horner(L x, scalar_t<L> c, Rest... rest) {
  return fma(horner(x, static_cast<scalar_t<L>>(rest)...), x, splat<L>(c));
}

template <typename T, size_t kBytes>
struct VectorOf {  // (a class member: GCC drops vector attributes on dependent local typedefs)
  typedef T type __attribute__((vector_size(kBytes)));
};

}  // namespace lanes

namespace detail {
using namespace lanes;

template <typename S>
struct Constants;
template <>
struct Constants<float> {
  static constexpr int kMantissa = 23, kBias = 127;
  static constexpr float kRound = 0x1.8p23f;  // x + kRound − kRound rounds x to an integer (|x| < 2²²)
  static constexpr float kLog2e = 0x1.715476p+0f;
  static constexpr float kLn2Hi = 0x1.62e4p-1f, kLn2Lo = 0x1.7f7d1cp-20f;    // kLn2Hi: 16 bits
  static constexpr float kExpLo = -104.0f, kExpHi = 89.0f;                   // exp is 0 below, inf above
  static constexpr float kExpm1Lo = -80.0f;                                  // expm1 is −1 below
  static constexpr int kExpm1Exact = 24;                                     // 2ⁿ − 1 is exact for n ≤ this
  static constexpr float kMinNormal = 0x1p-126f, kSubnormalScale = 0x1p25f;  // 2^(mantissa + 2)
  static constexpr int32_t kSqrtHalfBits = 0x3f3504f3;                       // √½
  template <typename L>  // exp's Taylor series from its r³ term on, over r³
  static FASTLOSS_MATH_INLINE L exp_taylor(L r) {
    return horner(r, 1.0f / 6, 1.0f / 24, 1.0f / 120, 1.0f / 720, 1.0f / 5040, 1.0f / 40320);
  }
  template <typename L>  // Σⱼ 2wʲ/(2j + 1) over w
  static FASTLOSS_MATH_INLINE L log_series(L w) {
    return horner(w, 2.0f / 3, 2.0f / 5, 2.0f / 7, 2.0f / 9);
  }
};
template <>
struct Constants<double> {
  static constexpr int kMantissa = 52, kBias = 1023;
  static constexpr double kRound = 0x1.8p52;
  static constexpr double kLog2e = 0x1.71547652b82fep+0;
  static constexpr double kLn2Hi = 0x1.62e42feep-1, kLn2Lo = 0x1.a39ef35793c76p-33;  // kLn2Hi: 32 bits
  static constexpr double kExpLo = -746.0, kExpHi = 710.0;
  static constexpr double kExpm1Lo = -700.0;
  static constexpr int kExpm1Exact = 53;
  static constexpr double kMinNormal = 0x1p-1022, kSubnormalScale = 0x1p54;  // 2^(mantissa + 2)
  static constexpr int64_t kSqrtHalfBits = 0x3fe6a09e667f3bcd;
  template <typename L>
  static FASTLOSS_MATH_INLINE L exp_taylor(L r) {
    return horner(r, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320, 1.0 / 362880, 1.0 / 3628800,
                  1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800, 1.0 / 87178291200);
  }
  template <typename L>
  static FASTLOSS_MATH_INLINE L log_series(L w) {
    return horner(w, 2.0 / 3, 2.0 / 5, 2.0 / 7, 2.0 / 9, 2.0 / 11, 2.0 / 13, 2.0 / 15, 2.0 / 17, 2.0 / 19, 2.0 / 21);
  }
};

// hi + lo = a + b exactly: Dekker's Fast2Sum (|a| ≥ |b|) and Knuth's TwoSum (any order).
template <typename L>
FASTLOSS_MATH_INLINE void fast_two_sum(L a, L b, L& hi, L& lo) {
  hi = a + b;
  lo = b - (hi - a);
}
template <typename L>
FASTLOSS_MATH_INLINE void two_sum(L a, L b, L& hi, L& lo) {
  hi = a + b;
  const L b_part = hi - a;
  lo = (a - (hi - b_part)) + (b - b_part);
}

// 2ⁿ for integer lanes n within the normal exponents.
template <typename L>
FASTLOSS_MATH_INLINE L exp2_int(int_t<L> n) {
  using C = Constants<scalar_t<L>>;
  return from_bits<L>((n + C::kBias) << C::kMantissa);
}

// n = round(x·k) for |x·k| < 2²² (float) or 2⁵¹ (double), as a float and as an integer ni (n sits in
// the low bits of x·k + kRound).
template <typename L>
FASTLOSS_MATH_INLINE L round_product(L x, scalar_t<L> k, int_t<L>& ni) {
  using C = Constants<scalar_t<L>>;
  const L t = fma(x, splat<L>(k), splat<L>(C::kRound));
  ni = bits(t) - bits(splat<L>(C::kRound));
  return t - splat<L>(C::kRound);
}

// n = round(x/ln 2), as a float and as an integer, and x − n·ln 2 as r + r_lo (n·ln2_hi and its
// difference from x are exact; r_lo is the rounding error of adding −n·ln2_lo).
template <typename L>
struct Reduced {
  L n, r, r_lo;
  int_t<L> ni;
};
template <typename L>
FASTLOSS_MATH_INLINE Reduced<L> reduce_ln2(L x, L x_lo = L{}) {
  using C = Constants<scalar_t<L>>;
  int_t<L> ni;
  const L n = round_product(x, C::kLog2e, ni);
  const L r_hi = fma(n, splat<L>(-C::kLn2Hi), x);
  const L c = fma(n, splat<L>(-C::kLn2Lo), x_lo);
  const L r = r_hi + c;
  return {n, r, c - (r - r_hi), ni};
}

// exp(r + r_lo) − 1 for |r| ≤ ½ln 2 as e + e_lo = r + r²/2 + r³·q(r) + r_lo, q the rest of the
// Taylor series (to r⁸ in float, r¹⁴ in double); r²/2 is carried in two parts, so that e stays
// accurate where expm1 scales it by 2ⁿ and adds 2ⁿ − 1 of the other sign.
template <typename L>
FASTLOSS_MATH_INLINE void expm1_reduced(L r, L r_lo, L& e, L& e_lo) {
  using S = scalar_t<L>;
  const L r2 = r * r, half = splat<L>(S(0.5));
  const L small = fma(r2 * r, Constants<S>::exp_taylor(r), fma(half, fma(r, r, -r2), r_lo));
  L a, a_lo;
  fast_two_sum(r, half * r2, a, a_lo);
  fast_two_sum(a, a_lo + small, e, e_lo);
}

// y·2ⁿ, 2ⁿ in two factors, each a normal number, so results near overflow and in the subnormals
// round once.
template <typename L>
FASTLOSS_MATH_INLINE L scale_exp2(L y, int_t<L> ni) {
  const int_t<L> half = ni >> 1;
  return y * exp2_int<L>(ni - half) * exp2_int<L>(half);
}

// (1 + e + e_lo)·2ⁿ.
template <typename L>
FASTLOSS_MATH_INLINE L exp_finish(L e, L e_lo, int_t<L> ni) {
  const L one = splat<L>(1);
  const L y = one + e;
  const L y_lo = (e - (y - one)) + e_lo;
  return scale_exp2(y + y_lo, ni);
}

// x with NaN kept and the rest clamped to [lo, hi].
template <typename L>
FASTLOSS_MATH_INLINE L clamp(L x, scalar_t<L> lo, scalar_t<L> hi) {
  x = where(x < lo, splat<L>(lo), x);
  return where(x > hi, splat<L>(hi), x);
}

// k and f of x = 2ᵏ(1 + f), 1 + f ∈ [√½, √2), for positive normal x; k as a float lane.
template <typename L>
FASTLOSS_MATH_INLINE void split_exponent(L x, L& k, L& f) {
  using S = scalar_t<L>;
  using C = Constants<S>;
  using I = int_t<L>;
  const I ix = bits(x) - C::kSqrtHalfBits;
  const I ki = ix >> C::kMantissa;
  const I mantissa = (ix & ((int_of<S>(1) << C::kMantissa) - 1)) + C::kSqrtHalfBits;
  f = from_bits<L>(mantissa) - splat<L>(S(1));  // exact
  k = from_bits<L>(ki + bits(splat<L>(C::kRound))) - splat<L>(C::kRound);
}

// k·ln 2 + log(1 + f) + c, c a small correction (log1p's rounding of 1 + x).
template <typename L>
FASTLOSS_MATH_INLINE L log_combine(L k, L f, L c) {
  using S = scalar_t<L>;
  using C = Constants<S>;
  const L s = f / (splat<L>(S(2)) + f), w = s * s;
  const L series = w * C::log_series(w);
  const L half_f2 = splat<L>(S(0.5)) * f * f;
  const L low = fma(s, half_f2 + series, fma(k, splat<L>(C::kLn2Lo), c));
  return fma(k, splat<L>(C::kLn2Hi), f - (half_f2 - low));
}

}  // namespace detail

template <typename L>
FASTLOSS_MATH_INLINE L exp(L x) {
  using namespace detail;
  using C = Constants<scalar_t<L>>;
  const auto [n, r, r_lo, ni] = reduce_ln2(clamp(x, C::kExpLo, C::kExpHi));
  (void)n;
  if constexpr (std::is_same_v<scalar_t<L>, float>) {
    // The small terms first, then r, then 1: two roundings at the end; the two-part sums below
    // (for expm1's cancellation and double's accuracy) are not needed for float exp's ≤ 1 ULP.
    const L r2 = r * r;
    const L small = fma(r2 * r, C::exp_taylor(r), fma(splat<L>(0.5f), r2, r_lo));
    return scale_exp2(splat<L>(1.0f) + (r + small), ni);
  }
  L e, e_lo;
  expm1_reduced(r, r_lo, e, e_lo);
  return exp_finish(e, e_lo, ni);
}

template <typename L>
FASTLOSS_MATH_INLINE L expm1(L x) {
  using namespace detail;
  using S = scalar_t<L>;
  using C = Constants<S>;
  using I = int_t<L>;
  const auto [n, r, r_lo, ni] = reduce_ln2(clamp(x, C::kExpm1Lo, C::kExpHi));
  (void)n;
  L e, e_lo;
  expm1_reduced(r, r_lo, e, e_lo);
  const L one = splat<L>(S(1));
  const auto high = ni > C::kExpm1Exact, low = ni < -C::kMantissa;
  // −mantissa ≤ n ≤ kExpm1Exact: 2ⁿ − 1 + 2ⁿ·e exactly as h + l (2ⁿ and 2ⁿ − 1 are exact), one rounding
  const L s = exp2_int<L>(where(high, splat<I>(C::kExpm1Exact), where(low, splat<I>(-C::kMantissa), ni)));
  L h, l;
  two_sum(s - one, s * e, h, l);
  const L y_mid = h + fma(s, e_lo, l);
  // n below: −1 plus a term far below its last place
  const L y_low = fma(exp2_int<L>(where(low, ni, splat<I>(0))), e + one, splat<L>(S(-1)));
  // n above: 2ⁿ·(1 + e − 2⁻ⁿ), 2⁻ⁿ below e's last place past 2·mantissa
  const I n_inv = where(ni > 2 * C::kMantissa, splat<I>(2 * C::kMantissa), ni);
  const L y_high = exp_finish(e - exp2_int<L>(-where(high, n_inv, splat<I>(0))), e_lo, where(high, ni, splat<I>(0)));
  const L y = where(high, y_high, where(low, y_low, y_mid));
  return where(x == S(0), x, y);  // (±0 keeps its sign)
}

template <typename L>
FASTLOSS_MATH_INLINE L log(L x) {
  using namespace detail;
  using S = scalar_t<L>;
  using C = Constants<S>;
  const auto subnormal = x < C::kMinNormal;
  const L scaled = where(subnormal, x * splat<L>(C::kSubnormalScale), x);
  L k, f;
  split_exponent(scaled, k, f);
  k = where(subnormal, k - splat<L>(S(C::kMantissa + 2)), k);  // (kSubnormalScale = 2^(mantissa + 2))
  L y = log_combine(k, f, splat<L>(S(0)));
  y = where(x == S(0), splat<L>(-S(INFINITY)), y);
  y = where(x < S(0), splat<L>(S(NAN)), y);
  return where(x < S(INFINITY), y, x);  // +inf and NaN are their own log
}

template <typename L>
FASTLOSS_MATH_INLINE L log1p(L x) {
  using namespace detail;
  using S = scalar_t<L>;
  const L one = splat<L>(S(1));
  const L u = one + x;
  // 1 + x − u exactly (Fast2Sum, the larger operand first)
  const L error = where(x * x <= one, x - (u - one), one - (u - x));
  L k, f;
  split_exponent(u, k, f);
  L y = log_combine(k, f, error / u);
  y = where(x == S(-1), splat<L>(-S(INFINITY)), y);
  y = where(x < S(-1), splat<L>(S(NAN)), y);
  y = where(x == S(0), x, y);  // (±0 keeps its sign)
  return where(x < S(INFINITY), y, x);
}

namespace detail {

// log x as hi + lo, relative error about 2⁻⁶⁸, for positive finite double lanes x: pow's logarithm,
// which y multiplies (up to |y·log x| ≈ 745) before exp.
template <typename L>
FASTLOSS_MATH_INLINE void log_double_double(L x, L& hi, L& lo) {
  using C = Constants<double>;
  const auto subnormal = x < C::kMinNormal;
  L k, f;
  split_exponent(where(subnormal, x * splat<L>(C::kSubnormalScale), x), k, f);
  k = where(subnormal, k - splat<L>(double(C::kMantissa + 2)), k);
  // s = f/(2 + f) in two parts: 2 + f exactly as d + d_lo, then the division's remainder
  L d, d_lo;
  fast_two_sum(splat<L>(2.0), f, d, d_lo);
  const L s = f / d, s_lo = (fma(-s, d, f) - s * d_lo) / d;
  // log(1 + f) = 2·atanh(s) = 2s + (2/3)s³ + Σⱼ≥₂ 2s^(2j+1)/(2j+1): 2s is exact, (2/3)s³ is carried in
  // two parts, the rest (≤ 4e-5 of the whole) in double; s_lo enters through atanh's derivative
  const L w = s * s, w_lo = fma(s, s, -w);
  const L s3 = s * w, s3_lo = fma(s, w, -s3) + s * w_lo;
  const L third = splat<L>(0x1.5555555555555p-1), third_lo = splat<L>(0x1.5555555555555p-55);  // 2/3
  const L t = third * s3, t_lo = fma(third, s3, -t) + fma(third, s3_lo, third_lo * s3);
  const L tail = s3 * w *
                 horner(w, 2.0 / 5, 2.0 / 7, 2.0 / 9, 2.0 / 11, 2.0 / 13, 2.0 / 15, 2.0 / 17, 2.0 / 19, 2.0 / 21,
                        2.0 / 23, 2.0 / 25, 2.0 / 27);
  const L ds = splat<L>(2.0) * s_lo * (splat<L>(1.0) + w);
  L a, a_lo, b, b_lo;
  two_sum(k * splat<L>(C::kLn2Hi), splat<L>(2.0) * s, a, a_lo);  // (k·ln2_hi and 2s: both exact)
  fast_two_sum(a, t, b, b_lo);                                   // |t| < |2s|/30
  const L small = ((a_lo + b_lo) + (t_lo + ds)) + (tail + k * splat<L>(C::kLn2Lo));
  fast_two_sum(b, small, hi, lo);
}

// exp(p + p_lo) for double lanes, |p_lo| ≤ ulp(p): exp with p_lo added to the reduced argument.
template <typename L>
FASTLOSS_MATH_INLINE L exp_double_double(L p, L p_lo) {
  using C = Constants<double>;
  const L pc = clamp(p, C::kExpLo, C::kExpHi);
  const auto [n, r, r_lo, ni] = reduce_ln2(pc, where(p == pc, p_lo, splat<L>(0.0)));
  (void)n;
  L e, e_lo;
  expm1_reduced(r, r_lo, e, e_lo);
  return exp_finish(e, e_lo, ni);
}

// y's kind, for finite y: an integer, and an odd one.
template <typename L>
FASTLOSS_MATH_INLINE void integer_kind(L y, decltype(L{} < L{})& integral, decltype(L{} < L{})& odd) {
  const L ay = where(y < 0.0, -y, y);
  // below 2⁵², adding 2⁵² rounds to an integer, whose parity is the sum's last bit; from 2⁵² on every
  // double is an integer, its last bit the parity up to 2⁵³, even from there on
  const auto below = ay < 0x1p52;
  const L shifted = where(below, ay + splat<L>(0x1p52), ay);
  const auto whole = either(ay >= 0x1p52, (shifted - splat<L>(0x1p52)) == ay);
  integral = whole;
  odd = both(both(ay < 0x1p53, whole), (bits(shifted) & 1) == 1);
}

// pow on double lanes, with the special values of C11 F.10.4.4. kForFloat: the lanes hold floats,
// whose pow needs no double-double (y·log x ≤ 150 in magnitude there, so double's own error stays
// ~2⁻⁴⁵ relative, far below a float's last place).
template <bool kForFloat = false, typename L>
FASTLOSS_MATH_INLINE L pow_double(L x, L y) {
  const L inf = splat<L>(INFINITY), zero = splat<L>(0.0), one = splat<L>(1.0);
  const L ax = where(x < 0.0, -x, x), ay = where(y < 0.0, -y, y);
  const auto finite_x = both(ax > 0.0, ax < INFINITY), finite_y = ay < INFINITY;
  const L yy = where(finite_y, y, zero);
  L r;
  if constexpr (kForFloat) {
    r = exp(yy * log(where(finite_x, ax, one)));
  } else {
    L l_hi, l_lo;
    log_double_double(where(finite_x, ax, one), l_hi, l_lo);
    const L p = yy * l_hi;
    r = exp_double_double(p, fma(yy, l_hi, -p) + yy * l_lo);
  }
  r = where(ax == 0.0, where(y < 0.0, inf, zero), r);  // 0^y
  r = where(ax == INFINITY, where(y < 0.0, zero, inf), r);
  r = where(ay == INFINITY, where(ax == 1.0, one, where((ax < 1.0) == (y < 0.0), inf, zero)), r);
  decltype(L{} < L{}) integral, odd;
  integer_kind(yy, integral, odd);
  odd = both(odd, finite_y);
  r = where(both(bits(x) < 0, odd), -r, r);  // a negative x (−0 and −inf too) to an odd power
  r = where(both(both(x < 0.0, ax < INFINITY), both(finite_y, integral == 0)), splat<L>(NAN), r);
  r = where(either(x != x, y != y), x + y, r);
  return where(either(y == 0.0, x == 1.0), one, r);
}

// atan(q) for q ∈ [0, 1] as hi + lo (lo < ulp(hi)), q + q_lo the exact ratio.
template <typename L>
FASTLOSS_MATH_INLINE void atan_unit(L q, L q_lo, L& hi, L& lo) {
  // the nearest c of {0, ¼, ½, ¾, 1} and atan c in two parts
  const L c = fma(q, splat<L>(4.0), splat<L>(0x1.8p52)) - splat<L>(0x1.8p52);  // round(4q)
  static constexpr double kHi[] = {0.0, 0x1.f5b75f92c80ddp-3, 0x1.dac670561bb4fp-2, 0x1.4978fa3269ee1p-1,
                                   0x1.921fb54442d18p-1};
  static constexpr double kLo[] = {0.0, 0x1.8ab6e3cf7afbdp-57, 0x1.a2b7f222f65e2p-56, 0x1.2419a87f2a458p-56,
                                   0x1.1a62633145c07p-55};
  L a_hi = splat<L>(kHi[0]), a_lo = splat<L>(kLo[0]);
  for (int i = 1; i < 5; ++i) {
    a_hi = where(c == double(i), splat<L>(kHi[i]), a_hi);
    a_lo = where(c == double(i), splat<L>(kLo[i]), a_lo);
  }
  const L cq = c * splat<L>(0.25);
  // t = (q − c)/(1 + qc): q − c is exact (Sterbenz), the division's remainder gives t's low part
  const L num = q - cq, den = fma(q, cq, splat<L>(1.0));
  const L t = num / den;
  const L t_lo = (fma(-t, den, num) - t * fma(q, cq, splat<L>(1.0) - den)) / den;
  // atan t = t − t³/3 + t⁵/5 − … (|t| ≤ ⅛: up to t²³)
  const L w = t * t;
  const L tail = t * w *
                 horner(w, -1.0 / 3, 1.0 / 5, -1.0 / 7, 1.0 / 9, -1.0 / 11, 1.0 / 13, -1.0 / 15, 1.0 / 17, -1.0 / 19,
                        1.0 / 21, -1.0 / 23);
  // q_lo moves t by q_lo·(1 + c²)/(1 + qc)², and atan t by that over 1 + t²
  const L dq = q_lo / (den * den + num * num) * (splat<L>(1.0) + cq * cq);
  fast_two_sum(a_hi, t, hi, lo);
  lo = lo + (a_lo + (t_lo + dq + tail));
}

// atan2 on double lanes, with the special values of C11 F.10.1.4.
template <typename L>
FASTLOSS_MATH_INLINE L atan2_double(L y, L x) {
  const L ax = where(x < 0.0, -x, x), ay = where(y < 0.0, -y, y);
  const auto swap = ay > ax;
  const L num = where(swap, ax, ay), den = where(swap, ay, ax);
  const auto finite = both(den < INFINITY, den > 0.0);
  const L dd = where(finite, den, splat<L>(1.0)), nn = where(finite, num, splat<L>(0.0));
  const L q = nn / dd, q_lo = fma(-q, dd, nn) / dd;
  L hi, lo;
  atan_unit(q, q_lo, hi, lo);
  // the octant: π/2 − a where |y| > |x|, then π − that where x < 0 (each constant in two parts)
  const L half_pi = splat<L>(0x1.921fb54442d18p+0), half_pi_lo = splat<L>(0x1.1a62633145c07p-54);
  L h, l;
  fast_two_sum(half_pi, -hi, h, l);
  hi = where(swap, h, hi);
  lo = where(swap, (l + half_pi_lo) - lo, lo);
  const L pi = splat<L>(0x1.921fb54442d18p+1), pi_lo = splat<L>(0x1.1a62633145c07p-53);
  fast_two_sum(pi, -hi, h, l);
  const auto negative_x = bits(x) < 0;
  hi = where(negative_x, h, hi);
  lo = where(negative_x, (l + pi_lo) - lo, lo);
  L r = hi + lo;
  // both infinite: the odd multiples of π/4; a NaN: NaN
  const L quarter = where(negative_x, splat<L>(0x1.2d97c7f3321d2p+1), splat<L>(0x1.921fb54442d18p-1));
  r = where(both(ax == INFINITY, ay == INFINITY), quarter, r);
  r = where(either(x != x, y != y), x + y, r);
  return where(bits(y) < 0, -r, r);  // (y's sign, −0 included)
}

// Float lanes through the double functions: one double vector of the same size holds half the lanes.
#if !defined(__CUDACC__)  // (vectors exist on the CPU only; nvcc's front end cannot parse these)
template <typename D, size_t kOffset, typename L, size_t... I>
FASTLOSS_MATH_INLINE D widen_lanes(L v, std::index_sequence<I...>) {
  return __builtin_convertvector(__builtin_shufflevector(v, v, (kOffset + I)...), D);
}
template <typename L, typename Half, size_t... I>
FASTLOSS_MATH_INLINE L join_lanes(Half lo, Half hi, std::index_sequence<I...>) {
  return __builtin_shufflevector(lo, hi, I...);
}
// The double vector of float vector L's size.
template <typename L>
using DoubleOf = typename VectorOf<double, sizeof(L)>::type;
// Float lanes v as two double vectors (its first and second half), and back.
template <typename L>
FASTLOSS_MATH_INLINE void widen(L v, DoubleOf<L>& lo, DoubleOf<L>& hi) {
  constexpr size_t n = sizeof(L) / sizeof(float);
  lo = widen_lanes<DoubleOf<L>, 0>(v, std::make_index_sequence<n / 2>{});
  hi = widen_lanes<DoubleOf<L>, n / 2>(v, std::make_index_sequence<n / 2>{});
}
template <typename L>
FASTLOSS_MATH_INLINE L narrow(DoubleOf<L> lo, DoubleOf<L> hi) {
  using Half = typename VectorOf<float, sizeof(L) / 2>::type;
  return join_lanes<L>(__builtin_convertvector(lo, Half), __builtin_convertvector(hi, Half),
                       std::make_index_sequence<sizeof(L) / sizeof(float)>{});
}
#endif
template <typename L, typename Fn>
FASTLOSS_MATH_INLINE L through_double(L a, L b, Fn fn) {
  if constexpr (!Traits<L>::vector) {
    return static_cast<float>(fn(static_cast<double>(a), static_cast<double>(b)));
  } else {
#if !defined(__CUDACC__)
    DoubleOf<L> a_lo, a_hi, b_lo, b_hi;
    widen(a, a_lo, a_hi);
    widen(b, b_lo, b_hi);
    return narrow<L>(fn(a_lo, b_lo), fn(a_hi, b_hi));
#endif
  }
}

// (functors rather than lambdas: forced inline, and callable on the device)
struct PowOfFloats {
  template <typename D>
  FASTLOSS_MATH_INLINE D operator()(D x, D y) const {
    return pow_double<true>(x, y);
  }
};
struct Atan2OfFloats {
  template <typename D>
  FASTLOSS_MATH_INLINE D operator()(D y, D x) const {
    return atan2_double(y, x);
  }
};

}  // namespace detail

// x^y.
template <typename L>
FASTLOSS_MATH_INLINE L pow(L x, L y) {
  if constexpr (std::is_same_v<lanes::scalar_t<L>, double>) {
    return detail::pow_double(x, y);
  } else {
    return detail::through_double(x, y, detail::PowOfFloats{});
  }
}

// atan2(y, x): the angle of (x, y), in [−π, π].
template <typename L>
FASTLOSS_MATH_INLINE L atan2(L y, L x) {
  if constexpr (std::is_same_v<lanes::scalar_t<L>, double>) {
    return detail::atan2_double(y, x);
  } else {
    return detail::through_double(y, x, detail::Atan2OfFloats{});
  }
}

// atan(x) = atan2(x, 1).
template <typename L>
FASTLOSS_MATH_INLINE L atan(L x) {
  return atan2(x, lanes::splat<L>(1));
}

namespace detail {

// sin and cos of r + q·π/2 from sin r and cos r (q = 0: sin, cos; 1: cos, −sin; 2: −sin, −cos;
// 3: −cos, sin).
template <typename L>
FASTLOSS_MATH_INLINE void in_quadrant(int_t<L> q, L sin_r, L cos_r, L& s, L& c) {
  const auto swap = (q & 1) != 0;
  const L a = where(swap, cos_r, sin_r), b = where(swap, sin_r, cos_r);
  s = where((q & 2) != 0, -a, a);
  c = where(((q + 1) & 2) != 0, -b, b);
}

// sin and cos of r + r_lo, |r| ≤ π/4 (plus rounding), for quadrant q (of x = r + q·π/2, q mod 4):
// sin r = r + r³·P(r²) + r_lo·(1 − r²/2),  cos r = 1 − r²/2 + r⁴·Q(r²) − r·r_lo,  P and Q their
// Taylor series to r¹⁹ and r²⁰ (the next terms are below 2⁻⁷⁰ of the result). 1 − r²/2 is carried in
// two parts (the rounding errors of r² and of the subtraction), so cos is one rounding from its value.
template <typename L>
FASTLOSS_MATH_INLINE void sincos_reduced(L r, L r_lo, int_t<L> q, L& s, L& c) {
  const L z = r * r, z_lo = fma(r, r, -z), half = splat<L>(0.5), one = splat<L>(1.0);
  const L hz = half * z;
  const L sin_r = r + fma(r * z,
                          horner(z, -1.0 / 6, 1.0 / 120, -1.0 / 5040, 1.0 / 362880, -1.0 / 39916800, 1.0 / 6227020800,
                                 -1.0 / 1307674368000, 1.0 / 355687428096000, -1.0 / 121645100408832000),
                          fma(-hz, r_lo, r_lo));
  const L w = one - hz;
  const L tail = fma(z * z,
                     horner(z, 1.0 / 24, -1.0 / 720, 1.0 / 40320, -1.0 / 3628800, 1.0 / 479001600, -1.0 / 87178291200,
                            1.0 / 20922789888000, -1.0 / 6402373705728000, 1.0 / 2432902008176640000),
                     fma(-r, r_lo, ((one - w) - hz) - half * z_lo));
  in_quadrant(q, sin_r, w + tail, s, c);
}

// 64 bits of 2/π from bit `start` on (bit k weighs 2⁻ᵏ; bits before the first are 0).
FASTLOSS_MATH_INLINE uint64_t two_over_pi_word(int j) {
  switch (j) {  // (a switch, not an array: device code cannot read a host array)
    case 0: return 0xa2f9836e4e441529ull;
    case 1: return 0xfc2757d1f534ddc0ull;
    case 2: return 0xdb6295993c439041ull;
    case 3: return 0xfe5163abdebbc561ull;
    case 4: return 0xb7246e3a424dd2e0ull;
    case 5: return 0x06492eea09d1921cull;
    case 6: return 0xfe1deb1cb129a73eull;
    case 7: return 0xe88235f52ebb4484ull;
    case 8: return 0xe99c7026b45f7e41ull;
    case 9: return 0x3991d639835339f4ull;
    case 10: return 0x9c845f8bbdf9283bull;
    case 11: return 0x1ff897ffde05980full;
    case 12: return 0xef2f118b5a0a6d1full;
    case 13: return 0x6d367ecf27cb09b7ull;
    case 14: return 0x4f463f669e5fea2dull;
    case 15: return 0x7527bac7ebe5f17bull;
    case 16: return 0x3d0739f78a5292eaull;
    case 17: return 0x6bfb5fb11f8d5d08ull;
    case 18: return 0x56033046fc7b6babull;
    default: return 0xf0cfbc209af4361dull;
  }
}
FASTLOSS_MATH_INLINE uint64_t two_over_pi_bits(int start) {
  const int s = start - 1;
  if (s <= -64) return 0;
  if (s < 0) return two_over_pi_word(0) >> -s;
  const int j = s / 64, o = s % 64;
  return o == 0 ? two_over_pi_word(j) : (two_over_pi_word(j) << o) | (two_over_pi_word(j + 1) >> (64 - o));
}

// hi·2⁶⁴ + lo = a·b.
FASTLOSS_MATH_INLINE void multiply_64(uint64_t a, uint64_t b, uint64_t& hi, uint64_t& lo) {
#if defined(__CUDA_ARCH__)
  hi = __umul64hi(a, b);
#else
  hi = static_cast<uint64_t>((static_cast<unsigned __int128>(a) * b) >> 64);
#endif
  lo = a * b;
}
FASTLOSS_MATH_INLINE int leading_zeros(uint64_t v) {
#if defined(__CUDA_ARCH__)
  return __clzll(static_cast<long long>(v));
#else
  return __builtin_clzll(v);
#endif
}

// x = r + r_lo + q·π/2 for finite |x| ≥ 2²⁰, by Payne and Hanek's reduction (1983): x = m·2ᵉ (m an
// integer of 53 bits) times the 192 bits of 2/π from bit e − 2 on — the bits before contribute
// multiples of 4 — as a 256-bit integer product, whose bits 189–190 are q mod 4 and the 128 below
// them the fraction f (x·2/π = 4j + q + f); then r = f·π/2 in two parts. The closest a double
// comes to a multiple of π/2 is ~2⁻⁶¹ of it, so the fraction keeps ≥ 60 bits.
FASTLOSS_MATH_INLINE void reduce_pi_over_2_large(double x, double& r, double& r_lo, int64_t& q) {
  const uint64_t u = __builtin_bit_cast(uint64_t, x);
  const uint64_t m = (u & ((uint64_t(1) << 52) - 1)) | (uint64_t(1) << 52);
  const int e = static_cast<int>((u >> 52) & 0x7ff) - 1075;
  const uint64_t w0 = two_over_pi_bits(e - 2), w1 = two_over_pi_bits(e + 62), w2 = two_over_pi_bits(e + 126);
  uint64_t h0, l0, h1, l1, h2, l2;
  multiply_64(m, w0, h0, l0);
  multiply_64(m, w1, h1, l1);
  multiply_64(m, w2, h2, l2);
  (void)h0;
  const uint64_t p0 = l2, p1 = h2 + l1;
  const uint64_t p2 = h1 + l0 + (p1 < h2 ? 1 : 0);
  q = static_cast<int64_t>((p2 >> 61) & 3);
  uint64_t f_hi = (p2 << 3) | (p1 >> 61), f_lo = (p1 << 3) | (p0 >> 61);  // f·2¹²⁸
  const bool upper = (f_hi >> 63) != 0;                                   // f ≥ ½: x·2/π is nearer q + 1, f − 1 < 0
  if (upper) {
    q = (q + 1) & 3;
    f_lo = ~f_lo + 1;
    f_hi = ~f_hi + (f_lo == 0 ? 1 : 0);
  }
  // |f| as hi + lo, 53 bits each, from the normalised 128 bits
  const int z = f_hi != 0 ? leading_zeros(f_hi) : 64 + leading_zeros(f_lo | 1);
  uint64_t top, low;
  if (z == 0) {
    top = f_hi, low = f_lo;
  } else if (z < 64) {
    top = (f_hi << z) | (f_lo >> (64 - z)), low = f_lo << z;
  } else {
    top = f_lo << (z - 64), low = 0;
  }
  const double f = static_cast<double>(top >> 11) * exp2_int<double>(-53 - z);
  const double f_low = static_cast<double>(((top & 0x7ff) << 42) | (low >> 22)) * exp2_int<double>(-106 - z);
  const double pio2 = 0x1.921fb54442d18p+0, pio2_lo = 0x1.1a62633145c07p-54;
  const double hi = f * pio2;
  const double lo = fma(f, pio2, -hi) + fma(f, pio2_lo, f_low * pio2);
  fast_two_sum(hi, lo, r, r_lo);
  if (upper) r = -r, r_lo = -r_lo;
  if (x < 0) r = -r, r_lo = -r_lo, q = (4 - q) & 3;
}

// sin and cos of a double |x| ≥ 2²⁰, inf or NaN.
FASTLOSS_MATH_INLINE void sincos_large(double x, double& s, double& c) {
  if (!(x - x == 0)) {  // inf, NaN
    s = c = x - x;
    return;
  }
  double r, r_lo;
  int64_t q;
  reduce_pi_over_2_large(x, r, r_lo, q);
  sincos_reduced(r, r_lo, q, s, c);
}

// n = round(x·2/π), as a double and as an integer q (n mod 4 is x's quadrant), for |x| < 2⁵¹.
template <typename L>
FASTLOSS_MATH_INLINE L nearest_quadrant(L x, int_t<L>& q) {
  return round_product(x, 0x1.45f306dc9c883p-1, q);
}

// The lanes the reductions below 2²⁰ leave: sin x = x where it rounds to x (±0 keeps its sign), and
// |x| ≥ 2²⁰, inf and NaN by sincos_large (lane by lane: rare).
template <typename L>
FASTLOSS_MATH_INLINE void sincos_edges(L x, L& s, L& c) {
  const L ax = where(x < 0.0, -x, x);
  s = where(ax < 0x1p-26, x, s);
  const auto large = !(ax < 0x1p20);
  if constexpr (Traits<L>::vector) {
    for (int i = 0; i < int(sizeof(L) / sizeof(double)); ++i)
      if (large[i]) {
        double sv, cv;
        sincos_large(x[i], sv, cv);
        s[i] = sv, c[i] = cv;
      }
  } else if (large) {
    sincos_large(x, s, c);
  }
}

// sin x and cos x of double lanes: x = r + n·π/2, n = round(x·2/π), by Cody and Waite's reduction
// for |x| < 2²⁰ — π/2 in four parts, the first three of 33 bits, so n times each is exact and the
// differences are carried as r + r_lo — and by reduce_pi_over_2_large beyond (lane by lane: rare).
template <typename L>
FASTLOSS_MATH_INLINE void sincos_double(L x, L& s, L& c) {
  int_t<L> q;
  const L n = nearest_quadrant(x, q);
  const L a = fma(n, splat<L>(-0x1.921fb54400000p+0), x);  // (exact)
  L s1, e1, s2, e2, r, r_lo;
  two_sum(a, n * splat<L>(-0x1.0b4611a600000p-34), s1, e1);
  two_sum(s1, n * splat<L>(-0x1.3198a2e000000p-69), s2, e2);
  two_sum(s2, fma(n, splat<L>(-0x1.b839a252049c1p-104), e1 + e2), r, r_lo);
  sincos_reduced(r, r_lo, q, s, c);
  sincos_edges(x, s, c);
}

// sin x and cos x of float inputs x, in double lanes, to the ~2⁻³⁶ that one rounding to float needs
// (then ≤ 0.5 + 2⁻¹² ULP): below 2²⁰, n·π/2 in two parts (n times the first, of 33 bits, exact; the
// closest a float comes to a multiple of π/2 there keeps r to ~2⁻³⁴ relative), Taylor series to r¹¹
// and r¹²; beyond, sincos_double's reduction.
template <typename L>
FASTLOSS_MATH_INLINE void sincos_of_floats(L x, L& s, L& c) {
  int_t<L> q;
  const L n = nearest_quadrant(x, q);
  const L r = fma(n, splat<L>(-0x1.0b4611a626331p-34), fma(n, splat<L>(-0x1.921fb54400000p+0), x));
  const L z = r * r;
  const L sin_r = fma(r * z, horner(z, -1.0 / 6, 1.0 / 120, -1.0 / 5040, 1.0 / 362880, -1.0 / 39916800), r);
  const L cos_r = fma(z * z, horner(z, 1.0 / 24, -1.0 / 720, 1.0 / 40320, -1.0 / 3628800, 1.0 / 479001600),
                      fma(splat<L>(-0.5), z, splat<L>(1.0)));
  in_quadrant(q, sin_r, cos_r, s, c);
  sincos_edges(x, s, c);
}

}  // namespace detail

// sin x and cos x at once (one reduction); float through double (one final rounding).
template <typename L>
FASTLOSS_MATH_INLINE void sincos(L x, L& s, L& c) {
  using namespace detail;
  if constexpr (std::is_same_v<scalar_t<L>, double>) {
    sincos_double(x, s, c);
  } else if constexpr (!Traits<L>::vector) {
    double sd, cd;
    sincos_of_floats(static_cast<double>(x), sd, cd);
    s = static_cast<float>(sd), c = static_cast<float>(cd);
  } else {
#if !defined(__CUDACC__)
    DoubleOf<L> lo, hi, s_lo, c_lo, s_hi, c_hi;
    widen(x, lo, hi);
    sincos_of_floats(lo, s_lo, c_lo);
    sincos_of_floats(hi, s_hi, c_hi);
    s = narrow<L>(s_lo, s_hi), c = narrow<L>(c_lo, c_hi);
#endif
  }
}
template <typename L>
FASTLOSS_MATH_INLINE L sin(L x) {
  L s, c;
  sincos(x, s, c);
  return s;
}
template <typename L>
FASTLOSS_MATH_INLINE L cos(L x) {
  L s, c;
  sincos(x, s, c);
  return c;
}

}  // namespace fastloss::math
