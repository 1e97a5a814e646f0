/// @file
/// @brief Block conversions between storage types (bf16, fp16, float) and float: `widen_to_float` and
/// `narrow_from_float` over contiguous arrays, vectorized, bit-identical to the scalar conversions of
/// fusekit::bf16 / fusekit::fp16 for every input (round to nearest even, NaN kept as a quiet NaN with
/// its sign and top payload bits, fp16 overflow to infinity, fp16 subnormals exact).
///
/// Three implementations, chosen at compile time, all giving the same bits:
///  * x86 intrinsics where the translation unit is built for them (AVX2 for bf16, F16C for fp16; groups
///    of 8 fp16 values holding a NaN are widened by the scalar code, because vcvtph2ps quiets signaling
///    NaNs);
///  * GCC/Clang vector extensions (FUSEKIT_HAS_VECTOR_EXT; SSE2 or NEON width) otherwise;
///  * plain scalar code for the tails and for compilers without either (nvcc, MSVC).
/// The fp16 paths never do denormal arithmetic, so results stay exact under FTZ/DAZ.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include <fusekit/core/config.hpp>
#include <fusekit/types/bf16.hpp>
#include <fusekit/types/fp16.hpp>

#if FUSEKIT_HAS_VECTOR_EXT && (defined(__AVX2__) || defined(__F16C__))
#include <immintrin.h>
#define FUSEKIT_CONVERT_X86 1
#else
#define FUSEKIT_CONVERT_X86 0
#endif

namespace fusekit {
namespace detail {

/// binary16 bits → float without branches on the value (vectorizes) and without denormal arithmetic;
/// identical to fp16::to_float for all 65536 inputs.
FUSEKIT_FORCEINLINE float fp16_bits_to_float(std::uint16_t h) noexcept {
  const std::uint32_t sign = (static_cast<std::uint32_t>(h) & 0x8000u) << 16;
  const std::uint32_t em = static_cast<std::uint32_t>(h) & 0x7fffu;
  const std::uint32_t exp = em & 0x7c00u;
  const std::uint32_t normal = (em << 13) + (112u << 23); // rebias 15 → 127
  // subnormal m·2^-24: exact as the difference of two normal floats, 2^-14·(1 + m/1024) − 2^-14
  const float sub = std::bit_cast<float>((113u << 23) | ((em & 0x03ffu) << 13)) - std::bit_cast<float>(113u << 23);
  const std::uint32_t special = 0x7f800000u | ((em & 0x03ffu) << 13); // inf / NaN
  const std::uint32_t bits = exp == 0x7c00u ? special : (exp == 0 ? std::bit_cast<std::uint32_t>(sub) : normal);
  return std::bit_cast<float>(bits | sign);
}

#if FUSEKIT_HAS_VECTOR_EXT
#if defined(__AVX__)
inline constexpr int cvt_lanes = 8; ///< elements per step of the vector-extension paths (one register)
#else
inline constexpr int cvt_lanes = 4;
#endif
typedef std::uint16_t cvt_u16v __attribute__((vector_size(2 * cvt_lanes)));
typedef std::uint32_t cvt_u32v __attribute__((vector_size(4 * cvt_lanes)));
typedef std::int32_t cvt_i32v __attribute__((vector_size(4 * cvt_lanes)));
typedef float cvt_f32v __attribute__((vector_size(4 * cvt_lanes)));

/// bf16 rounding of 8 floats given as their bits (same as bf16::from_float lane by lane).
FUSEKIT_FORCEINLINE cvt_u32v bf16_round_bits(cvt_u32v u) noexcept {
  const cvt_u32v rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const cvt_u32v quiet = (u >> 16) | 0x0040u;
  // NaN test on |u| as signed ints (both sides non-negative, so signed compare = unsigned compare)
  const cvt_i32v nan = (cvt_i32v)(u & 0x7fffffffu) > 0x7f800000;
  return nan ? quiet : rounded;
}

/// fp16 rounding of 8 floats given as their bits (same as fp16::from_float lane by lane). Integer
/// operations only: normal range by adding the rounding bias to the rebased bits, subnormal range by
/// a variable right shift with round-to-nearest-even on the shifted-out bits.
FUSEKIT_FORCEINLINE cvt_u32v fp16_round_bits(cvt_u32v u) noexcept {
  const cvt_u32v sign = (u >> 16) & 0x8000u;
  const cvt_u32v a = u & 0x7fffffffu;
  const cvt_i32v ai = (cvt_i32v)a; // non-negative: signed compares are safe
  const cvt_u32v nan = sign | 0x7e00u | ((a >> 13) & 0x03ffu);
  const cvt_u32v rn = a + 0x0fffu + ((a >> 13) & 1u);
  const cvt_u32v normal = (cvt_i32v)rn >= 0x47800000 ? (sign | 0x7c00u) : (sign | ((rn - 0x38000000u) >> 13));
  // subnormal: shift in [14, 24]; clamp it for lanes that are not subnormal (their value is discarded)
  const cvt_u32v mant = (a & 0x007fffffu) | 0x00800000u;
  cvt_i32v sh = 126 - (ai >> 23);
  sh = sh < 14 ? cvt_i32v{} + 14 : sh;
  sh = sh > 24 ? cvt_i32v{} + 24 : sh;
  const cvt_u32v shu = (cvt_u32v)sh;
  const cvt_u32v h = mant >> shu;
  const cvt_u32v rem = mant & (((cvt_u32v{} + 1u) << shu) - 1u);
  const cvt_u32v half = (cvt_u32v{} + 1u) << (shu - 1u);
  const cvt_i32v up =
      ((cvt_i32v)rem > (cvt_i32v)half) | (((cvt_i32v)rem == (cvt_i32v)half) & ((cvt_i32v)(h & 1u) != 0));
  const cvt_u32v sub = sign | (h + (cvt_u32v)(up & 1));
  const cvt_u32v tiny = sign;
  return ai > 0x7f800000 ? nan : (ai >= 0x38800000 ? normal : (ai >= 0x33000000 ? sub : tiny));
}
#endif


#if FUSEKIT_CONVERT_X86 && defined(__AVX2__)
/// The rounding of bf16_round_bits_avx2 with the result left in the high half of each lane (low half
/// garbage): u + 0x7fff + (bit 16 of u).
FUSEKIT_FORCEINLINE __m256i bf16_round_high_avx2(__m256i u) noexcept {
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  return _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), lsb));
}

