/// @file
/// @brief fusekit::fp16: IEEE 754 binary16 storage type with exact round-to-nearest-even conversion.
#pragma once

#include <bit>
#include <cstdint>

#include <fusekit/core/config.hpp>
#include <fusekit/types/bf16.hpp> // from_bits_t

namespace fusekit {

/// IEEE binary16 (1 sign, 5 exponent, 10 mantissa bits). A storage type: arithmetic happens in float.
/// Conversion from float rounds to nearest, ties to even, including into the subnormal range;
/// values at or above 65520 become infinity; NaN stays NaN (quieted, sign and top payload kept).
struct alignas(2) fp16 {
  std::uint16_t bits = 0;

  constexpr fp16() noexcept = default;
  /// Raw bit pattern.
  FUSEKIT_HOST_DEVICE constexpr fp16(from_bits_t, std::uint16_t b) noexcept : bits(b) {}
  /// Rounds `f` to nearest-even.
  FUSEKIT_HOST_DEVICE explicit constexpr fp16(float f) noexcept : bits(from_float(f)) {}

  /// Exact widening to float.
  FUSEKIT_HOST_DEVICE constexpr operator float() const noexcept { return to_float(bits); }

  /// float -> binary16 bits, round to nearest even.
  FUSEKIT_HOST_DEVICE static constexpr std::uint16_t from_float(float f) noexcept {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
    const std::uint32_t sign = (u >> 16) & 0x8000u;
    const std::uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) // NaN
      return static_cast<std::uint16_t>(sign | 0x7e00u | ((a >> 13) & 0x03ffu));
    if (a >= 0x38800000u) { // normal binary16 range (|f| >= 2^-14), possibly overflowing to inf
      const std::uint32_t rounded = a + 0x0fffu + ((a >> 13) & 1u);
      if (rounded >= 0x47800000u) // rounds to >= 65536 (i.e. |f| >= 65520), or inf
        return static_cast<std::uint16_t>(sign | 0x7c00u);
      return static_cast<std::uint16_t>(sign | ((rounded - 0x38000000u) >> 13));
    }
    if (a >= 0x33000000u) { // subnormal binary16 (2^-25 <= |f| < 2^-14)
      const std::uint32_t mant = (a & 0x007fffffu) | 0x00800000u;
      const std::uint32_t shift = 126u - (a >> 23); // 14..24
      std::uint32_t h = mant >> shift;
      const std::uint32_t rem = mant & ((1u << shift) - 1u);
      const std::uint32_t half = 1u << (shift - 1u);
      if (rem > half || (rem == half && (h & 1u)))
        ++h;
      return static_cast<std::uint16_t>(sign | h);
    }
    return static_cast<std::uint16_t>(sign); // underflows to (signed) zero
  }

  /// binary16 bits -> float (exact).
  FUSEKIT_HOST_DEVICE static constexpr float to_float(std::uint16_t h) noexcept {
    const std::uint32_t sign = (static_cast<std::uint32_t>(h) & 0x8000u) << 16;
    const std::uint32_t exp = (h >> 10) & 0x1fu;
    std::uint32_t mant = h & 0x03ffu;
    if (exp == 0x1fu) // inf / NaN
      return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {
      if (mant == 0)
        return std::bit_cast<float>(sign);
      // subnormal: normalise
      std::uint32_t e = 113; // exponent of 2^-14 in float bias, minus the shifts below
      while ((mant & 0x0400u) == 0) {
        mant <<= 1;
        --e;
      }
      mant &= 0x03ffu;
      return std::bit_cast<float>(sign | (e << 23) | (mant << 13));
    }
    return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (mant << 13));
  }

  /// Bitwise equality (distinguishes +0/-0 and NaN payloads).
  friend constexpr bool same_bits(fp16 a, fp16 b) noexcept { return a.bits == b.bits; }
};

static_assert(sizeof(fp16) == 2 && alignof(fp16) == 2);

} // namespace fusekit
