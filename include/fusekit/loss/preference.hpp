/// @file
/// @brief Preference-optimization losses (the DPO family) as value types: per-pair loss, gradient
/// w.r.t. the policy's summed sequence log-probs, and the rewards TRL logs.
///
/// Every loss `L` here is a trivially copyable struct whose hyper-parameters are data members with
/// TRL's defaults, a `static constexpr std::string_view name`, a host-only `validate()` that throws
/// fusekit::error for out-of-domain parameters, and
///
///     template <class R> FUSEKIT_HOST_DEVICE pair_result<R> operator()(const pair_logps<R>&) const noexcept;
///
/// Inputs are **summed** sequence log-probs (policy and reference) plus completion token counts;
/// gradients are w.r.t. the summed policy log-probs of one pair (divide by B for a batch mean —
/// fusekit::preference_loss in preference_batch.hpp does that). Reference gradients are not returned:
/// for every reference-based loss they are the negatives of the policy ones.
/// Formulas and the reference each loss matches: docs/losses.md.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include <fusekit/core/config.hpp>
#include <fusekit/core/error.hpp>
#include <fusekit/loss/numerics.hpp>

namespace fusekit {

/// One preference pair (or WRPO triple), all log-probs summed over completion tokens.
template <class R> struct pair_logps {
  R policy_chosen = 0;        ///< pc: Σ log πθ(y_w) (WRPO: the *target* chosen y_wt)
  R policy_rejected = 0;      ///< pr: Σ log πθ(y_l)
  R ref_chosen = 0;           ///< rc: Σ log πref(y_w) (0 for reference-free losses)
  R ref_rejected = 0;         ///< rr
  R len_chosen = 1;           ///< Lc: completion tokens of y_w (used by ipo, ln_dpo, simpo, orpo, sft)
  R len_rejected = 1;         ///< Lr
  R policy_source_chosen = 0; ///< ps: WRPO source chosen y_ws (ignored by the other losses)
  R ref_source_chosen = 0;    ///< rs: WRPO
};

/// Per-pair loss value, gradient w.r.t. the summed policy log-probs, and logged rewards.
template <class R> struct pair_result {
  R loss = 0;
  R d_chosen = 0;             ///< ∂loss/∂policy_chosen
  R d_rejected = 0;           ///< ∂loss/∂policy_rejected
  R d_source_chosen = 0;      ///< ∂loss/∂policy_source_chosen (WRPO only, else 0)
  R reward_chosen = 0;        ///< TRL `rewards/chosen` contribution (WRPO: β·r_w)
  R reward_rejected = 0;      ///< TRL `rewards/rejected` contribution
  R reward_source_chosen = 0; ///< WRPO β·r_s (else 0)
  R reward_target_chosen = 0; ///< WRPO β·r_t (else 0)
};

namespace detail {

/// Loss −(1−ε)logσ(z) − ε logσ(−z) (cDPO / TRL ≤0.28 `sigmoid`, CPO, SimPO, WRPO code) and its
/// derivative w.r.t. z, kept in the σ(−z) form (no 1−σ(z) cancellation).
template <class R> struct smoothed_sigmoid { R value, dz; };
template <class R> FUSEKIT_HOST_DEVICE inline smoothed_sigmoid<R> smoothed_sigmoid_loss(R z, R eps) noexcept {
  if (eps == R(0))
    return {-log_sigmoid(z), -sigmoid(-z)};
  return {-(R(1) - eps) * log_sigmoid(z) - eps * log_sigmoid(-z), -(R(1) - eps) * sigmoid(-z) + eps * sigmoid(z)};
}

template <class R> FUSEKIT_HOST_DEVICE inline R dsigmoid(R x) noexcept { return sigmoid(x) * sigmoid(-x); }

inline void expect_positive(double v, const char* loss, const char* param) {
  FUSEKIT_EXPECTS(v > 0 && std::isfinite(v), invalid_argument,
                  std::string(loss) + ": " + param + " must be positive and finite, got " + std::to_string(v));
}
inline void expect_in(double v, double lo, double hi, bool lo_open, bool hi_open, const char* loss, const char* param) {
  const bool ok = (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
  FUSEKIT_EXPECTS(ok, invalid_argument,
                  std::string(loss) + ": " + param + " must be in " + (lo_open ? "(" : "[") + std::to_string(lo) +
                      ", " + std::to_string(hi) + (hi_open ? ")" : "]") + ", got " + std::to_string(v));
}

} // namespace detail

/// TRL's `f_divergence_type` (v1.x): the score s(u) applied to each log-ratio u before the loss,
/// Δs = s(uc) − s(ur). reverse_kl: u (standard DPO); forward_kl: 1 − e^{−u}; js_divergence:
/// log 2 + logσ(u); alpha_divergence: (e^{(α−1)u} − 1)/(α−1) with the exponent clamped at 80 as TRL
/// does in fp32 (falls back to u when |α − 1| < 1e−6). Rewards stay β·u. (TRL 0.28 used a different
/// alpha score, −e^{−αu}/α; fusekit follows v1.)
enum class f_divergence { reverse_kl, forward_kl, js_divergence, alpha_divergence };

/// The f-divergence score with its coefficient (TRL `f_alpha_divergence_coef`, default 0.5).
struct f_score {
  f_divergence type = f_divergence::reverse_kl;
  double alpha = 0.5;
  /// s(u).
  template <class R> FUSEKIT_HOST_DEVICE R value(R u) const noexcept {
    using std::exp;
    using std::fabs;
    switch (type) {
    case f_divergence::reverse_kl: return u;
    case f_divergence::forward_kl: return R(1) - exp(-u);
    case f_divergence::js_divergence: return R(0.693147180559945309417232121458176568) + log_sigmoid(u);
    case f_divergence::alpha_divergence: {
      if (fabs(alpha - 1.0) < 1e-6)
        return u;
      const R t = R(alpha - 1.0) * u;
      return (exp(t < R(80) ? t : R(80)) - R(1)) / R(alpha - 1.0);
    }
    }
    return u;
  }
  /// ds/du (0 where the alpha exponent is clamped).
  template <class R> FUSEKIT_HOST_DEVICE R deriv(R u) const noexcept {
    using std::exp;
    using std::fabs;
    switch (type) {
    case f_divergence::reverse_kl: return R(1);
    case f_divergence::forward_kl: return exp(-u);
    case f_divergence::js_divergence: return sigmoid(-u);
    case f_divergence::alpha_divergence: {
      if (fabs(alpha - 1.0) < 1e-6)
        return R(1);
      const R t = R(alpha - 1.0) * u;
      return t < R(80) ? exp(t) : R(0);
    }
    }
    return R(1);
  }
  void validate(const char* loss) const { detail::expect_positive(alpha, loss, "f_score.alpha"); }
};

/// DPO (TRL `sigmoid`, arXiv 2305.18290): z = β((pc−rc)−(pr−rr)), loss −logσ(z).
/// With `label_smoothing` ε > 0: conservative DPO −(1−ε)logσ(z) − ε logσ(−z) (TRL ≤0.28 `sigmoid`);
/// with `robust`: [−(1−ε)logσ(z) + ε logσ(−z)]/(1−2ε) (TRL `robust`, arXiv 2403.00409).
struct dpo {
  static constexpr std::string_view name = "dpo";
  double beta = 0.1;
  double label_smoothing = 0.0;
  bool robust = false;
  f_score score{}; ///< TRL f_divergence_type (default reverse_kl = standard DPO)

