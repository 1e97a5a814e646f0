/// @file
/// @brief Internal building blocks of the multi-pass merge methods: a blocked loop with per-worker scratch,
/// loaders for the input set, deterministic per-block reductions, and batched counter-based uniforms.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <limits>
#include <cmath>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include <fusekit/core/error.hpp>
#include <fusekit/exec/primitives.hpp>
#include <fusekit/exec/select.hpp>
#include <fusekit/merge/detail/block_io.hpp>
#include <fusekit/merge/merge.hpp>
#include <fusekit/rng/philox.hpp>

namespace fusekit::detail {

/// Block length for loops that keep one block of every model in scratch: about 32K floats in total,
/// a multiple of 64 (so bit masks of a block are whole 64-bit words), at most merge_block.
[[nodiscard]] inline std::int64_t multi_block_size(std::size_t nmodels) noexcept {
  std::int64_t b = 32768 / static_cast<std::int64_t>(std::max<std::size_t>(nmodels, 1));
  b = b / 64 * 64;
  return std::clamp<std::int64_t>(b, 64, merge_block);
}

/// Calls `f(block_index, begin, end, scratch)` for the blocks of `blk` elements covering [0, n). Blocks are
/// split into contiguous ranges, one per worker of the policy; each worker owns `scratch_floats` floats of
/// scratch, allocated once per call (nothing is allocated inside the loop). Results must not depend on
/// which worker ran a block (every caller writes per-block results), so they are thread-count independent.
template <class P, class F>
void for_each_block_scratch(const P& policy, std::int64_t n, std::int64_t blk, std::size_t scratch_floats, F&& f) {
  if (n <= 0)
    return;
  const std::int64_t nblocks = (n + blk - 1) / blk;
  const std::int64_t workers = std::clamp<std::int64_t>(policy.concurrency(), 1, nblocks);
  const std::size_t per_worker = std::max<std::size_t>(scratch_floats, 1);
  std::unique_ptr<float[]> scratch(new float[static_cast<std::size_t>(workers) * per_worker]);
  const std::int64_t per = (nblocks + workers - 1) / workers;
  exec::for_each_n(policy, workers, [&](std::int64_t w) {
    float* s = scratch.get() + static_cast<std::size_t>(w) * per_worker;
    const std::int64_t last = std::min(nblocks, (w + 1) * per);
    for (std::int64_t bi = w * per; bi < last; ++bi)
      f(bi, bi * blk, std::min(n, (bi + 1) * blk), s);
  });
}

/// Number of blocks of `blk` elements covering n.
[[nodiscard]] constexpr std::int64_t block_count(std::int64_t n, std::int64_t blk) noexcept {
  return n > 0 ? (n + blk - 1) / blk : 0;
}

/// Sums per-block partial results: `partial` holds `nvals` doubles per block, blocks in order; returns the
/// `nvals` totals, each added block by block in index order (so independent of the thread count).
[[nodiscard]] inline std::vector<double> sum_blocks(const std::vector<double>& partial, std::size_t nvals) {
  std::vector<double> total(nvals, 0.0);
  if (nvals == 0)
    return total;
  const std::size_t nblocks = partial.size() / nvals;
  for (std::size_t b = 0; b < nblocks; ++b)
    for (std::size_t v = 0; v < nvals; ++v)
      total[v] += partial[b * nvals + v];
  return total;
}

/// The input views with their contiguity decided once.
template <class In> struct input_set {
  std::span<const merge_input<In>> in;
  std::vector<char> contiguous;

  explicit input_set(std::span<const merge_input<In>> inputs) : in(inputs), contiguous(inputs.size()) {
    for (std::size_t i = 0; i < inputs.size(); ++i)
      contiguous[i] = inputs[i].tensor.is_contiguous() ? 1 : 0;
  }
  [[nodiscard]] std::size_t size() const noexcept { return in.size(); }
  /// Whether every input is contiguous.
  [[nodiscard]] bool all_contiguous() const noexcept {
    return std::all_of(contiguous.begin(), contiguous.end(), [](char c) { return c != 0; });
  }
  /// Loads elements [b, b+len) of model i as floats.
  void load(std::size_t i, std::int64_t b, std::int64_t len, float* dst) const noexcept {
    load_block(in[i].tensor, contiguous[i] != 0, b, len, dst);
  }
  /// Prefetch hint for elements [b, b+len) of model i (see prefetch_block).
  void prefetch(std::size_t i, std::int64_t b, std::int64_t len) const noexcept {
    prefetch_block(in[i].tensor, contiguous[i] != 0, b, len);
  }
  /// Element e (row-major linear index) of model i as a float (random access; slow path only).
  [[nodiscard]] float at(std::size_t i, std::int64_t e) const noexcept {
    return static_cast<float>(in[i].tensor.at_linear(e));
  }
};

/// A single view with its contiguity decided once (base or output). Stores to large outputs bypass the cache
/// (non-temporal), as in the linear/task_arithmetic kernel.
template <class V> struct view_io {
  V v;
  bool contiguous;
  bool streaming;
  explicit view_io(const V& view)
      : v(view), contiguous(view.is_contiguous()),
        streaming(view.size() * static_cast<std::int64_t>(sizeof(typename V::element_type)) >= streaming_store_min_bytes) {}
  void load(std::int64_t b, std::int64_t len, float* dst) const noexcept { load_block(v, contiguous, b, len, dst); }
  void prefetch(std::int64_t b, std::int64_t len) const noexcept { prefetch_block(v, contiguous, b, len); }
  void store(std::int64_t b, std::int64_t len, const float* src) const noexcept {
    store_block(v, contiguous, b, len, src, streaming);
  }
  [[nodiscard]] float at(std::int64_t e) const noexcept { return static_cast<float>(v.at_linear(e)); }
};

/// Copies `src` into `dst` element by element (row-major linear order), converting the element type.
template <class P, class Dst, class Src> void copy_tensor(const P& policy, const Dst& dst, const Src& src) {
  const view_io<Dst> o(dst);
  const view_io<Src> s(src);
  exec::for_each_block(policy, dst.size(), merge_block, [&](std::int64_t b, std::int64_t e) {
    alignas(64) float buf[merge_block];
    s.load(b, e - b, buf);
    o.store(b, e - b, buf);
  });
}

/// splitmix64 finalizer: a bijective 64-bit mixer.
[[nodiscard]] constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/// Random stream of model `i` for the tensor named in ctx: FNV-1a of the name, mixed with the model index.
/// Every (seed, tensor name, model index, element index) gets its own Philox draw.
[[nodiscard]] constexpr std::uint64_t model_stream(std::string_view tensor_name, std::size_t model) noexcept {
  return rng::stream_id(tensor_name) ^ mix64(static_cast<std::uint64_t>(model) + 1);
}

#if defined(__AVX2__)
/// The 10 Philox4x32-10 round keys of `seed`, each broadcast to the four 64-bit lanes: computed once per
/// fill call instead of 20 scalar-to-vector broadcasts per philox_avx2 call.
struct philox_round_keys {
  __m256i k0[10], k1[10];
  explicit philox_round_keys(std::uint64_t seed) noexcept {
    std::uint32_t a = static_cast<std::uint32_t>(seed), b = static_cast<std::uint32_t>(seed >> 32);
    for (int r = 0; r < 10; ++r) {
      k0[r] = _mm256_set1_epi64x(a);
      k1[r] = _mm256_set1_epi64x(b);
      a += rng::philox_w0;
      b += rng::philox_w1;
    }
  }
};

/// The ten Philox4x32 rounds on 4·S counter blocks held one per 64-bit lane (words in the low halves of
/// x0..x3; vpmuludq reads only the low halves, so the 32x32->64 products need no shuffles). After it, the
/// low half of lane l of x_w[s] is word w of that lane's block; the high halves are garbage.
template <int S>
FUSEKIT_FORCEINLINE void philox_rounds_avx2(const philox_round_keys& keys, __m256i* x0, __m256i* x1, __m256i* x2,
                                            __m256i* x3) noexcept {
  const __m256i m0 = _mm256_set1_epi64x(rng::philox_m0), m1 = _mm256_set1_epi64x(rng::philox_m1);
  for (int r = 0; r < 10; ++r) {
    const __m256i kk0 = keys.k0[r], kk1 = keys.k1[r];
    for (int s = 0; s < S; ++s) {
      const __m256i p0 = _mm256_mul_epu32(x0[s], m0), p1 = _mm256_mul_epu32(x2[s], m1);
      x0[s] = _mm256_xor_si256(_mm256_srli_epi64(p1, 32), _mm256_xor_si256(x1[s], kk0));
      x2[s] = _mm256_xor_si256(_mm256_srli_epi64(p0, 32), _mm256_xor_si256(x3[s], kk1));
      x1[s] = p1;
      x3[s] = p0;
    }
  }
}

/// Philox4x32-10 of the 4·S counter blocks blk0 .. blk0+4S−1 (round keys from `seed`, high counter words
/// `stream`), as the 16·S words in element order (element 4q + w = word w of block q) in out[0..2S).
/// S = 4 (64 words) keeps 16 state registers busy: four independent chains of dependent multiplies, which
/// is what the core needs to overlap their latency (S = 2 runs 20% slower per word, S = 8 spills).
/// Bit-identical to rng::random_block.
template <int S>
FUSEKIT_FORCEINLINE void philox_avx2(const philox_round_keys& keys, std::uint64_t stream, std::uint64_t blk0,
                                     __m256i* out) noexcept {
  const __m256i c0 = _mm256_add_epi64(_mm256_set1_epi64x(static_cast<long long>(blk0)), _mm256_setr_epi64x(0, 1, 2, 3));
  const __m256i s2 = _mm256_set1_epi64x(static_cast<std::uint32_t>(stream));
  const __m256i s3 = _mm256_set1_epi64x(static_cast<std::uint32_t>(stream >> 32));
  __m256i x0[S], x1[S], x2[S], x3[S];
  for (int s = 0; s < S; ++s) {
    const __m256i c = _mm256_add_epi64(c0, _mm256_set1_epi64x(4 * s));
    x0[s] = c;
    x1[s] = _mm256_srli_epi64(c, 32);
    x2[s] = s2;
    x3[s] = s3;
  }
  philox_rounds_avx2<S>(keys, x0, x1, x2, x3);
  // lanes [w0 w1 w0 w1 | ...] per block pair, then [w0 w1 w2 w3] per block, then blocks in order
  for (int s = 0; s < S; ++s) {
    const __m256i x01 = _mm256_blend_epi32(x0[s], _mm256_slli_epi64(x1[s], 32), 0xAA);
    const __m256i x23 = _mm256_blend_epi32(x2[s], _mm256_slli_epi64(x3[s], 32), 0xAA);
    const __m256i lo = _mm256_unpacklo_epi64(x01, x23), hi = _mm256_unpackhi_epi64(x01, x23); // blocks 0,2 | 1,3
    out[2 * s] = _mm256_permute2x128_si256(lo, hi, 0x20);
    out[2 * s + 1] = _mm256_permute2x128_si256(lo, hi, 0x31);
  }
}

/// Bit l set where (rng::random_u32(seed, stream, idx[l]) >> 16) < tl, for the 4·S element indices
/// idx[0..4S), one counter block per lane (the refinement draws of keep_bits_avx2, which hit scattered
/// elements). Each lane's word is selected among the four in registers (two blends on the index's low bits)
/// and compared there: storing the state and reading single words back stalled on store forwarding.
template <int S>
FUSEKIT_FORCEINLINE std::uint32_t refine_keep_avx2(const philox_round_keys& keys, std::uint64_t stream,
                                                   const std::uint64_t* idx, std::uint32_t tl) noexcept {
  __m256i x0[S], x1[S], x2[S], x3[S], sel[S];
  for (int s = 0; s < S; ++s) {
    sel[s] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + 4 * s));
    x0[s] = _mm256_srli_epi64(sel[s], 2); // the counter block
    x1[s] = _mm256_srli_epi64(x0[s], 32);
    x2[s] = _mm256_set1_epi64x(static_cast<std::uint32_t>(stream));
    x3[s] = _mm256_set1_epi64x(static_cast<std::uint32_t>(stream >> 32));
  }
  philox_rounds_avx2<S>(keys, x0, x1, x2, x3);
  const __m256i lim = _mm256_set1_epi64x(tl), low16 = _mm256_set1_epi64x(0xFFFF);
  std::uint32_t bits = 0;
  for (int s = 0; s < S; ++s) {
    const __m256d odd = _mm256_castsi256_pd(_mm256_slli_epi64(sel[s], 63)), high = _mm256_castsi256_pd(_mm256_slli_epi64(sel[s], 62));
    const __m256d w01 = _mm256_blendv_pd(_mm256_castsi256_pd(x0[s]), _mm256_castsi256_pd(x1[s]), odd);
    const __m256d w23 = _mm256_blendv_pd(_mm256_castsi256_pd(x2[s]), _mm256_castsi256_pd(x3[s]), odd);
    const __m256i w = _mm256_castpd_si256(_mm256_blendv_pd(w01, w23, high));
    const __m256i r = _mm256_and_si256(_mm256_srli_epi64(w, 16), low16); // bits 16..31 of the word
    const __m256i lt = _mm256_cmpgt_epi64(lim, r);
    bits |= static_cast<std::uint32_t>(_mm256_movemask_pd(_mm256_castsi256_pd(lt))) << (4 * s);
  }
  return bits;
}

