/// @file
/// @brief Internal per-row kernels shared by log-prob, cross-entropy and fusion losses: one streaming
/// pass over a row of logits with an online (running max + rescaled sum) log-sum-exp, optional
/// entropy / logit sum / argmax / top-k, and the matching gradient writer.
///
/// The online pass, per block of row_block (1024) logits:
///  1. the block is widened to the compute type into a stack buffer (types/convert.hpp; fp32 rows
///     contiguous in memory are used in place), so everything after runs from L1;
///  2. one vectorized sweep computes s_b = Σ e^{z − m} against the running max m of the previous blocks
///     and, on the side, the block max b_max (block_exp_max); e^{z − m} is evaluated for z − m up to
///     one_pass_max_jump (64), far below float overflow;
///  3. if b_max > m: sum = (sum + s_b)·e^{m − b_max}, m = b_max (a jump beyond 64 redoes the block against
///     b_max instead); else sum += s_b. Until the first finite max (first block, −inf blocks) the block
///     takes a max sweep then an exp sweep. With the entropy requested the two-sweep form is used
///     throughout (the entropy numerator is re-based on every max change).
/// lse = m + log(sum). One exp per logit (exp_nonpos: 11 vector operations for 8 lanes with AVX2 + FMA).
/// Contiguous bf16 rows are read as even/odd halves of 16 elements (see bf16_grouped).
/// The gradient writer reads the row once more (e^{z − lse}, one exp per logit) and narrows into the
/// output; the fused loss-and-gradient kernel instead parks e^{z − m} during the pass and rescales it per
/// block from cache (one exp per logit for value + gradient). Large gradients that do not alias the
/// logits are written with non-temporal stores.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include <fusekit/core/config.hpp>
#include <fusekit/loss/numerics.hpp>
#include <fusekit/types/bf16.hpp>
#include <fusekit/types/convert.hpp>
#include <fusekit/types/element.hpp>
#include <fusekit/types/fp16.hpp>

#if FUSEKIT_HAS_VECTOR_EXT && defined(__SSE2__)
#include <emmintrin.h>
#define FUSEKIT_LOSS_STREAM 1
#else
#define FUSEKIT_LOSS_STREAM 0
#endif

// Loops here are left to the auto-vectorizer (plain loads/stores) or written with vector extensions
// (exp, max, sums): `omp simd` requests made clang fail -Werror builds (-Wpass-failed) on loops it
// could not vectorize (fp16 widening, double rows).
#define FUSEKIT_LOSS_SIMD

namespace fusekit::detail {

/// Elements per block of a row (fits L1 together with its source).
inline constexpr std::int64_t row_block = 1024;

/// Widens n elements (stride s) into buf (the compute type).
template <class T, class C>
FUSEKIT_FORCEINLINE void load_block(const T* p, std::int64_t s, C* buf, std::int64_t n) noexcept {
  using U = std::remove_cv_t<T>;
  if constexpr (std::is_same_v<C, float>) {
    if (s == 1) {
      widen_to_float(p, buf, n); // shared vectorized conversion (types/convert.hpp)
      return;
    }
  }
  for (std::int64_t j = 0; j < n; ++j)
    buf[j] = static_cast<C>(to_compute(static_cast<U>(p[j * s])));
}

/// Copies `bytes` bytes to `dst` with non-temporal stores where the target has them (16-byte body
/// aligned on `dst`; head and tail by memcpy). Call stream_fence() once the rows are written.
FUSEKIT_FORCEINLINE void stream_copy(void* dst, const void* src, std::size_t bytes) noexcept {
#if FUSEKIT_LOSS_STREAM
  auto* d = static_cast<unsigned char*>(dst);
  const auto* q = static_cast<const unsigned char*>(src);
  const std::size_t head = std::min<std::size_t>(bytes, (16 - (reinterpret_cast<std::uintptr_t>(d) & 15u)) & 15u);
  std::memcpy(d, q, head);
  std::size_t i = head;
  for (; i + 16 <= bytes; i += 16)
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + i), _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + i)));
  std::memcpy(d + i, q + i, bytes - i);
#else
  std::memcpy(dst, src, bytes);
#endif
}

/// Orders the non-temporal stores of stream_copy before later stores (end of a row).
FUSEKIT_FORCEINLINE void stream_fence() noexcept {
#if FUSEKIT_LOSS_STREAM
  _mm_sfence();
#endif
}

/// Output size from which a gradient that does not alias the logits is written with non-temporal
/// stores (as large memcpy does): it is not read back soon, and streaming saves the read-for-ownership
/// of every written line (a third of the backward's memory traffic).
inline constexpr std::int64_t stream_min_bytes = std::int64_t{16} << 20;

