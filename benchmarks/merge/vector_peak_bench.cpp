// The machine's sustained AVX2 vector-operation rate, the other physical limit of a merge kernel beside the
// copy bandwidth: the consensus methods (TIES, DARE, SCE) are compute-bound on this machine (same time per
// element and model with the data in L3 as from DRAM), so their floor is "vector operations needed ÷ this
// rate" (docs/merging.md §8, "Compute floor").
//
//   fusekit_bench_merge_vector_peak                              (1 and 2 threads)
//   fusekit_bench_merge_vector_peak --benchmark_filter=smoke     (CI smoke run)
//
// Each loop iteration issues independent register-only operations (no loads or stores, enough chains to
// hide latency); ops_per_second counts 256-bit operations, summed over the threads.
#include <benchmark/benchmark.h>

#include <cstdint>

namespace {

#if defined(__AVX2__) && (defined(__x86_64__) || defined(__i386__))
// 4 vaddps, 2 vmulps, 2 vpand, 2 vpcmpgtd, 2 vpaddd per iteration: the mix of the GTA/SCE final passes
// (float adds for the sums, multiplies for weights and signs, integer logic for masks and keys)
void mix_loop(std::int64_t n) {
  asm volatile("vxorps %%ymm12,%%ymm12,%%ymm12\n\t"
               "vxorps %%ymm13,%%ymm13,%%ymm13\n"
               "1:\n\t"
               "vaddps %%ymm12,%%ymm0,%%ymm0\n\t"
               "vaddps %%ymm12,%%ymm1,%%ymm1\n\t"
               "vaddps %%ymm12,%%ymm2,%%ymm2\n\t"
               "vaddps %%ymm12,%%ymm3,%%ymm3\n\t"
               "vmulps %%ymm13,%%ymm4,%%ymm4\n\t"
               "vmulps %%ymm13,%%ymm5,%%ymm5\n\t"
               "vpand %%ymm12,%%ymm6,%%ymm6\n\t"
               "vpcmpgtd %%ymm12,%%ymm7,%%ymm7\n\t"
               "vpand %%ymm12,%%ymm8,%%ymm8\n\t"
               "vpcmpgtd %%ymm12,%%ymm9,%%ymm9\n\t"
               "vpaddd %%ymm12,%%ymm10,%%ymm10\n\t"
               "vpaddd %%ymm12,%%ymm11,%%ymm11\n\t"
               "dec %0\n\t"
               "jnz 1b\n"
               : "+r"(n)
               :
               : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
                 "xmm12", "xmm13", "cc");
}
// 8 independent vaddps per iteration: the float-add ports alone
void fadd_loop(std::int64_t n) {
  asm volatile("vxorps %%ymm12,%%ymm12,%%ymm12\n"
               "1:\n\t"
               "vaddps %%ymm12,%%ymm0,%%ymm0\n\t"
               "vaddps %%ymm12,%%ymm1,%%ymm1\n\t"
               "vaddps %%ymm12,%%ymm2,%%ymm2\n\t"
               "vaddps %%ymm12,%%ymm3,%%ymm3\n\t"
               "vaddps %%ymm12,%%ymm4,%%ymm4\n\t"
               "vaddps %%ymm12,%%ymm5,%%ymm5\n\t"
               "vaddps %%ymm12,%%ymm6,%%ymm6\n\t"
               "vaddps %%ymm12,%%ymm7,%%ymm7\n\t"
               "dec %0\n\t"
               "jnz 1b\n"
               : "+r"(n)
               :
               : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm12", "cc");
}

/// Loop's rate in 256-bit operations per second; Ops = operations per loop iteration.
template <void (*Loop)(std::int64_t), int Ops> void vector_rate(benchmark::State& state) {
  const std::int64_t iters = state.range(0);
  for (auto _ : state)
    Loop(iters);
  state.counters["ops_per_second"] =
      benchmark::Counter(Ops * static_cast<double>(iters) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}

BENCHMARK(vector_rate<mix_loop, 12>)->Name("gta_like_mix")->Arg(1 << 24)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(vector_rate<fadd_loop, 8>)->Name("vaddps")->Arg(1 << 24)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(vector_rate<mix_loop, 12>)->Name("smoke/gta_like_mix")->Arg(1 << 10);
#else
void no_avx2(benchmark::State& state) {
  for (auto _ : state)
    state.SkipWithError("fusekit_bench_merge_vector_peak measures AVX2 (x86-64 built with -march supporting it)");
}
BENCHMARK(no_avx2)->Name("smoke/no_avx2");
#endif

} // namespace

BENCHMARK_MAIN();
