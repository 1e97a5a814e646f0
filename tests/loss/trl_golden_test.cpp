// Compares every preference loss fusekit shares with TRL against golden values saved by
// tests/loss/golden/make_trl_golden.py (TRL 0.28.0 + torch autograd in float64): mean loss, per-pair
// losses, gradients of the mean w.r.t. the summed policy log-probs, and logged rewards.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <fusekit/loss/preference.hpp>
#include <fusekit/loss/preference_batch.hpp>

namespace fk = fusekit;

namespace {

nlohmann::json load() {
  std::ifstream f(std::string(FUSEKIT_TEST_DATA_DIR) + "/loss/trl_golden.json");
  BOOST_TEST_REQUIRE(f.good());
  return nlohmann::json::parse(f);
}

// TRL computes in float64 for every loss except ORPO, whose odds_ratio_loss upcasts with .float()
// (i.e. casts our float64 inputs to float32): that case gets an fp32 tolerance.
double g_atol = 1e-10, g_rtol = 1e-9;
void close(double a, double b, const std::string& what) {
  BOOST_TEST(std::abs(a - b) <= g_atol + g_rtol * std::abs(b), what << ": " << a << " vs TRL " << b);
}

template <class L> void compare(const L& loss, const nlohmann::json& c, bool per_pair_losses = true) {
  const auto& in = c["inputs"];
  const auto& ex = c["expected"];
  auto vec = [&](const char* k) { return in[k].get<std::vector<double>>(); };
  auto pc = vec("policy_chosen"), pr = vec("policy_rejected"), rc = vec("ref_chosen"), rr = vec("ref_rejected"),
       lc = vec("len_chosen"), lr = vec("len_rejected");
  const auto B = static_cast<std::int64_t>(pc.size());
  std::vector<double> gc(B), gr(B), losses(B), rwc(B), rwr(B);
  fk::preference_batch<double> b{.policy_chosen = fk::host_view(static_cast<const double*>(pc.data()), B),
                                 .policy_rejected = fk::host_view(static_cast<const double*>(pr.data()), B),
                                 .ref_chosen = fk::host_view(static_cast<const double*>(rc.data()), B),
                                 .ref_rejected = fk::host_view(static_cast<const double*>(rr.data()), B),
                                 .len_chosen = fk::host_view(static_cast<const double*>(lc.data()), B),
                                 .len_rejected = fk::host_view(static_cast<const double*>(lr.data()), B)};
  fk::preference_outputs<double> o{.d_policy_chosen = fk::host_view(gc.data(), B),
                                   .d_policy_rejected = fk::host_view(gr.data(), B),
                                   .losses = fk::host_view(losses.data(), B),
                                   .rewards_chosen = fk::host_view(rwc.data(), B),
                                   .rewards_rejected = fk::host_view(rwr.data(), B)};
  const auto m = fk::preference_loss(fk::exec::seq, loss, b, o);
  const std::string tag = c["loss_type"].get<std::string>() + " " + c["params"].dump() + " B=" + std::to_string(B);
  close(m.loss, ex["loss"].get<double>(), tag + " loss");
  for (std::int64_t i = 0; i < B; ++i) {
    if (per_pair_losses) // aot: TRL's per-pair losses are in rank order
      close(losses[i], ex["losses"][i].get<double>(), tag + " losses[" + std::to_string(i) + "]");
    close(gc[i], ex["grad_chosen"][i].get<double>(), tag + " grad_chosen[" + std::to_string(i) + "]");
    close(gr[i], ex["grad_rejected"][i].get<double>(), tag + " grad_rejected[" + std::to_string(i) + "]");
    close(rwc[i], ex["rewards_chosen"][i].get<double>(), tag + " rewards_chosen");
    close(rwr[i], ex["rewards_rejected"][i].get<double>(), tag + " rewards_rejected");
  }
}

} // namespace

BOOST_AUTO_TEST_CASE(trl_golden_values) {
  const auto j = load();
  int n = 0;
  for (const auto& c : j["cases"]) {
    const std::string t = c["loss_type"];
    const auto& p = c["params"];
    const double beta = p["beta"];
    const double eps = p.value("label_smoothing", 0.0);
    g_atol = t == "orpo" ? 1e-7 : 1e-10;
    g_rtol = t == "orpo" ? 2e-6 : 1e-9;
    if (t == "sigmoid")
      compare(fk::dpo{.beta = beta, .label_smoothing = eps}, c);
    else if (t == "robust")
      compare(fk::dpo{.beta = beta, .label_smoothing = eps, .robust = true}, c);
    else if (t == "hinge")
      compare(fk::hinge{.beta = beta}, c);
    else if (t == "ipo")
      compare(fk::ipo{.beta = beta}, c);
    else if (t == "exo_pair")
      compare(fk::exo_pair{.beta = beta, .label_smoothing = eps}, c);
    else if (t == "nca_pair")
      compare(fk::nca_pair{.beta = beta}, c);
    else if (t == "bco_pair")
      compare(fk::bco_pair{.beta = beta}, c);
    else if (t == "sppo_hard")
      compare(fk::sppo_hard{.beta = beta}, c);
    else if (t == "discopop")
      compare(fk::discopop{.beta = beta, .tau = p["tau"]}, c);
    else if (t == "apo_zero")
      compare(fk::apo_zero{.beta = beta}, c);
    else if (t == "apo_down")
      compare(fk::apo_down{.beta = beta}, c);
    else if (t == "simpo")
      compare(fk::simpo{.beta = beta, .gamma = p["gamma"], .label_smoothing = eps}, c);
    else if (t == "orpo")
      compare(fk::orpo{.beta = beta}, c);
    else if (t == "aot")
      compare(fk::aot{.beta = beta, .label_smoothing = eps}, c, false);
    else if (t == "aot_unpaired")
      compare(fk::aot{.beta = beta, .label_smoothing = eps, .unpaired = true}, c, false);
    else
      BOOST_FAIL("unknown loss type in golden file: " + t);
    ++n;
  }
  BOOST_TEST(n == 36);
}
