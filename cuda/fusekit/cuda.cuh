/// @file
/// @brief Umbrella of fusekit's CUDA specializations: cuda_policy and its primitives, CUDA error conversion,
/// __nv_bfloat16/__half as elements, the CUDA overloads of the merge methods, and Thrust's CUDA system routed to
/// them (cuda/thrust.cuh). nvcc only.
///
/// Include it after (or instead of) the host headers you use; together with <fusekit/fusekit.hpp> it gives the
/// whole library. It includes only what the CUDA parts need, to keep nvcc compile times down.
#if !defined(__CUDACC__)
#error "fusekit/cuda.cuh needs a CUDA compiler (nvcc); host-only code includes <fusekit/fusekit.hpp>"
#endif
#pragma once

#include <fusekit/cuda/error.cuh>
#include <fusekit/cuda/merge/weighted_sum.cuh>
#include <fusekit/cuda/policy.cuh>
#include <fusekit/cuda/thrust.cuh>
#include <fusekit/cuda/types.cuh>