/// bf16 bits (in the low half of each lane) of 8 non-NaN floats given as their bits: round to nearest
/// even, ±inf kept (bf16::from_float without its NaN rule).
FUSEKIT_FORCEINLINE __m256i bf16_round_bits_avx2(__m256i u) noexcept {
  return _mm256_srli_epi32(bf16_round_high_avx2(u), 16);
}

/// Elements 0, 2, …, 14 (`even`) and 1, 3, …, 15 (`odd`) of 16 bf16 at p, widened exactly to float: one
/// 256-bit load, a shift and a mask (2 operations per 16 elements; vpmovzxwd + shift is 4, and vpmovzxwd
/// ymm issues at under one per cycle on AMD Zen 2). Kernels whose per-element work does not care about
/// lane order compute on the two halves and write back with bf16x16_narrow_split.
FUSEKIT_FORCEINLINE void bf16x16_load_split(const bf16* p, __m256& even, __m256& odd) noexcept {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  even = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  odd = _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32(static_cast<int>(0xffff0000u))));
}

/// 16 bf16 in element order from the bf16 bits held in the high halves of the lanes of `even` (elements
/// 0, 2, …) and `odd` (1, 3, …), low halves ignored: one shift and one word blend.
FUSEKIT_FORCEINLINE __m256i bf16x16_merge_high(__m256i even, __m256i odd) noexcept {
  return _mm256_blend_epi16(_mm256_srli_epi32(even, 16), odd, 0xaa);
}

/// The inverse of bf16x16_load_split: 16 bf16 in element order from the even and odd elements as floats,
/// each rounded exactly as narrow_from_float does (nearest even, NaN quieted with its sign and payload
/// kept), merged with one word blend (no pack, no lane permute).
FUSEKIT_FORCEINLINE __m256i bf16x16_narrow_split(__m256 even, __m256 odd) noexcept {
  const auto high = [](__m256 f) { // bf16 bits in the high half of each lane
    const __m256i u = _mm256_castps_si256(f);
    return _mm256_blendv_epi8(bf16_round_high_avx2(u), _mm256_or_si256(u, _mm256_set1_epi32(0x400000)),
                              _mm256_castps_si256(_mm256_cmp_ps(f, f, _CMP_UNORD_Q)));
  };
  return bf16x16_merge_high(high(even), high(odd));
}

#if defined(__F16C__)
/// Elements 0–7 (`lo`) and 8–15 (`hi`) of 16 fp16 at p, widened to float with vcvtph2ps: exact, except
/// that a signaling NaN comes out quiet (fp16::to_float keeps it signaling). Arithmetic quiets it the
/// same way, so kernels that only compute on the values get the bits of the scalar path.
FUSEKIT_FORCEINLINE void fp16x16_load(const fp16* p, __m256& lo, __m256& hi) noexcept {
  lo = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  hi = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8)));
}

