/// @file
/// @brief The generalized task-arithmetic (GTA) pipeline behind ties, dare_ties, dare_linear, breadcrumbs,
/// breadcrumbs_ties, della and della_linear (mergekit's GeneralizedTaskArithmeticMerge), with explicit
/// options for the points where mergekit, PEFT and the papers disagree.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <fusekit/core/error.hpp>
#include <fusekit/exec/policy.hpp>
#include <fusekit/exec/select.hpp>
#include <fusekit/merge/detail/gta_kernel.hpp>
#include <fusekit/merge/detail/kernels.hpp>
#include <fusekit/merge/detail/scratch.hpp>
#include <fusekit/merge/detail/topk.hpp>
#include <fusekit/merge/merge.hpp>

namespace fusekit {

/// How each task vector is sparsified (mergekit `SparsificationMethod`).
enum class sparsification {
  none,               ///< keep everything (task_arithmetic)
  magnitude,          ///< TIES trim: exact top-k of |Δ| over the whole tensor, k = floor(density·n)
  random,             ///< DARE: keep each element with probability density (rng::bernoulli, counter-based)
  magnitude_outliers, ///< Breadcrumbs: drop the floor(γ·n) largest and the smallest, keep floor(density·n)
  della_magprune,     ///< DELLA MagPrune: per-row keep probability linear in the magnitude rank
};

/// Sign consensus ("erase") rule.
enum class consensus_method {
  none, ///< plain (weighted) sum of the task vectors
  sum,  ///< TIES: elected sign = sign of the sum (ties → +), keep the agreeing entries (mergekit `sum`)
  count ///< elected sign = majority of the signs (ties → +) (mergekit `count`, registered by no method)
};

/// Which task vectors the sign election sums.
enum class sign_election {
  weighted,  ///< Σ_i w_i·Δ̃_i — mergekit (a model's weight changes which sign wins; issue #474)
  unweighted ///< Σ_i Δ̃_i — TIES paper Algorithm 1 and PEFT; weights enter only the merge
};

/// Divisor of the disjoint mean when `normalize` is on with a consensus rule.
enum class consensus_divisor {
  weight_sum, ///< Σ of the weights of the agreeing models, per element — mergekit
  count       ///< number of agreeing models, per element — PEFT `disjoint_merge`
};

/// How kept entries are rescaled when `rescale` is on.
enum class rescale_mode {
  l1_norm,        ///< match the L1 norm of the whole task vector: ‖Δ‖₁/‖m⊙Δ‖₁ — mergekit (PR #245)
  inverse_density ///< multiply by 1/density — DARE paper, PEFT `prune(..., rescale=True)`
};

/// The GTA pipeline for one tensor, as mergekit's GTATask:
///   Δ_i = x_i − b;  Δ̃_i = rescale(sparsify(Δ_i));  u_i = w_i·Δ̃_i;
///   with consensus: σ = sign(Σ_i e_i) (e = u or Δ̃ per `election`, ties → +), k_i = [sign(e_i) = σ] (zeros
///   never agree), M = Σ_i k_i·u_i, D = Σ_i k_i·w_i (or Σ_i k_i) per element, 0 → 1;
///   without: M = Σ_i u_i, D = Σ_i w_i (|D| < 1e-8 → 1);
///   M ← M/D if normalize;  out = b + λ·M.
/// A density ≥ 1 makes any sparsifier a no-op (and skips its rescale), as in mergekit. Computed in fp32;
/// per-tensor reductions (L1 norms) in fp64 in a fixed order, so results are identical for any thread count.
struct generalized_task_arithmetic {
  static constexpr std::string_view name = "generalized_task_arithmetic";
  sparsification sparsify = sparsification::none; ///< sparsifier applied to every task vector
  consensus_method consensus = consensus_method::none; ///< sign-consensus rule
  float lambda = 1.0f;                                 ///< scale of the merged task vector (mergekit `lambda`)
  bool normalize = false;                              ///< divide by D (mergekit `normalize`)
  bool rescale = false;                                ///< rescale kept entries (mergekit `rescale`)
  sign_election election = sign_election::weighted;    ///< input of the sign election
  consensus_divisor divisor = consensus_divisor::weight_sum; ///< disjoint-mean divisor
  rescale_mode rescale_by = rescale_mode::l1_norm;     ///< rescale rule
  std::string_view method_name = name;                 ///< name used in error messages

