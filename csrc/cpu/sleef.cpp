// The binding of cpu/sleef.h: dlopen the package's libsleef.so.3 (beside this library) privately and
// take the flavour's function variants by name.
#include <dlfcn.h>
#include <stdexcept>
#include <string>
#include "cpu/simd.h"

namespace fastloss::simd::sleef {

#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
namespace {
[[noreturn]] void not_loaded();

template <typename V>
V unbound(V) {
  not_loaded();
}
template <typename V>
V unbound2(V, V) {
  not_loaded();
}

// The bound variants (load()); until then stubs that throw, so a kernel never calls null.
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
Functions<float> f32;
Functions<double> f64;
}  // namespace

#define FASTLOSS_SLEEF_DEFINE(T, table)                                         \
  raw<T> exp(raw<T> x) { return table.exp(x); }                                 \
  raw<T> expm1(raw<T> x) { return table.expm1(x); }                             \
  raw<T> log(raw<T> x) { return table.log(x); }                                 \
  raw<T> log1p(raw<T> x) { return table.log1p(x); }                             \
  raw<T> pow(raw<T> x, raw<T> y) { return table.pow(x, y); }                    \
  raw<T> atan2(raw<T> y, raw<T> x) { return table.atan2(y, x); }
FASTLOSS_SLEEF_DEFINE(float, f32)
FASTLOSS_SLEEF_DEFINE(double, f64)
#undef FASTLOSS_SLEEF_DEFINE

namespace {
#if defined(CPU_CAPABILITY_AVX512)
constexpr const char* kFloat = "f16_u10avx512f";
constexpr const char* kDouble = "d8_u10avx512f";
#else
constexpr const char* kFloat = "f8_u10avx2";
constexpr const char* kDouble = "d4_u10avx2";
#endif

std::string error = "never loaded";

template <typename Fn>
bool bind(void* lib, Fn& fn, const char* name, const char* suffix) {
  const std::string symbol = std::string("Sleef_") + name + suffix;
  fn = reinterpret_cast<Fn>(dlsym(lib, symbol.c_str()));
  if (fn == nullptr) error = "its SLEEF library lacks " + symbol;
  return fn != nullptr;
}

template <typename T>
bool bind_all(void* lib, Functions<T>& f, const char* suffix) {
  return bind(lib, f.exp, "exp", suffix) && bind(lib, f.expm1, "expm1", suffix) && bind(lib, f.log, "log", suffix) &&
         bind(lib, f.log1p, "log1p", suffix) && bind(lib, f.pow, "pow", suffix) &&
         bind(lib, f.atan2, "atan2", suffix);
}
}  // namespace

const char* load() {
  Dl_info self{};
  if (dladdr(reinterpret_cast<void*>(&load), &self) == 0 || self.dli_fname == nullptr)
    return "cannot locate its own library file";
  std::string path = self.dli_fname;
  path = path.substr(0, path.find_last_of('/') + 1) + "libsleef.so.3";
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    error = std::string("cannot load ") + path + " (" + dlerror() + ")";
    return error.c_str();
  }
  if (!bind_all(lib, f32, kFloat) || !bind_all(lib, f64, kDouble)) return error.c_str();
  error.clear();
  return nullptr;
}

namespace {
void not_loaded() {
  throw std::runtime_error("fastloss: the CPU kernels' SLEEF functions are not bound (" +
                           (error.empty() ? std::string("never loaded") : error) + ")");
}
}  // namespace

#ifndef FASTLOSS_CPU_MODULE
// The LibTorch library (CMakeLists.txt) has no Python module init: it binds when loaded. A failure
// leaves the throwing stubs in place, so a kernel that needs SLEEF raises instead of crashing.
static const bool bound_at_load = load() == nullptr;
#endif
#else
const char* load() { return nullptr; }  // lane-wise C library functions: nothing to bind
#endif

}  // namespace fastloss::simd::sleef
