/// @file
/// @brief Internal: the final pass of the GTA pipeline (TIES, DARE, breadcrumbs, DELLA) over contiguous
/// bf16 rows in registers, and the per-block keep rules it evaluates.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <limits>

#include <fusekit/merge/detail/block_io.hpp>
#include <fusekit/merge/detail/kernels.hpp>
#include <fusekit/merge/detail/topk.hpp>
#include <fusekit/types/convert.hpp>

namespace fusekit::detail {

/// One model's keep mask over one block of the GTA final pass, as the register kernel evaluates it:
///   keep(e) = key > lo_m1  and not key > hi_m1  and (bits == nullptr or bit e − origin of bits)
/// with key = magnitude_key(Δ[e]) (below 2^31, so signed 32-bit compares order it). lo_m1 = −1 keeps every
/// key and INT32_MAX none; hi_m1 = INT32_MAX drops none.
struct gta_keep_rule {
  std::int32_t lo_m1 = -1;
  std::int32_t hi_m1 = std::numeric_limits<std::int32_t>::max();
  const std::uint64_t* bits = nullptr;
  std::int64_t origin = 0;

  [[nodiscard]] bool keep(std::uint32_t key, std::int64_t e) const noexcept {
    const auto k = static_cast<std::int32_t>(key);
    const bool bit = bits == nullptr || ((bits[(e - origin) >> 6] >> ((e - origin) & 63)) & 1u) != 0;
    return k > lo_m1 && !(k > hi_m1) && bit;
  }
};

/// The set of a top-k selection within block bi as "key > m1" (m1 = INT32_MAX: nothing selected); false for
/// the block where a tie quota runs out (the caller then takes the blocked loop for the block).
[[nodiscard]] inline bool selection_rule(const block_topk& t, std::int64_t bi, std::int32_t& m1) noexcept {
  if (t.k <= 0) {
    m1 = std::numeric_limits<std::int32_t>::max();
    return true;
  }
  std::uint32_t lim = 0;
  if (!t.block_limit(bi, lim) || lim > 0x80000000u) // keys are below 2^31: lim = 2^31 selects nothing
    return false;
  m1 = static_cast<std::int32_t>(static_cast<std::int64_t>(lim) - 1);
  return true;
}

/// What every model's keep rule of a final-pass block is known to be, so that gta_final_bf16 can compile
/// out the tests of the others (chosen per block by the caller; `general` is always correct).
enum class gta_rule_shape {
  general,   ///< any mix of key limits, bit masks and scales
  key_floor, ///< lower key limit only, scale 1, election weight = weight (TIES with mergekit's defaults)
  bit_mask   ///< bit mask only (no key limits), any scale, election weight = weight (DARE, DELLA)
};

/// The shape shared by the N rules and coefficients of a block (see gta_rule_shape).
template <class Coeffs>
[[nodiscard]] gta_rule_shape rule_shape(const gta_keep_rule* rule, const Coeffs* c, std::size_t N) noexcept {
  bool floor = true, bits = true;
  for (std::size_t i = 0; i < N; ++i) {
    const bool ew = c[i].election_is_weight();
    const bool no_hi = rule[i].hi_m1 == std::numeric_limits<std::int32_t>::max();
    floor = floor && ew && no_hi && rule[i].bits == nullptr && c[i].sc == 1.0f;
    bits = bits && ew && no_hi && rule[i].bits != nullptr && rule[i].lo_m1 == -1;
  }
  return N == 0 ? gta_rule_shape::general : floor ? gta_rule_shape::key_floor : bits ? gta_rule_shape::bit_mask
                                                                                   : gta_rule_shape::general;
}

/// Per-model coefficients of the final pass: rescale, weight, election weight, divisor weight.
struct gta_coeffs {
  float sc, w, ew, dw;
  /// Whether the election weight is the merge weight (bit for bit): then ew·t is also the merge's w·t.
  [[nodiscard]] bool election_is_weight() const noexcept {
    return std::bit_cast<std::uint32_t>(ew) == std::bit_cast<std::uint32_t>(w);
  }
};

/// The consensus rules of the final pass (generalized_task_arithmetic::consensus).
enum class gta_rule_kind { none, sum, count };

#if FUSEKIT_CONVERT_X86 && defined(__AVX2__) && FUSEKIT_HAS_VECTOR_EXT
/// The GTA final pass over elements [b, e) of contiguous bf16 rows in registers, for N models with keep
/// rules `rule` and coefficients `c`: t_i = masked(Δ_i·sc_i, keep_i); without consensus
/// M = Σ w_i·t_i (÷ scalar_div when normalizing); with it S = Σ e_i (e = ew·t, or its sign for `count`),
/// σ = elected_sign(S), agree_i = ew_i·t_i·σ > 0, M = Σ masked(w_i·t_i, agree_i),
/// D = Σ masked(dw_i, agree_i), M ← M / (D + [D = 0]) when normalizing; out = b + λ·M. The same operations
/// in the same order as the blocked loop of generalized_task_arithmetic::apply, with t_i recomputed from
/// the inputs, 16 elements at a time as even/odd halves, two such groups per step (x32_elementwise: two
/// independent chains over the models; TIES's final pass 7% faster than one). With consensus the first loop over the models parks
/// each model's 32 values of ew·t (of t when ew ≠ w for some model) in its own frame (over 16 models: in
/// `tbuf`, 32·N floats; see the comment at the top of the body) for the
/// second; rule parts that change nothing (no upper key limit, no bit mask, scale 1) are skipped per model,
/// with the same results (d·1 = d exactly). Without FP
/// contraction the bits are the blocked loop's; with it the elements done one at a time (ranges under 16,
/// or an output that overlaps an input: x32_elementwise) may round differently, as in weighted_sum_x16. `Shape` (the caller guarantees it, see rule_shape): with
/// key_floor the per-model tests of upper limits, bits and scales are compiled out (they were ~8% of TIES's
/// pass); with bit_mask the key compares are, and each half's mask is its keep bits shifted into the lanes'
/// sign bits (one vpsllvd) that select d·sc or +0 (one vblendvps): the same bits as `general`'s and-mask.
template <gta_rule_kind Rule, gta_rule_shape Shape = gta_rule_shape::general>
void gta_final_bf16(bf16* out, const bf16* base, const bf16* const* x, const gta_keep_rule* rule, const gta_coeffs* c,
                    std::size_t N, bool normalize, float scalar_div, float lam, std::int64_t b, std::int64_t e,
                    bool streaming, float* tbuf) noexcept {
  typedef float v8 __attribute__((vector_size(32)));
  typedef std::int32_t i8 __attribute__((vector_size(32)));
  // Up to 16 models, the parked values and the per-model parameters the loop reloads (input pointers,
  // coefficients, rules) live in this frame, next to the loop's spill slots: all within 4 KiB, so no load of
  // them shares its address bits 11..0 with a store to the parked values (a false store-to-load dependency
  // on "4K aliasing"). In the caller's heap scratch and vectors that depended on where the allocator put
  // them: TIES 14336×4096×8 on the same data took 170 or 280 ms depending on the binary's heap layout.
  constexpr std::size_t local_models = 16;
  alignas(64) float local_t[32 * local_models];
  const bf16* local_x[local_models];
  gta_coeffs local_c[local_models];
  gta_keep_rule local_r[local_models];
  if (N <= local_models) {
    std::copy(x, x + N, local_x);
    std::copy(c, c + N, local_c);
    std::copy(rule, rule + N, local_r);
    x = local_x;
    c = local_c;
    rule = local_r;
    tbuf = local_t;
  }
  auto one = [&](std::int64_t q) {
    const float bb = static_cast<float>(base[q]);
    auto t_of = [&](std::size_t i) {
      const float d = static_cast<float>(x[i][q]) - bb;
      return masked(d * c[i].sc, rule[i].keep(exec::magnitude_key(d), q) ? ~std::uint32_t{0} : 0u);
    };
    float M = 0.0f;
    if constexpr (Rule == gta_rule_kind::none) {
      for (std::size_t i = 0; i < N; ++i)
        M += c[i].w * t_of(i);
      if (normalize)
        M = M / scalar_div;
    } else {
      float S = 0.0f;
      for (std::size_t i = 0; i < N; ++i) {
        const float v = c[i].ew * t_of(i);
        if constexpr (Rule == gta_rule_kind::sum)
          S += v;
        else
          S += (v > 0.0f ? 1.0f : 0.0f) - (v < 0.0f ? 1.0f : 0.0f);
      }
      const float sg = elected_sign(S);
      float D = 0.0f;
      for (std::size_t i = 0; i < N; ++i) {
        const float t = t_of(i);
        const std::uint32_t agree = positive_mask(c[i].ew * t * sg);
        M += masked(c[i].w * t, agree);
        D += masked(c[i].dw, agree);
      }
      if (normalize)
        M = M / (D + static_cast<float>(D == 0.0f));
    }
    out[q] = bf16(from_bits, bf16::from_float(bb + lam * M));
  };
  // keep masks of the even and odd elements of [q, q + 16)
  const i8 even_bit = {1 << 0, 1 << 2, 1 << 4, 1 << 6, 1 << 8, 1 << 10, 1 << 12, 1 << 14};
  const i8 odd_bit = even_bit + even_bit;
  // (the vector lambdas capture by value: with references GCC reloads every captured pointer after each
  // store to tbuf, which it cannot prove does not alias them)
  // bit_mask: the shift that moves keep bit k of a group (even lanes k = 0, 2, …, 14; odd 1, 3, …, 15) to bit 31
  const __m256i even_shift = _mm256_setr_epi32(31, 29, 27, 25, 23, 21, 19, 17);
  const __m256i odd_shift = _mm256_sub_epi32(even_shift, _mm256_set1_epi32(1));
  constexpr bool Plain = Shape == gta_rule_shape::key_floor;
  auto t_pair = [=](std::size_t i, std::int64_t q, v8 be, v8 bo, v8& te, v8& to) {
    __m256 xe, xo;
    bf16x16_load_split(x[i] + q, xe, xo);
    const v8 de = (v8)xe - be, dd = (v8)xo - bo;
    const gta_keep_rule& r = rule[i];
    if constexpr (Shape == gta_rule_shape::bit_mask) {
      const std::int64_t p = q - r.origin;
      std::uint64_t w = r.bits[p >> 6] >> (p & 63);
      if ((p & 63) > 48)
        w |= r.bits[(p >> 6) + 1] << (64 - (p & 63));
      // bits above k leave the lane, bits below stay below bit 31: no mask needed
      const __m256i h = _mm256_set1_epi32(static_cast<std::int32_t>(static_cast<std::uint32_t>(w)));
      const __m256 me = _mm256_castsi256_ps(_mm256_sllv_epi32(h, even_shift));
      const __m256 mo = _mm256_castsi256_ps(_mm256_sllv_epi32(h, odd_shift));
      v8 pe = de, po = dd;
      if (const float sc = c[i].sc; sc != 1.0f) {
        pe = de * sc; // separate statements: rounded (or contracted) as the blocked loop
        po = dd * sc;
      }
      te = (v8)_mm256_blendv_ps(_mm256_setzero_ps(), (__m256)pe, me);
      to = (v8)_mm256_blendv_ps(_mm256_setzero_ps(), (__m256)po, mo);
      return;
    }
    const i8 ke = (i8)de & 0x7fffffff, ko = (i8)dd & 0x7fffffff;
    i8 me = ke > r.lo_m1, mo = ko > r.lo_m1;
    if (!Plain && r.hi_m1 != std::numeric_limits<std::int32_t>::max()) {
      me &= ~(ke > r.hi_m1);
      mo &= ~(ko > r.hi_m1);
    }
    if (!Plain && r.bits != nullptr) {
      const std::int64_t p = q - r.origin;
      std::uint64_t w = r.bits[p >> 6] >> (p & 63);
      if ((p & 63) > 48)
        w |= r.bits[(p >> 6) + 1] << (64 - (p & 63));
      const i8 h = i8{} + static_cast<std::int32_t>(w & 0xffffu);
      me &= (h & even_bit) != 0;
      mo &= (h & odd_bit) != 0;
    }
    const float sc = c[i].sc;
    if (!Plain && sc != 1.0f) {
      const v8 pe = de * sc, po = dd * sc; // separate statements: rounded (or contracted) as the blocked loop
      te = (v8)((i8)pe & me);
      to = (v8)((i8)po & mo);
    } else { // d·1 = d
      te = (v8)((i8)de & me);
      to = (v8)((i8)dd & mo);
    }
  };
  // whether ew = w for every model (weighted election, the default): then ew·t is also the merge's w·t
  const bool ew_is_w = Shape != gta_rule_shape::general || [&] {
    for (std::size_t i = 0; i < N; ++i)
      if (!c[i].election_is_weight())
        return false;
    return true;
  }();
  const i8 one_bits = i8{} + std::bit_cast<std::int32_t>(1.0f);
  typedef float v8u __attribute__((vector_size(32), aligned(4))); // an unaligned, non-aliasing vector of tbuf
  x32_elementwise(out, b, e, streaming, base, x, N, prefetch_distance(N + 1), one, [=](auto G_, std::int64_t q,
                                                                                      __m256i* res) {
    constexpr int G = decltype(G_)::value; // groups of 16: independent chains over the models, overlapped
    v8 be[G], bo[G], Me[G], Mo[G];
    bf16_groups_load_split<G>(base + q, be, bo);
    for (int g = 0; g < G; ++g)
      Me[g] = Mo[g] = v8{};
    if constexpr (Rule == gta_rule_kind::none) {
      for (std::size_t i = 0; i < N; ++i) {
        const float w = c[i].w;
        for (int g = 0; g < G; ++g) {
          v8 te, to;
          t_pair(i, q + 16 * g, be[g], bo[g], te, to);
          Me[g] += w * te;
          Mo[g] += w * to;
        }
      }
      if (normalize)
        for (int g = 0; g < G; ++g) {
          Me[g] = Me[g] / scalar_div;
          Mo[g] = Mo[g] / scalar_div;
        }
    } else {
      v8 Se[G], So[G];
      for (int g = 0; g < G; ++g)
        Se[g] = So[g] = v8{};
      for (std::size_t i = 0; i < N; ++i) {
        const float ew = c[i].ew;
        for (int g = 0; g < G; ++g) {
          v8 te, to;
          t_pair(i, q + 16 * g, be[g], bo[g], te, to);
          const v8 ve = ew * te, vo = ew * to;
          if constexpr (Rule == gta_rule_kind::sum) {
            Se[g] += ve;
            So[g] += vo;
          } else {
            Se[g] += (v8)((ve > 0.0f) & one_bits) - (v8)((ve < 0.0f) & one_bits);
            So[g] += (v8)((vo > 0.0f) & one_bits) - (v8)((vo < 0.0f) & one_bits);
          }
          v8u* tb = reinterpret_cast<v8u*>(tbuf + 16 * (G * i + g));
          if (ew_is_w) {
            tb[0] = ve;
            tb[1] = vo;
          } else {
            tb[0] = te;
            tb[1] = to;
          }
        }
      }
      v8 ge[G], go[G], De[G], Do[G];
      for (int g = 0; g < G; ++g) {
        ge[g] = elected_sign_v8(Se[g]);
        go[g] = elected_sign_v8(So[g]);
        De[g] = Do[g] = v8{};
      }
      for (std::size_t i = 0; i < N; ++i) {
        const float ew = c[i].ew, w = c[i].w;
        const i8 dw = i8{} + std::bit_cast<std::int32_t>(c[i].dw);
        for (int g = 0; g < G; ++g) {
          v8 pe, po, we, wo; // ew·t·σ and w·t
          const v8u* tb = reinterpret_cast<const v8u*>(tbuf + 16 * (G * i + g));
          if (ew_is_w) {
            we = tb[0];
            wo = tb[1];
            pe = we * ge[g];
            po = wo * go[g];
          } else {
            const v8 te = tb[0], to = tb[1];
            pe = ew * te * ge[g];
            po = ew * to * go[g];
            we = w * te;
            wo = w * to;
          }
          const i8 ae = (i8)pe > 0, ao = (i8)po > 0; // positive_mask: zeros never agree
          Me[g] += (v8)((i8)we & ae);
          Mo[g] += (v8)((i8)wo & ao);
          De[g] += (v8)(dw & ae);
          Do[g] += (v8)(dw & ao);
        }
      }
      if (normalize)
        for (int g = 0; g < G; ++g) {
          Me[g] = Me[g] / (De[g] + (v8)((De[g] == 0.0f) & one_bits));
          Mo[g] = Mo[g] / (Do[g] + (v8)((Do[g] == 0.0f) & one_bits));
        }
    }
    for (int g = 0; g < G; ++g) {
      const v8 re = be[g] + lam * Me[g], ro = bo[g] + lam * Mo[g];
      res[g] = bf16x16_narrow_split((__m256)re, (__m256)ro);
    }
  });
}
#endif

} // namespace fusekit::detail
