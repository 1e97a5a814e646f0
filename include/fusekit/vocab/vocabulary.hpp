#pragma once
/// @file
/// A tokenizer vocabulary: id -> raw string, decoded bytes, kind, special-token roles, marker.
///
/// The vocabulary is what the alignment algorithms need from a tokenizer — no merges, no encoder.
/// Load one from a Hugging Face `tokenizer.json` with <fusekit/vocab/hf_tokenizer.hpp>, or fill one by
/// hand (`vocabulary::from_strings`) for tests.
///
/// Two string forms exist per id:
/// * **raw**: the vocabulary key (`"Ġthe"`, `"▁the"`, `"<0x0A>"`, `"<|endoftext|>"`), what FuseLLM
///   aligns and what every vocabulary lookup uses;
/// * **decoded bytes**: what the token contributes to the text. Byte-level BPE: every raw code point
///   through the inverse GPT-2 byte map; SentencePiece: `▁` -> space, byte-fallback `<0xNN>` -> byte
///   NN; added tokens outside the model vocabulary: their content, verbatim.
///
/// `decode_token(id)` reproduces a Hugging Face `tokenizer.decode([id])`, the string FuseChat aligns:
/// bytes made valid UTF-8 (U+FFFD for incomplete fragments), the decoder's leading-space strip
/// (SentencePiece "legacy" tokenizers such as Llama-2/Mistral), and the optional
/// `clean_up_tokenization_spaces` rewrite.

#include <fusekit/core/error.hpp>
#include <fusekit/vocab/token_cost.hpp>
#include <fusekit/vocab/utf8.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace fusekit::vocab {

/// How raw vocabulary strings encode text.
enum class token_encoding {
  byte_level,     ///< GPT-2 byte-to-unicode map (Llama-3, Qwen, GPT-NeoX, ...); marker `Ġ`
  sentencepiece,  ///< `▁` for spaces, `<0xNN>` byte-fallback tokens (Llama-2, Mistral, Gemma); marker `▁`
  plain,          ///< raw strings are the text itself (no marker)
};

/// What an id is.
enum class token_kind : std::uint8_t {
  absent,         ///< no token has this id (a hole in the id space)
  normal,         ///< a model-vocabulary token
  byte_fallback,  ///< a SentencePiece `<0xNN>` byte token
  added,          ///< an added token outside the model vocabulary (decoded verbatim)
  special,        ///< an added token flagged `special`
};

/// Name of a token_encoding ("byte_level", ...).
constexpr std::string_view to_string(token_encoding e) noexcept {
  switch (e) {
  case token_encoding::byte_level: return "byte_level";
  case token_encoding::sentencepiece: return "sentencepiece";
  case token_encoding::plain: return "plain";
  }
  return "unknown";
}

namespace detail {
/// GPT-2 `bytes_to_unicode`: the printable bytes map to themselves, the other 68 to U+0100.. in order.
inline const std::array<char32_t, 256>& gpt2_byte_to_unicode() {
  static const std::array<char32_t, 256> table = [] {
    std::array<char32_t, 256> t{};
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      t[static_cast<std::size_t>(b)] = printable ? static_cast<char32_t>(b) : next++;
    }
    return t;
  }();
  return table;
}
/// Inverse GPT-2 map: code point -> byte, or -1 (code points below 324 only).
inline const std::array<std::int16_t, 324>& gpt2_unicode_to_byte() {
  static const std::array<std::int16_t, 324> table = [] {
    std::array<std::int16_t, 324> t{};
    t.fill(-1);
    const auto& fwd = gpt2_byte_to_unicode();
    for (int b = 0; b < 256; ++b) t[fwd[static_cast<std::size_t>(b)]] = static_cast<std::int16_t>(b);
    return t;
  }();
  return table;
}
/// `<0xNN>` -> NN, else -1.
inline int parse_byte_token(std::string_view s) {
  if (s.size() != 6 || s.substr(0, 3) != "<0x" || s[5] != '>') return -1;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int h = hex(s[3]), l = hex(s[4]);
  return (h < 0 || l < 0) ? -1 : h * 16 + l;
}
/// Replaces every occurrence of `from` by `to` (byte strings).
inline void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  std::size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
}
}  // namespace detail

