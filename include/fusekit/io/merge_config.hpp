/// @file
/// @brief mergekit-style YAML merge configurations (`merge_method`, `base_model`, `models` / `slices`,
/// `parameters` with scalars, per-layer gradients and `{filter, value}` lists) and mergekit's rules for
/// resolving a parameter for one tensor. Requires yaml-cpp.
///
/// Resolution (mergekit `config.py` / `plan.py`): a setting is a scalar, a gradient (list of numbers,
/// linearly interpolated at t: s = t·(L−1)), a list of non-numbers (element floor(t·(L−1))), or a list of
/// `{filter, value}` entries tried in order, the first whose filter is absent, "*", or a substring of
/// the tensor name winning. Precedence: the source's own parameters (`models[i].parameters`,
/// `slices[k].sources[i].parameters`) → `slices[k].parameters` → top-level `parameters`; a level whose
/// filters match nothing falls through to the next.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <yaml-cpp/yaml.h>

#include <fusekit/core/error.hpp>
#include <fusekit/io/dtype.hpp>
#include <fusekit/merge/registry.hpp>

namespace fusekit::io {

/// A scalar parameter value: a number, a boolean, or a word (choice parameters such as sign_election).
struct param_scalar {
  bool is_bool = false; ///< true: `boolean` holds the value
  double number = 0;    ///< numeric value (when neither is_bool nor is_word)
  bool boolean = false; ///< boolean value
  bool is_word = false; ///< true: `word` holds the value
  std::string word;     ///< word value

  /// As a registry parameter value.
  [[nodiscard]] merge_param to_param() const {
    if (is_word)
      return word;
    if (is_bool)
      return boolean;
    return number;
  }
  /// For messages and the plan printout.
  [[nodiscard]] std::string to_string() const {
    if (is_word)
      return word;
    if (is_bool)
      return boolean ? "true" : "false";
    std::ostringstream o;
    o << number;
    return o.str();
  }
};

/// One `{filter, value}` entry (or the whole setting, unfiltered). `values.size() > 1` is a gradient.
struct param_entry {
  std::optional<std::string> filter; ///< substring of the tensor name; nullopt or "*" matches all
  std::vector<param_scalar> values;  ///< one value, or a gradient's anchors
};

/// A parameter setting as written in the YAML, with its key path for messages.
struct parameter_setting {
  std::vector<param_entry> entries; ///< a scalar or gradient is one unfiltered entry
  std::string key;                  ///< "models[1].parameters.weight"

  /// The value for tensor `tensor` at layer position t in [0, 1], or nullopt when no filter matches.
  [[nodiscard]] std::optional<param_scalar> evaluate(std::string_view tensor, double t) const {
    for (const auto& e : entries) {
      if (e.filter && *e.filter != "*" && tensor.find(*e.filter) == std::string_view::npos)
        continue;
      return evaluate_values(e.values, t);
    }
    return std::nullopt;
  }

  /// A gradient's value at t (mergekit: s = t·(L−1), interpolate anchors floor(s) and floor(s)+1;
  /// lists of booleans pick element floor(t·(L−1))).
  [[nodiscard]] static param_scalar evaluate_values(const std::vector<param_scalar>& v, double t) {
    if (v.size() == 1)
      return v[0];
    const double s = t * static_cast<double>(v.size() - 1);
    bool all_numbers = true;
    for (const auto& x : v)
      all_numbers = all_numbers && !x.is_bool && !x.is_word;
    if (!all_numbers)
      return v[std::min(v.size() - 1, static_cast<std::size_t>(s))];
    const auto i0 = std::min(v.size() - 1, static_cast<std::size_t>(std::floor(s)));
    const auto i1 = std::min(v.size() - 1, i0 + 1);
    const double frac = s - static_cast<double>(i0);
    return param_scalar{false, (1.0 - frac) * v[i0].number + frac * v[i1].number, false, false, {}};
  }
};

/// Parameter name -> setting.
using parameter_map = std::map<std::string, parameter_setting>;

/// One input of a `models:` list or of a slice's `sources:`.
struct model_source {
  std::string model;                              ///< model reference as written (a local path)
  parameter_map parameters;                       ///< the source's own parameters
  std::optional<std::pair<int, int>> layer_range; ///< [start, end) for slice sources
  std::string key;                                ///< "models[0]" / "slices[1].sources[0]"
};

/// One output slice.
struct slice_definition {
  std::vector<model_source> sources;       ///< inputs of this slice
  parameter_map parameters;                ///< slice-level parameters
  std::optional<std::string> base_model;   ///< overrides the top-level base_model
  std::string key;                         ///< "slices[1]"
};

/// A parsed merge configuration.
struct merge_config {
  std::string merge_method;                  ///< registry name ("ties")
  std::optional<std::string> base_model;     ///< model reference
  std::vector<model_source> models;          ///< `models:` form (empty when `slices:` is used)
  std::vector<slice_definition> slices;      ///< `slices:` form (empty when `models:` is used)
  parameter_map parameters;                  ///< top-level parameters
  std::optional<dtype> compute_dtype;        ///< `dtype:`
  std::optional<dtype> out_dtype;            ///< `out_dtype:`
  std::optional<std::string> tokenizer_source; ///< "base" or a model reference (tokenizer files copied from it)
  std::filesystem::path source_file;         ///< the YAML file (for relative paths and messages)

