/// @file
/// @brief Batched preference losses over [B] views of sequence log-probs: mean loss, per-sequence
/// gradients, per-pair rewards and TRL's logged metrics; weighted combinations of losses.
///
///     fusekit::preference_batch<float> in{.policy_chosen = pc, .policy_rejected = pr,
///                                         .ref_chosen = rc, .ref_rejected = rr};
///     fusekit::preference_outputs<float> out{.d_policy_chosen = gc, .d_policy_rejected = gr};
///     auto m = fusekit::preference_loss(fusekit::exec::seq, fusekit::dpo{.beta = 0.1}, in, out);
///     // m.loss == mean over pairs; gc[i] == ∂ m.loss / ∂ pc[i]  (already divided by B)
///
/// The gradients then go to fusekit::sequence_logprobs_backward (logprob.hpp) as d(loss)/d(sum logp).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <fusekit/core/error.hpp>
#include <fusekit/exec/primitives.hpp>
#include <fusekit/loss/preference.hpp>
#include <fusekit/view/strided_view.hpp>

namespace fusekit {

/// A preference loss: a value type with a name, validate(), and a per-pair evaluation.
template <class L>
concept preference_loss_type = std::is_copy_constructible_v<L> && requires(const L& l, const pair_logps<double>& p) {
  { L::name } -> std::convertible_to<std::string_view>;
  l.validate();
  { l(p) } -> std::same_as<pair_result<double>>;
};

/// One term of a weighted combination.
template <class L> struct weighted_term {
  double weight = 1.0;
  L loss{};
};
template <class L> weighted_term(double, L) -> weighted_term<L>;

/// Σ_k w_k · (batch loss of term k), TRL's `loss_type` list with `loss_weights`. The logged rewards are
/// those of the first term. Example (MPO): combine(weighted_term{0.8, dpo{}}, weighted_term{0.2,
/// bco_pair{}}, weighted_term{1.0, sft{}}).
template <class... Ls> struct combined {
  static constexpr std::string_view name = "combined";
  std::tuple<weighted_term<Ls>...> terms;
  void validate() const {
    std::apply(
        [](const auto&... t) {
          auto one = [](const auto& term) {
            term.loss.validate();
            FUSEKIT_EXPECTS(std::isfinite(term.weight), invalid_argument,
                            std::string("combined: weight of ") + std::string(term.loss.name) + " is not finite");
          };
          (one(t), ...);
        },
        terms);
  }
  /// Per-pair Σ_k w_k·term_k (sft taken per sequence here; preference_loss applies batch_token_mean).
  /// Rewards are the first term's.
  template <class R> pair_result<R> operator()(const pair_logps<R>& p) const noexcept {
    pair_result<R> acc;
    bool first = true;
    std::apply(
        [&](const auto&... t) {
          auto add = [&](const auto& term) {
            const pair_result<R> r = term.loss(p);
            const R w = R(term.weight);
            acc.loss += w * r.loss;
            acc.d_chosen += w * r.d_chosen;
            acc.d_rejected += w * r.d_rejected;
            acc.d_source_chosen += w * r.d_source_chosen;
            if (first) {
              acc.reward_chosen = r.reward_chosen;
              acc.reward_rejected = r.reward_rejected;
              acc.reward_source_chosen = r.reward_source_chosen;
              acc.reward_target_chosen = r.reward_target_chosen;
              first = false;
            }
          };
          (add(t), ...);
        },
        terms);
    return acc;
  }
};
/// Builds a combined loss from weighted terms.
template <class... Ls> constexpr combined<Ls...> combine(weighted_term<Ls>... t) { return {{t...}}; }

/// Inputs: [B] views (same B). Empty optional views mean 0 (reference log-probs) or "not given".
template <class T> struct preference_batch {
  vector_view<const T> policy_chosen{};
  vector_view<const T> policy_rejected{};
  vector_view<const T> ref_chosen{};   ///< empty = reference-free (0)
  vector_view<const T> ref_rejected{}; ///< empty = 0
  vector_view<const T> len_chosen{};   ///< completion token counts; required by ipo/ln_dpo/simpo/orpo/sft
  vector_view<const T> len_rejected{};
  vector_view<const T> policy_source_chosen{}; ///< WRPO y_ws; required by wrpo
  vector_view<const T> ref_source_chosen{};    ///< WRPO; empty = 0
};

/// Outputs: each view may be empty (not written) or [B]. Gradients are of the *mean* batch loss.
template <class T> struct preference_outputs {
  vector_view<T> d_policy_chosen{};
  vector_view<T> d_policy_rejected{};
  vector_view<T> d_policy_source_chosen{}; ///< WRPO
  vector_view<T> losses{};                 ///< per-pair contribution × B (their mean is the loss)
  vector_view<T> rewards_chosen{};
  vector_view<T> rewards_rejected{};
};

/// TRL's logged metrics (names in comments), computed in double over the batch.
struct preference_metrics {
  double loss = 0;               ///< loss
  double rewards_chosen = 0;     ///< rewards/chosen (mean)
  double rewards_rejected = 0;   ///< rewards/rejected
  double rewards_accuracies = 0; ///< rewards/accuracies: fraction with chosen > rejected (strict)
  double rewards_margins = 0;    ///< rewards/margins: mean(chosen − rejected)
  double logps_chosen = 0;       ///< logps/chosen: mean summed policy log-prob
  double logps_rejected = 0;     ///< logps/rejected
  // WRPO extras (0 otherwise)
  double rewards_source_chosen = 0;     ///< rewards/source_chosen
  double rewards_target_chosen = 0;     ///< rewards/target_chosen
  double rewards_source_accuracies = 0; ///< rewards/source_accuracies: β r_s > β r_l
  double rewards_pivot_accuracies = 0;  ///< rewards/pivot_accuracies: β r_t > β r_l
  double logps_source_chosen = 0;       ///< logps/source_chosen
  std::int64_t pairs = 0;
};

namespace detail {

template <class L> struct pref_traits {
  static constexpr bool uses_lengths = false;
  static constexpr bool uses_source = false;
};
template <> struct pref_traits<ipo> {
  static constexpr bool uses_lengths = true;
  static constexpr bool uses_source = false;
};
template <> struct pref_traits<ln_dpo> {
  static constexpr bool uses_lengths = true;
  static constexpr bool uses_source = false;
};
template <> struct pref_traits<simpo> {
  static constexpr bool uses_lengths = true;
  static constexpr bool uses_source = false;
};
template <> struct pref_traits<orpo> {
  static constexpr bool uses_lengths = true;
  static constexpr bool uses_source = false;
};
template <> struct pref_traits<sft> {
  static constexpr bool uses_lengths = true;
  static constexpr bool uses_source = false;
};
template <> struct pref_traits<wrpo> {
  static constexpr bool uses_lengths = false;
  static constexpr bool uses_source = true;
};
template <class... Ls> struct pref_traits<combined<Ls...>> {
  static constexpr bool uses_lengths = (pref_traits<Ls>::uses_lengths || ...);
  static constexpr bool uses_source = (pref_traits<Ls>::uses_source || ...);
};

/// Batch context for batch-coupled terms (sft with batch_token_mean, aot).
struct pref_context {
  double inv_batch = 1;      ///< 1/B
  double sum_len_chosen = 1; ///< Σ Lc over the batch
  // aot: for pair i, δ at the rank of its policy log-ratio (paired), and δ at the ranks of its chosen
  // and rejected log-ratios (unpaired); empty unless the loss contains aot
  std::vector<double> aot_paired, aot_chosen, aot_rejected;
};

template <class L> struct contains_aot : std::is_same<L, aot> {};
template <class... Ls> struct contains_aot<combined<Ls...>> : std::bool_constant<(contains_aot<Ls>::value || ...)> {};

template <class L>
pair_result<double> batch_term(const L& l, const pair_logps<double>& p, const pref_context& c, std::int64_t i) {
  if constexpr (std::is_same_v<L, aot>) {
    const std::size_t k = static_cast<std::size_t>(i);
    pair_result<double> r = l(p); // rewards
    if (!l.unpaired) {
      const auto s = l.at(c.aot_paired[k]);
      r.loss = s.value * c.inv_batch;
      r.d_chosen = s.dz * c.inv_batch;
      r.d_rejected = -s.dz * c.inv_batch;
    } else {
      const auto sc = l.at(c.aot_chosen[k]), sr = l.at(c.aot_rejected[k]);
      r.loss = sc.value * c.inv_batch; // the loss at the chosen rank (the ranks' losses sum to the batch total)
      r.d_chosen = sc.dz * c.inv_batch;
      r.d_rejected = -sr.dz * c.inv_batch;
    }
    return r;
  }
  pair_result<double> r = l(p);
  if constexpr (std::is_same_v<L, sft>) {
    if (l.batch_token_mean) {
      r.loss = -p.policy_chosen / c.sum_len_chosen;
      r.d_chosen = -1.0 / c.sum_len_chosen;
      return r;
    }
  }
  r.loss *= c.inv_batch;
  r.d_chosen *= c.inv_batch;
  r.d_rejected *= c.inv_batch;
  r.d_source_chosen *= c.inv_batch;
  return r;
}
template <class... Ls>
pair_result<double> batch_term(const combined<Ls...>& l, const pair_logps<double>& p, const pref_context& c,
                               std::int64_t i) {
  pair_result<double> acc;
  bool first = true;
  std::apply(
      [&](const auto&... t) {
        auto add = [&](const auto& term) {
          const pair_result<double> r = batch_term(term.loss, p, c, i);
          acc.loss += term.weight * r.loss;
          acc.d_chosen += term.weight * r.d_chosen;
          acc.d_rejected += term.weight * r.d_rejected;
          acc.d_source_chosen += term.weight * r.d_source_chosen;
          if (first) {
            acc.reward_chosen = r.reward_chosen;
            acc.reward_rejected = r.reward_rejected;
            acc.reward_source_chosen = r.reward_source_chosen;
            acc.reward_target_chosen = r.reward_target_chosen;
            first = false;
          }
        };
        (add(t), ...);
      },
      l.terms);
  return acc;
}

template <class V> inline void check_len(const V& v, std::int64_t b, const char* what) {
  if (!v.empty())
    FUSEKIT_EXPECTS(v.extent(0) == b, shape_mismatch,
                    std::string("preference_loss: ") + what + " has " + std::to_string(v.extent(0)) +
                        " entries, expected " + std::to_string(b));
}

} // namespace detail

/// Evaluates `loss` over a batch of pairs. Returns the mean loss (Σ_k w_k·mean for combinations) and
/// TRL's metrics; writes the requested outputs. Lengths below 1 are clamped to 1 (TRL's
/// `clamp(min=1)`), so length-zero responses give finite results. Throws fusekit::error on shape
/// mismatches, missing inputs the loss needs, non-finite inputs (naming the field and pair index) and
/// out-of-domain parameters; an empty batch (B = 0) throws too, since its mean is undefined.
template <class Policy, class L, class T>
requires preference_loss_type<L> preference_metrics preference_loss(const Policy& policy, const L& loss,
                                                                    const preference_batch<T>& in,
                                                                    const preference_outputs<T>& out = {}) {
  using traits = detail::pref_traits<L>;
  loss.validate();
  const std::int64_t B = in.policy_chosen.extent(0);
  FUSEKIT_EXPECTS(B > 0, invalid_argument, std::string("preference_loss(") + std::string(L::name) + "): empty batch");
  detail::check_len(in.policy_rejected, B, "policy_rejected");
  FUSEKIT_EXPECTS(!in.policy_rejected.empty(), invalid_argument, "preference_loss: policy_rejected is required");
  detail::check_len(in.ref_chosen, B, "ref_chosen");
  detail::check_len(in.ref_rejected, B, "ref_rejected");
  FUSEKIT_EXPECTS(in.ref_chosen.empty() == in.ref_rejected.empty(), invalid_argument,
                  "preference_loss: give both ref_chosen and ref_rejected or neither");
  detail::check_len(in.len_chosen, B, "len_chosen");
  detail::check_len(in.len_rejected, B, "len_rejected");
  detail::check_len(in.policy_source_chosen, B, "policy_source_chosen");
  detail::check_len(in.ref_source_chosen, B, "ref_source_chosen");
  if constexpr (traits::uses_lengths)
    FUSEKIT_EXPECTS(!in.len_chosen.empty() && !in.len_rejected.empty(), invalid_argument,
                    std::string("preference_loss(") + std::string(L::name) +
                        "): this loss needs len_chosen and len_rejected (completion token counts)");
  if constexpr (traits::uses_source)
    FUSEKIT_EXPECTS(!in.policy_source_chosen.empty(), invalid_argument,
                    std::string("preference_loss(") + std::string(L::name) +
                        "): this loss needs policy_source_chosen (the source model's chosen response)");
  detail::check_len(out.d_policy_chosen, B, "d_policy_chosen");
  detail::check_len(out.d_policy_rejected, B, "d_policy_rejected");
  detail::check_len(out.d_policy_source_chosen, B, "d_policy_source_chosen");
  detail::check_len(out.losses, B, "losses");
  detail::check_len(out.rewards_chosen, B, "rewards_chosen");
  detail::check_len(out.rewards_rejected, B, "rewards_rejected");

  auto get = [](const vector_view<const T>& v, std::int64_t i, double dflt) {
    return v.empty() ? dflt : static_cast<double>(v[i]);
  };
  auto pair_at = [&](std::int64_t i) {
    pair_logps<double> p;
    p.policy_chosen = get(in.policy_chosen, i, 0);
    p.policy_rejected = get(in.policy_rejected, i, 0);
    p.ref_chosen = get(in.ref_chosen, i, 0);
    p.ref_rejected = get(in.ref_rejected, i, 0);
    p.len_chosen = std::fmax(get(in.len_chosen, i, 1), 1.0);
    p.len_rejected = std::fmax(get(in.len_rejected, i, 1), 1.0);
    p.policy_source_chosen = get(in.policy_source_chosen, i, 0);
    p.ref_source_chosen = get(in.ref_source_chosen, i, 0);
    return p;
  };

  // validation + batch sums (sequential: B is small, and the order is fixed)
  detail::pref_context ctx;
  ctx.inv_batch = 1.0 / static_cast<double>(B);
  double sum_len = 0;
  for (std::int64_t i = 0; i < B; ++i) {
    const pair_logps<double> p = pair_at(i);
    const double fields[] = {p.policy_chosen, p.policy_rejected, p.ref_chosen,           p.ref_rejected,
                             p.len_chosen,    p.len_rejected,    p.policy_source_chosen, p.ref_source_chosen};
    static constexpr const char* names[] = {"policy_chosen",        "policy_rejected",  "ref_chosen",
                                            "ref_rejected",         "len_chosen",       "len_rejected",
                                            "policy_source_chosen", "ref_source_chosen"};
    for (int k = 0; k < 8; ++k)
      FUSEKIT_EXPECTS(std::isfinite(fields[k]), invalid_argument,
                      std::string("preference_loss(") + std::string(L::name) + "): " + names[k] + "[" +
                          std::to_string(i) + "] is not finite (" + std::to_string(fields[k]) + ")");
    sum_len += p.len_chosen;
  }
  ctx.sum_len_chosen = sum_len;
  if constexpr (detail::contains_aot<L>::value) {
    // ranks of the batch's log-ratios (stable sorts: ties keep index order)
    const auto n = static_cast<std::size_t>(B);
    std::vector<double> pol(n), ref(n), uc(n), ur(n);
    for (std::int64_t i = 0; i < B; ++i) {
      const pair_logps<double> p = pair_at(i);
      const auto k = static_cast<std::size_t>(i);
      pol[k] = p.policy_chosen - p.policy_rejected;
      ref[k] = p.ref_chosen - p.ref_rejected;
      uc[k] = p.policy_chosen - p.ref_chosen;
      ur[k] = p.policy_rejected - p.ref_rejected;
    }
    auto order = [n](const std::vector<double>& v) {
      std::vector<std::size_t> o(n);
      for (std::size_t k = 0; k < n; ++k)
        o[k] = k;
      std::stable_sort(o.begin(), o.end(), [&](std::size_t a, std::size_t b) { return v[a] < v[b]; });
      return o;
    };
    const auto op = order(pol), orf = order(ref), oc = order(uc), orj = order(ur);
    ctx.aot_paired.assign(n, 0.0);
    ctx.aot_chosen.assign(n, 0.0);
    ctx.aot_rejected.assign(n, 0.0);
    for (std::size_t r = 0; r < n; ++r) {
      ctx.aot_paired[op[r]] = pol[op[r]] - ref[orf[r]];
      const double d = uc[oc[r]] - ur[orj[r]];
      ctx.aot_chosen[oc[r]] = d;
      ctx.aot_rejected[orj[r]] = d;
    }
  }

  exec::for_each_n(policy, B, [&](std::int64_t i) {
    const pair_result<double> r = detail::batch_term(loss, pair_at(i), ctx, i);
    if (!out.d_policy_chosen.empty())
      out.d_policy_chosen[i] = static_cast<T>(r.d_chosen);
    if (!out.d_policy_rejected.empty())
      out.d_policy_rejected[i] = static_cast<T>(r.d_rejected);
    if (!out.d_policy_source_chosen.empty())
      out.d_policy_source_chosen[i] = static_cast<T>(r.d_source_chosen);
    if (!out.losses.empty())
      out.losses[i] = static_cast<T>(r.loss * static_cast<double>(B));
    if (!out.rewards_chosen.empty())
      out.rewards_chosen[i] = static_cast<T>(r.reward_chosen);
    if (!out.rewards_rejected.empty())
      out.rewards_rejected[i] = static_cast<T>(r.reward_rejected);
  });

  preference_metrics m;
  m.pairs = B;
  for (std::int64_t i = 0; i < B; ++i) { // recomputed in order: deterministic for any policy
    const pair_logps<double> p = pair_at(i);
    const pair_result<double> r = detail::batch_term(loss, p, ctx, i);
    m.loss += r.loss;
    m.rewards_chosen += r.reward_chosen;
    m.rewards_rejected += r.reward_rejected;
    m.rewards_accuracies += r.reward_chosen > r.reward_rejected ? 1.0 : 0.0;
    m.rewards_margins += r.reward_chosen - r.reward_rejected;
    m.logps_chosen += p.policy_chosen;
    m.logps_rejected += p.policy_rejected;
    m.rewards_source_chosen += r.reward_source_chosen;
    m.rewards_target_chosen += r.reward_target_chosen;
    m.rewards_source_accuracies += r.reward_source_chosen > r.reward_rejected ? 1.0 : 0.0;
    m.rewards_pivot_accuracies += r.reward_target_chosen > r.reward_rejected ? 1.0 : 0.0;
    m.logps_source_chosen += p.policy_source_chosen;
  }
  const double inv = ctx.inv_batch;
  m.rewards_chosen *= inv;
  m.rewards_rejected *= inv;
  m.rewards_accuracies *= inv;
  m.rewards_margins *= inv;
  m.logps_chosen *= inv;
  m.logps_rejected *= inv;
  m.rewards_source_chosen *= inv;
  m.rewards_target_chosen *= inv;
  m.logps_source_chosen *= inv;
  if constexpr (!traits::uses_source) {
    m.rewards_source_accuracies = 0;
    m.rewards_pivot_accuracies = 0;
  } else {
    m.rewards_source_accuracies *= inv;
    m.rewards_pivot_accuracies *= inv;
  }
  return m;
}

} // namespace fusekit
