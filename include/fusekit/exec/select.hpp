/// @file
/// @brief Exact k-th largest selection and top-k with a deterministic tie order (radix select).
///
/// Keys are 32-bit unsigned integers ordered as numbers; use float_order_key() to order floats.
/// Selection makes two counting passes of 16-bit digits over the keys (each key is recomputed by the
/// caller's functor, so nothing of size n is allocated). Top-k keeps every key above the k-th largest
/// and, among keys equal to it, the ones with the lowest indices: exactly k survive, always the same
/// ones, for any policy and thread count.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <vector>

#include <fusekit/core/error.hpp>
#include <fusekit/exec/primitives.hpp>

namespace fusekit::exec {

/// Maps a float to a uint32 whose unsigned order is the float order (-inf < ... < -0 < +0 < ... < +inf;
/// NaNs with the sign bit clear sort above +inf).
[[nodiscard]] FUSEKIT_HOST_DEVICE constexpr std::uint32_t float_order_key(float f) noexcept {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
/// Key of |f|, ordering magnitudes (cheaper than float_order_key for non-negative quantities).
[[nodiscard]] FUSEKIT_HOST_DEVICE constexpr std::uint32_t magnitude_key(float f) noexcept {
  return std::bit_cast<std::uint32_t>(f) & 0x7fffffffu;
}

/// Result of a k-th largest selection.
struct kth_result {
  std::uint32_t key = 0;    ///< the k-th largest key
  std::int64_t greater = 0; ///< how many keys are strictly greater than `key` (< k)
  std::int64_t equal = 0;   ///< how many keys equal `key` (greater + equal >= k)
};

/// Finds the k-th largest of `key(0..n-1)` (1 <= k <= n) exactly, by two 16-bit radix counting passes.
template <execution_policy P, class KeyFn>
[[nodiscard]] kth_result select_kth_largest(const P& policy, std::int64_t n, std::int64_t k, KeyFn key) {
  FUSEKIT_EXPECTS(k >= 1 && k <= n, out_of_range,
                  "select_kth_largest: k = " + std::to_string(k) + " is outside [1, n = " + std::to_string(n) + "]");
  constexpr std::size_t bins = 1u << 16;
  const int workers = std::max(1, policy.concurrency());
  const std::int64_t per = (n + workers - 1) / workers;
  std::vector<std::int64_t> hist(static_cast<std::size_t>(workers) * bins);
  kth_result r{};
  std::uint32_t prefix = 0;
  std::int64_t remaining = k;
  for (int pass = 0; pass < 2; ++pass) {
    const int shift = pass == 0 ? 16 : 0;
    std::fill(hist.begin(), hist.end(), 0);
    exec::for_each_n(policy, workers, [&](std::int64_t w) {
      std::int64_t* h = hist.data() + static_cast<std::size_t>(w) * bins;
      const std::int64_t b = w * per, e = std::min(n, b + per);
      if (pass == 0) {
        for (std::int64_t i = b; i < e; ++i)
          ++h[key(i) >> 16];
      } else {
        for (std::int64_t i = b; i < e; ++i) {
          const std::uint32_t x = key(i);
          if ((x >> 16) == (prefix >> 16))
            ++h[x & 0xffffu];
        }
      }
    });
    std::int64_t above = 0;
    for (std::size_t bin = bins; bin-- > 0;) {
      std::int64_t c = 0;
      for (int w = 0; w < workers; ++w)
        c += hist[static_cast<std::size_t>(w) * bins + bin];
      if (above + c >= remaining) {
        prefix |= static_cast<std::uint32_t>(bin) << shift;
        r.greater += above;
        remaining -= above;
        if (pass == 1)
          r.equal = c;
        break;
      }
      above += c;
    }
  }
  r.key = prefix;
  return r;
}

/// An exact top-k selection: which indices of `key(0..n-1)` are among the k largest, with ties at the
/// threshold resolved by lowest index first. Build with make_top_k(), then visit the data in chunks with
/// for_each_chunk(), which hands each chunk the number of threshold ties that precede it.
struct top_k_selection {
  std::int64_t n = 0;            ///< problem size
  std::int64_t k = 0;            ///< number of kept indices (0 <= k <= n)
  std::uint32_t threshold = 0;   ///< key of the k-th largest (meaningless when k == 0)
  std::int64_t ties_to_keep = 0; ///< how many keys equal to `threshold` are kept (the first ones by index)
  bool keep_all_ties = true;     ///< every tie is kept (then no per-chunk counts are needed)
  std::int64_t chunk = 1;        ///< chunk length used by for_each_chunk
  std::vector<std::int64_t> ties_before; ///< per chunk: ties in all earlier chunks (only if !keep_all_ties)

  /// Decides one element. `ties_seen` counts threshold ties met so far in index order (start a chunk
  /// with the value for_each_chunk passes).
  [[nodiscard]] bool keep(std::uint32_t key, std::int64_t& ties_seen) const noexcept {
    if (k == 0)
      return false;
    if (key > threshold)
      return true;
    if (key < threshold)
      return false;
    if (keep_all_ties)
      return true;
    return ties_seen++ < ties_to_keep;
  }

  /// Calls f(begin, end, ties_before_chunk) for consecutive chunks covering [0, n), possibly concurrently.
  template <execution_policy P, class F> void for_each_chunk(const P& policy, F&& f) const {
    const std::int64_t nchunks = n > 0 ? (n + chunk - 1) / chunk : 0;
    exec::for_each_n(policy, nchunks, [&](std::int64_t c) {
      f(c * chunk, std::min(n, (c + 1) * chunk), keep_all_ties ? 0 : ties_before[static_cast<std::size_t>(c)]);
    });
  }
};

/// Plans the exact top-k of `key(0..n-1)`; k is clamped to [0, n].
template <execution_policy P, class KeyFn>
[[nodiscard]] top_k_selection make_top_k(const P& policy, std::int64_t n, std::int64_t k, KeyFn key) {
  top_k_selection s;
  s.n = std::max<std::int64_t>(n, 0);
  s.k = std::clamp<std::int64_t>(k, 0, s.n);
  s.chunk = reduction_chunk(s.n);
  if (s.k == 0)
    return s;
  if (s.k == s.n) { // everything survives: the smallest key is the threshold, all ties kept
    s.threshold = 0;
    s.ties_to_keep = s.n;
    return s;
  }
  const kth_result r = select_kth_largest(policy, s.n, s.k, key);
  s.threshold = r.key;
  s.ties_to_keep = s.k - r.greater;
  s.keep_all_ties = s.ties_to_keep == r.equal;
  if (!s.keep_all_ties) {
    const std::int64_t nchunks = (s.n + s.chunk - 1) / s.chunk;
    s.ties_before.assign(static_cast<std::size_t>(nchunks), 0);
    exec::for_each_n(policy, nchunks, [&](std::int64_t c) {
      std::int64_t cnt = 0;
      const std::int64_t b = c * s.chunk, e = std::min(s.n, b + s.chunk);
      for (std::int64_t i = b; i < e; ++i)
        cnt += key(i) == s.threshold;
      s.ties_before[static_cast<std::size_t>(c)] = cnt;
    });
    std::int64_t acc = 0;
    for (auto& c : s.ties_before) {
      const std::int64_t here = c;
      c = acc;
      acc += here;
    }
  }
  return s;
}

} // namespace fusekit::exec
