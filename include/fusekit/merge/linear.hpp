/// @file
/// @brief `linear`: weighted average of the input tensors (mergekit `linear`).
#pragma once

#include <cmath>
#include <span>
#include <string_view>
#include <vector>

#include <fusekit/exec/policy.hpp>
#include <fusekit/merge/detail/weighted_sum.hpp>
#include <fusekit/merge/merge.hpp>

namespace fusekit {

/// Weighted average: `out = Σ_i w_i·x_i / Σ_i w_i` (or `Σ_i w_i·x_i` without normalization).
/// Matches mergekit's `linear` (merge_methods/linear.py): every input takes part; a base model, if the
/// config names one, is simply one of the inputs (pass it in `inputs` with its weight; `base` is ignored).
/// Differs from mergekit on purpose: Σw = 0 with normalize is an error naming the tensor instead of
/// a division by zero. Computed in fp32 whatever the storage type.
struct linear {
  static constexpr std::string_view name = "linear";
  /// Divide by the sum of weights (mergekit default: true).
  bool normalize = true;

  /// Generic path (any host policy).
  template <class P, class Out, class Base, class In>
  void apply(const P& policy, const Out& out, const Base& base, std::span<const merge_input<In>> inputs,
             const merge_context& ctx) const {
    exec::check_runs_on<P, Out, In>();
    detail::check_merge_args(name, out, no_base, inputs, ctx, false, 1);
    (void)base;
    detail::weighted_sum(policy, out, no_base, inputs, coefficients(inputs, ctx), false);
  }

  /// The per-model coefficient c_i such that out = Σ_i c_i·x_i.
  template <class In>
  [[nodiscard]] std::vector<float> coefficients(std::span<const merge_input<In>> inputs, const merge_context& ctx) const {
    double sum = 0;
    for (const auto& in : inputs)
      sum += in.weight;
    std::vector<float> c(inputs.size());
    if (normalize)
      FUSEKIT_EXPECTS(std::abs(sum) > 0.0, invalid_argument,
                      detail::merge_where(name, ctx) + ": the weights sum to zero, cannot normalize "
                                                       "(set normalize: false or change the weights)");
    for (std::size_t i = 0; i < inputs.size(); ++i)
      c[i] = normalize ? static_cast<float>(inputs[i].weight / sum) : inputs[i].weight;
    return c;
  }
};

} // namespace fusekit
