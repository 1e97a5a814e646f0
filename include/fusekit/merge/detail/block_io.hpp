/// @file
/// @brief Internal: moving blocks of consecutive (row-major linear) elements between views and float
/// buffers, with a contiguous fast path that vectorizes and a strided path for any layout.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__AVX2__) || defined(__SSE2__) || defined(__F16C__)
#include <immintrin.h>
#endif

#include <fusekit/core/config.hpp>
#include <fusekit/types/convert.hpp>
#include <fusekit/types/element.hpp>

namespace fusekit::detail {

/// Whether every view type has elements of type T.
template <class T, class... V>
inline constexpr bool all_elements_are = (std::is_same_v<std::remove_cv_t<typename std::remove_cvref_t<V>::element_type>, T> && ...);

/// Whether every view type has bf16 elements (the register kernels' condition, with contiguity).
template <class... V> inline constexpr bool all_bf16 = all_elements_are<bf16, V...>;

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
    widen_to_float(v.data() + b, dst, len); // vectorized, bit-identical to the scalar conversion
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

/// Asks for elements [b, b+len) of view `v` to be brought into the L2 cache ahead of a load_block (contiguous
/// views only; a hint, with no effect on results). Lets the multi-pass merge loops overlap the next block's
/// memory traffic with the current block's arithmetic.
template <class V> FUSEKIT_FORCEINLINE void prefetch_block(const V& v, bool contiguous, std::int64_t b, std::int64_t len) noexcept {
#if defined(__GNUC__)
  if (!contiguous || len <= 0)
    return;
  const char* p = reinterpret_cast<const char*>(v.data() + b);
  const char* e = reinterpret_cast<const char*>(v.data() + b + len);
  for (; p < e; p += 64)
    __builtin_prefetch(p, 0, 2);
#else
  (void)v, (void)contiguous, (void)b, (void)len;
#endif
}

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
      std::int64_t j = 0;
      for (; j < len && (reinterpret_cast<std::uintptr_t>(dst + j) & 15u) != 0; ++j) // align the head
        dst[j] = from_compute<T>(src[j]);
      // narrow 64 bytes at a time into an aligned buffer (types/convert.hpp), then stream it out
      constexpr std::int64_t chunk = 64 / static_cast<std::int64_t>(sizeof(T));
      alignas(64) T tmp[chunk];
      for (; j + chunk <= len; j += chunk) {
        narrow_from_float(src + j, tmp, chunk);
        for (std::int64_t q = 0; q < chunk; q += 16 / static_cast<std::int64_t>(sizeof(T)))
          _mm_stream_si128(reinterpret_cast<__m128i*>(dst + j + q), _mm_load_si128(reinterpret_cast<const __m128i*>(tmp + q)));
      }
      for (; j < len; ++j)
        dst[j] = from_compute<T>(src[j]);
      _mm_sfence();
      return;
    }
#endif
    narrow_from_float(src, dst, len); // vectorized, bit-identical to from_compute
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

#if FUSEKIT_CONVERT_X86 && defined(__AVX2__)
/// How many elements ahead a register kernel reading `streams` interleaved 16-bit streams prefetches: about
/// 16 KiB of lines in flight in all (half of L1; prefetches further ahead were evicted before use: SCE with
/// 8 inputs ran 10% slower at 2048 than at 256–1024), between 256 and 2048 elements, a multiple of 32.
[[nodiscard]] constexpr std::int64_t prefetch_distance(std::size_t streams) noexcept {
  const std::int64_t d = 8192 / static_cast<std::int64_t>(std::max<std::size_t>(streams, 1)) / 32 * 32;
  return d < 256 ? 256 : d > 2048 ? 2048 : d;
}

