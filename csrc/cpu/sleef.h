#pragma once
// SLEEF's vector log, log1p, pow, atan2, exp and expm1 (1-ulp variants) for the x86 flavours: the
// functions ATen's Vectorized called, so results stay bitwise ATen's. The symbols libtorch exports
// are not part of its stable contract, and this machine's distribution ships SLEEF only as a shared
// library, so the package carries its own copy (fastloss/libsleef.so.3, copied there by setup.py)
// and binds these functions from it by name at import (load(), called by the module's init):
// a direct, private binding that no other library's SLEEF can interpose. Other targets (aarch64)
// compute lane by lane with the C library.
#include <cmath>
#include <cstdint>

namespace fastloss::simd::sleef {

template <typename T>
struct Raw {  // (a class member: GCC drops vector attributes on alias templates)
  typedef T type __attribute__((vector_size(kBytes)));
};
template <typename T>
using raw = typename Raw<T>::type;

#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
// Plain functions (sleef.cpp) that jump to the bound SLEEF variant: a kernel sees a direct call, as
// it saw ATen's call of Sleef_*_u10, so GCC inlines around it as it did (and fuses the same a·b + c).
#define FASTLOSS_SLEEF_DECLARE(T)          \
  raw<T> exp(raw<T> x);                    \
  raw<T> expm1(raw<T> x);                  \
  raw<T> log(raw<T> x);                    \
  raw<T> log1p(raw<T> x);                  \
  raw<T> pow(raw<T> x, raw<T> y);          \
  raw<T> atan2(raw<T> y, raw<T> x);
FASTLOSS_SLEEF_DECLARE(float)
FASTLOSS_SLEEF_DECLARE(double)
#undef FASTLOSS_SLEEF_DECLARE
#else
#define FASTLOSS_SLEEF_LANEWISE(name, expr)                    \
  template <typename T>                                         \
  inline raw<T> name##_lanes(raw<T> x, raw<T> y = raw<T>{}) {   \
    raw<T> r;                                                   \
    for (int i = 0; i < int(sizeof(raw<T>) / sizeof(T)); ++i) { \
      const T a = x[i], b = y[i];                               \
      (void)b;                                                  \
      r[i] = expr;                                              \
    }                                                           \
    return r;                                                   \
  }
FASTLOSS_SLEEF_LANEWISE(exp, std::exp(a))
FASTLOSS_SLEEF_LANEWISE(expm1, std::expm1(a))
FASTLOSS_SLEEF_LANEWISE(log, std::log(a))
FASTLOSS_SLEEF_LANEWISE(log1p, std::log1p(a))
FASTLOSS_SLEEF_LANEWISE(pow, std::pow(a, b))
FASTLOSS_SLEEF_LANEWISE(atan2, std::atan2(a, b))
#undef FASTLOSS_SLEEF_LANEWISE
inline raw<float> exp(raw<float> x) { return exp_lanes<float>(x); }
inline raw<double> exp(raw<double> x) { return exp_lanes<double>(x); }
inline raw<float> expm1(raw<float> x) { return expm1_lanes<float>(x); }
inline raw<double> expm1(raw<double> x) { return expm1_lanes<double>(x); }
inline raw<float> log(raw<float> x) { return log_lanes<float>(x); }
inline raw<double> log(raw<double> x) { return log_lanes<double>(x); }
inline raw<float> log1p(raw<float> x) { return log1p_lanes<float>(x); }
inline raw<double> log1p(raw<double> x) { return log1p_lanes<double>(x); }
inline raw<float> pow(raw<float> x, raw<float> y) { return pow_lanes<float>(x, y); }
inline raw<double> pow(raw<double> x, raw<double> y) { return pow_lanes<double>(x, y); }
inline raw<float> atan2(raw<float> y, raw<float> x) { return atan2_lanes<float>(y, x); }
inline raw<double> atan2(raw<double> y, raw<double> x) { return atan2_lanes<double>(y, x); }
#endif

// Binds the functions from the copy of SLEEF beside this library; nullptr, or why it could not.
const char* load();

}  // namespace fastloss::simd::sleef
