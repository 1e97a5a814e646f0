/// @file
/// @brief `multislerp`: barycentric interpolation of several models on a hypersphere (mergekit `multislerp`).
#pragma once

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

/// Multi-SLERP (goddard.blog): with v_i = x_i − b (or x_i without a base) flattened, w normalised to sum 1 when
/// normalize_weights: u_i = v_i/(‖v_i‖+eps); m = Σ w_i u_i / ‖Σ w_i u_i‖; tangent g = Σ w_i (u_i − ⟨u_i,m⟩m);
/// r = m·cos(‖g‖+eps) + g·sin(‖g‖+eps)/(‖g‖+eps); out = b + (Σ w_i‖v_i‖)·r.
/// Everything lies in span{v_i}, so it is computed from the Gram matrix of the v_i (fp64) plus one blend pass.
/// A single input is returned unchanged (mergekit). If ‖Σ w_i u_i‖ < eps: linear interpolation for two inputs,
/// an error naming the tensor for more. mergekit defaults: normalize_weights = true, eps = 1e-8; base optional.
struct multislerp {
  static constexpr std::string_view name = "multislerp";
  bool normalize_weights = true; ///< divide the weights by their sum
  double eps = 1e-8;             ///< stabiliser of the norms

  /// Generic path (any host policy).
  template <class P, class Out, class Base, class In>
  void apply(const P& policy, const Out& out, const Base& base, std::span<const merge_input<In>> inputs,
             const merge_context& ctx) const {
    constexpr bool has_base = !std::is_same_v<Base, no_base_t>;
    using namespace detail;
    check_merge_args(name, out, base, inputs, ctx, false, 1);
    const std::size_t N = inputs.size();
    if (N == 1) {
      copy_tensor(policy, out, inputs[0].tensor);
      return;
    }
    std::vector<double> w(N);
    double wsum = 0;
    for (std::size_t i = 0; i < N; ++i)
      wsum += (w[i] = inputs[i].weight);
    if (normalize_weights) {
      FUSEKIT_EXPECTS(wsum != 0.0, invalid_argument,
                      merge_where(name, ctx) + ": the weights sum to zero, cannot normalize them");
      for (auto& x : w)
        x /= wsum;
    }
    const input_set<In> in(inputs);
    auto load = [&](std::size_t a, std::int64_t b, std::int64_t len, float* dst) {
      in.load(a, b, len, dst);
      if constexpr (has_base) {
        alignas(64) float tmp[merge_block];
        view_io<Base>(base).load(b, len, tmp);
        for (std::int64_t j = 0; j < len; ++j)
          dst[j] -= tmp[j];
      }
    };
    const auto G = gram_matrix(policy, out.size(), N, load);
    std::vector<double> nrm(N), a(N); // u_i = a_i·v_i
    for (std::size_t i = 0; i < N; ++i) {
      nrm[i] = std::sqrt(std::max(G[i * N + i], 0.0));
      a[i] = 1.0 / (nrm[i] + eps);
    }
    auto dot_uu = [&](std::size_t i, std::size_t k) { return a[i] * a[k] * G[i * N + k]; };
    double mean2 = 0; // ‖Σ w_i u_i‖²
    for (std::size_t i = 0; i < N; ++i)
      for (std::size_t k = 0; k < N; ++k)
        mean2 += w[i] * w[k] * dot_uu(i, k);
    const double mean_norm = std::sqrt(std::max(mean2, 0.0));
    std::vector<float> coeff(N);
    if (mean_norm < eps) {
      FUSEKIT_EXPECTS(N == 2, invalid_argument,
                      merge_where(name, ctx) + ": the weighted mean of the unit task vectors is zero (antipodal inputs "
                                               "with balancing weights); change the weights");
      for (std::size_t i = 0; i < N; ++i)
        coeff[i] = static_cast<float>(w[i]);
    } else {
      // m = Σ_k (w_k a_k / mean_norm) v_k ; dots_i = ⟨u_i, m⟩ ; g = Σ_i w_i u_i − (Σ_i w_i dots_i) m
      std::vector<double> mc(N);
      for (std::size_t k = 0; k < N; ++k)
        mc[k] = w[k] * a[k] / mean_norm;
      double cdot = 0;
      for (std::size_t i = 0; i < N; ++i) {
        double di = 0;
        for (std::size_t k = 0; k < N; ++k)
          di += mc[k] * a[i] * G[i * N + k];
        cdot += w[i] * di;
      }
      std::vector<double> gc(N); // g = Σ gc_k v_k
      for (std::size_t k = 0; k < N; ++k)
        gc[k] = w[k] * a[k] - cdot * mc[k];
      double g2 = 0;
      for (std::size_t i = 0; i < N; ++i)
        for (std::size_t k = 0; k < N; ++k)
          g2 += gc[i] * gc[k] * G[i * N + k];
      const double tn = std::sqrt(std::max(g2, 0.0)) + eps;
      double avg_norm = 0;
      for (std::size_t i = 0; i < N; ++i)
        avg_norm += w[i] * nrm[i];
      for (std::size_t k = 0; k < N; ++k)
        coeff[k] = static_cast<float>(avg_norm * (std::cos(tn) * mc[k] + std::sin(tn) / tn * gc[k]));
    }
    if constexpr (has_base)
      weighted_sum(policy, out, base, inputs, std::span<const float>(coeff), true);
    else
      linear_combination(policy, out, no_base, 0.0f, inputs, std::span<const float>(coeff));
  }
};

} // namespace fusekit
