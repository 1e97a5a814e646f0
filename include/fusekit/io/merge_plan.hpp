/// @file
/// @brief Planning a checkpoint merge: from a validated merge_config and the inputs' safetensors headers
/// (no tensor data is read), the list of every output tensor with its inputs, resolved parameters,
/// dtype and byte counts, in the order the output is streamed.
///
/// Rules (mergekit's, see docs/checkpoints.md):
///  - A `models:` config is one slice over all layers of the reference model (the base, else the first
///    model). Layer j of an n-layer slice gets t = j/(n−1) (t = 1 when n = 1); embeddings, final norm
///    and LM head get t = 0. Embedding tensors come from the first slice, the others from the last.
///  - Tied heads: a model without `lm_head.weight` contributes its `model.embed_tokens.weight`; the output
///    has an LM head when any input has one.
///  - Vocabulary rows (embedding / LM-head tensors): GTA-family methods cut larger inputs to the base's
///    rows; linear, slerp, nuslerp, model_stock and arcee_fusion cut every input to the common top-left
///    sub-matrix; every cut is reported as a warning with the number of rows dropped. Any other shape
///    mismatch is an error naming the tensor and the models.
///  - Non-float tensors (integer buffers) are copied from the reference model; F8 inputs are rejected
///    unless the method is passthrough.
#pragma once

#include <algorithm>
#include <array>
#include <limits>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fusekit/core/error.hpp>
#include <fusekit/io/checkpoint.hpp>
#include <fusekit/io/dtype.hpp>
#include <fusekit/io/merge_config.hpp>
#include <fusekit/merge/registry.hpp>

namespace fusekit::io {

/// The input models of a merge, opened (headers validated, data mapped, nothing read).
struct model_set {
  std::vector<std::string> refs;                 ///< model references as written in the config
  std::vector<std::filesystem::path> paths;      ///< resolved folders / files
  std::vector<checkpoint> checkpoints;           ///< opened weights, parallel to refs

  /// Position of reference `ref`; throws internal if absent.
  [[nodiscard]] std::size_t index_of(const std::string& ref) const {
    for (std::size_t i = 0; i < refs.size(); ++i)
      if (refs[i] == ref)
        return i;
    throw_error(errc::internal, "model '" + ref + "' was not opened");
  }
};

/// Resolves a model reference: a path relative to the working directory, else to the config's folder.
inline std::filesystem::path resolve_model_path(const std::string& ref, const std::filesystem::path& config_file) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(ref, ec))
    return fs::path(ref);
  const fs::path alt = config_file.parent_path() / ref;
  if (!config_file.empty() && fs::path(ref).is_relative() && fs::exists(alt, ec))
    return alt;
  if (ref.find('@') != std::string::npos || (ref.find('/') != std::string::npos && !fs::path(ref).is_absolute() &&
                                             ref.find("./") == std::string::npos && std::count(ref.begin(), ref.end(), '/') == 1))
    throw_error(errc::io_error, config_file.string() + ": model '" + ref +
                                    "' is not a local folder (Hugging Face Hub ids are not downloaded: fetch the model first)");
  throw_error(errc::io_error, config_file.string() + ": model '" + ref + "': no such folder (looked in the working directory" +
                                  (config_file.empty() ? std::string(")") : " and in " + config_file.parent_path().string() + ")"));
}

/// Every model reference of `c` (base first), de-duplicated.
inline std::vector<std::string> model_refs(const merge_config& c) {
  std::vector<std::string> r;
  auto add = [&](const std::string& m) {
    if (std::find(r.begin(), r.end(), m) == r.end())
      r.push_back(m);
  };
  if (c.base_model)
    add(*c.base_model);
  for (const auto& s : c.models)
    add(s.model);
  for (const auto& sl : c.slices) {
    if (sl.base_model)
      add(*sl.base_model);
    for (const auto& s : sl.sources)
      add(s.model);
  }
  if (c.tokenizer_source && *c.tokenizer_source != "base")
    add(*c.tokenizer_source);
  return r;
}