/// Narrows (or accumulates) n compute values into the output row. `buf` may be clobbered. With
/// `streaming`, a contiguous overwrite goes through stream_copy.
template <class T, class C>
FUSEKIT_FORCEINLINE void store_block(T* p, std::int64_t s, C* buf, std::int64_t n, bool accumulate,
                                     bool streaming = false) noexcept {
  using U = std::remove_cv_t<T>;
  if constexpr (std::is_same_v<C, float> && (std::is_same_v<U, float> || std::is_same_v<U, bf16> ||
                                             std::is_same_v<U, fp16>)) {
    if (s == 1) {
      if (accumulate) {
        alignas(64) float cur[row_block];
        widen_to_float(p, cur, n);
        for (std::int64_t j = 0; j < n; ++j)
          buf[j] += cur[j];
      }
      if (streaming && !accumulate) {
        if constexpr (std::is_same_v<U, float>) {
          stream_copy(p, buf, static_cast<std::size_t>(n) * sizeof(float));
        } else {
          alignas(64) U tmp[row_block];
          narrow_from_float(buf, tmp, n);
          stream_copy(p, tmp, static_cast<std::size_t>(n) * sizeof(U));
        }
      } else {
        narrow_from_float(buf, p, n);
      }
      return;
    }
  }
  for (std::int64_t j = 0; j < n; ++j)
    p[j * s] = accumulate ? from_compute<U>(static_cast<C>(to_compute(p[j * s])) + buf[j]) : from_compute<U>(buf[j]);
}

/// e^x for x ≤ 0 in the compute type (vectorizable polynomial for float, std::exp for double).
template <class C> FUSEKIT_FORCEINLINE C exp_le0(C x) noexcept {
  if constexpr (std::is_same_v<C, float>)
    return exp_nonpos(x);
  else
    return std::exp(x);
}

/// max_j src[j] (NaN entries are skipped here; they surface through the exp sum).
template <class C> FUSEKIT_FORCEINLINE C block_max(const C* src, std::int64_t n) noexcept {
  std::int64_t j = 0;
  C bm = -std::numeric_limits<C>::infinity();
#if FUSEKIT_HAS_VECTOR_EXT
  if constexpr (std::is_same_v<C, float>) {
    fvec a0 = fvec{} + bm, a1 = a0;
    for (; j + 2 * fvec_lanes <= n; j += 2 * fvec_lanes) {
      fvec x0, x1;
      __builtin_memcpy(&x0, src + j, sizeof(x0));
      __builtin_memcpy(&x1, src + j + fvec_lanes, sizeof(x1));
      a0 = x0 > a0 ? x0 : a0;
      a1 = x1 > a1 ? x1 : a1;
    }
    a0 = a1 > a0 ? a1 : a0;
    for (int k = 0; k < fvec_lanes; ++k)
      bm = a0[k] > bm ? a0[k] : bm;
  }
#endif
  for (; j < n; ++j)
    bm = src[j] > bm ? src[j] : bm;
  return bm;
}

/// Σ_j src[j] (vector lanes for float).
template <class C> FUSEKIT_FORCEINLINE C block_sum(const C* src, std::int64_t n) noexcept {
  std::int64_t j = 0;
  C s = 0;
#if FUSEKIT_HAS_VECTOR_EXT
  if constexpr (std::is_same_v<C, float>) {
    fvec acc{};
    for (; j + fvec_lanes <= n; j += fvec_lanes) {
      fvec x;
      __builtin_memcpy(&x, src + j, sizeof(x));
      acc += x;
    }
    for (int k = 0; k < fvec_lanes; ++k)
      s += acc[k];
  }
#endif
  for (; j < n; ++j)
    s += src[j];
  return s;
}

/// Σ_j e^{buf[j] − m} (float: fvec_lanes at a time with the vector exp).
template <class C> FUSEKIT_FORCEINLINE C block_sum_exp(const C* buf, std::int64_t n, C m) noexcept {
  std::int64_t j = 0;
  C s = 0;
#if FUSEKIT_HAS_VECTOR_EXT
  if constexpr (std::is_same_v<C, float>) {
    fvec acc{};
    for (; j + fvec_lanes <= n; j += fvec_lanes) {
      fvec x;
      __builtin_memcpy(&x, buf + j, sizeof(x));
      acc += exp_nonpos(x - m);
    }
    for (int k = 0; k < fvec_lanes; ++k)
      s += acc[k];
  }
#endif
  for (; j < n; ++j)
    s += exp_le0<C>(buf[j] - m);
  return s;
}

/// Σ_j e^{buf[j] − m}·(buf[j] − m), with 0·(−inf) taken as 0 (entropy numerator).
template <class C> FUSEKIT_FORCEINLINE C block_sum_exp_shifted(const C* buf, std::int64_t n, C m) noexcept {
  std::int64_t j = 0;
  C s = 0;
#if FUSEKIT_HAS_VECTOR_EXT
  if constexpr (std::is_same_v<C, float>) {
    fvec acc{};
    for (; j + fvec_lanes <= n; j += fvec_lanes) {
      fvec x;
      __builtin_memcpy(&x, buf + j, sizeof(x));
      const fvec d = x - m;
      const fvec e = exp_nonpos(d);
      acc += e > 0.0f ? e * d : fvec{};
    }
    for (int k = 0; k < fvec_lanes; ++k)
      s += acc[k];
  }
#endif
  for (; j < n; ++j) {
    const C e = exp_le0<C>(buf[j] - m);
    s += e > C(0) ? e * (buf[j] - m) : C(0);
  }
  return s;
}

/// Largest jump of the block maximum over the reference in the one-pass blocks below: e^{64}·1024 and
/// V·e^{64} stay far from float overflow; a larger jump redoes the block against the new maximum.
inline constexpr float one_pass_max_jump = 64.0f;