/// Hugging Face `clean_up_tokenization`: removes the space before `. ? ! ,` and English contractions.
inline std::string clean_up_tokenization(std::string s) {
  static constexpr std::pair<std::string_view, std::string_view> rules[] = {
      {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (auto [from, to] : rules) detail::replace_all(s, from, to);
  return s;
}

/// A tokenizer vocabulary. Ids are dense `0 .. size()-1`; holes are `token_kind::absent`.
class vocabulary {
 public:
  vocabulary() = default;

  /// Builds a vocabulary from raw strings in id order (test helper); every id is `normal` unless it is
  /// a `<0xNN>` string in a SentencePiece vocabulary. `marker` defaults to the encoding's marker.
  static vocabulary from_strings(std::vector<std::string> raw, token_encoding encoding,
                                 std::optional<std::string> marker = std::nullopt) {
    vocabulary v;
    v.encoding_ = encoding;
    v.marker_ = marker ? *marker : default_marker(encoding);
    v.kind_.assign(raw.size(), token_kind::normal);
    v.raw_ = std::move(raw);
    for (std::size_t id = 0; id < v.raw_.size(); ++id)
      if (encoding == token_encoding::sentencepiece && detail::parse_byte_token(v.raw_[id]) >= 0)
        v.kind_[id] = token_kind::byte_fallback;
    v.rebuild();
    return v;
  }

  /// The marker of an encoding: `Ġ`, `▁` or empty.
  static std::string default_marker(token_encoding e) {
    switch (e) {
    case token_encoding::byte_level: return utf8_encode(byte_level_marker);
    case token_encoding::sentencepiece: return utf8_encode(sentencepiece_marker);
    case token_encoding::plain: return {};
    }
    return {};
  }

  /// Number of ids (largest id + 1).
  std::int64_t size() const noexcept { return static_cast<std::int64_t>(raw_.size()); }
  /// True if `id` names a token.
  bool contains(std::int64_t id) const noexcept {
    return id >= 0 && id < size() && kind_[static_cast<std::size_t>(id)] != token_kind::absent;
  }
  /// Raw vocabulary string of `id` (empty for holes). Throws out_of_range for ids outside [0, size()).
  const std::string& raw(std::int64_t id) const {
    check_id(id);
    return raw_[static_cast<std::size_t>(id)];
  }
  /// Kind of `id`.
  token_kind kind(std::int64_t id) const {
    check_id(id);
    return kind_[static_cast<std::size_t>(id)];
  }
  /// Smallest id whose raw string is `s`, or -1.
  std::int32_t find(std::string_view s) const {
    const auto it = index_.find(std::string(s));
    return it == index_.end() ? -1 : it->second;
  }
  /// All raw strings (index = id).
  std::span<const std::string> raw_strings() const noexcept { return raw_; }

  /// Decoded bytes of one token (see the file comment).
  std::string bytes(std::int64_t id) const {
    check_id(id);
    const std::string& r = raw_[static_cast<std::size_t>(id)];
    const token_kind k = kind_[static_cast<std::size_t>(id)];
    if (k == token_kind::absent) return {};
    if (k == token_kind::added || k == token_kind::special) return r;
    switch (encoding_) {
    case token_encoding::byte_level: {
      std::string out;
      const auto& inv = detail::gpt2_unicode_to_byte();
      for (char32_t c : utf8_decode(r)) {
        if (c < inv.size() && inv[c] >= 0) out.push_back(static_cast<char>(inv[c]));
        else utf8_append(out, c);  // not produced by the byte map: keep the character
      }
      return out;
    }
    case token_encoding::sentencepiece: {
      if (k == token_kind::byte_fallback) return std::string(1, static_cast<char>(detail::parse_byte_token(r)));
      std::string out = r;
      if (!marker_.empty()) detail::replace_all(out, marker_, " ");
      return out;
    }
    case token_encoding::plain: return r;
    }
    return r;
  }

  /// Concatenated decoded bytes of `ids`, with the decoder's leading-space strip applied once at the
  /// start (what `tokenizer.decode(ids)` returns, before UTF-8 validation and clean-up).
  std::string decode_bytes(std::span<const std::int32_t> ids) const {
    std::string out;
    for (std::int32_t id : ids) out += bytes(id);
    if (strip_leading_space_ && !out.empty() && out.front() == ' ') out.erase(0, 1);
    return out;
  }

  /// `tokenizer.decode([id])` of Hugging Face: decoded bytes -> valid UTF-8 (U+FFFD for ill-formed
  /// parts), the decoder's leading-space strip, and `clean_up_tokenization` when enabled.
  std::string decode_token(std::int64_t id) const {
    const std::int32_t one = static_cast<std::int32_t>(id);
    std::string s = utf8_sanitize(decode_bytes(std::span<const std::int32_t>(&one, 1)));
    if (clean_up_spaces_) s = clean_up_tokenization(std::move(s));
    return s;
  }

  token_encoding encoding() const noexcept { return encoding_; }
  /// Word-boundary marker (UTF-8), configurable per model.
  const std::string& marker() const noexcept { return marker_; }
  void set_marker(std::string m) { marker_ = std::move(m); }
  /// Whether the decoder drops one leading space (SentencePiece legacy `Strip` / Metaspace prefix).
  bool strip_leading_space() const noexcept { return strip_leading_space_; }
  void set_strip_leading_space(bool v) noexcept { strip_leading_space_ = v; }
  /// Whether `decode_token` applies `clean_up_tokenization_spaces`.
  bool clean_up_spaces() const noexcept { return clean_up_spaces_; }
  void set_clean_up_spaces(bool v) noexcept { clean_up_spaces_ = v; }

  /// Special-token ids, -1 when the tokenizer has none.
  std::int32_t bos_id() const noexcept { return bos_; }
  std::int32_t eos_id() const noexcept { return eos_; }
  std::int32_t unk_id() const noexcept { return unk_; }
  std::int32_t pad_id() const noexcept { return pad_; }
  void set_bos_id(std::int32_t id) { bos_ = checked_role(id, "bos"); }
  void set_eos_id(std::int32_t id) { eos_ = checked_role(id, "eos"); }
  void set_unk_id(std::int32_t id) { unk_ = checked_role(id, "unk"); }
  void set_pad_id(std::int32_t id) { pad_ = checked_role(id, "pad"); }

  /// Low-level construction (used by the loaders): sets the token at `id`, growing the id space.
  void set_token(std::int64_t id, std::string raw, token_kind kind) {
    FUSEKIT_EXPECTS(id >= 0 && id < (std::int64_t{1} << 31), out_of_range,
                    "vocabulary: token id " + std::to_string(id) + " outside [0, 2^31)");
    if (id >= size()) {
      raw_.resize(static_cast<std::size_t>(id) + 1);
      kind_.resize(static_cast<std::size_t>(id) + 1, token_kind::absent);
    }
    raw_[static_cast<std::size_t>(id)] = std::move(raw);
    kind_[static_cast<std::size_t>(id)] = kind;
  }
  /// Sets the encoding (and the marker to the encoding's default).
  void set_encoding(token_encoding e) {
    encoding_ = e;
    marker_ = default_marker(e);
  }
  /// Rebuilds the string -> id index after `set_token` calls.
  void rebuild() {
    index_.clear();
    index_.reserve(raw_.size());
    for (std::size_t id = 0; id < raw_.size(); ++id)
      if (kind_[id] != token_kind::absent) index_.try_emplace(raw_[id], static_cast<std::int32_t>(id));
  }

 private:
  void check_id(std::int64_t id) const {
    FUSEKIT_EXPECTS(id >= 0 && id < size(), out_of_range,
                    "vocabulary: token id " + std::to_string(id) + " outside [0, " + std::to_string(size()) + ")");
  }
  std::int32_t checked_role(std::int32_t id, const char* role) const {
    FUSEKIT_EXPECTS(id == -1 || contains(id), out_of_range,
                    std::string("vocabulary: ") + role + " id " + std::to_string(id) + " is not a token");
    return id;
  }

  std::vector<std::string> raw_;
  std::vector<token_kind> kind_;
  std::unordered_map<std::string, std::int32_t> index_;
  token_encoding encoding_ = token_encoding::plain;
  std::string marker_;
  bool strip_leading_space_ = false;
  bool clean_up_spaces_ = false;
  std::int32_t bos_ = -1, eos_ = -1, unk_ = -1, pad_ = -1;
};

}  // namespace fusekit::vocab
