// ctest's launcher for a test built for one x86 SIMD flavour: `cpu_supports FLAVOUR PROGRAM [ARGS...]`
// runs PROGRAM when this CPU has FLAVOUR ("AVX2" or "AVX512"), else exits 77 (ctest: skipped). It is
// compiled without SIMD flags: the flavour's own binary may execute the flavour's instructions
// before its main can ask the CPU (the sanitizer build's did, on a CPU without AVX-512).
#include <unistd.h>

#include <cstring>

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  __builtin_cpu_init();
  const bool avx512 = std::strcmp(argv[1], "AVX512") == 0;
  const bool runs =
      avx512 ? __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                   __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")
             : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  if (!runs) return 77;
  execv(argv[2], argv + 2);
  return 127;  // the program could not be started
}