/// Opens every model of `c` (validating all headers and indexes).
inline model_set open_models(const merge_config& c) {
  model_set m;
  m.refs = model_refs(c);
  for (const auto& r : m.refs) {
    m.paths.push_back(resolve_model_path(r, c.source_file));
    m.checkpoints.push_back(checkpoint::open(m.paths.back()));
  }
  return m;
}

/// One input tensor of a planned output tensor.
struct plan_input {
  std::size_t model = 0;          ///< index into model_set
  std::string tensor;             ///< input tensor name (differs from the output name in slices / tied heads)
  tensor_ref ref;                 ///< where its bytes are
  std::int64_t rows = 0;          ///< rows used (top-left; <= the stored rows)
  std::int64_t cols = 0;          ///< elements per row used (<= the stored row length)
  std::int64_t row_stride = 0;    ///< stored row length in elements
  merge_params params;            ///< per-model parameters, validated, defaults filled in
};

/// One output tensor.
struct tensor_plan {
  std::string name;                   ///< output tensor name
  std::vector<std::int64_t> shape;    ///< output shape
  dtype out_type = dtype::bf16;       ///< output dtype
  bool copy = false;                  ///< verbatim copy of inputs[0] (non-float tensors, plain passthrough)
  std::optional<plan_input> base;     ///< the base's tensor (methods that use one)
  std::vector<plan_input> inputs;     ///< the other inputs
  merge_params globals;               ///< method parameters for this tensor, validated, defaults filled in
  double t = 0;                       ///< gradient position
  std::uint64_t in_bytes = 0;         ///< bytes read
  std::uint64_t out_bytes = 0;        ///< bytes written
};

/// A whole merge, planned.
struct merge_plan {
  std::string method;                         ///< merge_method
  std::vector<tensor_plan> tensors;           ///< output tensors in streaming order
  std::vector<std::string> warnings;          ///< vocabulary cuts, tied heads, ...
  std::size_t reference = 0;                  ///< model whose config.json / tokenizer is the template
  std::size_t tokenizer_model = 0;            ///< model whose tokenizer files are copied
  int out_layers = 0;                         ///< layers of the output
  int reference_layers = 0;                   ///< layers of the reference model
  std::optional<std::int64_t> vocab_rows;     ///< rows of the output embedding, when it has one
  bool has_lm_head = false;                   ///< the output holds lm_head.weight (else tied)
  std::uint64_t in_bytes = 0;                 ///< total bytes read
  std::uint64_t out_bytes = 0;                ///< total bytes written
};

namespace detail {

struct layer_name {
  std::string prefix; // "model.layers."
  int index = -1;
  std::string suffix; // "mlp.up_proj.weight"
};

/// Splits "model.layers.7.mlp.up_proj.weight" into ("model.layers.", 7, "mlp.up_proj.weight").
inline std::optional<layer_name> parse_layer_name(std::string_view n) {
  for (std::string_view marker : {"layers.", "h.", "blocks.", "layer."}) {
    std::size_t pos = 0;
    while ((pos = n.find(marker, pos)) != std::string_view::npos) {
      if (pos == 0 || n[pos - 1] == '.') {
        std::size_t i = pos + marker.size(), j = i;
        while (j < n.size() && n[j] >= '0' && n[j] <= '9')
          ++j;
        if (j > i && j < n.size() && n[j] == '.' && j - i < 9)
          return layer_name{std::string(n.substr(0, i)), std::stoi(std::string(n.substr(i, j - i))),
                            std::string(n.substr(j + 1))};
      }
      pos += 1;
    }
  }
  return std::nullopt;
}

/// Embedding / LM-head tensors, whose first dimension is the vocabulary.
inline bool is_vocab_tensor(std::string_view n) {
  for (std::string_view k : {"embed_tokens", "lm_head", "wte.", "embed_in", "embed_out", "word_embeddings", "output.weight"})
    if (n.find(k) != std::string_view::npos)
      return true;
  return false;
}

/// Non-layer tensors that precede the layers (embeddings).
inline bool is_pre_tensor(std::string_view n) {
  return n.find("embed") != std::string_view::npos || n.find("wte") != std::string_view::npos ||
         n.find("wpe") != std::string_view::npos;
}

/// The tensor a tied model holds instead of `n` (lm_head.weight -> model.embed_tokens.weight), or "".
inline std::string tied_alternative(std::string_view n) {
  if (n == "lm_head.weight")
    return "model.embed_tokens.weight";
  if (n == "embed_out.weight")
    return "gpt_neox.embed_in.weight";
  return {};
}

enum class vocab_rule { base, common, none };
inline vocab_rule vocab_rule_of(std::string_view method) {
  for (std::string_view m : {"task_arithmetic", "ties", "dare_ties", "dare_linear", "breadcrumbs", "breadcrumbs_ties", "della",
                             "della_linear"})
    if (m == method)
      return vocab_rule::base;
  for (std::string_view m : {"linear", "slerp", "nuslerp", "model_stock", "arcee_fusion"})
    if (m == method)
      return vocab_rule::common;
  return vocab_rule::none;
}

struct group_source {
  std::size_t model;
  const model_source* def;     // nullptr for an auto-added base
  int layer_start;             // first input layer of the slice
};
struct group {
  std::vector<group_source> sources;       // participating models (base included where it is an input)
  std::optional<group_source> base;        // base (methods that use one)
  const parameter_map* slice_params = nullptr;
  int layers = 0;                          // slice length
  int out_offset = 0;                      // first output layer
  std::size_t reference = 0;               // model whose names / shapes are the template
  int reference_start = 0;
  std::string key;
};

inline std::string shape_str(const std::vector<std::int64_t>& s) { return shape_to_string(s); }

} // namespace detail