/// The inverse of fp16x16_load: 16 fp16 in element order, each rounded as narrow_from_float does.
FUSEKIT_FORCEINLINE __m256i fp16x16_narrow(__m256 lo, __m256 hi) noexcept {
  constexpr int rn = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  return _mm256_set_m128i(_mm256_cvtps_ph(hi, rn), _mm256_cvtps_ph(lo, rn));
}
#endif

/// Whether x16_load / x16_narrow exist for 16-bit element type T in this translation unit (bf16 with
/// AVX2; fp16 with AVX2 and F16C).
template <class T>
inline constexpr bool has_x16_kernels = std::is_same_v<T, bf16>
#if defined(__F16C__)
                                        || std::is_same_v<T, fp16>
#endif
    ;

/// 16 bf16 / fp16 at p as two float vectors, in the lane layout that x16_narrow<T> undoes (bf16: even
/// and odd elements, bf16x16_load_split; fp16: elements 0–7 and 8–15, fp16x16_load). For kernels whose
/// per-element work does not care about the lane order.
FUSEKIT_FORCEINLINE void x16_load(const bf16* p, __m256& a, __m256& b) noexcept { bf16x16_load_split(p, a, b); }
#if defined(__F16C__)
FUSEKIT_FORCEINLINE void x16_load(const fp16* p, __m256& a, __m256& b) noexcept { fp16x16_load(p, a, b); }
#endif

/// 16 elements of type T in element order from the two float vectors of x16_load's layout.
template <class T> FUSEKIT_FORCEINLINE __m256i x16_narrow(__m256 a, __m256 b) noexcept {
  if constexpr (std::is_same_v<T, bf16>) {
    return bf16x16_narrow_split(a, b);
  } else {
#if defined(__F16C__)
    return fp16x16_narrow(a, b);
#else
    static_assert(std::is_same_v<T, bf16>, "x16_narrow<fp16> needs F16C");
#endif
  }
}

/// Packs two vectors of 8 lanes holding 16-bit values (high halves zero) into 16 uint16 in lane order.
FUSEKIT_FORCEINLINE __m256i pack_u32_to_u16_avx2(__m256i a, __m256i b) noexcept {
  // packus works within 128-bit lanes: [a0-3 b0-3 | a4-7 b4-7] → reorder the 64-bit quarters
  return _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xd8);
}
#endif
} // namespace detail

/// dst[j] = float(src[j]) for j in [0, n): exact widening of bf16 / fp16 / float (and a plain cast for
/// other arithmetic types). `src` and `dst` must not overlap.
template <class T> FUSEKIT_FORCEINLINE void widen_to_float(const T* src, float* dst, std::int64_t n) noexcept {
  using U = std::remove_cv_t<T>;
  std::int64_t j = 0;
  if constexpr (std::is_same_v<U, float>) {
    if (n > 0)
      std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(float));
    return;
  } else if constexpr (std::is_same_v<U, bf16>) {
#if FUSEKIT_CONVERT_X86 && defined(__AVX2__)
    for (const std::int64_t nv = n - n % 8; j < nv; j += 8) {
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + j));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + j), _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
#elif FUSEKIT_HAS_VECTOR_EXT
    for (const std::int64_t nv = n - n % detail::cvt_lanes; j < nv; j += detail::cvt_lanes) {
      detail::cvt_u16v h;
      std::memcpy(&h, src + j, sizeof(h));
      const detail::cvt_u32v w = __builtin_convertvector(h, detail::cvt_u32v) << 16;
      std::memcpy(dst + j, &w, sizeof(w));
    }
#endif
    for (; j < n; ++j)
      dst[j] = bf16::to_float(src[j].bits);
  } else if constexpr (std::is_same_v<U, fp16>) {
#if FUSEKIT_CONVERT_X86 && defined(__F16C__)
    // vcvtph2ps quiets signaling NaNs (fp16::to_float keeps them): 8 lanes with a NaN go the scalar way
    for (const std::int64_t nv = n - n % 8; j < nv; j += 8) {
      const __m256 f = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + j)));
      if (_mm256_movemask_ps(_mm256_cmp_ps(f, f, _CMP_UNORD_Q)) == 0) {
        _mm256_storeu_ps(dst + j, f);
      } else {
        for (std::int64_t q = j; q < j + 8; ++q)
          dst[q] = detail::fp16_bits_to_float(src[q].bits);
      }
    }
