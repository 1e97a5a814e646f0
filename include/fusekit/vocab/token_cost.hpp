#pragma once
/// @file
/// Word-boundary markers and the per-token cost functions of the token alignment.
///
/// Every tokenizer family marks a word start with a marker symbol: `Ġ` (U+0120) in byte-level BPE
/// (GPT-2, Llama-3, Qwen), `▁` (U+2581) in SentencePiece vocabularies (Llama-2, Mistral, Gemma).
/// `substitute_marker(t, S, P)` replaces every source marker by the pivot marker; `strip_marker(t, X)`
/// deletes every marker X. Markers are plain strings (usually one code point), configured per model.
///
/// Costs (reference/fusechat-algorithms.md §1.2), `a` = source token, `b` = pivot token:
/// * `cost_rule::plain`    — `lev(a, b)`.
/// * `cost_rule::fusellm`  — `lev(strip_S(a), strip_P(b))` (FuseLLM `others.py`).
/// * `cost_rule::fusechat` — like fusellm, but if either stripped string is empty, compare the
///   unstripped strings instead, with the source marker replaced by the pivot marker
///   (`transform_step_token` of FuseChat `align_token_and_vocab.py`).

#include <fusekit/vocab/edit_distance.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace fusekit::vocab {

/// `Ġ` (U+0120), the byte-level BPE word-boundary marker.
inline constexpr std::u32string_view byte_level_marker = U"\u0120";
/// `▁` (U+2581), the SentencePiece word-boundary marker.
inline constexpr std::u32string_view sentencepiece_marker = U"\u2581";

/// Replaces every occurrence of `from` in `s` by `to` (an empty `from` leaves `s` unchanged).
inline std::u32string substitute_marker(std::u32string_view s, std::u32string_view from, std::u32string_view to) {
  std::u32string out;
  if (from.empty() || from == to) return std::u32string(s);
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    if (s.compare(i, from.size(), from) == 0) {
      out.append(to);
      i += from.size();
    } else {
      out.push_back(s[i++]);
    }
  }
  return out;
}

/// Deletes every occurrence of `marker` from `s`.
inline std::u32string strip_marker(std::u32string_view s, std::u32string_view marker) {
  return substitute_marker(s, marker, U"");
}

/// Which per-token cost the alignment uses.
enum class cost_rule {
  plain,     ///< lev(a, b)
  fusellm,   ///< lev(strip_S(a), strip_P(b))
  fusechat,  ///< fusellm, with the unstripped fallback when a stripped string is empty (default)
};

/// The cost `d(source token, pivot token)` of §1.2, with its markers.
struct token_cost {
  cost_rule rule = cost_rule::fusechat;
  std::u32string source_marker = std::u32string(byte_level_marker);
  std::u32string pivot_marker = std::u32string(sentencepiece_marker);

  /// A token pre-processed once for repeated cost evaluations.
  struct prepared {
    std::u32string stripped;  ///< marker-stripped form (plain: the token itself)
    std::u32string fallback;  ///< fusechat fallback form (source: substituted; pivot: unchanged)
  };

  /// Prepares a source token `a`.
  prepared prepare_source(std::u32string_view a) const {
    if (rule == cost_rule::plain) return {std::u32string(a), {}};
    prepared p{strip_marker(a, source_marker), {}};
    if (rule == cost_rule::fusechat) p.fallback = substitute_marker(a, source_marker, pivot_marker);
    return p;
  }
  /// Prepares a pivot token `b`.
  prepared prepare_pivot(std::u32string_view b) const {
    if (rule == cost_rule::plain) return {std::u32string(b), {}};
    prepared p{strip_marker(b, pivot_marker), {}};
    if (rule == cost_rule::fusechat) p.fallback = std::u32string(b);
    return p;
  }
  /// The cost of two prepared tokens.
  std::int32_t operator()(const prepared& a, const prepared& b) const {
    if (rule == cost_rule::fusechat && (a.stripped.empty() || b.stripped.empty()))
      return levenshtein(a.fallback, b.fallback);
    return levenshtein(a.stripped, b.stripped);
  }
  /// The cost of a source token `a` and a pivot token `b` (code points).
  std::int32_t operator()(std::u32string_view a, std::u32string_view b) const {
    return (*this)(prepare_source(a), prepare_pivot(b));
  }
  /// The cost of two UTF-8 tokens.
  std::int32_t utf8(std::string_view a, std::string_view b) const {
    return (*this)(utf8_decode(a), utf8_decode(b));
  }
};

}  // namespace fusekit::vocab