/// Plans the merge of `c` over `models` (opened with open_models). Validates `c` first. Throws
/// fusekit::error naming the tensor / model / key on any inconsistency; reads headers only.
inline merge_plan plan_merge(const merge_config& c, const model_set& models) {
  using namespace detail;
  const method_spec& spec = validate(c);
  const std::string f = c.source_file.string();
  const bool uses_base = spec.base != base_policy::unused;
  const bool passthrough = spec.name == "passthrough";
  merge_plan plan;
  plan.method = c.merge_method;

  auto layer_count = [&](std::size_t m) {
    int n = 0;
    for (const auto& t : models.checkpoints[m].tensors())
      if (auto l = parse_layer_name(t.info->name))
        n = std::max(n, l->index + 1);
    return n;
  };

  // ---- groups (slices) ----
  std::vector<group> groups;
  if (!c.models.empty()) {
    group g;
    g.key = "models";
    const std::optional<std::string>& base = c.base_model;
    bool base_listed = false;
    for (const auto& s : c.models) {
      const std::size_t mi = models.index_of(s.model);
      if (same_model(s.model, base)) {
        base_listed = true;
        if (uses_base) {
          g.base = group_source{mi, &s, 0};
          continue;
        }
      }
      g.sources.push_back(group_source{mi, &s, 0});
    }
    if (base && !base_listed) {
      const std::size_t bi = models.index_of(*base);
      if (uses_base)
        g.base = group_source{bi, nullptr, 0};
      else
        g.sources.insert(g.sources.begin(), group_source{bi, nullptr, 0});
    }
    g.reference = g.base ? g.base->model : g.sources.front().model;
    g.layers = layer_count(g.reference);
    groups.push_back(std::move(g));
  } else {
    int offset = 0;
    for (const auto& sl : c.slices) {
      group g;
      g.key = sl.key;
      g.slice_params = &sl.parameters;
      const std::optional<std::string> base = sl.base_model ? sl.base_model : c.base_model;
      const int len = sl.sources.front().layer_range->second - sl.sources.front().layer_range->first;
      for (const auto& s : sl.sources) {
        const int l = s.layer_range->second - s.layer_range->first;
        if (l != len)
          config_error(f, s.key + ".layer_range", nullptr,
                       "covers " + std::to_string(l) + " layers, but " + sl.sources.front().key + " covers " +
                           std::to_string(len) + " (all sources of a slice must have the same length)",
                       errc::invalid_argument);
        const std::size_t mi = models.index_of(s.model);
        const int have = layer_count(mi);
        if (s.layer_range->second > have)
          config_error(f, s.key + ".layer_range", nullptr,
                       "[" + std::to_string(s.layer_range->first) + ", " + std::to_string(s.layer_range->second) +
                           ") is outside model '" + s.model + "', which has " + std::to_string(have) + " layers",
                       errc::out_of_range);
        if (uses_base && same_model(s.model, base))
          g.base = group_source{mi, &s, s.layer_range->first};
        else
          g.sources.push_back(group_source{mi, &s, s.layer_range->first});
      }
      if (uses_base && base && !g.base)
        config_error(f, sl.key + ".sources", nullptr,
                     "the base model '" + *base + "' must be one of the slice's sources (it needs a layer_range)",
                     errc::invalid_argument);
      const group_source& r = g.base ? *g.base : g.sources.front();
      g.reference = r.model;
      g.reference_start = r.layer_start;
      g.layers = len;
      g.out_offset = offset;
      offset += len;
      groups.push_back(std::move(g));
    }
  }
  plan.reference = groups.front().reference;
  plan.reference_layers = layer_count(plan.reference);
  for (const auto& g : groups)
    plan.out_layers += g.layers;
  if (c.tokenizer_source && *c.tokenizer_source != "base")
    plan.tokenizer_model = models.index_of(*c.tokenizer_source);
  else
    plan.tokenizer_model = c.base_model ? models.index_of(*c.base_model) : plan.reference;

  // ---- per-tensor parameter resolution ----
  auto resolve_model_params = [&](const group& g, const group_source& s, const std::string& in_name, double t,
                                  const std::string& out_name) {
    merge_params given;
    for (const auto& p : spec.per_model) {
      const std::string pn(p.name);
      std::optional<param_scalar> v;
      if (s.def != nullptr)
        if (auto it = s.def->parameters.find(pn); it != s.def->parameters.end())
          v = it->second.evaluate(in_name, t);
      if (!v && g.slice_params != nullptr)
        if (auto it = g.slice_params->find(pn); it != g.slice_params->end())
          v = it->second.evaluate(in_name, t);
      if (!v)
        if (auto it = c.parameters.find(pn); it != c.parameters.end())
          v = it->second.evaluate(in_name, t);
      if (v)
        given[pn] = v->to_param();
      else if (p.required)
        config_error(f, (s.def ? s.def->key + ".parameters." : std::string("parameters.")) + pn, nullptr,
                     "no value for model '" + models.refs[s.model] + "' on tensor '" + out_name +
                         "' (no filter matched it and there is no fallback entry)",
                     errc::invalid_argument);
    }
    return resolve_params(spec.per_model, given, f + ": " + std::string(spec.name) + ", model '" + models.refs[s.model] +
                                                     "', tensor '" + out_name + "'");
  };
  auto resolve_globals = [&](const group& g, const std::string& out_name, double t) {
    merge_params given;
    for (const auto& p : spec.global) {
      const std::string pn(p.name);
      std::optional<param_scalar> v;
      if (g.slice_params != nullptr)
        if (auto it = g.slice_params->find(pn); it != g.slice_params->end())
          v = it->second.evaluate(out_name, t);
      if (!v)
        if (auto it = c.parameters.find(pn); it != c.parameters.end())
          v = it->second.evaluate(out_name, t);
      if (v)
        given[pn] = v->to_param();
      else if (p.required)
        config_error(f, "parameters." + pn, nullptr, "no value on tensor '" + out_name + "' (no filter matched it)",
                     errc::invalid_argument);
    }
    return resolve_params(spec.global, given, f + ": " + std::string(spec.name) + ", tensor '" + out_name + "'");
  };

  const vocab_rule vrule = vocab_rule_of(spec.name);
  std::map<std::string, std::int64_t> dropped_rows; // "model|tensor" -> rows

  // Builds one output tensor from group g; `in_layer(s)` maps a source to its input tensor name.
  struct keyed {
    std::array<std::int64_t, 4> key;
    tensor_plan plan;
  };
  std::vector<keyed> out;
  std::set<std::string> out_names;
  auto ref_position = [&](std::size_t model, const std::string& name) -> std::int64_t {
    const auto& ck = models.checkpoints[model];
    const auto r = ck.find(name);
    if (!r)
      return std::numeric_limits<std::int64_t>::max();
    return static_cast<std::int64_t>(r.shard) * (std::int64_t(1) << 40) + static_cast<std::int64_t>(r.info->begin);
  };

  auto build = [&](const group& g, const std::string& out_name, double t, auto&& input_name, std::array<std::int64_t, 4> key) {
    tensor_plan tp;
    tp.name = out_name;
    tp.t = t;
    // Locate every participating tensor.
    auto locate = [&](const group_source& s) -> plan_input {
      plan_input pi;
      pi.model = s.model;
      pi.tensor = input_name(s);
      const auto& ck = models.checkpoints[s.model];
      pi.ref = ck.find(pi.tensor);
      if (!pi.ref) {
        const std::string alt = tied_alternative(pi.tensor);
        if (!alt.empty() && ck.contains(alt)) {
          plan.warnings.push_back("model '" + models.refs[s.model] + "' has no " + pi.tensor + " (tied embeddings): its " +
                                  alt + " is used for '" + out_name + "'");
          pi.tensor = alt;
          pi.ref = ck.find(alt);
        } else {
          throw_error(errc::out_of_range, models.paths[s.model].string() + ": model '" + models.refs[s.model] +
                                              "' has no tensor '" + pi.tensor + "' (needed for output '" + out_name + "')");
        }
      }
      const auto& shp = pi.ref.info->shape;
      pi.rows = shp.empty() ? 1 : shp[0];
      std::int64_t per_row = 1;
      for (std::size_t d = 1; d < shp.size(); ++d)
        per_row *= shp[d];
      pi.cols = per_row;
      pi.row_stride = per_row;
      if (shp.size() == 1) { // 1-D tensors are one row
        pi.cols = pi.row_stride = pi.rows;
        pi.rows = 1;
      }
      return pi;
    };
    std::vector<plan_input> ins;
    for (const auto& s : g.sources)
      ins.push_back(locate(s));
    std::optional<plan_input> base;
    if (g.base)
      base = locate(*g.base);
    const plan_input& refin = base ? *base : ins.front();
    const tensor_info& ri = *refin.ref.info;
    tp.shape = ri.shape;

    // dtypes
    auto check_f8 = [&](const plan_input& pi) {
      if (is_float8(pi.ref.info->type) && !passthrough)
        throw_error(errc::unsupported, pi.ref.file->path().string() + ": tensor '" + pi.tensor + "' is " +
                                           std::string(to_string(pi.ref.info->type)) +
                                           ": FP8 weights need their scale tensors applied before merging; only "
                                           "passthrough can copy them");
      if (!is_mergeable_float(pi.ref.info->type) && !is_float8(pi.ref.info->type) && pi.ref.info->type != ri.type)
        throw_error(errc::shape_mismatch, "tensor '" + out_name + "': model '" + models.refs[pi.model] + "' stores it as " +
                                              std::string(to_string(pi.ref.info->type)) + ", model '" +
                                              models.refs[refin.model] + "' as " + std::string(to_string(ri.type)));
    };
    for (const auto& pi : ins)
      check_f8(pi);
    if (base)
      check_f8(*base);
    const bool is_float = is_mergeable_float(ri.type);
    if (passthrough || !is_float) {
      // One input, copied (non-float buffers come from the reference model).
      plan_input src = passthrough ? ins.front() : refin;
      src.params = passthrough ? resolve_model_params(g, g.sources.front(), src.tensor, t, out_name) : merge_params{};
      const double scale = passthrough ? std::get<double>(src.params.at("scale")) : 1.0;
      tp.shape = src.ref.info->shape;
      const dtype st = src.ref.info->type;
      tp.out_type = (is_mergeable_float(st) && c.output_dtype()) ? *c.output_dtype() : st;
      tp.copy = (scale == 1.0 && tp.out_type == st);
      if (!tp.copy && !is_mergeable_float(st))
        throw_error(errc::unsupported, "tensor '" + out_name + "' is " + std::string(to_string(st)) +
                                           ": passthrough can only copy it (scale 1, no out_dtype change)");
      tp.inputs.push_back(std::move(src));
    } else {
      tp.out_type = c.output_dtype() ? *c.output_dtype() : ri.type;
      // Shapes.
      auto same_tail = [](const tensor_info& a, const tensor_info& b) {
        return a.shape.size() == b.shape.size() && std::equal(a.shape.begin() + (a.shape.empty() ? 0 : 1), a.shape.end(),
                                                              b.shape.begin() + (b.shape.empty() ? 0 : 1));
      };
      const bool vocab = is_vocab_tensor(out_name) && ri.shape.size() == 2;
      std::vector<plan_input*> all;
      if (base)
        all.push_back(&*base);
      for (auto& pi : ins)
        all.push_back(&pi);
      bool mismatch = false;
      for (auto* pi : all)
        mismatch = mismatch || pi->ref.info->shape != ri.shape;
      if (mismatch) {
        const bool can_cut = vocab && vrule != vocab_rule::none;
        for (auto* pi : all)
          if (!(can_cut && pi->ref.info->shape.size() == 2 && (vrule == vocab_rule::common || same_tail(*pi->ref.info, ri))))
            if (pi->ref.info->shape != ri.shape) {
              std::string why = vocab ? (vrule == vocab_rule::none ? " (merge_method " + std::string(spec.name) +
                                                                         " needs equal vocabulary sizes)"
                                                                   : " (only the vocabulary rows may differ)")
                                      : "";
              throw_error(errc::shape_mismatch, "tensor '" + out_name + "': model '" + models.refs[pi->model] +
                                                    "' has shape " + shape_str(pi->ref.info->shape) + ", model '" +
                                                    models.refs[refin.model] + "' has " + shape_str(ri.shape) + why);
            }
        std::int64_t rows = ri.shape[0], cols = ri.shape[1];
        if (vrule == vocab_rule::common)
          for (auto* pi : all) {
            rows = std::min(rows, pi->ref.info->shape[0]);
            cols = std::min(cols, pi->ref.info->shape[1]);
          }
        for (auto* pi : all) {
          if (pi->ref.info->shape[0] < rows)
            throw_error(errc::shape_mismatch, "tensor '" + out_name + "': model '" + models.refs[pi->model] + "' has " +
                                                  std::to_string(pi->ref.info->shape[0]) + " rows, fewer than the base's " +
                                                  std::to_string(rows) + " (" + std::string(spec.name) +
                                                  " cuts larger vocabularies to the base's, it cannot extend smaller ones)");
          if (pi->ref.info->shape[0] > rows || pi->ref.info->shape[1] > cols) {
            const std::int64_t d = pi->ref.info->shape[0] - rows;
            dropped_rows[models.refs[pi->model] + "\t" + out_name] = d;
            plan.warnings.push_back("tensor '" + out_name + "': model '" + models.refs[pi->model] + "' has " +
                                    shape_str(pi->ref.info->shape) + ", cut to [" + std::to_string(rows) + ", " +
                                    std::to_string(cols) + "]: " + std::to_string(d) + " vocabulary rows dropped" +
                                    (pi->ref.info->shape[1] > cols ? " and " + std::to_string(pi->ref.info->shape[1] - cols) +
                                                                         " columns"
                                                                   : std::string()));
          }
          pi->rows = rows;
          pi->cols = cols;
        }
        tp.shape = {rows, cols};
      }
      for (std::size_t k = 0; k < ins.size(); ++k)
        ins[k].params = resolve_model_params(g, g.sources[k], ins[k].tensor, t, out_name);
      tp.globals = resolve_globals(g, out_name, t);
      tp.inputs = std::move(ins);
      tp.base = std::move(base);
    }
    std::uint64_t numel = 1;
    for (auto e : tp.shape)
      numel *= static_cast<std::uint64_t>(e);
    tp.out_bytes = numel * bit_size(tp.out_type) / 8;
    for (const auto& pi : tp.inputs)
      tp.in_bytes += pi.ref.info->nbytes();
    if (tp.base)
      tp.in_bytes += tp.base->ref.info->nbytes();
    if (!out_names.insert(out_name).second)
      throw_error(errc::invalid_argument, f + ": output tensor '" + out_name + "' is produced twice (overlapping slices?)");
    out.push_back(keyed{key, std::move(tp)});
  };

  // ---- layer tensors ----
  const bool models_form = !c.models.empty();
  for (std::size_t gi = 0; gi < groups.size(); ++gi) {
    const group& g = groups[gi];
    const auto& ref_ck = models.checkpoints[g.reference];
    for (int j = 0; j < g.layers; ++j) {
      const double t = g.layers > 1 ? static_cast<double>(j) / (g.layers - 1) : 1.0;
      for (const auto& tr : ref_ck.tensors()) {
        auto ln = parse_layer_name(tr.info->name);
        if (!ln || ln->index != g.reference_start + j)
          continue;
        const std::string out_name = ln->prefix + std::to_string(g.out_offset + j) + "." + ln->suffix;
        auto input_name = [&](const group_source& s) {
          return ln->prefix + std::to_string(s.layer_start + j) + "." + ln->suffix;
        };
        const std::int64_t pos = ref_position(g.reference, tr.info->name);
        build(g, out_name, t, input_name,
              models_form ? std::array<std::int64_t, 4>{0, pos, 0, 0}
                          : std::array<std::int64_t, 4>{1, g.out_offset + j, pos, 0});
      }
    }
  }
  // ---- non-layer tensors: embeddings from the first slice, the rest from the last ----
  {
    const group& first = groups.front();
    const group& last = groups.back();
    std::vector<std::string> names;
    for (const auto& tr : models.checkpoints[first.reference].tensors())
      if (!parse_layer_name(tr.info->name))
        names.push_back(tr.info->name);
    // Tied heads: the output gets lm_head.weight when any input of the last slice has one.
    for (const std::string head : {"lm_head.weight", "embed_out.weight"}) {
      const std::string alt = tied_alternative(head);
      if (std::find(names.begin(), names.end(), head) != names.end() ||
          std::find(names.begin(), names.end(), alt) == names.end())
        continue;
      bool any = false;
      for (const auto& s : last.sources)
        any = any || models.checkpoints[s.model].contains(head);
      if (last.base)
        any = any || models.checkpoints[last.base->model].contains(head);
      if (any)
        names.push_back(head);
    }
    for (const auto& n : names) {
      const group& g = is_pre_tensor(n) ? first : last;
      auto input_name = [&](const group_source&) { return n; };
      const std::int64_t pos = ref_position(first.reference, n);
      build(g, n, 0.0, input_name,
            models_form ? std::array<std::int64_t, 4>{0, pos, 0, 0}
                        : std::array<std::int64_t, 4>{is_pre_tensor(n) ? 0 : 2, 0, pos, 0});
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const keyed& a, const keyed& b) { return a.key < b.key; });
  for (auto& k : out) {
    plan.in_bytes += k.plan.in_bytes;
    plan.out_bytes += k.plan.out_bytes;
    if (k.plan.name == "lm_head.weight" || k.plan.name == "embed_out.weight")
      plan.has_lm_head = true;
    if (is_vocab_tensor(k.plan.name) && is_pre_tensor(k.plan.name) && k.plan.shape.size() == 2)
      plan.vocab_rows = k.plan.shape[0];
    plan.tensors.push_back(std::move(k.plan));
  }
  // One summary line per model with dropped rows.
  std::map<std::string, std::int64_t> per_model;
  for (const auto& [k, d] : dropped_rows)
    per_model[k.substr(0, k.find('\t'))] = std::max(per_model[k.substr(0, k.find('\t'))], d);
  for (const auto& [m, d] : per_model)
    plan.warnings.push_back("model '" + m + "': " + std::to_string(d) +
                            " vocabulary rows dropped in total per embedding/LM-head tensor (mergekit does this silently)");
  return plan;
}

} // namespace fusekit::io
