// Force-included into every C++/CUDA translation unit (setup.py, CMakeLists.txt): keeps our
// libraries loadable on glibc 2.28, the floor torch's own wheels set (manylinux_2_28), although
// this machine builds against a newer glibc. glibc 2.29 gave exp, exp2, log, log2 and pow new
// symbol versions (new implementations, same results to within an ulp); linking the 2.2.5 versions
// keeps the old requirement. (The other glibc ≥ 2.29 symbol, __libc_single_threaded, is handled by
// compat/sys/single_threaded.h.) glibc 2.34 moved dlopen, dlsym, dladdr and dlerror from libdl into
// libc under a new version; their 2.2.5 versions are the same functions (libdl's before 2.34, libc's
// compatibility symbols since), and the libraries keep libdl NEEDED (-ldl) for the older glibc.
// x86-64 only: other architectures' glibc symbol sets differ.
#pragma once
#if defined(__x86_64__) && defined(__linux__) && !defined(__CUDA_ARCH__)
__asm__(".symver exp,exp@GLIBC_2.2.5");
__asm__(".symver exp2,exp2@GLIBC_2.2.5");
__asm__(".symver log,log@GLIBC_2.2.5");
__asm__(".symver log2,log2@GLIBC_2.2.5");
__asm__(".symver pow,pow@GLIBC_2.2.5");
__asm__(".symver dlopen,dlopen@GLIBC_2.2.5");
__asm__(".symver dlsym,dlsym@GLIBC_2.2.5");
__asm__(".symver dladdr,dladdr@GLIBC_2.2.5");
__asm__(".symver dlerror,dlerror@GLIBC_2.2.5");
#endif
