// Accuracy of csrc/math/elementary.h, torch-free: errors in units in the last place (ULP) against
// references more precise than the function (float: the C library's double functions; double: its
// long double ones), the special values bit for bit against the C library, and a digest of every
// result, so that builds for different vector widths (and CPUs) can be compared bit for bit.
//
//   accuracy sample        a stratified sample (the test suite: tests/test_math_functions.py)
//   accuracy exhaustive    every float32 input of exp, expm1, log, log1p, sin, cos; 10⁹ pairs of pow and
//                          atan2 in float; 10⁸ double inputs per function (make math-exhaustive)
//   accuracy digest        the sample's results only, no references: their digest, quickly (under
//                          qemu: make aarch64-math compares an aarch64 build's with this machine's)
//   accuracy speed         elements per nanosecond of each function, one thread, over a 64 KiB
//                          buffer in cache (scripts/math_speed.py puts torch's beside them)
//
// Prints one line per function, "name max_ulp worst_input [worst_y]", then "digest <hex>"; exits 1 if
// an error exceeds 1 ULP or a special value differs from the C library's.
#include <cfloat>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <chrono>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "math/elementary.h"

namespace fm = fastloss::math;

#if defined(__AVX512F__)
constexpr int kBytes = 64;
#elif defined(__AVX2__)
constexpr int kBytes = 32;
#else
constexpr int kBytes = 16;
#endif
typedef float VF __attribute__((vector_size(kBytes)));
typedef double VD __attribute__((vector_size(kBytes)));
constexpr int kFloatLanes = kBytes / 4, kDoubleLanes = kBytes / 8;

template <typename T>
uint64_t bits_of(T x) {
  if constexpr (sizeof(T) == 4)
    return __builtin_bit_cast(uint32_t, x);
  else
    return __builtin_bit_cast(uint64_t, x);
}

// The bits of x, any NaN as one pattern (NaN payloads and signs are the hardware's: x86 makes
// 0xFFC00000 where aarch64 makes 0x7FC00000).
template <typename T>
uint64_t hashed_bits(T x) {
  return x != x ? 0x7ff8 : bits_of(x);
}

// |got − ref| in ULPs of T at ref (the subnormal ULP below the normal range); overflow of ref past
// T's range means ±inf. A NaN where ref is a number, or the reverse, or a wrong infinity or zero
// sign, is an infinite error.
template <typename T>
double ulp_error(T got, long double ref) {
  constexpr int digits = std::numeric_limits<T>::digits, min_exp = std::numeric_limits<T>::min_exponent;
  if (std::isnan(ref)) return std::isnan(got) ? 0 : INFINITY;
  if (std::isnan(got)) return INFINITY;
  // (at max + half its ULP a result rounds to infinity)
  const long double limit = static_cast<long double>(std::numeric_limits<T>::max()) +
                            std::ldexp(1.0L, std::numeric_limits<T>::max_exponent - digits - 1);
  if (std::fabs(ref) >= limit) ref = ref > 0 ? INFINITY : -INFINITY;
  if (std::isinf(ref) || std::isinf(got)) return static_cast<long double>(got) == ref ? 0 : INFINITY;
  if (ref == 0) return got == 0 ? 0 : INFINITY;
  int e;
  std::frexp(ref, &e);
  const long double ulp = std::ldexp(1.0L, std::max(e - digits, min_exp - digits));
  return static_cast<double>(std::fabs(static_cast<long double>(got) - ref) / ulp);
}

bool measure = true;  // false: results and their digest only

struct Worst {
  std::string name;
  double ulp = 0;
  long double x = 0, y = 0;
  uint64_t digest = 1469598103934665603ull;
  template <typename Err>
  void see(const Err& err_of, long double a, long double b = 0) {
    if (!measure) return;
    const double err = err_of();
    if (err > ulp || (std::isnan(err) && !std::isnan(ulp))) ulp = err, x = a, y = b;
  }
  void hash(uint64_t v) { digest = (digest ^ v) * 1099511628211ull; }
  void merge(const Worst& o) {
    if (o.ulp > ulp) ulp = o.ulp, x = o.x, y = o.y;
    hash(o.digest);
  }
};