/// x16_elementwise with two groups of 16 per step: vec(q, r) computes elements [q, q + 32) into r[0], r[1]
/// (vec is called with std::integral_constant<int, G> for G = 2, or 1 for a last lone group of 16), so a
/// kernel whose per-element work is a chain over the models (sums in model order) runs two independent
/// chains and the out-of-order core overlaps them. Ranges of 16 or more elements take their head (with
/// `streaming`, up to the 32-byte grid) and tail as one unaligned group each, overlapping the aligned steps;
/// `one(q)` writes element q by itself only in shorter ranges, an output off the 2-byte grid or one that
/// overlaps an input (merging in place stays correct: each element is read before it is written). Every
/// step the inputs `base` (may be nullptr) and x[0..K) are prefetched `ahead` elements on (K + 2
/// interleaved streams are more than the hardware prefetchers follow); with `streaming` the vectors are
/// stored non-temporally. The register kernels of SCE and the GTA
/// final pass are written on this.
template <class T, class One, class Vec>
FUSEKIT_FORCEINLINE void x32_elementwise(T* out, std::int64_t b, std::int64_t e, bool streaming, const T* base,
                                         const T* const* x, std::size_t K, std::int64_t ahead, One&& one,
                                         Vec&& vec) noexcept {
  static_assert(sizeof(T) == 2, "x32_elementwise: 16-bit elements");
  std::int64_t q = b;
  // ranges of 16 or more: the head before the 32-byte grid and the tail after the last group are each one
  // group of 16 stored unaligned, overlapping elements the aligned steps also write (the same bits: every
  // element is computed from its own inputs alone), instead of up to 15 calls of `one` each (a 16-byte
  // aligned output, as malloc returns, cost 16 scalar elements per 2048-element block: ~7% of TIES's pass)
  // (not when the output overlaps an input, e.g. a merge in place into the base: a group written twice
  // would read, the second time, values the first already overwrote)
  const auto disjoint = [&](const T* p) {
    if (p == nullptr)
      return true;
    const auto o0 = reinterpret_cast<std::uintptr_t>(out + b), o1 = reinterpret_cast<std::uintptr_t>(out + e);
    const auto p0 = reinterpret_cast<std::uintptr_t>(p + b), p1 = reinterpret_cast<std::uintptr_t>(p + e);
    return o1 <= p0 || p1 <= o0;
  };
  bool whole = e - b >= 16 && (reinterpret_cast<std::uintptr_t>(out + b) & 1u) == 0 && disjoint(base);
  for (std::size_t k = 0; k < K && whole; ++k)
    whole = disjoint(x[k]);
  // one group of 16 at `at`, stored unaligned (inlined at its three uses: out of line, TIES's pass ran 4%
  // slower, from the call per use)
  auto single = [&](std::int64_t at) {
    __m256i r[1];
    vec(std::integral_constant<int, 1>{}, at, r);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + at), r[0]);
  };
  if (streaming && (reinterpret_cast<std::uintptr_t>(out + q) & 31u) != 0) {
    if (whole) {
      single(q);
      q += static_cast<std::int64_t>((32u - (reinterpret_cast<std::uintptr_t>(out + q) & 31u)) / sizeof(T));
    } else {
      for (; q < e && (reinterpret_cast<std::uintptr_t>(out + q) & 31u) != 0; ++q)
        one(q);
    }
  }
  auto store = [&](std::int64_t at, __m256i r) {
    if (streaming)
      _mm256_stream_si256(reinterpret_cast<__m256i*>(out + at), r);
    else
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + at), r);
  };
  for (; q + 32 <= e; q += 32) {
    for (std::size_t k = 0; k < K; ++k)
      __builtin_prefetch(x[k] + q + ahead, 0, 0);
    if (base != nullptr)
      __builtin_prefetch(base + q + ahead, 0, 0);
    __m256i r[2];
    vec(std::integral_constant<int, 2>{}, q, r);
    store(q, r[0]);
    store(q + 16, r[1]);
  }
  if (q + 16 <= e) {
    __m256i r[1];
    vec(std::integral_constant<int, 1>{}, q, r);
    store(q, r[0]);
    q += 16;
  }
  if (q < e && whole) {
    single(e - 16);
    q = e;
  }
  for (; q < e; ++q)
    one(q);
  if (streaming)
    _mm_sfence();
}

/// Runs an element-wise kernel over elements [b, e) of a contiguous 16-bit (bf16 or fp16) output 16 at a
/// time: `vec(q)` returns the bits of elements [q, q + 16) in element order (bf16x16_narrow_split,
/// fp16x16_narrow), `one(q)` writes element q by itself where x32_elementwise says so. Head, tail,
/// prefetch and stores as x32_elementwise, which runs it (two calls of vec per step). The register kernels
/// of weighted_sum are written on this.
template <class T, class One, class Vec>
FUSEKIT_FORCEINLINE void x16_elementwise(T* out, std::int64_t b, std::int64_t e, bool streaming, const T* base,
                                         const T* const* x, std::size_t K, std::int64_t ahead, One&& one,
                                         Vec&& vec) noexcept {
  x32_elementwise(out, b, e, streaming, base, x, K, ahead, one, [&](auto G_, std::int64_t q, __m256i* r) {
    for (int g = 0; g < decltype(G_)::value; ++g)
      r[g] = vec(q + 16 * g);
  });
}

/// The even and odd elements of G consecutive groups of 16 bf16 at p as floats (bf16x16_load_split of
/// p + 16·g into even[g], odd[g]): the base rows of the two-group register kernels.
template <int G, class V> FUSEKIT_FORCEINLINE void bf16_groups_load_split(const bf16* p, V* even, V* odd) noexcept {
  for (int g = 0; g < G; ++g) {
    __m256 e, o;
    bf16x16_load_split(p + 16 * g, e, o);
    even[g] = (V)e;
    odd[g] = (V)o;
  }
}
#endif

} // namespace fusekit::detail