  /// Generic path (any host policy).
  template <class P, class Out, class Base, class In>
  void apply(const P& policy, const Out& out, const Base& base, std::span<const merge_input<In>> inputs,
             const merge_context& ctx) const;
};

namespace detail {

struct gta_model_plan {
  enum kind_t { keep_all, drop_all, top, band, random, della } kind = keep_all;
  double density = 1.0;
  float scale = 1.0f;          // rescale factor (1 when not rescaling)
  std::size_t req_a = 0;       // top: the keep request; band: the "drop the largest" request
  std::size_t req_b = 0;       // band: the keep request
  std::uint64_t* bits = nullptr; // random (when precomputed) and della: keep bits, one per element
};

/// Della MagPrune keep bits and L1 sums (Σ|Δ|, Σ|m⊙Δ|) of every model i with `della[i]`, per row of the
/// last dimension (1-D = one row), one pass over the inputs (the base row is loaded once for all models).
/// Ranks are r = 0..C−1 by ascending |Δ|, ties by ascending column; p(r) = (d−ε) + 2ε·r/(C−1) (p = d when
/// C = 1); keep when uniform01(seed, stream, e) < float(p(r)), i.e. when the draw's 24 bits m satisfy
/// m < T(r) = ceil(float(p(r))·2²⁴) — T is non-decreasing in r and computed once per model.
///
/// Exact ranks without sorting: a histogram of the row's magnitude keys over the row's own key range
/// [kmin, kmax] (about one bin per column, each bin a contiguous key range) gives every element a rank
/// interval [P(bin), P(bin+1)); m < T(P(bin)) keeps it and m ≥ T(P(bin+1)−1) drops it whatever its rank
/// inside the bin (with AVX2 the four lookups are gathers, 8 elements at a time). Only the remaining elements
/// (m inside the T-range of a bin: about 2ε·(bin size)/C, ~0.5% of them) need their exact rank, counted
/// among the elements of their bin: the elements of the bins holding such an element (only those) are
/// grouped by bin in column order. Results are identical to sorting every row.
/// della_bit_bytes[b] holds byte t = bit t of b (8 keep flags from a movemask).
inline constexpr auto della_bit_bytes = [] {
  std::array<std::uint64_t, 256> t{};
  for (std::size_t b = 0; b < 256; ++b)
    for (std::size_t i = 0; i < 8; ++i)
      t[b] |= static_cast<std::uint64_t>((b >> i) & 1u) << (8 * i);
  return t;
}();

template <class P, class Base, class In>
void della_bits_all(const P& policy, const view_io<Base>& base, const input_set<In>& in,
                    std::vector<gta_model_plan>& plan, std::span<const merge_input<In>> inputs, std::int64_t rows,
                    std::int64_t cols, const merge_context& ctx, std::vector<double>& l1_all,
                    std::vector<double>& l1_kept) {
  const std::int64_t n = rows * cols;
  const std::size_t N = plan.size();
  if (n <= 0)
    return;
  std::vector<std::size_t> models;
  for (std::size_t i = 0; i < N; ++i)
    if (plan[i].kind == gta_model_plan::della)
      models.push_back(i);
  const std::size_t D = models.size();
  const auto C = static_cast<std::size_t>(cols);
  // rank -> integer threshold, per della model
  std::vector<std::vector<std::uint32_t>> T(D, std::vector<std::uint32_t>(C));
  std::vector<std::uint64_t> streams(D);
  for (std::size_t q = 0; q < D; ++q) {
    const std::size_t i = models[q];
    const double d = plan[i].density, eps = inputs[i].epsilon;
    const double lo = d - eps, span = 2.0 * eps;
    for (std::size_t r = 0; r < C; ++r) {
      const double rn = C > 1 ? static_cast<double>(r) / static_cast<double>(C - 1) : 0.5;
      // product and sum rounded separately whatever the build flags: with -march=native and GCC's
      // default -ffp-contract=fast the two would be fused into one FMA, which moves a few thresholds by
      // one float step and so changes masks (C values per tensor: the volatile costs nothing)
      volatile double step = rn * span;
      T[q][r] = u24_threshold(static_cast<float>(lo + step));
    }
    streams[q] = model_stream(ctx.tensor_name, i);
  }
  std::vector<double> partial(static_cast<std::size_t>(rows) * D * 2, 0.0);
  // bins of the row's key range [kmin, kmax]: about one per column (at least 256, at most 65536)
  const std::uint32_t max_bins =
      static_cast<std::uint32_t>(std::clamp<std::size_t>(std::bit_ceil(std::max<std::size_t>(C, 1)), 256, 65536));
  struct worker_buf {
    std::vector<float> bb, x;
    std::vector<std::uint32_t> key, m, cnt, start, amb, list, seg, where;
    std::vector<std::uint8_t> keep, flag;
  };
  const std::int64_t workers = std::clamp<std::int64_t>(policy.concurrency(), 1, rows);
  std::vector<worker_buf> bufs(static_cast<std::size_t>(workers));
  const std::int64_t per = (rows + workers - 1) / workers;
  exec::for_each_n(policy, workers, [&](std::int64_t w) {
    worker_buf& wb = bufs[static_cast<std::size_t>(w)];
    wb.bb.resize(C);
    wb.x.resize(C);
    wb.key.resize(C);
    wb.m.resize(C + 4);
    wb.cnt.resize(max_bins + 1);
    wb.start.resize(max_bins + 1);
    wb.flag.assign(max_bins + 1, 0);
    wb.amb.resize(C);
    wb.list.resize(C);
    wb.seg.resize(C);
    wb.where.resize(C);
    wb.keep.resize(C);
    float* bb = wb.bb.data();
    float* x = wb.x.data();
    std::uint32_t* key = wb.key.data();
    std::uint32_t* cnt = wb.cnt.data();
    std::uint32_t* R = wb.start.data();
    std::uint8_t* flag = wb.flag.data();
    std::uint8_t* keep = wb.keep.data();
    const auto Cu = static_cast<std::uint32_t>(C);
    for (std::int64_t row = w * per; row < std::min(rows, (w + 1) * per); ++row) {
      const std::int64_t b = row * cols;
      base.load(b, cols, bb);
      if (cols <= 65536) { // the next row's inputs arrive while this row is ranked
        const std::int64_t nb0 = b + cols;
        if (nb0 < n) {
          base.prefetch(nb0, cols);
          for (std::size_t q = 0; q < D; ++q)
            in.prefetch(models[q], nb0, cols);
        }
      }
      for (std::size_t q = 0; q < D; ++q) {
        const std::size_t i = models[q];
        in.load(i, b, cols, x);
        std::uint32_t kmin = std::numeric_limits<std::uint32_t>::max(), kmax = 0;
        FUSEKIT_PRAGMA_SIMD
        for (std::size_t j = 0; j < C; ++j) {
          x[j] -= bb[j];
          key[j] = exec::magnitude_key(x[j]);
        }
        for (std::size_t j = 0; j < C; ++j) { // vectorized min/max reductions
          kmin = std::min(kmin, key[j]);
          kmax = std::max(kmax, key[j]);
        }
        // bin(key) = (key − kmin) >> bs: at most max_bins bins, each a contiguous key range
        unsigned bs = 0; // bin shift
        while (((kmax - kmin) >> bs) >= max_bins)
          ++bs;
        const std::uint32_t nbins = ((kmax - kmin) >> bs) + 1;
        // histogram -> R[bin] = first rank of the bin, R[nbins] = C
        std::fill(R, R + nbins + 1, 0u);
        for (std::uint32_t j = 0; j < Cu; ++j)
          ++R[(key[j] - kmin) >> bs];
        // exclusive prefix sums in place (AVX2: 8 bins a step, the running total kept in a register)
        std::uint32_t h0 = 0, acc = 0;
#if defined(__AVX2__)
        {
          __m256i carry = _mm256_setzero_si256();
          const __m256i last = _mm256_set1_epi32(7);
          for (; h0 + 8 <= nbins + 1; h0 += 8) {
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(R + h0));
            __m256i x = _mm256_add_epi32(v, _mm256_slli_si256(v, 4));
            x = _mm256_add_epi32(x, _mm256_slli_si256(x, 8)); // inclusive sums within each 128-bit half
            const __m256i lo_total = _mm256_shuffle_epi32(x, 0xFF);
            x = _mm256_add_epi32(x, _mm256_permute2x128_si256(lo_total, lo_total, 0x08)); // + low half's total
            x = _mm256_add_epi32(x, carry);
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(R + h0), _mm256_sub_epi32(x, v));
            carry = _mm256_permutevar8x32_epi32(x, last);
          }
          acc = static_cast<std::uint32_t>(_mm256_cvtsi256_si32(carry));
        }
#endif
        for (std::uint32_t h = h0; h <= nbins; ++h) {
          const std::uint32_t c = R[h];
          R[h] = acc;
          acc += c;
        }
        fill_u24(ctx.seed, streams[q], static_cast<std::uint64_t>(b) & ~std::uint64_t{3}, cols + (b & 3), wb.m.data());
        const std::uint32_t* mm = wb.m.data() + (b & 3);
        const std::uint32_t* Tq = T[q].data();
        std::uint32_t* amb = wb.amb.data();
        std::size_t namb = 0;
        std::uint32_t j0 = 0;
#if defined(__AVX2__)
        if (C < (std::size_t{1} << 31)) { // 8 elements at a time: the four lookups as gathers (signed indices)
          const __m256i vmin = _mm256_set1_epi32(static_cast<int>(kmin));
          const __m128i vsh = _mm_cvtsi32_si128(static_cast<int>(bs));
          const __m256i one = _mm256_set1_epi32(1);
          const int* Ri = reinterpret_cast<const int*>(R);
          const int* Ti = reinterpret_cast<const int*>(Tq);
          for (; j0 + 8 <= Cu; j0 += 8) {
            const __m256i kv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(key + j0));
            const __m256i h = _mm256_srl_epi32(_mm256_sub_epi32(kv, vmin), vsh);
            const __m256i lo = _mm256_i32gather_epi32(Ri, h, 4);
            const __m256i hi = _mm256_sub_epi32(_mm256_i32gather_epi32(Ri + 1, h, 4), one);
            const __m256i tlo = _mm256_i32gather_epi32(Ti, lo, 4);
            const __m256i thi = _mm256_i32gather_epi32(Ti, hi, 4);
            const __m256i mv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(mm + j0));
            const __m256i sk = _mm256_cmpgt_epi32(tlo, mv), may = _mm256_cmpgt_epi32(thi, mv);
            const auto kbits = static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(sk)));
            auto ubits = static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_andnot_si256(sk, may))));
            std::memcpy(keep + j0, &della_bit_bytes[kbits], 8);
            while (ubits != 0) {
              amb[namb++] = j0 + static_cast<std::uint32_t>(std::countr_zero(ubits));
              ubits &= ubits - 1;
            }
          }
        }
