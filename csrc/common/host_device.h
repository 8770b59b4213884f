#pragma once
// FASTLOSS_HD marks math compiled for both sides: nvcc sees __host__ __device__, the host
// compiler a plain inline function. Every per-element formula is written once with it.
// FASTLOSS_HD_ALWAYS_INLINE forces inlining on the host too: for a large per-item formula called on
// SIMD vectors from a loop, which GCC would otherwise call with its vectors passed through memory
// (the box losses ran 10% slower so). Not the default: forcing it on the focal math made it slower.
#if defined(__CUDACC__)
#define FASTLOSS_HD __host__ __device__ __forceinline__
#define FASTLOSS_HD_ALWAYS_INLINE __host__ __device__ __forceinline__
#else
#define FASTLOSS_HD inline
#define FASTLOSS_HD_ALWAYS_INLINE inline __attribute__((always_inline))
#endif