// Runs fn(begin, end, worst) over [0, n) in chunks on every core, merging the chunks in order (so the
// digest does not depend on the thread count).
void parallel(uint64_t n, Worst& total, const std::function<void(uint64_t, uint64_t, Worst&)>& fn) {
  const uint64_t chunks = 256, per = (n + chunks - 1) / chunks;
  std::vector<Worst> parts(chunks);
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      for (uint64_t c = t; c < chunks; c += threads) fn(c * per, std::min(n, (c + 1) * per), parts[c]);
    });
  for (auto& th : pool) th.join();
  for (auto& p : parts) total.merge(p);
}

// ------------------------------------------------------------------ float, one argument

struct Unary {
  const char* name;
  VF (*fast)(VF);
  double (*ref)(double);
};
const Unary kFloatUnary[] = {
    {"expf", [](VF x) { return fm::exp(x); }, [](double x) { return std::exp(x); }},
    {"expm1f", [](VF x) { return fm::expm1(x); }, [](double x) { return std::expm1(x); }},
    {"logf", [](VF x) { return fm::log(x); }, [](double x) { return std::log(x); }},
    {"log1pf", [](VF x) { return fm::log1p(x); }, [](double x) { return std::log1p(x); }},
    {"sinf", [](VF x) { return fm::sin(x); }, [](double x) { return std::sin(x); }},
    {"cosf", [](VF x) { return fm::cos(x); }, [](double x) { return std::cos(x); }},
};

// Every stride-th float bit pattern (stride 1: all 2³²).
void float_unary(const Unary& f, uint64_t stride, Worst& total) {
  const uint64_t n = ((uint64_t(1) << 32) + stride - 1) / stride;
  parallel(n, total, [&](uint64_t begin, uint64_t end, Worst& w) {
    for (uint64_t i = begin; i < end; i += kFloatLanes) {
      VF x;
      for (int l = 0; l < kFloatLanes; ++l) {
        const uint64_t k = std::min(i + l, end - 1) * stride;
        x[l] = __builtin_bit_cast(float, static_cast<uint32_t>(k));
      }
      const VF r = f.fast(x);
      for (int l = 0; l < kFloatLanes && i + l < end; ++l) {
        w.see([&] { return ulp_error<float>(r[l], f.ref(x[l])); }, x[l]);
        w.hash(hashed_bits(r[l]));
      }
    }
  });
}

// ------------------------------------------------------------------ random inputs

// A counter-based generator (splitmix64): element i's inputs depend on i only, not on the vector width
// or the thread that draws them.
struct Draws {
  uint64_t state;
  explicit Draws(uint64_t seed, uint64_t i) : state(seed * 0x9e3779b97f4a7c15ull ^ (i + 1) * 0xbf58476d1ce4e5b9ull) {}
  uint64_t operator()() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
};

// Inputs drawn per region: uniform bit patterns of a sign and exponent range, or uniform reals in an
// interval. Deterministic (seeded per index).
template <typename T>
T draw(Draws& g, int region, bool signed_) {
  using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  constexpr int digits = std::numeric_limits<T>::digits;
  // (one draw per statement: the order in which a call's arguments are evaluated is the compiler's)
  const U r = static_cast<U>(g());
  const uint64_t a = g(), b = g(), c = g();
  const bool negative = signed_ && (c & 1);
  const T unit = static_cast<T>(static_cast<double>(b >> 11) * 0x1p-53);  // [0, 1)
  switch (region % 4) {
    case 0:  // any bit pattern
      return __builtin_bit_cast(T, r);
    case 1: {  // exponents −8..8: the working range of the losses
      const T m = static_cast<T>(1) + std::ldexp(static_cast<T>(r >> (sizeof(U) * 8 - digits + 1)), 1 - digits);
      const T v = std::ldexp(m, static_cast<int>(a % 17) - 8);
      return negative ? -v : v;
    }
    case 2: {  // near 1 and near 0 (log's and log1p's cancellation regions)
      const T v = std::ldexp(unit, -static_cast<int>(a % 40));
      return (c & 2) ? static_cast<T>(1) + v : (negative ? -v : v);
    }
    default: {  // the whole finite range of exponents, evenly
      const int e =
          static_cast<int>(a % (2 * std::numeric_limits<T>::max_exponent)) - std::numeric_limits<T>::max_exponent;
      const T v = std::ldexp(static_cast<T>(1) + unit, e);
      return negative ? -v : v;
    }
  }
}