  void validate() const {
    score.validate("dpo");
    detail::expect_positive(beta, "dpo", "beta");
    detail::expect_in(label_smoothing, 0.0, robust ? 0.5 : 1.0, false, robust, "dpo", "label_smoothing");
  }
  template <class R> FUSEKIT_HOST_DEVICE pair_result<R> operator()(const pair_logps<R>& p) const noexcept {
    const R b = R(beta), eps = R(label_smoothing);
    const R uc = p.policy_chosen - p.ref_chosen, ur = p.policy_rejected - p.ref_rejected;
    const R z = b * (score.value(uc) - score.value(ur));
    R value, dz;
    if (robust) {
      value = (-(R(1) - eps) * log_sigmoid(z) + eps * log_sigmoid(-z)) / (R(1) - R(2) * eps);
      dz = (-(R(1) - eps) * sigmoid(-z) - eps * sigmoid(z)) / (R(1) - R(2) * eps);
    } else {
      const auto s = detail::smoothed_sigmoid_loss(z, eps);
      value = s.value;
      dz = s.dz;
    }
    pair_result<R> r;
    r.loss = value;
    r.d_chosen = b * dz * score.deriv(uc);
    r.d_rejected = -b * dz * score.deriv(ur);
    r.reward_chosen = b * uc;
    r.reward_rejected = b * ur;
    return r;
  }
};

/// Hinge / SLiC (TRL `hinge`): max(0, 1 − βΔ). Sub-gradient 0 at the kink (βΔ = 1).
struct hinge {
  static constexpr std::string_view name = "hinge";
  double beta = 0.1;
  f_score score{};
  void validate() const {
    score.validate("hinge");
    detail::expect_positive(beta, "hinge", "beta");
  }
  template <class R> FUSEKIT_HOST_DEVICE pair_result<R> operator()(const pair_logps<R>& p) const noexcept {
    const R b = R(beta);
    const R uc = p.policy_chosen - p.ref_chosen, ur = p.policy_rejected - p.ref_rejected;
    const R m = R(1) - b * (score.value(uc) - score.value(ur));
    pair_result<R> r;
    r.loss = m > R(0) ? m : R(0);
    r.d_chosen = m > R(0) ? -b * score.deriv(uc) : R(0);
    r.d_rejected = m > R(0) ? b * score.deriv(ur) : R(0);
    r.reward_chosen = b * uc;
    r.reward_rejected = b * ur;
    return r;
  }
};

/// IPO (TRL `ipo`, arXiv 2310.12036): h = (pc−rc)/Lc − (pr−rr)/Lr, loss (h − 1/(2β))².
/// `length_normalize = false` uses the raw summed log-ratios (h = Δ) instead.
struct ipo {
  static constexpr std::string_view name = "ipo";
  double beta = 0.1;
  bool length_normalize = true;
  f_score score{};
  void validate() const {
    score.validate("ipo");
    detail::expect_positive(beta, "ipo", "beta");
  }
  template <class R> FUSEKIT_HOST_DEVICE pair_result<R> operator()(const pair_logps<R>& p) const noexcept {
    const R b = R(beta);
    const R uc = p.policy_chosen - p.ref_chosen, ur = p.policy_rejected - p.ref_rejected;
    const R lc = length_normalize ? p.len_chosen : R(1), lr = length_normalize ? p.len_rejected : R(1);
    const R d = score.value(uc) / lc - score.value(ur) / lr - R(1) / (R(2) * b);
    pair_result<R> r;
    r.loss = d * d;
    r.d_chosen = R(2) * d * score.deriv(uc) / lc;
    r.d_rejected = -R(2) * d * score.deriv(ur) / lr;
    r.reward_chosen = b * uc;
    r.reward_rejected = b * ur;
    return r;
  }
};

/// LN-DPO (FuseChat-3.0) = TRL `sigmoid_norm` = open-instruct `dpo_norm`:
/// z = β((pc−rc)/Lc − (pr−rr)/Lr), loss −(1−ε)logσ(z) − ε logσ(−z).
/// Rewards: TRL logs β·(summed log-ratio) (default); `normalized_rewards = true` logs β·u/L as the
/// SLIT-AI/WRPO `dpo_trainer.py` (avg_logp) does.
struct ln_dpo {
  static constexpr std::string_view name = "ln_dpo";
  double beta = 0.1; ///< TRL default; FuseChat-3.0 trains LN-DPO with β = 10
  double label_smoothing = 0.0;
  bool normalized_rewards = false;
  f_score score{};
  void validate() const {
    score.validate("ln_dpo");
    detail::expect_positive(beta, "ln_dpo", "beta");
    detail::expect_in(label_smoothing, 0.0, 1.0, false, false, "ln_dpo", "label_smoothing");
  }
  template <class R> FUSEKIT_HOST_DEVICE pair_result<R> operator()(const pair_logps<R>& p) const noexcept {
    const R b = R(beta);
    const R uc = p.policy_chosen - p.ref_chosen, ur = p.policy_rejected - p.ref_rejected;
    const R z = b * (score.value(uc) / p.len_chosen - score.value(ur) / p.len_rejected);
    const auto s = detail::smoothed_sigmoid_loss(z, R(label_smoothing));
    pair_result<R> r;
    r.loss = s.value;
    r.d_chosen = b * s.dz * score.deriv(uc) / p.len_chosen;
    r.d_rejected = -b * s.dz * score.deriv(ur) / p.len_rejected;
    r.reward_chosen = normalized_rewards ? b * uc / p.len_chosen : b * uc;
    r.reward_rejected = normalized_rewards ? b * ur / p.len_rejected : b * ur;
    return r;
  }
};

/// SimPO (reference-free, arXiv 2405.14734): z = β(pc/Lc − pr/Lr) − γ, loss −(1−ε)logσ(z) − ε logσ(−z).
/// `gamma` is the absolute margin (TRL `simpo_gamma`, Liger `gamma`); the SimPO repository's
/// `gamma_beta_ratio` is γ/β — build from it with simpo::from_gamma_beta_ratio. Rewards β·pc/Lc, β·pr/Lr.
/// Pure SimPO: no NLL term (add fusekit::sft with a weight for CPO-SimPO).
struct simpo {
  static constexpr std::string_view name = "simpo";
  double beta = 0.1;  ///< TRL CPOTrainer default (the SimPO paper's configs use 2–10)
  double gamma = 0.5; ///< TRL `simpo_gamma` default
  double label_smoothing = 0.0;
  /// SimPO-repository parameterization: γ = ratio·β.
  static constexpr simpo from_gamma_beta_ratio(double beta, double ratio, double label_smoothing = 0.0) noexcept {
    return simpo{beta, ratio * beta, label_smoothing};
  }
  void validate() const {
    detail::expect_positive(beta, "simpo", "beta");
    FUSEKIT_EXPECTS(std::isfinite(gamma), invalid_argument, "simpo: gamma must be finite");
    detail::expect_in(label_smoothing, 0.0, 1.0, false, false, "simpo", "label_smoothing");
  }
  template <class R> FUSEKIT_HOST_DEVICE pair_result<R> operator()(const pair_logps<R>& p) const noexcept {
    const R b = R(beta);
    const R ac = p.policy_chosen / p.len_chosen, ar = p.policy_rejected / p.len_rejected;
    const R z = b * (ac - ar) - R(gamma);
    const auto s = detail::smoothed_sigmoid_loss(z, R(label_smoothing));
    pair_result<R> r;
    r.loss = s.value;
    r.d_chosen = b * s.dz / p.len_chosen;
    r.d_rejected = -b * s.dz / p.len_rejected;
    r.reward_chosen = b * ac;
    r.reward_rejected = b * ar;
    return r;
  }
};

/// ORPO odds-ratio term (TRL experimental ORPOTrainer, arXiv 2403.07691), reference-free, on average
/// log-probs a = p/L: log_odds = (ac − ar) − (log1mexp(ac) − log1mexp(ar)), loss −β·logσ(log_odds).
/// TRL's full ORPO objective is NLL(chosen) + this term: combine with fusekit::sft (weight 1).
/// Average log-probs ≥ 0 (probability 1) are clamped to −`min_neg_avg_logp` so the result stays finite.
struct orpo {
  static constexpr std::string_view name = "orpo";
  double beta = 0.1;
  double min_neg_avg_logp = 1e-7;
  void validate() const {
    detail::expect_positive(beta, "orpo", "beta");
    detail::expect_positive(min_neg_avg_logp, "orpo", "min_neg_avg_logp");
  }
  /// The log-odds (log_odds_chosen metric) of a pair.
  template <class R> FUSEKIT_HOST_DEVICE R log_odds(const pair_logps<R>& p) const noexcept {
    const R cap = -R(min_neg_avg_logp);
    R ac = p.policy_chosen / p.len_chosen, ar = p.policy_rejected / p.len_rejected;
    ac = ac < cap ? ac : cap;
    ar = ar < cap ? ar : cap;
    return (ac - ar) - (log1mexp(ac) - log1mexp(ar));
  }
  template <class R> FUSEKIT_HOST_DEVICE pair_result<R> operator()(const pair_logps<R>& p) const noexcept {
    using std::expm1;
    const R b = R(beta), cap = -R(min_neg_avg_logp);
    const R ac0 = p.policy_chosen / p.len_chosen, ar0 = p.policy_rejected / p.len_rejected;
    const R ac = ac0 < cap ? ac0 : cap, ar = ar0 < cap ? ar0 : cap;
    const R lo = (ac - ar) - (log1mexp(ac) - log1mexp(ar));
    const R dlo = -b * sigmoid(-lo); // ∂loss/∂log_odds
    pair_result<R> r;
    r.loss = -b * log_sigmoid(lo);
    // ∂log_odds/∂ac = 1/(1−e^ac) = −1/expm1(ac); ∂log_odds/∂ar = 1/expm1(ar); zero where clamped
    r.d_chosen = ac0 < cap ? dlo * (-R(1) / expm1(ac)) / p.len_chosen : R(0);
    r.d_rejected = ar0 < cap ? dlo * (R(1) / expm1(ar)) / p.len_rejected : R(0);
    r.reward_chosen = b * ac0;
    r.reward_rejected = b * ar0;
    return r;
  }
};

/// WRPO α schedule (SLIT-AI/WRPO `LinearDecayScheduler`, which despite its name *increases*):
/// α(step) = α_end·step/T for 0 ≤ step ≤ T, α_end after; constant α_end when `dynamic` is false.
/// `step` = optimizer steps taken so far (trainer.state.global_step).
struct wrpo_alpha_schedule {
  double alpha_end = 0.1;
  std::int64_t total_steps = 1; ///< T
  bool dynamic = true;