/// The generator over elements [0, len) of (seed, stream) from element `first` (a multiple of 4), 64 words
/// per step, then one step of 32: put(j, w, nv) receives the words of elements [j, j + 8·nv) as nv vectors.
/// Returns the first element not covered (fewer than 32 remain), for the caller's scalar tail.
template <class Put>
FUSEKIT_FORCEINLINE std::int64_t philox_fill_avx2(std::uint64_t seed, std::uint64_t stream, std::uint64_t first,
                                                  std::int64_t len, Put&& put) noexcept {
  std::int64_t j = 0;
  if (len < 32)
    return 0;
  const philox_round_keys keys(seed);
  for (; j + 64 <= len; j += 64) {
    __m256i w[8];
    philox_avx2<4>(keys, stream, (first + static_cast<std::uint64_t>(j)) >> 2, w);
    put(j, w, 8);
  }
  if (j + 32 <= len) {
    __m256i w[4];
    philox_avx2<2>(keys, stream, (first + static_cast<std::uint64_t>(j)) >> 2, w);
    put(j, w, 4);
    j += 32;
  }
  return j;
}
#endif

/// Fills `u[0..len)` with rng::uniform01(seed, stream, first + j). `first` must be a multiple of 4.
/// With AVX2, 16 counter blocks at a time in registers (philox_avx2); otherwise the Philox rounds run over
/// 64 counter blocks at a time in structure-of-arrays form so that the compiler can vectorize them; the
/// values are identical to rng::uniform01.
inline void fill_uniform(std::uint64_t seed, std::uint64_t stream, std::uint64_t first, std::int64_t len,
                         float* u) noexcept {
  constexpr int G = 64;
  constexpr std::uint32_t M0 = rng::philox_m0, M1 = rng::philox_m1, W0 = rng::philox_w0, W1 = rng::philox_w1;
  const std::uint32_t s0 = static_cast<std::uint32_t>(stream), s1 = static_cast<std::uint32_t>(stream >> 32);
  std::int64_t j = 0;
#if defined(__AVX2__)
  const __m256 scale = _mm256_set1_ps(1.0f / 16777216.0f);
  j = philox_fill_avx2(seed, stream, first, len, [&](std::int64_t at, const __m256i* w, int nv) {
    for (int q = 0; q < nv; ++q)
      _mm256_storeu_ps(u + at + 8 * q, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(w[q], 8)), scale));
  });
