/// @file
/// @brief Compiler bridges: host/device annotations and feature detection. Depends on nothing.
#pragma once

#if defined(__CUDACC__) || defined(__HIPCC__)
/// Marks a function callable from host and device code; empty for host-only compilers.
#define FUSEKIT_HOST_DEVICE __host__ __device__
#define FUSEKIT_DEVICE_COMPILER 1
#else
#define FUSEKIT_HOST_DEVICE
#define FUSEKIT_DEVICE_COMPILER 0
#endif

/// Strong inlining hint for tiny per-element functions.
#if defined(_MSC_VER) && !defined(__clang__)
#define FUSEKIT_FORCEINLINE __forceinline
#else
#define FUSEKIT_FORCEINLINE inline __attribute__((always_inline))
#endif

/// 1 when the translation unit is compiled with OpenMP (the fusekit::openmp component sets it too).
#if !defined(FUSEKIT_HAS_OPENMP)
#if defined(_OPENMP)
#define FUSEKIT_HAS_OPENMP 1
#else
#define FUSEKIT_HAS_OPENMP 0
#endif
#endif

/// Hints the compiler that iterations of the following loop are independent (vectorization).
#if defined(__clang__)
#define FUSEKIT_PRAGMA_SIMD _Pragma("clang loop vectorize(enable) interleave(enable)")
#elif defined(__GNUC__) && !defined(__CUDACC__)
#define FUSEKIT_PRAGMA_SIMD _Pragma("GCC ivdep")
#else
#define FUSEKIT_PRAGMA_SIMD
#endif

/// 1 when GCC/Clang vector extensions (`__attribute__((vector_size))`) may be used: not under nvcc,
/// whose front end rejects some of their uses even in host code.
#if (defined(__GNUC__) || defined(__clang__)) && !defined(__CUDACC__)
#define FUSEKIT_HAS_VECTOR_EXT 1
#else
#define FUSEKIT_HAS_VECTOR_EXT 0
#endif
