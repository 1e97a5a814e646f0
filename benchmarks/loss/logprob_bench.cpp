// Log-prob forward / backward and fused cross-entropy+gradient over [N, V] logits (V = 128,256 Llama-3
// and 151,936 Qwen-2.5), bf16, fp16 and fp32 storage, seq and par, reported beside the memcpy bandwidth
// of the same bytes measured in this run. Lower bound for forward+backward = read the logits once + write
// the gradient once (2·N·V·sizeof(T) bytes); `bound_s` = that traffic at single-thread memcpy speed,
// `bound_par_s` = at the speed of a memcpy split over the policy's threads (the bound for `par`).
//   fusekit_bench_loss --benchmark_filter='par' --benchmark_min_time=1
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <ctime>
#include <vector>

#include "bandwidth.hpp"
#include <fusekit/loss/fusion.hpp>
#include <fusekit/loss/logprob.hpp>
#include <fusekit/types/bf16.hpp>
#include <fusekit/types/fp16.hpp>

namespace {

using namespace fusekit;

/// CPU time of the whole process (all threads), seconds.
double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}


template <class T> struct fixture {
  std::int64_t N, V, B;
  std::vector<T> logits, grad;
  std::vector<std::int64_t> labels, offsets;
  std::vector<double> seq_sum, gseq;
  std::vector<float> lse;
  fixture(std::int64_t n, std::int64_t v, bool separate_grad) : N(n), V(v), B(std::max<std::int64_t>(1, n / 512)) {
    logits.resize(static_cast<std::size_t>(N * V));
    std::uint32_t s = 12345u;
    for (auto& x : logits) { // cheap LCG, values in [-8, 8)
      s = s * 1664525u + 1013904223u;
      x = from_compute<T>(static_cast<float>(s >> 8) * (16.0f / 16777216.0f) - 8.0f);
    }
    if (separate_grad)
      grad.resize(logits.size());
    labels.resize(static_cast<std::size_t>(N));
    for (std::int64_t t = 0; t < N; ++t)
      labels[static_cast<std::size_t>(t)] = (t % 7 == 0) ? -100 : (t * 7919) % V; // ~1/7 masked (prompt)
    for (std::int64_t b = 0; b <= B; ++b)
      offsets.push_back(b * N / B);
    seq_sum.resize(static_cast<std::size_t>(B));
    gseq.assign(static_cast<std::size_t>(B), -0.05);
    lse.resize(static_cast<std::size_t>(N));
  }
  logits_batch<T> batch() const {
    return {.logits = host_view(logits.data(), std::array<std::int64_t, 2>{N, V}),
            .labels = host_view(labels.data(), N),
            .seq_offsets = host_view(offsets.data(), B + 1)};
  }
  matrix_view<T> grad_view() {
    T* p = grad.empty() ? logits.data() : grad.data();
    return host_view(p, std::array<std::int64_t, 2>{N, V});
  }
};

enum class op { forward, forward_backward, fused_ce };

template <class T, op Op, class Policy> void run(benchmark::State& state, const Policy& pol) {
  const std::int64_t N = state.range(0), V = state.range(1);
  // in-place gradient for the fused CE (llm.c / Liger style); separate buffer for forward+backward
  fixture<T> f(N, V, Op == op::forward_backward);
  const double cpu0 = process_cpu_seconds();
  for (auto _ : state) {
    if constexpr (Op == op::forward) {
      sequence_logprobs(pol, f.batch(), sequence_logprob_outputs<double>{.sum = host_view(f.seq_sum.data(), f.B)},
                        token_logprob_outputs<float>{.lse = host_view(f.lse.data(), N)});
    } else if constexpr (Op == op::forward_backward) {
      sequence_logprobs(pol, f.batch(), sequence_logprob_outputs<double>{.sum = host_view(f.seq_sum.data(), f.B)},
                        token_logprob_outputs<float>{.lse = host_view(f.lse.data(), N)});
      sequence_logprobs_backward(
          pol, f.batch(), vector_view<const double>(host_view(f.gseq.data(), f.B)), f.grad_view(),
          logprob_backward_options<float>{.lse = host_view(static_cast<const float*>(f.lse.data()), N)});
    } else {
      // in place: the logits buffer becomes the gradient (values stay in [-1, 1]; timing unaffected)
      auto r = cross_entropy_and_grad(pol, f.batch(), f.grad_view());
      benchmark::DoNotOptimize(r);
    }
    benchmark::DoNotOptimize(f.seq_sum.data());
    benchmark::ClobberMemory();
  }
  // CPU seconds of all threads of the process per iteration: on a machine shared with other jobs,
  // proc_cpu_s / threads estimates the time the call would take on idle cores
  state.counters["proc_cpu_s"] = (process_cpu_seconds() - cpu0) / static_cast<double>(state.iterations());
  const std::size_t bytes = static_cast<std::size_t>(N * V) * sizeof(T);
  // the bound counts one read of the logits (+ one write of the gradient when there is a backward)
  fusekit_bench::report_traffic(state, bytes, Op == op::forward ? 0 : bytes);
  state.counters["threads"] = pol.concurrency();
  if (pol.concurrency() > 1) {
    const std::size_t total = bytes + (Op == op::forward ? 0 : bytes);
    const double bw = fusekit_bench::copy_bandwidth(std::max<std::size_t>(total / 2, 1), pol.concurrency());
    state.counters["memcpy_par_GBps"] = bw / 1e9;
    state.counters["bound_par_s"] = static_cast<double>(total) / bw;
  }
}

