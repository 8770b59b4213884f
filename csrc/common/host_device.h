#pragma once
// FASTLOSS_HD marks math compiled for both sides: nvcc sees __host__ __device__, the host
// compiler a plain inline function. Every per-element formula is written once with it.
#if defined(__CUDACC__)
#define FASTLOSS_HD __host__ __device__ __forceinline__
#else
#define FASTLOSS_HD inline
#endif
