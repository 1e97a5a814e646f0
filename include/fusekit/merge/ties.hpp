/// @file
/// @brief `ties`: TIES-merging (Yadav et al. 2023) with mergekit semantics.
#pragma once

#include <span>
#include <string_view>

#include <fusekit/merge/gta.hpp>

namespace fusekit {

/// TIES: trim each task vector to its exact top-k magnitudes (k = floor(density·n), lowest index wins ties),
/// elect a sign per element, average the agreeing entries (weighted disjoint mean).
/// mergekit defaults: normalize = true, rescale = false, lambda = 1; per-model `weight` and `density` (default 1).
/// The pipeline and its options are described at fusekit::generalized_task_arithmetic.
struct ties {
  static constexpr std::string_view name = "ties";
  float lambda = 1.0f;                                       ///< scale of the merged task vector
  bool normalize = true;                                   ///< divide by the (per-element) weight sum
  bool rescale = false;                                     ///< rescale kept entries (see rescale_by)
  sign_election election = sign_election::weighted;          ///< mergekit: weighted deltas elect the sign
  consensus_divisor divisor = consensus_divisor::weight_sum; ///< mergekit: Σ agreeing weights
  rescale_mode rescale_by = rescale_mode::l1_norm;           ///< mergekit: L1-norm matching

  /// Generic path (any host policy).
  template <class P, class Out, class Base, class In>
  void apply(const P& policy, const Out& out, const Base& base, std::span<const merge_input<In>> inputs,
             const merge_context& ctx) const {
    detail::run_gta(*this, sparsification::magnitude, consensus_method::sum, policy, out, base, inputs, ctx);
  }
};

} // namespace fusekit
