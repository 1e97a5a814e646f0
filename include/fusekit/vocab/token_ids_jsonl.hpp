#pragma once
/// @file
/// Reading paired tokenizations of a corpus: JSONL files with one `{"id": ..., "ids": [int, ...]}`
/// object per text, in corpus order (the format of `corpus/tokenized/<tokenizer>.jsonl`).
///
/// `read_token_ids_jsonl` checks every line (valid JSON, an integer array `ids`, every id inside the
/// vocabulary when a size is given) and reports `file:line: field` on failure; `check_paired` checks that
/// two files describe the same texts (same number of lines, same `id` on every line).

#include <fusekit/core/error.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace fusekit::vocab {

/// One tokenized corpus file.
struct token_id_corpus {
  std::filesystem::path path;
  std::vector<std::string> text_ids;              ///< the `id` of every line ("" if absent), as JSON text
  std::vector<std::vector<std::int32_t>> texts;  ///< the `ids` of every line
};

/// Reads a token-id JSONL file; `vocab_size > 0` checks every id against `[0, vocab_size)`.
inline token_id_corpus read_token_ids_jsonl(const std::filesystem::path& path, std::int64_t vocab_size = 0) {
  std::ifstream in(path);
  FUSEKIT_EXPECTS(in.good(), io_error, "cannot open '" + path.string() + "'");
  token_id_corpus c;
  c.path = path;
  std::string line;
  std::int64_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    const std::string where = "'" + path.string() + "' line " + std::to_string(lineno);
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank line
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw_error(errc::parse_error, where + ": invalid JSON: " + e.what());
    }
    FUSEKIT_EXPECTS(j.is_object(), parse_error, where + ": not a JSON object");
    const auto ids = j.find("ids");
    FUSEKIT_EXPECTS(ids != j.end() && ids->is_array(), parse_error, where + ": field 'ids' missing or not a list");
    std::vector<std::int32_t> v;
    v.reserve(ids->size());
    for (std::size_t k = 0; k < ids->size(); ++k) {
      const auto& x = (*ids)[k];
      FUSEKIT_EXPECTS(x.is_number_integer(), parse_error,
                      where + ": field 'ids[" + std::to_string(k) + "]' is not an integer");
      const auto id = x.get<std::int64_t>();
      FUSEKIT_EXPECTS(id >= 0 && (vocab_size <= 0 || id < vocab_size) && id < (std::int64_t{1} << 31), out_of_range,
                      where + ": field 'ids[" + std::to_string(k) + "]' = " + std::to_string(id) +
                          " is outside the vocabulary [0, " + std::to_string(vocab_size) + ")");
      v.push_back(static_cast<std::int32_t>(id));
    }
    const auto id = j.find("id");
    c.text_ids.push_back(id == j.end() ? std::string() : id->dump());
    c.texts.push_back(std::move(v));
  }
  FUSEKIT_EXPECTS(!in.bad(), io_error, "cannot read '" + path.string() + "'");
  return c;
}

/// Checks that two tokenized corpora describe the same texts in the same order.
inline void check_paired(const token_id_corpus& a, const token_id_corpus& b) {
  FUSEKIT_EXPECTS(a.texts.size() == b.texts.size(), shape_mismatch,
                  "'" + a.path.string() + "' has " + std::to_string(a.texts.size()) + " texts but '" + b.path.string() +
                      "' has " + std::to_string(b.texts.size()));
  for (std::size_t t = 0; t < a.texts.size(); ++t)
    FUSEKIT_EXPECTS(a.text_ids[t] == b.text_ids[t], invalid_argument,
                    "text " + std::to_string(t + 1) + ": id " + a.text_ids[t] + " in '" + a.path.string() + "' but " +
                        b.text_ids[t] + " in '" + b.path.string() + "' (the files must list the same texts in the same order)");
}

}  // namespace fusekit::vocab
