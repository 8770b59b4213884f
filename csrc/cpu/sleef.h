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
[[noreturn]] void not_loaded();  // throws: SLEEF is not bound (load() failed or was never called)

template <typename V>
V unbound(V) { not_loaded(); }
template <typename V>
V unbound2(V, V) { not_loaded(); }

template <typename T>
struct Functions {
  using V = raw<T>;
  V (*exp)(V) = unbound<V>;
  V (*expm1)(V) = unbound<V>;
  V (*log)(V) = unbound<V>;
  V (*log1p)(V) = unbound<V>;
  V (*pow)(V, V) = unbound2<V>;
  V (*atan2)(V, V) = unbound2<V>;
};
extern Functions<float> f32;
extern Functions<double> f64;

template <typename T>
inline const Functions<T>& functions() {
  if constexpr (sizeof(T) == 4) return f32;
  else return f64;
}
template <typename T>
inline raw<T> exp(raw<T> x) { return functions<T>().exp(x); }
template <typename T>
inline raw<T> expm1(raw<T> x) { return functions<T>().expm1(x); }
template <typename T>
inline raw<T> log(raw<T> x) { return functions<T>().log(x); }
template <typename T>
inline raw<T> log1p(raw<T> x) { return functions<T>().log1p(x); }
template <typename T>
inline raw<T> pow(raw<T> x, raw<T> y) { return functions<T>().pow(x, y); }
template <typename T>
inline raw<T> atan2(raw<T> y, raw<T> x) { return functions<T>().atan2(y, x); }
#else
#define FASTLOSS_SLEEF_LANEWISE(name, expr)                    \
  template <typename T>                                         \
  inline raw<T> name(raw<T> x, raw<T> y = raw<T>{}) {           \
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
#endif

// Binds the functions from the copy of SLEEF beside this library; nullptr, or why it could not.
const char* load();

}  // namespace fastloss::simd::sleef
