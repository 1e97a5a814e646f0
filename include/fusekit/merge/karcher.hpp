/// @file
/// @brief `karcher`: weighted Riemannian (Fréchet/Karcher) mean on the unit sphere (mergekit `karcher`).
#pragma once

#include <algorithm>
#include <cmath>
#include <span>
#include <string_view>
#include <vector>

#include <fusekit/core/error.hpp>
#include <fusekit/exec/policy.hpp>
#include <fusekit/merge/detail/gram.hpp>
#include <fusekit/merge/merge.hpp>

namespace fusekit {

/// Karcher mean: each tensor is split into its norm n_i and direction u_i = x_i/n_i; directions with n_i ≤ tol
/// are dropped; α_i = w_i/Σw. Starting from the normalised α-weighted mean direction, iterate at most max_iter
/// times: T = Σ α'_i θ_i/sinθ_i (u_i − cosθ_i·u) (θ_i = arccos⟨u,u_i⟩, terms with θ_i < tol skipped, α'
/// renormalised over the kept directions); stop if ‖T‖ < tol; u ← cos‖T‖·u + sin‖T‖·T/‖T‖, renormalised.
/// out = (Σ_i α_i n_i)·u. Every iterate lies in span{x_i}, so the iterations run on the Gram matrix (fp64):
/// two passes over the data in total.
/// Differs from mergekit on purpose: mergekit ignores `weight` (always 1/N); here weights are honoured (with
/// all weights equal — the default — the result is mergekit's). The base, if any, is not used: list it among
/// the inputs if it should take part (as mergekit does when a config names base_model).
struct karcher {
  static constexpr std::string_view name = "karcher";
  int max_iter = 10;  ///< iteration cap (mergekit `max_iter`)
  double tol = 1e-5;  ///< convergence / degeneracy tolerance (mergekit `tol`)

  /// Generic path (any host policy).
  template <class P, class Out, class Base, class In>
  void apply(const P& policy, const Out& out, const Base& base, std::span<const merge_input<In>> inputs,
             const merge_context& ctx) const {
    exec::check_runs_on<P, Out, In>();
    using namespace detail;
    (void)base;
    check_merge_args(name, out, no_base, inputs, ctx, false, 1);
    const std::size_t N = inputs.size();
    if (N == 1) {
      copy_tensor(policy, out, inputs[0].tensor);
      return;
    }
    double wsum = 0;
    for (std::size_t i = 0; i < N; ++i) {
      FUSEKIT_EXPECTS(std::isfinite(inputs[i].weight) && inputs[i].weight >= 0, invalid_argument,
                      merge_where(name, ctx) + ": " + model_label(i) + " weight must be finite and non-negative");
      wsum += inputs[i].weight;
    }
    FUSEKIT_EXPECTS(wsum > 0, invalid_argument, merge_where(name, ctx) + ": the weights sum to zero");
    const input_set<In> in(inputs);
    const auto G = gram_matrix(policy, out.size(), N,
                               [&](std::size_t a, std::int64_t b, std::int64_t len, float* dst) { in.load(a, b, len, dst); });
    auto inner = [&](const std::vector<double>& p, const std::vector<double>& q) {
      double s = 0;
      for (std::size_t i = 0; i < N; ++i)
        for (std::size_t k = 0; k < N; ++k)
          s += p[i] * q[k] * G[i * N + k];
      return s;
    };
    std::vector<double> nrm(N), alpha(N);
    std::vector<std::size_t> valid;
    for (std::size_t i = 0; i < N; ++i) {
      nrm[i] = std::sqrt(std::max(G[i * N + i], 0.0));
      alpha[i] = inputs[i].weight / wsum;
      if (nrm[i] > tol)
        valid.push_back(i);
    }
    std::vector<float> coeff(N, 0.0f);
    if (!valid.empty()) {
      double vsum = 0;
      for (auto i : valid)
        vsum += alpha[i];
      FUSEKIT_EXPECTS(vsum > 0, invalid_argument,
                      merge_where(name, ctx) + ": every model with a non-zero tensor has weight 0");
      auto unit = [&](std::size_t i) { // coefficients of u_i
        std::vector<double> c(N, 0.0);
        c[i] = 1.0 / nrm[i];
        return c;
      };
      std::vector<double> u(N, 0.0);
      for (auto i : valid)
        u[i] += alpha[i] / vsum / nrm[i];
      const double mn = std::sqrt(std::max(inner(u, u), 0.0));
      if (mn < tol)
        u = unit(valid[0]);
      else
        for (auto& c : u)
          c /= mn;
      for (int it = 0; it < max_iter; ++it) {
        std::vector<double> T(N, 0.0);
        for (auto i : valid) {
          const auto ui = unit(i);
          const double dot = std::clamp(inner(u, ui), -1.0, 1.0);
          const double theta = std::acos(dot);
          if (theta < tol)
            continue;
          const double f = alpha[i] / vsum * theta / std::sin(theta);
          for (std::size_t k = 0; k < N; ++k)
            T[k] += f * (ui[k] - dot * u[k]);
        }
        const double tn = std::sqrt(std::max(inner(T, T), 0.0));
        if (tn < tol)
          break;
        for (std::size_t k = 0; k < N; ++k)
          u[k] = std::cos(tn) * u[k] + std::sin(tn) * T[k] / tn;
        const double un = std::sqrt(std::max(inner(u, u), 0.0));
        if (un > tol)
          for (auto& c : u)
            c /= un;
      }
      double scale = 0;
      for (std::size_t i = 0; i < N; ++i)
        scale += alpha[i] * nrm[i];
      for (std::size_t k = 0; k < N; ++k)
        coeff[k] = static_cast<float>(scale * u[k]);
    }
    linear_combination(policy, out, no_base, 0.0f, inputs, std::span<const float>(coeff));
  }
};

} // namespace fusekit
