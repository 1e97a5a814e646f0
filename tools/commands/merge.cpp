// `fusekit merge CONFIG OUT_DIR [--dry-run] [--threads N] [--seed N] [--out-shard-size 5B]
//                                [--allow-overwrite] [--quiet]`
// Merges safetensors checkpoints as described by a mergekit-style YAML config (docs/checkpoints.md):
// validates the config, opens every model (headers only), plans every output tensor, then streams the
// tensors in file order through the method registry into (sharded) safetensors, with config.json and
// tokenizer files copied from the base. The output appears atomically: until the last rename nothing
// in OUT_DIR looks like a model.
#include <CLI/CLI.hpp>

#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <iterator>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <fusekit/core/error.hpp>
#include <fusekit/exec/policy.hpp>
#include <fusekit/io/checkpoint.hpp>
#include <fusekit/io/merge_config.hpp>
#include <fusekit/io/merge_plan.hpp>
#include <fusekit/io/safetensors_writer.hpp>
#include <fusekit/merge/registry.hpp>
#include <fusekit/merge/workspace.hpp>

#include "merge/kernels.hpp"
#include "merge/progress.hpp"

namespace fusekit_tool {

namespace {

namespace fs = std::filesystem;
using namespace fusekit;
using namespace fusekit::io;

std::atomic<int> g_signal{0}; // set by SIGINT/SIGTERM; checked between tensors

extern "C" void on_signal(int s) { g_signal.store(s); }

struct merge_args {
  std::string config;
  std::string out_dir;
  int threads = 0;
  std::uint64_t seed = 0;
  std::string shard_size = "5B";
  bool allow_overwrite = false;
  bool dry_run = false;
  bool quiet = false;
  bool sync = false;
  std::uint64_t fail_after_bytes = std::numeric_limits<std::uint64_t>::max();
};

/// "5B" = 5e9, "500M", "2k", "1G" (= B), "1GiB", plain bytes. mergekit: k/M/B are x1e3/1e6/1e9 *bytes*.
std::uint64_t parse_size(const std::string& s) {
  std::size_t pos = 0;
  double v = 0;
  try {
    v = std::stod(s, &pos);
  } catch (...) {
    throw_error(errc::invalid_argument, "--out-shard-size: '" + s + "' is not a size (e.g. 5B, 500M, 2GiB)");
  }
  std::string suf = s.substr(pos);
  double mul = 1;
  if (suf.empty()) mul = 1;
  else if (suf == "k" || suf == "K" || suf == "kB" || suf == "KB") mul = 1e3;
  else if (suf == "M" || suf == "MB") mul = 1e6;
  else if (suf == "B" || suf == "G" || suf == "GB") mul = 1e9;
  else if (suf == "T" || suf == "TB") mul = 1e12;
  else if (suf == "KiB") mul = 1024.0;
  else if (suf == "MiB") mul = 1024.0 * 1024;
  else if (suf == "GiB") mul = 1024.0 * 1024 * 1024;
  else throw_error(errc::invalid_argument, "--out-shard-size: unknown suffix '" + suf + "' in '" + s + "' (k, M, B/G, KiB, MiB, GiB)");
  FUSEKIT_EXPECTS(v > 0, invalid_argument, "--out-shard-size must be positive, got '" + s + "'");
  return static_cast<std::uint64_t>(v * mul);
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  FUSEKIT_EXPECTS(in.good(), io_error, p.string() + ": cannot open");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

/// Refuses an OUT_DIR that already holds a model (unless allowed) and removes stale temporaries of an
/// interrupted earlier run.
void prepare_out_dir(const fs::path& out, bool allow_overwrite) {
  std::error_code ec;
  if (fs::exists(out, ec) && !fs::is_directory(out, ec))
    throw_error(errc::io_error, out.string() + ": exists and is not a folder");
  if (!fs::exists(out, ec))
    return;
  bool has_model = false;
  for (const auto& e : fs::directory_iterator(out, ec)) {
    const std::string n = e.path().filename().string();
    if (n.ends_with(".fusekit-partial") && n.front() == '.') {
      fs::remove(e.path(), ec); // left by a killed run: never part of a model
      continue;
    }
    has_model = has_model || n == "config.json" || n == index_file_name || n.ends_with(".safetensors");
  }
  if (has_model && !allow_overwrite)
    throw_error(errc::io_error, out.string() + ": already holds a model (config.json or safetensors); pass --allow-overwrite to replace it");
}

/// The reference model's config.json with torch_dtype, layer count, vocabulary size and embedding tying
/// set for the output.
std::optional<std::string> output_config_json(const merge_plan& plan, const model_set& models, dtype out_type,
                                              std::vector<std::string>& notes) {
  const fs::path dir = models.paths[plan.reference];
  const fs::path p = fs::is_directory(dir) ? dir / "config.json" : dir.parent_path() / "config.json";
  if (!fs::exists(p)) {
    notes.push_back("no config.json next to model '" + models.refs[plan.reference] + "': none written");
    return std::nullopt;
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text(p));
  } catch (const nlohmann::json::exception& e) {
    throw_error(errc::parse_error, p.string() + ": invalid JSON: " + e.what());
  }
  FUSEKIT_EXPECTS(j.is_object(), parse_error, p.string() + ": must be a JSON object");
  j["torch_dtype"] = std::string(torch_name(out_type));
  if (plan.out_layers != plan.reference_layers && j.contains("num_hidden_layers"))
    j["num_hidden_layers"] = plan.out_layers;
  if (plan.vocab_rows && j.contains("vocab_size") && j["vocab_size"].is_number_integer() &&
      j["vocab_size"].get<std::int64_t>() != *plan.vocab_rows) {
    notes.push_back("config.json vocab_size " + std::to_string(j["vocab_size"].get<std::int64_t>()) + " -> " +
                    std::to_string(*plan.vocab_rows));
    j["vocab_size"] = *plan.vocab_rows;
  }
  bool tied_cfg = true; // transformers' default
  if (const auto tw = j.find("tie_word_embeddings"); tw != j.end() && !tw->is_null()) {
    FUSEKIT_EXPECTS(tw->is_boolean(), parse_error,
                    p.string() + ": tie_word_embeddings must be true or false, got " + tw->dump());
    tied_cfg = tw->get<bool>();
  }
  if (plan.vocab_rows) {
    if (plan.has_lm_head && tied_cfg) {
      notes.push_back("the output has its own lm_head.weight: config.json tie_word_embeddings set to false");
      j["tie_word_embeddings"] = false;
    } else if (!plan.has_lm_head && !tied_cfg) {
      notes.push_back("the output has no lm_head.weight: config.json tie_word_embeddings set to true");
      j["tie_word_embeddings"] = true;
    }
  }
  return j.dump(2) + "\n";
}

constexpr const char* tokenizer_files[] = {"tokenizer.json",        "tokenizer_config.json", "special_tokens_map.json",
                                           "tokenizer.model",       "vocab.json",            "merges.txt",
                                           "added_tokens.json",     "generation_config.json"};

std::string join_params(const merge_params& p) {
  std::string s;
  for (const auto& [k, v] : p) {
    s += s.empty() ? "" : " ";
    s += k + "=";
    if (const bool* b = std::get_if<bool>(&v))
      s += *b ? "true" : "false";
    else if (const double* d = std::get_if<double>(&v)) {
      std::ostringstream o;
      o << *d;
      s += o.str();
    } else
      s += std::get<std::string>(v);
  }
  return s;
}

void print_plan(const merge_plan& plan, const model_set& models, std::ostream& os) {
  os << "plan: merge_method " << plan.method << ", " << plan.tensors.size() << " tensors, " << plan.out_layers
     << " layers, reads " << human_bytes(plan.in_bytes) << ", writes " << human_bytes(plan.out_bytes) << "\n";
  for (std::size_t m = 0; m < models.refs.size(); ++m)
    os << "  model " << m << ": " << models.refs[m] << " (" << models.checkpoints[m].tensors().size() << " tensors, "
       << models.checkpoints[m].shards().size() << " file(s))" << (m == plan.reference ? " [reference]" : "") << "\n";
  for (const auto& tp : plan.tensors) {
    os << tp.name << " " << shape_to_string(tp.shape) << " " << to_string(tp.out_type) << " " << tp.out_bytes << " B  "
       << (tp.copy ? "copy" : plan.method) << "  t=" << tp.t;
    if (!tp.globals.empty())
      os << "  [" << join_params(tp.globals) << "]";
    os << "\n";
    auto show = [&](const plan_input& pi, const char* role) {
      os << "    " << role << " " << models.refs[pi.model] << ":" << pi.tensor << " " << to_string(pi.ref.info->type)
         << " " << shape_to_string(pi.ref.info->shape);
      if (pi.rows * pi.cols != pi.ref.info->numel() && !pi.ref.info->shape.empty() && pi.ref.info->shape.size() == 2)
        os << " cut to [" << pi.rows << ", " << pi.cols << "]";
      if (!pi.params.empty())
        os << "  {" << join_params(pi.params) << "}";
      os << "\n";
    };
    if (tp.base)
      show(*tp.base, "base ");
    for (const auto& pi : tp.inputs)
      show(pi, "input");
  }
}

// ---- execution ----

struct free_delete {
  void operator()(void* p) const noexcept { std::free(p); }
};
using buffer = std::unique_ptr<std::byte, free_delete>;

buffer alloc(std::size_t bytes) {
  const std::size_t n = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, n == 0 ? 64 : n);
  if (p == nullptr)
    throw_error(errc::io_error, "out of memory allocating " + std::to_string(bytes) + " bytes");
  return buffer(static_cast<std::byte*>(p));
}

/// Widens a stored tensor to f32.
void to_float(dtype t, const std::byte* src, std::int64_t n, float* dst, const exec::parallel_policy& pol) {
  exec::for_each_block(pol, n, 1 << 16, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) {
      switch (t) {
      case dtype::bf16: { bf16 v; std::memcpy(&v, src + 2 * i, 2); dst[i] = static_cast<float>(v); break; }
      case dtype::f16: { fp16 v; std::memcpy(&v, src + 2 * i, 2); dst[i] = static_cast<float>(v); break; }
      case dtype::f32: std::memcpy(dst + i, src + 4 * i, 4); break;
      case dtype::f64: { double v; std::memcpy(&v, src + 8 * i, 8); dst[i] = static_cast<float>(v); break; }
      default: break;
      }
    }
  });
}

