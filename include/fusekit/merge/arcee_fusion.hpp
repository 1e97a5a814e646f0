/// @file
/// @brief `arcee_fusion`: keep the other model's changes where they matter most (mergekit `arcee_fusion`).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

#include <fusekit/core/error.hpp>
#include <fusekit/exec/policy.hpp>
#include <fusekit/merge/detail/kernels.hpp>
#include <fusekit/merge/merge.hpp>

namespace fusekit {

/// Arcee Fusion, base b plus one model x. Per row (last dimension; a 1-D tensor is one row):
/// KL_row = Σ p·log(p/q) with p = softmax(x_row) + 1e-8, q = softmax(b_row) + 1e-8; importance
/// I = |x − b|·KL_row; threshold τ = Q(0.5) + 1.5·(Q(0.75) − Q(0.25)) with Q(q) = sorted(I)[floor(q·(n−1))];
/// out = b + [I ≥ τ]·(x − b).
/// Differs from mergekit on purpose: mergekit estimates the quantiles from 10⁶ elements drawn with the global
/// torch RNG when the tensor is larger (not reproducible); here they are always exact (deterministic).
struct arcee_fusion {
  static constexpr std::string_view name = "arcee_fusion";

  /// Generic path (any host policy).
  template <class P, class Out, class Base, class In>
  void apply(const P& policy, const Out& out, const Base& base, std::span<const merge_input<In>> inputs,
             const merge_context& ctx) const {
    static_assert(!std::is_same_v<Base, no_base_t>, "fusekit::arcee_fusion needs a base model (pass its view as `base`).");
    exec::check_runs_on<P, Out, Base, In>();
    using namespace detail;
    check_merge_args(name, out, base, inputs, ctx, true, 1, 1);
    const std::int64_t n = out.size();
    if (n == 0)
      return;
    const std::int64_t cols = Out::rank() == 1 ? n : out.extent(Out::rank() - 1);
    const view_io<Base> b_io(base);
    const view_io<Out> o_io(out);
    const input_set<In> in(inputs);
    std::vector<float> imp(static_cast<std::size_t>(n));
    for_each_block_scratch(policy, n, cols, static_cast<std::size_t>(cols) * 2,
                           [&](std::int64_t, std::int64_t b, std::int64_t e, float* s) {
                             const std::int64_t C = e - b;
                             float* x = s;
                             float* bb = s + C;
                             in.load(0, b, C, x);
                             b_io.load(b, C, bb);
                             float mx = -INFINITY, mb = -INFINITY;
                             for (std::int64_t j = 0; j < C; ++j) {
                               mx = std::max(mx, x[j]);
                               mb = std::max(mb, bb[j]);
                             }
                             double sx = 0, sb = 0;
                             for (std::int64_t j = 0; j < C; ++j) {
                               sx += std::exp(static_cast<double>(x[j]) - mx);
                               sb += std::exp(static_cast<double>(bb[j]) - mb);
                             }
                             double kl = 0;
                             for (std::int64_t j = 0; j < C; ++j) {
                               const double p = std::exp(static_cast<double>(x[j]) - mx) / sx + 1e-8;
                               const double q = std::exp(static_cast<double>(bb[j]) - mb) / sb + 1e-8;
                               kl += p * std::log(p / q);
                             }
                             const auto klf = static_cast<float>(kl);
                             for (std::int64_t j = 0; j < C; ++j)
                               imp[static_cast<std::size_t>(b + j)] = std::abs(x[j] - bb[j]) * klf;
                           });
    std::vector<float> sorted = imp;
    auto q = [&](double f) {
      const auto idx = static_cast<std::size_t>(f * static_cast<double>(n - 1));
      std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(idx), sorted.end());
      return sorted[idx];
    };
    const float q1 = q(0.25), med = q(0.5), q3 = q(0.75);
    const float thr = med + 1.5f * (q3 - q1);
    exec::for_each_block(policy, n, merge_block, [&](std::int64_t b, std::int64_t e) {
      alignas(64) float x[merge_block];
      alignas(64) float bb[merge_block];
      const std::int64_t len = e - b;
      in.load(0, b, len, x);
      b_io.load(b, len, bb);
      for (std::int64_t j = 0; j < len; ++j)
        x[j] = imp[static_cast<std::size_t>(b + j)] >= thr ? bb[j] + (x[j] - bb[j]) : bb[j];
      o_io.store(b, len, x);
    });
  }
};

} // namespace fusekit
