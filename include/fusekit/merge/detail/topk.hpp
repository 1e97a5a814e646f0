/// @file
/// @brief Internal: exact top-k selections over per-element keys of several "streams" (one per model, or one
/// computed from all models), decided block by block in the final pass.
///
/// Semantics (the documented tie order): the elements are ordered by key descending and, among equal keys,
/// by linear index ascending; the top-k set is the first k in that order, so exactly k survive, always the
/// same ones, for any policy and thread count.
///
/// Algorithm: for large tensors a deterministic sample (runs of 64 consecutive elements, 1/64 of the
/// tensor) brackets each k-th largest key; one pass over the data counts the keys above the bracket and
/// collects the keys inside it (about 1% of the elements) with their indices; the exact threshold is then
/// selected among the candidates. If the bracket missed (possible only for adversarial value layouts), or
/// the tensor is small, an exact two-pass radix selection (exec::select_kth_largest) runs instead.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <memory_resource>
#include <span>
#include <vector>

#include <fusekit/exec/select.hpp>
#include <fusekit/merge/detail/kernels.hpp>
#include <fusekit/merge/detail/scratch.hpp>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace fusekit::detail {

/// One top-k request: keep the k largest keys of stream `stream`. If `nonzero_fraction >= 0`, k is instead
/// floor(nonzero_fraction · #(keys != 0)), counted exactly during the selection (SCE's rule).
struct topk_request {
  std::size_t stream = 0;
  std::int64_t k = 0;
  double nonzero_fraction = -1.0;
};

/// A resolved top-k set with per-block tie quotas for the final pass (blocks of `block` elements).
struct block_topk {
  std::int64_t n = 0, k = 0;
  std::uint32_t threshold = 0;
  std::int64_t ties_to_keep = 0;
  bool keep_all_ties = true;
  std::int64_t block = 1;
  std::vector<std::int64_t> ties_before; ///< per block (+1 entry): ties in earlier blocks (only if !keep_all_ties)

  /// When block bi is decided by one key threshold (keep exactly the keys >= *lim), stores it and returns
  /// true; false for the one block where a tie quota runs out and when nothing is kept (use mark()). Lets the
  /// caller fuse the compare into its own loop. Keys must be below 2^32 − 1 (magnitude keys are < 2^31).
  [[nodiscard]] bool block_limit(std::int64_t bi, std::uint32_t& lim) const noexcept {
    if (k <= 0)
      return false;
    if (k >= n) {
      lim = 0;
      return true;
    }
    if (keep_all_ties) {
      lim = threshold;
      return true;
    }
    const std::int64_t before = ties_before[static_cast<std::size_t>(bi)];
    const std::int64_t after = ties_before[static_cast<std::size_t>(bi) + 1];
    if (after <= ties_to_keep || before >= ties_to_keep) {
      lim = after <= ties_to_keep ? threshold : threshold + 1;
      return true;
    }
    return false;
  }

  /// keep[j] = 1 when element (block bi, offset j) is in the set, given the block's keys.
  void mark(std::int64_t bi, const std::uint32_t* keys, std::int64_t len, float* keep) const noexcept {
    if (k <= 0) {
      std::fill(keep, keep + len, 0.0f);
      return;
    }
    if (k >= n) {
      std::fill(keep, keep + len, 1.0f);
      return;
    }
    const std::uint32_t t = threshold;
    if (keep_all_ties) {
      FUSEKIT_PRAGMA_SIMD
      for (std::int64_t j = 0; j < len; ++j)
        keep[j] = masked(1.0f, 0u - static_cast<std::uint32_t>(keys[j] >= t));
      return;
    }
    const std::int64_t before = ties_before[static_cast<std::size_t>(bi)];
    const std::int64_t after = ties_before[static_cast<std::size_t>(bi) + 1];
    if (after <= ties_to_keep || before >= ties_to_keep) { // every tie of this block is kept, or none is
      const std::uint32_t lim = after <= ties_to_keep ? t : t + 1; // keep keys >= lim
      FUSEKIT_PRAGMA_SIMD
      for (std::int64_t j = 0; j < len; ++j)
        keep[j] = masked(1.0f, 0u - static_cast<std::uint32_t>(keys[j] >= lim));
      return;
    }
    // the block where the quota runs out: branch-free running count of the ties
    std::int64_t seen = before;
    for (std::int64_t j = 0; j < len; ++j) {
      const std::int64_t eq = keys[j] == t ? 1 : 0;
      keep[j] = (keys[j] > t || (eq & static_cast<std::int64_t>(seen < ties_to_keep))) ? 1.0f : 0.0f;
      seen += eq;
    }
  }
};

