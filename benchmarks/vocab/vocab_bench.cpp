// Token alignment and vocabulary-mapping benchmarks on the bundled real tokenizers and corpus.
//   fusekit_bench_vocab --benchmark_filter='dtw/'           DTW of two 2048-token sequences (seq)
//   fusekit_bench_vocab --benchmark_filter='ms_matrix'      MS count matrix over the whole corpus
//   fusekit_bench_vocab --benchmark_filter='mined_full'     full-vocabulary MinED qwen3 -> llama3 (par)
//   fusekit_bench_vocab --benchmark_filter='levenshtein'    edit-distance kernels
// Results and commands: docs/explicit-fusion.md.
#include <benchmark/benchmark.h>

#include "bandwidth.hpp"

#include <fusekit/exec/policy.hpp>
#include <fusekit/vocab/alignment_matrix.hpp>
#include <fusekit/vocab/dtw.hpp>
#include <fusekit/vocab/edit_distance.hpp>
#include <fusekit/vocab/hf_tokenizer.hpp>
#include <fusekit/vocab/token_ids_jsonl.hpp>
#include <fusekit/vocab/vocab_mapping.hpp>

#include <sys/resource.h>

#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

namespace fv = fusekit::vocab;

// CPU seconds of the whole process (all threads): on a shared machine this, divided by the thread
// count, is the wall time the run would take on idle cores.
double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

const std::string data_dir = FUSEKIT_VOCAB_DATA_DIR;

const fv::vocabulary& tok(const std::string& name) {
  static std::map<std::string, std::unique_ptr<fv::vocabulary>> cache;
  auto& p = cache[name];
  if (!p) p = std::make_unique<fv::vocabulary>(fv::load_hf_vocabulary(data_dir + "/tokenizers/" + name + "/tokenizer.json"));
  return *p;
}

const fv::token_id_corpus& golden(const std::string& name) {
  static std::map<std::string, fv::token_id_corpus> cache;
  auto it = cache.find(name);
  if (it == cache.end()) it = cache.emplace(name, fv::read_token_ids_jsonl(data_dir + "/corpus/tokenized/" + name + ".jsonl")).first;
  return it->second;
}

// The first `n` tokens of the concatenated corpus (texts from `first_text` on), as decoded strings.
std::vector<std::string> decoded_prefix(const std::string& name, std::size_t n, std::size_t first_text) {
  std::vector<std::string> out;
  const auto& c = golden(name);
  for (std::size_t t = first_text; out.size() < n; t = (t + 1) % c.texts.size())
    for (auto id : c.texts[t]) {
      if (out.size() == n) break;
      out.push_back(tok(name).decode_token(id));
    }
  return out;
}

void dtw_bench(benchmark::State& state, const char* pivot, const char* source, std::size_t first_text) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto u = decoded_prefix(pivot, n, first_text);
  const auto w = decoded_prefix(source, n, first_text);
  const fv::token_cost cost{fv::cost_rule::fusechat, fv::utf8_decode(tok(source).marker()), fv::utf8_decode(tok(pivot).marker())};
  for (auto _ : state) {
    auto a = fv::dtw_align(w, u, cost);
    benchmark::DoNotOptimize(a.total_cost);
  }
  const double cells = static_cast<double>(n) * static_cast<double>(n);
  state.counters["cells_per_s"] = benchmark::Counter(cells, benchmark::Counter::kIsIterationInvariantRate);
  // the cumulative matrix (int64) is written once and read about twice (forward pass + backtrack)
  fusekit_bench::report_traffic(state, static_cast<std::size_t>(cells) * 8 * 2, static_cast<std::size_t>(cells) * 8);
}

void BM_dtw_llama3_qwen3(benchmark::State& s) { dtw_bench(s, "llama3", "qwen3", 0); }
void BM_dtw_llama3_gemma3(benchmark::State& s) { dtw_bench(s, "llama3", "gemma3", 0); }
void BM_dtw_mistral_qwen3_code(benchmark::State& s) { dtw_bench(s, "mistral-7b-v0.1", "qwen3", 150); }
void BM_dtw_smoke(benchmark::State& s) { dtw_bench(s, "llama3", "qwen3", 0); }
BENCHMARK(BM_dtw_llama3_qwen3)->Name("dtw/llama3<-qwen3")->Arg(2048)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_dtw_llama3_gemma3)->Name("dtw/llama3<-gemma3")->Arg(2048)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_dtw_mistral_qwen3_code)->Name("dtw/mistral<-qwen3/code+zh")->Arg(2048)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_dtw_smoke)->Name("smoke/dtw")->Arg(128)->Unit(benchmark::kMillisecond);

