#pragma once
/// @file
/// Levenshtein distance over Unicode code points.
///
/// `lev(a, b)` = the minimal number of single-symbol insertions, deletions and substitutions (all cost 1)
/// turning `a` into `b`, where a symbol is a **code point** (the Python `editdistance` package on `str`
/// compares code points). Two implementations:
///
/// * `levenshtein_reference` — the textbook O(|a|·|b|) dynamic programme; used by the tests as ground
///   truth.
/// * `levenshtein` — the bit-parallel algorithm of Myers (1999) in the formulation of Hyyrö (2003):
///   O(ceil(m/64)·n) word operations with m = the shorter length. Single 64-bit word for m ≤ 64, blocks
///   of 64 rows otherwise (the block recurrence of edlib / Hyyrö 2003 §4).
///
/// `levenshtein_utf8` decodes UTF-8 first (ill-formed bytes become U+FFFD, see utf8.hpp).
///
/// For many distances against one fixed pattern (vocabulary mapping), `myers_pattern` keeps the
/// pattern's match vectors and evaluates `distance(text)` without rebuilding them.

#include <fusekit/vocab/utf8.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace fusekit::vocab {

/// Plain dynamic-programming Levenshtein distance (two rows). Reference implementation.
template <class CharT>
std::int32_t levenshtein_reference(std::basic_string_view<CharT> a, std::basic_string_view<CharT> b) {
  const std::size_t m = a.size(), n = b.size();
  std::vector<std::int32_t> prev(n + 1), cur(n + 1);
  for (std::size_t i = 0; i <= n; ++i) prev[i] = static_cast<std::int32_t>(i);
  for (std::size_t j = 1; j <= m; ++j) {
    cur[0] = static_cast<std::int32_t>(j);
    for (std::size_t i = 1; i <= n; ++i) {
      const std::int32_t sub = prev[i - 1] + (a[j - 1] == b[i - 1] ? 0 : 1);
      cur[i] = std::min({prev[i] + 1, cur[i - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[n];
}

/// Reference distance of two code-point strings.
inline std::int32_t levenshtein_reference(std::u32string_view a, std::u32string_view b) {
  return levenshtein_reference<char32_t>(a, b);
}

namespace detail {

/// One column step of the Myers/Hyyrö recurrence for a block of up to 64 pattern rows.
/// `hin` is the horizontal delta entering the block's top row (+1, 0, -1); returns the delta leaving
/// its row `high_bit`.
inline int myers_advance_block(std::uint64_t& pv, std::uint64_t& mv, std::uint64_t eq, int hin,
                               std::uint64_t high_bit) noexcept {
  const std::uint64_t xv = eq | mv;
  if (hin < 0) eq |= 1u;
  const std::uint64_t xh = (((eq & pv) + pv) ^ pv) | eq;
  std::uint64_t ph = mv | ~(xh | pv);
  std::uint64_t mh = pv & xh;
  int hout = 0;
  if (ph & high_bit) hout = 1;
  else if (mh & high_bit) hout = -1;
  ph <<= 1;
  mh <<= 1;
  if (hin < 0) mh |= 1u;
  else if (hin > 0) ph |= 1u;
  pv = mh | ~(xv | ph);
  mv = ph & xv;
  return hout;
}

/// Single-word Myers for a pattern of length 1..64. `peq(c)` returns the match mask of symbol c.
template <class Text, class Peq>
std::int32_t myers_single_word(std::int32_t m, const Text& text, Peq&& peq) noexcept {
  std::uint64_t pv = ~std::uint64_t{0}, mv = 0;
  const std::uint64_t high = std::uint64_t{1} << (m - 1);
  std::int32_t score = m;
  for (auto c : text) {
    const std::uint64_t eq = peq(c);
    const std::uint64_t xv = eq | mv;
    const std::uint64_t xh = (((eq & pv) + pv) ^ pv) | eq;
    std::uint64_t ph = mv | ~(xh | pv);
    std::uint64_t mh = pv & xh;
    score += static_cast<std::int32_t>((ph & high) != 0) - static_cast<std::int32_t>((mh & high) != 0);
    ph = (ph << 1) | 1u;  // the top boundary row grows by +1 per column (global distance)
    mh <<= 1;
    pv = mh | ~(xv | ph);
    mv = ph & xv;
  }
  return score;
}

/// Tiny open-addressing table code point -> 64-bit mask for patterns of at most 64 symbols.
struct small_peq {
  static constexpr std::uint32_t size = 128;  // > 2 * 64, power of two
  static constexpr char32_t empty = 0xFFFFFFFFu;
  std::array<char32_t, size> keys;
  std::array<std::uint64_t, size> masks;

  static std::uint32_t slot(char32_t c) noexcept {
    return (static_cast<std::uint32_t>(c) * 0x9E3779B1u) >> (32 - 7);
  }
  explicit small_peq(std::u32string_view pattern) noexcept {
    keys.fill(empty);
    for (std::size_t k = 0; k < pattern.size(); ++k) {
      std::uint32_t s = slot(pattern[k]);
      while (keys[s] != empty && keys[s] != pattern[k]) s = (s + 1) & (size - 1);
      if (keys[s] == empty) {
        keys[s] = pattern[k];
        masks[s] = 0;
      }
      masks[s] |= std::uint64_t{1} << k;
    }
  }
  std::uint64_t operator()(char32_t c) const noexcept {
    std::uint32_t s = slot(c);
    while (true) {
      if (keys[s] == c) return masks[s];
      if (keys[s] == empty) return 0;
      s = (s + 1) & (size - 1);
    }
  }
};

/// Blocked Myers for patterns longer than 64 symbols (any length >= 1).
inline std::int32_t myers_blocked(std::u32string_view pattern, std::u32string_view text) {
  const std::size_t m = pattern.size();
  const std::size_t blocks = (m + 63) / 64;
  std::unordered_map<char32_t, std::size_t> symbol;  // code point -> row in peq
  std::vector<std::uint64_t> peq;                    // [distinct symbols][blocks]
  for (std::size_t k = 0; k < m; ++k) {
    auto [it, inserted] = symbol.try_emplace(pattern[k], symbol.size());
    if (inserted) peq.resize(peq.size() + blocks, 0);
    peq[it->second * blocks + k / 64] |= std::uint64_t{1} << (k % 64);
  }
  std::vector<std::uint64_t> pv(blocks, ~std::uint64_t{0}), mv(blocks, 0);
  const std::uint64_t last_high = std::uint64_t{1} << ((m - 1) % 64);
  std::int32_t score = static_cast<std::int32_t>(m);
  for (char32_t c : text) {
    const auto it = symbol.find(c);
    const std::uint64_t* eq = it == symbol.end() ? nullptr : &peq[it->second * blocks];
    int h = 1;
    for (std::size_t b = 0; b < blocks; ++b) {
      const std::uint64_t high = (b + 1 == blocks) ? last_high : (std::uint64_t{1} << 63);
      h = myers_advance_block(pv[b], mv[b], eq ? eq[b] : 0, h, high);
    }
    score += h;
  }
  return score;
}

}  // namespace detail

/// Bit-parallel Levenshtein distance of two code-point strings (equals `levenshtein_reference`).
inline std::int32_t levenshtein(std::u32string_view a, std::u32string_view b) {
  if (a.size() > b.size()) std::swap(a, b);  // pattern = the shorter string
  if (a.empty()) return static_cast<std::int32_t>(b.size());
  if (a.size() <= 16) {  // short patterns: build each match mask by scanning (no table to set up)
    const char32_t* pa = a.data();
    const std::size_t m = a.size();
    return detail::myers_single_word(static_cast<std::int32_t>(m), b, [pa, m](char32_t c) {
      std::uint64_t eq = 0;
      for (std::size_t k = 0; k < m; ++k) eq |= static_cast<std::uint64_t>(pa[k] == c) << k;
      return eq;
    });
  }
  if (a.size() <= 64) {
    const detail::small_peq peq(a);
    return detail::myers_single_word(static_cast<std::int32_t>(a.size()), b, peq);
  }
  return detail::myers_blocked(a, b);
}

/// Levenshtein distance of two UTF-8 strings, over code points.
inline std::int32_t levenshtein_utf8(std::string_view a, std::string_view b) {
  return levenshtein(utf8_decode(a), utf8_decode(b));
}

/// A fixed pattern over a dense alphabet (symbols `0 .. alphabet_size-1`), for evaluating many
/// distances `lev(pattern, text)` quickly. The caller owns a scratch table of `alphabet_size` words
/// (one per thread) that `bind` fills and `unbind` clears again, so no allocation happens per text.
/// Patterns longer than 64 symbols fall back to the blocked algorithm.
class myers_pattern {
 public:
  /// `pattern` holds dense symbol ids; `table` must have at least `max(pattern)+1` words, all zero.
  myers_pattern(std::span<const std::uint32_t> pattern, std::span<std::uint64_t> table)
      : pattern_(pattern), table_(table) {
    if (pattern_.size() <= 64)
      for (std::size_t k = 0; k < pattern_.size(); ++k) table_[pattern_[k]] |= std::uint64_t{1} << k;
  }
  myers_pattern(const myers_pattern&) = delete;
  myers_pattern& operator=(const myers_pattern&) = delete;
  /// Clears the scratch table again.
  ~myers_pattern() {
    if (pattern_.size() <= 64)
      for (std::uint32_t c : pattern_) table_[c] = 0;
  }
  /// `lev(pattern, text)`.
  std::int32_t distance(std::span<const std::uint32_t> text) const {
    const auto m = static_cast<std::int32_t>(pattern_.size());
    if (m == 0) return static_cast<std::int32_t>(text.size());
    if (m <= 64) {
      const std::uint64_t* t = table_.data();
      return detail::myers_single_word(m, text, [t](std::uint32_t c) { return t[c]; });
    }
    std::u32string a(pattern_.begin(), pattern_.end()), b(text.begin(), text.end());
    return levenshtein(a, b);
  }
  std::size_t size() const noexcept { return pattern_.size(); }

 private:
  std::span<const std::uint32_t> pattern_;
  std::span<std::uint64_t> table_;
};

}  // namespace fusekit::vocab