/// The values at up to three ranks (1-based from the largest; rank 0 = not wanted) of `v`: a histogram of
/// the top 11 bits finds each rank's bin, then nth_element runs only on that bin's values.
inline void sample_ranks(std::span<const std::uint32_t> v, const std::int64_t (&want)[3], std::uint32_t (&got)[3],
                         std::vector<std::int64_t>& hist) {
  constexpr unsigned shift = 21;
  std::fill(hist.begin(), hist.end(), 0);
  for (std::uint32_t x : v)
    ++hist[x >> shift];
  std::int64_t bin[3] = {-1, -1, -1}, resid[3] = {0, 0, 0};
  for (int q = 0; q < 3; ++q) {
    if (want[q] <= 0)
      continue;
    std::int64_t acc = 0;
    for (std::size_t h = hist.size(); h-- > 0;) {
      if (acc + hist[h] >= want[q]) {
        bin[q] = static_cast<std::int64_t>(h);
        resid[q] = want[q] - acc;
        break;
      }
      acc += hist[h];
    }
  }
  std::vector<std::uint32_t> in_bin[3];
  for (int q = 0; q < 3; ++q)
    if (bin[q] >= 0)
      in_bin[q].reserve(static_cast<std::size_t>(hist[static_cast<std::size_t>(bin[q])]));
  for (std::uint32_t x : v) {
    const auto b = static_cast<std::int64_t>(x >> shift);
    for (int q = 0; q < 3; ++q)
      if (b == bin[q])
        in_bin[q].push_back(x);
  }
  for (int q = 0; q < 3; ++q) {
    if (bin[q] < 0)
      continue;
    auto& w = in_bin[q];
    std::nth_element(w.begin(), w.begin() + (resid[q] - 1), w.end(), std::greater<>());
    got[q] = w[static_cast<std::size_t>(resid[q] - 1)];
  }
}

/// Counts of one block's keys against a request's bracket: keys above `hi`, equal to `hi`, `lo` and `mid`.
struct bracket_counts {
  std::int32_t above = 0, eq_hi = 0, eq_lo = 0, eq_mid = 0;
};