template <class Policy>
void ms_bench(benchmark::State& state, const Policy& pol, const char* pivot, const char* source) {
  const auto& P = tok(pivot);
  const auto& S = tok(source);
  const auto& pc = golden(pivot);
  const auto& sc = golden(source);
  std::int64_t tokens = 0;
  for (const auto& t : pc.texts) tokens += static_cast<std::int64_t>(t.size());
  fv::count_matrix C;
  const double cpu0 = process_cpu_seconds();
  for (auto _ : state) {
    C = fv::build_alignment_matrix(pol, P, S, pc.texts, sc.texts);
    benchmark::DoNotOptimize(C.nnz());
  }
  state.counters["cpu_s_all_threads"] = (process_cpu_seconds() - cpu0) / static_cast<double>(state.iterations());
  state.counters["pivot_tokens_per_s"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["nnz"] = static_cast<double>(C.nnz());
  state.counters["texts"] = static_cast<double>(pc.texts.size());
}
void BM_ms_matrix_par(benchmark::State& s) { ms_bench(s, fusekit::exec::par, "llama3", "qwen3"); }
void BM_ms_matrix_seq(benchmark::State& s) { ms_bench(s, fusekit::exec::seq, "llama3", "qwen3"); }
void BM_ms_matrix_gemma_par(benchmark::State& s) { ms_bench(s, fusekit::exec::par, "llama3", "gemma3"); }
BENCHMARK(BM_ms_matrix_par)->Name("ms_matrix/llama3<-qwen3/par")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ms_matrix_seq)->Name("ms_matrix/llama3<-qwen3/seq")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ms_matrix_gemma_par)->Name("ms_matrix/llama3<-gemma3/par")->Unit(benchmark::kMillisecond)->UseRealTime();

void mined_bench(benchmark::State& state, std::int32_t stride) {
  const auto& P = tok("llama3");
  const auto& S = tok("qwen3");
  fv::mined_options o;
  if (stride > 1)
    for (std::int32_t v = 0; v < S.size(); v += stride) o.source_ids.push_back(v);
  const double sources = stride > 1 ? static_cast<double>(o.source_ids.size()) : static_cast<double>(S.size());
  fv::vocab_mapping m;
  const double cpu0 = process_cpu_seconds();
  for (auto _ : state) {
    m = fv::mined_mapping(fusekit::exec::par, P, S, o);
    benchmark::DoNotOptimize(m.pivot_of.data());
  }
  state.counters["cpu_s_all_threads"] = (process_cpu_seconds() - cpu0) / static_cast<double>(state.iterations());
  // nominal pairs = |sources| x |pivot vocabulary| (what a brute-force scan evaluates)
  state.counters["pairs_per_s"] = benchmark::Counter(sources * static_cast<double>(P.size()), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["evaluated_pairs"] = static_cast<double>(m.evaluated_pairs);
  state.counters["exact"] = static_cast<double>(m.exact());
  state.counters["threads"] = fusekit::exec::par.concurrency();
}
void BM_mined_full(benchmark::State& s) { mined_bench(s, 1); }
void BM_mined_sample(benchmark::State& s) { mined_bench(s, 37); }
void BM_mined_smoke(benchmark::State& s) { mined_bench(s, 997); }
BENCHMARK(BM_mined_full)->Name("mined_full/qwen3->llama3/par")->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();
BENCHMARK(BM_mined_sample)->Name("mined_sample37/qwen3->llama3/par")->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();
BENCHMARK(BM_mined_smoke)->Name("smoke/mined")->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_levenshtein(benchmark::State& state, bool fast) {
  // token-like strings drawn from the llama3 vocabulary
  const auto& P = tok("llama3");
  std::mt19937 rng(5);
  std::vector<std::u32string> s;
  for (int k = 0; k < 2048; ++k) s.push_back(fv::utf8_decode(P.raw(static_cast<std::int64_t>(rng() % 128000))));
  std::int64_t acc = 0;
  for (auto _ : state) {
    for (std::size_t k = 0; k + 1 < s.size(); ++k)
      acc += fast ? fv::levenshtein(s[k], s[k + 1]) : fv::levenshtein_reference(s[k], s[k + 1]);
    benchmark::DoNotOptimize(acc);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(s.size() - 1));
}
BENCHMARK_CAPTURE(BM_levenshtein, myers, true)->Name("levenshtein/myers/vocab_tokens");
BENCHMARK_CAPTURE(BM_levenshtein, reference, false)->Name("levenshtein/reference_dp/vocab_tokens");

}  // namespace

BENCHMARK_MAIN();