#endif
        for (std::uint32_t j = j0; j < Cu; ++j) {
          const std::uint32_t h = (key[j] - kmin) >> bs;
          const std::uint32_t r_lo = R[h], r_hi = R[h + 1] - 1;
          const std::uint32_t mj = mm[j];
          const std::uint32_t sure_keep = mj < Tq[r_lo] ? 1u : 0u, maybe = mj < Tq[r_hi] ? 1u : 0u;
          keep[j] = static_cast<std::uint8_t>(sure_keep);
          amb[namb] = j;
          namb += maybe & (sure_keep ^ 1u); // undecided: not surely kept, not surely dropped (branch-free)
        }
        if (namb > 0) {
          // Exact ranks of the undecided elements: rank = R[bin] + the elements of its bin ordered before it
          // by (key, column), counted among the elements of the bins that hold an undecided one ("flagged").
          std::uint32_t* list = wb.list.data();
          std::uint32_t* seg = wb.seg.data();
          std::uint32_t* where = wb.where.data();
          for (std::size_t a = 0; a < namb; ++a) {
            const std::uint32_t h = (key[amb[a]] - kmin) >> bs;
            flag[h] = 1;
            cnt[h] = R[h]; // write cursor of the bin's segment
          }
          if (namb <= 64) {
            // few undecided: the keys of the flagged bins in column order (branch-free), and per undecided
            // element a vectorized count over that list of the keys of its bin ordered before it
            std::size_t L = 0;
            for (std::uint32_t j = 0; j < Cu; ++j) {
              seg[L] = key[j];
              where[j] = static_cast<std::uint32_t>(L);
              L += flag[(key[j] - kmin) >> bs];
            }
            for (std::size_t a = 0; a < namb; ++a) {
              const std::uint32_t j = amb[a];
              const std::uint32_t kj = key[j];
              const std::uint32_t h = (kj - kmin) >> bs;
              const std::uint32_t lo = kmin + (h << bs), lim = kj - lo;
              const std::size_t pj = where[j];
              std::uint32_t below = 0; // keys of the bin: (key − lo) ≤ lim before j, < lim after it
              FUSEKIT_PRAGMA_SIMD
              for (std::size_t t = 0; t < pj; ++t)
                below += seg[t] - lo <= lim ? 1u : 0u;
              FUSEKIT_PRAGMA_SIMD
              for (std::size_t t = pj + 1; t < L; ++t)
                below += seg[t] - lo < lim ? 1u : 0u;
              keep[j] = mm[j] < Tq[R[h] + below] ? 1 : 0;
            }
          } else {
            // many: the elements of the flagged bins, grouped by bin (stable), counted inside the bin
            std::size_t L = 0;
            for (std::uint32_t j = 0; j < Cu; ++j) {
              list[L] = j;
              L += flag[(key[j] - kmin) >> bs];
            }
            for (std::size_t t = 0; t < L; ++t) {
              const std::uint32_t j = list[t];
              const std::uint32_t h = (key[j] - kmin) >> bs;
              const std::uint32_t p = cnt[h]++;
              seg[p] = key[j];
              where[j] = p;
            }
            for (std::size_t a = 0; a < namb; ++a) {
              const std::uint32_t j = amb[a];
              const std::uint32_t kj = key[j];
              const std::uint32_t h = (kj - kmin) >> bs;
              const std::uint32_t s0 = R[h], s1 = R[h + 1], pj = where[j];
              std::uint32_t below = 0;
              for (std::uint32_t t = s0; t < pj; ++t)
                below += seg[t] <= kj ? 1u : 0u;
              for (std::uint32_t t = pj + 1; t < s1; ++t)
                below += seg[t] < kj ? 1u : 0u;
              keep[j] = mm[j] < Tq[s0 + below] ? 1 : 0;
            }
          }
          for (std::size_t a = 0; a < namb; ++a)
            flag[(key[amb[a]] - kmin) >> bs] = 0;
        }
        // L1 sums: 8 independent fp64 accumulators (vectorizes), combined in a fixed order
        double la[8] = {}, lk[8] = {};
        std::size_t j8 = 0;
