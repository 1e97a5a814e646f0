#pragma once
/// @file
/// DTW alignment of two token sequences ("modified simpledtw" of FuseLLM / FuseChat, reference
/// §1.3).
///
/// Source tokens `w_0..w_{M-1}` are rows, pivot tokens `u_0..u_{N-1}` columns, `c(j,i)` the token cost.
/// Forward pass: `D(j,i) = c(j,i) + min(D(j-1,i), D(j,i-1), D(j-1,i-1))`, out of range = +inf, virtual
/// origin 0. Backtrack from `(M-1, N-1)` to `(0,0)`, at each cell stepping to the smallest of
/// `diag = D(j-1,i-1)`, `srcup = D(j-1,i)`, `pivlf = D(j,i-1)`, ties broken by a fixed preference:
/// FuseChat `diag, pivlf, srcup`; FuseLLM `diag, srcup, pivlf` (`dtw_tie_order`).
///
/// Result: for every pivot position `i` the ascending list `A(i)` of source positions on the path
/// (FuseChat's `base_to_blending`), stored CSR-like in `token_alignment`. Every pivot position gets at
/// least one source position and every source position appears at least once (the path is monotone and
/// covering). Both sequences must be non-empty.

#include <fusekit/core/config.hpp>
#include <fusekit/core/error.hpp>
#include <fusekit/vocab/edit_distance.hpp>
#include <fusekit/vocab/token_cost.hpp>
#include <fusekit/vocab/utf8.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <type_traits>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace fusekit::vocab {

/// Preference among equal-cost predecessors during the backtrack.
enum class dtw_tie_order {
  fusechat,  ///< diag, then pivot-only step, then source-only step (FuseChat v2, default)
  fusellm,   ///< diag, then source-only step, then pivot-only step (FuseLLM)
};

/// Options of `dtw_align`.
struct dtw_options {
  dtw_tie_order tie_order = dtw_tie_order::fusechat;
};

/// A monotone alignment path between a source sequence (length M) and a pivot sequence (length N).
struct token_alignment {
  std::int64_t source_size = 0;  ///< M
  std::int64_t pivot_size = 0;   ///< N
  std::int64_t total_cost = 0;   ///< D(M-1, N-1) = sum of c over the path
  /// Path cells `(j, i)` from (0,0) to (M-1,N-1).
  std::vector<std::pair<std::int32_t, std::int32_t>> path;
  /// CSR offsets into `source_positions`, N+1 entries.
  std::vector<std::int32_t> offsets;
  /// Concatenated ascending source positions of every pivot position.
  std::vector<std::int32_t> source_positions;

  /// `A(i)`: the ascending source positions aligned with pivot position `i`.
  std::span<const std::int32_t> operator[](std::int64_t i) const {
    return std::span<const std::int32_t>(source_positions).subspan(
        static_cast<std::size_t>(offsets[static_cast<std::size_t>(i)]),
        static_cast<std::size_t>(offsets[static_cast<std::size_t>(i) + 1] - offsets[static_cast<std::size_t>(i)]));
  }
  /// `A` as nested vectors (convenient in tests).
  std::vector<std::vector<std::int32_t>> to_lists() const {
    std::vector<std::vector<std::int32_t>> out(static_cast<std::size_t>(pivot_size));
    for (std::int64_t i = 0; i < pivot_size; ++i) {
      auto s = (*this)[i];
      out[static_cast<std::size_t>(i)].assign(s.begin(), s.end());
    }
    return out;
  }
};

