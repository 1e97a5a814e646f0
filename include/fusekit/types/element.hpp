/// @file
/// @brief Element-type traits: which types fusekit stores, and the type it computes them in.
#pragma once

#include <concepts>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include <fusekit/core/config.hpp>
#include <fusekit/types/bf16.hpp>
#include <fusekit/types/fp16.hpp>

namespace fusekit {

/// Per-type facts. Specialize (in your own header) to teach fusekit a new storage type, e.g. an
/// adaptor's `Eigen::bfloat16` or `__nv_bfloat16`, by mapping it to bf16/fp16 via bit_cast.
template <class T> struct element_traits {
  static constexpr bool is_specialized = std::is_arithmetic_v<T>;
  using compute_type = std::conditional_t<std::is_floating_point_v<T>, T, double>;
  static constexpr std::string_view name = std::is_same_v<T, float>    ? "f32"
                                           : std::is_same_v<T, double> ? "f64"
                                                                       : "int";
};
template <> struct element_traits<bf16> {
  static constexpr bool is_specialized = true;
  using compute_type = float;
  static constexpr std::string_view name = "bf16";
};
template <> struct element_traits<fp16> {
  static constexpr bool is_specialized = true;
  using compute_type = float;
  static constexpr std::string_view name = "f16";
};

/// A type fusekit can store in a view and compute with.
template <class T>
concept element = element_traits<std::remove_cv_t<T>>::is_specialized;

/// The type arithmetic on T is carried out in: float for bf16/fp16 (every reduction accumulates in at
/// least fp32), T itself for float/double, double for integers.
template <class T> using compute_t = typename element_traits<std::remove_cv_t<T>>::compute_type;

/// Widens a stored element to its compute type.
template <class T> FUSEKIT_HOST_DEVICE constexpr compute_t<T> to_compute(T x) noexcept {
  return static_cast<compute_t<T>>(x);
}

/// Narrows a computed value back to storage type T (round-to-nearest-even for bf16/fp16).
template <class T, class C> FUSEKIT_HOST_DEVICE constexpr T from_compute(C c) noexcept {
  if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, fp16>)
    return T(static_cast<float>(c));
  else
    return static_cast<T>(c);
}

} // namespace fusekit
