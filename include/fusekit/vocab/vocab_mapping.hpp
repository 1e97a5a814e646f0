#pragma once
/// @file
/// Vocabulary mappings source id -> pivot id: EM (exact match) and MinED (minimum edit distance).
///
/// Both compare **raw vocabulary strings** after marker substitution `subst(x)` (every source marker
/// replaced by the pivot marker), as FuseLLM's `vocab_mapping.py` and FuseChat's
/// `align_token_and_vocab.py` do (reference §1.4).
///
/// * **EM** ("hard"): `map[v] = id of subst(raw_S(v))` in the pivot vocabulary, or -1.
/// * **MinED** ("soft"), the correct FuseLLM rule: the exact match if there is one, else the pivot token
///   `y` minimising `lev(subst(raw_S(v)), raw_P(y))` over code points, the **first** minimum in pivot id
///   order. (FuseChat's released "soft" table is broken — `argmin` of a scalar maps every non-exact token
///   to the first pivot entry; fusekit does not reproduce that.) Pivot candidates are all tokens of the
///   pivot vocabulary, specials included, in ascending id order (FuseLLM iterates `get_vocab()`, whose
///   order is a hash order for fast tokenizers; ascending id is the deterministic choice).
///
/// MinED is exact but pruned: pivot tokens are bucketed by code-point length; `|len(a) - len(b)|` is a
/// lower bound of the distance, so a bucket is skipped when its bound exceeds the best distance so far,
/// and scanned only below the best id when the bound ties it. The search stops as soon as distance 1 is
/// reached (0 is impossible without an exact match). A second lower bound from 64-bit character
/// signatures (symbols present in one string and absent from the other) skips most remaining pairs
/// without computing their distance, and the bag distance `max(|a|,|b|) - |a ∩ b|` (multisets) skips
/// most of the others. Distances use the bit-parallel Myers/Hyyrö
/// algorithm over a dense alphabet, with one match table per worker. Work is split across source ids
/// with the execution policy (interleaved so that thread loads balance).

#include <fusekit/core/error.hpp>
#include <fusekit/exec/policy.hpp>
#include <fusekit/exec/primitives.hpp>
#include <fusekit/vocab/edit_distance.hpp>
#include <fusekit/vocab/token_cost.hpp>
#include <fusekit/vocab/utf8.hpp>
#include <fusekit/vocab/vocabulary.hpp>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

namespace fusekit::vocab {

/// A source id -> pivot id table (-1 = unmapped / no token), with the distance that chose each entry.
struct vocab_mapping {
  /// `pivot_of[v]`: pivot id for source id v, or -1.
  std::vector<std::int32_t> pivot_of;
  /// `distance[v]`: edit distance of the chosen pair (0 = exact match), -1 where unmapped.
  std::vector<std::int32_t> distance;
  /// Number of pivot-vs-source pairs whose distance was evaluated (MinED statistics).
  std::int64_t evaluated_pairs = 0;

