// The Python extension module fastloss._C. Importing it loads this library, whose static
// initialisers register the ops with the dispatcher; it only carries build facts as attributes.
#include <Python.h>

#ifndef FASTLOSS_CUDA_ARCHS
#define FASTLOSS_CUDA_ARCHS ""
#endif
#ifndef FASTLOSS_CPU_CAPABILITY
#define FASTLOSS_CPU_CAPABILITY "DEFAULT"
#endif

extern "C" PyMODINIT_FUNC PyInit__C(void) {
  static PyModuleDef def = {PyModuleDef_HEAD_INIT, "_C", "fastloss kernels (registered as torch.ops.fastloss.*)", -1,
                            nullptr};
  PyObject* m = PyModule_Create(&def);
  if (m == nullptr) return nullptr;
#ifdef FASTLOSS_WITH_CUDA
  const int with_cuda = 1;
#else
  const int with_cuda = 0;
#endif
  if (PyModule_AddIntConstant(m, "cuda_compiled", with_cuda) < 0 ||
      PyModule_AddStringConstant(m, "cuda_archs", FASTLOSS_CUDA_ARCHS) < 0 ||
      PyModule_AddStringConstant(m, "cpu_capability", FASTLOSS_CPU_CAPABILITY) < 0) {
    Py_DECREF(m);
    return nullptr;
  }
  return m;
}
