/// @file
/// @brief Counter-based random numbers (Philox4x32-10): the value at (seed, stream, index) is a pure
/// function of those three, so masks are identical for any thread count, processing order, CPU or GPU.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include <fusekit/core/config.hpp>

namespace fusekit::rng {

/// One Philox4x32 block: 128-bit counter, 64-bit key.
struct philox4x32_block {
  std::array<std::uint32_t, 4> v;
};

namespace detail {
FUSEKIT_HOST_DEVICE constexpr void mulhilo32(std::uint32_t a, std::uint32_t b, std::uint32_t& hi,
                                             std::uint32_t& lo) noexcept {
  const std::uint64_t p = static_cast<std::uint64_t>(a) * b;
  hi = static_cast<std::uint32_t>(p >> 32);
  lo = static_cast<std::uint32_t>(p);
}
} // namespace detail

/// Philox4x32's round multipliers (M0, M1) and key increments (W0, W1), shared with the vectorized
/// generators of merge/detail/kernels.hpp.
inline constexpr std::uint32_t philox_m0 = 0xD2511F53u, philox_m1 = 0xCD9E8D57u;
inline constexpr std::uint32_t philox_w0 = 0x9E3779B9u, philox_w1 = 0xBB67AE85u;

/// Philox4x32 with 10 rounds (Salmon et al., SC'11; the Random123 / cuRAND generator).
FUSEKIT_HOST_DEVICE constexpr std::array<std::uint32_t, 4> philox4x32_10(std::array<std::uint32_t, 4> ctr,
                                                                         std::array<std::uint32_t, 2> key) noexcept {
  for (int r = 0; r < 10; ++r) {
    std::uint32_t hi0 = 0, lo0 = 0, hi1 = 0, lo1 = 0;
    detail::mulhilo32(philox_m0, ctr[0], hi0, lo0);
    detail::mulhilo32(philox_m1, ctr[2], hi1, lo1);
    ctr = {hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0};
    key[0] += philox_w0;
    key[1] += philox_w1;
  }
  return ctr;
}

/// 64-bit FNV-1a hash: turns a tensor name into a stream id ("model.layers.0.mlp.up_proj.weight").
[[nodiscard]] constexpr std::uint64_t stream_id(std::string_view name) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (char c : name) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

/// Four 32-bit random words for counter block `block` of stream `stream` under `seed`.
FUSEKIT_HOST_DEVICE constexpr std::array<std::uint32_t, 4> random_block(std::uint64_t seed, std::uint64_t stream,
                                                                        std::uint64_t block) noexcept {
  return philox4x32_10({static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32),
                        static_cast<std::uint32_t>(stream), static_cast<std::uint32_t>(stream >> 32)},
                       {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)});
}

/// The 32-bit random word for element `index` (element i uses word i%4 of block i/4).
FUSEKIT_HOST_DEVICE constexpr std::uint32_t random_u32(std::uint64_t seed, std::uint64_t stream,
                                                       std::uint64_t index) noexcept {
  return random_block(seed, stream, index >> 2)[index & 3u];
}

/// Converts a random word to a float uniform in [0, 1) with 24 random bits.
FUSEKIT_HOST_DEVICE constexpr float u32_to_unit_float(std::uint32_t w) noexcept {
  return static_cast<float>(w >> 8) * (1.0f / 16777216.0f);
}

/// Uniform float in [0, 1) for element `index` of stream `stream` under `seed`.
FUSEKIT_HOST_DEVICE constexpr float uniform01(std::uint64_t seed, std::uint64_t stream, std::uint64_t index) noexcept {
  return u32_to_unit_float(random_u32(seed, stream, index));
}

/// ceil(p·2²⁴) for a probability p in [0, 1] (NaN and p <= 0 give 0, p >= 1 gives 2²⁴): the integer
/// threshold T with P(keep) = T·2⁻²⁴, i.e. "u < p" for a uniform u on the 2⁻²⁴ grid (p·2²⁴ is exact in float).
FUSEKIT_HOST_DEVICE constexpr std::uint32_t u24_threshold(float p) noexcept {
  if (!(p > 0.0f))
    return 0;
  if (p >= 1.0f)
    return 1u << 24;
  const float pf = p * 16777216.0f;
  const auto t = static_cast<std::uint32_t>(pf); // floor (pf > 0)
  return static_cast<float>(t) < pf ? t + 1 : t;
}

/// First element index of the refinement draws of rng::bernoulli_u24 (element e refines with word
/// refine_index + e): its counter blocks (>= 2⁶⁰) never meet the main draws' (e / 16 < 2⁵⁸ for e < 2⁶²).
inline constexpr std::uint64_t refine_index = std::uint64_t{1} << 62;

/// The random byte of element `index`: byte index % 4 (little-endian) of random_u32(seed, stream, index / 4),
/// i.e. the stream's words read as consecutive bytes, 16 elements per Philox block.
FUSEKIT_HOST_DEVICE constexpr std::uint32_t random_byte(std::uint64_t seed, std::uint64_t stream,
                                                        std::uint64_t index) noexcept {
  return (random_u32(seed, stream, index >> 2) >> (8u * static_cast<std::uint32_t>(index & 3u))) & 0xFFu;
}

/// Bernoulli draw with P(true) = T·2⁻²⁴ exactly (T <= 2²⁴, see u24_threshold) for element `index` < 2⁶²:
/// the element's 24-bit uniform is m = (random_byte << 16) | r, compared as m < T. The low 16 bits r come
/// from the refinement draw random_u32(seed, stream, refine_index + index) >> 16 and are needed only when
/// the byte equals T >> 16 (probability 1/256), so a mask costs about one byte of Philox output per element
/// instead of one 32-bit word (DARE's masks: detail::fill_keep_bits, 256 draws per 64 words).
FUSEKIT_HOST_DEVICE constexpr bool bernoulli_u24(std::uint64_t seed, std::uint64_t stream, std::uint64_t index,
                                                 std::uint32_t T) noexcept {
  const std::uint32_t b = random_byte(seed, stream, index), tb = T >> 16;
  if (b != tb)
    return b < tb;
  return (random_u32(seed, stream, refine_index + index) >> 16) < (T & 0xFFFFu);
}

/// Bernoulli(p) draw for element `index`: true with probability exactly u24_threshold(p)·2⁻²⁴ (p rounded up
/// to the 2⁻²⁴ grid), from bernoulli_u24. DARE's keep masks are these draws; DELLA's use uniform01 < p(rank).
FUSEKIT_HOST_DEVICE constexpr bool bernoulli(std::uint64_t seed, std::uint64_t stream, std::uint64_t index,
                                             float p) noexcept {
  return bernoulli_u24(seed, stream, index, u24_threshold(p));
}

} // namespace fusekit::rng
