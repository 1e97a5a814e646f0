/// @file
/// @brief Internal: Gram matrices of the input tensors (all pairwise dot products in one pass) and the
/// coefficient pass out = c0·b + Σ_i c_i·x_i that the geometric methods (slerp, multislerp, karcher,
/// model_stock) reduce to.
#pragma once

#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include <fusekit/merge/detail/kernels.hpp>

namespace fusekit::detail {

/// G[a*K + c] = Σ_e v_a[e]·v_c[e] for K vectors produced by `load(a, b, len, dst)` (a in [0, K)); fp64
/// accumulation, fixed block order, so the result is identical for any thread count.
template <class P, class Load>
[[nodiscard]] std::vector<double> gram_matrix(const P& policy, std::int64_t n, std::size_t K, Load&& load) {
  const std::int64_t blk = multi_block_size(K);
  const std::int64_t nb = block_count(n, blk);
  std::vector<double> partial(static_cast<std::size_t>(nb) * K * K, 0.0);
  for_each_block_scratch(policy, n, blk, static_cast<std::size_t>(blk) * K,
                         [&](std::int64_t bi, std::int64_t b, std::int64_t e, float* s) {
                           const std::int64_t len = e - b;
                           for (std::size_t a = 0; a < K; ++a)
                             load(a, b, len, s + a * static_cast<std::size_t>(blk));
                           double* g = partial.data() + static_cast<std::size_t>(bi) * K * K;
                           for (std::size_t a = 0; a < K; ++a) {
                             const float* va = s + a * static_cast<std::size_t>(blk);
                             for (std::size_t c = a; c < K; ++c) {
                               const float* vc = s + c * static_cast<std::size_t>(blk);
                               constexpr int L = 8;
                               double lanes[L] = {};
                               std::int64_t q = 0;
                               for (; q + L <= len; q += L)
                                 for (int l = 0; l < L; ++l)
                                   lanes[l] += static_cast<double>(va[q + l]) * static_cast<double>(vc[q + l]);
                               double acc = 0.0;
                               for (; q < len; ++q)
                                 acc += static_cast<double>(va[q]) * static_cast<double>(vc[q]);
                               for (int l = 0; l < L; ++l)
                                 acc += lanes[l];
                               g[a * K + c] = acc;
                               g[c * K + a] = acc;
                             }
                           }
                         });
  return sum_blocks(partial, K * K);
}

/// out[e] = base_coeff·b[e] + Σ_i coeff[i]·x_i[e] (fp32). `base` may be no_base (then base_coeff is ignored).
template <class P, class Out, class Base, class In>
void linear_combination(const P& policy, const Out& out, const Base& base, float base_coeff,
                        std::span<const merge_input<In>> inputs, std::span<const float> coeff) {
  constexpr bool has_base = !std::is_same_v<Base, no_base_t>;
  const view_io<Out> o(out);
  const input_set<In> in(inputs);
  exec::for_each_block(policy, out.size(), merge_block, [&](std::int64_t b, std::int64_t e) {
    alignas(64) float acc[merge_block];
    alignas(64) float tmp[merge_block];
    const std::int64_t len = e - b;
    if constexpr (has_base) {
      view_io<Base>(base).load(b, len, tmp);
      FUSEKIT_PRAGMA_SIMD
      for (std::int64_t j = 0; j < len; ++j)
        acc[j] = base_coeff * tmp[j];
    } else {
      (void)base_coeff;
      std::fill(acc, acc + len, 0.0f);
    }
    for (std::size_t i = 0; i < in.size(); ++i) {
      in.load(i, b, len, tmp);
      const float c = coeff[i];
      FUSEKIT_PRAGMA_SIMD
      for (std::int64_t j = 0; j < len; ++j)
        acc[j] += c * tmp[j];
    }
    o.store(b, len, acc);
  });
}

} // namespace fusekit::detail
