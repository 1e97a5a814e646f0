// Preference losses: spec test vectors (losses.md §6.1–6.6, fusechat-algorithms.md T5.1–T5.4),
// float64 finite-difference gradients, extremes, batch API and TRL-style metrics.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <fusekit/loss/preference.hpp>
#include <fusekit/loss/preference_batch.hpp>

namespace fk = fusekit;
using P = fk::pair_logps<double>;

namespace {
P pair(double pc, double pr, double rc, double rr, double lc = 1, double lr = 1) {
  P p;
  p.policy_chosen = pc;
  p.policy_rejected = pr;
  p.ref_chosen = rc;
  p.ref_rejected = rr;
  p.len_chosen = lc;
  p.len_rejected = lr;
  return p;
}
P triple(double ps, double rs, double pt, double rt, double pl, double rl) {
  P p = pair(pt, pl, rt, rl);
  p.policy_source_chosen = ps;
  p.ref_source_chosen = rs;
  return p;
}
// |a-b| <= atol + rtol*|b|
void close(double a, double b, double atol = 1e-9, double rtol = 1e-8) {
  BOOST_TEST(std::abs(a - b) <= atol + rtol * std::abs(b), a << " vs " << b);
}

template <class L> void check_fd(const L& loss, const P& p0, double tol = 1e-6) {
  const auto r = loss(p0);
  BOOST_TEST_REQUIRE(std::isfinite(r.loss));
  double P::*fields[] = {&P::policy_chosen, &P::policy_rejected, &P::policy_source_chosen};
  const double grads[] = {r.d_chosen, r.d_rejected, r.d_source_chosen};
  for (int k = 0; k < 3; ++k) {
    const double h = 1e-6 * std::max(1.0, std::abs(p0.*fields[k]));
    P a = p0, b = p0;
    a.*fields[k] += h;
    b.*fields[k] -= h;
    const double fd = (loss(a).loss - loss(b).loss) / (2 * h);
    BOOST_TEST(std::abs(fd - grads[k]) <= tol * std::max(1.0, std::abs(fd)),
               L::name << " field " << k << ": analytic " << grads[k] << " fd " << fd);
  }
}
} // namespace

BOOST_AUTO_TEST_SUITE(preference_vectors)

BOOST_AUTO_TEST_CASE(dpo_sigmoid_6_1) {
  const auto r1 = fk::dpo{.beta = 0.1}(pair(-12.5, -15.0, -13.0, -14.0));
  close(r1.loss, 0.6209570478);
  close(r1.reward_chosen, 0.05);
  close(r1.reward_rejected, -0.1);
  close(r1.d_chosen, -0.04625701547);
  close(r1.d_rejected, 0.04625701547);
  const auto r2 = fk::dpo{.beta = 0.5}(pair(-80, -60, -70, -75));
  close(r2.loss, 12.50000373);
  close(r2.reward_chosen, -5.0);
  close(r2.reward_rejected, 7.5);
  close(r2.d_chosen, -0.4999981367);
  close(r2.d_rejected, 0.4999981367);
  // cDPO and robust with eps = 0.1 on vector 1
  const auto c = fk::dpo{.beta = 0.1, .label_smoothing = 0.1}(pair(-12.5, -15.0, -13.0, -14.0));
  close(c.loss, 0.6359570478);
  close(c.d_chosen, -0.03625701547);
  const auto rb = fk::dpo{.beta = 0.1, .label_smoothing = 0.1, .robust = true}(pair(-12.5, -15.0, -13.0, -14.0));
  close(rb.loss, 0.6022070478);
  close(rb.d_chosen, -0.05875701547);
}

BOOST_AUTO_TEST_CASE(dpo_batch_of_vectors_1_2) {
  // losses.md §6: vectors 1 and 2 as one batch need a single beta, so use per-pair beta-scaled inputs:
  // the batch example in the spec combines pair 1 (beta 0.1) and pair 2 (beta 0.5); check the mean rule.
  const double l1 = fk::dpo{.beta = 0.1}(pair(-12.5, -15.0, -13.0, -14.0)).loss;
  const double l2 = fk::dpo{.beta = 0.5}(pair(-80, -60, -70, -75)).loss;
  close((l1 + l2) / 2, 6.560480389);
  close(fk::dpo{.beta = 0.1}(pair(-12.5, -15.0, -13.0, -14.0)).d_chosen / 2, -0.02312850774);
  close(fk::dpo{.beta = 0.5}(pair(-80, -60, -70, -75)).d_chosen / 2, -0.2499990684);
}