#endif
  while (j < len) {
    const std::uint64_t blk0 = (first + static_cast<std::uint64_t>(j)) >> 2;
    const int nb = static_cast<int>(std::min<std::int64_t>(G, (len - j + 3) / 4));
    alignas(64) std::uint32_t c0[G], c1[G], c2[G], c3[G];
    for (int q = 0; q < G; ++q) {
      const std::uint64_t c = blk0 + static_cast<std::uint64_t>(q);
      c0[q] = static_cast<std::uint32_t>(c);
      c1[q] = static_cast<std::uint32_t>(c >> 32);
      c2[q] = s0;
      c3[q] = s1;
    }
    std::uint32_t k0 = static_cast<std::uint32_t>(seed), k1 = static_cast<std::uint32_t>(seed >> 32);
    for (int r = 0; r < 10; ++r) {
      FUSEKIT_PRAGMA_SIMD
      for (int q = 0; q < G; ++q) {
        const std::uint64_t p0 = static_cast<std::uint64_t>(M0) * c0[q];
        const std::uint64_t p1 = static_cast<std::uint64_t>(M1) * c2[q];
        const std::uint32_t n0 = static_cast<std::uint32_t>(p1 >> 32) ^ c1[q] ^ k0;
        const std::uint32_t n2 = static_cast<std::uint32_t>(p0 >> 32) ^ c3[q] ^ k1;
        c1[q] = static_cast<std::uint32_t>(p1);
        c3[q] = static_cast<std::uint32_t>(p0);
        c0[q] = n0;
        c2[q] = n2;
      }
      k0 += W0;
      k1 += W1;
    }
    const std::int64_t take = std::min<std::int64_t>(len - j, 4 * static_cast<std::int64_t>(nb));
    std::int64_t t0 = 0;
#if defined(__AVX2__)
    // interleave the four words of 8 counter blocks (a 4x8 transpose) into 32 consecutive uniforms
    const __m256 scale = _mm256_set1_ps(1.0f / 16777216.0f);
    auto to_unit = [&](const std::uint32_t* c, int q) {
      return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + q)), 8)), scale);
    };
    for (; t0 + 32 <= take; t0 += 32) {
      const int q = static_cast<int>(t0 >> 2);
      const __m256 a = to_unit(c0, q), b = to_unit(c1, q), c = to_unit(c2, q), d = to_unit(c3, q);
      const __m256 t0v = _mm256_unpacklo_ps(a, b), t1v = _mm256_unpackhi_ps(a, b);
      const __m256 t2v = _mm256_unpacklo_ps(c, d), t3v = _mm256_unpackhi_ps(c, d);
      const __m256 u0 = _mm256_shuffle_ps(t0v, t2v, 0x44), u1 = _mm256_shuffle_ps(t0v, t2v, 0xEE);
      const __m256 u2 = _mm256_shuffle_ps(t1v, t3v, 0x44), u3 = _mm256_shuffle_ps(t1v, t3v, 0xEE);
      float* o = u + j + t0;
      _mm256_storeu_ps(o, _mm256_permute2f128_ps(u0, u1, 0x20));
      _mm256_storeu_ps(o + 8, _mm256_permute2f128_ps(u2, u3, 0x20));
      _mm256_storeu_ps(o + 16, _mm256_permute2f128_ps(u0, u1, 0x31));
      _mm256_storeu_ps(o + 24, _mm256_permute2f128_ps(u2, u3, 0x31));
    }
