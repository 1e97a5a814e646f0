/// @file
/// @brief JSON-lines I/O for preference-data construction (requires nlohmann/json).
///
/// Input, one JSON object per line (blank lines are skipped):
///     {"prompt_id": "p1", "prompt": "...", "samples": [{"source": "m", "response": "...", "reward": 0.18,
///                                                       "correct": true}]}
/// `prompt_id` may be a string or an integer; `correct` is optional (boolean). Unknown keys are
/// ignored. Errors are fusekit::error(parse_error) naming the file, the 1-based line and the field,
/// e.g. `samples.jsonl:12: samples[3].reward: expected a finite number, got "high"`.
#pragma once

#include <cmath>
#include <cstdint>
#include <fstream>
#include <istream>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <fusekit/core/error.hpp>
#include <fusekit/prefs/build.hpp>

namespace fusekit::prefs {

namespace detail {

[[noreturn]] inline void bad_field(const std::string& where, std::int64_t line, const std::string& field,
                                   const std::string& what) {
  throw_error(errc::parse_error, where + ":" + std::to_string(line) + ": " + field + ": " + what);
}
inline std::string show(const nlohmann::json& j) {
  std::string s = j.dump();
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}
inline std::string get_string(const nlohmann::json& o, const char* key, const std::string& field,
                              const std::string& where, std::int64_t line, bool allow_int = false) {
  const auto it = o.find(key);
  if (it == o.end())
    bad_field(where, line, field, "missing");
  if (it->is_string())
    return it->get<std::string>();
  if (allow_int && it->is_number_integer())
    return std::to_string(it->get<std::int64_t>());
  bad_field(where, line, field,
            std::string("expected a string") + (allow_int ? " or an integer" : "") + ", got " + show(*it));
}

} // namespace detail

/// Parses one input line (already known to be non-blank). `where` names the file in messages.
inline prompt_samples parse_prompt_line(const std::string& text, std::int64_t line,
                                        const std::string& where = "input") {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) { // parse_error, and out_of_range for a number beyond double (1e999)
    throw_error(errc::parse_error, where + ":" + std::to_string(line) + ": invalid JSON (" + e.what() + ")");
  }
  if (!j.is_object())
    detail::bad_field(where, line, "<line>", "expected a JSON object, got " + detail::show(j));
  prompt_samples p;
  p.prompt_id = detail::get_string(j, "prompt_id", "prompt_id", where, line, true);
  p.prompt = detail::get_string(j, "prompt", "prompt", where, line);
  const auto it = j.find("samples");
  if (it == j.end())
    detail::bad_field(where, line, "samples", "missing");
  if (!it->is_array())
    detail::bad_field(where, line, "samples", "expected an array, got " + detail::show(*it));
  for (std::size_t k = 0; k < it->size(); ++k) {
    const auto& s = (*it)[k];
    const std::string f = "samples[" + std::to_string(k) + "]";
    if (!s.is_object())
      detail::bad_field(where, line, f, "expected an object, got " + detail::show(s));
    sample out;
    out.source = detail::get_string(s, "source", f + ".source", where, line);
    out.response = detail::get_string(s, "response", f + ".response", where, line);
    const auto r = s.find("reward");
    if (r == s.end())
      detail::bad_field(where, line, f + ".reward", "missing");
    if (!r->is_number() || !std::isfinite(r->get<double>()))
      detail::bad_field(where, line, f + ".reward", "expected a finite number, got " + detail::show(*r));
    out.reward = r->get<double>();
    const auto c = s.find("correct");
    if (c != s.end() && !c->is_null()) {
      if (!c->is_boolean())
        detail::bad_field(where, line, f + ".correct", "expected true or false, got " + detail::show(*c));
      out.correct = c->get<bool>();
    }
    p.samples.push_back(std::move(out));
  }
  return p;
}

/// Reads every prompt of a JSONL stream.
inline std::vector<prompt_samples> read_prompts(std::istream& in, const std::string& where = "input") {
  std::vector<prompt_samples> v;
  std::string text;
  std::int64_t line = 0;
  while (std::getline(in, text)) {
    ++line;
    if (text.find_first_not_of(" \t\r\n") == std::string::npos)
      continue;
    v.push_back(parse_prompt_line(text, line, where));
  }
  FUSEKIT_EXPECTS(!in.bad(), io_error, where + ": read error after line " + std::to_string(line));
  return v;
}

/// Reads every prompt of a JSONL file.
inline std::vector<prompt_samples> read_prompts_file(const std::string& path) {
  std::ifstream f(path);
  FUSEKIT_EXPECTS(f.good(), io_error, "cannot open " + path);
  return read_prompts(f, path);
}

inline nlohmann::json to_json(const sft_record& r) {
  return {{"prompt_id", r.prompt_id},
          {"prompt", r.prompt},
          {"response", r.response},
          {"source", r.source},
          {"reward", r.reward}};
}
inline nlohmann::json to_json(const dpo_record& r) {
  return {{"prompt_id", r.prompt_id},
          {"prompt", r.prompt},
          {"chosen", r.chosen},
          {"rejected", r.rejected},
          {"source", r.source},
          {"chosen_reward", r.chosen_reward},
          {"rejected_reward", r.rejected_reward}};
}
/// WRPO record: `chosen` = [y_ws, y_wt] and `rejected` = [y_l] as SLIT-AI/WRPO stores them, plus the
/// rewards and the source model of y_ws.
inline nlohmann::json to_json(const wrpo_record& r) {
  return {{"prompt_id", r.prompt_id},
          {"prompt", r.prompt},
          {"chosen", {r.source_chosen, r.target_chosen}},
          {"rejected", {r.rejected}},
          {"source_chosen_source", r.source_chosen_source},
          {"source_chosen_reward", r.source_chosen_reward},
          {"target_chosen_reward", r.target_chosen_reward},
          {"rejected_reward", r.rejected_reward}};
}
/// The summary as JSON (counts and per-reason drops).
inline nlohmann::json to_json(const build_summary& s) {
  nlohmann::json reasons = nlohmann::json::object();
  for (std::size_t i = 0; i < s.reasons.size(); ++i)
    reasons[std::string(drop_reason_names[i])] = s.reasons[i];
  return {{"prompts", s.prompts},         {"sft_side", s.sft_side},       {"dpo_side", s.dpo_side},
          {"sft_records", s.sft_records}, {"dpo_records", s.dpo_records}, {"wrpo_records", s.wrpo_records},
          {"dropped_prompts", s.dropped}, {"dropped_by_reason", reasons}};
}

/// Writes one JSON object per line.
template <class R> void write_jsonl(std::ostream& out, const std::vector<R>& records) {
  for (const auto& r : records)
    out << to_json(r).dump() << '\n';
}

} // namespace fusekit::prefs