/// Folds one block into the running (max m, sum) of the one-pass log-sum-exp: `sb` is the block's sum of
/// e^{z − m} against the running max and `bm` the block's own max. When the max jumps by more than
/// one_pass_max_jump the block's terms are not accurate against the old max, so `redo(bm)` recomputes the
/// block's sum against bm (and may re-park it). Returns true when it did.
template <class C, class Redo>
FUSEKIT_FORCEINLINE bool fold_block_sum(C& sum, C& m, C sb, C bm, Redo&& redo) {
  if (!(bm > m)) {
    sum += sb;
    return false;
  }
  bool redone = false;
  if (bm - m > one_pass_max_jump) {
    sum = sum * std::exp(m - bm) + redo(bm);
    redone = true;
  } else {
    sum = (sum + sb) * std::exp(m - bm);
  }
  m = bm;
  return redone;
}

/// Whether block_exp_max can read storage type S straight from the row (widening in registers, no
/// stack copy): float always; bf16 with AVX2, fp16 with F16C (8-lane fvec).
template <class S>
inline constexpr bool direct_widen = std::is_same_v<S, float>
#if FUSEKIT_HAS_VECTOR_EXT && FUSEKIT_CONVERT_X86 && defined(__AVX2__)
                                     || std::is_same_v<S, bf16>
#endif
#if FUSEKIT_HAS_VECTOR_EXT && FUSEKIT_CONVERT_X86 && defined(__F16C__)
                                     || std::is_same_v<S, fp16>
#endif
    ;

