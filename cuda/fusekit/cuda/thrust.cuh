/// @file
/// @brief Thrust's CUDA system meets fusekit's CUDA paths: `to_cuda_policy(thrust_policy)` and the GPU overloads
/// of linear / task_arithmetic for a CUDA thrust_policy (so `merge(thrust_policy{thrust::device}, ...)` on
/// `thrust::device_vector`s runs the fused kernels of <fusekit/cuda/merge/weighted_sum.cuh> on the policy's
/// stream). nvcc only.
#if !defined(__CUDACC__)
#error "fusekit/cuda/thrust.cuh needs a CUDA compiler (nvcc); host-only code includes <fusekit/adapt/thrust.hpp>"
#endif
#pragma once

#include <concepts>
#include <span>

#include <thrust/system/cuda/execution_policy.h>

#include <fusekit/adapt/thrust.hpp>
#include <fusekit/cuda/merge/weighted_sum.cuh>
#include <fusekit/cuda/policy.cuh>

namespace fusekit::exec {

/// A thrust_policy whose Thrust system is CUDA (its space is device_space).
template <class P>
concept cuda_thrust_policy = requires {
  typename P::space_type;
}
&&std::same_as<typename P::space_type, device_space>&& requires(const P& p) { p.policy; };

/// The cuda_policy running on the stream of a CUDA-system thrust_policy (`thrust::cuda::par.on(s)` gives `s`;
/// `thrust::device` the default stream).
template <class P>
requires cuda_thrust_policy<thrust_policy<P>>
[[nodiscard]] cuda_policy to_cuda_policy(const thrust_policy<P>& p) {
  P copy = p.policy;
  return cuda_policy{.stream = thrust::cuda_cub::stream(copy)};
}

} // namespace fusekit::exec

namespace fusekit {

/// `linear` with a CUDA thrust_policy: the cuda_policy kernel on the policy's stream.
template <class P, class Out, class Base, class In>
requires exec::cuda_thrust_policy<exec::thrust_policy<P>>
void tag_invoke(merge_t tag, const linear& method, const exec::thrust_policy<P>& policy, const Out& out,
                const Base& base, std::span<const merge_input<In>> inputs, const merge_context& ctx) {
  tag_invoke(tag, method, exec::to_cuda_policy(policy), out, base, inputs, ctx);
}

/// `task_arithmetic` with a CUDA thrust_policy: the cuda_policy kernel on the policy's stream.
template <class P, class Out, class Base, class In>
requires exec::cuda_thrust_policy<exec::thrust_policy<P>>
void tag_invoke(merge_t tag, const task_arithmetic& method, const exec::thrust_policy<P>& policy, const Out& out,
                const Base& base, std::span<const merge_input<In>> inputs, const merge_context& ctx) {
  tag_invoke(tag, method, exec::to_cuda_policy(policy), out, base, inputs, ctx);
}

} // namespace fusekit
