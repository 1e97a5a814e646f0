/// @file
/// @brief Internal: moving blocks of consecutive (row-major linear) elements between views and float
/// buffers, with a contiguous fast path that vectorizes and a strided path for any layout.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__AVX2__) || defined(__SSE2__) || defined(__F16C__)
#include <immintrin.h>
#endif

#include <fusekit/core/config.hpp>
#include <fusekit/types/element.hpp>

namespace fusekit::detail {

/// Elements per block in the blocked merge loops (buffers of this many floats live on the stack).
inline constexpr std::int64_t merge_block = 2048;

/// Offset (in elements) of row-major linear index `i` in view `v`.
template <class V> FUSEKIT_HOST_DEVICE constexpr std::int64_t linear_offset(const V& v, std::int64_t i) noexcept {
  std::int64_t off = 0;
  for (std::size_t d = V::rank(); d-- > 0;) {
    const std::int64_t e = v.extent(d);
    off += (i % e) * v.stride(d);
    i /= e;
  }
  return off;
}

/// Loads elements [b, b+len) (row-major linear order) of view `v` into `dst` as compute floats.
template <class V> void load_block(const V& v, bool contiguous, std::int64_t b, std::int64_t len, float* dst) noexcept {
  using T = std::remove_cv_t<typename V::element_type>;
  if (contiguous) {
    const T* src = v.data() + b;
    std::int64_t j = 0;
#if defined(__AVX2__)
    if constexpr (std::is_same_v<T, bf16>) {
      for (; j + 8 <= len; j += 8) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + j));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + j), _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
      }
    }
#endif
#if defined(__F16C__)
    if constexpr (std::is_same_v<T, fp16>) {
      for (; j + 8 <= len; j += 8)
        _mm256_storeu_ps(dst + j, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + j))));
    }
#endif
    FUSEKIT_PRAGMA_SIMD
    for (; j < len; ++j)
      dst[j] = static_cast<float>(src[j]);
    return;
  }
  if constexpr (V::rank() == 1) {
    const std::int64_t s = v.stride(0);
    const T* src = v.data() + b * s;
    for (std::int64_t j = 0; j < len; ++j)
      dst[j] = static_cast<float>(src[j * s]);
  } else if constexpr (V::rank() == 2) {
    const std::int64_t cols = v.extent(1), s0 = v.stride(0), s1 = v.stride(1);
    std::int64_t r = b / cols, c = b % cols;
    for (std::int64_t j = 0; j < len; ++j) {
      dst[j] = static_cast<float>(v.data()[r * s0 + c * s1]);
      if (++c == cols) {
        c = 0;
        ++r;
      }
    }
  } else {
    for (std::int64_t j = 0; j < len; ++j)
      dst[j] = static_cast<float>(v.data()[linear_offset(v, b + j)]);
  }
}

#if defined(__SSE2__)
/// Converts 16 bytes' worth of floats (8 for 2-byte T, 4 for 4-byte T) to T, bit-identical to from_compute.
template <class T> inline __m128i pack16(const float* src) noexcept {
#if defined(__AVX2__)
  if constexpr (std::is_same_v<T, bf16>) {
    const __m256 f = _mm256_loadu_ps(src);
    const __m256i u = _mm256_castps_si256(f);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
    const __m256i nan = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    r = _mm256_blendv_epi8(r, nan, _mm256_castps_si256(_mm256_cmp_ps(f, f, _CMP_UNORD_Q)));
    return _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
  }
#endif
#if defined(__F16C__)
  if constexpr (std::is_same_v<T, fp16>)
    return _mm256_cvtps_ph(_mm256_loadu_ps(src), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#endif
  if constexpr (std::is_same_v<T, float>) {
    return _mm_castps_si128(_mm_loadu_ps(src));
  } else {
    constexpr int per = 16 / static_cast<int>(sizeof(T));
    alignas(16) T tmp[per];
    for (int q = 0; q < per; ++q)
      tmp[q] = from_compute<T>(src[q]);
    __m128i w;
    std::memcpy(&w, tmp, 16);
    return w;
  }
}
#endif

/// Output size (bytes) from which contiguous stores bypass the cache (non-temporal), as large memcpy
/// does: the output is not read back soon, and streaming saves the read-for-ownership traffic.
inline constexpr std::int64_t streaming_store_min_bytes = std::int64_t{8} << 20;

/// Stores `src[0..len)` into elements [b, b+len) of view `v`, rounding to its element type. With
/// `streaming`, contiguous stores use non-temporal instructions where the target has them.
template <class V>
void store_block(const V& v, bool contiguous, std::int64_t b, std::int64_t len, const float* src,
                 bool streaming = false) noexcept {
  using T = std::remove_cv_t<typename V::element_type>;
  if (contiguous) {
    T* dst = v.data() + b;
#if defined(__SSE2__)
    if (streaming && (sizeof(T) == 2 || sizeof(T) == 4)) {
      constexpr std::int64_t per = 16 / static_cast<std::int64_t>(sizeof(T)); // elements per 16-byte store
      std::int64_t j = 0;
      for (; j < len && (reinterpret_cast<std::uintptr_t>(dst + j) & 15u) != 0; ++j) // align the head
        dst[j] = from_compute<T>(src[j]);
      for (; j + per <= len; j += per)
        _mm_stream_si128(reinterpret_cast<__m128i*>(dst + j), pack16<T>(src + j));
      for (; j < len; ++j)
        dst[j] = from_compute<T>(src[j]);
      _mm_sfence();
      return;
    }
#endif
    FUSEKIT_PRAGMA_SIMD
    for (std::int64_t j = 0; j < len; ++j)
      dst[j] = from_compute<T>(src[j]);
    return;
  }
  if constexpr (V::rank() == 1) {
    const std::int64_t s = v.stride(0);
    T* dst = v.data() + b * s;
    for (std::int64_t j = 0; j < len; ++j)
      dst[j * s] = from_compute<T>(src[j]);
  } else if constexpr (V::rank() == 2) {
    const std::int64_t cols = v.extent(1), s0 = v.stride(0), s1 = v.stride(1);
    std::int64_t r = b / cols, c = b % cols;
    for (std::int64_t j = 0; j < len; ++j) {
      v.data()[r * s0 + c * s1] = from_compute<T>(src[j]);
      if (++c == cols) {
        c = 0;
        ++r;
      }
    }
  } else {
    for (std::int64_t j = 0; j < len; ++j)
      v.data()[linear_offset(v, b + j)] = from_compute<T>(src[j]);
  }
}

} // namespace fusekit::detail
