/// @file
/// @brief `model_stock`: Model Stock (Jang et al., arXiv 2403.19522) as in mergekit.
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

/// Model Stock with offsets δ_i = x_i − b (N ≥ 2 models besides the base): cosθ = mean over pairs i<j of
/// clamp(⟨δ_i,δ_j⟩/max(‖δ_i‖‖δ_j‖, 1e-6), −1, 1); t = N·cosθ/(1 + (N−1)·cosθ) (t = 0 when the denominator is
/// below 1e-6 in magnitude); out = t·mean_i(x_i) + (1−t)·b = b + (t/N)·Σ_i δ_i.
/// With filter_wise, cosθ and t are computed per row (last dimension; a 1-D tensor is one row).
/// No weights (mergekit ignores them too). mergekit defaults: filter_wise = false.
struct model_stock {
  static constexpr std::string_view name = "model_stock";
  bool filter_wise = false; ///< one t per row instead of per tensor

  /// t from the Gram matrix G (N×N) of the offsets.
  [[nodiscard]] static double interpolation(const double* G, std::size_t N) {
    double cs = 0;
    std::size_t pairs = 0;
    for (std::size_t i = 0; i < N; ++i)
      for (std::size_t j = i + 1; j < N; ++j) {
        const double np = std::sqrt(std::max(G[i * N + i], 0.0)) * std::sqrt(std::max(G[j * N + j], 0.0));
        cs += std::clamp(G[i * N + j] / std::max(np, 1e-6), -1.0, 1.0);
        ++pairs;
      }
    const double c = cs / static_cast<double>(pairs);
    const double den = 1.0 + static_cast<double>(N - 1) * c;
    return std::abs(den) < 1e-6 ? 0.0 : static_cast<double>(N) * c / den;
  }

  /// Generic path (any host policy).
  template <class P, class Out, class Base, class In>
  void apply(const P& policy, const Out& out, const Base& base, std::span<const merge_input<In>> inputs,
             const merge_context& ctx) const {
    static_assert(!std::is_same_v<Base, no_base_t>, "fusekit::model_stock needs a base model (pass its view as `base`).");
    exec::check_runs_on<P, Out, Base, In>();
    using namespace detail;
    check_merge_args(name, out, base, inputs, ctx, true, 2);
    const std::size_t N = inputs.size();
    const view_io<Base> b_io(base);
    const input_set<In> in(inputs);
    if (!filter_wise) {
      const auto G = gram_matrix(policy, out.size(), N, [&](std::size_t a, std::int64_t b, std::int64_t len, float* dst) {
        alignas(64) float tmp[merge_block];
        in.load(a, b, len, dst);
        b_io.load(b, len, tmp);
        for (std::int64_t j = 0; j < len; ++j)
          dst[j] -= tmp[j];
      });
      const double t = interpolation(G.data(), N);
      const std::vector<float> coeff(N, static_cast<float>(t / static_cast<double>(N)));
      weighted_sum(policy, out, base, inputs, std::span<const float>(coeff), true);
      return;
    }
    const std::int64_t n = out.size();
    const std::int64_t cols = Out::rank() == 1 ? n : out.extent(Out::rank() - 1);
    if (n == 0 || cols == 0)
      return;
    const view_io<Out> o_io(out);
    const std::size_t sf = static_cast<std::size_t>(cols) * (N + 2) + 2 * N * N + 2; // + the row's Gram matrix
    for_each_block_scratch(policy, n, cols, sf, [&](std::int64_t, std::int64_t b, std::int64_t e, float* s) {
      const std::int64_t C = e - b;
      float* bb = s;
      float* acc = s + C;
      float* d = s + 2 * C;
      b_io.load(b, C, bb);
      for (std::size_t i = 0; i < N; ++i) {
        float* di = d + i * static_cast<std::size_t>(C);
        in.load(i, b, C, di);
        for (std::int64_t j = 0; j < C; ++j)
          di[j] -= bb[j];
      }
      auto* G = reinterpret_cast<double*>(d + N * static_cast<std::size_t>(C) + ((N * static_cast<std::size_t>(C) + 2 * static_cast<std::size_t>(C)) & 1));
      for (std::size_t i = 0; i < N; ++i)
        for (std::size_t k = i; k < N; ++k) {
          double a = 0;
          for (std::int64_t j = 0; j < C; ++j)
            a += static_cast<double>(d[i * static_cast<std::size_t>(C) + static_cast<std::size_t>(j)]) *
                 d[k * static_cast<std::size_t>(C) + static_cast<std::size_t>(j)];
          G[i * N + k] = G[k * N + i] = a;
        }
      const auto c = static_cast<float>(interpolation(G, N) / static_cast<double>(N));
      std::fill(acc, acc + C, 0.0f);
      for (std::size_t i = 0; i < N; ++i)
        for (std::int64_t j = 0; j < C; ++j)
          acc[j] += d[i * static_cast<std::size_t>(C) + static_cast<std::size_t>(j)];
      for (std::int64_t j = 0; j < C; ++j)
        acc[j] = bb[j] + c * acc[j];
      o_io.store(b, C, acc);
    });
  }
};

} // namespace fusekit
