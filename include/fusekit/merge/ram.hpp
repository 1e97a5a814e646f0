/// @file
/// @brief `ram` and `ramplus_tl`: Reinforced Agent Merging (arXiv 2601.13572) as in mergekit.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

#include <fusekit/core/error.hpp>
#include <fusekit/merge/detail/kernels.hpp>
#include <fusekit/merge/elementwise.hpp>

namespace fusekit {

namespace detail {
/// out = b + Σ_{i touched} τ_i·(c = 1 ? λ_i : 1/c), τ_i = x_i − b, touched = |τ_i| > ε, c = #touched.
template <class P, class Out, class Base, class In>
void ram_combine(const P& policy, const Out& out, const Base& base, std::span<const merge_input<In>> inputs,
                 const merge_context& ctx, std::string_view name, float eps, const std::vector<float>& lambda) {
  merge_elementwise(
      policy, out, base, inputs, ctx, name,
      [eps, &lambda](const element_values& v) {
        int c = 0;
        for (std::size_t i = 0; i < v.size(); ++i)
          c += std::abs(v[i] - v.base) > eps;
        float acc = 0.0f;
        for (std::size_t i = 0; i < v.size(); ++i) {
          const float tau = v[i] - v.base;
          if (std::abs(tau) > eps)
            acc += c == 1 ? tau * lambda[i] : tau / static_cast<float>(c);
        }
        return v.base + acc;
      },
      0, static_cast<std::size_t>(-1), true);
}
} // namespace detail

/// RAM: elements changed (|τ_i| > ε) by one model take that model's delta, elements changed by several take
/// the average of their deltas, untouched elements keep the base. mergekit default: epsilon = 1e-5.
struct ram {
  static constexpr std::string_view name = "ram";
  double epsilon = 1e-5; ///< a model "touches" an element when |τ_i| > epsilon

  /// Generic path (any host policy).
  template <class P, class Out, class Base, class In>
  void apply(const P& policy, const Out& out, const Base& base, std::span<const merge_input<In>> inputs,
             const merge_context& ctx) const {
    static_assert(!std::is_same_v<Base, no_base_t>, "fusekit::ram needs a base model (pass its view as `base`).");
    FUSEKIT_EXPECTS(std::isfinite(epsilon) && epsilon >= 0, invalid_argument,
                    detail::merge_where(name, ctx) + ": epsilon must be finite and non-negative");
    detail::ram_combine(policy, out, base, inputs, ctx, name, static_cast<float>(epsilon),
                        std::vector<float>(inputs.size(), 1.0f));
  }
};

/// RAM+ (tensor-local): as ram, but each model's unique contributions are scaled by λ_i = 1 + r·clip(ρ_i, 0, α),
/// ρ_i = #(elements i touches that others touch too) / max(#(elements only i touches), ε), counted per tensor.
/// mergekit defaults: r = 0.1, alpha = 0.2, epsilon = 1e-5.
struct ramplus_tl {
  static constexpr std::string_view name = "ramplus_tl";
  double r = 0.1;        ///< strength of the rescaling
  double alpha = 0.2;    ///< clip of the overlap ratio
  double epsilon = 1e-5; ///< touch threshold (also the floor of the unique count)

  /// Generic path (any host policy).
  template <class P, class Out, class Base, class In>
  void apply(const P& policy, const Out& out, const Base& base, std::span<const merge_input<In>> inputs,
             const merge_context& ctx) const {
    static_assert(!std::is_same_v<Base, no_base_t>, "fusekit::ramplus_tl needs a base model (pass its view as `base`).");
    exec::check_runs_on<P, Out, Base, In>();
    using namespace detail;
    FUSEKIT_EXPECTS(std::isfinite(epsilon) && epsilon >= 0 && std::isfinite(r) && std::isfinite(alpha),
                    invalid_argument, merge_where(name, ctx) + ": r, alpha, epsilon must be finite (epsilon >= 0)");
    check_merge_args(name, out, base, inputs, ctx, true, 0);
    const std::size_t N = inputs.size();
    const std::int64_t n = out.size();
    const auto eps = static_cast<float>(epsilon);
    const view_io<Base> b_io(base);
    const input_set<In> in(inputs);
    const std::int64_t blk = multi_block_size(N);
    std::vector<double> partial(static_cast<std::size_t>(block_count(n, blk)) * N * 2, 0.0);
    for_each_block_scratch(policy, n, blk, static_cast<std::size_t>(blk) * (N + 2),
                           [&](std::int64_t bi, std::int64_t b, std::int64_t e, float* s) {
                             const std::int64_t len = e - b;
                             float* bb = s;
                             float* cnt = s + blk;
                             float* x = s + 2 * blk;
                             b_io.load(b, len, bb);
                             std::fill(cnt, cnt + len, 0.0f);
                             for (std::size_t i = 0; i < N; ++i) {
                               float* xi = x + i * static_cast<std::size_t>(blk);
                               in.load(i, b, len, xi);
                               for (std::int64_t j = 0; j < len; ++j) {
                                 xi[j] = std::abs(xi[j] - bb[j]) > eps ? 1.0f : 0.0f;
                                 cnt[j] += xi[j];
                               }
                             }
                             for (std::size_t i = 0; i < N; ++i) {
                               const float* xi = x + i * static_cast<std::size_t>(blk);
                               double shared = 0, unique = 0;
                               for (std::int64_t j = 0; j < len; ++j) {
                                 shared += xi[j] * (cnt[j] > 1.0f ? 1.0 : 0.0);
                                 unique += xi[j] * (cnt[j] == 1.0f ? 1.0 : 0.0);
                               }
                               partial[(static_cast<std::size_t>(bi) * N + i) * 2] = shared;
                               partial[(static_cast<std::size_t>(bi) * N + i) * 2 + 1] = unique;
                             }
                           });
    const auto tot = sum_blocks(partial, N * 2);
    std::vector<float> lambda(N);
    for (std::size_t i = 0; i < N; ++i) {
      const double rho = tot[i * 2] / std::max(tot[i * 2 + 1], epsilon);
      lambda[i] = static_cast<float>(1.0 + r * std::clamp(rho, 0.0, alpha));
    }
    ram_combine(policy, out, base, inputs, ctx, name, eps, lambda);
  }
};

} // namespace fusekit
