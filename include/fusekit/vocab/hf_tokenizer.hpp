#pragma once
/// @file
/// Loads a `fusekit::vocab::vocabulary` from a Hugging Face `tokenizer.json` (+ `tokenizer_config.json`).
///
/// Read from `tokenizer.json`:
/// * `model.vocab` (BPE / WordPiece / WordLevel: an object string -> id; Unigram: a list of
///   `[piece, score]` whose index is the id); `model.merges` is skipped while parsing;
/// * `added_tokens[]` (`id`, `content`, `special`): tokens outside the model vocabulary become
///   `token_kind::added` / `special`; those inside it keep their vocabulary string and become `special`
///   when flagged so (special tokens decode to their content verbatim);
/// * the encoding: `byte_level` if any pre-tokenizer or decoder is `ByteLevel`; `sentencepiece` if the
///   decoder or pre-tokenizer is `Metaspace` (marker = its `replacement`) or the decoder replaces `▁` by a
///   space / the normalizer replaces a space by `▁`; otherwise `plain`. Byte-fallback tokens (`<0xNN>`)
///   are recognised when `model.byte_fallback` is true or the decoder has a `ByteFallback` step;
/// * the leading-space strip: a decoder `Strip` step with `start >= 1`, or a `Metaspace` decoder that
///   adds a prefix space.
///
/// Read from `tokenizer_config.json` (optional; by default the file next to `tokenizer.json`):
/// `bos_token`, `eos_token`, `unk_token`, `pad_token` (a string, an `{"content": ...}` object or null)
/// and `clean_up_tokenization_spaces`. `unk` falls back to `model.unk_token`.
///
/// Every value can be overridden in `hf_load_options` (markers are a per-model setting, never inferred
/// from a tokenizer class name). Errors are `fusekit::error` naming the file and the field.

#include <fusekit/core/error.hpp>
#include <fusekit/vocab/vocabulary.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

