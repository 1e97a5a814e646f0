/// @file
/// @brief `nearswap`: move toward the other model only where the two are already close (mergekit `nearswap`).
#pragma once

#include <algorithm>
#include <cmath>
#include <span>
#include <string_view>
#include <type_traits>

#include <fusekit/core/error.hpp>
#include <fusekit/merge/elementwise.hpp>

namespace fusekit {

/// NearSwap, per element: ω = clamp(t / max(|b − x|, 1e-6), 0, 1); out = ω·x + (1−ω)·b.
/// Base plus exactly one model; `t` is required by mergekit (no default there).
struct nearswap {
  static constexpr std::string_view name = "nearswap";
  double t = 0.5; ///< similarity threshold (mergekit `t`, required there)

  /// Generic path (any host policy).
  template <class P, class Out, class Base, class In>
  void apply(const P& policy, const Out& out, const Base& base, std::span<const merge_input<In>> inputs,
             const merge_context& ctx) const {
    static_assert(!std::is_same_v<Base, no_base_t>, "fusekit::nearswap needs a base model (pass its view as `base`).");
    FUSEKIT_EXPECTS(std::isfinite(t), invalid_argument, detail::merge_where(name, ctx) + ": t must be finite");
    const auto tt = static_cast<float>(t);
    merge_elementwise(
        policy, out, base, inputs, ctx, name,
        [tt](const element_values& v) {
          const float x = v[0], b = v.base;
          const float w = std::clamp(tt / std::max(std::abs(b - x), 1e-6f), 0.0f, 1.0f);
          return w * x + (1.0f - w) * b;
        },
        1, 1, true);
  }
};

} // namespace fusekit
