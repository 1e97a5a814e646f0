/// @file
/// @brief `della` and `della_linear`: DELLA-merging MagPrune (Deep et al. 2024) with mergekit semantics.
#pragma once

#include <span>
#include <string_view>

#include <fusekit/merge/gta.hpp>

namespace fusekit {

/// DELLA: per row, keep each element with probability (density − ε) + 2ε·(rank − 1)/(C − 1) (rank by ascending
/// magnitude, ties by column), rescale, elect signs, weighted disjoint mean.
/// mergekit defaults: normalize = true, rescale = true, lambda = 1; per-model `weight`, `density`, `epsilon` (default 0.15).
/// The pipeline and its options are described at fusekit::generalized_task_arithmetic.
struct della {
  static constexpr std::string_view name = "della";
  float lambda = 1.0f;                                       ///< scale of the merged task vector
  bool normalize = true;                                   ///< divide by the (per-element) weight sum
  bool rescale = true;                                     ///< rescale kept entries (see rescale_by)
  sign_election election = sign_election::weighted;          ///< mergekit: weighted deltas elect the sign
  consensus_divisor divisor = consensus_divisor::weight_sum; ///< mergekit: Σ agreeing weights
  rescale_mode rescale_by = rescale_mode::l1_norm;           ///< mergekit: L1-norm matching

  /// Generic path (any host policy).
  template <class P, class Out, class Base, class In>
  void apply(const P& policy, const Out& out, const Base& base, std::span<const merge_input<In>> inputs,
             const merge_context& ctx) const {
    detail::run_gta(*this, sparsification::della_magprune, consensus_method::sum, policy, out, base, inputs, ctx);
  }
};

/// DELLA MagPrune sparsification followed by a plain weighted sum.
/// mergekit defaults: normalize = false, rescale = true, lambda = 1; per-model `weight`, `density`, `epsilon` (default 0.15).
/// The pipeline and its options are described at fusekit::generalized_task_arithmetic.
struct della_linear {
  static constexpr std::string_view name = "della_linear";
  float lambda = 1.0f;                                       ///< scale of the merged task vector
  bool normalize = false;                                   ///< divide by the (per-element) weight sum
  bool rescale = true;                                     ///< rescale kept entries (see rescale_by)
  sign_election election = sign_election::weighted;          ///< mergekit: weighted deltas elect the sign
  consensus_divisor divisor = consensus_divisor::weight_sum; ///< mergekit: Σ agreeing weights
  rescale_mode rescale_by = rescale_mode::l1_norm;           ///< mergekit: L1-norm matching

  /// Generic path (any host policy).
  template <class P, class Out, class Base, class In>
  void apply(const P& policy, const Out& out, const Base& base, std::span<const merge_input<In>> inputs,
             const merge_context& ctx) const {
    detail::run_gta(*this, sparsification::della_magprune, consensus_method::none, policy, out, base, inputs, ctx);
  }
};

} // namespace fusekit