BOOST_AUTO_TEST_CASE(ipo_6_2) {
  const auto r1 = fk::ipo{.beta = 0.1}(pair(-12.5, -15.0, -13.0, -14.0, 5, 4));
  close(r1.loss, 21.6225);
  close(r1.d_chosen, -1.86);
  close(r1.d_rejected, 2.325);
  close(r1.reward_chosen, 0.05);
  close(r1.reward_rejected, -0.1);
  const auto r2 = fk::ipo{.beta = 1.0}(pair(-30, -45, -32, -40, 10, 20));
  close(r2.loss, 0.0025);
  close(r2.d_chosen, -0.01);
  close(r2.d_rejected, 0.005);
  close(r2.reward_chosen, 2.0);
  close(r2.reward_rejected, -5.0);
  const auto u1 = fk::ipo{.beta = 0.1, .length_normalize = false}(pair(-12.5, -15.0, -13.0, -14.0, 5, 4));
  close(u1.loss, 12.25);
  close(u1.d_chosen, -7);
  close(u1.d_rejected, 7);
  const auto u2 = fk::ipo{.beta = 1.0, .length_normalize = false}(pair(-30, -45, -32, -40, 10, 20));
  close(u2.loss, 42.25);
  close(u2.d_chosen, 13);
  close(u2.d_rejected, -13);
}

BOOST_AUTO_TEST_CASE(hinge_6_3) {
  const auto r1 = fk::hinge{.beta = 0.1}(pair(-12.5, -15.0, -13.0, -14.0));
  close(r1.loss, 0.85);
  close(r1.d_chosen, -0.1);
  close(r1.d_rejected, 0.1);
  const auto r2 = fk::hinge{.beta = 0.5}(pair(-10, -20, -12, -15));
  close(r2.loss, 0);
  close(r2.d_chosen, 0);
  close(r2.d_rejected, 0);
  close(r2.reward_chosen, 1.0);
  close(r2.reward_rejected, -2.5);
}

BOOST_AUTO_TEST_CASE(ln_dpo_6_4) {
  const auto r1 = fk::ln_dpo{.beta = 10}(pair(-12.5, -15.0, -13.0, -14.0, 5, 4));
  close(r1.loss, 0.02975041827);
  close(r1.d_chosen, -0.0586244615);
  close(r1.d_rejected, 0.07328057688);
  close(r1.reward_chosen, 5); // TRL convention: beta * summed log-ratio
  close(r1.reward_rejected, -10);
  const auto n1 = fk::ln_dpo{.beta = 10, .normalized_rewards = true}(pair(-12.5, -15.0, -13.0, -14.0, 5, 4));
  close(n1.reward_chosen, 1.0);
  close(n1.reward_rejected, -2.5);
  const auto r2 = fk::ln_dpo{.beta = 10}(pair(-200, -150, -190, -160, 100, 50));
  close(r2.loss, 3.048587352);
  close(r2.d_chosen, -0.09525741268);
  close(r2.d_rejected, 0.1905148254);
  close(r2.reward_chosen, -100);
  close(r2.reward_rejected, 100);
  const auto n2 = fk::ln_dpo{.beta = 10, .normalized_rewards = true}(pair(-200, -150, -190, -160, 100, 50));
  close(n2.reward_chosen, -1.0);
  close(n2.reward_rejected, 2.0);
}

BOOST_AUTO_TEST_CASE(simpo_6_5) {
  const auto s1 = fk::simpo::from_gamma_beta_ratio(2.0, 0.5);
  BOOST_TEST(s1.gamma == 1.0);
  const auto r1 = s1(pair(-12.5, -15.0, 0, 0, 5, 4));
  close(r1.loss, 0.201413278);
  close(r1.reward_chosen, -5.0);
  close(r1.reward_rejected, -7.5);
  close(r1.d_chosen, -0.07297020952);
  close(r1.d_rejected, 0.0912127619);
  close(r1.d_chosen * 5, -0.3648510476); // w.r.t. the average log-prob
  const auto r2 = fk::simpo{.beta = 10.0, .gamma = 3.0}(pair(-60, -40, 0, 0, 40, 20));
  close(r2.loss, 0.126928011);
  close(r2.reward_chosen, -15.0);
  close(r2.reward_rejected, -20.0);
  close(r2.d_chosen, -0.02980073051);
  close(r2.d_rejected, 0.05960146101);
  close(r2.d_chosen * 40, -1.19202922);
  // simpo ignores reference log-probs
  close(r2.loss, fk::simpo{.beta = 10.0, .gamma = 3.0}(pair(-60, -40, -7, 3, 40, 20)).loss);
}