template <typename T, typename V, int kLanes>
void random_unary(const char* name, V (*fast)(V), long double (*ref)(long double), uint64_t n, Worst& total, int seed) {
  (void)name;
  parallel(n, total, [&](uint64_t begin, uint64_t end, Worst& w) {
    for (uint64_t i = begin; i < end; i += kLanes) {
      V x;
      for (int l = 0; l < kLanes; ++l) {
        Draws g(seed, i + l);
        x[l] = draw<T>(g, static_cast<int>((i + l) % 4), true);
      }
      const V r = fast(x);
      for (int l = 0; l < kLanes && i + l < end; ++l) {
        w.see([&] { return ulp_error<T>(r[l], ref(x[l])); }, x[l]);
        w.hash(hashed_bits(r[l]));
      }
    }
  });
}

// y for pow: small integers (either sign), halves, and reals of the losses' range (γ ∈ [0, 5]), or
// anything.
template <typename T>
T draw_exponent(Draws& g) {
  const uint64_t kind = g(), a = g();
  switch (kind % 4) {
    case 0: return static_cast<T>(static_cast<int>(a % 41) - 20);
    case 1: return static_cast<T>(static_cast<int>(a % 41) - 20) / 2;
    case 2: return static_cast<T>(static_cast<double>(a >> 11) * 0x1p-53 * 5);
    default: return draw<T>(g, static_cast<int>(a % 4), true);
  }
}

template <typename T, typename V, int kLanes>
void random_binary(bool pow_, V (*fast)(V, V), long double (*ref)(long double, long double), uint64_t n, Worst& total,
                   int seed) {
  parallel(n, total, [&](uint64_t begin, uint64_t end, Worst& w) {
    for (uint64_t i = begin; i < end; i += kLanes) {
      V a, b;
      for (int l = 0; l < kLanes; ++l) {
        Draws g(seed, i + l);
        const int region = static_cast<int>((i + l) % 4);
        const uint64_t choice = g();
        a[l] = draw<T>(g, region, !pow_ || (choice % 8 == 0));
        b[l] = pow_ ? draw_exponent<T>(g) : draw<T>(g, static_cast<int>((choice >> 8) % 4), true);
      }
      const V r = fast(a, b);
      for (int l = 0; l < kLanes && i + l < end; ++l) {
        w.see([&] { return ulp_error<T>(r[l], ref(a[l], b[l])); }, a[l], b[l]);
        w.hash(hashed_bits(r[l]));
      }
    }
  });
}

// ------------------------------------------------------------------ special values

template <typename T>
std::vector<T> specials() {
  using L = std::numeric_limits<T>;
  std::vector<T> v = {T(0),
                      T(1),
                      T(2),
                      T(3),
                      T(0.5),
                      T(10),
                      L::infinity(),
                      L::quiet_NaN(),
                      L::denorm_min(),
                      L::min(),
                      L::max(),
                      L::min() / 2,
                      L::epsilon(),
                      T(88.72),
                      T(88.73),
                      T(89),
                      T(-87.33),
                      T(-103.9),
                      T(-104),
                      T(-88),
                      T(709.78),
                      T(709.79),
                      T(710),
                      T(-708.4),
                      T(-745.13),
                      T(-745.14),
                      T(-746),
                      T(1e-30),
                      T(1e30),
                      T(0.75),
                      T(1.5),
                      T(-0.5) * 0 + T(0.999999),
                      T(1e-8)};
  const size_t n = v.size();
  for (size_t i = 0; i < n; ++i) v.push_back(-v[i]);
  return v;
}

template <typename T>
bool same(T a, T b) {
  return (std::isnan(a) && std::isnan(b)) || bits_of(a) == bits_of(b);
}

