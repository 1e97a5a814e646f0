/// @file
/// @brief `task_arithmetic`: base plus the weighted sum of task vectors (mergekit `task_arithmetic`).
#pragma once

#include <cmath>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

#include <fusekit/exec/policy.hpp>
#include <fusekit/merge/detail/weighted_sum.hpp>
#include <fusekit/merge/merge.hpp>

namespace fusekit {

/// Task arithmetic (Ilharco et al. 2023), as mergekit's GTA pipeline with no sparsifier and no sign
/// consensus: with Δ_i = x_i − b,
///   out = b + λ·Σ_i w_i·Δ_i / D,   D = Σ_i w_i if normalize (|D| < 1e-8 → 1), else 1.
/// mergekit defaults: normalize = false, lambda = 1. Computed in fp32.
struct task_arithmetic {
  static constexpr std::string_view name = "task_arithmetic";
  /// Scale applied to the merged task vector after normalization (mergekit `lambda`).
  float lambda = 1.0f;
  /// Divide by the sum of weights (mergekit default for task_arithmetic: false).
  bool normalize = false;

  /// Generic path (any host policy).
  template <class P, class Out, class Base, class In>
  void apply(const P& policy, const Out& out, const Base& base, std::span<const merge_input<In>> inputs,
             const merge_context& ctx) const {
    static_assert(!std::is_same_v<Base, no_base_t>, "fusekit::task_arithmetic needs a base model (pass its view as base).");
    exec::check_runs_on<P, Out, Base, In>();
    detail::check_merge_args(name, out, base, inputs, ctx, true, 0);
    detail::weighted_sum(policy, out, base, inputs, coefficients(inputs), true);
  }

  /// The per-model coefficient c_i such that out = b + Σ_i c_i·Δ_i.
  template <class In> [[nodiscard]] std::vector<float> coefficients(std::span<const merge_input<In>> inputs) const {
    double d = 1.0;
    if (normalize) {
      d = 0;
      for (const auto& in : inputs)
        d += in.weight;
      if (std::abs(d) < 1e-8)
        d = 1.0;
    }
    std::vector<float> c(inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i)
      c[i] = static_cast<float>(static_cast<double>(lambda) * inputs[i].weight / d);
    return c;
  }
};

} // namespace fusekit
