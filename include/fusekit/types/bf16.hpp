/// @file
/// @brief fusekit::bf16: bfloat16 storage type with exact round-to-nearest-even conversion from float.
#pragma once

#include <bit>
#include <cstdint>

#include <fusekit/core/config.hpp>

namespace fusekit {

/// Tag selecting the raw-bits constructor of bf16 / fp16.
struct from_bits_t {
  explicit constexpr from_bits_t() = default;
};
/// The raw-bits tag value: `bf16{from_bits, 0x3f80}` is 1.0.
inline constexpr from_bits_t from_bits{};

/// bfloat16 (1 sign, 8 exponent, 7 mantissa bits). A storage type: arithmetic happens in float
/// (see compute_t). Conversion from float rounds to nearest, ties to even; NaN stays NaN (quieted,
/// sign kept), infinities and denormals are exact.
struct alignas(2) bf16 {
  std::uint16_t bits = 0;

  constexpr bf16() noexcept = default;
  /// Raw bit pattern.
  FUSEKIT_HOST_DEVICE constexpr bf16(from_bits_t, std::uint16_t b) noexcept : bits(b) {}
  /// Rounds `f` to nearest-even.
  FUSEKIT_HOST_DEVICE explicit constexpr bf16(float f) noexcept : bits(from_float(f)) {}

  /// Exact widening to float.
  FUSEKIT_HOST_DEVICE constexpr operator float() const noexcept { return to_float(bits); }

  /// float -> bf16 bits, round to nearest even.
  FUSEKIT_HOST_DEVICE static constexpr std::uint16_t from_float(float f) noexcept {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) // NaN: keep sign and top payload bits, force quiet bit
      return static_cast<std::uint16_t>((u >> 16) | 0x0040u);
    const std::uint32_t rounding_bias = 0x7fffu + ((u >> 16) & 1u);
    return static_cast<std::uint16_t>((u + rounding_bias) >> 16);
  }
  /// bf16 bits -> float (exact).
  FUSEKIT_HOST_DEVICE static constexpr float to_float(std::uint16_t b) noexcept {
    return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
  }

  /// Bitwise equality (distinguishes +0/-0 and NaN payloads); use float comparison for value equality.
  friend constexpr bool same_bits(bf16 a, bf16 b) noexcept { return a.bits == b.bits; }
};

static_assert(sizeof(bf16) == 2 && alignof(bf16) == 2);

} // namespace fusekit