/// DTW over an arbitrary cost `cost(j, i) -> integer >= 0` for an M x N problem.
/// `cumulative`, if non-null, receives D (row-major, M x N).
template <class Cost>
token_alignment dtw_align(std::int64_t source_size, std::int64_t pivot_size, Cost&& cost, dtw_options options = {},
                          std::vector<std::int64_t>* cumulative = nullptr) {
  FUSEKIT_EXPECTS(source_size > 0 && pivot_size > 0, invalid_argument,
                  "dtw_align: both token sequences must be non-empty (source " + std::to_string(source_size) +
                      ", pivot " + std::to_string(pivot_size) + ")");
  FUSEKIT_EXPECTS(source_size < std::numeric_limits<std::int32_t>::max() &&
                      pivot_size < std::numeric_limits<std::int32_t>::max(),
                  invalid_argument, "dtw_align: sequences longer than 2^31-1 tokens");
  const std::int64_t M = source_size, N = pivot_size;
  // The backtrack step at (j,i) compares exactly the three cells whose minimum the forward pass adds
  // to c(j,i), so the forward pass records the backtrack move of every cell (1 byte, tie order applied)
  // and keeps only two rows of D. Moves: 0 diag, 1 source-only (srcup), 2 pivot-only (pivlf).
  std::unique_ptr<std::uint8_t[]> move(new std::uint8_t[static_cast<std::size_t>(M * N)]);
  std::vector<std::int64_t> prev(static_cast<std::size_t>(N)), cur(static_cast<std::size_t>(N));
  if (cumulative) cumulative->resize(static_cast<std::size_t>(M * N));
  const bool chat = options.tie_order == dtw_tie_order::fusechat;
  cur[0] = static_cast<std::int64_t>(cost(std::int64_t{0}, std::int64_t{0}));
  move[0] = 0;
  for (std::int64_t i = 1; i < N; ++i) {
    cur[static_cast<std::size_t>(i)] = cur[static_cast<std::size_t>(i - 1)] + static_cast<std::int64_t>(cost(std::int64_t{0}, i));
    move[static_cast<std::size_t>(i)] = 2;
  }
  if (cumulative) std::copy(cur.begin(), cur.end(), cumulative->begin());
  for (std::int64_t j = 1; j < M; ++j) {
    std::swap(prev, cur);
    const std::int64_t* up = prev.data();
    std::int64_t* c = cur.data();
    std::uint8_t* mv = move.get() + j * N;
    c[0] = up[0] + static_cast<std::int64_t>(cost(j, std::int64_t{0}));
    mv[0] = 1;
    std::int64_t left = c[0];
    if (chat) {
      for (std::int64_t i = 1; i < N; ++i) {
        std::int64_t best = up[i - 1];
        std::uint8_t m = 0;
        if (left < best) { best = left; m = 2; }
        if (up[i] < best) { best = up[i]; m = 1; }
        left = best + static_cast<std::int64_t>(cost(j, i));
        c[i] = left;
        mv[i] = m;
      }
    } else {
      for (std::int64_t i = 1; i < N; ++i) {
        std::int64_t best = up[i - 1];
        std::uint8_t m = 0;
        if (up[i] < best) { best = up[i]; m = 1; }
        if (left < best) { best = left; m = 2; }
        left = best + static_cast<std::int64_t>(cost(j, i));
        c[i] = left;
        mv[i] = m;
      }
    }
    if (cumulative) std::copy(cur.begin(), cur.end(), cumulative->begin() + j * N);
  }
  token_alignment out;
  out.source_size = M;
  out.pivot_size = N;
  out.total_cost = cur[static_cast<std::size_t>(N - 1)];
  // backtrack along the recorded moves
  std::int64_t j = M - 1, i = N - 1;
  out.path.reserve(static_cast<std::size_t>(M + N));
  while (j != 0 || i != 0) {
    out.path.emplace_back(static_cast<std::int32_t>(j), static_cast<std::int32_t>(i));
    const std::uint8_t m = move[static_cast<std::size_t>(j * N + i)];
    if (m == 0) { --j; --i; }
    else if (m == 1) { --j; }
    else { --i; }
  }
  out.path.emplace_back(0, 0);
  std::reverse(out.path.begin(), out.path.end());
  // CSR per pivot position; the forward path visits pivot positions in order and, within one pivot
  // position, source positions in ascending order.
  out.offsets.assign(static_cast<std::size_t>(N + 1), 0);
  for (auto [pj, pi] : out.path) ++out.offsets[static_cast<std::size_t>(pi) + 1];
  for (std::int64_t k = 0; k < N; ++k) out.offsets[static_cast<std::size_t>(k + 1)] += out.offsets[static_cast<std::size_t>(k)];
  out.source_positions.reserve(out.path.size());
  for (auto [pj, pi] : out.path) out.source_positions.push_back(pj);
  return out;
}

namespace detail {
/// Interns strings: returns per-element ids and the distinct values.
template <class S>
std::vector<std::int32_t> intern(std::span<const S> seq, std::vector<std::u32string>& distinct) {
  std::unordered_map<std::u32string, std::int32_t> index;
  std::vector<std::int32_t> ids(seq.size());
  for (std::size_t k = 0; k < seq.size(); ++k) {
    std::u32string key;
    if constexpr (std::is_same_v<S, std::u32string>) key = seq[k];
    else key = utf8_decode(seq[k]);
    auto [it, inserted] = index.try_emplace(std::move(key), static_cast<std::int32_t>(distinct.size()));
    if (inserted) distinct.push_back(it->first);
    ids[k] = it->second;
  }
  return ids;
}
}  // namespace detail