/// Narrows f32 results to the output dtype.
void from_float(const float* src, std::int64_t n, dtype t, std::byte* dst, const exec::parallel_policy& pol) {
  exec::for_each_block(pol, n, 1 << 16, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) {
      switch (t) {
      case dtype::bf16: { const bf16 v(src[i]); std::memcpy(dst + 2 * i, &v, 2); break; }
      case dtype::f16: { const fp16 v(src[i]); std::memcpy(dst + 2 * i, &v, 2); break; }
      case dtype::f32: std::memcpy(dst + 4 * i, src + i, 4); break;
      case dtype::f64: { const double v = src[i]; std::memcpy(dst + 8 * i, &v, 8); break; }
      default: break;
      }
    }
  });
}

template <class T> const T* typed(const plan_input& pi) { return reinterpret_cast<const T*>(pi.ref.bytes().data()); }

/// Computes one tensor into `out_bytes` (tp.out_bytes bytes: a window of the output file).
void compute(const tensor_plan& tp, const method_spec& spec, const exec::parallel_policy& pol, std::uint64_t seed,
             std::byte* out_bytes, merge_workspace& ws) {
  if (tp.out_bytes == 0)
    return;
  std::int64_t numel = 1;
  for (auto e : tp.shape)
    numel *= e;
  if (tp.copy) {
    std::memcpy(out_bytes, tp.inputs[0].ref.bytes().data(), tp.out_bytes);
    return;
  }
  // Common input dtype, aligned in the mapping? Then the views point into the files.
  std::vector<const plan_input*> all;
  if (tp.base)
    all.push_back(&*tp.base);
  for (const auto& pi : tp.inputs)
    all.push_back(&pi);
  const dtype in_t = all.front()->ref.info->type;
  bool direct = in_t == dtype::bf16 || in_t == dtype::f16 || in_t == dtype::f32;
  for (const auto* pi : all)
    direct = direct && pi->ref.info->type == in_t &&
             reinterpret_cast<std::uintptr_t>(pi->ref.bytes().data()) % element_size(in_t) == 0;
  const bool same_out = direct && tp.out_type == in_t;
  buffer fout;
  float* fo = nullptr;
  if (!same_out) {
    fout = alloc(static_cast<std::size_t>(numel) * 4);
    fo = reinterpret_cast<float*>(fout.get());
  }
  auto run = [&]<class T>(const T*) {
    std::vector<const T*> ins;
    for (const auto& pi : tp.inputs)
      ins.push_back(typed<T>(pi));
    const T* b = tp.base ? typed<T>(*tp.base) : nullptr;
    if (same_out)
      merge_tensor<T, T>(pol, spec, tp, ins, b, reinterpret_cast<T*>(out_bytes), seed, &ws);
    else
      merge_tensor<T, float>(pol, spec, tp, ins, b, fo, seed, &ws);
  };
  if (direct) {
    if (in_t == dtype::bf16)
      run(static_cast<const bf16*>(nullptr));
    else if (in_t == dtype::f16)
      run(static_cast<const fp16*>(nullptr));
    else
      run(static_cast<const float*>(nullptr));
  } else {
    // Mixed or unaligned inputs: widen each to f32 first (whole stored tensor, so rows/cols stay valid).
    std::vector<buffer> tmp;
    std::vector<const float*> ins;
    auto widen = [&](const plan_input& pi) {
      tmp.push_back(alloc(static_cast<std::size_t>(pi.ref.info->numel()) * 4));
      float* d = reinterpret_cast<float*>(tmp.back().get());
      to_float(pi.ref.info->type, pi.ref.bytes().data(), pi.ref.info->numel(), d, pol);
      return static_cast<const float*>(d);
    };
    for (const auto& pi : tp.inputs)
      ins.push_back(widen(pi));
    const float* b = tp.base ? widen(*tp.base) : nullptr;
    merge_tensor<float, float>(pol, spec, tp, ins, b, fo, seed, &ws);
  }
  if (!same_out)
    from_float(fo, numel, tp.out_type, out_bytes, pol);
}