#if defined(__AVX2__)
        { // the same sums with the widening in registers (GCC left this loop scalar: ~8% of della_bits_all)
          const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
          __m256d a0 = _mm256_setzero_pd(), a1 = a0, k0 = a0, k1 = a0; // la[0..4), la[4..8), lk[0..4), lk[4..8)
          for (; j8 + 8 <= C; j8 += 8) {
            const __m256 ax = _mm256_and_ps(_mm256_loadu_ps(x + j8), absm);
            const __m128i kb = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(keep + j8));
            const __m256 ak = _mm256_mul_ps(ax, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(kb))); // ax·float(keep)
            a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm256_castps256_ps128(ax)));
            a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm256_extractf128_ps(ax, 1)));
            k0 = _mm256_add_pd(k0, _mm256_cvtps_pd(_mm256_castps256_ps128(ak)));
            k1 = _mm256_add_pd(k1, _mm256_cvtps_pd(_mm256_extractf128_ps(ak, 1)));
          }
          _mm256_storeu_pd(la, a0);
          _mm256_storeu_pd(la + 4, a1);
          _mm256_storeu_pd(lk, k0);
          _mm256_storeu_pd(lk + 4, k1);
        }
#endif
        for (; j8 + 8 <= C; j8 += 8)
          for (std::size_t t = 0; t < 8; ++t) {
            const float ax = std::abs(x[j8 + t]);
            la[t] += static_cast<double>(ax);
            lk[t] += static_cast<double>(ax * static_cast<float>(keep[j8 + t])); // ax or +0, exactly
          }
        double sa = 0, sk = 0;
        for (std::size_t t = 0; t < 8; ++t) {
          sa += la[t];
          sk += lk[t];
        }
        for (; j8 < C; ++j8) {
          const double ax = std::abs(static_cast<double>(x[j8]));
          sa += ax;
          sk += keep[j8] ? ax : 0.0;
        }
        // keep bits of the row, 64 at a time from the row start (32-bit halves: vectorized OR reduction),
        // then shifted into the tensor's words (a row need not start on a word boundary)
        std::uint64_t* const bits = plan[i].bits;
        const auto sh = static_cast<unsigned>(b & 63);
        for (std::size_t w0 = 0; w0 < C; w0 += 64) {
          std::uint32_t half[2] = {0, 0};
          for (std::size_t h = 0; h < 2; ++h) {
            const std::size_t s0 = w0 + 32 * h;
            if (s0 >= C)
              break;
            const std::size_t m = std::min<std::size_t>(32, C - s0);
            std::uint32_t v = 0;
            if (m == 32) {
#if defined(__AVX2__) // the flags are 0/1 bytes: bit 0 of each moved to its sign bit, then one movemask
              const __m256i kv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(keep + s0));
              v = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_slli_epi16(kv, 7)));
#else
              FUSEKIT_PRAGMA_SIMD
              for (std::uint32_t t = 0; t < 32; ++t)
                v |= static_cast<std::uint32_t>(keep[s0 + t]) << t;
#endif
            } else {
              for (std::uint32_t t = 0; t < m; ++t)
                v |= static_cast<std::uint32_t>(keep[s0 + t]) << t;
            }
            half[h] = v;
          }
          const std::uint64_t word = static_cast<std::uint64_t>(half[0]) | (static_cast<std::uint64_t>(half[1]) << 32);
          if (word == 0)
            continue;
          const auto gw = static_cast<std::size_t>((b + static_cast<std::int64_t>(w0)) / 64);
          if (sh == 0 && C % 64 == 0) { // the row owns its words (no other row writes them): no lock
            bits[gw] |= word;
            continue;
          }
          std::atomic_ref<std::uint64_t>(bits[gw]).fetch_or(word << sh, std::memory_order_relaxed);
          if (sh != 0 && (word >> (64 - sh)) != 0)
            std::atomic_ref<std::uint64_t>(bits[gw + 1]).fetch_or(word >> (64 - sh), std::memory_order_relaxed);
        }
        partial[(static_cast<std::size_t>(row) * D + q) * 2] = sa;
        partial[(static_cast<std::size_t>(row) * D + q) * 2 + 1] = sk;
      }
    }
  });
  const auto tot = sum_blocks(partial, D * 2);
  for (std::size_t q = 0; q < D; ++q) {
    l1_all[models[q]] = tot[q * 2];
    l1_kept[models[q]] = tot[q * 2 + 1];
  }
}

/// Unpacks keep bits (bit j of w[j / 64]) for j in [0, len) into 0/1 floats. Each 32-bit half-word is
/// expanded with per-lane variable shifts (vectorizes: vpsrlvd on AVX2).
inline void unpack_bits(const std::uint64_t* w, std::int64_t len, float* keep) noexcept {
  std::int64_t j = 0;
  for (; j + 32 <= len; j += 32) {
    const auto h = static_cast<std::uint32_t>(w[j >> 6] >> (j & 32));
    FUSEKIT_PRAGMA_SIMD
    for (std::uint32_t q = 0; q < 32; ++q)
      keep[j + q] = masked(1.0f, 0u - ((h >> q) & 1u));
  }
  for (; j < len; ++j)
    keep[j] = static_cast<float>((w[j >> 6] >> (j & 63)) & 1u);
}

} // namespace detail

