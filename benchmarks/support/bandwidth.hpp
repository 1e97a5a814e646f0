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
#include <vector>

namespace fusekit_bench {

/// Bytes/s of std::memcpy for a copy of `bytes` bytes (best of a few repetitions, buffers touched
/// first). Cached per size for the life of the process (measured once per run).
inline double memcpy_bandwidth(std::size_t bytes) {
  static std::map<std::size_t, double> cache;
  if (auto it = cache.find(bytes); it != cache.end())
    return it->second;
  std::unique_ptr<char[]> src(new char[bytes]), dst(new char[bytes]);
  std::memset(src.get(), 1, bytes);
  std::memset(dst.get(), 2, bytes);
  double best = 1e300;
  const int reps = bytes > (256u << 20) ? 3 : 7;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    std::memcpy(dst.get(), src.get(), bytes);
    benchmark::ClobberMemory();
    const auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
  }
  benchmark::DoNotOptimize(dst.get());
  // memcpy reads `bytes` and writes `bytes`: report traffic (read + write) per second.
  const double bw = 2.0 * static_cast<double>(bytes) / best;
  cache[bytes] = bw;
  return bw;
}

/// Adds the standard counters to a benchmark: `bytes_per_second` (via SetBytesProcessed, counting bytes
/// read + written), `memcpy_GBps` (memcpy traffic rate for the same total bytes in this run),
/// `bound_ratio` (time / time a memcpy-speed pass would take; 1.0 = at the bandwidth bound).
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