int run_merge(const merge_args& a) {
  // 1. Config and method: no file but the YAML is read.
  const merge_config cfg = load_merge_config(a.config);
  const method_spec& spec = validate(cfg);
  const std::uint64_t shard_bytes = parse_size(a.shard_size);
  FUSEKIT_EXPECTS(a.threads >= 0, invalid_argument, "--threads must be >= 0, got " + std::to_string(a.threads));
  const fs::path out_dir(a.out_dir);
  if (!a.dry_run)
    prepare_out_dir(out_dir, a.allow_overwrite);

  // 2. Open every model (headers, indexes) and plan every tensor.
  const model_set models = open_models(cfg);
  const merge_plan plan = plan_merge(cfg, models);
  for (const auto& w : plan.warnings)
    std::cerr << "fusekit merge: warning: " << w << "\n";
  // the output's config.json is derived from the plan alone: a malformed one fails before any tensor work
  std::vector<std::string> notes;
  dtype main_type = plan.tensors.empty() ? dtype::bf16 : plan.tensors.front().out_type;
  for (const auto& tp : plan.tensors)
    if (is_mergeable_float(tp.out_type)) {
      main_type = tp.out_type;
      break;
    }
  const std::optional<std::string> config_json = output_config_json(plan, models, main_type, notes);
  if (a.dry_run) {
    print_plan(plan, models, std::cout);
    return 0;
  }

  const exec::parallel_policy pol{a.threads};
  std::vector<planned_tensor> planned;
  for (const auto& tp : plan.tensors)
    planned.push_back({tp.name, tp.out_type, tp.shape});
  writer_options wo;
  wo.max_shard_bytes = shard_bytes;
  wo.replace_existing = a.allow_overwrite;
  wo.fail_after_bytes = a.fail_after_bytes;
  wo.sync = a.sync;
  wo.index_metadata = {{"fusekit_merge_method", plan.method}};
  safetensors_writer writer(out_dir, planned, wo);

  // 3. Stream: tensors in plan (= file) order, each computed straight into its window of the output file
  //    (a shared map of the reserved shard: no copy; the kernel writes the dirty pages back meanwhile).
  progress bar("fusekit merge", plan.in_bytes, a.quiet);
  merge_workspace ws; // the methods' scratch (keep bits, top-k candidates), reused from tensor to tensor
  for (std::size_t i = 0; i < plan.tensors.size(); ++i) {
    if (const int s = g_signal.load())
      throw_error(errc::io_error, std::string("interrupted by signal ") + std::to_string(s) + "; nothing was written to " +
                                      out_dir.string());
    const tensor_plan& tp = plan.tensors[i];
    if (i + 1 < plan.tensors.size()) { // read-ahead hint for the next tensor
      const tensor_plan& nx = plan.tensors[i + 1];
      for (const auto& pi : nx.inputs)
        pi.ref.file->prefetch(*pi.ref.info);
      if (nx.base)
        nx.base->ref.file->prefetch(*nx.base->ref.info);
    }
    tensor_out out = writer.open_tensor(i);
    compute(tp, spec, pol, a.seed, out.bytes().data(), ws);
    for (const auto& pi : tp.inputs) // bound the resident set: the pages stay in the page cache
      pi.ref.file->release(*pi.ref.info);
    if (tp.base)
      tp.base->ref.file->release(*tp.base->ref.info);
    writer.commit(std::move(out));
    bar.advance(tp.in_bytes);
  }
  bar.finish();

  // 4. config.json, tokenizer, the config itself; then the atomic renames.
  if (config_json)
    writer.stage_file("config.json", *config_json);
  const fs::path tok_dir = fs::is_directory(models.paths[plan.tokenizer_model]) ? models.paths[plan.tokenizer_model]
                                                                               : models.paths[plan.tokenizer_model].parent_path();
  std::size_t copied = 0;
  for (const char* f : tokenizer_files)
    if (fs::exists(tok_dir / f)) {
      writer.stage_file(f, read_text(tok_dir / f));
      ++copied;
    }
  writer.stage_file("fusekit_merge.yml", read_text(a.config));
  const auto files = writer.finish();

  for (const auto& n : notes)
    std::cerr << "fusekit merge: note: " << n << "\n";
  const double secs = bar.elapsed();
  std::cout << "merged " << plan.tensors.size() << " tensors with " << plan.method << " from " << models.refs.size()
            << " model(s): read " << human_bytes(plan.in_bytes) << ", wrote " << human_bytes(plan.out_bytes) << " in "
            << files.size() << " file(s) to " << out_dir.string() << " in " << std::fixed << std::setprecision(2) << secs
            << " s (" << human_bytes(secs > 0 ? plan.in_bytes / secs : 0) << "/s read), " << copied
            << " tokenizer file(s) copied, " << plan.warnings.size() << " warning(s)\n";
  return 0;
}

} // namespace