#endif
    for (std::int64_t t = t0; t < take; ++t) {
      const int q = static_cast<int>(t >> 2);
      const std::uint32_t w = (t & 3) == 0 ? c0[q] : (t & 3) == 1 ? c1[q] : (t & 3) == 2 ? c2[q] : c3[q];
      u[j + t] = rng::u32_to_unit_float(w);
    }
    j += take;
  }
}

/// m[j] = rng::random_u32(seed, stream, first + j) >> 8 for j in [0, len): the 24 bits behind
/// rng::uniform01 (u = m·2⁻²⁴, so u < p exactly when m < ceil(p·2²⁴)). `first` must be a multiple of 4.
inline void fill_u24(std::uint64_t seed, std::uint64_t stream, std::uint64_t first, std::int64_t len,
                     std::uint32_t* m) noexcept {
  std::int64_t j = 0;
#if defined(__AVX2__)
  j = philox_fill_avx2(seed, stream, first, len, [&](std::int64_t at, const __m256i* w, int nv) {
    for (int q = 0; q < nv; ++q)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(m + at + 8 * q), _mm256_srli_epi32(w[q], 8));
  });
#endif
  for (; j < len; j += 4) {
    const auto w = rng::random_block(seed, stream, (first + static_cast<std::uint64_t>(j)) >> 2);
    for (std::int64_t q = 0; q < 4 && j + q < len; ++q)
      m[j + q] = w[static_cast<std::size_t>(q)] >> 8;
  }
}

using rng::u24_threshold;