namespace fusekit::vocab {

/// Options of `load_hf_vocabulary`; every unset value is read from the files.
struct hf_load_options {
  /// Path of `tokenizer_config.json`; empty = the sibling of `tokenizer.json` if it exists.
  std::filesystem::path config_path{};
  /// Do not read any `tokenizer_config.json`.
  bool ignore_config = false;
  std::optional<token_encoding> encoding{};
  /// Word-boundary marker (UTF-8), e.g. "Ġ" or "▁".
  std::optional<std::string> marker{};
  std::optional<bool> strip_leading_space{};
  std::optional<bool> clean_up_spaces{};
};

namespace detail {

inline std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  FUSEKIT_EXPECTS(in.good(), io_error, "cannot open '" + path.string() + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  FUSEKIT_EXPECTS(!in.bad(), io_error, "cannot read '" + path.string() + "'");
  return ss.str();
}

/// Parses JSON, dropping `model.merges` (large and unused here) while parsing.
inline nlohmann::json parse_tokenizer_json(const std::string& text, const std::filesystem::path& path) {
  try {
    return nlohmann::json::parse(
        text, [](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
          if (event == nlohmann::json::parse_event_t::key && depth == 2 && parsed == "merges") return false;
          return true;
        });
  } catch (const nlohmann::json::exception& e) {
    throw_error(errc::parse_error, "'" + path.string() + "': invalid JSON: " + e.what());
  }
}

/// Calls f(component) for a pre-tokenizer/decoder/normalizer object and its `Sequence` children.
template <class F>
void for_each_component(const nlohmann::json& j, F&& f) {
  if (!j.is_object()) return;
  f(j);
  for (const char* key : {"pretokenizers", "decoders", "normalizers"}) {
    const auto it = j.find(key);
    if (it != j.end() && it->is_array())
      for (const auto& c : *it) for_each_component(c, f);
  }
}

inline std::string component_type(const nlohmann::json& c) {
  const auto it = c.find("type");
  return (it != c.end() && it->is_string()) ? it->get<std::string>() : std::string{};
}

/// The string pattern of a Replace component, or empty.
inline std::string replace_pattern(const nlohmann::json& c) {
  const auto it = c.find("pattern");
  if (it == c.end() || !it->is_object()) return {};
  const auto s = it->find("String");
  return (s != it->end() && s->is_string()) ? s->get<std::string>() : std::string{};
}

inline std::string json_string_or_empty(const nlohmann::json& c, const char* key) {
  const auto it = c.find(key);
  return (it != c.end() && it->is_string()) ? it->get<std::string>() : std::string{};
}

}  // namespace detail

/// Largest token id + 1 accepted from a tokenizer.json. Ids index dense tables (the vocabulary, mappings,
/// count matrices), so one stray huge id would allocate gigabytes; real vocabularies stay below ~300,000
/// (Gemma 3: 262,144) and 2^24 leaves ample room.
inline constexpr std::int64_t max_token_id = std::int64_t{1} << 24;

namespace detail {
inline vocabulary load_hf_vocabulary_impl(const std::filesystem::path& tokenizer_json, const hf_load_options& options) {
  const std::string file = tokenizer_json.string();
  const nlohmann::json root = detail::parse_tokenizer_json(detail::read_text_file(tokenizer_json), tokenizer_json);
  FUSEKIT_EXPECTS(root.is_object(), parse_error, "'" + file + "': top level is not a JSON object");
  const auto model_it = root.find("model");
  FUSEKIT_EXPECTS(model_it != root.end() && model_it->is_object(), parse_error,
                  "'" + file + "': field 'model' missing or not an object");
  const nlohmann::json& model = *model_it;
  const auto vocab_it = model.find("vocab");
  FUSEKIT_EXPECTS(vocab_it != model.end(), parse_error, "'" + file + "': field 'model.vocab' missing");

  vocabulary v;
  // ---- encoding detection
  bool byte_level = false, spm = false, byte_fallback = false, strip = false;
  std::string spm_marker = utf8_encode(sentencepiece_marker);
  const std::string space = " ";
  for (const char* part : {"pre_tokenizer", "decoder", "normalizer"}) {
    const auto it = root.find(part);
    if (it == root.end()) continue;
    detail::for_each_component(*it, [&](const nlohmann::json& c) {
      const std::string type = detail::component_type(c);
      if (type == "ByteLevel" && std::string(part) != "normalizer") byte_level = true;
      if (type == "Metaspace") {
        spm = true;
        const std::string r = detail::json_string_or_empty(c, "replacement");
        if (!r.empty()) spm_marker = r;
        if (std::string(part) == "decoder") {
          const auto aps = c.find("add_prefix_space");
          const std::string scheme = detail::json_string_or_empty(c, "prepend_scheme");
          if ((aps != c.end() && aps->is_boolean() && aps->get<bool>()) || scheme == "always" || scheme == "first")
            strip = true;
        }
      }
      if (type == "Replace") {
        const std::string pat = detail::replace_pattern(c);
        const std::string content = detail::json_string_or_empty(c, "content");
        if (std::string(part) == "decoder" && content == space && !pat.empty()) {
          spm = true;
          spm_marker = pat;
        }
        if (std::string(part) == "normalizer" && pat == space && !content.empty()) {
          spm = true;
          spm_marker = content;
        }
      }
      if (type == "ByteFallback") byte_fallback = true;
      if (type == "Strip" && std::string(part) == "decoder") {
        const auto st = c.find("start");
        if (st != c.end() && st->is_number_integer() && st->get<std::int64_t>() >= 1) strip = true;
      }
    });
  }
  if (const auto bf = model.find("byte_fallback"); bf != model.end() && bf->is_boolean() && bf->get<bool>())
    byte_fallback = true;
  token_encoding enc = byte_level ? token_encoding::byte_level
                       : spm      ? token_encoding::sentencepiece
                                  : token_encoding::plain;
  if (options.encoding) enc = *options.encoding;
  v.set_encoding(enc);
  if (enc == token_encoding::sentencepiece && !options.marker) v.set_marker(spm_marker);
  if (options.marker) v.set_marker(*options.marker);
  v.set_strip_leading_space(options.strip_leading_space.value_or(strip && enc == token_encoding::sentencepiece));

  // ---- model vocabulary
  auto check_id = [&](std::int64_t id, const std::string& where) {
    FUSEKIT_EXPECTS(id >= 0 && id < max_token_id, parse_error,
                    "'" + file + "': " + where + ": id " + std::to_string(id) + " out of range [0, " +
                        std::to_string(max_token_id) + ")");
  };
  auto add_model_token = [&](std::int64_t id, std::string s, const std::string& where) {
    check_id(id, where);
    if (id < v.size() && v.contains(id))
      throw_error(errc::parse_error, "'" + file + "': " + where + ": id " + std::to_string(id) +
                                         " used by both '" + v.raw(id) + "' and '" + s + "'");
    const bool is_byte = byte_fallback && enc == token_encoding::sentencepiece && detail::parse_byte_token(s) >= 0;
    v.set_token(id, std::move(s), is_byte ? token_kind::byte_fallback : token_kind::normal);
  };
  if (vocab_it->is_object()) {
    for (auto it = vocab_it->begin(); it != vocab_it->end(); ++it) {
      FUSEKIT_EXPECTS(it.value().is_number_integer(), parse_error,
                      "'" + file + "': field 'model.vocab': value of '" + it.key() + "' is not an integer id");
      add_model_token(it.value().get<std::int64_t>(), it.key(), "field 'model.vocab'");
    }
  } else if (vocab_it->is_array()) {  // Unigram: [[piece, score], ...]
    std::int64_t id = 0;
    for (const auto& e : *vocab_it) {
      FUSEKIT_EXPECTS(e.is_array() && !e.empty() && e[0].is_string(), parse_error,
                      "'" + file + "': field 'model.vocab[" + std::to_string(id) + "]' is not [piece, score]");
      add_model_token(id, e[0].get<std::string>(), "field 'model.vocab'");
      ++id;
    }
  } else {
    throw_error(errc::parse_error, "'" + file + "': field 'model.vocab' is neither an object nor a list");
  }

  // ---- added tokens
  if (const auto at = root.find("added_tokens"); at != root.end() && !at->is_null()) {
    FUSEKIT_EXPECTS(at->is_array(), parse_error, "'" + file + "': field 'added_tokens' is not a list");
    std::size_t k = 0;
    for (const auto& t : *at) {
      const std::string where = "field 'added_tokens[" + std::to_string(k++) + "]'";
      FUSEKIT_EXPECTS(t.is_object() && t.contains("id") && t["id"].is_number_integer() && t.contains("content") &&
                          t["content"].is_string(),
                      parse_error, "'" + file + "': " + where + " needs an integer 'id' and a string 'content'");
      const std::int64_t id = t["id"].get<std::int64_t>();
      check_id(id, where);
      const bool special = t.value("special", false);
      std::string content = t["content"].get<std::string>();
      if (v.contains(id) && v.raw(id) == content) {  // already in the model vocabulary
        if (special) v.set_token(id, std::move(content), token_kind::special);  // decoded verbatim, like HF
        continue;
      }
      v.set_token(id, std::move(content), special ? token_kind::special : token_kind::added);
    }
  }
  v.rebuild();

  // ---- tokenizer_config.json
  std::filesystem::path cfg_path = options.config_path;
  if (cfg_path.empty() && !options.ignore_config) {
    const auto sibling = tokenizer_json.parent_path() / "tokenizer_config.json";
    if (std::filesystem::exists(sibling)) cfg_path = sibling;
  }
  bool clean_up = false;
  std::string unk_from_model = detail::json_string_or_empty(model, "unk_token");
  if (!unk_from_model.empty()) {
    const std::int32_t id = v.find(unk_from_model);
    if (id >= 0) v.set_unk_id(id);
  }
  if (!cfg_path.empty() && !options.ignore_config) {
    const std::string cfile = cfg_path.string();
    nlohmann::json cfg;
    try {
      cfg = nlohmann::json::parse(detail::read_text_file(cfg_path));
    } catch (const nlohmann::json::exception& e) {
      throw_error(errc::parse_error, "'" + cfile + "': invalid JSON: " + e.what());
    }
    FUSEKIT_EXPECTS(cfg.is_object(), parse_error, "'" + cfile + "': top level is not a JSON object");
    auto role = [&](const char* field) -> std::optional<std::int32_t> {
      const auto it = cfg.find(field);
      if (it == cfg.end()) return std::nullopt;
      if (it->is_null()) return -1;
      std::string content;
      if (it->is_string()) content = it->get<std::string>();
      else if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
        content = (*it)["content"].get<std::string>();
      else
        throw_error(errc::parse_error, "'" + cfile + "': field '" + field + "' is neither a string, an object with 'content' nor null");
      const std::int32_t id = v.find(content);
      FUSEKIT_EXPECTS(id >= 0, parse_error,
                      "'" + cfile + "': field '" + field + "': token '" + content + "' is not in the vocabulary of '" + file + "'");
      return id;
    };
    if (auto id = role("bos_token")) v.set_bos_id(*id);
    if (auto id = role("eos_token")) v.set_eos_id(*id);
    if (auto id = role("unk_token")) v.set_unk_id(*id);
    if (auto id = role("pad_token")) v.set_pad_id(*id);
    if (const auto it = cfg.find("clean_up_tokenization_spaces"); it != cfg.end()) {
      FUSEKIT_EXPECTS(it->is_boolean(), parse_error, "'" + cfile + "': field 'clean_up_tokenization_spaces' is not a boolean");
      clean_up = it->get<bool>();
    }
  }
  v.set_clean_up_spaces(options.clean_up_spaces.value_or(clean_up));
  return v;
}
}  // namespace detail

/// Loads the vocabulary of a Hugging Face `tokenizer.json`.
inline vocabulary load_hf_vocabulary(const std::filesystem::path& tokenizer_json, const hf_load_options& options = {}) {
  try {
    return detail::load_hf_vocabulary_impl(tokenizer_json, options);
  } catch (const nlohmann::json::exception& e) {  // a field of an unexpected JSON type
    throw_error(errc::parse_error, "'" + tokenizer_json.string() + "' (or its tokenizer_config.json): unexpected JSON value: " + e.what());
  }
}

}  // namespace fusekit::vocab