  void validate() const {
    detail::expect_in(alpha_end, 0.0, 1.0, false, false, "wrpo_alpha_schedule", "alpha_end");
    FUSEKIT_EXPECTS(total_steps > 0 || !dynamic, invalid_argument,
                    "wrpo_alpha_schedule: total_steps must be positive, got " + std::to_string(total_steps));
  }
  /// α at optimizer step `step` (negative steps count as 0).
  constexpr double operator()(std::int64_t step) const noexcept {
    if (!dynamic || total_steps <= 0)
      return alpha_end;
    if (step <= 0)
      return 0.0;
    if (step >= total_steps)
      return alpha_end;
    return alpha_end * static_cast<double>(step) / static_cast<double>(total_steps);
  }
  /// T as the WRPO trainer computes it: ceil(epochs · floor(micro_batches_per_epoch / grad_accum)).
  static std::int64_t steps_for(std::int64_t micro_batches_per_epoch, std::int64_t grad_accum, double epochs) {
    FUSEKIT_EXPECTS(micro_batches_per_epoch >= 0 && grad_accum > 0 && epochs >= 0, invalid_argument,
                    "wrpo_alpha_schedule::steps_for: need micro_batches >= 0, grad_accum > 0, epochs >= 0");
    return static_cast<std::int64_t>(std::ceil(epochs * static_cast<double>(micro_batches_per_epoch / grad_accum)));
  }
};

/// WRPO (arXiv 2412.03187, SLIT-AI/WRPO `wrpo_loss`): r_s = ps−rs (source chosen y_ws),
/// r_t = pc−rc (target chosen y_wt), r_l = pr−rr; r_w = α r_s + (1−α) r_t, z = β(r_w − r_l),
/// loss −(1−ε)logσ(z) − ε logσ(−z). Set `alpha` per step from a wrpo_alpha_schedule.
/// Rewards: chosen = β·r_w, rejected = β·r_l, plus β·r_s and β·r_t.
struct wrpo {
  static constexpr std::string_view name = "wrpo";
  double beta = 0.01;
  double alpha = 0.1;
  double label_smoothing = 0.0;
  void validate() const {
    detail::expect_positive(beta, "wrpo", "beta");
    detail::expect_in(alpha, 0.0, 1.0, false, false, "wrpo", "alpha");
    detail::expect_in(label_smoothing, 0.0, 1.0, false, false, "wrpo", "label_smoothing");
  }
  template <class R> FUSEKIT_HOST_DEVICE pair_result<R> operator()(const pair_logps<R>& p) const noexcept {
    const R b = R(beta), a = R(alpha);
    const R rs = p.policy_source_chosen - p.ref_source_chosen;
    const R rt = p.policy_chosen - p.ref_chosen;
    const R rl = p.policy_rejected - p.ref_rejected;
    const R rw = a * rs + (R(1) - a) * rt;
    const auto s = detail::smoothed_sigmoid_loss(b * (rw - rl), R(label_smoothing));
    pair_result<R> r;
    r.loss = s.value;
    r.d_source_chosen = b * a * s.dz;
    r.d_chosen = b * (R(1) - a) * s.dz;
    r.d_rejected = -b * s.dz;
    r.reward_chosen = b * rw;
    r.reward_rejected = b * rl;
    r.reward_source_chosen = b * rs;
    r.reward_target_chosen = b * rt;
    return r;
  }
};

/// BCO pair (TRL v1 `bco_pair`, arXiv 2404.04656, no running-mean δ): −logσ(β uc) − logσ(−β ur).
struct bco_pair {
  static constexpr std::string_view name = "bco_pair";
  double beta = 0.1;
  void validate() const { detail::expect_positive(beta, "bco_pair", "beta"); }
  template <class R> FUSEKIT_HOST_DEVICE pair_result<R> operator()(const pair_logps<R>& p) const noexcept {
    const R b = R(beta);
    const R uc = p.policy_chosen - p.ref_chosen, ur = p.policy_rejected - p.ref_rejected;
    pair_result<R> r;
    r.loss = -log_sigmoid(b * uc) - log_sigmoid(-b * ur);
    r.d_chosen = -b * sigmoid(-b * uc);
    r.d_rejected = b * sigmoid(b * ur);
    r.reward_chosen = b * uc;
    r.reward_rejected = b * ur;
    return r;
  }
};

/// APO-zero (TRL `apo_zero`, arXiv 2408.06266 Eq. 7): (1 − σ(β uc)) + σ(β ur).
struct apo_zero {
  static constexpr std::string_view name = "apo_zero";
  double beta = 0.1;
  void validate() const { detail::expect_positive(beta, "apo_zero", "beta"); }
  template <class R> FUSEKIT_HOST_DEVICE pair_result<R> operator()(const pair_logps<R>& p) const noexcept {
    const R b = R(beta);
    const R uc = p.policy_chosen - p.ref_chosen, ur = p.policy_rejected - p.ref_rejected;
    pair_result<R> r;
    r.loss = sigmoid(-b * uc) + sigmoid(b * ur);
    r.d_chosen = -b * detail::dsigmoid(b * uc);
    r.d_rejected = b * detail::dsigmoid(b * ur);
    r.reward_chosen = b * uc;
    r.reward_rejected = b * ur;
    return r;
  }
};

/// APO-down (TRL `apo_down`, Eq. 8): σ(β uc) + (1 − σ(βΔ)).
struct apo_down {
  static constexpr std::string_view name = "apo_down";
  double beta = 0.1;
  void validate() const { detail::expect_positive(beta, "apo_down", "beta"); }
  template <class R> FUSEKIT_HOST_DEVICE pair_result<R> operator()(const pair_logps<R>& p) const noexcept {
    const R b = R(beta);
    const R uc = p.policy_chosen - p.ref_chosen, ur = p.policy_rejected - p.ref_rejected;
    const R z = b * (uc - ur);
    pair_result<R> r;
    r.loss = sigmoid(b * uc) + sigmoid(-z);
    r.d_chosen = b * detail::dsigmoid(b * uc) - b * detail::dsigmoid(z);
    r.d_rejected = b * detail::dsigmoid(z);
    r.reward_chosen = b * uc;
    r.reward_rejected = b * ur;
    return r;
  }
};

/// NCA pair (TRL `nca_pair`, arXiv 2402.05369): a = β uc, b = β ur: −logσ(a) − ½logσ(−a) − ½logσ(−b).
struct nca_pair {
  static constexpr std::string_view name = "nca_pair";
  double beta = 0.1;
  void validate() const { detail::expect_positive(beta, "nca_pair", "beta"); }
  template <class R> FUSEKIT_HOST_DEVICE pair_result<R> operator()(const pair_logps<R>& p) const noexcept {
    const R bt = R(beta);
    const R uc = p.policy_chosen - p.ref_chosen, ur = p.policy_rejected - p.ref_rejected;
    const R a = bt * uc, b = bt * ur;
    pair_result<R> r;
    r.loss = -log_sigmoid(a) - R(0.5) * log_sigmoid(-a) - R(0.5) * log_sigmoid(-b);
    r.d_chosen = bt * (-sigmoid(-a) + R(0.5) * sigmoid(a));
    r.d_rejected = bt * R(0.5) * sigmoid(b);
    r.reward_chosen = a;
    r.reward_rejected = b;
    return r;
  }
};

/// EXO pair (TRL `exo_pair`, arXiv 2402.00856 Eq. 16), z = βΔ, ε ∈ (0,1):
/// σ(z)(logσ(z) − log(1−ε)) + σ(−z)(logσ(−z) − log ε); ∂/∂z = σ(z)σ(−z)(z + log(ε/(1−ε))).
struct exo_pair {
  static constexpr std::string_view name = "exo_pair";
  double beta = 0.1;
  double label_smoothing = 1e-3;
  f_score score{};
  void validate() const {
    score.validate("exo_pair");
    detail::expect_positive(beta, "exo_pair", "beta");
    detail::expect_in(label_smoothing, 0.0, 1.0, true, true, "exo_pair", "label_smoothing");
  }
  template <class R> FUSEKIT_HOST_DEVICE pair_result<R> operator()(const pair_logps<R>& p) const noexcept {
    using std::log;
    using std::log1p;
    const R b = R(beta), eps = R(label_smoothing);
    const R uc = p.policy_chosen - p.ref_chosen, ur = p.policy_rejected - p.ref_rejected;
    const R z = b * (score.value(uc) - score.value(ur));
    const R sp = sigmoid(z), sm = sigmoid(-z);
    pair_result<R> r;
    r.loss = sp * (log_sigmoid(z) - log1p(-eps)) + sm * (log_sigmoid(-z) - log(eps));
    const R dz = sp * sm * (z + log(eps) - log1p(-eps));
    r.d_chosen = b * dz * score.deriv(uc);
    r.d_rejected = -b * dz * score.deriv(ur);
    r.reward_chosen = b * uc;
    r.reward_rejected = b * ur;
    return r;
  }
};

/// DiscoPOP (TRL `discopop`, arXiv 2406.08414 Eq. 5): z = βΔ, m = σ(z/τ):
/// (1−m)(−logσ(z)) + m·e^{−z}; m·e^{−z} is evaluated as exp(logσ(z/τ) − z) so it never forms 0·∞.
struct discopop {
  static constexpr std::string_view name = "discopop";
  double beta = 0.1;
  double tau = 0.05;
  f_score score{};
  void validate() const {
    score.validate("discopop");
    detail::expect_positive(beta, "discopop", "beta");
    detail::expect_positive(tau, "discopop", "tau");
  }
  template <class R> FUSEKIT_HOST_DEVICE pair_result<R> operator()(const pair_logps<R>& p) const noexcept {
    using std::exp;
    const R b = R(beta), t = R(tau);
    const R uc = p.policy_chosen - p.ref_chosen, ur = p.policy_rejected - p.ref_rejected;
    const R z = b * (score.value(uc) - score.value(ur));
    const R m = sigmoid(z / t), one_m = sigmoid(-z / t);
    const R me = exp(log_sigmoid(z / t) - z); // m·e^{−z}
    const R logistic = -log_sigmoid(z);
    pair_result<R> r;
    r.loss = one_m * logistic + me;
    // dm/dz = m(1−m)/τ; d(m e^{−z})/dz = me·((1−m)/τ − 1)
    const R dz = -(m * one_m / t) * logistic - one_m * sigmoid(-z) + me * (one_m / t - R(1));
    r.d_chosen = b * dz * score.deriv(uc);
    r.d_rejected = -b * dz * score.deriv(ur);
    r.reward_chosen = b * uc;
    r.reward_rejected = b * ur;
    return r;
  }
};

/// Hard-label SPPO (TRL `sppo_hard`, arXiv 2405.00675): (uc − 1/(2β))² + (ur + 1/(2β))².
struct sppo_hard {
  static constexpr std::string_view name = "sppo_hard";
  double beta = 0.1;
  void validate() const { detail::expect_positive(beta, "sppo_hard", "beta"); }
  template <class R> FUSEKIT_HOST_DEVICE pair_result<R> operator()(const pair_logps<R>& p) const noexcept {
    const R b = R(beta), t = R(1) / (R(2) * b);
    const R uc = p.policy_chosen - p.ref_chosen, ur = p.policy_rejected - p.ref_rejected;
    pair_result<R> r;
    r.loss = (uc - t) * (uc - t) + (ur + t) * (ur + t);
    r.d_chosen = R(2) * (uc - t);
    r.d_rejected = R(2) * (ur + t);
    r.reward_chosen = b * uc;
    r.reward_rejected = b * ur;
    return r;
  }
};

/// AOT (TRL `aot` / `aot_unpaired`, arXiv 2406.05882): batch-coupled. Paired: sort the policy
/// log-ratios pc−pr and the reference ones rc−rr over the batch, δ_k = sorted_k − sorted_ref_k;
/// unpaired: δ_k = sorted(uc)_k − sorted(ur)_k. Loss per rank −(1−ε)logσ(βδ_k) − ε logσ(−βδ_k); the
/// gradient flows to the pair(s) holding rank k. fusekit::preference_loss does the sorting; called on
/// a single pair (a batch of one) this is cDPO on that pair.
struct aot {
  static constexpr std::string_view name = "aot";
  double beta = 0.1;
  double label_smoothing = 0.0;
  bool unpaired = false; ///< TRL `aot_unpaired` (formerly `aot_pair`)
  void validate() const {
    detail::expect_positive(beta, "aot", "beta");
    detail::expect_in(label_smoothing, 0.0, 1.0, false, false, "aot", "label_smoothing");
  }
  /// Loss of rank k with difference δ, and d/dδ.
  template <class R> FUSEKIT_HOST_DEVICE detail::smoothed_sigmoid<R> at(R delta) const noexcept {
    const auto s = detail::smoothed_sigmoid_loss(R(beta) * delta, R(label_smoothing));
    return {s.value, R(beta) * s.dz};
  }
  template <class R> FUSEKIT_HOST_DEVICE pair_result<R> operator()(const pair_logps<R>& p) const noexcept {
    const R uc = p.policy_chosen - p.ref_chosen, ur = p.policy_rejected - p.ref_rejected;
    const auto s = at(uc - ur);
    pair_result<R> r;
    r.loss = s.value;
    r.d_chosen = s.dz;
    r.d_rejected = -s.dz;
    r.reward_chosen = R(beta) * uc;
    r.reward_rejected = R(beta) * ur;
    return r;
  }
};

/// SFT / NLL term on the chosen completion: token-mean cross-entropy −pc/Lc per pair. In a batch,
/// `batch_token_mean = true` (default) uses −Σpc/ΣLc over the batch as TRL's `sft` loss type, CPO's and
/// ORPO's NLL do (nn.CrossEntropyLoss over all chosen tokens); false averages −pc/Lc over pairs.
/// Rewards are not defined for this term (0).
struct sft {
  static constexpr std::string_view name = "sft";
  bool batch_token_mean = true;
  void validate() const {}
  template <class R> FUSEKIT_HOST_DEVICE pair_result<R> operator()(const pair_logps<R>& p) const noexcept {
    pair_result<R> r;
    r.loss = -p.policy_chosen / p.len_chosen;
    r.d_chosen = -R(1) / p.len_chosen;
    return r;
  }
};

} // namespace fusekit
