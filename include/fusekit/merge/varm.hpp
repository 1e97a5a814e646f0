/// @file
/// @brief `varm`: Variation Ratio Merge (FuseChat v1, arXiv 2402.16107 §3.3, eq. 7), per matrix (the paper),
/// per element, or per layer / module / model through tensor-name groups.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <fusekit/core/error.hpp>
#include <fusekit/exec/policy.hpp>
#include <fusekit/merge/detail/kernels.hpp>
#include <fusekit/merge/detail/weighted_sum.hpp>
#include <fusekit/merge/merge.hpp>

namespace fusekit {

/// The variation statistic f(Δ) averaged over a parameter unit.
enum class varm_statistic {
  square, ///< mean of Δ² — the paper and the FuseChat README (`--merge_type square`)
  abs,    ///< mean of |Δ| (reported worse in the paper)
  mean    ///< |mean of Δ| (FuseChat `default`: signed mean, then its absolute value)
};

/// Where one weight per model is computed.
enum class varm_granularity {
  per_matrix, ///< one weight per model per tensor (the paper; FuseChat `avg_param`)
  per_element ///< w_j = f(Δ_j)/max(Σ_k f(Δ_k), 1e-13) element-wise (FuseChat `avg_item`)
};

/// VaRM for one tensor. With Δ_j = x_j − b and s_j = mean_e f(Δ_j[e]) (or `group_scores[j]` when given):
///   W_j = s_j / Σ_k s_k, with equal weights 1/J when any s_j is exactly 0 (FuseChat's zero guard);
///   out = b + Σ_j W_j·Δ_j  (= Σ_j W_j·x_j, since Σ W = 1).
/// Per-layer, per-module and per-model granularities: compute varm_statistics() for every tensor, add them to
/// a varm_accumulator keyed by varm_group_key(name, granularity), and pass the group's scores as
/// `group_scores`. Not in mergekit (issue #262); registered as "varm".
struct varm {
  static constexpr std::string_view name = "varm";
  varm_statistic statistic = varm_statistic::square;       ///< f
  varm_granularity granularity = varm_granularity::per_matrix; ///< per tensor or per element
  std::span<const double> group_scores = {};               ///< precomputed s_j for a layer/module/model group