#if defined(__AVX2__)
/// fill_keep_bits's vector path for 0 < T < 2²⁴ and `first` a multiple of 16: 16 Philox blocks give the
/// bytes of 256 elements, compared 32 at a time (flipped-sign byte compares, movemask straight into the
/// mask words); the elements whose byte equals T >> 16 are refined 16 lanes at a time, batched across chunks.
/// Calls on_word(q, w, u) once word q holds its provisional bits w (u: the elements still to be refined,
/// their bits 0 in w), and on_refined(j, kept) for each refined element j (its bit set afterwards when
/// kept), so a caller can fuse per-element work on the kept set into the draw. len < 2³² (one block).
template <class OnWord, class OnRefined>
FUSEKIT_FORCEINLINE void keep_bits_avx2(std::uint64_t seed, std::uint64_t stream, std::uint64_t first, std::int64_t len,
                                        std::uint32_t T, std::uint64_t* words, OnWord&& on_word,
                                        OnRefined&& on_refined) noexcept {
  const std::uint32_t tb = T >> 16, tl = T & 0xFFFFu;
  const philox_round_keys keys(seed);
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  const __m256i tbf = _mm256_set1_epi8(static_cast<char>(tb ^ 0x80u)), tbr = _mm256_set1_epi8(static_cast<char>(tb));
  constexpr int R = 16; // refinements per batch: four independent Philox chains, as for the main draws
  std::uint32_t pend[256 + R]; // elements (offsets from first) whose byte equals tb
  int np = 0;
  auto refine = [&](const std::uint32_t* at, int cnt) { // the elements at[0, cnt), cnt <= R
    std::uint64_t idx[R];
    for (int l = 0; l < R; ++l)
      idx[l] = rng::refine_index + first + at[l < cnt ? l : 0];
    const std::uint32_t kb = refine_keep_avx2<R / 4>(keys, stream, idx, tl);
    for (int l = 0; l < cnt; ++l) { // branch-free: about half of them keep when T's low bits are mid-range
      const bool keep = ((kb >> l) & 1u) != 0;
      words[at[l] / 64] |= static_cast<std::uint64_t>(keep) << (at[l] % 64);
      on_refined(static_cast<std::int64_t>(at[l]), keep);
    }
  };
  constexpr int S = 4; // 4·S Philox blocks = the bytes of 64·S elements = S mask words per step
  for (std::int64_t j = 0; j < len; j += 64 * S) {
    __m256i w[2 * S];
    philox_avx2<S>(keys, stream, (first + static_cast<std::uint64_t>(j)) >> 4, w);
    for (int v = 0; v < S && j + 64 * v < len; ++v) {
      const std::int64_t q = j / 64 + v, m = len - q * 64;
      const std::uint64_t valid = m >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << m) - 1;
      auto bits = [&](__m256i x, __m256i t, bool lt) {
        const __m256i c = lt ? _mm256_cmpgt_epi8(t, _mm256_xor_si256(x, flip)) : _mm256_cmpeq_epi8(x, t);
        return static_cast<std::uint64_t>(static_cast<std::uint32_t>(_mm256_movemask_epi8(c)));
      };
      const std::uint64_t keep = (bits(w[2 * v], tbf, true) | (bits(w[2 * v + 1], tbf, true) << 32)) & valid;
      std::uint64_t eq = (bits(w[2 * v], tbr, false) | (bits(w[2 * v + 1], tbr, false) << 32)) & valid;
      words[q] = keep;
      on_word(q, keep, eq);
      // most words hold no such element and most others one (a loop on eq != 0 mispredicted in ~1 word of 5):
      // append the lowest unconditionally, count it only if it exists, loop for the rare rest
      pend[np] = static_cast<std::uint32_t>(q * 64 + (std::countr_zero(eq) & 63));
      np += eq != 0 ? 1 : 0;
      for (eq &= eq - 1; eq != 0; eq &= eq - 1)
        pend[np++] = static_cast<std::uint32_t>(q * 64 + std::countr_zero(eq));
    }
    int done = 0;
    for (; np - done >= R; done += R)
      refine(pend + done, R);
    std::copy(pend + done, pend + np, pend); // fewer than R wait for the next chunk
    np -= done;
  }
  if (np > 0)
    refine(pend, np);
}
#endif

/// Bernoulli keep bits: bit j of words[j / 64] = rng::bernoulli_u24(seed, stream, first + j, T) with
/// T = u24_threshold(p), for j in [0, len); bits past len zero (P(keep) = T·2⁻²⁴, "u < p" on the 2⁻²⁴ grid).
/// The draws read one random byte per element and refine the 1/256 whose byte equals T >> 16 with a second
/// word (rng::bernoulli_u24): with AVX2 and `first` a multiple of 16, keep_bits_avx2; otherwise one Philox
/// block per 16 elements, in scalar code.
inline void fill_keep_bits(std::uint64_t seed, std::uint64_t stream, std::uint64_t first, std::int64_t len, float p,
                           std::uint64_t* words) noexcept {
  const std::int64_t nw = (len + 63) / 64;
  const std::uint32_t T = u24_threshold(p);
  if (T == 0 || T >= (1u << 24)) { // nothing drawn: none or all kept
    for (std::int64_t q = 0; q < nw; ++q) {
      const std::int64_t m = len - q * 64;
      words[q] = T == 0 ? 0 : m >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << m) - 1;
    }
    return;
  }
#if defined(__AVX2__)
  if ((first & 15u) == 0) {
    keep_bits_avx2(seed, stream, first, len, T, words, [](std::int64_t, std::uint64_t, std::uint64_t) {},
                   [](std::int64_t, bool) {});
    return;
  }