// The special inputs, whose results must be the C library's bit for bit (NaN for NaN): zeros (with
// their sign), infinities, NaN, and exact cases (log 1, pow's integer powers of 2, …). Elsewhere the
// ULP error is what counts.
template <typename T, typename V, int kLanes>
int check_specials(const char* type) {
  int failures = 0;
  const auto v = specials<T>();
  const auto lanes = [](T a) {
    V r;
    for (int l = 0; l < kLanes; ++l) r[l] = a;
    return r;
  };
  const auto expect = [&](const char* name, T got, T want, T a, T b, bool binary) {
    const bool exact_needed = std::isnan(want) || std::isinf(want) || want == 0 || std::fabs(want) == 1;
    if (exact_needed && !same(got, want)) {
      ++failures;
      if (binary)
        std::printf("special %s(%s) %a, %a: %a, the C library %a\n", name, type, double(a), double(b), double(got),
                    double(want));
      else
        std::printf("special %s(%s) %a: %a, the C library %a\n", name, type, double(a), double(got), double(want));
    }
  };
  for (T a : v) {
    expect("exp", fm::exp(lanes(a))[0], std::exp(a), a, 0, false);
    expect("expm1", fm::expm1(lanes(a))[0], std::expm1(a), a, 0, false);
    expect("log", fm::log(lanes(a))[0], std::log(a), a, 0, false);
    expect("log1p", fm::log1p(lanes(a))[0], std::log1p(a), a, 0, false);
    expect("sin", fm::sin(lanes(a))[0], std::sin(a), a, 0, false);
    expect("cos", fm::cos(lanes(a))[0], std::cos(a), a, 0, false);
    for (T b : v) {
      expect("pow", fm::pow(lanes(a), lanes(b))[0], std::pow(a, b), a, b, true);
      expect("atan2", fm::atan2(lanes(a), lanes(b))[0], std::atan2(a, b), a, b, true);
    }
  }
  // scalars run the same lines
  for (T a : v)
    if (!same(fm::exp(a), fm::exp(lanes(a))[0]) || !same(fm::log1p(a), fm::log1p(lanes(a))[0]) ||
        !same(fm::sin(a), fm::sin(lanes(a))[0]) || !same(fm::cos(a), fm::cos(lanes(a))[0])) {
      ++failures;
      std::printf("scalar and vector differ at %a\n", double(a));
    }
  return failures;
}

// Elements per ns of fn over n lanes of V, in cache: the best of 20 rounds of 50 passes.
template <typename V, typename Fn>
double throughput(const std::vector<V>& in, const std::vector<V>& in2, const Fn& fn) {
  std::vector<V> out(in.size());
  double best = 0;
  for (int round = 0; round < 20; ++round) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int pass = 0; pass < 50; ++pass) {
      for (size_t i = 0; i < in.size(); ++i) out[i] = fn(in[i], in2[i]);
      asm volatile("" : : "r"(out.data()) : "memory");
    }
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 50.0 * in.size() * (sizeof(V) / sizeof(in[0][0])) / ns);
  }
  return best;
}