  /// Generic path (any host policy).
  template <class P, class Out, class Base, class In>
  void apply(const P& policy, const Out& out, const Base& base, std::span<const merge_input<In>> inputs,
             const merge_context& ctx) const;
};

/// Per-model sums of the VaRM statistic over one tensor: `sums[j]` = Σ_e f(Δ_j[e]) (for `mean`: Σ Δ, signed),
/// `count` = number of elements. Deterministic (fixed block order, fp64).
struct varm_stats {
  std::vector<double> sums;
  std::int64_t count = 0;
};

/// Computes varm_stats for one tensor (a pass over base and inputs).
template <class P, class Base, class In>
[[nodiscard]] varm_stats varm_statistics(const P& policy, const Base& base, std::span<const merge_input<In>> inputs,
                                         varm_statistic statistic = varm_statistic::square) {
  using namespace detail;
  const std::size_t J = inputs.size();
  const std::int64_t n = base.size();
  varm_stats r;
  r.count = n;
  r.sums.assign(J, 0.0);
  if (J == 0 || n <= 0)
    return r;
  const view_io<Base> b_io(base);
  const input_set<In> in(inputs);
  const std::int64_t blk = merge_block;
  std::vector<double> partial(static_cast<std::size_t>(block_count(n, blk)) * J, 0.0);
#if FUSEKIT_CONVERT_X86 && defined(__AVX2__) && FUSEKIT_HAS_VECTOR_EXT
  // contiguous bf16 base and inputs: the same per-block lane sums straight from registers
  if constexpr (all_bf16<Base, In>) {
    if (b_io.contiguous && in.all_contiguous()) {
      exec::for_each_block(policy, n, blk, [&](std::int64_t b, std::int64_t e) {
        const std::int64_t next = std::min(blk, n - e); // the next block of every stream
        b_io.prefetch(e, next);
        for (std::size_t j = 0; j < J; ++j)
          in.prefetch(j, e, next);
        for (std::size_t j = 0; j < J; ++j)
          partial[static_cast<std::size_t>(b / blk) * J + j] =
              delta_lane_sum_bf16(base.data() + b, inputs[j].tensor.data() + b, e - b,
                                  statistic == varm_statistic::square ? delta_stat::square
                                  : statistic == varm_statistic::abs  ? delta_stat::abs
                                                                      : delta_stat::signed_sum);
      });
      r.sums = sum_blocks(partial, J);
      return r;
    }
  }
#endif
  for_each_block_scratch(policy, n, blk, static_cast<std::size_t>(2 * blk),
                         [&](std::int64_t bi, std::int64_t b, std::int64_t e, float* s) {
                           const std::int64_t len = e - b;
                           float* bb = s;
                           float* x = s + blk;
                           b_io.load(b, len, bb);
                           for (std::size_t j = 0; j < J; ++j) {
                             in.load(j, b, len, x);
                             double acc = 0.0;
                             if (statistic == varm_statistic::square)
                               acc = lane_sum(len, [&](std::int64_t q) {
                                 const float d = x[q] - bb[q];
                                 return d * d;
                               });
                             else if (statistic == varm_statistic::abs)
                               acc = lane_sum(len, [&](std::int64_t q) { return std::abs(x[q] - bb[q]); });
                             else
                               acc = lane_sum(len, [&](std::int64_t q) { return x[q] - bb[q]; });
                             partial[static_cast<std::size_t>(bi) * J + j] = acc;
                           }
                         });
  r.sums = sum_blocks(partial, J);
  return r;
}

/// Convenience overload taking any contiguous range of merge_input.
template <class P, class Base, class Range>
  requires requires(const Range& r) { std::span(r); }
[[nodiscard]] varm_stats varm_statistics(const P& policy, const Base& base, const Range& inputs,
                                         varm_statistic statistic = varm_statistic::square) {
  using In = decltype(std::span(inputs)[0].tensor);
  return varm_statistics(policy, base, std::span<const merge_input<std::remove_cvref_t<In>>>(inputs), statistic);
}

/// Granularities of FuseChat's merge.py that aggregate several tensors.
enum class varm_group { layer, module, model };

/// The group a tensor belongs to: `model` → "" (one group); `layer` → the prefix up to the layer index
/// ("model.layers.7"), or nullopt for tensors outside the decoder layers (FuseChat gives those equal weights);
/// `module` → the prefix up to the module ("model.layers.7.self_attn", "model.layers.7.input_layernorm"), or the
/// tensor's own name outside the layers (embeddings, final norm and LM head are their own groups).
[[nodiscard]] inline std::optional<std::string> varm_group_key(std::string_view tensor_name, varm_group g) {
  if (g == varm_group::model)
    return std::string();
  const std::string_view marker = "layers.";
  std::size_t pos = tensor_name.find(marker);
  while (pos != std::string_view::npos) {
    const bool at_component = pos == 0 || tensor_name[pos - 1] == '.';
    std::size_t q = pos + marker.size();
    std::size_t digits_end = q;
    while (digits_end < tensor_name.size() && tensor_name[digits_end] >= '0' && tensor_name[digits_end] <= '9')
      ++digits_end;
    if (at_component && digits_end > q && (digits_end == tensor_name.size() || tensor_name[digits_end] == '.')) {
      if (g == varm_group::layer)
        return std::string(tensor_name.substr(0, digits_end));
      const std::size_t mod_end = tensor_name.find('.', digits_end + 1);
      return std::string(tensor_name.substr(0, mod_end));
    }
    pos = tensor_name.find(marker, pos + 1);
  }
  if (g == varm_group::layer)
    return std::nullopt;
  return std::string(tensor_name);
}

/// Collects varm_stats of many tensors by group and hands back each group's scores (mean statistic per model).
class varm_accumulator {
public:
  explicit varm_accumulator(varm_group g, varm_statistic statistic = varm_statistic::square)
      : group_(g), statistic_(statistic) {}
  /// Adds one tensor's statistics.
  void add(std::string_view tensor_name, const varm_stats& s) {
    const auto key = varm_group_key(tensor_name, group_);
    if (!key)
      return;
    auto& acc = groups_[*key];
    if (acc.sums.empty())
      acc.sums.assign(s.sums.size(), 0.0);
    FUSEKIT_EXPECTS(acc.sums.size() == s.sums.size(), invalid_argument,
                    "varm_accumulator: tensor '" + std::string(tensor_name) + "' has " + std::to_string(s.sums.size()) +
                        " models, its group '" + *key + "' has " + std::to_string(acc.sums.size()));
    for (std::size_t j = 0; j < s.sums.size(); ++j)
      acc.sums[j] += s.sums[j];
    acc.count += s.count;
  }
  /// Scores s_j of the tensor's group. Empty for tensors outside every group (non-layer tensors with the
  /// `layer` granularity): FuseChat merges those with equal weights — pass equal scores, e.g.
  /// std::vector<double>(J, 1.0), as varm::group_scores.
  [[nodiscard]] std::vector<double> scores(std::string_view tensor_name) const {
    const auto key = varm_group_key(tensor_name, group_);
    if (!key)
      return {};
    const auto it = groups_.find(*key);
    FUSEKIT_EXPECTS(it != groups_.end(), invalid_argument,
                    "varm_accumulator: no statistics were added for group '" + *key + "' of tensor '" +
                        std::string(tensor_name) + "'");
    std::vector<double> s(it->second.sums.size());
    for (std::size_t j = 0; j < s.size(); ++j) {
      const double m = it->second.count > 0 ? it->second.sums[j] / static_cast<double>(it->second.count) : 0.0;
      s[j] = statistic_ == varm_statistic::mean ? std::abs(m) : m;
    }
    return s;
  }

private:
  varm_group group_;
  varm_statistic statistic_;
  std::map<std::string, varm_stats, std::less<>> groups_;
};

template <class P, class Out, class Base, class In>
void varm::apply(const P& policy, const Out& out, const Base& base, std::span<const merge_input<In>> inputs,
                 const merge_context& ctx) const {
  static_assert(!std::is_same_v<Base, no_base_t>, "fusekit::varm needs the pivot (base) model (pass its view as `base`).");
  exec::check_runs_on<P, Out, Base, In>();
  using namespace detail;
  check_merge_args(name, out, base, inputs, ctx, true, 0);
  const std::size_t J = inputs.size();
  const std::int64_t n = out.size();
  if (J == 0 || n == 0) {
    copy_tensor(policy, out, base);
    return;
  }
  if (granularity == varm_granularity::per_element) {
    FUSEKIT_EXPECTS(group_scores.empty(), invalid_argument,
                    merge_where(name, ctx) + ": group_scores cannot be combined with per_element granularity");
    const view_io<Base> b_io(base);
    const view_io<Out> o_io(out);
    const input_set<In> in(inputs);
    const std::int64_t blk = multi_block_size(J);
    const varm_statistic st = statistic;
    for_each_block_scratch(policy, n, blk, static_cast<std::size_t>(blk) * (J + 3),
                           [&](std::int64_t, std::int64_t b, std::int64_t e, float* s) {
                             const std::int64_t len = e - b;
                             float* bb = s;
                             float* g = s + blk;
                             float* acc = s + 2 * blk;
                             float* d = s + 3 * blk;
                             b_io.load(b, len, bb);
                             std::fill(g, g + len, 0.0f);
                             std::fill(acc, acc + len, 0.0f);
                             for (std::size_t j = 0; j < J; ++j) {
                               float* dj = d + j * static_cast<std::size_t>(blk);
                               in.load(j, b, len, dj);
                               for (std::int64_t q = 0; q < len; ++q) {
                                 dj[q] -= bb[q];
                                 const float f = st == varm_statistic::square ? dj[q] * dj[q]
                                                 : st == varm_statistic::abs  ? std::abs(dj[q])
                                                                              : dj[q];
                                 g[q] += f;
                                 acc[q] += f * dj[q];
                               }
                             }
                             for (std::int64_t q = 0; q < len; ++q) {
                               const float den = g[q] < 1e-13f ? 1e-13f : g[q];
                               acc[q] = bb[q] + acc[q] / den;
                             }
                             o_io.store(b, len, acc);
                           });
    return;
  }
  std::vector<double> s;
  if (!group_scores.empty()) {
    FUSEKIT_EXPECTS(group_scores.size() == J, invalid_argument,
                    merge_where(name, ctx) + ": group_scores has " + std::to_string(group_scores.size()) +
                        " entries for " + std::to_string(J) + " models");
    s.assign(group_scores.begin(), group_scores.end());
  } else {
    const varm_stats st = varm_statistics(policy, base, inputs, statistic);
    s.resize(J);
    for (std::size_t j = 0; j < J; ++j) {
      const double m = st.sums[j] / static_cast<double>(n);
      s[j] = statistic == varm_statistic::mean ? std::abs(m) : m;
    }
  }
  double total = 0;
  bool any_zero = false;
  for (std::size_t j = 0; j < J; ++j) {
    FUSEKIT_EXPECTS(std::isfinite(s[j]) && s[j] >= 0, invalid_argument,
                    merge_where(name, ctx) + ": " + model_label(j) + " has score " + std::to_string(s[j]) +
                        " (must be finite and non-negative)");
    total += s[j];
    any_zero = any_zero || s[j] == 0.0;
  }
  std::vector<float> coeff(J);
  for (std::size_t j = 0; j < J; ++j)
    coeff[j] = (any_zero || !(total > 0)) ? 1.0f / static_cast<float>(J) : static_cast<float>(s[j] / total);
  weighted_sum(policy, out, base, inputs, std::span<const float>(coeff), true);
}

} // namespace fusekit