BOOST_AUTO_TEST_CASE(wrpo_6_6_and_t5_3) {
  const auto r1 = fk::wrpo{.beta = 0.01, .alpha = 0.1}(triple(-300, -350, -200, -205, -250, -240));
  close(r1.loss, 0.6003927939);
  close(r1.reward_source_chosen, 0.5);
  close(r1.reward_target_chosen, 0.05);
  close(r1.reward_chosen, 0.095);
  close(r1.reward_rejected, -0.1);
  close(r1.d_source_chosen, -0.0004514038914);
  close(r1.d_chosen, -0.004062635023);
  close(r1.d_rejected, 0.004514038914);
  const fk::wrpo_alpha_schedule sch{.alpha_end = 0.5, .total_steps = 1000};
  close(sch(300), 0.15);
  const auto r2 = fk::wrpo{.beta = 0.1, .alpha = sch(300)}(triple(-120, -130, -90, -88, -100, -95));
  close(r2.loss, 0.4816748744);
  close(r2.reward_source_chosen, 1.0);
  close(r2.reward_target_chosen, -0.2);
  close(r2.reward_chosen, -0.02);
  close(r2.reward_rejected, -0.5);
  close(r2.d_source_chosen, -0.005733781878);
  close(r2.d_chosen, -0.03249143064);
  close(r2.d_rejected, 0.03822521252);
  // T5.3: rho_ws = 3, rho_wt = 1, rho_l = -1 (5e-7 tolerance: the spec prints 6 digits)
  const P t = triple(-30, -33, -10, -11, -15, -14);
  const auto a = fk::wrpo{.beta = 0.01, .alpha = 0.1}(t);
  close(a.loss, 0.682208, 5e-7, 0);
  close(a.d_source_chosen, -0.000495, 5e-7, 0);
  close(a.d_chosen, -0.004451, 5e-7, 0);
  close(a.d_rejected, 0.004945, 5e-7, 0);
  close(fk::wrpo{.beta = 0.01, .alpha = 0.0}(t).loss, 0.683197, 5e-7, 0);
  const auto c = fk::wrpo{.beta = 0.1, .alpha = 0.5}(t);
  close(c.loss, 0.554355, 5e-7, 0);
  close(c.d_source_chosen, -0.021278, 5e-7, 0);
  close(c.d_chosen, -0.021278, 5e-7, 0);
  close(c.d_rejected, 0.042556, 5e-7, 0);
  close(fk::wrpo{.beta = 0.1, .alpha = 1.0}(t).loss, 0.513015, 5e-7, 0);
  // sanity: alpha = 0 is DPO on (y_wt, y_l), alpha = 1 DPO on (y_ws, y_l)
  close(fk::wrpo{.beta = 0.1, .alpha = 0.0}(t).loss, fk::dpo{.beta = 0.1}(pair(-10, -15, -11, -14)).loss, 1e-12);
  close(fk::wrpo{.beta = 0.1, .alpha = 1.0}(t).loss, fk::dpo{.beta = 0.1}(pair(-30, -15, -33, -14)).loss, 1e-12);
}

BOOST_AUTO_TEST_CASE(t5_1_t5_2) {
  const auto d = fk::dpo{.beta = 0.1}(pair(-10, -15, -12, -14));
  close(d.loss, 0.554355, 5e-7, 0);
  close(d.d_chosen, -0.042556, 5e-7, 0);
  close(d.d_rejected, 0.042556, 5e-7, 0);
  close(fk::dpo{.beta = 0.1, .label_smoothing = 0.1}(pair(-10, -15, -12, -14)).loss, 0.584355, 5e-7, 0);
  const auto l = fk::ln_dpo{.beta = 10}(pair(-10, -15, -12, -14, 20, 10));
  close(l.loss, 0.126928, 5e-7, 0);
  close(l.d_chosen, -0.059601, 5e-7, 0);
  close(l.d_rejected, 0.119203, 5e-7, 0);
}

BOOST_AUTO_TEST_CASE(alpha_schedule_t5_4) {
  const fk::wrpo_alpha_schedule s{.alpha_end = 0.1, .total_steps = 100};
  s.validate();
  close(s(0), 0);
  close(s(1), 0.001);
  close(s(50), 0.05);
  close(s(99), 0.099);
  close(s(100), 0.1);
  close(s(150), 0.1);
  close(s(-3), 0);
  BOOST_TEST(fk::wrpo_alpha_schedule::steps_for(6000, 8, 1.0) == 750);
  BOOST_TEST(fk::wrpo_alpha_schedule::steps_for(6001, 8, 1.5) == 1125);
  const fk::wrpo_alpha_schedule fixed{.alpha_end = 0.3, .total_steps = 10, .dynamic = false};
  close(fixed(0), 0.3);
  BOOST_CHECK_THROW((fk::wrpo_alpha_schedule{.alpha_end = 1.5}.validate()), fk::error);
  BOOST_CHECK_THROW((fk::wrpo_alpha_schedule{.alpha_end = 0.1, .total_steps = 0}.validate()), fk::error);
}

