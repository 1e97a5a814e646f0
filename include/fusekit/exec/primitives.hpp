/// @file
/// @brief The loop primitives every algorithm is written on: for_each_n, for_each_block,
/// transform_reduce (deterministic), segmented_transform_reduce.
///
/// Each forwards to the policy's member of the same name when it has one (thrust and CUDA policies do),
/// otherwise builds on the policy's `for_each_n`. Reductions split [0, n) into chunks that depend on
/// `n` only, reduce each chunk left to right and combine the chunk results in order, so floating-point
/// results are bit-identical for seq, par and any thread count.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include <fusekit/exec/policy.hpp>

namespace fusekit::exec {

/// Calls `f(i)` for every i in [0, n). Iterations may run concurrently and in any order.
template <execution_policy P, class F> void for_each_n(const P& policy, std::int64_t n, F&& f) {
  if (n > 0)
    policy.for_each_n(n, std::forward<F>(f));
}

/// Calls `f(begin, end)` for consecutive blocks of at most `block` indices covering [0, n).
/// Blocks may run concurrently. This is the unit to vectorize over.
template <execution_policy P, class F> void for_each_block(const P& policy, std::int64_t n, std::int64_t block, F&& f) {
  if (n <= 0)
    return;
  if (block <= 0)
    block = n;
  if constexpr (requires { policy.for_each_block(n, block, f); })
    policy.for_each_block(n, block, std::forward<F>(f));
  else
    policy.for_each_n((n + block - 1) / block,
                      [&](std::int64_t b) { f(b * block, std::min(n, (b + 1) * block)); });
}

/// Chunk length used by the deterministic reductions for a problem of size n (depends on n only).
[[nodiscard]] constexpr std::int64_t reduction_chunk(std::int64_t n) noexcept {
  constexpr std::int64_t min_chunk = 4096, max_chunks = 1024;
  return std::max(min_chunk, (n + max_chunks - 1) / max_chunks);
}

namespace detail {
/// The deterministic chunked reduction behind transform_reduce, on any policy's `for_each_n` over chunks
/// (host policies that provide their own transform_reduce reuse it to keep the same association).
template <class P, class T, class Reduce, class Transform>
[[nodiscard]] T chunked_transform_reduce(const P& policy, std::int64_t n, T init, Reduce reduce, Transform transform) {
  const std::int64_t chunk = reduction_chunk(n);
  const std::int64_t nchunks = (n + chunk - 1) / chunk;
  std::vector<T> partial(static_cast<std::size_t>(nchunks), init);
  policy.for_each_n(nchunks, [&](std::int64_t c) {
    const std::int64_t b = c * chunk, e = std::min(n, b + chunk);
    T acc = transform(b);
    for (std::int64_t i = b + 1; i < e; ++i)
      acc = reduce(std::move(acc), transform(i));
    partial[static_cast<std::size_t>(c)] = std::move(acc);
  });
  T acc = std::move(init);
  for (auto& p : partial)
    acc = reduce(std::move(acc), std::move(p));
  return acc;
}
} // namespace detail

/// Deterministic reduction: `init ⊕ t(0) ⊕ ... ⊕ t(n-1)` with a fixed, thread-count independent
/// association (chunks of reduction_chunk(n), each reduced left to right, then combined in order).
/// `reduce` must be associative up to rounding; `transform(i)` must be safe to call concurrently.
template <execution_policy P, class T, class Reduce, class Transform>
[[nodiscard]] T transform_reduce(const P& policy, std::int64_t n, T init, Reduce reduce, Transform transform) {
  if (n <= 0)
    return init;
  if constexpr (requires { policy.transform_reduce(n, init, reduce, transform); })
    return policy.transform_reduce(n, init, reduce, transform);
  else
    return detail::chunked_transform_reduce(policy, n, std::move(init), reduce, transform);
}

/// Segmented reduction: for every segment s in [0, nseg), writes
/// `out(s, init ⊕ t(s, begin(s)) ⊕ ... ⊕ t(s, end(s)-1))`, segments reduced left to right, in parallel
/// across segments. `bounds(s)` returns a pair (begin, end).
template <execution_policy P, class T, class Bounds, class Reduce, class Transform, class Out>
void segmented_transform_reduce(const P& policy, std::int64_t nseg, Bounds bounds, T init, Reduce reduce,
                                Transform transform, Out out) {
  if constexpr (requires { policy.segmented_transform_reduce(nseg, bounds, init, reduce, transform, out); }) {
    policy.segmented_transform_reduce(nseg, bounds, init, reduce, transform, out);
  } else {
    exec::for_each_n(policy, nseg, [&](std::int64_t s) {
      const auto [b, e] = bounds(s);
      T acc = init;
      for (std::int64_t i = b; i < e; ++i)
        acc = reduce(std::move(acc), transform(s, i));
      out(s, std::move(acc));
    });
  }
}

} // namespace fusekit::exec
