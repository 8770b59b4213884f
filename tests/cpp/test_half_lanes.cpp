// The CPU kernels' whole-vector float16 / bfloat16 conversions (csrc/cpu/vec_ops.h: load_half_lanes,
// store_half_lanes) against torch's scalar Half and BFloat16 conversions, which the kernels used
// lane by lane before: every float16 and bfloat16 bit pattern loaded, and stored from floats that
// cover every exponent, the rounding ties either side, subnormals, ±0, ±inf and NaNs. Compiled once
// per x86 SIMD flavour (CMakeLists.txt); exits 77 (skipped) where the CPU lacks the flavour.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>
#include "cpu/vec_ops.h"

namespace {

using torch::headeronly::BFloat16;
using torch::headeronly::Half;
using Vec = fastloss::simd::Vec<float>;
constexpr int W = Vec::size();

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// NaNs compare by NaN-ness (a quiet bit may be set on the way), everything else by its bits.
bool same(float a, float b) { return (a != a && b != b) || bits_of(a) == bits_of(b); }

template <typename H>
int check_loads(const char* name) {
  int failures = 0;
  for (uint32_t first = 0; first < 65536; first += W) {
    H in[W];
    for (int i = 0; i < W; ++i) {
      const uint16_t raw = static_cast<uint16_t>(first + i);
      std::memcpy(&in[i], &raw, 2);
    }
    float out[W];
    fastloss::cpu::load_half_lanes(in).store(out);
    for (int i = 0; i < W; ++i) {
      if (!same(out[i], static_cast<float>(in[i])) && failures++ < 5)
        std::printf("FAIL %s load 0x%04x: %a, scalar %a\n", name, first + i, out[i], static_cast<float>(in[i]));
    }
  }
  return failures;
}

template <typename H>
int check_stores(const char* name, const std::vector<float>& values) {
  int failures = 0;
  for (size_t first = 0; first + W <= values.size(); first += W) {
    H out[W];
    fastloss::cpu::store_half_lanes(Vec::loadu(values.data() + first), out);
    for (int i = 0; i < W; ++i) {
      const H want(values[first + i]);
      uint16_t got_bits, want_bits;
      std::memcpy(&got_bits, &out[i], 2);
      std::memcpy(&want_bits, &want, 2);
      if (got_bits != want_bits && failures++ < 5)
        std::printf("FAIL %s store %a: 0x%04x, scalar 0x%04x\n", name, values[first + i], got_bits, want_bits);
    }
  }
  return failures;
}

// Floats around every representable float16 and bfloat16 (each value, the ties halfway to its
// neighbours and one float either side of them), every exponent, the specials, and random bits.
std::vector<float> store_inputs() {
  std::vector<float> v;
  for (uint32_t h = 0; h < 65536; ++h) {
    for (uint32_t top : {h << 16, h << 16 | 0x8000u, h << 16 | 0x7FFFu, h << 16 | 0x8001u}) v.push_back(float_of(top));
    uint16_t raw = static_cast<uint16_t>(h);
    Half half;
    std::memcpy(&half, &raw, 2);
    const float f = static_cast<float>(half);
    const uint32_t u = bits_of(f);
    for (int32_t d : {0, 1, -1, 4095, 4096, 4097, -4095, -4096, -4097}) v.push_back(float_of(u + d));
  }
  for (float s : {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, 65504.0f, 65520.0f, 65519.996f, 5.96e-8f, 2.98e-8f})
    v.push_back(s);
  std::mt19937 rng(0);
  for (int i = 0; i < 1 << 20; ++i) v.push_back(float_of(static_cast<uint32_t>(rng())));
  while (v.size() % W) v.push_back(0.0f);
  return v;
}

}  // namespace

int main() {
#if defined(CPU_CAPABILITY_AVX512)
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw")) return 77;
  const char* flavour = "avx512";
#else
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("f16c")) return 77;
  const char* flavour = "avx2";
#endif
  const std::vector<float> values = store_inputs();
  const int failures = check_loads<Half>("float16") + check_loads<BFloat16>("bfloat16") +
                       check_stores<Half>("float16", values) + check_stores<BFloat16>("bfloat16", values);
  std::printf("%s: %s (%zu stores, 65536 loads per type)\n", flavour, failures ? "FAILED" : "ok", values.size());
  return failures != 0;
}