BOOST_AUTO_TEST_CASE(log_sigmoid_extremes_6_9) {
  close(fk::log_sigmoid(-100.0), -100.0, 0, 1e-15);
  close(fk::log_sigmoid(100.0), -3.720075976e-44, 0, 1e-9);
  BOOST_TEST(fk::log_sigmoid(-800.0) == -800.0);
  BOOST_TEST(fk::softplus(800.0) == 800.0);
  BOOST_TEST(fk::sigmoid(-800.0) >= 0.0);
  BOOST_TEST(fk::sigmoid(800.0) == 1.0);
  BOOST_TEST(std::isfinite(fk::log_sigmoid(-800.0f)));
  // log1mexp on both sides of -ln 2 against a long-double reference
  for (double x : {-1e-20, -1e-10, -0.1, -0.6931, -0.6932, -1.0, -10.0, -50.0, -800.0}) {
    const long double xl = x;
    const long double ref = x < -0.5 ? std::log1p(-std::exp(xl)) : std::log(-std::expm1(xl));
    close(fk::log1mexp(x), static_cast<double>(ref), 0, 1e-14);
  }
  BOOST_TEST(std::isinf(fk::log1mexp(0.0)));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(preference_gradients)

BOOST_AUTO_TEST_CASE(finite_differences_every_loss) {
  std::mt19937_64 rng(1234);
  std::uniform_real_distribution<double> lp(-80.0, -1.0), len(1.0, 60.0), small(-3.0, 3.0);
  for (int trial = 0; trial < 40; ++trial) {
    P p = pair(lp(rng), lp(rng), lp(rng), lp(rng), std::floor(len(rng)), std::floor(len(rng)));
    p.policy_source_chosen = lp(rng);
    p.ref_source_chosen = lp(rng);
    // keep log-ratios moderate so the losses are not saturated (FD is then informative)
    p.ref_chosen = p.policy_chosen - small(rng);
    p.ref_rejected = p.policy_rejected - small(rng);
    p.ref_source_chosen = p.policy_source_chosen - small(rng);
    check_fd(fk::dpo{.beta = 0.3}, p);
    check_fd(fk::dpo{.beta = 0.3, .label_smoothing = 0.2}, p);
    check_fd(fk::dpo{.beta = 0.3, .label_smoothing = 0.2, .robust = true}, p);
    const double dz = 1.0 - 0.3 * ((p.policy_chosen - p.ref_chosen) - (p.policy_rejected - p.ref_rejected));
    if (std::abs(dz) > 1e-3)
      check_fd(fk::hinge{.beta = 0.3}, p);
    check_fd(fk::ipo{.beta = 0.2}, p);
    check_fd(fk::ipo{.beta = 0.2, .length_normalize = false}, p);
    check_fd(fk::ln_dpo{.beta = 5, .label_smoothing = 0.05}, p);
    check_fd(fk::simpo{.beta = 2.0, .gamma = 0.7, .label_smoothing = 0.1}, p);
    check_fd(fk::orpo{.beta = 0.5}, p);
    check_fd(fk::wrpo{.beta = 0.5, .alpha = 0.3, .label_smoothing = 0.1}, p);
    check_fd(fk::bco_pair{.beta = 0.4}, p);
    check_fd(fk::apo_zero{.beta = 0.4}, p);
    check_fd(fk::apo_down{.beta = 0.4}, p);
    check_fd(fk::nca_pair{.beta = 0.4}, p);
    check_fd(fk::exo_pair{.beta = 0.4, .label_smoothing = 1e-3}, p);
    check_fd(fk::discopop{.beta = 0.4, .tau = 0.5}, p);
    check_fd(fk::sppo_hard{.beta = 0.4}, p);
    check_fd(fk::sft{}, p);
    check_fd(fk::combine(fk::weighted_term{0.8, fk::dpo{}}, fk::weighted_term{0.2, fk::bco_pair{}},
                         fk::weighted_term{1.0, fk::sft{}}),
             p);
  }
}

BOOST_AUTO_TEST_CASE(f_divergence_scores) {
  // TRL v1 scores: forward_kl 1 - e^-u, js log 2 + logsig(u), alpha (e^{(a-1)u} - 1)/(a-1)
  const P p = pair(-12.5, -15.0, -13.0, -14.0, 5, 4); // uc = 0.5, ur = -1
  const double uc = 0.5, ur = -1.0;
  const fk::f_score fwd{.type = fk::f_divergence::forward_kl}, js{.type = fk::f_divergence::js_divergence},
      al{.type = fk::f_divergence::alpha_divergence, .alpha = 0.5},
      al1{.type = fk::f_divergence::alpha_divergence, .alpha = 1.0};
  close(fk::dpo{.beta = 0.1, .score = fwd}(p).loss, fk::softplus(-0.1 * ((1 - std::exp(-uc)) - (1 - std::exp(-ur)))));
  close(fk::dpo{.beta = 0.1, .score = js}(p).loss, fk::softplus(-0.1 * (fk::log_sigmoid(uc) - fk::log_sigmoid(ur))));
  close(fk::dpo{.beta = 0.1, .score = al}(p).loss,
        fk::softplus(-0.1 * ((std::exp(-0.5 * uc) - 1) / -0.5 - (std::exp(-0.5 * ur) - 1) / -0.5)));
  close(fk::dpo{.beta = 0.1, .score = al1}(p).loss, fk::dpo{.beta = 0.1}(p).loss, 1e-15); // alpha = 1 falls back
  const double rw = fk::dpo{.beta = 0.1, .score = js}(p).reward_chosen;
  close(rw, 0.1 * uc); // rewards stay beta * u
  // finite differences for every loss that takes a score, every score
  std::mt19937_64 rng(77);
  std::uniform_real_distribution<double> lp(-40.0, -2.0), d(-2.0, 2.0);
  for (int trial = 0; trial < 10; ++trial) {
    P q = pair(lp(rng), lp(rng), 0, 0, 7, 3);
    q.ref_chosen = q.policy_chosen - d(rng);
    q.ref_rejected = q.policy_rejected - d(rng);
    for (const auto& sc : {fwd, js, al, fk::f_score{.type = fk::f_divergence::alpha_divergence, .alpha = 2.5}}) {
      check_fd(fk::dpo{.beta = 0.3, .score = sc}, q);
      check_fd(fk::dpo{.beta = 0.3, .label_smoothing = 0.1, .robust = true, .score = sc}, q);
      check_fd(fk::ipo{.beta = 0.2, .score = sc}, q);
      check_fd(fk::ln_dpo{.beta = 4, .score = sc}, q);
      check_fd(fk::exo_pair{.beta = 0.4, .score = sc}, q);
      check_fd(fk::discopop{.beta = 0.4, .tau = 0.5, .score = sc}, q);
      const fk::hinge h{.beta = 0.3, .score = sc};
      if (std::abs(1 - 0.3 * (sc.value(q.policy_chosen - q.ref_chosen) -
                              sc.value(q.policy_rejected - q.ref_rejected))) > 1e-3)
        check_fd(h, q);
    }
  }
}

BOOST_AUTO_TEST_CASE(extreme_inputs_stay_finite) {
  // huge log-ratio differences in both directions: finite losses and gradients everywhere
  for (double d : {-1e4, -800.0, 800.0, 1e4}) {
    P p = pair(-10.0 + d, -10.0, -10.0, -10.0, 3, 4);
    p.policy_source_chosen = p.policy_chosen;
    auto check = [&](const auto& loss) {
      const auto r = loss(p);
      BOOST_TEST(std::isfinite(r.loss), std::remove_cvref_t<decltype(loss)>::name << " d=" << d);
      BOOST_TEST(std::isfinite(r.d_chosen), std::remove_cvref_t<decltype(loss)>::name << " d=" << d);
      BOOST_TEST(std::isfinite(r.d_rejected), std::remove_cvref_t<decltype(loss)>::name << " d=" << d);
    };
    check(fk::dpo{});
    check(fk::dpo{.label_smoothing = 0.1});
    check(fk::dpo{.label_smoothing = 0.1, .robust = true});
    check(fk::hinge{});
    check(fk::ipo{});
    check(fk::ln_dpo{});
    check(fk::simpo{});
    check(fk::wrpo{});
    check(fk::bco_pair{});
    check(fk::apo_zero{});
    check(fk::apo_down{});
    check(fk::nca_pair{});
    check(fk::exo_pair{});
    check(fk::discopop{});
    check(fk::sppo_hard{});
  }
  // -log sigmoid(-800) is exactly 800
  close(fk::dpo{.beta = 1.0}(pair(-800, 0, 0, 0)).loss, 800.0, 0, 1e-15);
  // ORPO at probability 1 (avg logp = 0) is clamped, not NaN/inf
  const auto o = fk::orpo{}(pair(0.0, -5.0, 0, 0, 3, 3));
  BOOST_TEST(std::isfinite(o.loss));
  BOOST_TEST(std::isfinite(o.d_chosen));
  // ORPO against a direct long-double evaluation
  const auto o2 = fk::orpo{.beta = 0.1}(pair(-6.0, -12.0, 0, 0, 4, 3));
  const long double ac = -1.5L, ar = -4.0L;
  const long double lo = (ac - ar) - (std::log(-std::expm1(ac)) - std::log(-std::expm1(ar)));
  close(o2.loss, static_cast<double>(0.1L * std::log1p(std::exp(-lo))), 0, 1e-13);
}

BOOST_AUTO_TEST_CASE(parameter_validation) {
  BOOST_CHECK_THROW(fk::dpo{.beta = 0}.validate(), fk::error);
  BOOST_CHECK_THROW((fk::dpo{.beta = 0.1, .label_smoothing = 0.5, .robust = true}.validate()), fk::error);
  BOOST_CHECK_THROW(fk::exo_pair{.label_smoothing = 0}.validate(), fk::error);
  BOOST_CHECK_THROW(fk::wrpo{.alpha = -0.1}.validate(), fk::error);
  BOOST_CHECK_THROW(fk::discopop{.tau = 0}.validate(), fk::error);
  BOOST_CHECK_NO_THROW(fk::exo_pair{}.validate());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(preference_batch_api)

BOOST_AUTO_TEST_CASE(dpo_batch_metrics_and_gradients) {
  // pairs 1 and 2 of 6.1 under one beta (0.1)
  std::vector<double> pc{-12.5, -80}, pr{-15, -60}, rc{-13, -70}, rr{-14, -75};
  std::vector<double> gc(2), gr(2), losses(2), rwc(2), rwr(2);
  fk::preference_batch<double> in{.policy_chosen = fk::host_view(pc.data(), 2),
                                  .policy_rejected = fk::host_view(pr.data(), 2),
                                  .ref_chosen = fk::host_view(rc.data(), 2),
                                  .ref_rejected = fk::host_view(rr.data(), 2)};
  fk::preference_outputs<double> out{.d_policy_chosen = fk::host_view(gc.data(), 2),
                                     .d_policy_rejected = fk::host_view(gr.data(), 2),
                                     .losses = fk::host_view(losses.data(), 2),
                                     .rewards_chosen = fk::host_view(rwc.data(), 2),
                                     .rewards_rejected = fk::host_view(rwr.data(), 2)};
  const fk::dpo loss{.beta = 0.1};
  const auto m = fk::preference_loss(fk::exec::seq, loss, in, out);
  const auto a = loss(pair(-12.5, -15, -13, -14)), b = loss(pair(-80, -60, -70, -75));
  close(m.loss, (a.loss + b.loss) / 2);
  close(gc[0], a.d_chosen / 2);
  close(gc[1], b.d_chosen / 2);
  close(gr[1], b.d_rejected / 2);
  close(losses[0], a.loss);
  close(rwc[1], -1.0);
  close(rwr[1], 1.5);
  close(m.rewards_chosen, (0.05 - 1.0) / 2);
  close(m.rewards_rejected, (-0.1 + 1.5) / 2);
  close(m.rewards_accuracies, 0.5);
  close(m.rewards_margins, ((0.05 + 0.1) + (-1.0 - 1.5)) / 2);
  close(m.logps_chosen, (-12.5 - 80) / 2.0);
  close(m.logps_rejected, (-15 - 60) / 2.0);
  BOOST_TEST(m.pairs == 2);
  // par gives the same numbers
  std::vector<double> gc2(2);
  fk::preference_outputs<double> out2{.d_policy_chosen = fk::host_view(gc2.data(), 2)};
  const auto m2 = fk::preference_loss(fk::exec::par, loss, in, out2);
  BOOST_TEST(m2.loss == m.loss);
  BOOST_TEST(gc2[0] == gc[0]);
}

BOOST_AUTO_TEST_CASE(wrpo_batch_metrics) {
  std::vector<double> ps{-300, -120}, rs{-350, -130}, pt{-200, -90}, rt{-205, -88}, pl{-250, -100}, rl{-240, -95};
  std::vector<double> gs(2), gt(2), gl(2);
  fk::preference_batch<double> in{.policy_chosen = fk::host_view(pt.data(), 2),
                                  .policy_rejected = fk::host_view(pl.data(), 2),
                                  .ref_chosen = fk::host_view(rt.data(), 2),
                                  .ref_rejected = fk::host_view(rl.data(), 2),
                                  .policy_source_chosen = fk::host_view(ps.data(), 2),
                                  .ref_source_chosen = fk::host_view(rs.data(), 2)};
  fk::preference_outputs<double> out{.d_policy_chosen = fk::host_view(gt.data(), 2),
                                     .d_policy_rejected = fk::host_view(gl.data(), 2),
                                     .d_policy_source_chosen = fk::host_view(gs.data(), 2)};
  const fk::wrpo loss{.beta = 0.01, .alpha = 0.1};
  const auto m = fk::preference_loss(fk::exec::seq, loss, in, out);
  const auto r0 = loss(triple(-300, -350, -200, -205, -250, -240));
  const auto r1 = loss(triple(-120, -130, -90, -88, -100, -95));
  close(m.loss, (r0.loss + r1.loss) / 2);
  close(gs[0], -0.0004514038914 / 2);
  close(m.rewards_source_chosen, (0.5 + 0.1) / 2);
  close(m.rewards_target_chosen, (0.05 - 0.02) / 2);
  // source: 0.5 > -0.1 and 0.1 > -0.05 -> 1; pivot: 0.05 > -0.1, -0.02 > -0.05 -> 1
  close(m.rewards_source_accuracies, 1.0);
  close(m.rewards_pivot_accuracies, 1.0);
  close(m.logps_source_chosen, -210);
  // missing source inputs is an error that names the field
  fk::preference_batch<double> bad = in;
  bad.policy_source_chosen = {};
  BOOST_CHECK_EXCEPTION(fk::preference_loss(fk::exec::seq, loss, bad), fk::error, [](const fk::error& e) {
    return std::string(e.what()).find("policy_source_chosen") != std::string::npos;
  });
}

BOOST_AUTO_TEST_CASE(combined_with_batch_token_mean_sft) {
  std::vector<double> pc{-12, -30, -7}, pr{-15, -25, -9}, rc{-13, -29, -8}, rr{-14, -27, -8}, lc{4, 10, 2}, lr{5, 9, 3};
  std::vector<double> gc(3), gr(3);
  fk::preference_batch<double> in{.policy_chosen = fk::host_view(pc.data(), 3),
                                  .policy_rejected = fk::host_view(pr.data(), 3),
                                  .ref_chosen = fk::host_view(rc.data(), 3),
                                  .ref_rejected = fk::host_view(rr.data(), 3),
                                  .len_chosen = fk::host_view(lc.data(), 3),
                                  .len_rejected = fk::host_view(lr.data(), 3)};
  fk::preference_outputs<double> out{.d_policy_chosen = fk::host_view(gc.data(), 3),
                                     .d_policy_rejected = fk::host_view(gr.data(), 3)};
  const auto loss = fk::combine(fk::weighted_term{0.8, fk::dpo{}}, fk::weighted_term{0.2, fk::bco_pair{}},
                                fk::weighted_term{1.0, fk::sft{}});
  const auto m = fk::preference_loss(fk::exec::seq, loss, in, out);
  double expect = 0;
  for (int i = 0; i < 3; ++i) {
    const P p = pair(pc[i], pr[i], rc[i], rr[i], lc[i], lr[i]);
    expect += (0.8 * fk::dpo{}(p).loss + 0.2 * fk::bco_pair{}(p).loss) / 3;
  }
  expect += -(-12 - 30 - 7) / 16.0; // token mean over all chosen tokens of the batch
  close(m.loss, expect);
  // batch-level finite differences of the mean loss w.r.t. each pc/pr
  for (int i = 0; i < 3; ++i) {
    for (auto* v : {&pc, &pr}) {
      const double h = 1e-5, x0 = (*v)[i];
      (*v)[i] = x0 + h;
      const double lp = fk::preference_loss(fk::exec::seq, loss, in).loss;
      (*v)[i] = x0 - h;
      const double lm = fk::preference_loss(fk::exec::seq, loss, in).loss;
      (*v)[i] = x0;
      const double g = v == &pc ? gc[i] : gr[i];
      close(g, (lp - lm) / (2 * h), 1e-8, 1e-6);
    }
  }
}

BOOST_AUTO_TEST_CASE(aot_batch_coupled_finite_differences) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> u(-60.0, -5.0), d(-3.0, 3.0);
  const int B = 6;
  std::vector<double> pc(B), pr(B), rc(B), rr(B), gc(B), gr(B);
  for (int i = 0; i < B; ++i) {
    pc[i] = u(rng);
    pr[i] = u(rng);
    rc[i] = pc[i] + d(rng);
    rr[i] = pr[i] + d(rng);
  }
  fk::preference_batch<double> in{.policy_chosen = fk::host_view(static_cast<const double*>(pc.data()), B),
                                  .policy_rejected = fk::host_view(static_cast<const double*>(pr.data()), B),
                                  .ref_chosen = fk::host_view(static_cast<const double*>(rc.data()), B),
                                  .ref_rejected = fk::host_view(static_cast<const double*>(rr.data()), B)};
  for (bool unpaired : {false, true}) {
    const fk::aot loss{.beta = 0.4, .label_smoothing = 0.1, .unpaired = unpaired};
    fk::preference_outputs<double> out{.d_policy_chosen = fk::host_view(gc.data(), B),
                                       .d_policy_rejected = fk::host_view(gr.data(), B)};
    const double l0 = fk::preference_loss(fk::exec::seq, loss, in, out).loss;
    BOOST_TEST(std::isfinite(l0));
    for (int i = 0; i < B; ++i)
      for (auto* v : {&pc, &pr}) {
        const double h = 1e-6, x0 = (*v)[i];
        (*v)[i] = x0 + h;
        const double lp = fk::preference_loss(fk::exec::seq, loss, in).loss;
        (*v)[i] = x0 - h;
        const double lm = fk::preference_loss(fk::exec::seq, loss, in).loss;
        (*v)[i] = x0;
        close(v == &pc ? gc[i] : gr[i], (lp - lm) / (2 * h), 1e-8, 1e-6);
      }
  }
  // a batch of one is conservative DPO on that pair
  fk::preference_batch<double> one = in;
  one.policy_chosen = fk::host_view(static_cast<const double*>(pc.data()), 1);
  one.policy_rejected = fk::host_view(static_cast<const double*>(pr.data()), 1);
  one.ref_chosen = fk::host_view(static_cast<const double*>(rc.data()), 1);
  one.ref_rejected = fk::host_view(static_cast<const double*>(rr.data()), 1);
  close(fk::preference_loss(fk::exec::seq, fk::aot{.beta = 0.4, .label_smoothing = 0.1}, one).loss,
        fk::dpo{.beta = 0.4, .label_smoothing = 0.1}(pair(pc[0], pr[0], rc[0], rr[0])).loss, 1e-14);
}

BOOST_AUTO_TEST_CASE(batch_errors_and_zero_length) {
  std::vector<double> pc{-1, -2}, pr{-3, std::numeric_limits<double>::quiet_NaN()}, lc{0, 3}, lr{2, 0};
  fk::preference_batch<double> in{.policy_chosen = fk::host_view(pc.data(), 2),
                                  .policy_rejected = fk::host_view(pr.data(), 2)};
  BOOST_CHECK_EXCEPTION(fk::preference_loss(fk::exec::seq, fk::dpo{}, in), fk::error, [](const fk::error& e) {
    return std::string(e.what()).find("policy_rejected[1]") != std::string::npos;
  });
  pr[1] = -4;
  // ln_dpo without lengths: clear error
  BOOST_CHECK_THROW(fk::preference_loss(fk::exec::seq, fk::ln_dpo{}, in), fk::error);
  // zero-length responses are clamped to 1 token (TRL clamp(min=1)): finite
  in.len_chosen = fk::host_view(lc.data(), 2);
  in.len_rejected = fk::host_view(lr.data(), 2);
  const auto m = fk::preference_loss(fk::exec::seq, fk::ln_dpo{}, in);
  BOOST_TEST(std::isfinite(m.loss));
  close(m.loss, (fk::ln_dpo{}(pair(-1, -3, 0, 0, 1, 2)).loss + fk::ln_dpo{}(pair(-2, -4, 0, 0, 3, 1)).loss) / 2);
  // shape mismatch and empty batch
  std::vector<double> three(3);
  in.ref_chosen = fk::host_view(three.data(), 3);
  in.ref_rejected = fk::host_view(three.data(), 3);
  BOOST_CHECK_THROW(fk::preference_loss(fk::exec::seq, fk::dpo{}, in), fk::error);
  fk::preference_batch<double> empty{};
  BOOST_CHECK_THROW(fk::preference_loss(fk::exec::seq, fk::dpo{}, empty), fk::error);
}

BOOST_AUTO_TEST_SUITE_END()