namespace detail {
/// Strings of equal length in groups of four, transposed (`sym[k*4 + lane]`), so that one pattern is
/// run against four texts at once with 4-lane 64-bit vectors (GCC/Clang vector extensions; the
/// compiler maps them to AVX2 or pairs of SSE2 registers). Each lane is the single-word Myers/Hyyrö
/// recurrence of `myers_single_word`.
struct myers_groups {
  struct group {
    std::int32_t length;
    std::int32_t ids[4];  ///< string indices, -1 for padding lanes
    std::size_t offset;   ///< into `sym`
  };
  std::vector<group> groups;
  std::vector<std::uint32_t> sym;

  explicit myers_groups(const std::vector<std::vector<std::uint32_t>>& strings) {
    std::vector<std::int32_t> order;
    for (std::size_t k = 0; k < strings.size(); ++k)
      if (!strings[k].empty()) order.push_back(static_cast<std::int32_t>(k));
    std::stable_sort(order.begin(), order.end(), [&](std::int32_t x, std::int32_t y) {
      return strings[static_cast<std::size_t>(x)].size() < strings[static_cast<std::size_t>(y)].size();
    });
    for (std::size_t k = 0; k < order.size();) {
      const std::size_t len = strings[static_cast<std::size_t>(order[k])].size();
      group g{static_cast<std::int32_t>(len), {-1, -1, -1, -1}, sym.size()};
      std::size_t lanes = 0;
      while (lanes < 4 && k < order.size() && strings[static_cast<std::size_t>(order[k])].size() == len) g.ids[lanes++] = order[k++];
      for (std::size_t c = 0; c < len; ++c)
        for (std::size_t l = 0; l < 4; ++l)
          sym.push_back(strings[static_cast<std::size_t>(g.ids[l >= lanes ? 0 : l])][c]);
      groups.push_back(g);
    }
  }

  /// out[id] = lev(pattern, string id) for every grouped string; `peq` holds the pattern's match masks
  /// (1 <= m <= 64 symbols).
  void distances(std::int32_t m, const std::uint64_t* peq, std::int32_t* out) const {
#if FUSEKIT_HAS_VECTOR_EXT
    typedef std::uint64_t v4u __attribute__((vector_size(32)));
    typedef std::int64_t v4i __attribute__((vector_size(32)));
    const std::uint64_t high = std::uint64_t{1} << (m - 1);
    const v4u hv = {high, high, high, high}, one = {1, 1, 1, 1};
    for (const group& g : groups) {
      v4u pv = ~v4u{0, 0, 0, 0}, mv = {0, 0, 0, 0};
      v4i score = {m, m, m, m};
      const std::uint32_t* s = sym.data() + g.offset;
      for (std::int32_t k = 0; k < g.length; ++k, s += 4) {
        const v4u eq = {peq[s[0]], peq[s[1]], peq[s[2]], peq[s[3]]};
        const v4u xv = eq | mv;
        const v4u xh = (((eq & pv) + pv) ^ pv) | eq;
        v4u ph = mv | ~(xh | pv);
        v4u mh = pv & xh;
        score -= reinterpret_cast<v4i>((ph & hv) != 0);  // comparisons give -1 for true
        score += reinterpret_cast<v4i>((mh & hv) != 0);
        ph = (ph << 1) | one;
        mh = mh << 1;
        pv = mh | ~(xv | ph);
        mv = ph & xv;
      }
      for (int l = 0; l < 4; ++l)
        if (g.ids[l] >= 0) out[g.ids[l]] = static_cast<std::int32_t>(score[l]);
    }
#else
    for (const group& g : groups)
      for (int l = 0; l < 4; ++l) {
        if (g.ids[l] < 0) continue;
        std::vector<std::uint32_t> text(static_cast<std::size_t>(g.length));
        for (std::int32_t k = 0; k < g.length; ++k) text[static_cast<std::size_t>(k)] = sym[g.offset + static_cast<std::size_t>(k) * 4 + static_cast<std::size_t>(l)];
        out[g.ids[l]] = myers_single_word(m, text, [peq](std::uint32_t c) { return peq[c]; });
      }
#endif
  }
};
}  // namespace detail

/// DTW of two token-string sequences with the token cost `cost`.
/// Strings may be `std::string` (UTF-8, decoded once) or `std::u32string`. The cost of every distinct
/// (source string, pivot string) pair is computed once (bit-parallel Levenshtein).
template <class S>
  requires(std::is_same_v<S, std::string> || std::is_same_v<S, std::u32string>)
