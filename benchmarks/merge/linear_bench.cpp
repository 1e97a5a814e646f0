// linear / task_arithmetic throughput on k inputs of 64 MiB each, seq and par, bf16 and fp32 storage,
// reported beside memcpy bandwidth of the same bytes measured in this run.
//   fusekit_bench_merge_slice --benchmark_filter='64MiB'
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include "bandwidth.hpp"
#include <fusekit/merge/linear.hpp>
#include <fusekit/merge/task_arithmetic.hpp>

namespace {

using namespace fusekit;

template <class T> struct fixture {
  std::int64_t n;
  std::vector<std::vector<T>> models;
  std::vector<T> base, out;
  std::vector<merge_input<strided_view<const T, 1>>> inputs;
  fixture(std::int64_t bytes, int k) : n(bytes / static_cast<std::int64_t>(sizeof(T))) {
    base.resize(static_cast<std::size_t>(n));
    out.resize(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i)
      base[static_cast<std::size_t>(i)] = from_compute<T>(static_cast<float>(i % 1000) * 1e-3f);
    for (int m = 0; m < k; ++m) {
      models.emplace_back(base);
      for (std::int64_t i = m; i < n; i += 7)
        models.back()[static_cast<std::size_t>(i)] = from_compute<T>(0.5f);
    }
    for (auto& m : models)
      inputs.push_back({.tensor = host_view(static_cast<const T*>(m.data()), n), .weight = 1.0f / static_cast<float>(k)});
  }
};

template <class T, class Method, class Policy>
void run(benchmark::State& state, const Policy& pol, std::int64_t bytes) {
  const int k = static_cast<int>(state.range(0));
  fixture<T> f(bytes, k);
  constexpr bool ta = std::is_same_v<Method, task_arithmetic>;
  for (auto _ : state) {
    if constexpr (ta)
      merge(pol, Method{}, host_view(f.out.data(), f.n), host_view(static_cast<const T*>(f.base.data()), f.n), f.inputs);
    else
      merge(pol, Method{}, host_view(f.out.data(), f.n), no_base, f.inputs);
    benchmark::DoNotOptimize(f.out.data());
    benchmark::ClobberMemory();
  }
  const std::size_t in_bytes = static_cast<std::size_t>(f.n) * sizeof(T) * static_cast<std::size_t>(k + (ta ? 1 : 0));
  fusekit_bench::report_traffic(state, in_bytes, static_cast<std::size_t>(f.n) * sizeof(T));
  state.counters["threads"] = pol.concurrency();
}

constexpr std::int64_t mib64 = 64ll << 20;

template <class T, class M> void bm_seq(benchmark::State& s) { run<T, M>(s, exec::seq, mib64); }
template <class T, class M> void bm_par(benchmark::State& s) { run<T, M>(s, exec::par, mib64); }
template <class T, class M> void bm_smoke(benchmark::State& s) { run<T, M>(s, exec::par, 1 << 16); }

} // namespace

BENCHMARK(bm_par<fusekit::bf16, fusekit::linear>)->Name("linear/bf16/par/64MiB")->Arg(2)->Arg(4)->Arg(8)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(bm_seq<fusekit::bf16, fusekit::linear>)->Name("linear/bf16/seq/64MiB")->Arg(2)->Arg(4)->Arg(8)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(bm_par<fusekit::bf16, fusekit::task_arithmetic>)->Name("task_arithmetic/bf16/par/64MiB")->Arg(2)->Arg(4)->Arg(8)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(bm_seq<fusekit::bf16, fusekit::task_arithmetic>)->Name("task_arithmetic/bf16/seq/64MiB")->Arg(2)->Arg(4)->Arg(8)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(bm_par<float, fusekit::linear>)->Name("linear/f32/par/64MiB")->Arg(2)->Arg(4)->Arg(8)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(bm_par<float, fusekit::task_arithmetic>)->Name("task_arithmetic/f32/par/64MiB")->Arg(2)->Arg(4)->Arg(8)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(bm_par<fusekit::fp16, fusekit::task_arithmetic>)->Name("task_arithmetic/f16/par/64MiB")->Arg(2)->Arg(4)->Arg(8)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(bm_smoke<fusekit::bf16, fusekit::task_arithmetic>)->Name("smoke/task_arithmetic/bf16")->Arg(2);
BENCHMARK(bm_smoke<fusekit::fp16, fusekit::linear>)->Name("smoke/linear/f16")->Arg(3);

BENCHMARK_MAIN();
