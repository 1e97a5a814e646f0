/// @file
/// @brief CUDA's 16-bit float types (__nv_bfloat16, __half) as fusekit elements, mapped to fusekit::bf16/fp16.
#if !defined(__CUDACC__)
#error "fusekit/cuda/types.cuh needs a CUDA compiler (nvcc); host-only code includes <fusekit/fusekit.hpp>"
#endif
#pragma once

#include <bit>
#include <string_view>
#include <type_traits>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <fusekit/types/bf16.hpp>
#include <fusekit/types/element.hpp>
#include <fusekit/types/fp16.hpp>

namespace fusekit {

/// __nv_bfloat16 as an element: computed in float; same bits as fusekit::bf16.
template <> struct element_traits<__nv_bfloat16> {
  static constexpr bool is_specialized = true;
  using compute_type = float;
  /// The fusekit type with the same bit layout.
  using fusekit_type = bf16;
  static constexpr std::string_view name = "bf16";
  /// Same bits as fusekit::bf16.
  static FUSEKIT_HOST_DEVICE bf16 to_fusekit(__nv_bfloat16 x) noexcept {
    return bf16(from_bits, __bfloat16_as_ushort(x));
  }
  /// Same bits as __nv_bfloat16.
  static FUSEKIT_HOST_DEVICE __nv_bfloat16 from_fusekit(bf16 x) noexcept { return __ushort_as_bfloat16(x.bits); }
};

/// __half as an element: computed in float; same bits as fusekit::fp16.
template <> struct element_traits<__half> {
  static constexpr bool is_specialized = true;
  using compute_type = float;
  /// The fusekit type with the same bit layout.
  using fusekit_type = fp16;
  static constexpr std::string_view name = "f16";
  /// Same bits as fusekit::fp16.
  static FUSEKIT_HOST_DEVICE fp16 to_fusekit(__half x) noexcept { return fp16(from_bits, __half_as_ushort(x)); }
  /// Same bits as __half.
  static FUSEKIT_HOST_DEVICE __half from_fusekit(fp16 x) noexcept { return __ushort_as_half(x.bits); }
};

static_assert(sizeof(__nv_bfloat16) == sizeof(bf16) && alignof(__nv_bfloat16) == alignof(bf16));
static_assert(sizeof(__half) == sizeof(fp16) && alignof(__half) == alignof(fp16));

namespace detail {

/// Loads one stored element as its compute type on host or device. CUDA's own types go through fusekit's
/// conversions so results match the host bit for bit.
template <class T> FUSEKIT_HOST_DEVICE inline compute_t<T> cuda_load(const T& x) noexcept {
  using U = std::remove_cv_t<T>;
  if constexpr (std::is_same_v<U, __nv_bfloat16> || std::is_same_v<U, __half>)
    return static_cast<float>(element_traits<U>::to_fusekit(x));
  else
    return to_compute(x);
}

/// Rounds a compute value to storage type T (round to nearest even for the 16-bit types, as on the host).
template <class T, class C> FUSEKIT_HOST_DEVICE inline T cuda_store(C c) noexcept {
  if constexpr (std::is_same_v<T, __nv_bfloat16> || std::is_same_v<T, __half>)
    return element_traits<T>::from_fusekit(typename element_traits<T>::fusekit_type(static_cast<float>(c)));
  else
    return from_compute<T>(c);
}

} // namespace detail
} // namespace fusekit