#if defined(__AVX2__)
/// bracket_scan's vector part: whole groups of 16 keys (then one of 8) from kk, counts added to `cnt`;
/// returns the number of keys covered. The keys and the bracket are compared with the sign bit flipped
/// (signed compares then order any 32-bit key); a group's candidates are remembered as a bit mask,
/// branch-free (a branch on "any candidate here" would be taken at random, in ~1 group of 16), and appended
/// in batches.
template <bool HasMid, bool Collect, class Cand>
FUSEKIT_FORCEINLINE std::int64_t bracket_scan_avx2(const std::uint32_t* kk, std::int64_t len, std::uint32_t l,
                                                   std::uint32_t h, std::uint32_t m, Cand* o, std::size_t& c,
                                                   std::uint32_t bid, bracket_counts& cnt) noexcept {
  const __m256i flip = _mm256_set1_epi32(static_cast<int>(0x80000000u));
  const __m256i hb = _mm256_set1_epi32(static_cast<int>(h ^ 0x80000000u));
  const __m256i lb = _mm256_set1_epi32(static_cast<int>(l ^ 0x80000000u));
  const __m256i mb = _mm256_set1_epi32(static_cast<int>(m ^ 0x80000000u));
  __m256i A = _mm256_setzero_si256(), EH = A, EL = A, EM = A;
  constexpr int max_groups = 64;
  std::uint32_t grp_bits[max_groups], grp_at[max_groups];
  int ng = 0;
  // the candidates of the `width` keys at `at` (bit t of `bits`: key at + t), branch-free, in element order
  auto append = [&](std::int64_t at, std::uint32_t bits, std::uint32_t width) {
    for (std::uint32_t t = 0; t < width; ++t) {
      o[c] = Cand{kk[at + t], bid};
      c += (bits >> t) & 1u;
    }
  };
  auto flush = [&] { // the remembered groups of 16
    for (int g = 0; g < ng; ++g)
      append(grp_at[g], grp_bits[g], 16);
    ng = 0;
  };
  // counts of 8 keys at j; returns the candidate bits (Collect)
  auto step8 = [&](std::int64_t j) -> std::uint32_t {
    const __m256i kb = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(kk + j)), flip);
    const __m256i gh = _mm256_cmpgt_epi32(kb, hb), eh = _mm256_cmpeq_epi32(kb, hb);
    A = _mm256_sub_epi32(A, gh);
    EH = _mm256_sub_epi32(EH, eh);
    EL = _mm256_sub_epi32(EL, _mm256_cmpeq_epi32(kb, lb));
    __m256i em = _mm256_setzero_si256();
    if constexpr (HasMid) {
      em = _mm256_cmpeq_epi32(kb, mb);
      EM = _mm256_sub_epi32(EM, em);
    }
    if constexpr (Collect) { // inside: k > l and not (k > h, k == h or the mid atom)
      __m256i out = _mm256_or_si256(gh, eh);
      if constexpr (HasMid)
        out = _mm256_or_si256(out, em);
      const __m256i in = _mm256_andnot_si256(out, _mm256_cmpgt_epi32(kb, lb));
      return static_cast<std::uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(in)));
    }
    return 0;
  };
  // groups of 16 keys: one remembered group (index, 16-bit mask) per 16 (the bookkeeping per 8 keys had
  // been a third of the loop's instructions)
  std::int64_t j = 0;
  for (; j + 16 <= len; j += 16) {
    const std::uint32_t bits = step8(j) | (step8(j + 8) << 8);
    if constexpr (Collect) {
      grp_bits[ng] = bits;
      grp_at[ng] = static_cast<std::uint32_t>(j);
      ng += bits != 0 ? 1 : 0;
      if (ng == max_groups)
        flush();
    }
  }
  if constexpr (Collect)
    flush();
  for (; j + 8 <= len; j += 8) {
    const std::uint32_t bits = step8(j);
    if constexpr (Collect)
      append(j, bits, 8);
  }
  auto hsum = [](__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
  };
  cnt.above += hsum(A);
  cnt.eq_hi += hsum(EH);
  cnt.eq_lo += hsum(EL);
  if constexpr (HasMid)
    cnt.eq_mid += hsum(EM);
  return j;
}
#endif

