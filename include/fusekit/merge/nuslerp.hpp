/// @file
/// @brief `nuslerp`: weight-parameterised SLERP of two models or two task vectors (mergekit `nuslerp`).
#pragma once

#include <algorithm>
#include <cmath>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

#include <fusekit/core/error.hpp>
#include <fusekit/exec/policy.hpp>
#include <fusekit/merge/detail/gram.hpp>
#include <fusekit/merge/detail/weighted_sum.hpp>
#include <fusekit/merge/merge.hpp>

namespace fusekit {

/// NuSLERP of exactly two models with weights w₁, w₂: t = w₂/(w₁+w₂) (0.5 if |w₁+w₂| < 1e-6). With a base the
/// task vectors v_i = x_i − b are interpolated and added to b, otherwise the tensors themselves. Per vector:
/// û = v/max(‖v‖, 1e-7), cosθ = clamp(⟨û₀,û₁⟩, −1, 1); where 1 − cos²θ ≤ eps² plain (1−t)v₀ + t·v₁, else
/// (sin((1−t)θ)·v₀ + sin(tθ)·v₁)/sinθ. Vectors: the whole tensor (flatten, mergekit default), else each row
/// (last dimension), or with row_wise each column (dimension 0; mergekit transposes, so the flag's name reads the
/// other way round). mergekit defaults: nuslerp_flatten = true, nuslerp_row_wise = false.
struct nuslerp {
  static constexpr std::string_view name = "nuslerp";
  bool flatten = true;   ///< mergekit `nuslerp_flatten`
  bool row_wise = false; ///< mergekit `nuslerp_row_wise` (vectors along dimension 0)
  double eps = 1e-8;     ///< colinearity tolerance (on sinθ)

  /// Blend coefficients (for v₀, v₁) of one vector pair given ‖v₀‖², ‖v₁‖², ⟨v₀,v₁⟩.
  [[nodiscard]] std::pair<double, double> coefficients(double t, double g00, double g11, double g01) const noexcept {
    const double n0 = std::max(std::sqrt(std::max(g00, 0.0)), 1e-7), n1 = std::max(std::sqrt(std::max(g11, 0.0)), 1e-7);
    const double c = std::clamp(g01 / (n0 * n1), -1.0, 1.0);
    if (1.0 - c * c <= eps * eps)
      return {1.0 - t, t};
    const double th = std::acos(c), s = std::sin(th);
    return {std::sin((1.0 - t) * th) / s, std::sin(t * th) / s};
  }

  /// Generic path (any host policy).
  template <class P, class Out, class Base, class In>
  void apply(const P& policy, const Out& out, const Base& base, std::span<const merge_input<In>> inputs,
             const merge_context& ctx) const {
    constexpr bool has_base = !std::is_same_v<Base, no_base_t>;
    exec::check_runs_on<P, Out, In>();
    using namespace detail;
    check_merge_args(name, out, base, inputs, ctx, false, 2, 2);
    const double ws = static_cast<double>(inputs[0].weight) + inputs[1].weight;
    const double t = std::abs(ws) < 1e-6 ? 0.5 : inputs[1].weight / ws;
    const input_set<In> in(inputs);
    const std::int64_t n = out.size();
    auto vec_at = [&](std::size_t i, std::int64_t e) {
      float v = in.at(i, e);
      if constexpr (has_base)
        v -= static_cast<float>(base.at_linear(e));
      return v;
    };
    if (flatten || Out::rank() == 1) {
      const auto G = gram_matrix(policy, n, 2, [&](std::size_t a, std::int64_t b, std::int64_t len, float* dst) {
        in.load(a, b, len, dst);
        if constexpr (has_base) {
          alignas(64) float tmp[merge_block];
          view_io<Base>(base).load(b, len, tmp);
          for (std::int64_t j = 0; j < len; ++j)
            dst[j] -= tmp[j];
        }
      });
      const auto [c0, c1] = coefficients(t, G[0], G[3], G[1]);
      const float coeff[2] = {static_cast<float>(c0), static_cast<float>(c1)};
      if constexpr (has_base)
        weighted_sum(policy, out, base, inputs, std::span<const float>(coeff, 2), true);
      else
        linear_combination(policy, out, no_base, 0.0f, inputs, std::span<const float>(coeff, 2));
      return;
    }
    FUSEKIT_EXPECTS(Out::rank() == 2, unsupported,
                    merge_where(name, ctx) + ": per-vector nuslerp supports 1-D and 2-D tensors only");
    const std::int64_t rows = out.extent(0), cols = out.extent(1);
    const std::int64_t nvec = row_wise ? cols : rows, len = row_wise ? rows : cols;
    auto lin = [&](std::int64_t v, std::int64_t p) { return row_wise ? p * cols + v : v * cols + p; };
    exec::for_each_n(policy, nvec, [&](std::int64_t v) {
      double g00 = 0, g11 = 0, g01 = 0;
      for (std::int64_t p = 0; p < len; ++p) {
        const double a = vec_at(0, lin(v, p)), c = vec_at(1, lin(v, p));
        g00 += a * a;
        g11 += c * c;
        g01 += a * c;
      }
      const auto [c0, c1] = coefficients(t, g00, g11, g01);
      const auto f0 = static_cast<float>(c0), f1 = static_cast<float>(c1);
      for (std::int64_t p = 0; p < len; ++p) {
        const std::int64_t e = lin(v, p);
        float r = f0 * vec_at(0, e) + f1 * vec_at(1, e);
        if constexpr (has_base)
          r += static_cast<float>(base.at_linear(e));
        out.at_linear(e) = from_compute<typename Out::value_type>(r);
      }
    });
  }
};

} // namespace fusekit