/// Registers `fusekit merge`.
void register_merge(CLI::App& app) {
  auto a = std::make_shared<merge_args>();
  auto* m = app.add_subcommand("merge", "merge safetensors checkpoints from a mergekit-style YAML config");
  m->add_option("config", a->config, "merge configuration (YAML, mergekit schema)")->required();
  m->add_option("out_dir", a->out_dir, "output folder (created; must not hold a model unless --allow-overwrite)")->required();
  m->add_flag("--dry-run", a->dry_run, "print the plan (tensors, inputs, method, parameters, bytes) and write nothing");
  m->add_option("--threads,-j", a->threads, "compute threads (0 = all cores)")->capture_default_str();
  m->add_option("--seed", a->seed, "seed of the counter-based RNG (DARE/DELLA masks; identical for any thread count)")
      ->capture_default_str();
  m->add_option("--out-shard-size", a->shard_size, "largest output shard in bytes: 5B = 5e9, 500M, 2GiB, ...")
      ->capture_default_str();
  m->add_flag("--allow-overwrite", a->allow_overwrite, "replace a model already in OUT_DIR");
  m->add_flag("--quiet,-q", a->quiet, "no progress output");
  m->add_flag("--sync", a->sync, "fsync every output file before the final renames");
  m->add_option("--fail-after-bytes", a->fail_after_bytes, "testing: simulate a full disk after this many bytes")
      ->group(""); // hidden
  m->callback([a]() {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    // A file-size limit (ulimit -f) must surface as EFBIG from fallocate/write, with our error message,
    // not kill the process with SIGXFSZ and leave partial files behind.
    ::signal(SIGXFSZ, SIG_IGN);
    const int rc = run_merge(*a);
    if (rc != 0)
      throw CLI::RuntimeError(rc);
  });
}

} // namespace fusekit_tool