/// One pass over keys kk[0, len) of block `bid` against the bracket [l, h] with its mid atom m (used only when
/// has_mid): adds #(k > h), #(k == h), #(k == l) and #(k == m) to `cnt`, and appends every key strictly inside
/// (l, h), other than m, as {key, bid} to `o` in element order. Returns how many it appended (o must have
/// room for len). With AVX2, 16 keys per step (bracket_scan_avx2).
template <class Cand>
FUSEKIT_FORCEINLINE std::size_t bracket_scan(const std::uint32_t* kk, std::int64_t len, std::uint32_t l, std::uint32_t h,
                                             std::uint32_t m, bool has_mid, Cand* o, std::uint32_t bid,
                                             bracket_counts& cnt) noexcept {
  const bool collect = h > l && h - l >= 2;
  std::size_t c = 0;
  std::int64_t j = 0;
#if defined(__AVX2__)
  if (has_mid)
    j = collect ? bracket_scan_avx2<true, true>(kk, len, l, h, m, o, c, bid, cnt)
                : bracket_scan_avx2<true, false>(kk, len, l, h, m, o, c, bid, cnt);
  else
    j = collect ? bracket_scan_avx2<false, true>(kk, len, l, h, m, o, c, bid, cnt)
                : bracket_scan_avx2<false, false>(kk, len, l, h, m, o, c, bid, cnt);
#endif
  std::int32_t a = 0, eh = 0, el = 0, em = 0;
  for (; j < len; ++j) {
    const std::uint32_t k = kk[j];
    a += k > h ? 1 : 0;
    eh += k == h ? 1 : 0;
    el += k == l ? 1 : 0;
    em += has_mid && k == m ? 1 : 0;
    if (collect) {
      o[c] = Cand{k, bid};
      c += k > l && k < h && !(has_mid && k == m) ? 1 : 0;
    }
  }
  cnt.above += a;
  cnt.eq_hi += eh;
  cnt.eq_lo += el;
  cnt.eq_mid += em;
  return c;
}

