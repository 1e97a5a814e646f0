/// @file
/// @brief `slerp`: spherical linear interpolation between the base and one other model (mergekit `slerp`).
#pragma once

#include <cmath>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

#include <fusekit/core/error.hpp>
#include <fusekit/exec/policy.hpp>
#include <fusekit/merge/detail/gram.hpp>
#include <fusekit/merge/merge.hpp>

namespace fusekit {

/// SLERP of the whole flattened tensor between a = base and c = the single input:
///   â = a/‖a‖, ĉ = c/‖c‖ (a norm ≤ 1e-8 is replaced by 1), cosθ = clamp(⟨â,ĉ⟩, −1, 1);
///   if |cosθ| > 0.9995: out = (1−t)·a + t·c, else out = sin((1−t)θ)/sinθ·a + sin(tθ)/sinθ·c.
/// The coefficients apply to the un-normalised tensors, so norms are interpolated too. t = 0 returns the base.
/// Matches mergekit's `slerp` (computed in fp32 there; here dot products in fp64, the blend in fp32).
/// mergekit requires `t` (no default); base required; exactly one other model.
struct slerp {
  static constexpr std::string_view name = "slerp";
  double t = 0.5;                 ///< interpolation factor (mergekit `t`, required there)
  double dot_threshold = 0.9995;  ///< |cosθ| above which plain linear interpolation is used
  double eps = 1e-8;              ///< norms at or below eps are treated as 1

  /// Generic path (any host policy).
  template <class P, class Out, class Base, class In>
  void apply(const P& policy, const Out& out, const Base& base, std::span<const merge_input<In>> inputs,
             const merge_context& ctx) const {
    static_assert(!std::is_same_v<Base, no_base_t>, "fusekit::slerp needs a base model (pass its view as `base`).");
    exec::check_runs_on<P, Out, Base, In>();
    using namespace detail;
    check_merge_args(name, out, base, inputs, ctx, true, 1, 1);
    FUSEKIT_EXPECTS(std::isfinite(t), invalid_argument, merge_where(name, ctx) + ": t must be finite");
    const view_io<Base> b_io(base);
    const input_set<In> in(inputs);
    const auto g = gram_matrix(policy, out.size(), 2, [&](std::size_t a, std::int64_t b, std::int64_t len, float* dst) {
      if (a == 0)
        b_io.load(b, len, dst);
      else
        in.load(0, b, len, dst);
    });
    double na = std::sqrt(g[0]), nc = std::sqrt(g[3]);
    if (!(na > eps))
      na = 1.0;
    if (!(nc > eps))
      nc = 1.0;
    const double dot = std::clamp(g[1] / (na * nc), -1.0, 1.0);
    double ca = 1.0 - t, cc = t;
    if (!(std::abs(dot) > dot_threshold)) {
      const double theta = std::acos(dot), st = std::sin(theta);
      ca = std::sin((1.0 - t) * theta) / st;
      cc = std::sin(t * theta) / st;
    }
    const float coeff[1] = {static_cast<float>(cc)};
    linear_combination(policy, out, base, static_cast<float>(ca), inputs, std::span<const float>(coeff, 1));
  }
};

} // namespace fusekit
