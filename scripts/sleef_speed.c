// Time per call of SLEEF's AVX-512 log/log1p/exp (the variants the CPU kernels bind) in each library
// named on the command line: the package's libsleef.so.3 against the SLEEF inside libtorch_cpu.so.
//   gcc -O2 -mavx512f scripts/sleef_speed.c -o build/sleef_speed -ldl
//   build/sleef_speed python/fastloss/libsleef.so.3 "$(python -c 'import torch, os; print(os.path.dirname(torch.__file__))')/lib/libtorch_cpu.so"
// (libtorch_cpu.so needs its directory on LD_LIBRARY_PATH.) 2·10^7 calls each, independent inputs.
#include <dlfcn.h>
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

enum { kCalls = 20000000 };

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(int argc, char** argv) {
  const char* floats[] = {"Sleef_logf16_u10avx512f", "Sleef_log1pf16_u10avx512f", "Sleef_expf16_u10avx512f"};
  const char* doubles[] = {"Sleef_logd8_u10avx512f", "Sleef_log1pd8_u10avx512f", "Sleef_expd8_u10avx512f"};
  for (int k = 1; k < argc; ++k) {
    void* lib = dlopen(argv[k], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      printf("%s\n", dlerror());
      return 1;
    }
    for (int n = 0; n < 3; ++n) {
      __m512 (*f)(__m512) = (__m512(*)(__m512))dlsym(lib, floats[n]);
      __m512 x = _mm512_set1_ps(0.3f), acc = _mm512_setzero_ps();
      double t = now();
      for (int i = 0; i < kCalls; ++i) {
        acc = _mm512_add_ps(acc, f(x));
        x = _mm512_add_ps(x, _mm512_set1_ps(1e-7f));
      }
      printf("%-28s %.2f ns/call  %s (%g)\n", floats[n], (now() - t) / kCalls * 1e9, argv[k], _mm512_reduce_add_ps(acc));
    }
    for (int n = 0; n < 3; ++n) {
      __m512d (*f)(__m512d) = (__m512d(*)(__m512d))dlsym(lib, doubles[n]);
      __m512d x = _mm512_set1_pd(0.3), acc = _mm512_setzero_pd();
      double t = now();
      for (int i = 0; i < kCalls; ++i) {
        acc = _mm512_add_pd(acc, f(x));
        x = _mm512_add_pd(x, _mm512_set1_pd(1e-7));
      }
      printf("%-28s %.2f ns/call  %s (%g)\n", doubles[n], (now() - t) / kCalls * 1e9, argv[k], _mm512_reduce_add_pd(acc));
    }
  }
  return 0;
}
