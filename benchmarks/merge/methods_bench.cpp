// Throughput of every merge-method family on realistic bf16 tensors (4096x4096 and 14336x4096, 2/4/8 inputs
// plus the base), seq and par, reported beside the copy bandwidth of the same bytes measured in this run.
// "Bytes" are the compulsory traffic: every input and the base read once, the output written once; the
// counter bound_s = bytes / copy bandwidth is the bound, and time / bound_s says how far a method is from it.
//
//   fusekit_bench_merge_methods --benchmark_filter='/par/'            (the table in docs/merging.md)
//   fusekit_bench_merge_methods --benchmark_filter=smoke              (CI smoke run)
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bandwidth.hpp"
#include <fusekit/merge.hpp>

namespace {

using namespace fusekit;
using T = bf16;
using V = matrix_view<const T>;

/// Base ~ N(0, 0.02) and eight fine-tunes = base + N(0, 0.002) (bf16), generated once per shape and shared.
struct models {
  std::int64_t rows, cols;
  std::vector<T> base;
  std::vector<std::vector<T>> tuned;
  models(std::int64_t r, std::int64_t c) : rows(r), cols(c) {
    const std::int64_t n = r * c;
    base.resize(static_cast<std::size_t>(n));
    tuned.assign(8, std::vector<T>(static_cast<std::size_t>(n)));
    // fast deterministic normal-ish values (sum of 4 uniforms), one stream per model, in parallel
    exec::for_each_block(exec::par, n, 1 << 16, [&](std::int64_t b, std::int64_t e) {
      std::uint64_t s = 0x9e3779b97f4a7c15ull ^ static_cast<std::uint64_t>(b);
      auto next = [&s] {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return static_cast<float>(s >> 40) * (1.0f / 16777216.0f);
      };
      auto normal = [&] { return (next() + next() + next() + next() - 2.0f) * 1.732f; };
      for (std::int64_t i = b; i < e; ++i) {
        const float bv = 0.02f * normal();
        base[static_cast<std::size_t>(i)] = T(bv);
        for (auto& m : tuned)
          m[static_cast<std::size_t>(i)] = T(bv + 0.002f * normal());
      }
    });
  }
};

/// Minor page faults of this process so far (a fresh page costs ~10 us on this project's VM).
long process_minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

/// CPU seconds of every thread of this process (user + system).
double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

const models& shared_models(std::int64_t rows, std::int64_t cols) {
  static std::map<std::pair<std::int64_t, std::int64_t>, std::unique_ptr<models>> cache;
  const auto key = std::pair{rows, cols};
  if (cache.find(key) == cache.end()) {
    cache.clear(); // keep one shape resident (14336x4096 x 9 tensors is 1 GiB)
    cache[key] = std::make_unique<models>(rows, cols);
  }
  return *cache[key];
}

/// One merge per iteration. With `workspace`, the method's large scratch comes from a merge_workspace kept across
/// the iterations, as the `fusekit merge` tool keeps one across tensors (the steady state of a job); without
/// it, from operator new, so blocks above glibc's mmap threshold arrive as fresh pages every call
/// (faults_per_call counts them).
template <bool uses_base, class Method, class Policy>
void run(benchmark::State& state, const Method& method, const Policy& pol, bool workspace = true) {
  const std::int64_t rows = state.range(0), cols = state.range(1);
  const auto k = static_cast<std::size_t>(state.range(2));
  const models& m = shared_models(rows, cols);
  const std::array<std::int64_t, 2> shape{rows, cols};
  std::vector<merge_input<V>> in;
  for (std::size_t i = 0; i < k; ++i)
    in.push_back({host_view(static_cast<const T*>(m.tuned[i].data()), shape), 1.0f / static_cast<float>(k), 0.5, 0.01, 0.15});
  std::vector<T> out(static_cast<std::size_t>(rows * cols));
  const auto ov = host_view(out.data(), shape);
  const auto bv = host_view(static_cast<const T*>(m.base.data()), shape);
  merge_workspace ws;
  const merge_context ctx{.tensor_name = "model.layers.17.mlp.up_proj.weight", .seed = 42,
                          .scratch = workspace ? &ws : nullptr};
  auto call = [&] {
    if constexpr (uses_base)
      merge(pol, method, ov, bv, in, ctx);
    else
      merge(pol, method, ov, no_base, in, ctx);
  };
  if (workspace)
    call(); // untimed: the workspace's blocks are allocated by the first call of a job
  const double cpu0 = process_cpu_seconds();
  const long faults0 = process_minor_faults();
  for (auto _ : state) {
    call();
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  const double cpu = (process_cpu_seconds() - cpu0) / static_cast<double>(state.iterations());
  const double faults = static_cast<double>(process_minor_faults() - faults0) / static_cast<double>(state.iterations());
  const std::size_t bytes = static_cast<std::size_t>(rows * cols) * sizeof(T);
  fusekit_bench::report_traffic(state, bytes * (k + (uses_base ? 1 : 0)), bytes);
  state.counters["faults_per_call"] = faults;
  // On a shared machine the wall time includes waiting for a core: also report the CPU seconds of all
  // threads, and that divided by the thread count against the bound (a load-independent estimate).
  state.counters["cpu_s_all_threads"] = cpu;
  state.counters["cpu_bound_ratio"] = cpu / pol.concurrency() / state.counters["bound_s"].value;
  state.counters["inputs"] = static_cast<double>(k);
  state.counters["threads"] = pol.concurrency();
}

/// A floor, not a method: only the Bernoulli keep bits that DARE draws (Philox4x32-10, detail::fill_keep_bits,
/// density 0.5) for `inputs` models over the tensor, written to a bit array, with no tensor traffic at all.
/// Reported against the same bound as the merges of that shape (inputs + base read, output written), so its
/// bound_ratio is the part of DARE's ratio that the generator alone costs.
void dare_draws_only(benchmark::State& state) {
  const std::int64_t rows = state.range(0), cols = state.range(1), n = rows * cols;
  const auto k = static_cast<std::size_t>(state.range(2));
  const std::int64_t words = (n + 63) / 64;
  std::vector<std::uint64_t> bits(static_cast<std::size_t>(words) * k);
  const std::string name = "model.layers.17.mlp.up_proj.weight";
  const double cpu0 = process_cpu_seconds();
  for (auto _ : state) {
    exec::for_each_block(exec::par, n, 2048, [&](std::int64_t b, std::int64_t e) {
      for (std::size_t i = 0; i < k; ++i)
        detail::fill_keep_bits(42, detail::model_stream(name, i), static_cast<std::uint64_t>(b), e - b, 0.5f,
                               bits.data() + i * static_cast<std::size_t>(words) + static_cast<std::size_t>(b / 64));
    });
    benchmark::DoNotOptimize(bits.data());
    benchmark::ClobberMemory();
  }
  const double cpu = (process_cpu_seconds() - cpu0) / static_cast<double>(state.iterations());
  const std::size_t bytes = static_cast<std::size_t>(n) * sizeof(T);
  fusekit_bench::report_traffic(state, bytes * (k + 1), bytes);
  state.counters["cpu_s_all_threads"] = cpu;
  state.counters["cpu_bound_ratio"] = cpu / exec::par.concurrency() / state.counters["bound_s"].value;
  state.counters["inputs"] = static_cast<double>(k);
  state.counters["threads"] = exec::par.concurrency();
  state.counters["draws_per_s"] = benchmark::Counter(static_cast<double>(n) * static_cast<double>(k),
                                                     benchmark::Counter::kIsIterationInvariantRate);
}

template <bool base, class Method> void bm_par(benchmark::State& s, Method m) { run<base>(s, m, exec::par); }
template <bool base, class Method> void bm_seq(benchmark::State& s, Method m) { run<base>(s, m, exec::seq); }

void shapes_par(benchmark::internal::Benchmark* b) {
  for (auto [r, c] : {std::pair<std::int64_t, std::int64_t>{4096, 4096}, {14336, 4096}})
    for (std::int64_t k : {2, 4, 8})
      b->Args({r, c, k});
  b->ArgNames({"rows", "cols", "inputs"})->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(0.3);
}
void shapes_seq(benchmark::internal::Benchmark* b) {
  for (std::int64_t k : {2, 4, 8})
    b->Args({4096, 4096, k});
  b->ArgNames({"rows", "cols", "inputs"})->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(0.3);
}
void shapes_smoke(benchmark::internal::Benchmark* b) {
  b->Args({64, 96, 3})->ArgNames({"rows", "cols", "inputs"})->Iterations(2);
}

template <bool base, class M> void reg(const std::string& label, M m) {
  benchmark::RegisterBenchmark((label + "/bf16/par").c_str(), [m](benchmark::State& s) { run<base>(s, m, exec::par); })
      ->Apply(shapes_par);
  benchmark::RegisterBenchmark((label + "/bf16/seq").c_str(), [m](benchmark::State& s) { run<base>(s, m, exec::seq); })
      ->Apply(shapes_seq);
  benchmark::RegisterBenchmark(("smoke/" + label).c_str(), [m](benchmark::State& s) { run<base>(s, m, exec::par); })
      ->Apply(shapes_smoke);
}
/// The same method with its scratch from operator new every call (no merge_workspace): what a caller that
/// passes no workspace gets.
template <class M> void reg_no_workspace(const std::string& label, M m) {
  benchmark::RegisterBenchmark((label + "/bf16/par_no_workspace").c_str(),
                               [m](benchmark::State& s) { run<true>(s, m, exec::par, false); })
      ->Apply(shapes_par);
}

} // namespace

int main(int argc, char** argv) {
  // task-vector family (GTA)
  reg<true>("task_arithmetic", task_arithmetic{});
  reg<true>("ties", ties{});
  reg<true>("dare_ties", dare_ties{});
  reg<true>("dare_linear", dare_linear{});
  reg<true>("breadcrumbs_ties", breadcrumbs_ties{});
  reg<true>("della", della{});
  reg_no_workspace("ties", ties{});
  reg_no_workspace("dare_ties", dare_ties{});
  reg_no_workspace("dare_linear", dare_linear{});
  reg_no_workspace("breadcrumbs_ties", breadcrumbs_ties{});
  reg_no_workspace("della", della{});
  benchmark::RegisterBenchmark("dare_draws_only/bf16/par", dare_draws_only)->Apply(shapes_par);
  // FuseChat methods
  reg<true>("sce", sce{});
  reg<true>("sce_topk0.1", sce{.select_topk = 0.1});
  reg<true>("varm", varm{});
  // geometric / element-wise
  reg<false>("linear", linear{});
  reg<true>("multislerp", multislerp{});
  reg<false>("karcher", karcher{});
  reg<true>("model_stock", model_stock{});
  reg<true>("ram", ram{});
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