/// Resolves every request. `block_keys(b, len, scratch, keys)` writes the keys of elements [b, b+len) of all
/// `nstreams` streams to keys[s*block + j], j in [0, len), in any order within the block (only which keys a
/// block holds matters here; it may use `scratch`, `scratch_floats` floats); `key_at(s, e)`
/// returns one key (random access, used only by the exact fallback). `block` is the final pass's block length.
/// The candidate lists (about 1% of the keys, 8 bytes each) come from `mr` (merge_context::scratch).
template <class P, class BlockKeys, class KeyAt>
std::vector<block_topk> select_top_k(const P& policy, std::int64_t n, std::size_t nstreams,
                                     std::span<const topk_request> reqs, std::int64_t block,
                                     std::size_t scratch_floats, BlockKeys&& block_keys, KeyAt&& key_at,
                                     std::pmr::memory_resource* mr = std::pmr::new_delete_resource()) {
  const std::size_t R = reqs.size();
  std::vector<block_topk> out(R);
  const std::int64_t nblocks = block_count(n, block);
  for (std::size_t r = 0; r < R; ++r) {
    out[r].n = n;
    out[r].block = block;
  }
  if (n <= 0 || R == 0)
    return out;

  // ---- nonzero counts (needed only by nonzero_fraction requests) and the sample --------------------
  const bool need_nnz = std::any_of(reqs.begin(), reqs.end(), [](const topk_request& q) { return q.nonzero_fraction >= 0; });
  constexpr std::int64_t run = 64, stride_runs = 64, small_n = 1 << 16;
  const bool sampled = n >= small_n;

  // Bracket per request: [lo, hi] (inclusive) expected to contain the k-th largest key.
  std::vector<std::uint32_t> lo(R, 0), hi(R, std::numeric_limits<std::uint32_t>::max());
  // the sample's value at the expected rank: counted per block like the ends when it lies strictly inside
  // the bracket (a quantized distribution puts a heavy atom there), instead of becoming candidates
  std::vector<std::uint32_t> mid(R, 0);
  std::vector<char> has_mid(R, 0);
  std::vector<char> active(R, 0);
  std::vector<double> cand_share(R, 0.0);
  if (sampled) {
    const std::int64_t nruns = (n + run * stride_runs - 1) / (run * stride_runs);
    const scratch_array<std::uint32_t> sample(mr, static_cast<std::size_t>(nruns * run) * nstreams);
    std::vector<std::int64_t> run_len(static_cast<std::size_t>(nruns));
    const std::size_t sf = scratch_floats + nstreams * static_cast<std::size_t>(run);
    for_each_block_scratch(policy, nruns, 1, sf, [&](std::int64_t ri, std::int64_t, std::int64_t, float* s) {
      const std::int64_t b = ri * run * stride_runs, len = std::min(run, n - b);
      auto* keys = reinterpret_cast<std::uint32_t*>(s + scratch_floats);
      block_keys(b, len, s, keys, run);
      for (std::size_t st = 0; st < nstreams; ++st)
        std::copy(keys + st * run, keys + st * run + len,
                  sample.get() + (st * static_cast<std::size_t>(nruns) + static_cast<std::size_t>(ri)) * run);
      run_len[static_cast<std::size_t>(ri)] = len;
    });
    // Compact the (possibly short) last run and estimate each bracket (requests in parallel: each reads
    // its stream's sample and writes only its own entries)
    const std::int64_t s_total = (nruns - 1) * run + run_len.back();
    exec::for_each_n(policy, static_cast<std::int64_t>(R), [&](std::int64_t ri) {
      const auto r = static_cast<std::size_t>(ri);
      std::vector<std::int64_t> hist(2048);
      const std::size_t st = reqs[r].stream;
      const std::span<const std::uint32_t> tmp(sample.get() + st * static_cast<std::size_t>(nruns) * run,
                                               static_cast<std::size_t>(s_total));
      double k_est = static_cast<double>(reqs[r].k);
      if (reqs[r].nonzero_fraction >= 0) {
        const auto nz = std::count_if(tmp.begin(), tmp.end(), [](std::uint32_t x) { return x != 0; });
        k_est = std::floor(reqs[r].nonzero_fraction * static_cast<double>(nz) * static_cast<double>(n) / static_cast<double>(s_total));
      }
      if (reqs[r].nonzero_fraction < 0 && (reqs[r].k <= 0 || reqs[r].k >= n))
        return;
      const double p = std::clamp(k_est / static_cast<double>(n), 0.0, 1.0);
      const double s = static_cast<double>(s_total);
      const double centre = p * s, margin = 6.0 * std::sqrt(s * p * (1.0 - p)) + 32.0 + 0.001 * s;
      const auto hi_rank = static_cast<std::int64_t>(std::floor(centre - margin)); // 1-based rank from the top
      const auto lo_rank = static_cast<std::int64_t>(std::ceil(centre + margin));
      // the sample's values at three ranks (1-based from the top): one 2048-bin histogram of the top bits,
      // then nth_element inside the (few) bins that hold the ranks, instead of three nth_elements over it all
      const auto mid_rank = std::clamp<std::int64_t>(static_cast<std::int64_t>(std::llround(centre)), 1, s_total);
      const std::int64_t from = std::max<std::int64_t>(hi_rank, 0);
      const std::int64_t want[3] = {hi_rank >= 1 ? hi_rank : 0, mid_rank > from ? mid_rank : 0,
                                    lo_rank <= s_total ? lo_rank : 0};
      std::uint32_t got[3] = {0, 0, 0};
      sample_ranks(tmp, want, got, hist);
      hi[r] = want[0] > 0 ? got[0] : std::numeric_limits<std::uint32_t>::max();
      mid[r] = want[1] > 0 ? got[1] : hi[r];
      lo[r] = want[2] > 0 ? got[2] : 0u;
      has_mid[r] = lo[r] < mid[r] && mid[r] < hi[r];
      active[r] = 1;
      // expected share of candidates (keys strictly inside the bracket, not the mid atom), to size buffers once
      std::int64_t inside = 0;
      const std::uint32_t ilo = lo[r], ihi = hi[r], imid = has_mid[r] ? mid[r] : lo[r];
      for (std::uint32_t x : tmp)
        inside += static_cast<std::int64_t>((x > ilo) & (x < ihi) & (x != imid));
      cand_share[r] = static_cast<double>(inside) / static_cast<double>(s_total);
    });
  }

  // ---- one collection pass: per request, keys above the bracket, per-block counts of keys equal to its ends
  // (heavy ties, e.g. quantized bf16 deltas, then cost no memory), candidates strictly inside it; nonzero counts
  const std::int64_t workers = std::clamp<std::int64_t>(policy.concurrency(), 1, std::max<std::int64_t>(nblocks, 1));
  struct cand { // 8 bytes: the block is all the resolution needs of the position
    std::uint32_t key;
    std::uint32_t block;
  };
  struct cand_list { // growable buffer without value-initialization (appends are branch-free)
    scratch_array<cand> buf;
    std::size_t n = 0, cap = 0;
    void room(std::pmr::memory_resource* mr, std::size_t more) {
      if (n + more <= cap)
        return;
      const std::size_t c = std::max(cap * 2, n + more);
      scratch_array<cand> b(mr, c);
      std::copy(buf.get(), buf.get() + n, b.get());
      buf = std::move(b);
      cap = c;
    }
    [[nodiscard]] std::size_t size() const noexcept { return n; }
    [[nodiscard]] const cand* begin() const noexcept { return buf.get(); }
    [[nodiscard]] const cand* end() const noexcept { return buf.get() + n; }
  };
  std::vector<std::vector<cand_list>> cands(static_cast<std::size_t>(workers));
  for (auto& c : cands)
    c.resize(R);
  std::vector<std::int64_t> above(static_cast<std::size_t>(workers) * R, 0);
  std::vector<std::int64_t> nnz(static_cast<std::size_t>(workers) * nstreams, 0);
  std::vector<std::vector<std::int32_t>> eq_hi(R), eq_lo(R), eq_mid(R); // per block
  const bool any_active = std::any_of(active.begin(), active.end(), [](char a) { return a != 0; });
  for (std::size_t r = 0; r < R; ++r)
    if (active[r]) {
      eq_hi[r].assign(static_cast<std::size_t>(nblocks), 0);
      eq_lo[r].assign(static_cast<std::size_t>(nblocks), 0);
      eq_mid[r].assign(static_cast<std::size_t>(nblocks), 0);
    }
  if (any_active || need_nnz) {
    const std::int64_t per = (nblocks + workers - 1) / workers;
    const std::size_t sf = scratch_floats + nstreams * static_cast<std::size_t>(block);
    std::unique_ptr<float[]> scratch(new float[static_cast<std::size_t>(workers) * sf]);
    exec::for_each_n(policy, workers, [&](std::int64_t w) {
      float* s = scratch.get() + static_cast<std::size_t>(w) * sf;
      auto* keys = reinterpret_cast<std::uint32_t*>(s + scratch_floats);
      auto& my = cands[static_cast<std::size_t>(w)];
      const std::int64_t my_elems = std::max<std::int64_t>(0, std::min(nblocks, (w + 1) * per) - w * per) * block;
      for (std::size_t r = 0; r < R; ++r)
        if (active[r])
          my[r].room(mr, static_cast<std::size_t>(cand_share[r] * 1.25 * static_cast<double>(my_elems)) + static_cast<std::size_t>(block));
      for (std::int64_t bi = w * per; bi < std::min(nblocks, (w + 1) * per); ++bi) {
        const std::int64_t b = bi * block, len = std::min(block, n - b);
        block_keys(b, len, s, keys, block);
        if (need_nnz)
          for (std::size_t st = 0; st < nstreams; ++st) {
            std::int64_t c = 0;
            const std::uint32_t* kk = keys + st * static_cast<std::size_t>(block);
            FUSEKIT_PRAGMA_SIMD
            for (std::int64_t j = 0; j < len; ++j)
              c += kk[j] != 0 ? 1 : 0;
            nnz[static_cast<std::size_t>(w) * nstreams + st] += c;
          }
        for (std::size_t r = 0; r < R; ++r) {
          if (!active[r])
            continue;
          bracket_counts cnt;
          cand_list& cl = my[r];
          cl.room(mr, static_cast<std::size_t>(len));
          cl.n += bracket_scan(keys + reqs[r].stream * static_cast<std::size_t>(block), len, lo[r], hi[r], mid[r],
                               has_mid[r] != 0, cl.buf.get() + cl.n, static_cast<std::uint32_t>(bi), cnt);
          above[static_cast<std::size_t>(w) * R + r] += cnt.above;
          eq_hi[r][static_cast<std::size_t>(bi)] = cnt.eq_hi;
          eq_lo[r][static_cast<std::size_t>(bi)] = cnt.eq_lo;
          eq_mid[r][static_cast<std::size_t>(bi)] = cnt.eq_mid;
        }
      }
    });
  }
  std::vector<std::int64_t> nnz_total(nstreams, 0);
  for (std::int64_t w = 0; w < workers; ++w)
    for (std::size_t st = 0; st < nstreams; ++st)
      nnz_total[st] += nnz[static_cast<std::size_t>(w) * nstreams + st];

  // prefix sums of per-block counts -> ties_before
  auto ties_from_blocks = [&](block_topk& t, const std::vector<std::int32_t>& per_block) {
    t.ties_before.assign(static_cast<std::size_t>(nblocks) + 1, 0);
    std::int64_t acc = 0;
    for (std::int64_t bi = 0; bi < nblocks; ++bi) {
      t.ties_before[static_cast<std::size_t>(bi)] = acc;
      acc += per_block[static_cast<std::size_t>(bi)];
    }
    t.ties_before[static_cast<std::size_t>(nblocks)] = acc;
  };

  // threshold = the k-th largest key; `keys` holds every key in its range and `above` keys lie above that
  // range: counts the keys above and at the threshold to get the tie quota
  auto set_threshold = [](block_topk& t, std::uint32_t threshold, const std::vector<std::uint32_t>& keys,
                          std::int64_t above) {
    t.threshold = threshold;
    std::int64_t greater = above, equal = 0;
    for (std::uint32_t x : keys) {
      greater += x > threshold;
      equal += x == threshold;
    }
    t.ties_to_keep = t.k - greater;
    t.keep_all_ties = t.ties_to_keep == equal;
  };

  // ---- resolve each request ----------------------------------------------------------------------------
  std::vector<std::uint32_t> keys_tmp;
  for (std::size_t r = 0; r < R; ++r) {
    block_topk& t = out[r];
    std::int64_t k = reqs[r].k;
    if (reqs[r].nonzero_fraction >= 0)
      k = static_cast<std::int64_t>(std::floor(reqs[r].nonzero_fraction * static_cast<double>(nnz_total[reqs[r].stream])));
    t.k = std::clamp<std::int64_t>(k, 0, n);
    if (t.k == 0 || t.k == n)
      continue;
    bool done = false;
    if (active[r]) {
      // Walk the levels of the bracket from the top: keys above h | == h | candidates in (mid, h) | == mid |
      // candidates in (l, mid) | == l (without a mid atom the two candidate ranges are one).
      const std::uint32_t l = lo[r], h = hi[r], m = mid[r];
      const bool hm = has_mid[r] != 0;
      std::int64_t cum = 0, n_hi = 0, n_lo = 0, n_mid = 0;
      for (std::int64_t w = 0; w < workers; ++w)
        cum += above[static_cast<std::size_t>(w) * R + r];
      for (std::int64_t bi = 0; bi < nblocks; ++bi) {
        n_hi += eq_hi[r][static_cast<std::size_t>(bi)];
        n_lo += eq_lo[r][static_cast<std::size_t>(bi)];
        n_mid += eq_mid[r][static_cast<std::size_t>(bi)];
      }
      if (l == h)
        n_lo = 0; // the same keys
      auto atom = [&](std::uint32_t value, std::int64_t count, const std::vector<std::int32_t>& per_block) {
        if (done || count == 0)
          return;
        if (cum < t.k && t.k <= cum + count) {
          t.threshold = value;
          t.ties_to_keep = t.k - cum;
          t.keep_all_ties = t.ties_to_keep == count;
          if (!t.keep_all_ties)
            ties_from_blocks(t, per_block);
          done = true;
        }
        cum += count;
      };
      auto range = [&](std::uint32_t above_key, std::uint32_t below_key) { // candidates in (above_key, below_key)
        if (done)
          return;
        keys_tmp.clear();
        for (std::int64_t w = 0; w < workers; ++w)
          for (const cand& c : cands[static_cast<std::size_t>(w)][r])
            if (c.key > above_key && c.key < below_key)
              keys_tmp.push_back(c.key);
        const auto cnt = static_cast<std::int64_t>(keys_tmp.size());
        if (cum < t.k && t.k <= cum + cnt) {
          const std::int64_t want = t.k - cum; // want-th largest in this range
          std::nth_element(keys_tmp.begin(), keys_tmp.begin() + (want - 1), keys_tmp.end(), std::greater<>());
          set_threshold(t, keys_tmp[static_cast<std::size_t>(want - 1)], keys_tmp, cum);
          if (!t.keep_all_ties) {
            std::vector<std::int32_t> per_block(static_cast<std::size_t>(nblocks), 0);
            for (std::int64_t w = 0; w < workers; ++w)
              for (const cand& c : cands[static_cast<std::size_t>(w)][r])
                if (c.key == t.threshold)
                  ++per_block[c.block];
            ties_from_blocks(t, per_block);
          }
          done = true;
        }
        cum += cnt;
      };
      if (cum < t.k) { // otherwise the bracket missed (fallback below)
        atom(h, n_hi, eq_hi[r]);
        if (hm) {
          range(m, h);
          atom(m, n_mid, eq_mid[r]);
          range(l, m);
        } else {
          range(l, h);
        }
        if (l != h)
          atom(l, n_lo, eq_lo[r]);
      }
    }
    if (!done && n < small_n) { // small tensor: select on a copy of the keys
      const std::size_t st = reqs[r].stream;
      keys_tmp.resize(static_cast<std::size_t>(n));
      for (std::int64_t e = 0; e < n; ++e)
        keys_tmp[static_cast<std::size_t>(e)] = key_at(st, e);
      std::vector<std::uint32_t> sorted = keys_tmp;
      std::nth_element(sorted.begin(), sorted.begin() + (t.k - 1), sorted.end(), std::greater<>());
      set_threshold(t, sorted[static_cast<std::size_t>(t.k - 1)], keys_tmp, 0);
      if (!t.keep_all_ties) {
        std::vector<std::int32_t> per_block(static_cast<std::size_t>(nblocks), 0);
        for (std::int64_t e = 0; e < n; ++e)
          per_block[static_cast<std::size_t>(e / block)] += keys_tmp[static_cast<std::size_t>(e)] == t.threshold;
        ties_from_blocks(t, per_block);
      }
      done = true;
    }
    if (!done) { // exact radix selection (a missed bracket)
      const std::size_t st = reqs[r].stream;
      auto key = [&](std::int64_t e) { return key_at(st, e); };
      const exec::kth_result kr = exec::select_kth_largest(policy, n, t.k, key);
      t.threshold = kr.key;
      t.ties_to_keep = t.k - kr.greater;
      t.keep_all_ties = t.ties_to_keep == kr.equal;
      if (!t.keep_all_ties) {
        std::vector<std::int32_t> per_block(static_cast<std::size_t>(nblocks), 0);
        exec::for_each_n(policy, nblocks, [&](std::int64_t bi) {
          std::int32_t c = 0;
          for (std::int64_t e = bi * block; e < std::min(n, (bi + 1) * block); ++e)
            c += key(e) == t.threshold;
          per_block[static_cast<std::size_t>(bi)] = c;
        });
        ties_from_blocks(t, per_block);
      }
    }
  }
  return out;
}

} // namespace fusekit::detail
