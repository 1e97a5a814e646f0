/// @file
/// @brief `dare_ties` and `dare_linear`: DARE random drop (Yu et al. 2023) with mergekit semantics.
#pragma once

#include <span>
#include <string_view>

#include <fusekit/merge/gta.hpp>

namespace fusekit {

/// DARE-TIES: drop each task-vector element with probability 1 − density (counter-based Bernoulli keyed by
/// seed, tensor name, model index and element index), rescale, elect signs, sum the agreeing entries.
/// mergekit defaults: normalize = false, rescale = true, lambda = 1; per-model `weight` and `density`.
/// The pipeline and its options are described at fusekit::generalized_task_arithmetic.
struct dare_ties {
  static constexpr std::string_view name = "dare_ties";
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
    detail::run_gta(*this, sparsification::random, consensus_method::sum, policy, out, base, inputs, ctx);
  }
};

/// DARE-linear: random drop and rescale as dare_ties, then a plain weighted sum of the task vectors.
/// mergekit defaults: normalize = false, rescale = true, lambda = 1; per-model `weight` and `density`.
/// The pipeline and its options are described at fusekit::generalized_task_arithmetic.
struct dare_linear {
  static constexpr std::string_view name = "dare_linear";
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
    detail::run_gta(*this, sparsification::random, consensus_method::none, policy, out, base, inputs, ctx);
  }
};

} // namespace fusekit