  /// The dtype written to disk: out_dtype, else dtype, else nullopt (= the base's dtype).
  [[nodiscard]] std::optional<dtype> output_dtype() const { return out_dtype ? out_dtype : compute_dtype; }
};

namespace detail {

[[noreturn]] inline void config_error(std::string_view file, const std::string& key, const YAML::Node* node,
                                      const std::string& what, errc code = errc::parse_error) {
  std::string m(file);
  if (node != nullptr && node->Mark().line >= 0)
    m += ":" + std::to_string(node->Mark().line + 1);
  m += ": ";
  if (!key.empty())
    m += "'" + key + "': ";
  m += what;
  throw_error(code, std::move(m));
}

inline std::string node_kind(const YAML::Node& n) {
  switch (n.Type()) {
  case YAML::NodeType::Null: return "null";
  case YAML::NodeType::Scalar: return "scalar '" + n.Scalar() + "'";
  case YAML::NodeType::Sequence: return "a list";
  case YAML::NodeType::Map: return "a mapping";
  default: return "nothing";
  }
}

/// The text of a mapping key; `where` is the mapping's key path in messages. YAML allows lists and
/// mappings as keys (`? [a, b]: 1`, `{{}: 1}`); a configuration never uses them.
inline std::string map_key(std::string_view file, const std::string& where, const YAML::Node& k) {
  if (!k.IsScalar())
    config_error(file, where, &k, "a mapping key must be a plain string, got " + node_kind(k));
  return k.Scalar();
}

inline std::optional<param_scalar> scalar_value(const YAML::Node& n) {
  if (!n.IsScalar())
    return std::nullopt;
  const std::string& s = n.Scalar();
  if (s == "true" || s == "True" || s == "TRUE")
    return param_scalar{true, 0, true, false, {}};
  if (s == "false" || s == "False" || s == "FALSE")
    return param_scalar{true, 0, false, false, {}};
  if (s.empty())
    return std::nullopt;
  if (n.Tag() != "!") { // quoted strings are words, never numbers
    try {
      std::size_t pos = 0;
      const double d = std::stod(s, &pos);
      if (pos == s.size() && std::isfinite(d))
        return param_scalar{false, d, false, false, {}};
    } catch (...) {
    }
  }
  return param_scalar{false, 0, false, true, s};
}

inline std::string scalar_string(std::string_view file, const std::string& key, const YAML::Node& n) {
  if (!n.IsScalar() || n.Scalar().empty())
    config_error(file, key, &n, "must be a string, got " + node_kind(n));
  return n.Scalar();
}

inline std::vector<param_scalar> value_list(std::string_view file, const std::string& key, const YAML::Node& n) {
  std::vector<param_scalar> out;
  if (n.IsScalar()) {
    auto v = scalar_value(n);
    if (!v)
      config_error(file, key, &n, "must be a number, a boolean or a list of numbers, got " + node_kind(n));
    out.push_back(*v);
    return out;
  }
  if (!n.IsSequence() || n.size() == 0)
    config_error(file, key, &n, "must be a number, a boolean or a non-empty list of numbers, got " + node_kind(n));
  for (std::size_t i = 0; i < n.size(); ++i) {
    auto v = scalar_value(n[i]);
    if (!v)
      config_error(file, key + "[" + std::to_string(i) + "]", &n, "gradient anchors must be numbers or booleans, got " +
                                                                     node_kind(n[i]));
    out.push_back(*v);
  }
  return out;
}

inline parameter_setting parse_setting(std::string_view file, const std::string& key, const YAML::Node& n) {
  parameter_setting s;
  s.key = key;
  const bool filtered = n.IsSequence() && n.size() > 0 && n[0].IsMap();
  if (!filtered) {
    s.entries.push_back({std::nullopt, value_list(file, key, n)});
    return s;
  }
  for (std::size_t i = 0; i < n.size(); ++i) {
    const std::string k = key + "[" + std::to_string(i) + "]";
    const YAML::Node e = n[i];
    if (!e.IsMap())
      config_error(file, k, &e, "a list of {filter, value} entries cannot mix in " + node_kind(e));
    param_entry pe;
    bool has_value = false;
    for (auto it = e.begin(); it != e.end(); ++it) {
      const std::string f = map_key(file, k, it->first);
      if (f == "filter") {
        pe.filter = scalar_string(file, k + ".filter", it->second);
      } else if (f == "value") {
        pe.values = value_list(file, k + ".value", it->second);
        has_value = true;
      } else {
        config_error(file, k + "." + f, &e, "unknown key (a filtered entry has 'filter' and 'value')");
      }
    }
    if (!has_value)
      config_error(file, k, &e, "missing 'value'");
    s.entries.push_back(std::move(pe));
  }
  return s;
}

inline parameter_map parse_parameters(std::string_view file, const std::string& key, const YAML::Node& n) {
  parameter_map m;
  if (!n || n.IsNull())
    return m;
  if (!n.IsMap())
    config_error(file, key, &n, "must be a mapping of parameter names to values, got " + node_kind(n));
  for (auto it = n.begin(); it != n.end(); ++it) {
    const std::string name = map_key(file, key, it->first);
    const std::string k = key + "." + name;
    if (m.count(name))
      config_error(file, k, &n, "given twice");
    m.emplace(name, parse_setting(file, k, it->second));
  }
  return m;
}

inline void check_model_ref(std::string_view file, const std::string& key, const YAML::Node& n, const std::string& ref) {
  if (ref.find('+') != std::string::npos && !std::filesystem::exists(ref))
    config_error(file, key, &n, "'" + ref + "': applying a LoRA on the fly (model+lora) is not supported; merge the adapter first",
                 errc::unsupported);
}

inline model_source parse_source(std::string_view file, const std::string& key, const YAML::Node& n, bool in_slice) {
  if (!n.IsMap())
    config_error(file, key, &n, "must be a mapping with 'model' (and 'parameters'), got " + node_kind(n));
  model_source s;
  s.key = key;
  bool has_model = false;
  for (auto it = n.begin(); it != n.end(); ++it) {
    const std::string f = map_key(file, key, it->first);
    if (f == "model") {
      s.model = scalar_string(file, key + ".model", it->second);
      check_model_ref(file, key + ".model", it->second, s.model);
      has_model = true;
    } else if (f == "parameters") {
      s.parameters = parse_parameters(file, key + ".parameters", it->second);
    } else if (f == "layer_range" && in_slice) {
      const YAML::Node r = it->second;
      auto a = r.IsSequence() && r.size() == 2 ? scalar_value(r[0]) : std::nullopt;
      auto b = r.IsSequence() && r.size() == 2 ? scalar_value(r[1]) : std::nullopt;
      if (!a || !b || a->is_bool || b->is_bool || a->number != std::floor(a->number) ||
          b->number != std::floor(b->number) || a->number < 0 || b->number < a->number ||
          b->number > static_cast<double>(std::numeric_limits<int>::max()))
        config_error(file, key + ".layer_range", &r,
                     "must be [start, end) with 0 <= start <= end integers (at most " +
                         std::to_string(std::numeric_limits<int>::max()) + ")");
      s.layer_range = std::pair<int, int>(static_cast<int>(a->number), static_cast<int>(b->number));
    } else {
      config_error(file, key + "." + f, &n,
                   in_slice ? "unknown key (a slice source has model, layer_range, parameters)"
                            : "unknown key (a models entry has model, parameters)");
    }
  }
  if (!has_model)
    config_error(file, key, &n, "missing 'model'");
  if (in_slice && !s.layer_range)
    config_error(file, key, &n, "missing 'layer_range'");
  return s;
}

/// The schema checks of parse_merge_config on a loaded YAML tree.
inline merge_config parse_merge_config_tree(const YAML::Node& root, const std::filesystem::path& file) {
  const std::string f = file.string();
  if (!root.IsMap())
    config_error(f, "", &root, "a merge configuration must be a YAML mapping, got " + detail::node_kind(root));
  merge_config c;
  c.source_file = file;
  bool has_method = false;
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string key = detail::map_key(f, "", it->first);
    const YAML::Node v = it->second;
    if (key == "merge_method") {
      c.merge_method = detail::scalar_string(f, key, v);
      has_method = true;
    } else if (key == "base_model") {
      c.base_model = detail::scalar_string(f, key, v);
      detail::check_model_ref(f, key, v, *c.base_model);
    } else if (key == "models") {
      if (!v.IsSequence() || v.size() == 0)
        config_error(f, key, &v, "must be a non-empty list of {model, parameters}");
      for (std::size_t i = 0; i < v.size(); ++i)
        c.models.push_back(detail::parse_source(f, "models[" + std::to_string(i) + "]", v[i], false));
    } else if (key == "slices") {
      if (!v.IsSequence() || v.size() == 0)
        config_error(f, key, &v, "must be a non-empty list of {sources, parameters}");
      for (std::size_t i = 0; i < v.size(); ++i) {
        const std::string sk = "slices[" + std::to_string(i) + "]";
        const YAML::Node s = v[i];
        if (!s.IsMap())
          config_error(f, sk, &s, "must be a mapping with 'sources'");
        slice_definition sd;
        sd.key = sk;
        for (auto jt = s.begin(); jt != s.end(); ++jt) {
          const std::string k2 = detail::map_key(f, sk, jt->first);
          if (k2 == "sources") {
            if (!jt->second.IsSequence() || jt->second.size() == 0)
              config_error(f, sk + ".sources", &s, "must be a non-empty list");
            for (std::size_t j = 0; j < jt->second.size(); ++j)
              sd.sources.push_back(detail::parse_source(f, sk + ".sources[" + std::to_string(j) + "]", jt->second[j], true));
          } else if (k2 == "parameters") {
            sd.parameters = detail::parse_parameters(f, sk + ".parameters", jt->second);
          } else if (k2 == "base_model") {
            sd.base_model = detail::scalar_string(f, sk + ".base_model", jt->second);
          } else {
            config_error(f, sk + "." + k2, &s, "unknown key (a slice has sources, parameters, base_model)");
          }
        }
        if (sd.sources.empty())
          config_error(f, sk, &s, "missing 'sources'");
        c.slices.push_back(std::move(sd));
      }
    } else if (key == "parameters") {
      c.parameters = detail::parse_parameters(f, key, v);
    } else if (key == "dtype" || key == "out_dtype") {
      const std::string s = detail::scalar_string(f, key, v);
      const auto d = parse_torch_dtype(s);
      if (!d)
        config_error(f, key, &v, "unknown dtype '" + s + "' (use float32, float16 or bfloat16)");
      (key == "dtype" ? c.compute_dtype : c.out_dtype) = d;
    } else if (key == "tokenizer_source") {
      const std::string s = detail::scalar_string(f, key, v);
      if (s == "union")
        config_error(f, key, &v, "'union' (building a merged vocabulary) is not supported; use 'base' or a model",
                     errc::unsupported);
      c.tokenizer_source = s;
    } else if (key == "tokenizer") {
      if (!v.IsMap())
        config_error(f, key, &v, "must be a mapping with 'source'");
      for (auto jt = v.begin(); jt != v.end(); ++jt) {
        const std::string k2 = detail::map_key(f, key, jt->first);
        if (k2 == "source") {
          const std::string s = detail::scalar_string(f, "tokenizer.source", jt->second);
          if (s == "union")
            config_error(f, "tokenizer.source", &v, "'union' is not supported; use 'base' or a model", errc::unsupported);
          c.tokenizer_source = s;
        } else if (k2 == "tokens" || k2 == "pad_to_multiple_of") {
          config_error(f, "tokenizer." + k2, &v, "tokenizer surgery is not supported (only tokenizer.source)", errc::unsupported);
        } else {
          config_error(f, "tokenizer." + k2, &v, "unknown key (tokenizer has source, tokens, pad_to_multiple_of)");
        }
      }
      if (!c.tokenizer_source)
        config_error(f, key, &v, "missing 'source'");
    } else if (key == "modules") {
      config_error(f, key, &v, "multi-module configurations are not supported; use models or slices", errc::unsupported);
    } else if (key == "chat_template") {
      config_error(f, key, &v, "is not supported (the tokenizer's own chat template is copied)", errc::unsupported);
    } else if (key == "name") {
      (void)detail::scalar_string(f, key, v); // mergekit-multi document name: informational
    } else {
      config_error(f, key, &v,
                   "unknown key (known: merge_method, base_model, models, slices, parameters, dtype, out_dtype, "
                   "tokenizer_source, tokenizer)");
    }
  }
  if (!has_method)
    config_error(f, "merge_method", nullptr, "missing (e.g. merge_method: ties)");
  if (c.models.empty() == c.slices.empty())
    config_error(f, "models", nullptr, "exactly one of 'models' and 'slices' must be given");
  return c;
}

} // namespace detail

