/// @file
/// @brief CUDA paths of `linear` and `task_arithmetic`: tag_invoke(merge_t, ..., exec::cuda_policy, ...).
///
/// One fused kernel reads every input once and writes the output once (bandwidth-bound), for any
/// rank and strides, fp32/bf16/fp16 (fusekit's or CUDA's own 16-bit types) and double storage. Arguments are
/// checked exactly as on the host (shapes, weights, tensor names in messages) and the coefficients are the
/// methods' own `coefficients()`. Every element is computed in fp32 (double for double storage) with the host's
/// operation order and explicitly rounded operations (no FMA contraction), so the result equals exec::seq bit
/// for bit. Asynchronous on the policy's stream: the descriptors of the inputs are copied to device memory taken
/// with cudaMallocAsync (freed on the stream); synchronize before reading the output on the host.
#if !defined(__CUDACC__)
#error "fusekit/cuda/merge/weighted_sum.cuh needs a CUDA compiler (nvcc); host-only code includes <fusekit/fusekit.hpp>"
#endif
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

#include <cuda_runtime_api.h>

#include <fusekit/cuda/error.cuh>
#include <fusekit/cuda/policy.cuh>
#include <fusekit/cuda/types.cuh>
#include <fusekit/merge/detail/block_io.hpp>
#include <fusekit/merge/linear.hpp>
#include <fusekit/merge/merge.hpp>
#include <fusekit/merge/task_arithmetic.hpp>
#include <fusekit/view/concepts.hpp>

namespace fusekit::detail {

/// Explicitly rounded arithmetic (no contraction into FMA), so device results equal the host's.
template <class C> FUSEKIT_HOST_DEVICE inline C exact_mul(C a, C b) noexcept {
#if defined(__CUDA_ARCH__)
  if constexpr (std::is_same_v<C, float>)
    return __fmul_rn(a, b);
  else
    return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
template <class C> FUSEKIT_HOST_DEVICE inline C exact_add(C a, C b) noexcept {
#if defined(__CUDA_ARCH__)
  if constexpr (std::is_same_v<C, float>)
    return __fadd_rn(a, b);
  else
    return __dadd_rn(a, b);
#else
  return a + b;
#endif
}

/// Element i (row-major linear order) of a view, as a compute value.
template <class V> FUSEKIT_HOST_DEVICE inline auto cuda_element(const V& v, std::int64_t i, bool contiguous) noexcept {
  return cuda_load(v.data()[contiguous ? i : linear_offset(v, i)]);
}

/// out[i] = Σ_k c_k·x_k[i]  or, with deltas, base[i] + Σ_k c_k·(x_k[i] − base[i]), in compute type C.
template <class C, bool Deltas, class OutV, class BaseV, class InV>
__global__ void cuda_weighted_sum_kernel(OutV out, BaseV base, const InV* __restrict__ inputs,
                                         const float* __restrict__ coeff, int k, std::int64_t n, bool contiguous) {
  using out_t = std::remove_cv_t<typename OutV::element_type>;
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    C b = C(0);
    if constexpr (Deltas)
      b = static_cast<C>(cuda_element(base, i, contiguous));
    C acc = C(0);
    for (int j = 0; j < k; ++j) {
      const C x = static_cast<C>(cuda_element(inputs[j], i, contiguous));
      const C c = static_cast<C>(coeff[j]);
      acc = exact_add(acc, exact_mul(c, Deltas ? exact_add(x, -b) : x));
    }
    if constexpr (Deltas)
      acc = exact_add(acc, b);
    out.data()[contiguous ? i : linear_offset(out, i)] = cuda_store<out_t>(acc);
  }
}

/// Launches the weighted sum on the policy's stream (see the file comment).
template <class Out, class Base, class In>
void cuda_weighted_sum(const exec::cuda_policy& policy, const Out& out, const Base& base,
                       std::span<const merge_input<In>> inputs, const std::vector<float>& coeff, bool deltas) {
  constexpr bool has_base = !std::is_same_v<std::remove_cvref_t<Base>, no_base_t>;
  const std::int64_t n = out.size();
  if (n == 0)
    return;
  using C = std::conditional_t<std::is_same_v<compute_t<typename Out::element_type>, double> ||
                                   std::is_same_v<compute_t<typename In::element_type>, double>,
                               double, float>;
  bool contiguous = out.is_contiguous();
  if constexpr (has_base)
    contiguous = contiguous && base.is_contiguous();
  std::vector<In> views(inputs.size());
  for (std::size_t j = 0; j < inputs.size(); ++j) {
    views[j] = inputs[j].tensor;
    contiguous = contiguous && views[j].is_contiguous();
  }
  // One device buffer: [views...][coefficients...].
  const std::size_t k = inputs.size();
  const std::size_t view_bytes = (k * sizeof(In) + alignof(float) - 1) / alignof(float) * alignof(float);
  const std::size_t bytes = view_bytes + k * sizeof(float);
  std::vector<unsigned char> host(bytes == 0 ? 1 : bytes);
  if (k > 0) {
    std::memcpy(host.data(), views.data(), k * sizeof(In));
    std::memcpy(host.data() + view_bytes, coeff.data(), k * sizeof(float));
  }
  unsigned char* dev = nullptr;
  detail::cuda_check(cudaMallocAsync(reinterpret_cast<void**>(&dev), host.size(), policy.stream),
                     "merge (CUDA weighted sum): input descriptors");
  cudaError_t st = cudaMemcpyAsync(dev, host.data(), host.size(), cudaMemcpyHostToDevice, policy.stream);
  if (st == cudaSuccess) {
    const auto* d_views = reinterpret_cast<const In*>(dev);
    const auto* d_coeff = reinterpret_cast<const float*>(dev + view_bytes);
    const auto grid = cuda_grid_for(n);
    if constexpr (has_base) {
      if (deltas)
        cuda_weighted_sum_kernel<C, true><<<grid, cuda_block_threads, 0, policy.stream>>>(
            out, base, d_views, d_coeff, static_cast<int>(k), n, contiguous);
      else
        cuda_weighted_sum_kernel<C, false><<<grid, cuda_block_threads, 0, policy.stream>>>(
            out, base, d_views, d_coeff, static_cast<int>(k), n, contiguous);
    } else {
      cuda_weighted_sum_kernel<C, false><<<grid, cuda_block_threads, 0, policy.stream>>>(
          out, out.as_const(), d_views, d_coeff, static_cast<int>(k), n, contiguous);
    }
    st = cudaGetLastError();
  }
  const cudaError_t st_free = cudaFreeAsync(dev, policy.stream);
  detail::cuda_check(st != cudaSuccess ? st : st_free, "merge (CUDA weighted sum)");
}

} // namespace fusekit::detail