  std::int64_t size() const noexcept { return static_cast<std::int64_t>(pivot_of.size()); }
  /// Number of source ids with a pivot id.
  std::int64_t mapped() const noexcept {
    return std::count_if(pivot_of.begin(), pivot_of.end(), [](std::int32_t p) { return p >= 0; });
  }
  /// Number of source ids mapped with distance 0 (exact string matches).
  std::int64_t exact() const noexcept { return std::count(distance.begin(), distance.end(), 0); }
};

/// `subst(raw_S(v))`: the source raw string with the source marker replaced by the pivot marker (UTF-8).
inline std::string substituted_raw(const vocabulary& source, std::int64_t v, const vocabulary& pivot) {
  const std::string& r = source.raw(v);
  if (source.marker().empty() || source.marker() == pivot.marker()) return r;
  std::string out = r;
  detail::replace_all(out, source.marker(), pivot.marker());
  return out;
}

/// EM mapping: exact match of `subst(raw_S(v))` in the pivot vocabulary, else -1.
inline vocab_mapping em_mapping(const vocabulary& pivot, const vocabulary& source) {
  vocab_mapping m;
  m.pivot_of.assign(static_cast<std::size_t>(source.size()), -1);
  m.distance.assign(static_cast<std::size_t>(source.size()), -1);
  for (std::int64_t v = 0; v < source.size(); ++v) {
    if (!source.contains(v)) continue;
    const std::int32_t p = pivot.find(substituted_raw(source, v, pivot));
    if (p >= 0) {
      m.pivot_of[static_cast<std::size_t>(v)] = p;
      m.distance[static_cast<std::size_t>(v)] = 0;
    }
  }
  return m;
}

/// Options of `mined_mapping`.
struct mined_options {
  /// Restrict the source ids to compute (empty = all); other ids get -1. Used by tests and sampling.
  std::vector<std::int32_t> source_ids{};
};

namespace detail {

/// Strings as dense-alphabet symbol sequences, CSR-stored.
struct dense_strings {
  std::vector<std::int64_t> offsets{0};
  std::vector<std::uint32_t> symbols;
  std::span<const std::uint32_t> operator[](std::size_t k) const {
    return std::span<const std::uint32_t>(symbols).subspan(static_cast<std::size_t>(offsets[k]),
                                                           static_cast<std::size_t>(offsets[k + 1] - offsets[k]));
  }
  std::int64_t length(std::size_t k) const { return offsets[k + 1] - offsets[k]; }
};

}  // namespace detail

/// MinED mapping (exact match, else first minimal-edit-distance pivot token), see the file comment.
template <class Policy>
vocab_mapping mined_mapping(const Policy& policy, const vocabulary& pivot, const vocabulary& source,
                            const mined_options& options = {}) {
  exec::check_runs_on<Policy>();
  const std::size_t VP = static_cast<std::size_t>(pivot.size()), VS = static_cast<std::size_t>(source.size());
  vocab_mapping m;
  m.pivot_of.assign(VS, -1);
  m.distance.assign(VS, -1);

  std::vector<std::int32_t> todo;
  if (options.source_ids.empty()) {
    for (std::size_t v = 0; v < VS; ++v)
      if (source.contains(static_cast<std::int64_t>(v))) todo.push_back(static_cast<std::int32_t>(v));
  } else {
    for (std::int32_t v : options.source_ids) {
      FUSEKIT_EXPECTS(v >= 0 && static_cast<std::size_t>(v) < VS, out_of_range,
                      "mined_mapping: source id " + std::to_string(v) + " outside [0, " + std::to_string(VS) + ")");
      if (source.contains(v)) todo.push_back(v);
    }
  }

  // exact matches first
  std::vector<std::int32_t> rest;
  std::vector<std::u32string> src_strings(VS);
  for (std::int32_t v : todo) {
    const std::string t = substituted_raw(source, v, pivot);
    const std::int32_t p = pivot.find(t);
    if (p >= 0) {
      m.pivot_of[static_cast<std::size_t>(v)] = p;
      m.distance[static_cast<std::size_t>(v)] = 0;
    } else {
      rest.push_back(v);
      src_strings[static_cast<std::size_t>(v)] = utf8_decode(t);
    }
  }
  if (rest.empty()) return m;

  // dense alphabet over pivot and (remaining) source strings
  std::vector<std::u32string> piv_strings(VP);
  std::vector<char32_t> alphabet;
  for (std::size_t p = 0; p < VP; ++p) {
    if (!pivot.contains(static_cast<std::int64_t>(p))) continue;
    piv_strings[p] = utf8_decode(pivot.raw(static_cast<std::int64_t>(p)));
    alphabet.insert(alphabet.end(), piv_strings[p].begin(), piv_strings[p].end());
  }
  for (std::int32_t v : rest)
    alphabet.insert(alphabet.end(), src_strings[static_cast<std::size_t>(v)].begin(),
                    src_strings[static_cast<std::size_t>(v)].end());
  std::sort(alphabet.begin(), alphabet.end());
  alphabet.erase(std::unique(alphabet.begin(), alphabet.end()), alphabet.end());
  auto dense = [&](char32_t c) {
    return static_cast<std::uint32_t>(std::lower_bound(alphabet.begin(), alphabet.end(), c) - alphabet.begin());
  };
  detail::dense_strings piv;  // indexed by pivot id
  for (std::size_t p = 0; p < VP; ++p) {
    for (char32_t c : piv_strings[p]) piv.symbols.push_back(dense(c));
    piv.offsets.push_back(static_cast<std::int64_t>(piv.symbols.size()));
  }
  detail::dense_strings src;  // indexed by position in `rest`
  for (std::int32_t v : rest) {
    for (char32_t c : src_strings[static_cast<std::size_t>(v)]) src.symbols.push_back(dense(c));
    src.offsets.push_back(static_cast<std::int64_t>(src.symbols.size()));
  }
  // length buckets of present pivot ids, ascending ids
  std::int64_t max_len = 0;
  for (std::size_t p = 0; p < VP; ++p)
    if (pivot.contains(static_cast<std::int64_t>(p))) max_len = std::max(max_len, piv.length(p));
  std::vector<std::vector<std::int32_t>> bucket(static_cast<std::size_t>(max_len) + 1);
  for (std::size_t p = 0; p < VP; ++p)
    if (pivot.contains(static_cast<std::int64_t>(p))) bucket[static_cast<std::size_t>(piv.length(p))].push_back(static_cast<std::int32_t>(p));
  FUSEKIT_EXPECTS(VP > 0 && !std::all_of(bucket.begin(), bucket.end(), [](const auto& b) { return b.empty(); }),
                  invalid_argument, "mined_mapping: the pivot vocabulary is empty");

  // 64-bit character signatures: bit (symbol mod 64) set for every symbol of the string. A bit set in
  // one signature but not the other marks a symbol absent from the other string, which costs at least
  // one edit: lev(a, b) >= max(popcount(sa & ~sb), popcount(sb & ~sa)).
  auto signature = [](std::span<const std::uint32_t> s) {
    std::uint64_t g = 0;
    for (std::uint32_t c : s) g |= std::uint64_t{1} << (c & 63u);
    return g;
  };
  std::vector<std::vector<std::uint64_t>> bucket_sig(bucket.size());
  for (std::size_t L = 0; L < bucket.size(); ++L)
    for (std::int32_t p : bucket[L]) bucket_sig[L].push_back(signature(piv[static_cast<std::size_t>(p)]));

  // interleaved work blocks, one match table per block
  const std::int64_t nrest = static_cast<std::int64_t>(rest.size());
  const std::int64_t nblocks = std::min<std::int64_t>(nrest, std::int64_t{policy.concurrency()} * 8);
  std::vector<std::int64_t> evaluated(static_cast<std::size_t>(nblocks), 0);
  exec::for_each_n(policy, nblocks, [&](std::int64_t blk) {
    std::vector<std::uint64_t> table(alphabet.size(), 0);
    std::vector<std::int32_t> cnt(alphabet.size(), 0), used(alphabet.size(), 0);
    std::int64_t count = 0;
    for (std::int64_t r = blk; r < nrest; r += nblocks) {
      const auto a = src[static_cast<std::size_t>(r)];
      const auto n = static_cast<std::int64_t>(a.size());
      for (std::uint32_t c : a) ++cnt[c];
      const myers_pattern pat(a, table);
      const std::uint64_t sa = signature(a);
      std::int32_t best = std::numeric_limits<std::int32_t>::max(), best_id = std::numeric_limits<std::int32_t>::max();
      for (std::int64_t delta = 0; delta <= max_len + n; ++delta) {
        if (delta > best) break;
        for (int side = 0; side < 2; ++side) {
          if (delta == 0 && side == 1) break;
          const std::int64_t L = side == 0 ? n - delta : n + delta;
          if (L < 0 || L > max_len) continue;
          const auto& bids = bucket[static_cast<std::size_t>(L)];
          const std::uint64_t* bsig = bucket_sig[static_cast<std::size_t>(L)].data();
          for (std::size_t k = 0; k < bids.size(); ++k) {
            const std::int32_t p = bids[k];
            if (delta == best && p >= best_id) break;  // can only tie with a larger id
            const std::uint64_t sb = bsig[k];
            const std::int32_t lb = std::max(std::popcount(sa & ~sb), std::popcount(sb & ~sa));
            if (lb > best || (lb == best && p > best_id)) continue;
            const auto txt = piv[static_cast<std::size_t>(p)];
            if (lb + 1 >= best) {  // near the best: try the bag distance lev >= max(|a|,|b|) - |a ∩ b| (multisets)
              std::int32_t common = 0;
              for (std::uint32_t c : txt) if (used[c] < cnt[c]) { ++used[c]; ++common; }
              for (std::uint32_t c : txt) used[c] = 0;
              const std::int32_t bag = static_cast<std::int32_t>(std::max<std::int64_t>(n, L)) - common;
              if (bag > best || (bag == best && p > best_id)) continue;
            }
            const std::int32_t d = pat.distance(txt);
            ++count;
            if (d < best || (d == best && p < best_id)) {
              best = d;
              best_id = p;
              if (best <= delta) break;  // rest of this bucket: larger ids, distance >= delta
            }
          }
        }
        if (best == 1) {
          // distance 1 is the minimum possible; smaller ids at distance 1 can only sit in buckets
          // n-1, n, n+1, which have been scanned by the end of delta == 1.
          if (delta >= 1) break;
        }
      }
      for (std::uint32_t c : a) cnt[c] = 0;
      const std::size_t v = static_cast<std::size_t>(rest[static_cast<std::size_t>(r)]);
      m.pivot_of[v] = best_id;
      m.distance[v] = best;
    }
    evaluated[static_cast<std::size_t>(blk)] = count;
  });
  for (auto c : evaluated) m.evaluated_pairs += c;
  return m;
}

}  // namespace fusekit::vocab