#if FUSEKIT_HAS_VECTOR_EXT
/// fvec_lanes consecutive elements of a direct_widen type as floats. (For fp16, vcvtph2ps quiets
/// signaling NaNs; only NaN-ness matters to the sums and maxima that use this.)
template <class S> FUSEKIT_FORCEINLINE fvec load_fvec(const S* p) noexcept {
  if constexpr (std::is_same_v<S, float>) {
    fvec x;
    __builtin_memcpy(&x, p, sizeof(x));
    return x;
  }
#if FUSEKIT_CONVERT_X86 && defined(__AVX2__)
  else if constexpr (std::is_same_v<S, bf16>) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return (fvec)_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
#endif
#if FUSEKIT_CONVERT_X86 && defined(__F16C__)
  else if constexpr (std::is_same_v<S, fp16>) {
    return (fvec)_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
#endif
  else {
    static_assert(std::is_same_v<S, float>, "load_fvec: not a direct_widen type");
    return fvec{};
  }
}
#endif

/// Whether the bf16 rows are read 16 at a time as (even, odd) element vectors: one 256-bit load, then a
/// shift for the even and a mask for the odd elements (2 operations per 16 instead of 4). The sums over
/// such a row run in that order, and the fused kernel parks e^{z − m} in the *grouped* layout: in each
/// full group of 16 elements of a block, floats 0–7 are the even and 8–15 the odd elements (the last
/// n mod 16 elements of a block stay in order). See group16 / ungroup16 / grouped_index.
inline constexpr bool bf16_grouped =
#if FUSEKIT_HAS_VECTOR_EXT && FUSEKIT_CONVERT_X86 && defined(__AVX2__)
    true;
#else
    false;
#endif

/// Position in the grouped layout of a block of n elements of element j.
FUSEKIT_FORCEINLINE std::int64_t grouped_index(std::int64_t j, std::int64_t n) noexcept {
  return j >= n - n % 16 ? j : (j & ~std::int64_t{15}) + ((j & 1) << 3) + ((j & 15) >> 1);
}

#if FUSEKIT_HAS_VECTOR_EXT && FUSEKIT_CONVERT_X86 && defined(__AVX2__)
/// Elements 0, 2, …, 14 (`even`) and 1, 3, …, 15 (`odd`) of 16 bf16 as floats (types/convert.hpp).
FUSEKIT_FORCEINLINE void load_bf16_split(const bf16* p, fvec& even, fvec& odd) noexcept {
  __m256 e, o;
  bf16x16_load_split(p, e, o);
  even = (fvec)e;
  odd = (fvec)o;
}
#endif

/// Puts the first n − n mod 16 floats of p (in element order) into the grouped layout, in place.
inline void group16(float* p, std::int64_t n) noexcept {
  for (std::int64_t g = 0; g + 16 <= n; g += 16) {
    float t[16];
    for (int q = 0; q < 16; ++q)
      t[(q & 1) * 8 + q / 2] = p[g + q];
    std::memcpy(p + g, t, sizeof(t));
  }
}

/// Inverse of group16: back to element order, in place.
FUSEKIT_FORCEINLINE void ungroup16(float* p, std::int64_t n) noexcept {
  std::int64_t g = 0;
#if FUSEKIT_HAS_VECTOR_EXT && FUSEKIT_CONVERT_X86 && defined(__AVX2__)
  for (; g + 16 <= n; g += 16) {
    const __m256 e = _mm256_loadu_ps(p + g), o = _mm256_loadu_ps(p + g + 8);
    const __m256 lo = _mm256_unpacklo_ps(e, o), hi = _mm256_unpackhi_ps(e, o); // [0 1 2 3|8 9 10 11], [4..7|12..15]
    _mm256_storeu_ps(p + g, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_storeu_ps(p + g + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
  }
#endif
  for (; g + 16 <= n; g += 16) {
    float t[16];
    for (int q = 0; q < 16; ++q)
      t[q] = p[g + (q & 1) * 8 + q / 2];
    std::memcpy(p + g, t, sizeof(t));
  }
}

/// One pass over a float block for the online log-sum-exp: returns Σ_j e^{src[j] − m} against the
/// reference m (the running max of the previous blocks, finite) and the block maximum in `bm` (NaN
/// skipped); with Park, also writes dst[j] = e^{src[j] − m} (for bf16 in the grouped layout of
/// bf16_grouped). e^{x − m} is evaluated for x − m up to one_pass_max_jump (exp_nonpos is accurate up
/// to +88), so the block needs no separate max pass.
template <bool Park, class S>
FUSEKIT_FORCEINLINE float block_exp_max(const S* src, float* dst, std::int64_t n, float m, float& bm) noexcept {
  static_assert(direct_widen<S>);
  std::int64_t j = 0;
  float s = 0, mx = -std::numeric_limits<float>::infinity();
#if FUSEKIT_HAS_VECTOR_EXT
  {
    fvec a0{}, a1{}, m0 = fvec{} + mx, m1 = m0;
    for (const std::int64_t nv = n - n % (2 * fvec_lanes); j < nv; j += 2 * fvec_lanes) {
      fvec x0, x1;
      if constexpr (std::is_same_v<S, bf16> && bf16_grouped) {
        load_bf16_split(src + j, x0, x1); // dst gets the grouped layout
      } else {
        x0 = load_fvec(src + j);
        x1 = load_fvec(src + j + fvec_lanes);
      }
      m0 = x0 > m0 ? x0 : m0;
      m1 = x1 > m1 ? x1 : m1;
      fvec e[2] = {x0 - m, x1 - m};
      exp_nonpos_k(e);
      const fvec e0 = e[0], e1 = e[1];
      if constexpr (Park) {
        __builtin_memcpy(dst + j, &e0, sizeof(e0));
        __builtin_memcpy(dst + j + fvec_lanes, &e1, sizeof(e1));
      }
      a0 += e0;
      a1 += e1;
    }
    a0 += a1;
    m0 = m1 > m0 ? m1 : m0;
    for (int k = 0; k < fvec_lanes; ++k) {
      s += a0[k];
      mx = m0[k] > mx ? m0[k] : mx;
    }
  }
#endif
  for (; j < n; ++j) {
    const float x = static_cast<float>(src[j]);
    const float e = exp_nonpos(x - m);
    if constexpr (Park)
      dst[j] = e;
    s += e;
    mx = x > mx ? x : mx;
  }
  bm = mx;
  return s;
}

/// dst[j] = c · e^{src[j] − lse} (dst may equal src). `src` has the compute type, or (float compute)
/// any direct_widen storage type, widened in registers.
template <class C, class S>
FUSEKIT_FORCEINLINE void block_scale_exp(const S* src, C* dst, std::int64_t n, C lse, C c) noexcept {
  std::int64_t j = 0;
#if FUSEKIT_HAS_VECTOR_EXT
  if constexpr (std::is_same_v<C, float> && direct_widen<S>) {
    for (; j + fvec_lanes <= n; j += fvec_lanes) {
      const fvec x = c * exp_nonpos(load_fvec(src + j) - lse);
      __builtin_memcpy(dst + j, &x, sizeof(x));
    }
  }
#endif
  for (; j < n; ++j)
    dst[j] = c * exp_le0<C>(static_cast<C>(to_compute(src[j])) - lse);
}

/// Sorted (value desc, id asc) top-k accumulator; k small (FuseLLM uses 10).
template <class C> struct topk_state {
  C* vals = nullptr;
  std::int64_t* ids = nullptr;
  std::int64_t k = 0;
  std::int64_t filled = 0;
  FUSEKIT_FORCEINLINE void offer(C v, std::int64_t id) noexcept {
    if (filled == k && !(v > vals[k - 1]))
      return; // ties keep the earlier (lower) id
    if (v != v)
      return; // NaN never enters
    std::int64_t pos = filled < k ? filled++ : k - 1;
    while (pos > 0 && v > vals[pos - 1]) {
      vals[pos] = vals[pos - 1];
      ids[pos] = ids[pos - 1];
      --pos;
    }
    vals[pos] = v;
    ids[pos] = id;
  }
};

/// What one forward pass over a row produced.
template <class C> struct row_stats {
  C max = -std::numeric_limits<C>::infinity();
  C sumexp = 0; ///< Σ e^{z−max}
  C lse = 0;    ///< max + log(sumexp)
  C label_logit = 0;
  C entropy = 0; ///< −Σ p log p (when requested)
  C logit_sum = 0;
  std::int64_t argmax = -1; ///< first index of the maximum (when requested)
  C gathered = 0;           ///< Σ w_i z_{id_i} for a sparse gather (fusion loss)
};

/// Flags selecting the optional statistics of row_forward.
struct row_wants {
  bool entropy = false;
  bool logit_sum = false;
  bool argmax = false;
};

/// One streaming pass: online log-sum-exp (+ requested extras). `label` outside [0,V) is not gathered.
template <class C, bool Entropy, bool LogitSum, bool Argmax, class T>
row_stats<C> row_forward(const T* row, std::int64_t V, std::int64_t s, std::int64_t label,
                         topk_state<C>* topk) noexcept {
  alignas(64) C buf[row_block];
  constexpr C ninf = -std::numeric_limits<C>::infinity();
  C m = ninf, sum = 0, ent = 0, zsum = 0;
  std::int64_t am = -1;
  C zl = 0;
  for (std::int64_t b = 0; b < V; b += row_block) {
    const std::int64_t n = std::min(row_block, V - b);
    using TU = std::remove_cv_t<T>;
    if constexpr (!Entropy && !LogitSum && !Argmax && std::is_same_v<C, float> && !std::is_same_v<TU, float> &&
                  direct_widen<TU>) {
      if (m != ninf && s == 1 && topk == nullptr) { // 16-bit row read straight into registers
        C bm;
        const C sb = block_exp_max<false>(row + b, nullptr, n, m, bm);
        fold_block_sum(sum, m, sb, bm, [&](C mx) {
          load_block(row + b, 1, buf, n);
          return block_sum_exp(buf, n, mx);
        });
        if (label >= b && label < b + n)
          zl = static_cast<C>(to_compute(static_cast<TU>(row[label])));
        continue;
      }
    }
    const C* src = buf;
    if constexpr (std::is_same_v<std::remove_cv_t<T>, C>) {
      if (s == 1)
        src = row + b; // already in the compute type: work on the row itself (L1-resident per block)
      else
        load_block(row + b * s, s, buf, n);
    } else {
      load_block(row + b * s, s, buf, n);
    }
    if constexpr (!Entropy && std::is_same_v<C, float>) {
      if (m != ninf) { // one pass per block: exp against the running max, block max on the side
        C bm;
        const C sb = block_exp_max<false>(src, nullptr, n, m, bm);
        const bool moved = bm > m;
        fold_block_sum(sum, m, sb, bm, [&](C mx) { return block_sum_exp(src, n, mx); });
        if constexpr (Argmax) {
          if (moved)
            for (std::int64_t j = 0; j < n; ++j)
              if (src[j] == bm) {
                am = b + j;
                break;
              }
        }
        if constexpr (LogitSum)
          zsum += block_sum(src, n);
        if (label >= b && label < b + n)
          zl = src[label - b];
        if (topk != nullptr)
          for (std::int64_t j = 0; j < n; ++j)
            topk->offer(src[j], b + j);
        continue;
      }
    }
    const C bm = block_max(src, n);
    if (bm > m) {
      if (m != ninf) {
        const C d = m - bm;
        const C r = std::exp(d);
        if constexpr (Entropy)
          ent = r * (ent + d * sum); // Σ e^{z−m}(z−m) re-based to the new max
        sum *= r;
      }
      m = bm;
      if constexpr (Argmax) {
        for (std::int64_t j = 0; j < n; ++j)
          if (src[j] == bm) {
            am = b + j;
            break;
          }
      }
    }
    if (m != ninf) {
      sum += block_sum_exp(src, n, m);
      if constexpr (Entropy)
        ent += block_sum_exp_shifted(src, n, m);
    }
    if constexpr (LogitSum) {
      zsum += block_sum(src, n);
    }
    if (label >= b && label < b + n)
      zl = src[label - b];
    if (topk != nullptr)
      for (std::int64_t j = 0; j < n; ++j)
        topk->offer(src[j], b + j);
  }
  row_stats<C> r;
  r.max = m;
  r.sumexp = sum;
  r.lse = m + std::log(sum);
  r.label_logit = zl;
  if constexpr (Entropy)
    r.entropy = std::log(sum) - ent / sum; // H = lse − Σ p z, both taken relative to the max
  r.logit_sum = zsum;
  r.argmax = am;
  return r;
}

/// Dispatches the compile-time flags of row_forward.
template <class C, class T>
row_stats<C> row_forward_dispatch(const T* row, std::int64_t V, std::int64_t s, std::int64_t label, row_wants w,
                                  topk_state<C>* topk) noexcept {
  if (!w.entropy && !w.logit_sum && !w.argmax)
    return row_forward<C, false, false, false>(row, V, s, label, topk);
  if (w.entropy && w.logit_sum && w.argmax)
    return row_forward<C, true, true, true>(row, V, s, label, topk);
  if (w.entropy)
    return w.logit_sum ? row_forward<C, true, true, false>(row, V, s, label, topk)
                       : (w.argmax ? row_forward<C, true, false, true>(row, V, s, label, topk)
                                   : row_forward<C, true, false, false>(row, V, s, label, topk));
  return w.logit_sum ? (w.argmax ? row_forward<C, false, true, true>(row, V, s, label, topk)
                                 : row_forward<C, false, true, false>(row, V, s, label, topk))
                     : row_forward<C, false, false, true>(row, V, s, label, topk);
}

/// The identity position map (blocks in element order).
struct identity_index {
  constexpr std::int64_t operator()(std::int64_t j) const noexcept { return j; }
};

/// dst[at(j − b)] −= g_label at the label and −= sparse_scale·w_k at each sparse id (in order) that falls
/// in the block [b, b + n): the one-hot terms of every gradient writer below. `at` maps a position of the
/// block to its place in dst (grouped_index for a grouped parked block).
template <class C, class Idx, class W, class Map = identity_index>
FUSEKIT_FORCEINLINE void subtract_onehots(C* dst, std::int64_t b, std::int64_t n, std::int64_t label, C g_label,
                                          const Idx* sparse_ids, const W* sparse_w, std::int64_t nsparse,
                                          C sparse_scale, Map&& at = Map{}) noexcept {
  if (label >= b && label < b + n)
    dst[at(label - b)] -= g_label;
  for (std::int64_t k = 0; k < nsparse; ++k) {
    const std::int64_t id = static_cast<std::int64_t>(sparse_ids[k]);
    if (id >= b && id < b + n)
      dst[at(id - b)] -= sparse_scale * static_cast<C>(to_compute(sparse_w[k]));
  }
}

/// Writes grad = c·softmax(z) − g_label·onehot(label) − Σ_i w_i·onehot(id_i) over a row, with
/// softmax = e^{z − lse}. `label` outside [0,V) adds nothing; sparse entries (ids, weights, count)
/// optional. `in` and `out` may be the same row (in-place). `streaming` (only for an `out` that does
/// not alias `in`): contiguous overwrites use non-temporal stores.
template <class C, class T, class O, class Idx, class W>
void row_backward(const T* in, std::int64_t s_in, O* out, std::int64_t s_out, std::int64_t V, C lse, C c,
                  std::int64_t label, C g_label, const Idx* sparse_ids, const W* sparse_w, std::int64_t nsparse,
                  C sparse_scale, bool accumulate, bool streaming = false) noexcept {
  alignas(64) C buf[row_block];
  using OU = std::remove_cv_t<O>;
  using TU = std::remove_cv_t<T>;
  for (std::int64_t b = 0; b < V; b += row_block) {
    const std::int64_t n = std::min(row_block, V - b);
    // write straight into the output row when it already has the compute type (in place included)
    C* dst = buf;
    if constexpr (std::is_same_v<OU, C>)
      if (s_out == 1 && !accumulate && !streaming)
        dst = out + b;
    bool done = false;
    if constexpr (std::is_same_v<C, float> && !std::is_same_v<TU, float> && direct_widen<TU>) {
      if (s_in == 1) { // 16-bit row widened in registers
        block_scale_exp(in + b, dst, n, lse, c);
        done = true;
      }
    }
    if (!done) {
      const C* src = buf;
      if constexpr (std::is_same_v<TU, C>) {
        if (s_in == 1)
          src = in + b;
        else
          load_block(in + b * s_in, s_in, buf, n);
      } else {
        load_block(in + b * s_in, s_in, buf, n);
      }
      block_scale_exp(src, dst, n, lse, c);
    }
    subtract_onehots(dst, b, n, label, g_label, sparse_ids, sparse_w, nsparse, sparse_scale);
    if (dst == buf)
      store_block(out + b * s_out, s_out, buf, n, accumulate, streaming);
  }
  if (streaming)
    stream_fence();
}

/// Largest row handled by the fused loss-and-gradient kernel (block maxima live on the stack).
inline constexpr std::int64_t fused_max_blocks = 512; // 512 × 1024 = 524,288 columns

/// dst[j] = e^{src[j] − m} and returns Σ_j dst[j].
FUSEKIT_FORCEINLINE float block_store_exp(const float* src, float* dst, std::int64_t n, float m) noexcept {
  std::int64_t j = 0;
  float s = 0;
#if FUSEKIT_HAS_VECTOR_EXT
  fvec acc{};
  for (; j + fvec_lanes <= n; j += fvec_lanes) {
    fvec x;
    __builtin_memcpy(&x, src + j, sizeof(x));
    const fvec e = exp_nonpos(x - m);
    __builtin_memcpy(dst + j, &e, sizeof(e));
    acc += e;
  }
  for (int k = 0; k < fvec_lanes; ++k)
    s += acc[k];
#endif
  for (; j < n; ++j) {
    dst[j] = exp_nonpos(src[j] - m);
    s += dst[j];
  }
  return s;
}

/// dst[j] = T(f·src[j]) for a 16-bit T, rounded to nearest even with narrow_from_float's arithmetic
/// (types/convert.hpp: bf16_round_bits_avx2, vcvtps2ph). `f` must be
/// finite and `src` free of NaN (parked e^{z − m} values), so no NaN lane can arise and the NaN
/// handling of narrow_from_float is skipped; ±inf still rounds to ±inf.
template <class T>
FUSEKIT_FORCEINLINE void block_scale_narrow(const float* src, float f, T* dst, std::int64_t n) noexcept {
  static_assert(std::is_same_v<T, bf16> || std::is_same_v<T, fp16>);
  std::int64_t j = 0;
#if FUSEKIT_CONVERT_X86 && defined(__AVX2__)
  const __m256 vf = _mm256_set1_ps(f);
  if constexpr (std::is_same_v<T, bf16>) {
    for (const std::int64_t nv = n - n % 16; j < nv; j += 16) {
      const __m256i a = _mm256_castps_si256(_mm256_mul_ps(_mm256_loadu_ps(src + j), vf));
      const __m256i b = _mm256_castps_si256(_mm256_mul_ps(_mm256_loadu_ps(src + j + 8), vf));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + j),
                          pack_u32_to_u16_avx2(bf16_round_bits_avx2(a), bf16_round_bits_avx2(b)));
    }
  } else {
#if defined(__F16C__)
    for (const std::int64_t nv = n - n % 8; j < nv; j += 8)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + j),
                       _mm256_cvtps_ph(_mm256_mul_ps(_mm256_loadu_ps(src + j), vf),
                                       _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#endif
  }
#endif
  if (j < n) {
    alignas(64) float tmp[row_block];
    for (std::int64_t q = j; q < n; ++q)
      tmp[q - j] = src[q] * f;
    narrow_from_float(tmp, dst + j, n - j);
  }
}

/// block_scale_narrow to bf16 from a block parked in the grouped layout (bf16_grouped): dst (element
/// order) gets the same bits. Per 16 elements the even and odd vectors are rounded in the high halves of
/// their lanes and merged with one word blend — no pack, no lane permute.
FUSEKIT_FORCEINLINE void block_scale_narrow_grouped(const float* src, float f, bf16* dst, std::int64_t n) noexcept {
  std::int64_t j = 0;
#if FUSEKIT_HAS_VECTOR_EXT && FUSEKIT_CONVERT_X86 && defined(__AVX2__)
  const __m256 vf = _mm256_set1_ps(f);
  for (const std::int64_t nv = n - n % 16; j < nv; j += 16) {
    const __m256i e = bf16_round_high_avx2(_mm256_castps_si256(_mm256_mul_ps(_mm256_loadu_ps(src + j), vf)));
    const __m256i o = bf16_round_high_avx2(_mm256_castps_si256(_mm256_mul_ps(_mm256_loadu_ps(src + j + 8), vf)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + j), bf16x16_merge_high(e, o));
  }
#else
  static_assert(!bf16_grouped);
#endif
  if (j < n)
    block_scale_narrow(src + j, f, dst + j, n - j);
}

/// Loss-and-gradient for one row with one exp per element instead of two. Pass 1 streams the row
/// once (online log-sum-exp over blocks) and parks e^{z − m_b} in the float row `park` together with
/// each block's running max m_b; pass 2 (from cache) turns it into
/// c·softmax − g_label·onehot − Σ sparse_scale·w_i·onehot(id_i) by a per-block scale and writes it to
/// `out` (any element type and stride). `park` may be `out` itself when that is a contiguous float
/// row, which may in turn be the logits (in place). Returns the row's statistics (lse, label logit).
/// The caller must have gathered any logits it needs at other positions before (the row may be
/// overwritten). `streaming` (park ≠ out, out not aliasing in): pass 2 writes with non-temporal stores.
template <class T, class O, class Idx, class W>
row_stats<float> row_loss_grad_fused(const T* in, std::int64_t s_in, O* out, std::int64_t s_out, float* park,
                                     std::int64_t V, std::int64_t label, float c, float g_label, const Idx* sparse_ids,
                                     const W* sparse_w, std::int64_t nsparse, float sparse_scale,
                                     bool streaming = false) noexcept {
  alignas(64) float buf[row_block];
  float bmax[fused_max_blocks];
  constexpr float ninf = -std::numeric_limits<float>::infinity();
  float m = ninf, sum = 0, zl = 0;
  std::int64_t nb = 0;
  // a contiguous bf16 row is parked in the grouped layout (every block, whichever path parked it)
  constexpr bool grouped = std::is_same_v<std::remove_cv_t<T>, bf16> && bf16_grouped;
  const bool park_grouped = grouped && s_in == 1;
  for (std::int64_t b = 0; b < V; b += row_block, ++nb) {
    const std::int64_t n = std::min(row_block, V - b);
    using TU = std::remove_cv_t<T>;
    if constexpr (!std::is_same_v<TU, float> && direct_widen<TU>) {
      if (m != ninf && s_in == 1) { // 16-bit row read straight into registers, parked as float
        if (label >= b && label < b + n)
          zl = static_cast<float>(to_compute(static_cast<TU>(in[label])));
        float bm;
        const float sb = block_exp_max<true>(in + b, park + b, n, m, bm);
        bmax[nb] = m;
        if (fold_block_sum(sum, m, sb, bm, [&](float mx) {
              load_block(in + b, 1, buf, n);
              const float r = block_store_exp(buf, park + b, n, mx);
              if constexpr (grouped)
                group16(park + b, n);
              return r;
            }))
          bmax[nb] = bm;
        continue;
      }
    }
    const float* src = buf;
    if constexpr (std::is_same_v<std::remove_cv_t<T>, float>) {
      if (s_in == 1)
        src = in + b;
      else
        load_block(in + b * s_in, s_in, buf, n);
    } else {
      load_block(in + b * s_in, s_in, buf, n);
    }
    if (label >= b && label < b + n)
      zl = src[label - b];
    if (m != ninf) { // one pass: park e^{z − m} against the running max, block max on the side
      float bm;
      const float sb = block_exp_max<true>(src, park + b, n, m, bm);
      bmax[nb] = m;
      if (fold_block_sum(sum, m, sb, bm, [&](float mx) { return block_store_exp(src, park + b, n, mx); }))
        bmax[nb] = bm; // rare: the block was re-parked against its own max
      continue;
    }
    const float bm = block_max(src, n); // until the first finite max: two passes
    if (bm > m)
      m = bm;
    bmax[nb] = m;
    if (m != ninf) {
      sum += block_store_exp(src, park + b, n, m);
      if constexpr (grouped)
        if (s_in == 1)
          group16(park + b, n);
    } else {
      for (std::int64_t j = 0; j < n; ++j)
        park[b + j] = 0.0f;
    }
  }
  row_stats<float> r;
  r.max = m;
  r.sumexp = sum;
  r.lse = m + std::log(sum);
  r.label_logit = zl;
  if (!std::isfinite(r.lse))
    return r; // the caller reports the row; `out` holds partial values
  nb = 0;
  using OU = std::remove_cv_t<O>;
  for (std::int64_t b = 0; b < V; b += row_block, ++nb) {
    const std::int64_t n = std::min(row_block, V - b);
    const float f = bmax[nb] == ninf ? 0.0f : c * std::exp(bmax[nb] - r.lse);
    float* o = park + b;
    const bool separate = static_cast<void*>(o) != static_cast<void*>(out + b * s_out);
    bool in_order = !park_grouped; // the parked block is in element order
    if constexpr (std::is_same_v<OU, bf16> || std::is_same_v<OU, fp16>) {
      // 16-bit contiguous output: scale and narrow in one sweep from the parked row (no float
      // write-back, no NaN lanes to handle), then redo the few label / sparse positions of the block
      if (separate && s_out == 1 && std::isfinite(f)) {
        alignas(64) OU tmp[row_block];
        OU* w = streaming ? tmp : out + b; // streaming: narrowed in cache, then non-temporal stores
        if constexpr (grouped && std::is_same_v<OU, bf16>) {
          if (!in_order)
            block_scale_narrow_grouped(o, f, w, n);
          else
            block_scale_narrow(o, f, w, n);
        } else {
          if (!in_order) {
            ungroup16(o, n);
            in_order = true;
          }
          block_scale_narrow(o, f, w, n);
        }
        const auto at = [&](std::int64_t j) { return in_order ? j : grouped_index(j, n); };
        // the positions of the label and the sparse entries, each once (ids may repeat)
        auto each_position = [&](auto&& fn) {
          if (label >= b && label < b + n)
            fn(label - b);
          for (std::int64_t k = 0; k < nsparse; ++k) {
            const std::int64_t id = static_cast<std::int64_t>(sparse_ids[k]);
            bool seen = id < b || id >= b + n || id == label;
            for (std::int64_t q = 0; q < k && !seen; ++q)
              seen = static_cast<std::int64_t>(sparse_ids[q]) == id;
            if (!seen)
              fn(id - b);
          }
        };
        each_position([&](std::int64_t j) { o[at(j)] *= f; }); // then the same updates as the general path
        subtract_onehots(o, b, n, label, g_label, sparse_ids, sparse_w, nsparse, sparse_scale, at);
        each_position([&](std::int64_t j) { w[j] = from_compute<OU>(o[at(j)]); });
        if (streaming)
          stream_copy(out + b, tmp, static_cast<std::size_t>(n) * sizeof(OU));
        continue;
      }
    }
    if (!in_order)
      ungroup16(o, n);
    FUSEKIT_LOSS_SIMD
    for (std::int64_t j = 0; j < n; ++j)
      o[j] *= f;
    subtract_onehots(o, b, n, label, g_label, sparse_ids, sparse_w, nsparse, sparse_scale);
    if (separate)
      store_block(out + b * s_out, s_out, o, n, false, streaming);
  }
  if (streaming)
    stream_fence();
  return r;
}

/// log Σ_j e^{z_j·inv_t} of a row (online over blocks), for a student temperature τ = 1/inv_t.
template <class C, class T> C row_lse_scaled(const T* row, std::int64_t V, std::int64_t s, C inv_t) noexcept {
  alignas(64) C buf[row_block];
  constexpr C ninf = -std::numeric_limits<C>::infinity();
  C m = ninf, sum = 0;
  for (std::int64_t b = 0; b < V; b += row_block) {
    const std::int64_t n = std::min(row_block, V - b);
    load_block(row + b * s, s, buf, n);
    for (std::int64_t j = 0; j < n; ++j)
      buf[j] *= inv_t;
    const C bm = block_max(buf, n);
    if (bm > m) {
      if (m != ninf)
        sum *= std::exp(m - bm);
      m = bm;
    }
    if (m != ninf)
      sum += block_sum_exp(buf, n, m);
  }
  return m + std::log(sum);
}

/// grad = c1·softmax(z) + c2·softmax(z·inv_t) − g_label·onehot(label) − Σ sparse_scale·w_i·onehot(id_i),
/// the two-temperature form used when the distillation term has a student temperature ≠ 1.
template <class C, class T, class O, class Idx, class W>
void row_backward_two(const T* in, std::int64_t s_in, O* out, std::int64_t s_out, std::int64_t V, C lse1, C c1, C inv_t,
                      C lse2, C c2, std::int64_t label, C g_label, const Idx* sparse_ids, const W* sparse_w,
                      std::int64_t nsparse, C sparse_scale, bool accumulate) noexcept {
  alignas(64) C buf[row_block];
  alignas(64) C tmp[row_block];
  for (std::int64_t b = 0; b < V; b += row_block) {
    const std::int64_t n = std::min(row_block, V - b);
    load_block(in + b * s_in, s_in, buf, n);
    for (std::int64_t j = 0; j < n; ++j)
      tmp[j] = buf[j] * inv_t;
    block_scale_exp(tmp, tmp, n, lse2, c2);
    block_scale_exp(buf, buf, n, lse1, c1);
    for (std::int64_t j = 0; j < n; ++j)
      buf[j] += tmp[j];
    subtract_onehots(buf, b, n, label, g_label, sparse_ids, sparse_w, nsparse, sparse_scale);
    store_block(out + b * s_out, s_out, buf, n, accumulate);
  }
}

/// Writes zeros over a row (or leaves it when accumulating).
template <class O> void row_zero(O* out, std::int64_t s_out, std::int64_t V, bool accumulate) noexcept {
  if (accumulate)
    return;
  using U = std::remove_cv_t<O>;
  for (std::int64_t j = 0; j < V; ++j)
    out[j * s_out] = from_compute<U>(0.0f);
}

} // namespace fusekit::detail