namespace fusekit {

/// `linear` on the GPU (see the file comment). Found by ADL from fusekit::merge when the policy is a
/// cuda_policy; the views must be device or managed memory.
template <class Out, class Base, class In>
void tag_invoke(merge_t, const linear& method, const exec::cuda_policy& policy, const Out& out, const Base& base,
                std::span<const merge_input<In>> inputs, const merge_context& ctx) {
  exec::check_runs_on<exec::cuda_policy, Out, In>();
  (void)base;
  detail::check_merge_args(linear::name, out, no_base, inputs, ctx, false, 1);
  detail::cuda_weighted_sum(policy, out, no_base, inputs, method.coefficients(inputs, ctx), false);
}

/// `task_arithmetic` on the GPU (see the file comment). Found by ADL from fusekit::merge when the policy is a
/// cuda_policy; the views must be device or managed memory.
template <class Out, class Base, class In>
void tag_invoke(merge_t, const task_arithmetic& method, const exec::cuda_policy& policy, const Out& out,
                const Base& base, std::span<const merge_input<In>> inputs, const merge_context& ctx) {
  static_assert(!std::is_same_v<Base, no_base_t>,
                "fusekit::task_arithmetic needs a base model (pass its view as base).");
  exec::check_runs_on<exec::cuda_policy, Out, Base, In>();
  detail::check_merge_args(task_arithmetic::name, out, base, inputs, ctx, true, 0);
  detail::cuda_weighted_sum(policy, out, base, inputs, method.coefficients(inputs), true);
}

} // namespace fusekit