#elif FUSEKIT_HAS_VECTOR_EXT
    for (const std::int64_t nv = n - n % detail::cvt_lanes; j < nv; j += detail::cvt_lanes) {
      detail::cvt_u16v h16;
      std::memcpy(&h16, src + j, sizeof(h16));
      const detail::cvt_u32v h = __builtin_convertvector(h16, detail::cvt_u32v);
      const detail::cvt_u32v sign = (h & 0x8000u) << 16;
      const detail::cvt_u32v em = h & 0x7fffu;
      const detail::cvt_i32v e = (detail::cvt_i32v)(em & 0x7c00u);
      const detail::cvt_u32v normal = (em << 13) + (112u << 23);
      const detail::cvt_f32v sub =
          (detail::cvt_f32v)((113u << 23) | ((em & 0x03ffu) << 13)) - std::bit_cast<float>(113u << 23);
      const detail::cvt_u32v special = 0x7f800000u | ((em & 0x03ffu) << 13);
      const detail::cvt_u32v bits = (e == 0x7c00 ? special : (e == 0 ? (detail::cvt_u32v)sub : normal)) | sign;
      std::memcpy(dst + j, &bits, sizeof(bits));
    }
#endif
    for (; j < n; ++j)
      dst[j] = detail::fp16_bits_to_float(src[j].bits);
  } else {
    for (; j < n; ++j)
      dst[j] = static_cast<float>(src[j]);
  }
}

/// dst[j] = T(src[j]) for j in [0, n): round to nearest even into bf16 / fp16 (bit-identical to the
/// scalar constructors, NaN payloads included), a copy for float, a plain cast for other types.
/// `src` and `dst` must not overlap (for T = float, `dst == src` is allowed and does nothing).
template <class T> FUSEKIT_FORCEINLINE void narrow_from_float(const float* src, T* dst, std::int64_t n) noexcept {
  using U = std::remove_cv_t<T>;
  std::int64_t j = 0;
  if constexpr (std::is_same_v<U, float>) {
    if (n > 0 && static_cast<const void*>(src) != static_cast<const void*>(dst))
      std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(float));
    return;
  } else if constexpr (std::is_same_v<U, bf16>) {
#if FUSEKIT_CONVERT_X86 && defined(__AVX2__)
    const __m256i quiet = _mm256_set1_epi32(0x40);
    for (const std::int64_t nv = n - n % 16; j < nv; j += 16) {
      __m256i r[2];
      for (int q = 0; q < 2; ++q) {
        const __m256 f = _mm256_loadu_ps(src + j + 8 * q);
        const __m256i u = _mm256_castps_si256(f);
        r[q] = _mm256_blendv_epi8(detail::bf16_round_bits_avx2(u), _mm256_or_si256(_mm256_srli_epi32(u, 16), quiet),
                                  _mm256_castps_si256(_mm256_cmp_ps(f, f, _CMP_UNORD_Q)));
      }
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + j), detail::pack_u32_to_u16_avx2(r[0], r[1]));
    }
#elif FUSEKIT_HAS_VECTOR_EXT
    for (const std::int64_t nv = n - n % detail::cvt_lanes; j < nv; j += detail::cvt_lanes) {
      detail::cvt_u32v u;
      std::memcpy(&u, src + j, sizeof(u));
      const detail::cvt_u16v h = __builtin_convertvector(detail::bf16_round_bits(u), detail::cvt_u16v);
      std::memcpy(static_cast<void*>(dst + j), &h, sizeof(h));
    }
#endif
    for (; j < n; ++j)
      dst[j] = bf16(from_bits, bf16::from_float(src[j]));
  } else if constexpr (std::is_same_v<U, fp16>) {
#if FUSEKIT_CONVERT_X86 && defined(__F16C__)
    for (const std::int64_t nv = n - n % 8; j < nv; j += 8)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + j),
                       _mm256_cvtps_ph(_mm256_loadu_ps(src + j), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#elif FUSEKIT_HAS_VECTOR_EXT
    for (const std::int64_t nv = n - n % detail::cvt_lanes; j < nv; j += detail::cvt_lanes) {
      detail::cvt_u32v u;
      std::memcpy(&u, src + j, sizeof(u));
      const detail::cvt_u16v h = __builtin_convertvector(detail::fp16_round_bits(u), detail::cvt_u16v);
      std::memcpy(static_cast<void*>(dst + j), &h, sizeof(h));
    }
#endif
    for (; j < n; ++j)
      dst[j] = fp16(from_bits, fp16::from_float(src[j]));
  } else {
    for (; j < n; ++j)
      dst[j] = static_cast<U>(src[j]);
  }
}

} // namespace fusekit