/// Parses a mergekit YAML configuration from `text`; `file` names it in messages. Checks the schema
/// (known keys, types, exactly one of models/slices); method-specific checks are in validate().
inline merge_config parse_merge_config(const std::string& text, const std::filesystem::path& file = "<config>") {
  const std::string f = file.string();
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw_error(errc::parse_error, f + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
  }
  try {
    return detail::parse_merge_config_tree(root, file);
  } catch (const YAML::Exception& e) {
    // a node access the schema checks did not foresee: still an error that names the file and line
    throw_error(errc::parse_error,
                f + (e.mark.is_null() ? std::string() : ":" + std::to_string(e.mark.line + 1)) + ": " + e.msg);
  }
}

/// Reads and parses a YAML configuration file.
inline merge_config load_merge_config(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw_error(errc::io_error, path.string() + ": cannot open the merge configuration");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_merge_config(text, path);
}

// ---- validation against a method's spec -------------------------------------------------------------

/// True when `model` names the same model as `base` (the same reference string).
inline bool same_model(const std::string& model, const std::optional<std::string>& base) {
  return base.has_value() && model == *base;
}

/// Checks `c` against the registry entry of its method (fusekit::method_info): the method exists, every
/// parameter name is known and set at a level where it applies (per-model parameters anywhere, global
/// ones not inside a model's own parameters), every value has the right type (a choice is one of its
/// words), required parameters are given for every model, the base rule and model counts hold.
/// Throws fusekit::error naming the key. Reads no file.
inline const method_spec& validate(const merge_config& c) {
  const std::string f = c.source_file.string();
  const method_spec* mp = method_info(c.merge_method);
  if (mp == nullptr) {
    std::string known;
    for (const auto& m : merge_method_list())
      known += (known.empty() ? "" : ", ") + std::string(m.name);
    detail::config_error(f, "merge_method", nullptr, "unknown method '" + c.merge_method + "' (known: " + known + ")",
                         errc::invalid_argument);
  }
  const method_spec& m = *mp;
  const std::string mname(m.name);
  auto find = [](std::span<const param_spec> specs, std::string_view n) -> const param_spec* {
    for (const auto& p : specs)
      if (p.name == n)
        return &p;
    return nullptr;
  };
  auto known_names = [&] {
    std::string s;
    for (const auto& p : m.global)
      s += (s.empty() ? "" : ", ") + std::string(p.name);
    for (const auto& p : m.per_model)
      s += (s.empty() ? "" : ", ") + std::string(p.name);
    return s.empty() ? std::string("none") : s;
  };
  auto check_map = [&](const parameter_map& pm, bool source_level) {
    for (const auto& [name, set] : pm) {
      const param_spec* g = find(m.global, name);
      const param_spec* pp = find(m.per_model, name);
      if (g == nullptr && pp == nullptr)
        detail::config_error(f, set.key, nullptr, "unknown parameter for merge_method " + mname + " (accepts: " +
                                                      known_names() + ")", errc::invalid_argument);
      if (source_level && pp == nullptr)
        detail::config_error(f, set.key, nullptr, "'" + name + "' is a global parameter of " + mname +
                                                      ": set it under the top-level (or slice) parameters",
                             errc::invalid_argument);
      const param_spec& p = pp ? *pp : *g;
      for (const auto& e : set.entries)
        for (const auto& v : e.values) {
          bool ok = false;
          switch (p.kind) {
          case param_kind::boolean: ok = v.is_bool || (!v.is_word && (v.number == 0 || v.number == 1)); break;
          case param_kind::number: ok = !v.is_bool && !v.is_word; break;
          case param_kind::integer: ok = !v.is_bool && !v.is_word && v.number == std::floor(v.number); break;
          case param_kind::choice:
            ok = v.is_word && std::find(p.choices.begin(), p.choices.end(), std::string_view(v.word)) != p.choices.end();
            break;
          }
          if (!ok) {
            std::string want = p.kind == param_kind::boolean ? "true or false"
                               : p.kind == param_kind::number ? "a number"
                               : p.kind == param_kind::integer ? "an integer"
                                                               : "one of:";
            if (p.kind == param_kind::choice)
              for (auto w : p.choices)
                want += " " + std::string(w);
            detail::config_error(f, set.key, nullptr, "must be " + want + ", got '" + v.to_string() + "'",
                                 errc::invalid_argument);
          }
        }
    }
  };
  check_map(c.parameters, false);
  for (const auto& s : c.models)
    check_map(s.parameters, true);
  for (const auto& sl : c.slices) {
    check_map(sl.parameters, false);
    for (const auto& s : sl.sources)
      check_map(s.parameters, true);
  }
  // Base model rule and model counts (per slice for slices).
  auto check_group = [&](const std::vector<model_source>& srcs, const std::optional<std::string>& base,
                         const std::string& key, const parameter_map* slice_params) {
    if (m.base == base_policy::required && !base)
      detail::config_error(f, "base_model", nullptr, "merge_method " + mname + " requires a base_model",
                           errc::invalid_argument);
    std::size_t n = 0;
    bool base_listed = false;
    for (const auto& s : srcs) {
      if (same_model(s.model, base))
        base_listed = true;
      else
        ++n;
    }
    if (m.base == base_policy::unused && base)
      ++n; // linear & co: the base is one more input (mergekit adds it when it is not listed)
    if (n < m.min_inputs || n > m.max_inputs) {
      std::string want = std::to_string(m.min_inputs);
      if (m.max_inputs == m.min_inputs)
        want = "exactly " + want;
      else if (m.max_inputs == static_cast<std::size_t>(-1))
        want = "at least " + want;
      else
        want += " to " + std::to_string(m.max_inputs);
      detail::config_error(f, key, nullptr, "merge_method " + mname + " needs " + want + " model(s)" +
                                                (m.base != base_policy::unused ? " besides the base" : "") + ", got " +
                                                std::to_string(n), errc::invalid_argument);
    }
    // Required parameters.
    for (const auto& p : m.per_model) {
      if (!p.required)
        continue;
      const std::string pn(p.name);
      auto given = [&](const parameter_map& own) {
        return own.count(pn) || (slice_params && slice_params->count(pn)) || c.parameters.count(pn);
      };
      for (const auto& s : srcs)
        if (!(m.base != base_policy::unused && same_model(s.model, base)) && !given(s.parameters))
          detail::config_error(f, s.key + ".parameters." + pn, nullptr,
                               "required by merge_method " + mname + " but not given for model '" + s.model + "'",
                               errc::invalid_argument);
      if (m.base == base_policy::unused && base && !base_listed && !given(parameter_map{}))
        detail::config_error(f, "base_model", nullptr, "merge_method " + mname + " uses the base model as an input, so it needs '" +
                                                           pn + "': list the base under models with parameters, or set " +
                                                           pn + " in the top-level parameters", errc::invalid_argument);
    }
    for (const auto& p : m.global)
      if (p.required && !c.parameters.count(std::string(p.name)) && !(slice_params && slice_params->count(std::string(p.name))))
        detail::config_error(f, "parameters." + std::string(p.name), nullptr,
                             "required by merge_method " + mname + " but not given", errc::invalid_argument);
  };
  if (!c.models.empty())
    check_group(c.models, c.base_model, "models", nullptr);
  else
    for (const auto& sl : c.slices)
      check_group(sl.sources, sl.base_model ? sl.base_model : c.base_model, sl.key + ".sources", &sl.parameters);
  return m;
}

} // namespace fusekit::io
