// Shared benchmark helpers: the machine's own memcpy bandwidth, measured in the same run, so every
// throughput figure can be read against the physical limit.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace fusekit_bench {

/// Copies `bytes` bytes with non-temporal (streaming) stores where the CPU has them (AVX2 builds), else
/// std::memcpy. glibc's memcpy streams only above its x86_non_temporal_threshold (192 MiB on the 2-core dev
/// machine); below it every written line is first read for ownership, which makes a copy of 64 MiB run at
/// ~20 GB/s where the memory system moves ~37 GB/s, and a bound taken from it flatters every kernel that
/// streams its output (fusekit's merge kernels do).
inline void stream_copy(char* dst, const char* src, std::size_t bytes) {
#if defined(__AVX2__)
  const std::size_t head = std::min<std::size_t>((32 - reinterpret_cast<std::uintptr_t>(dst) % 32) % 32, bytes);
  std::memcpy(dst, src, head);
  std::size_t i = head;
  for (; i + 128 <= bytes; i += 128)
    for (int q = 0; q < 4; ++q)
      _mm256_stream_si256(reinterpret_cast<__m256i*>(dst + i + 32 * q),
                          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i + 32 * q)));
  _mm_sfence();
  std::memcpy(dst + i, src + i, bytes - i);
#else
  std::memcpy(dst, src, bytes);
#endif
}

/// Read+write traffic per second of copying `bytes` bytes split into `threads` equal pieces copied
/// concurrently: the better of std::memcpy and stream_copy, best of a few repetitions, buffers touched
/// first. Cached per (size, threads) for the life of the process (measured once per run).
inline double copy_bandwidth(std::size_t bytes, int threads = 1) {
  static std::map<std::pair<std::size_t, int>, double> cache;
  if (auto it = cache.find({bytes, threads}); it != cache.end())
    return it->second;
  std::unique_ptr<char[]> src(new char[bytes]), dst(new char[bytes]);
  std::memset(src.get(), 1, bytes);
  std::memset(dst.get(), 2, bytes);
  const std::size_t piece = (bytes / static_cast<std::size_t>(threads) + 63) / 64 * 64;
  double best = 1e300;
  const int reps = bytes > (256u << 20) ? 3 : 5;
  for (int streaming = 0; streaming < 2; ++streaming)
    for (int r = 0; r < reps; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel for num_threads(threads) schedule(static, 1) if (threads > 1)
      for (int t = 0; t < threads; ++t) {
        const std::size_t b = static_cast<std::size_t>(t) * piece;
        if (b < bytes) {
          const std::size_t len = std::min(piece, bytes - b);
          if (streaming)
            stream_copy(dst.get() + b, src.get() + b, len);
          else
            std::memcpy(dst.get() + b, src.get() + b, len);
        }
      }
      benchmark::ClobberMemory();
      const auto t1 = std::chrono::steady_clock::now();
      best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
    }
  benchmark::DoNotOptimize(dst.get());
  // a copy reads `bytes` and writes `bytes`: report traffic (read + write) per second.
  const double bw = 2.0 * static_cast<double>(bytes) / best;
  cache[{bytes, threads}] = bw;
  return bw;
}

/// The single-threaded copy rate of copy_bandwidth (the `memcpy_GBps` counter of every benchmark).
inline double memcpy_bandwidth(std::size_t bytes) { return copy_bandwidth(bytes, 1); }

/// Adds the standard counters to a benchmark: `bytes_per_second` (via SetBytesProcessed, counting bytes
/// read + written), `GBps` (the same in GB/s), `memcpy_GBps` (the single-threaded copy rate of
/// memcpy_bandwidth for the same total bytes, in this run) and `bound_s` (the time a pass at that rate would
/// take: the bound; time / bound_s = 1.0 means at the bandwidth bound).
inline void report_traffic(benchmark::State& state, std::size_t bytes_read, std::size_t bytes_written) {
  const std::size_t total = bytes_read + bytes_written;
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(total));
  const double bw = memcpy_bandwidth(std::max<std::size_t>(total / 2, 1));
  state.counters["memcpy_GBps"] = bw / 1e9;
  state.counters["bound_s"] = static_cast<double>(total) / bw;
  // Time per iteration divided by the bound: computed from the bytes rate Google Benchmark reports.
  state.counters["GBps"] = benchmark::Counter(static_cast<double>(total) / 1e9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}

} // namespace fusekit_bench
