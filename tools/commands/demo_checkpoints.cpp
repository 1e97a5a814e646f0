// `fusekit demo-checkpoints OUT_DIR [--preset tiny|bench] [--models base,math,...] [--layers N] ...`
// Writes deterministic Llama-shaped bf16 checkpoints for tests, the README's main job and benchmarks:
//   base/  tied embeddings (no lm_head.weight, tie_word_embeddings: true), single file
//   math/  base + sparse deltas on attention rows, tied, single file
//   code/  base + sparse deltas on MLP rows, untied: its lm_head.weight = the base embedding + a delta
//          (a fine-tune that untied the head), in shards
//   chat/  base + sparse deltas on embedding rows, tied
//   wide/  base + sparse deltas, untied, vocabulary larger by 8 rows (added tokens)
// Each folder also gets config.json (LlamaForCausalLM) and small tokenizer files. Values are a pure
// function of (seed, model, tensor name, element index), so every run writes identical bytes.
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <fusekit/core/error.hpp>
#include <fusekit/exec/primitives.hpp>
#include <fusekit/io/safetensors_writer.hpp>
#include <fusekit/rng/philox.hpp>
#include <fusekit/types/bf16.hpp>

namespace fusekit_tool {

namespace {

namespace fs = std::filesystem;
using namespace fusekit;
using namespace fusekit::io;

struct demo_args {
  std::string out_dir;
  std::string preset = "tiny";
  std::string models = "base,math,code,chat,wide";
  int hidden = 0, intermediate = 0, layers = 0, vocab = 0, heads = 0, kv_heads = 0;
  std::uint64_t seed = 2024;
  std::string shard_size;
  bool allow_overwrite = false;
  bool dense = false;
  int threads = 0;
};

struct shape_cfg {
  int hidden, intermediate, layers, vocab, heads, kv_heads;
};

std::uint64_t mix(std::uint64_t x) noexcept { // splitmix64 finalizer
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
float unit(std::uint64_t h) noexcept { return static_cast<float>(h >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f; } // [-1,1)

struct tensor_def {
  std::string name;
  std::vector<std::int64_t> shape;
  bool norm = false;          // RMSNorm weight: around 1
  std::string value_key = {}; // name whose base values this tensor starts from (lm_head: the embedding)
};

std::vector<tensor_def> llama_tensors(const shape_cfg& s, int vocab, bool with_head) {
  const std::int64_t H = s.hidden, I = s.intermediate, hd = s.hidden / s.heads, kv = static_cast<std::int64_t>(s.kv_heads) * hd;
  std::vector<tensor_def> t;
  t.push_back({"model.embed_tokens.weight", {vocab, H}, false, {}});
  for (int l = 0; l < s.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    t.push_back({p + "input_layernorm.weight", {H}, true, {}});
    t.push_back({p + "self_attn.q_proj.weight", {H, H}, false, {}});
    t.push_back({p + "self_attn.k_proj.weight", {kv, H}, false, {}});
    t.push_back({p + "self_attn.v_proj.weight", {kv, H}, false, {}});
    t.push_back({p + "self_attn.o_proj.weight", {H, H}, false, {}});
    t.push_back({p + "post_attention_layernorm.weight", {H}, true, {}});
    t.push_back({p + "mlp.gate_proj.weight", {I, H}, false, {}});
    t.push_back({p + "mlp.up_proj.weight", {I, H}, false, {}});
    t.push_back({p + "mlp.down_proj.weight", {H, I}, false, {}});
  }
  t.push_back({"model.norm.weight", {H}, true, {}});
  if (with_head)
    t.push_back({"lm_head.weight", {vocab, H}, false, "model.embed_tokens.weight"});
  return t;
}

/// Which rows of which tensors a fine-tune changes, and how strongly.
struct finetune_style {
  std::uint64_t id = 0;          // 0 = the base itself
  double row_fraction = 0;       // fraction of rows given a dense delta
  double element_fraction = 0;   // fraction of other elements given a delta
  const char* focus = "";        // substring of tensor names whose rows change more often
  float amplitude = 0.004f;
};

finetune_style style_of(const std::string& m) {
  if (m == "base") return {};
  if (m == "math") return {1, 0.10, 0.02, "self_attn", 0.004f};
  if (m == "code") return {2, 0.10, 0.02, "mlp", 0.004f};
  if (m == "chat") return {3, 0.06, 0.03, "embed", 0.003f};
  if (m == "wide") return {4, 0.05, 0.01, "lm_head", 0.003f};
  // Any other name: a generic fine-tune keyed by the name.
  return {rng::stream_id(m) | 16u, 0.08, 0.02, "", 0.004f};
}

void fill(const tensor_def& t, std::int64_t base_vocab, const finetune_style& st, std::uint64_t seed, bf16* out,
          const exec::parallel_policy& pol) {
  const std::uint64_t key = rng::stream_id(t.value_key.empty() ? t.name : t.value_key) ^ mix(seed);
  const std::uint64_t dkey = rng::stream_id(t.name); // deltas differ between a head and its embedding
  const std::int64_t rows = t.shape[0];
  const std::int64_t cols = t.shape.size() > 1 ? t.shape[1] : 1;
  const bool focus = st.focus[0] != '\0' && t.name.find(st.focus) != std::string::npos;
  const double row_p = st.row_fraction * (focus ? 2.5 : 0.5);
  exec::for_each_n(pol, rows, [&](std::int64_t r) {
    // Rows past the base vocabulary (added tokens) get fresh values keyed by the model.
    const bool added = t.shape.size() == 2 && r >= base_vocab && t.name.find("layers") == std::string::npos;
    const std::uint64_t rkey = mix(key ^ static_cast<std::uint64_t>(r) * 0x100000001b3ull);
    const bool row_hit = st.id != 0 && unit(mix(rkey ^ dkey ^ (st.id * 0x51ed27u))) * 0.5 + 0.5 < row_p;
    for (std::int64_t c = 0; c < cols; ++c) {
      const std::uint64_t h = mix(rkey + static_cast<std::uint64_t>(c));
      float v = t.norm ? 1.0f + 0.05f * unit(h) : 0.035f * unit(h);
      if (added)
        v = 0.035f * unit(mix(h ^ (st.id + 77)));
      if (st.id != 0) {
        const std::uint64_t d = mix(h ^ dkey ^ (st.id * 0x9e3779b97f4a7c15ull));
        const bool el_hit = unit(mix(d)) * 0.5f + 0.5f < st.element_fraction;
        if (row_hit || el_hit)
          v += st.amplitude * unit(d) * (t.norm ? 5.0f : 1.0f);
      }
      out[r * cols + c] = bf16(v);
    }
  });
}

void write_model(const fs::path& dir, const std::string& name, const shape_cfg& s, std::uint64_t seed,
                 std::uint64_t shard_bytes, bool dense, const exec::parallel_policy& pol) {
  finetune_style st = style_of(name);
  if (dense && st.id != 0) { // a full fine-tune: every element moves a little, some rows a lot
    st.element_fraction = 1.0;
    st.amplitude = 0.002f;
  }
  const bool tied = name != "code" && name != "wide";
  const int vocab = name == "wide" ? s.vocab + 8 : s.vocab;
  const auto defs = llama_tensors(s, vocab, !tied);
  std::vector<planned_tensor> plan;
  for (const auto& t : defs)
    plan.push_back({t.name, dtype::bf16, t.shape});
  writer_options wo;
  wo.max_shard_bytes = shard_bytes;
  wo.replace_existing = true;
  safetensors_writer w(dir, plan, wo);
  std::vector<bf16> buf;
  for (std::size_t i = 0; i < defs.size(); ++i) {
    std::int64_t n = 1;
    for (auto e : defs[i].shape)
      n *= e;
    buf.resize(static_cast<std::size_t>(n));
    fill(defs[i], s.vocab, st, seed, buf.data(), pol);
    w.write(i, std::as_bytes(std::span(buf)));
  }
  nlohmann::json cfg = {{"architectures", {"LlamaForCausalLM"}},
                        {"model_type", "llama"},
                        {"hidden_size", s.hidden},
                        {"intermediate_size", s.intermediate},
                        {"num_hidden_layers", s.layers},
                        {"num_attention_heads", s.heads},
                        {"num_key_value_heads", s.kv_heads},
                        {"vocab_size", vocab},
                        {"max_position_embeddings", 2048},
                        {"rms_norm_eps", 1e-5},
                        {"rope_theta", 10000.0},
                        {"hidden_act", "silu"},
                        {"tie_word_embeddings", tied},
                        {"torch_dtype", "bfloat16"},
                        {"bos_token_id", 1},
                        {"eos_token_id", 2},
                        {"_name_or_path", "fusekit-demo/" + name}};
  w.stage_file("config.json", cfg.dump(2) + "\n");
  nlohmann::json vocab_map = nlohmann::json::object();
  vocab_map["<unk>"] = 0;
  vocab_map["<s>"] = 1;
  vocab_map["</s>"] = 2;
  for (int i = 3; i < vocab; ++i)
    vocab_map["tok" + std::to_string(i)] = i;
  nlohmann::json tok = {{"version", "1.0"},
                        {"model", {{"type", "WordLevel"}, {"vocab", vocab_map}, {"unk_token", "<unk>"}}},
                        {"pre_tokenizer", {{"type", "Whitespace"}}}};
  w.stage_file("tokenizer.json", tok.dump() + "\n");
  w.stage_file("tokenizer_config.json",
               nlohmann::json{{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"unk_token", "<unk>"},
                              {"model_max_length", 2048}, {"tokenizer_class", "PreTrainedTokenizerFast"}}
                       .dump(2) + "\n");
  w.stage_file("special_tokens_map.json",
               nlohmann::json{{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"unk_token", "<unk>"}}.dump(2) + "\n");
  w.finish();
}

int run_demo(const demo_args& a) {
  shape_cfg s{64, 176, 4, 256, 4, 2};
  std::uint64_t shard = 5'000'000'000ull;
  if (a.preset == "bench") {
    s = {2048, 5632, 22, 32000, 32, 4}; // TinyLlama-1.1B's shape: 2.2 GB of bf16 per model
  } else if (a.preset != "tiny") {
    throw_error(errc::invalid_argument, "--preset must be tiny or bench, got '" + a.preset + "'");
  }
  if (a.hidden) s.hidden = a.hidden;
  if (a.intermediate) s.intermediate = a.intermediate;
  if (a.layers) s.layers = a.layers;
  if (a.vocab) s.vocab = a.vocab;
  if (a.heads) s.heads = a.heads;
  if (a.kv_heads) s.kv_heads = a.kv_heads;
  FUSEKIT_EXPECTS(s.hidden > 0 && s.heads > 0 && s.hidden % s.heads == 0 && s.kv_heads > 0 && s.heads % s.kv_heads == 0,
                  invalid_argument, "--hidden must be a multiple of --heads, and --heads of --kv-heads");
  const exec::parallel_policy pol{a.threads};
  const fs::path out(a.out_dir);
  std::stringstream ss(a.models);
  std::string m;
  while (std::getline(ss, m, ',')) {
    if (m.empty())
      continue;
    const fs::path dir = out / m;
    if (fs::exists(dir / "config.json") && !a.allow_overwrite)
      throw_error(errc::io_error, dir.string() + ": already holds a model; pass --allow-overwrite");
    std::uint64_t sb = shard;
    if (!a.shard_size.empty())
      sb = std::stoull(a.shard_size);
    else if (m == "code") // the sharded one: about three shards
      sb = 0;
    if (sb == 0) {
      const auto defs = llama_tensors(s, s.vocab, true);
      std::uint64_t total = 0;
      for (const auto& t : defs) {
        std::uint64_t n = 2;
        for (auto e : t.shape)
          n *= static_cast<std::uint64_t>(e);
        total += n;
      }
      sb = total / 3 + 1;
    }
    write_model(dir, m, s, a.seed, sb, a.dense, pol);
    std::cout << "wrote " << dir.string() << "\n";
  }
  return 0;
}

} // namespace

/// Registers `fusekit demo-checkpoints`.
void register_demo_checkpoints(CLI::App& app) {
  auto a = std::make_shared<demo_args>();
  auto* d = app.add_subcommand("demo-checkpoints", "write deterministic Llama-shaped bf16 demo checkpoints (base + fine-tunes)");
  d->add_option("out_dir", a->out_dir, "folder receiving one sub-folder per model")->required();
  d->add_option("--preset", a->preset, "tiny (KB, for tests) or bench (TinyLlama-1.1B shape, 2.2 GB per model)")->capture_default_str();
  d->add_option("--models", a->models, "comma-separated models: base, math, code (sharded), chat (tied), wide (+8 vocab rows), or any name")
      ->capture_default_str();
  d->add_option("--hidden", a->hidden, "hidden size (overrides the preset)");
  d->add_option("--intermediate", a->intermediate, "MLP size");
  d->add_option("--layers", a->layers, "number of layers");
  d->add_option("--vocab", a->vocab, "vocabulary rows");
  d->add_option("--heads", a->heads, "attention heads");
  d->add_option("--kv-heads", a->kv_heads, "key/value heads");
  d->add_option("--seed", a->seed, "seed of the values")->capture_default_str();
  d->add_option("--shard-size", a->shard_size, "bytes per shard for every model (default: code in 3 shards, others single)");
  d->add_option("--threads", a->threads, "generator threads (0 = all)");
  d->add_flag("--dense", a->dense, "fine-tunes change every element a little (a full fine-tune) instead of sparse rows");
  d->add_flag("--allow-overwrite", a->allow_overwrite, "replace existing demo models");
  d->callback([a]() {
    const int rc = run_demo(*a);
    if (rc != 0)
      throw CLI::RuntimeError(rc);
  });
}

} // namespace fusekit_tool