template <typename V, typename T>
void speed(const char* type) {
  constexpr int lanes = sizeof(V) / sizeof(T);
  const size_t n = 65536 / sizeof(T) / lanes;
  std::vector<V> pos(n), any(n), small(n);
  Draws g(99, 0);
  for (size_t i = 0; i < n; ++i)
    for (int l = 0; l < lanes; ++l) {
      pos[i][l] = static_cast<T>(static_cast<double>(g() >> 11) * 0x1p-53 * 10 + 1e-3);   // (0, 10]
      any[i][l] = static_cast<T>((static_cast<double>(g() >> 11) * 0x1p-53 - 0.5) * 20);  // [−10, 10]
      small[i][l] = static_cast<T>(static_cast<double>(g() >> 11) * 0x1p-53 * 4);         // γ ∈ [0, 4)
    }
  std::printf("speed %s exp %.3f\n", type, throughput(any, any, [](V x, V) { return fm::exp(x); }));
  std::printf("speed %s expm1 %.3f\n", type, throughput(any, any, [](V x, V) { return fm::expm1(x); }));
  std::printf("speed %s log %.3f\n", type, throughput(pos, pos, [](V x, V) { return fm::log(x); }));
  std::printf("speed %s log1p %.3f\n", type, throughput(pos, pos, [](V x, V) { return fm::log1p(x); }));
  std::printf("speed %s pow %.3f\n", type, throughput(pos, small, [](V x, V y) { return fm::pow(x, y); }));
  std::printf("speed %s atan2 %.3f\n", type, throughput(any, pos, [](V y, V x) { return fm::atan2(y, x); }));
  std::printf("speed %s sin %.3f\n", type, throughput(any, any, [](V x, V) { return fm::sin(x); }));
  std::printf("speed %s cos %.3f\n", type, throughput(any, any, [](V x, V) { return fm::cos(x); }));
}

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "speed") {
    speed<VF, float>("float");
    speed<VD, double>("double");
    return 0;
  }
  if (mode != "sample" && mode != "exhaustive" && mode != "digest") {
    std::fprintf(stderr, "usage: %s sample|exhaustive|digest|speed\n", argv[0]);
    return 2;
  }
  measure = mode != "digest";
  const bool all = mode == "exhaustive";
  const uint64_t stride = all ? 1 : 1021, pairs = all ? 1000000000ull : 1000000ull,
                 doubles = all ? 100000000ull : 1000000ull;
  std::vector<Worst> results;
  for (const Unary& f : kFloatUnary) {
    Worst w{f.name};
    float_unary(f, stride, w);
    results.push_back(w);
  }
  using LD = long double;
  {
    Worst w{"powf"};
    random_binary<float, VF, kFloatLanes>(
        true, [](VF a, VF b) { return fm::pow(a, b); }, [](LD a, LD b) { return LD(std::pow(double(a), double(b))); },
        pairs, w, 1);
    results.push_back(w);
    Worst v{"atan2f"};
    random_binary<float, VF, kFloatLanes>(
        false, [](VF a, VF b) { return fm::atan2(a, b); },
        [](LD a, LD b) { return LD(std::atan2(double(a), double(b))); }, pairs, v, 2);
    results.push_back(v);
  }
  const struct {
    const char* name;
    VD (*fast)(VD);
    LD (*ref)(LD);
  } double_unary[] = {{"exp", [](VD x) { return fm::exp(x); }, [](LD x) { return expl(x); }},
                      {"expm1", [](VD x) { return fm::expm1(x); }, [](LD x) { return expm1l(x); }},
                      {"log", [](VD x) { return fm::log(x); }, [](LD x) { return logl(x); }},
                      {"log1p", [](VD x) { return fm::log1p(x); }, [](LD x) { return log1pl(x); }},
                      {"sin", [](VD x) { return fm::sin(x); }, [](LD x) { return sinl(x); }},
                      {"cos", [](VD x) { return fm::cos(x); }, [](LD x) { return cosl(x); }}};
  int seed = 10;
  for (const auto& f : double_unary) {
    Worst w{f.name};
    random_unary<double, VD, kDoubleLanes>(f.name, f.fast, f.ref, doubles, w, ++seed);
    results.push_back(w);
  }
  {
    Worst w{"pow"};
    random_binary<double, VD, kDoubleLanes>(
        true, [](VD a, VD b) { return fm::pow(a, b); }, [](LD a, LD b) { return powl(a, b); }, doubles, w, 3);
    results.push_back(w);
    Worst v{"atan2"};
    random_binary<double, VD, kDoubleLanes>(
        false, [](VD a, VD b) { return fm::atan2(a, b); }, [](LD a, LD b) { return atan2l(a, b); }, doubles, v, 4);
    results.push_back(v);
  }
  Worst digest{"digest"};
  bool ok = true;
  for (const Worst& w : results) {
    if (measure)
      std::printf("%-7s %.4f ulp at %La %La\n", w.name.c_str(), w.ulp, w.x, w.y);
    else
      std::printf("%-7s digest %016" PRIx64 "\n", w.name.c_str(), w.digest);
    ok = ok && w.ulp <= 1.0;
    digest.hash(w.digest);
  }
  const int failures =
      check_specials<float, VF, kFloatLanes>("float") + check_specials<double, VD, kDoubleLanes>("double");
  std::printf("specials: %d differ from the C library\n", failures);
  std::printf("digest %016" PRIx64 "\n", digest.digest);
  return ok && failures == 0 ? 0 : 1;
}
