/// @file
/// @brief `passthrough`: copy the single input, optionally scaled (mergekit `passthrough`).
#pragma once

#include <span>
#include <string_view>

#include <fusekit/core/error.hpp>
#include <fusekit/merge/elementwise.hpp>

namespace fusekit {

/// Passthrough: exactly one input per tensor; out = scale·x with the model's `scale` (default 1, mergekit's
/// optional per-model `scale`, used in frankenmerges to damp duplicated layers). A base, if given, is ignored.
struct passthrough {
  static constexpr std::string_view name = "passthrough";

  /// Generic path (any host policy).
  template <class P, class Out, class Base, class In>
  void apply(const P& policy, const Out& out, const Base& base, std::span<const merge_input<In>> inputs,
             const merge_context& ctx) const {
    (void)base;
    FUSEKIT_EXPECTS(inputs.size() == 1, invalid_argument,
                    detail::merge_where(name, ctx) + ": needs exactly one input model per tensor, got " +
                        std::to_string(inputs.size()));
    const float s = inputs[0].scale;
    merge_elementwise(policy, out, no_base, inputs, ctx, name, [s](const element_values& v) { return s * v[0]; }, 1, 1);
  }
};

} // namespace fusekit