token_alignment dtw_align(std::span<const S> source, std::span<const S> pivot, const token_cost& cost,
                          dtw_options options = {}) {
  FUSEKIT_EXPECTS(!source.empty() && !pivot.empty(), invalid_argument,
                  "dtw_align: both token sequences must be non-empty (source " + std::to_string(source.size()) +
                      ", pivot " + std::to_string(pivot.size()) + ")");
  std::vector<std::u32string> us, up;
  const auto sid = detail::intern(source, us);
  const auto pid = detail::intern(pivot, up);
  std::vector<token_cost::prepared> ps(us.size()), pp(up.size());
  for (std::size_t k = 0; k < us.size(); ++k) ps[k] = cost.prepare_source(us[k]);
  for (std::size_t k = 0; k < up.size(); ++k) pp[k] = cost.prepare_pivot(up[k]);
  const std::size_t P = up.size();
  // Cost of every distinct (source, pivot) pair: each distinct source string becomes a bit-parallel
  // pattern over a dense alphabet once and is run against every distinct pivot string.
  std::vector<char32_t> alphabet;
  for (const auto* side : {&ps, &pp})
    for (const auto& t : *side) {
      alphabet.insert(alphabet.end(), t.stripped.begin(), t.stripped.end());
      alphabet.insert(alphabet.end(), t.fallback.begin(), t.fallback.end());
    }
  std::sort(alphabet.begin(), alphabet.end());
  alphabet.erase(std::unique(alphabet.begin(), alphabet.end()), alphabet.end());
  auto dense = [&](const std::u32string& s) {
    std::vector<std::uint32_t> d(s.size());
    for (std::size_t k = 0; k < s.size(); ++k)
      d[k] = static_cast<std::uint32_t>(std::lower_bound(alphabet.begin(), alphabet.end(), s[k]) - alphabet.begin());
    return d;
  };
  std::vector<std::vector<std::uint32_t>> p_str(P), p_fb(P);
  bool pivot_has_empty = false;
  for (std::size_t b = 0; b < P; ++b) {
    p_str[b] = dense(pp[b].stripped);
    p_fb[b] = dense(pp[b].fallback);
    pivot_has_empty = pivot_has_empty || pp[b].stripped.empty();
  }
  const bool fallback_rule = cost.rule == cost_rule::fusechat;
  std::vector<std::uint64_t> t1(alphabet.size() + 1, 0), t2(alphabet.size() + 1, 0);
  std::vector<std::int32_t> table(us.size() * P);
  // Non-empty pivot strings in groups of 4 of equal length, stored transposed, for the 4-lane kernel.
  const detail::myers_groups groups(p_str);
  for (std::size_t a = 0; a < us.size(); ++a) {
    const auto s_str = dense(ps[a].stripped);
    const auto s_fb = dense(ps[a].fallback);
    const myers_pattern pa(s_str, t1);
    const bool need_fb = fallback_rule && (s_str.empty() || pivot_has_empty);
    const myers_pattern pf(need_fb ? std::span<const std::uint32_t>(s_fb) : std::span<const std::uint32_t>(), t2);
    std::int32_t* row = table.data() + a * P;
    const bool use_fb_row = fallback_rule && s_str.empty();
    if (!use_fb_row && !s_str.empty() && s_str.size() <= 64) {
      groups.distances(static_cast<std::int32_t>(s_str.size()), t1.data(), row);  // every non-empty pivot
    } else {
      for (std::size_t b = 0; b < P; ++b)
        if (!p_str[b].empty()) row[b] = use_fb_row ? pf.distance(p_fb[b]) : pa.distance(p_str[b]);
    }
    for (std::size_t b = 0; b < P; ++b)  // empty stripped pivot strings
      if (p_str[b].empty()) row[b] = fallback_rule ? pf.distance(p_fb[b]) : pa.distance(p_str[b]);
  }
  return dtw_align(
      static_cast<std::int64_t>(source.size()), static_cast<std::int64_t>(pivot.size()),
      [&](std::int64_t j, std::int64_t i) {
        return table[static_cast<std::size_t>(sid[static_cast<std::size_t>(j)]) * P +
                     static_cast<std::size_t>(pid[static_cast<std::size_t>(i)])];
      },
      options);
}

/// Convenience overload for vectors.
template <class S>
token_alignment dtw_align(const std::vector<S>& source, const std::vector<S>& pivot, const token_cost& cost,
                          dtw_options options = {}) {
  return dtw_align(std::span<const S>(source), std::span<const S>(pivot), cost, options);
}

}  // namespace fusekit::vocab