#endif
  const std::uint32_t tb = T >> 16, tl = T & 0xFFFFu;
  for (std::int64_t q = 0; q < nw; ++q) {
    std::uint64_t word = 0;
    std::array<std::uint32_t, 4> blk{};
    for (std::int64_t t = 0; t < std::min<std::int64_t>(64, len - q * 64); ++t) {
      const std::uint64_t e = first + static_cast<std::uint64_t>(q * 64 + t);
      if (t == 0 || (e & 15u) == 0)
        blk = rng::random_block(seed, stream, e >> 4);
      const std::uint32_t b = (blk[(e >> 2) & 3u] >> (8u * static_cast<std::uint32_t>(e & 3u))) & 0xFFu;
      const bool keep = b != tb ? b < tb : (rng::random_u32(seed, stream, rng::refine_index + e) >> 16) < tl;
      word |= static_cast<std::uint64_t>(keep) << t;
    }
    words[q] = word;
  }
}

/// Σ_j f(j) for j in [0, len) with 16 independent fp32 accumulators (so the loop vectorizes without
/// -ffast-math), combined in a fixed order: deterministic, and far more accurate than one serial sum.
template <class F> [[nodiscard]] inline double lane_sum(std::int64_t len, F&& f) noexcept {
  constexpr int L = 16;
  float acc[L] = {};
  std::int64_t j = 0;
  for (; j + L <= len; j += L)
    for (int k = 0; k < L; ++k)
      acc[k] += f(j + k);
  double tail = 0.0;
  for (; j < len; ++j)
    tail += static_cast<double>(f(j));
  double s = 0.0;
  for (int k = 0; k < L; ++k)
    s += static_cast<double>(acc[k]);
  return s + tail;
}

/// f(Δ) summed by delta_lane_sum_bf16: Δ², |Δ| or Δ.
enum class delta_stat { square, abs, signed_sum };

#if FUSEKIT_CONVERT_X86 && defined(__AVX2__)
/// Calls `vec(q, de, dd)` for the 16-element groups [q, q + 16) of `len` contiguous bf16 elements, with the
/// deltas x − b of the even elements in `de` and of the odd ones in `dd` (bf16x16_load_split), both rows
/// prefetched 4 KiB ahead (the rows are read block after block, so this reaches into the next block, whose
/// first lines would otherwise miss). Returns the first element not covered, for the caller's scalar tail.
template <class Vec>
FUSEKIT_FORCEINLINE std::int64_t for_each_delta16_bf16(const bf16* b, const bf16* x, std::int64_t len, Vec&& vec) noexcept {
  constexpr std::int64_t ahead = 2048; // elements
  std::int64_t q = 0;
  for (; q + 16 <= len; q += 16) {
    if ((q & 31) == 0) {
      __builtin_prefetch(b + q + ahead, 0, 0);
      __builtin_prefetch(x + q + ahead, 0, 0);
    }
    __m256 be, bo, xe, xo;
    bf16x16_load_split(b + q, be, bo);
    bf16x16_load_split(x + q, xe, xo);
    vec(q, _mm256_sub_ps(xe, be), _mm256_sub_ps(xo, bo));
  }
  return q;
}

/// The keys exec::magnitude_key(float(x[j]) − float(b[j])), j in [0, len), over contiguous bf16, without
/// widening into a scratch buffer, in a fixed permutation of element order: each whole group of 16 at q
/// (q = 0, 16, …) as for_each_delta16_bf16's halves, keys[q, q+8) the even elements and keys[q+8, q+16) the
/// odd ones; the tail in element order. The top-k selections of the GTA methods compute their keys with it:
/// select_top_k's consumers (sample, bracket counts per block, candidate keys per block) depend only on
/// which keys a block holds, not on their order, and interleaving the halves back cost two unpacks and two
/// lane permutes per 16 keys (TIES 14336×4096×8 `par`: −4%).
inline void delta_keys_bf16(const bf16* b, const bf16* x, std::int64_t len, std::uint32_t* keys) noexcept {
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
  std::int64_t q = for_each_delta16_bf16(b, x, len, [&](std::int64_t j, __m256 de, __m256 dd) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(keys + j), _mm256_and_si256(_mm256_castps_si256(de), abs_mask));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(keys + j + 8), _mm256_and_si256(_mm256_castps_si256(dd), abs_mask));
  });
  for (; q < len; ++q)
    keys[q] = exec::magnitude_key(static_cast<float>(x[q]) - static_cast<float>(b[q]));
}
#endif

#if FUSEKIT_CONVERT_X86 && defined(__AVX2__) && FUSEKIT_HAS_VECTOR_EXT
/// lane_sum's final combination for accumulators kept as even/odd halves (accumulator k in ae[k/2] for even
/// k, ao[k/2] for odd k): Σ_k acc[k] in double, k = 0..15 in order, as lane_sum adds them.
template <class V> [[nodiscard]] inline double even_odd_lane_total(const V& ae, const V& ao) noexcept {
  double s = 0.0;
  for (int k = 0; k < 16; ++k)
    s += static_cast<double>(k % 2 == 0 ? ae[k / 2] : ao[k / 2]);
  return s;
}

