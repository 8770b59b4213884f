// Stands in for glibc 2.32's <sys/single_threaded.h> (csrc/compat is first on the include path).
// GCC ≥ 11's libstdc++ reads glibc's `__libc_single_threaded` flag whenever that header exists,
// which would make our libraries need glibc 2.32; torch's wheels need 2.28 (manylinux_2_28). Here
// the flag is a constant "not single-threaded": libstdc++ then always takes its atomic path for
// reference counts — what it does anyway in any process with a second thread (torch starts several).
#pragma once
#ifdef __cplusplus
inline constexpr char fastloss_never_single_threaded = 0;
#define __libc_single_threaded fastloss_never_single_threaded
#endif
