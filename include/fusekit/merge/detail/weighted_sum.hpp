/// @file
/// @brief Internal: the blocked weighted-sum kernel behind linear and task_arithmetic.
#pragma once

#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include <fusekit/exec/primitives.hpp>
#include <fusekit/merge/detail/block_io.hpp>
#include <fusekit/merge/merge.hpp>

namespace fusekit::detail {

/// Writes, for every element i,
///   deltas == false:  out[i] = Σ_k coeff[k]·x_k[i]
///   deltas == true:   out[i] = base[i] + Σ_k coeff[k]·(x_k[i] − base[i])
/// in fp32, one pass over the inputs in blocks of merge_block elements (bandwidth-bound).
template <class P, class Out, class Base, class In>
void weighted_sum(const P& policy, const Out& out, const Base& base, std::span<const merge_input<In>> inputs,
                  std::span<const float> coeff, bool deltas) {
  constexpr bool has_base = !std::is_same_v<std::remove_cvref_t<Base>, no_base_t>;
  const std::int64_t n = out.size();
  const bool out_contig = out.is_contiguous();
  using OT = std::remove_cv_t<typename Out::element_type>;
  const bool streaming = n * static_cast<std::int64_t>(sizeof(OT)) >= streaming_store_min_bytes;
  bool base_contig = false;
  if constexpr (has_base)
    base_contig = base.is_contiguous();
  std::vector<char> in_contig(inputs.size());
  for (std::size_t k = 0; k < inputs.size(); ++k)
    in_contig[k] = inputs[k].tensor.is_contiguous();

  exec::for_each_block(policy, n, merge_block, [&](std::int64_t b, std::int64_t e) {
    alignas(64) float acc[merge_block];
    alignas(64) float tmp[merge_block];
    alignas(64) float bas[merge_block];
    const std::int64_t len = e - b;
    if constexpr (has_base) {
      if (deltas)
        load_block(base, base_contig, b, len, bas);
    }
    FUSEKIT_PRAGMA_SIMD
    for (std::int64_t j = 0; j < len; ++j)
      acc[j] = 0.0f;
    for (std::size_t k = 0; k < inputs.size(); ++k) {
      const float c = coeff[k];
      load_block(inputs[k].tensor, in_contig[k] != 0, b, len, tmp);
      if (has_base && deltas) {
        FUSEKIT_PRAGMA_SIMD
        for (std::int64_t j = 0; j < len; ++j)
          acc[j] += c * (tmp[j] - bas[j]);
      } else {
        FUSEKIT_PRAGMA_SIMD
        for (std::int64_t j = 0; j < len; ++j)
          acc[j] += c * tmp[j];
      }
    }
    if (has_base && deltas) {
      FUSEKIT_PRAGMA_SIMD
      for (std::int64_t j = 0; j < len; ++j)
        acc[j] += bas[j];
    }
    store_block(out, out_contig, b, len, acc, streaming);
  });
}

} // namespace fusekit::detail