/// lane_sum(len, q ↦ f(x[q] − b[q])) over len contiguous bf16 elements, without a scratch copy: the even/odd
/// deltas of for_each_delta16_bf16, element j + k into accumulator k exactly as lane_sum does (even k in
/// `ae`, odd k in `ao`), so the result has the same bits as lane_sum over widened blocks. Used by the
/// per-tensor statistics of VaRM and SCE.
inline double delta_lane_sum_bf16(const bf16* b, const bf16* x, std::int64_t len, delta_stat st) noexcept {
  typedef float v8 __attribute__((vector_size(32)));
  v8 ae{}, ao{};
  std::int64_t q = for_each_delta16_bf16(b, x, len, [&](std::int64_t, __m256 de_, __m256 dd_) {
    const v8 de = (v8)de_, dd = (v8)dd_;
    if (st == delta_stat::square) {
      const v8 fe = de * de, fo = dd * dd; // separate statements: contracted (or not) as lane_sum's are
      ae = ae + fe;
      ao = ao + fo;
    } else if (st == delta_stat::abs) {
      const __m256 m = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
      ae = ae + (v8)_mm256_and_ps((__m256)de, m);
      ao = ao + (v8)_mm256_and_ps((__m256)dd, m);
    } else {
      ae = ae + de;
      ao = ao + dd;
    }
  });
  double tail = 0.0;
  for (; q < len; ++q) {
    const float d = static_cast<float>(x[q]) - static_cast<float>(b[q]);
    const float f = st == delta_stat::square ? d * d : st == delta_stat::abs ? std::abs(d) : d;
    tail += static_cast<double>(f);
  }
  return even_odd_lane_total(ae, ao) + tail;
}

/// One group of 16 of DARE's L1 statistics, as for_each_delta16_bf16's halves de (even) and dd (odd):
/// ae/ao += |Δ|, ke/ko += keep·|Δ| with keep_j = 1.0f if bit j of `bits` is set, else 0.0f — a product, not a
/// mask, so a dropped non-finite |Δ| gives NaN as keep·|Δ| does in the blocked loop. Lanes whose bit of
/// `skip` is set add nothing to ke/ko (their keep bit is not decided yet; the caller adds them later).
template <class V>
FUSEKIT_FORCEINLINE void abs_kept16(__m256 de, __m256 dd, std::uint32_t bits, std::uint32_t skip, V& ae, V& ao,
                                    V& ke, V& ko) noexcept {
  typedef std::int32_t i8 __attribute__((vector_size(32)));
  const i8 even_bit = {1 << 0, 1 << 2, 1 << 4, 1 << 6, 1 << 8, 1 << 10, 1 << 12, 1 << 14};
  const i8 odd_bit = even_bit + even_bit;
  const i8 one_bits = i8{} + std::bit_cast<std::int32_t>(1.0f);
  const V ade = (V)((i8)de & 0x7fffffff), add = (V)((i8)dd & 0x7fffffff);
  ae = ae + ade;
  ao = ao + add;
  const i8 h = i8{} + static_cast<std::int32_t>(bits & 0xffffu), sk = i8{} + static_cast<std::int32_t>(skip & 0xffffu);
  const V kfe = (V)(((h & even_bit) != 0) & one_bits), kfo = (V)(((h & odd_bit) != 0) & one_bits);
  const V pe = kfe * ade, po = kfo * add;
  ke = ke + (V)((i8)pe & ((sk & even_bit) == 0));
  ko = ko + (V)((i8)po & ((sk & odd_bit) == 0));
}

/// lane_sum(len, |Δ|) and lane_sum(len, keep·|Δ|) in one pass over len contiguous bf16 elements, where
/// keep_j = 1.0f if bit j of `words` is set, else 0.0f (the keep bits of a random mask, element 0 = bit 0 of
/// words[0]): the same accumulators in the same order as those two lane_sum calls over widened blocks, so the
/// same bits (keep·|Δ| is exact, contracted or not). DARE's L1 rescale statistics use it.
inline void delta_abs_kept_sums_bf16(const bf16* b, const bf16* x, std::int64_t len, const std::uint64_t* words,
                                     double& all, double& kept) noexcept {
  typedef float v8 __attribute__((vector_size(32)));
  v8 ae{}, ao{}, ke{}, ko{};
  std::int64_t q = for_each_delta16_bf16(b, x, len, [&](std::int64_t j, __m256 de, __m256 dd) {
    // j is a multiple of 16: its 16 bits lie in one word
    abs_kept16(de, dd, static_cast<std::uint32_t>(words[j >> 6] >> (j & 63)), 0u, ae, ao, ke, ko);
  });
  double tail_all = 0.0, tail_kept = 0.0;
  for (; q < len; ++q) {
    const float d = std::abs(static_cast<float>(x[q]) - static_cast<float>(b[q]));
    tail_all += static_cast<double>(d);
    tail_kept += static_cast<double>(static_cast<float>((words[q >> 6] >> (q & 63)) & 1u) * d);
  }
  all = even_odd_lane_total(ae, ao) + tail_all;
  kept = even_odd_lane_total(ke, ko) + tail_kept;
}

