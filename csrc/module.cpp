// The Python module of each fastloss extension: fastloss._C (build facts, the CPU's features),
// fastloss._cpu_<flavour> (the op schemas and the CPU kernels of one SIMD flavour) and fastloss._cuda
// (the CUDA kernels). Importing one loads its library, whose static initialisers register with the
// dispatcher through the stable ABI; the module carries build facts. TORCH_EXTENSION_NAME names it.
#include <Python.h>
#include <string.h>

#ifndef FASTLOSS_CUDA_ARCHS
#define FASTLOSS_CUDA_ARCHS ""
#endif
#ifndef FASTLOSS_CPU_CAPABILITY
#define FASTLOSS_CPU_CAPABILITY ""
#endif
#ifndef FASTLOSS_BUILT_TORCH  // the torch the build compiled against (setup.py)
#define FASTLOSS_BUILT_TORCH ""
#endif
#ifndef FASTLOSS_BUILT_CUDA
#define FASTLOSS_BUILT_CUDA ""
#endif
#define FASTLOSS_STR(x) FASTLOSS_STR2(x)
#define FASTLOSS_STR2(x) #x
#define FASTLOSS_CONCAT(a, b) FASTLOSS_CONCAT2(a, b)
#define FASTLOSS_CONCAT2(a, b) a##b

// The SIMD features this CPU (and its OS) supports, asked of the CPU itself (cpuid via GCC's
// __builtin_cpu_supports, compiled here without SIMD flags): fastloss/_backend.py loads a CPU kernel
// flavour only when every feature it was compiled for is listed. Empty off x86-64.
static const char* cpu_features() {
#if defined(__x86_64__) && defined(__GNUC__)
  static char buf[128] = "";
  __builtin_cpu_init();
  const struct {
    const char* name;
    int present;
  } features[] = {{"avx2", __builtin_cpu_supports("avx2")},         {"fma", __builtin_cpu_supports("fma")},
                  {"f16c", __builtin_cpu_supports("f16c")},         {"avx512f", __builtin_cpu_supports("avx512f")},
                  {"avx512bw", __builtin_cpu_supports("avx512bw")}, {"avx512vl", __builtin_cpu_supports("avx512vl")},
                  {"avx512dq", __builtin_cpu_supports("avx512dq")}};
  buf[0] = 0;
  for (const auto& f : features) {
    if (!f.present) continue;
    if (buf[0]) strcat(buf, " ");
    strcat(buf, f.name);
  }
  return buf;
#else
  return "";
#endif
}

extern "C" PyMODINIT_FUNC FASTLOSS_CONCAT(PyInit_, TORCH_EXTENSION_NAME)(void) {
  static PyModuleDef def = {PyModuleDef_HEAD_INIT, FASTLOSS_STR(TORCH_EXTENSION_NAME),
                            "fastloss kernels (registered as torch.ops.fastloss.*)", -1, nullptr};
  PyObject* m = PyModule_Create(&def);
  if (m == nullptr) return nullptr;
#ifdef FASTLOSS_WITH_CUDA
  const int with_cuda = 1;
#else
  const int with_cuda = 0;
#endif
  if (PyModule_AddIntConstant(m, "cuda_compiled", with_cuda) < 0 ||
      PyModule_AddStringConstant(m, "cuda_archs", FASTLOSS_CUDA_ARCHS) < 0 ||
      PyModule_AddStringConstant(m, "cpu_capability", FASTLOSS_CPU_CAPABILITY) < 0 ||
      PyModule_AddStringConstant(m, "cpu_features", cpu_features()) < 0 ||
      PyModule_AddStringConstant(m, "built_torch", FASTLOSS_BUILT_TORCH) < 0 ||
      PyModule_AddStringConstant(m, "built_cuda", FASTLOSS_BUILT_CUDA) < 0) {
    Py_DECREF(m);
    return nullptr;
  }
  return m;
}