template <class P, class Out, class Base, class In>
void generalized_task_arithmetic::apply(const P& policy, const Out& out, const Base& base,
                                        std::span<const merge_input<In>> inputs, const merge_context& ctx) const {
  static_assert(!std::is_same_v<Base, no_base_t>,
                "fusekit: task-vector merge methods need a base model (pass its view as `base`).");
  exec::check_runs_on<P, Out, Base, In>();
  using namespace detail;
  const std::string_view mname = method_name;
  check_merge_args(mname, out, base, inputs, ctx, true, 0);
  const std::size_t N = inputs.size();
  const std::int64_t n = out.size();
  if (N == 0 || n == 0) { // no task vectors: the base is the result (mergekit returns the base)
    copy_tensor(policy, out, base);
    return;
  }
  FUSEKIT_EXPECTS(std::isfinite(lambda), invalid_argument, merge_where(mname, ctx) + ": lambda must be finite");
  for (std::size_t i = 0; i < N; ++i) {
    FUSEKIT_EXPECTS(std::isfinite(inputs[i].weight), invalid_argument,
                    merge_where(mname, ctx) + ": " + model_label(i) + " weight is not finite");
    if (sparsify != sparsification::none)
      check_range(inputs[i].density, 0.0, 1.0, "density", mname, ctx, i);
    if (sparsify == sparsification::magnitude_outliers)
      check_range(inputs[i].gamma, 0.0, 1.0, "gamma", mname, ctx, i);
  }

  const view_io<Base> b_io(base);
  const view_io<Out> o_io(out);
  const input_set<In> in(inputs);
  const std::int64_t blk = multi_block_size(N);
  const std::int64_t nblocks = block_count(n, blk);

  // ---- per-model plans ---------------------------------------------------------------------------------
  std::vector<gta_model_plan> plan(N);
  std::vector<topk_request> reqs;
  for (std::size_t i = 0; i < N; ++i) {
    auto& p = plan[i];
    const double d = inputs[i].density;
    p.density = d;
    if (sparsify == sparsification::none || d >= 1.0)
      continue;
    if (d <= 0.0) { // an explicit density of 0 drops the model's task vector for this tensor
      p.kind = gta_model_plan::drop_all;
      continue;
    }
    const auto keep = static_cast<std::int64_t>(std::floor(d * static_cast<double>(n)));
    switch (sparsify) {
    case sparsification::magnitude:
      FUSEKIT_EXPECTS(keep > 0, invalid_argument,
                      merge_where(mname, ctx) + ": " + model_label(i) + " density " + std::to_string(d) +
                          " keeps floor(density*n) = 0 of n = " + std::to_string(n) +
                          " elements (raise the density, or set it to 0 to drop this model explicitly)");
      p.kind = gta_model_plan::top;
      p.req_a = reqs.size();
      reqs.push_back({i, keep, -1.0});
      break;
    case sparsification::magnitude_outliers: {
      FUSEKIT_EXPECTS(keep > 0, invalid_argument,
                      merge_where(mname, ctx) + ": " + model_label(i) + " density " + std::to_string(d) +
                          " keeps floor(density*n) = 0 of n = " + std::to_string(n) + " elements");
      auto top = static_cast<std::int64_t>(std::floor(inputs[i].gamma * static_cast<double>(n)));
      std::int64_t bottom = n - keep - top;
      if (bottom < 0) {
        top += bottom;
        bottom = 0;
      }
      p.kind = gta_model_plan::band;
      p.req_a = reqs.size();
      reqs.push_back({i, top, -1.0});
      p.req_b = reqs.size();
      reqs.push_back({i, n - bottom, -1.0});
      break;
    }
    case sparsification::random: p.kind = gta_model_plan::random; break;
    case sparsification::della_magprune: {
      const double eps = inputs[i].epsilon;
      FUSEKIT_EXPECTS(std::isfinite(eps) && eps >= 0 && d - eps > 0 && d + eps < 1, invalid_argument,
                      merge_where(mname, ctx) + ": " + model_label(i) + " needs 0 < density - epsilon and density + "
                          "epsilon < 1, got density " + std::to_string(d) + ", epsilon " + std::to_string(eps));
      FUSEKIT_EXPECTS(Out::rank() <= 2, unsupported,
                      merge_where(mname, ctx) + ": della ranks magnitudes per row; tensors of rank " +
                          std::to_string(Out::rank()) + " are not supported (1-D and 2-D only)");
      p.kind = gta_model_plan::della;
      break;
    }
    case sparsification::none: break;
    }
  }

  // ---- exact top-k selections (magnitude, magnitude_outliers) ---------------------------------------------
  std::vector<block_topk> sel;
  if (!reqs.empty()) {
    std::vector<char> needs(N, 0);
    for (const auto& r : reqs)
      needs[r.stream] = 1;
#if FUSEKIT_CONVERT_X86 && defined(__AVX2__)
    const bool keys_bf16 = all_bf16<Base, In> && b_io.contiguous && in.all_contiguous();
#endif
    auto block_keys = [&](std::int64_t b, std::int64_t len, float* s, std::uint32_t* keys, std::int64_t kstride) {
#if FUSEKIT_CONVERT_X86 && defined(__AVX2__)
      if constexpr (all_bf16<Base, In>) {
        if (keys_bf16) { // straight from the bf16 rows (same keys, no widened copies)
          for (std::size_t i = 0; i < N; ++i)
            if (needs[i])
              delta_keys_bf16(base.data() + b, inputs[i].tensor.data() + b, len,
                              keys + i * static_cast<std::size_t>(kstride));
          return;
        }
      }
#endif
      float* bb = s;
      float* x = s + blk;
      b_io.load(b, len, bb);
      for (std::size_t i = 0; i < N; ++i) {
        if (!needs[i])
          continue;
        in.load(i, b, len, x);
        std::uint32_t* kk = keys + i * static_cast<std::size_t>(kstride);
        FUSEKIT_PRAGMA_SIMD
        for (std::int64_t j = 0; j < len; ++j)
          kk[j] = exec::magnitude_key(x[j] - bb[j]);
      }
    };
    auto key_at = [&](std::size_t i, std::int64_t e) { return exec::magnitude_key(in.at(i, e) - b_io.at(e)); };
    sel = select_top_k(policy, n, N, std::span<const topk_request>(reqs), blk, static_cast<std::size_t>(2 * blk),
                       block_keys, key_at, scratch_resource(ctx));
  }

  // ---- della bits (+ L1 sums), random bits + L1 sums, magnitude L1 sums ---------------------------------
  const bool l1 = rescale && rescale_by == rescale_mode::l1_norm;
  std::vector<double> l1_all(N, 0.0), l1_kept(N, 0.0);
  std::vector<char> have_l1(N, 0);
  // keep bits stored between passes (DELLA's, and DARE's when the L1 rescale needs them before the final
  // pass): one array for all such models, rather than one vector per model (benchmark A/B, three
  // alternations: dare_ties 14336×4096 with 4 inputs 116–118 → 104–106 ms, dare_linear 103–106 → 88–90 ms).
  // DELLA ORs its rows into zeroed words; DARE's statistics pass writes every word of its models, so their
  // part is left uninitialized and its pages are first touched there, by both threads, instead of by a
  // serial zero fill (fresh pages cost ~10 µs each on this project's VM: 7.3 MB at 14336×4096×8).
  const auto words_per_model = static_cast<std::size_t>((n + 63) / 64);
  scratch_array<std::uint64_t> bit_store;
  {
    auto stores_bits = [&](const gta_model_plan& p) {
      return p.kind == gta_model_plan::della || (p.kind == gta_model_plan::random && l1);
    };
    const auto stored = static_cast<std::size_t>(std::count_if(plan.begin(), plan.end(), stores_bits));
    if (stored > 0)
      bit_store = scratch_array<std::uint64_t>(scratch_resource(ctx), stored * words_per_model);
    std::size_t at = 0;
    for (auto& p : plan)
      if (stores_bits(p)) {
        p.bits = bit_store.get() + words_per_model * at++;
        if (p.kind == gta_model_plan::della)
          std::fill(p.bits, p.bits + words_per_model, std::uint64_t{0});
      }
  }
  if (std::any_of(plan.begin(), plan.end(), [](const gta_model_plan& p) { return p.kind == gta_model_plan::della; })) {
    const std::int64_t cols = Out::rank() == 1 ? n : out.extent(Out::rank() - 1);
    della_bits_all(policy, b_io, in, plan, inputs, cols > 0 ? n / cols : 0, cols, ctx, l1_all, l1_kept);
    for (std::size_t i = 0; i < N; ++i)
      have_l1[i] = plan[i].kind == gta_model_plan::della ? 1 : 0;
  }
  bool stats_pass = false;
  for (std::size_t i = 0; i < N; ++i) {
    const auto k = plan[i].kind;
    if (k == gta_model_plan::random && l1)
      stats_pass = true;
    if (l1 && (k == gta_model_plan::top || k == gta_model_plan::band))
      stats_pass = true;
  }
  // Computes keep[0..len) of model i for block bi (elements [b, b+len)), given d (= x − b) and key scratch.
  auto mark = [&](std::size_t i, std::int64_t bi, std::int64_t b, std::int64_t len, const float* d,
                  std::uint32_t* keys, float* keep, float* tmp) {
    const auto& p = plan[i];
    switch (p.kind) {
    case gta_model_plan::keep_all: std::fill(keep, keep + len, 1.0f); break;
    case gta_model_plan::drop_all: std::fill(keep, keep + len, 0.0f); break;
    case gta_model_plan::top:
    case gta_model_plan::band:
      FUSEKIT_PRAGMA_SIMD
      for (std::int64_t j = 0; j < len; ++j)
        keys[j] = exec::magnitude_key(d[j]);
      if (p.kind == gta_model_plan::top) {
        sel[p.req_a].mark(bi, keys, len, keep);
      } else {
        sel[p.req_b].mark(bi, keys, len, keep);
        sel[p.req_a].mark(bi, keys, len, tmp);
        FUSEKIT_PRAGMA_SIMD
        for (std::int64_t j = 0; j < len; ++j)
          keep[j] *= 1.0f - tmp[j];
      }
      break;
    case gta_model_plan::random:
      if (p.bits != nullptr) {
        unpack_bits(p.bits + b / 64, len, keep);
      } else { // blocks start at multiples of 64 and hold at most merge_block elements
        std::uint64_t words[merge_block / 64];
        fill_keep_bits(ctx.seed, model_stream(ctx.tensor_name, i), static_cast<std::uint64_t>(b), len,
                       static_cast<float>(p.density), words);
        unpack_bits(words, len, keep);
      }
      break;
    case gta_model_plan::della: unpack_bits(p.bits + b / 64, len, keep); break;
    }
  };
  if (stats_pass) {
    std::vector<double> partial(static_cast<std::size_t>(nblocks) * N * 2, 0.0);
    const std::size_t sf = static_cast<std::size_t>(blk) * 6;
#if FUSEKIT_CONVERT_X86 && defined(__AVX2__) && FUSEKIT_HAS_VECTOR_EXT
    const bool stats_bf16 = all_bf16<Base, In> && b_io.contiguous && in.all_contiguous();
#endif
    for_each_block_scratch(policy, n, blk, sf, [&](std::int64_t bi, std::int64_t b, std::int64_t e, float* s) {
      const std::int64_t len = e - b;
      float* bb = s;
      float* x = s + blk;
      float* keep = s + 2 * blk;
      float* tmp = s + 3 * blk;
      auto* keys = reinterpret_cast<std::uint32_t*>(s + 4 * blk);
      bool have_bb = false;
      for (std::size_t i = 0; i < N; ++i) {
        const auto k = plan[i].kind;
        if (!(k == gta_model_plan::top || k == gta_model_plan::band || k == gta_model_plan::random))
          continue;
        const std::size_t at = (static_cast<std::size_t>(bi) * N + i) * 2; // this block's two sums of model i
        std::uint64_t* words = nullptr; // random masks: drawn here, kept for the final pass (blocks own whole words)
        if (k == gta_model_plan::random) {
          words = plan[i].bits + b / 64;
#if FUSEKIT_CONVERT_X86 && defined(__AVX2__) && FUSEKIT_HAS_VECTOR_EXT
          if constexpr (all_bf16<Base, In>) {
            if (stats_bf16) { // the draws and both sums in one sweep over the bf16 rows
              keep_bits_l1_bf16(ctx.seed, model_stream(ctx.tensor_name, i), static_cast<std::uint64_t>(b), len,
                                static_cast<float>(plan[i].density), base.data() + b, inputs[i].tensor.data() + b,
                                words, partial[at], partial[at + 1]);
              continue;
            }
          }
#endif
          fill_keep_bits(ctx.seed, model_stream(ctx.tensor_name, i), static_cast<std::uint64_t>(b), len,
                         static_cast<float>(plan[i].density), words);
        }
        if (!have_bb) {
          b_io.load(b, len, bb);
          have_bb = true;
        }
        in.load(i, b, len, x);
        for (std::int64_t j = 0; j < len; ++j)
          x[j] -= bb[j];
        if (words != nullptr) {
          unpack_bits(words, len, keep);
        } else {
          mark(i, bi, b, len, x, keys, keep, tmp);
        }
        partial[at] = lane_sum(len, [&](std::int64_t j) { return std::abs(x[j]); });
        partial[at + 1] = lane_sum(len, [&](std::int64_t j) { return keep[j] * std::abs(x[j]); });
      }
    });
    const auto tot = sum_blocks(partial, N * 2);
    for (std::size_t i = 0; i < N; ++i) {
      const auto k = plan[i].kind;
      if (k == gta_model_plan::top || k == gta_model_plan::band || k == gta_model_plan::random) {
        l1_all[i] = tot[i * 2];
        l1_kept[i] = tot[i * 2 + 1];
        have_l1[i] = 1;
      }
    }
  }
  if (rescale) {
    for (std::size_t i = 0; i < N; ++i) {
      auto& p = plan[i];
      if (p.kind == gta_model_plan::keep_all || p.kind == gta_model_plan::drop_all)
        continue;
      if (rescale_by == rescale_mode::inverse_density) {
        p.scale = static_cast<float>(1.0 / p.density);
      } else if (have_l1[i] && l1_all[i] >= 1e-7 && l1_kept[i] >= 1e-7) { // mergekit: skip when either < 1e-7
        p.scale = static_cast<float>(l1_all[i] / l1_kept[i]);
      }
    }
  }

  // ---- final pass: sparsify, weight, elect, disjoint mean, normalize, lambda ------------------------------
  double wsum = 0;
  for (const auto& x : inputs)
    wsum += x.weight;
  const float scalar_div = (normalize && consensus == consensus_method::none)
                               ? static_cast<float>(std::abs(wsum) < 1e-8 ? 1.0 : wsum)
                               : 1.0f;
  const bool weighted_election = election == sign_election::weighted;
  const bool count_div = divisor == consensus_divisor::count;
  const float lam = lambda;
  const std::size_t sf = static_cast<std::size_t>(blk) * (N + 9);
#if FUSEKIT_CONVERT_X86 && defined(__AVX2__) && FUSEKIT_HAS_VECTOR_EXT
  // contiguous bf16 everywhere (the checkpoint case): blocks whose every keep mask is a key range and/or a
  // bit mask go through the register kernel (gta_final_bf16); the block where a tie quota runs out does not
  const bool bf16_regs = all_bf16<Out, Base, In> && o_io.contiguous && b_io.contiguous && in.all_contiguous();
  std::vector<const bf16*> xs;
  std::vector<gta_coeffs> coef;
  std::vector<std::uint64_t> streams;
  if constexpr (all_bf16<Out, Base, In>) {
    if (bf16_regs) {
      for (std::size_t i = 0; i < N; ++i) {
        xs.push_back(inputs[i].tensor.data());
        const float w = inputs[i].weight;
        coef.push_back({plan[i].scale, w, weighted_election ? w : 1.0f, count_div ? 1.0f : w});
        streams.push_back(model_stream(ctx.tensor_name, i));
      }
    }
  }
#endif
  for_each_block_scratch(policy, n, blk, sf, [&](std::int64_t bi, std::int64_t b, std::int64_t e, float* s) {
    const std::int64_t len = e - b;
#if FUSEKIT_CONVERT_X86 && defined(__AVX2__) && FUSEKIT_HAS_VECTOR_EXT
    if constexpr (all_bf16<Out, Base, In>) {
      if (bf16_regs) {
        // scratch: N rules, N × blk/64 words of keep bits for random masks drawn per block, 16·N floats
        auto* rules = reinterpret_cast<gta_keep_rule*>(s + 8 * blk);
        auto* words = reinterpret_cast<std::uint64_t*>(s + 8 * blk + 8 * N);
        float* tbuf = s + 8 * blk + 8 * N + 2 * N * static_cast<std::size_t>(blk / 64);
        static_assert(sizeof(gta_keep_rule) <= 8 * sizeof(float));
        bool ok = true;
        for (std::size_t i = 0; i < N && ok; ++i) {
          gta_keep_rule* r = new (rules + i) gta_keep_rule{};
          const auto& p = plan[i];
          switch (p.kind) {
          case gta_model_plan::keep_all: break;
          case gta_model_plan::drop_all: r->lo_m1 = std::numeric_limits<std::int32_t>::max(); break;
          case gta_model_plan::top: ok = selection_rule(sel[p.req_a], bi, r->lo_m1); break;
          case gta_model_plan::band:
            ok = selection_rule(sel[p.req_b], bi, r->lo_m1) && selection_rule(sel[p.req_a], bi, r->hi_m1);
            break;
          case gta_model_plan::random:
            if (p.bits == nullptr) { // drawn for this block, as mark() does
              std::uint64_t* wi = words + i * static_cast<std::size_t>(blk / 64);
              fill_keep_bits(ctx.seed, streams[i], static_cast<std::uint64_t>(b), len, static_cast<float>(p.density), wi);
              r->bits = wi;
              r->origin = b;
              break;
            }
            [[fallthrough]];
          case gta_model_plan::della: r->bits = p.bits; break;
          }
        }
        if (ok) {
          const gta_rule_kind kind = consensus == consensus_method::none  ? gta_rule_kind::none
                                     : consensus == consensus_method::sum ? gta_rule_kind::sum
                                                                          : gta_rule_kind::count;
          auto run = [&](auto k, auto shape) {
            gta_final_bf16<decltype(k)::value, decltype(shape)::value>(out.data(), base.data(), xs.data(), rules,
                                                                       coef.data(), N, normalize, scalar_div, lam, b,
                                                                       e, o_io.streaming, tbuf);
          };
          using rk = gta_rule_kind;
          using rs = gta_rule_shape;
          // TIES with mergekit's defaults (key floors) and DARE/DELLA (bit masks) skip the other rule tests
          const rs shape = rule_shape(rules, coef.data(), N);
          if (kind == rk::none && shape == rs::bit_mask)
            run(std::integral_constant<rk, rk::none>{}, std::integral_constant<rs, rs::bit_mask>{});
          else if (kind == rk::none)
            run(std::integral_constant<rk, rk::none>{}, std::integral_constant<rs, rs::general>{});
          else if (kind == rk::sum && shape == rs::key_floor)
            run(std::integral_constant<rk, rk::sum>{}, std::integral_constant<rs, rs::key_floor>{});
          else if (kind == rk::sum && shape == rs::bit_mask)
            run(std::integral_constant<rk, rk::sum>{}, std::integral_constant<rs, rs::bit_mask>{});
          else if (kind == rk::sum)
            run(std::integral_constant<rk, rk::sum>{}, std::integral_constant<rs, rs::general>{});
          else
            run(std::integral_constant<rk, rk::count>{}, std::integral_constant<rs, rs::general>{});
          return;
        }
      }
    }
#endif
    float* bb = s;
    float* x = s + blk;
    float* keep = s + 2 * blk;
    float* tmp = s + 3 * blk;
    float* S = s + 4 * blk;
    float* M = s + 5 * blk;
    float* D = s + 6 * blk;
    auto* keys = reinterpret_cast<std::uint32_t*>(s + 7 * blk);
    float* T = s + 8 * blk; // N rows of sparsified, rescaled deltas
    float* tmp2 = T + N * static_cast<std::size_t>(blk);
    if (e < n) { // the next block's inputs arrive while this one is merged (a hint; no effect on results)
      const std::int64_t nlen = std::min(blk, n - e);
      b_io.prefetch(e, nlen);
      for (std::size_t i = 0; i < N; ++i)
        in.prefetch(i, e, nlen);
    }
    b_io.load(b, len, bb);
    std::fill(S, S + len, 0.0f);
    std::fill(M, M + len, 0.0f);
    std::fill(D, D + len, 0.0f);
    for (std::size_t i = 0; i < N; ++i) {
      float* t = T + i * static_cast<std::size_t>(blk);
      in.load(i, b, len, x);
      const float sc = plan[i].scale, w = inputs[i].weight;
      const float ew = weighted_election ? w : 1.0f;
      // One fused loop per model: delta, keep mask, rescale, and the consensus input. t = masked(Δ·sc, keep)
      // equals keep·Δ·sc up to the sign of zeros, which no later step can see (zeros never agree, and
      // adding ±0 to a sum that starts at +0 gives the same value).
      auto fused = [&](auto&& keep_mask) {
        if (consensus == consensus_method::none) {
          FUSEKIT_PRAGMA_SIMD
          for (std::int64_t j = 0; j < len; ++j) {
            const float d = x[j] - bb[j];
            M[j] += w * masked(d * sc, keep_mask(j, d));
          }
        } else if (consensus == consensus_method::sum) {
          FUSEKIT_PRAGMA_SIMD
          for (std::int64_t j = 0; j < len; ++j) {
            const float d = x[j] - bb[j];
            const float tv = masked(d * sc, keep_mask(j, d));
            t[j] = tv;
            S[j] += ew * tv;
          }
        } else {
          FUSEKIT_PRAGMA_SIMD
          for (std::int64_t j = 0; j < len; ++j) {
            const float d = x[j] - bb[j];
            const float tv = masked(d * sc, keep_mask(j, d));
            t[j] = tv;
            const float v = ew * tv;
            S[j] += (v > 0.0f ? 1.0f : 0.0f) - (v < 0.0f ? 1.0f : 0.0f);
          }
        }
      };
      std::uint32_t lim = 0;
      if (plan[i].kind == gta_model_plan::keep_all) {
        fused([](std::int64_t, float) { return ~std::uint32_t{0}; });
      } else if (plan[i].kind == gta_model_plan::top && sel[plan[i].req_a].block_limit(bi, lim)) {
        fused([lim](std::int64_t, float d) { return 0u - static_cast<std::uint32_t>(exec::magnitude_key(d) >= lim); });
      } else {
        const auto k = plan[i].kind;
        if (k != gta_model_plan::della && k != gta_model_plan::random) { // those marks do not read the deltas
          FUSEKIT_PRAGMA_SIMD
          for (std::int64_t j = 0; j < len; ++j)
            tmp[j] = x[j] - bb[j];
        }
        mark(i, bi, b, len, tmp, keys, keep, tmp2);
        fused([keep](std::int64_t j, float) { return positive_mask(keep[j]); });
      }
    }
    if (consensus != consensus_method::none) {
      // elected sign as ±1 (ties → +); an entry agrees when e·σ > 0 (exact zeros never agree)
      FUSEKIT_PRAGMA_SIMD
      for (std::int64_t j = 0; j < len; ++j)
        S[j] = elected_sign(S[j]);
      for (std::size_t i = 0; i < N; ++i) {
        const float* t = T + i * static_cast<std::size_t>(blk);
        const float w = inputs[i].weight;
        const float ew = weighted_election ? w : 1.0f;
        const float dw = count_div ? 1.0f : w;
        FUSEKIT_PRAGMA_SIMD
        for (std::int64_t j = 0; j < len; ++j) {
          const std::uint32_t agree = positive_mask(ew * t[j] * S[j]);
          M[j] += masked(w * t[j], agree);
          D[j] += masked(dw, agree);
        }
      }
      if (normalize) {
        // D + (D == 0) is D, or 1 where no model agreed (then M is 0): the same values as a select, but GCC
        // 12 leaves `D == 0 ? 1 : D` scalar (IEEE trapping), and a scalar divide per element was 40% of a
        // TIES merge's CPU time.
        FUSEKIT_PRAGMA_SIMD
        for (std::int64_t j = 0; j < len; ++j)
          M[j] = M[j] / (D[j] + static_cast<float>(D[j] == 0.0f));
      }
    } else if (normalize) {
      FUSEKIT_PRAGMA_SIMD
      for (std::int64_t j = 0; j < len; ++j)
        M[j] = M[j] / scalar_div;
    }
    FUSEKIT_PRAGMA_SIMD
    for (std::int64_t j = 0; j < len; ++j)
      M[j] = bb[j] + lam * M[j];
    o_io.store(b, len, M);
  });
}

} // namespace fusekit

namespace fusekit::detail {
/// Runs the GTA pipeline for a method value `m` with members lambda, normalize, rescale, election, divisor,
/// rescale_by (the mergekit-named GTA methods all have them).
template <class M, class P, class Out, class Base, class In>
void run_gta(const M& m, sparsification sp, consensus_method cm, const P& policy, const Out& out, const Base& base,
             std::span<const merge_input<In>> inputs, const merge_context& ctx) {
  generalized_task_arithmetic g;
  g.sparsify = sp;
  g.consensus = cm;
  g.lambda = m.lambda;
  g.normalize = m.normalize;
  g.rescale = m.rescale;
  g.election = m.election;
  g.divisor = m.divisor;
  g.rescale_by = m.rescale_by;
  g.method_name = M::name;
  g.apply(policy, out, base, inputs, ctx);
}
} // namespace fusekit::detail
