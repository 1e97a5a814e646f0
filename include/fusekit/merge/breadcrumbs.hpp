/// @file
/// @brief `breadcrumbs` and `breadcrumbs_ties`: Model Breadcrumbs (Davari & Belilovsky 2023), mergekit semantics.
#pragma once

#include <span>
#include <string_view>

#include <fusekit/merge/gta.hpp>

namespace fusekit {

/// Model Breadcrumbs: drop the floor(γ·n) largest magnitudes and the smallest ones so that floor(density·n)
/// remain, then a weighted sum. Unlike mergekit, γ·n < 1 (top = 0) keeps the largest entries instead of zeroing
/// the whole task vector.
/// mergekit defaults: normalize = false, rescale = false, lambda = 1; per-model `weight`, `density`, `gamma` (default 0.01).
/// The pipeline and its options are described at fusekit::generalized_task_arithmetic.
struct breadcrumbs {
  static constexpr std::string_view name = "breadcrumbs";
  float lambda = 1.0f;                                       ///< scale of the merged task vector
  bool normalize = false;                                   ///< divide by the (per-element) weight sum
  bool rescale = false;                                     ///< rescale kept entries (see rescale_by)
  sign_election election = sign_election::weighted;          ///< mergekit: weighted deltas elect the sign
  consensus_divisor divisor = consensus_divisor::weight_sum; ///< mergekit: Σ agreeing weights
  rescale_mode rescale_by = rescale_mode::l1_norm;           ///< mergekit: L1-norm matching

  /// Generic path (any host policy).
  template <class P, class Out, class Base, class In>
  void apply(const P& policy, const Out& out, const Base& base, std::span<const merge_input<In>> inputs,
             const merge_context& ctx) const {
    detail::run_gta(*this, sparsification::magnitude_outliers, consensus_method::none, policy, out, base, inputs, ctx);
  }
};

/// Model Breadcrumbs sparsification followed by TIES sign consensus.
/// mergekit defaults: normalize = false, rescale = false, lambda = 1; per-model `weight`, `density`, `gamma` (default 0.01).
/// The pipeline and its options are described at fusekit::generalized_task_arithmetic.
struct breadcrumbs_ties {
  static constexpr std::string_view name = "breadcrumbs_ties";
  float lambda = 1.0f;                                       ///< scale of the merged task vector
  bool normalize = false;                                   ///< divide by the (per-element) weight sum
  bool rescale = false;                                     ///< rescale kept entries (see rescale_by)
  sign_election election = sign_election::weighted;          ///< mergekit: weighted deltas elect the sign
  consensus_divisor divisor = consensus_divisor::weight_sum; ///< mergekit: Σ agreeing weights
  rescale_mode rescale_by = rescale_mode::l1_norm;           ///< mergekit: L1-norm matching

  /// Generic path (any host policy).
  template <class P, class Out, class Base, class In>
  void apply(const P& policy, const Out& out, const Base& base, std::span<const merge_input<In>> inputs,
             const merge_context& ctx) const {
    detail::run_gta(*this, sparsification::magnitude_outliers, consensus_method::sum, policy, out, base, inputs, ctx);
  }
};

} // namespace fusekit