template <class T, op Op> void bm_seq(benchmark::State& s) { run<T, Op>(s, exec::seq); }
template <class T, op Op> void bm_par(benchmark::State& s) { run<T, Op>(s, exec::par); }

void shapes_f32(benchmark::internal::Benchmark* b) {
  for (std::int64_t v : {128256, 151936})
    for (std::int64_t n : {512, 2048})
      b->Args({n, v});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}
void shapes_bf16(benchmark::internal::Benchmark* b) {
  for (std::int64_t v : {128256, 151936})
    for (std::int64_t n : {512, 2048, 8192})
      b->Args({n, v});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}
void shapes_bf16_inplace_only(benchmark::internal::Benchmark* b) { // keeps memory ≤ 2.5 GB
  for (std::int64_t v : {128256, 151936})
    for (std::int64_t n : {512, 2048})
      b->Args({n, v});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}
void smoke(benchmark::internal::Benchmark* b) { b->Args({64, 4099})->Unit(benchmark::kMillisecond)->UseRealTime(); }

} // namespace

BENCHMARK(bm_par<float, op::forward>)->Name("par/f32/forward")->Apply(shapes_f32);
BENCHMARK(bm_par<float, op::forward_backward>)->Name("par/f32/forward_backward")->Apply(shapes_f32);
BENCHMARK(bm_par<float, op::fused_ce>)->Name("par/f32/fused_ce_inplace")->Apply(shapes_f32);
BENCHMARK(bm_par<bf16, op::forward>)->Name("par/bf16/forward")->Apply(shapes_bf16);
BENCHMARK(bm_par<bf16, op::forward_backward>)->Name("par/bf16/forward_backward")->Apply(shapes_bf16_inplace_only);
BENCHMARK(bm_par<bf16, op::fused_ce>)->Name("par/bf16/fused_ce_inplace")->Apply(shapes_bf16);
void shapes_f16(benchmark::internal::Benchmark* b) {
  for (std::int64_t v : {128256, 151936})
    b->Args({2048, v});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}
void shape_seq(benchmark::internal::Benchmark* b) {
  b->Args({512, 128256})->Args({512, 151936})->Unit(benchmark::kMillisecond)->UseRealTime();
}
BENCHMARK(bm_par<fp16, op::forward>)->Name("par/f16/forward")->Apply(shapes_f16);
BENCHMARK(bm_par<fp16, op::forward_backward>)->Name("par/f16/forward_backward")->Apply(shapes_f16);
BENCHMARK(bm_par<fp16, op::fused_ce>)->Name("par/f16/fused_ce_inplace")->Apply(shapes_f16);
BENCHMARK(bm_seq<float, op::forward>)->Name("seq/f32/forward")->Apply(shape_seq);
BENCHMARK(bm_seq<float, op::forward_backward>)->Name("seq/f32/forward_backward")->Apply(shape_seq);
BENCHMARK(bm_seq<float, op::fused_ce>)->Name("seq/f32/fused_ce_inplace")->Apply(shape_seq);
BENCHMARK(bm_seq<bf16, op::forward>)->Name("seq/bf16/forward")->Apply(shape_seq);
BENCHMARK(bm_seq<bf16, op::forward_backward>)->Name("seq/bf16/forward_backward")->Apply(shape_seq);
BENCHMARK(bm_seq<bf16, op::fused_ce>)->Name("seq/bf16/fused_ce_inplace")->Apply(shape_seq);
BENCHMARK(bm_seq<fp16, op::forward_backward>)->Name("seq/f16/forward_backward")->Apply(shape_seq);
// Compute cost per element: 8 rows (4 MiB in fp32) stay in cache between iterations, single thread.
void in_cache(benchmark::internal::Benchmark* b) { b->Args({8, 128256})->Unit(benchmark::kMicrosecond)->UseRealTime(); }
BENCHMARK(bm_seq<float, op::forward>)->Name("cache/f32/forward")->Apply(in_cache);
BENCHMARK(bm_seq<float, op::forward_backward>)->Name("cache/f32/forward_backward")->Apply(in_cache);
BENCHMARK(bm_seq<float, op::fused_ce>)->Name("cache/f32/fused_ce_inplace")->Apply(in_cache);
BENCHMARK(bm_seq<bf16, op::forward>)->Name("cache/bf16/forward")->Apply(in_cache);
BENCHMARK(bm_seq<bf16, op::forward_backward>)->Name("cache/bf16/forward_backward")->Apply(in_cache);
BENCHMARK(bm_seq<bf16, op::fused_ce>)->Name("cache/bf16/fused_ce_inplace")->Apply(in_cache);
BENCHMARK(bm_seq<fp16, op::forward>)->Name("cache/f16/forward")->Apply(in_cache);
BENCHMARK(bm_seq<fp16, op::forward_backward>)->Name("cache/f16/forward_backward")->Apply(in_cache);
BENCHMARK(bm_seq<fp16, op::fused_ce>)->Name("cache/f16/fused_ce_inplace")->Apply(in_cache);
BENCHMARK(bm_par<bf16, op::forward_backward>)->Name("smoke/bf16/forward_backward")->Apply(smoke);
BENCHMARK(bm_par<float, op::fused_ce>)->Name("smoke/f32/fused_ce_inplace")->Apply(smoke);

BENCHMARK_MAIN();