/// fill_keep_bits(seed, stream, first, len, p, words) and delta_abs_kept_sums_bf16(b, x, len, words, all,
/// kept) in one sweep: each mask word's 64 deltas are summed while its draws are still in registers, so the
/// loads of the rows overlap the Philox arithmetic instead of following it (DARE's L1 statistics). Same
/// bits, and per element the same terms keep·|Δ| (non-finite deltas included); the sums may round
/// differently from the two-step form (two accumulator chains per half; the elements whose keep bit a
/// refinement decides are added at the end).
inline void keep_bits_l1_bf16(std::uint64_t seed, std::uint64_t stream, std::uint64_t first, std::int64_t len, float p,
                              const bf16* b, const bf16* x, std::uint64_t* words, double& all, double& kept) noexcept {
  const std::uint32_t T = u24_threshold(p);
  if (T == 0 || T >= (1u << 24) || (first & 15u) != 0) {
    fill_keep_bits(seed, stream, first, len, p, words);
    delta_abs_kept_sums_bf16(b, x, len, words, all, kept);
    return;
  }
  typedef float v8 __attribute__((vector_size(32)));
  v8 ae[2] = {}, ao[2] = {}, ke[2] = {}, ko[2] = {};
  double tail_all = 0.0, tail_kept = 0.0, refined = 0.0;
  auto absd = [&](std::int64_t j) { return std::abs(static_cast<float>(x[j]) - static_cast<float>(b[j])); };
  keep_bits_avx2(
      seed, stream, first, len, T, words,
      [&](std::int64_t q, std::uint64_t w, std::uint64_t undecided) {
        constexpr std::int64_t ahead = 2048; // elements, as for_each_delta16_bf16
        const std::int64_t j0 = q * 64;
        __builtin_prefetch(b + j0 + ahead, 0, 0);
        __builtin_prefetch(b + j0 + ahead + 32, 0, 0);
        __builtin_prefetch(x + j0 + ahead, 0, 0);
        __builtin_prefetch(x + j0 + ahead + 32, 0, 0);
        for (int g = 0; g < 4; ++g) {
          const std::int64_t j = j0 + 16 * g;
          if (j + 16 > len) { // the last, partial group
            for (std::int64_t t = j; t < len; ++t) {
              const float d = absd(t);
              tail_all += static_cast<double>(d);
              if (((undecided >> (t - j0)) & 1u) == 0)
                tail_kept += static_cast<double>(static_cast<float>((w >> (t - j0)) & 1u) * d);
            }
            break;
          }
          __m256 be, bo, xe, xo;
          bf16x16_load_split(b + j, be, bo);
          bf16x16_load_split(x + j, xe, xo);
          abs_kept16(_mm256_sub_ps(xe, be), _mm256_sub_ps(xo, bo), static_cast<std::uint32_t>(w >> (16 * g)),
                     static_cast<std::uint32_t>(undecided >> (16 * g)), ae[g & 1], ao[g & 1], ke[g & 1], ko[g & 1]);
        }
      },
      [&](std::int64_t j, bool keep) { refined += static_cast<double>(static_cast<float>(keep) * absd(j)); });
  all = even_odd_lane_total(ae[0] + ae[1], ao[0] + ao[1]) + tail_all;
  kept = even_odd_lane_total(ke[0] + ke[1], ko[0] + ko[1]) + tail_kept + refined;
}
#endif

/// Branch-free helpers written on the bit patterns so that GCC and Clang vectorize the loops that use them
/// (a float compare feeding a select is often left scalar with IEEE trapping semantics).
/// +1.0f where x >= 0 (including -0.0), -1.0f where x < 0: the elected sign with ties going to +.
FUSEKIT_FORCEINLINE float elected_sign(float x) noexcept {
  const auto b = std::bit_cast<std::int32_t>(x);
  const std::uint32_t neg = static_cast<std::uint32_t>((b < 0) & (b != std::numeric_limits<std::int32_t>::min()));
  return std::bit_cast<float>(0x3f800000u | (neg << 31));
}
/// 0xffffffff where x > 0 (strictly; +0 and NaN-free negatives give 0), else 0.
FUSEKIT_FORCEINLINE std::uint32_t positive_mask(float x) noexcept {
  return 0u - static_cast<std::uint32_t>(std::bit_cast<std::int32_t>(x) > 0);
}
/// x where mask is all ones, +0 where it is zero.
FUSEKIT_FORCEINLINE float masked(float x, std::uint32_t mask) noexcept {
  return std::bit_cast<float>(std::bit_cast<std::uint32_t>(x) & mask);
}
/// 1.0f when the non-negative floats satisfy a < b, else 0.0f (compares the bit patterns as integers).
FUSEKIT_FORCEINLINE float less_nonneg(float a, float b) noexcept {
  return masked(1.0f, 0u - static_cast<std::uint32_t>(std::bit_cast<std::int32_t>(a) < std::bit_cast<std::int32_t>(b)));
}

#if FUSEKIT_HAS_VECTOR_EXT && defined(__AVX__)
/// elected_sign on 8 lanes: +1 unless the sign bit is set and the value is not −0.
FUSEKIT_FORCEINLINE auto elected_sign_v8(float __attribute__((vector_size(32))) S) noexcept {
  typedef float v8 __attribute__((vector_size(32)));
  typedef std::int32_t i8 __attribute__((vector_size(32)));
  const i8 bits = (i8)S;
  const i8 neg = (bits < 0) & (bits != std::numeric_limits<std::int32_t>::min());
  return (v8)((i8{} + 0x3f800000) | (neg & (i8{} + std::numeric_limits<std::int32_t>::min())));
}
#endif

/// "model <i>" suffix for messages.
inline std::string model_label(std::size_t i) { return "model " + std::to_string(i); }

/// Checks a finite value in [lo, hi] and throws invalid_argument naming the method, tensor, model, parameter.
inline void check_range(double v, double lo, double hi, std::string_view param, std::string_view method,
                        const merge_context& ctx, std::size_t model) {
  FUSEKIT_EXPECTS(std::isfinite(v) && v >= lo && v <= hi, invalid_argument,
                  merge_where(method, ctx) + ": " + model_label(model) + " " + std::string(param) + " = " +
                      std::to_string(v) + " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
}

} // namespace fusekit::detail
