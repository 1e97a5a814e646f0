/// @file
/// @brief Execution policies: seq (one thread), par (OpenMP threads), and the policy concept.
///
/// A policy is a value type that says where it runs (`space_type`) and provides the loop primitives
/// as member templates: `for_each_n(n, f)` calls f(i) for every i in [0, n), and
/// `for_each_block(n, block, f)` calls f(begin, end) for consecutive blocks of at most `block`
/// indices (the unit algorithms vectorize over). Algorithms call them through the free functions in
/// <fusekit/exec/primitives.hpp>; a new backend is a new policy type, found without editing fusekit.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include <fusekit/core/config.hpp>
#include <fusekit/view/concepts.hpp>
#include <fusekit/view/memory_space.hpp>

#if FUSEKIT_HAS_OPENMP
#include <omp.h>
#endif

namespace fusekit::exec {

/// Runs everything on the calling thread.
struct sequenced_policy {
  using space_type = host_space;
  /// False: never runs concurrently.
  static constexpr bool is_parallel = false;
  /// Number of workers a loop is split over.
  [[nodiscard]] int concurrency() const noexcept { return 1; }

  template <class F> void for_each_n(std::int64_t n, F&& f) const {
    for (std::int64_t i = 0; i < n; ++i)
      f(i);
  }
  template <class F> void for_each_block(std::int64_t n, std::int64_t block, F&& f) const {
    for (std::int64_t b = 0; b < n; b += block)
      f(b, std::min(n, b + block));
  }
};

/// Runs loops on OpenMP threads (static schedule). `threads = 0` means OpenMP's default.
/// When the translation unit is built without OpenMP, `is_parallel` is false and loops run
/// sequentially; tests and benchmarks can check that instead of being silently slow.
struct parallel_policy {
  using space_type = host_space;
  /// Requested thread count; 0 = the OpenMP default (OMP_NUM_THREADS or the core count).
  int threads = 0;
  /// True when built with OpenMP; false means `par` falls back to sequential execution.
  static constexpr bool is_parallel = FUSEKIT_HAS_OPENMP != 0;

  /// Number of workers a loop is split over.
  [[nodiscard]] int concurrency() const noexcept {
#if FUSEKIT_HAS_OPENMP
    return threads > 0 ? threads : omp_get_max_threads();
#else
    return 1;
#endif
  }

  template <class F> void for_each_n(std::int64_t n, F&& f) const {
#if FUSEKIT_HAS_OPENMP
    const int nt = concurrency();
    if (nt > 1 && n > 1) {
#pragma omp parallel for schedule(static) num_threads(nt)
      for (std::int64_t i = 0; i < n; ++i)
        f(i);
      return;
    }
#endif
    for (std::int64_t i = 0; i < n; ++i)
      f(i);
  }

  template <class F> void for_each_block(std::int64_t n, std::int64_t block, F&& f) const {
    const std::int64_t nblocks = block > 0 ? (n + block - 1) / block : 0;
    for_each_n(nblocks, [&](std::int64_t b) { f(b * block, std::min(n, (b + 1) * block)); });
  }

  /// The same policy limited to `n` threads.
  [[nodiscard]] parallel_policy with_threads(int n) const noexcept { return parallel_policy{n}; }
};

/// The sequential policy object.
inline constexpr sequenced_policy seq{};
/// The OpenMP policy object (default thread count).
inline constexpr parallel_policy par{};

/// A type usable as an execution policy: it names the memory space it runs in and provides the loop
/// primitives.
template <class P>
concept execution_policy = requires { typename std::remove_cvref_t<P>::space_type; } &&
                           memory_space<typename std::remove_cvref_t<P>::space_type> &&
                           requires { std::remove_cvref_t<P>::is_parallel; };

/// The policy `P` can reach the memory of every view `V...`.
template <class P, class... V>
concept runs_on = execution_policy<P> &&
                  (accessible_from<typename std::remove_cvref_t<V>::space_type,
                                   typename std::remove_cvref_t<P>::space_type> &&
                   ...);

/// Compile-time check with a sentence, for algorithms to call first.
template <class P, class... V> constexpr void check_runs_on() noexcept {
  static_assert(execution_policy<P>, "fusekit: the first argument is not an execution policy (fusekit::exec::seq, "
                                     "fusekit::exec::par, a thrust_policy or a cuda_policy).");
  static_assert(runs_on<P, V...>,
                "fusekit: memory-space mismatch: a view lives in a memory space the execution policy cannot reach. "
                "Host policies (seq, par, host thrust systems) need host or managed views; device views need "
                "fusekit::exec::cuda_policy or a CUDA thrust_policy.");
}

} // namespace fusekit::exec
