// The name-based registry: every mergekit method name (plus varm) is known, parameters are validated
// (unknown, missing, ill-typed), defaults are mergekit's, and merge_by_name gives the same result as the typed call.
#include <boost/test/unit_test.hpp>

#include <set>
#include <string>
#include <vector>

#include <fusekit/merge.hpp>

#include "reference.hpp"

using namespace fusekit;

namespace {
std::string error_of(auto&& f) {
  try {
    f();
  } catch (const fusekit::error& e) {
    return e.what();
  }
  return "no error";
}
} // namespace

BOOST_AUTO_TEST_SUITE(merge_registry_suite)

BOOST_AUTO_TEST_CASE(every_mergekit_method_is_registered) {
  const std::set<std::string> mergekit = {"linear", "slerp", "nuslerp", "multislerp", "karcher", "task_arithmetic", "ties",
                                          "dare_ties", "dare_linear", "breadcrumbs", "breadcrumbs_ties", "della",
                                          "della_linear", "sce", "model_stock", "nearswap", "arcee_fusion", "ram",
                                          "ramplus_tl", "passthrough"};
  std::set<std::string> ours;
  for (const auto& s : merge_method_list())
    ours.insert(std::string(s.name));
  for (const auto& m : mergekit)
    BOOST_CHECK_MESSAGE(ours.count(m) == 1, m);
  BOOST_CHECK(ours.count("varm") == 1);
  BOOST_CHECK_EQUAL(ours.size(), mergekit.size() + 1);
  BOOST_CHECK(method_info("frankenstein") == nullptr);
}

BOOST_AUTO_TEST_CASE(specs_carry_mergekit_defaults) {
  auto global = [](std::string_view m, std::string_view p) -> const param_spec& {
    const auto* s = method_info(m);
    BOOST_REQUIRE(s);
    for (const auto& g : s->global)
      if (g.name == p)
        return g;
    BOOST_FAIL(std::string(p) + " not in " + std::string(m));
    return s->global[0];
  };
  BOOST_CHECK_EQUAL(global("ties", "normalize").default_number, 1.0);
  BOOST_CHECK_EQUAL(global("dare_ties", "normalize").default_number, 0.0);
  BOOST_CHECK_EQUAL(global("dare_ties", "rescale").default_number, 1.0);
  BOOST_CHECK_EQUAL(global("della", "normalize").default_number, 1.0);
  BOOST_CHECK_EQUAL(global("della_linear", "rescale").default_number, 1.0);
  BOOST_CHECK_EQUAL(global("ties", "lambda").default_number, 1.0);
  BOOST_CHECK(global("slerp", "t").required);
  BOOST_CHECK_EQUAL(global("sce", "select_topk").default_number, 1.0);
  BOOST_CHECK_EQUAL(global("karcher", "max_iter").default_number, 10.0);
  BOOST_CHECK_EQUAL(global("ramplus_tl", "alpha").default_number, 0.2);
  BOOST_CHECK(global("ties", "int8_mask").ignored);
  BOOST_CHECK_EQUAL(global("ties", "sign_election").default_choice, "weighted");
  const auto* ties_spec = method_info("ties");
  BOOST_CHECK(ties_spec->base == base_policy::required);
  BOOST_CHECK(ties_spec->per_model[0].name == "weight" && ties_spec->per_model[0].required);
  BOOST_CHECK(ties_spec->per_model[1].name == "density" && ties_spec->per_model[1].default_number == 1.0);
  const auto* bc = method_info("breadcrumbs");
  BOOST_CHECK(bc->per_model.size() == 3 && bc->per_model[2].name == "gamma" && bc->per_model[2].default_number == 0.01);
  const auto* dl = method_info("della");
  BOOST_CHECK(dl->per_model[2].name == "epsilon" && dl->per_model[2].default_number == 0.15);
  BOOST_CHECK(method_info("slerp")->min_inputs == 1 && method_info("slerp")->max_inputs == 1);
  BOOST_CHECK(method_info("linear")->base == base_policy::unused);
  BOOST_CHECK(method_info("nuslerp")->base == base_policy::optional);
}

BOOST_AUTO_TEST_CASE(parameters_are_validated) {
  BOOST_CHECK_THROW((void)resolve_params(method_info("ties")->global, {{"lamda", 1.0}}, "ties"), fusekit::error);
  const auto r = resolve_params(method_info("ties")->global, {{"normalize", 0.0}}, "ties");
  BOOST_CHECK(std::get<bool>(r.at("normalize")) == false); // 0/1 numbers accepted for booleans
  BOOST_CHECK(std::get<double>(r.at("lambda")) == 1.0);    // defaults filled in
  BOOST_CHECK(std::get<std::string>(r.at("rescale_mode")) == "l1_norm");
}

BOOST_AUTO_TEST_CASE(merge_by_name_matches_typed_calls) {
  const std::int64_t n = 999;
  auto b = ref::random_values<float>(n, 1);
  std::vector<std::vector<float>> xs;
  for (std::uint32_t i = 0; i < 3; ++i) {
    auto x = ref::random_values<float>(n, 2 + i, 0.1f);
    for (std::int64_t e = 0; e < n; ++e)
      x[static_cast<std::size_t>(e)] += b[static_cast<std::size_t>(e)];
    xs.push_back(x);
  }
  using V = vector_view<const float>;
  std::vector<merge_input<V>> in;
  for (std::size_t i = 0; i < 3; ++i) {
    merge_input<V> mi{host_view(xs[i].data(), n)};
    apply_model_params(*method_info("della"), {{"weight", 0.3 + 0.1 * static_cast<double>(i)}, {"density", 0.5}}, mi, i);
    in.push_back(mi);
  }
  BOOST_CHECK_CLOSE(in[2].weight, 0.5f, 1e-5);
  BOOST_CHECK_EQUAL(in[0].epsilon, 0.15);
  std::vector<float> a(static_cast<std::size_t>(n)), c(static_cast<std::size_t>(n));
  const merge_context ctx{"model.layers.1.mlp.down_proj.weight", 3};
  merge_by_name(exec::par, "della", {{"lambda", 0.9}}, host_view(a.data(), n), host_view(b.data(), n), in, ctx);
  merge(exec::par, della{.lambda = 0.9f}, host_view(c.data(), n), host_view(b.data(), n), in, ctx);
  BOOST_CHECK(a == c);
  merge_by_name(exec::seq, "ties",
                {{"sign_election", std::string("unweighted")}, {"consensus_divisor", std::string("count")}, {"int8_mask", true}},
                host_view(a.data(), n), host_view(b.data(), n), in, ctx);
  merge(exec::seq, ties{.election = sign_election::unweighted, .divisor = consensus_divisor::count}, host_view(c.data(), n),
        host_view(b.data(), n), in, ctx);
  BOOST_CHECK(a == c);
  merge_by_name(exec::seq, "sce", {{"select_topk", 0.3}, {"sce_variant", std::string("fusechat")}}, host_view(a.data(), n),
                host_view(b.data(), n), in, ctx);
  merge(exec::seq, sce{.select_topk = 0.3, .variant = sce_variant::fusechat}, host_view(c.data(), n), host_view(b.data(), n), in, ctx);
  BOOST_CHECK(a == c);
  merge_by_name(exec::seq, "linear", {}, host_view(a.data(), n), no_base, in, ctx);
  merge(exec::seq, linear{}, host_view(c.data(), n), no_base, in, ctx);
  BOOST_CHECK(a == c);
  merge_by_name(exec::seq, "karcher", {{"max_iter", 5.0}}, host_view(a.data(), n), no_base, in, ctx);
  merge(exec::seq, karcher{.max_iter = 5}, host_view(c.data(), n), no_base, in, ctx);
  BOOST_CHECK(a == c);
  // every registered method runs by name on suitable inputs
  for (const auto& s : merge_method_list()) {
    std::vector<merge_input<V>> sub(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(s.max_inputs, 3)));
    merge_params p;
    for (const auto& g : s.global)
      if (g.required)
        p[std::string(g.name)] = 0.5;
    if (s.base == base_policy::required)
      merge_by_name(exec::par, s.name, p, host_view(a.data(), n), host_view(b.data(), n), sub, ctx);
    else
      merge_by_name(exec::par, s.name, p, host_view(a.data(), n), no_base, sub, ctx);
    bool finite = true;
    for (float v : a)
      finite = finite && std::isfinite(v);
    BOOST_CHECK_MESSAGE(finite, s.name);
  }
}

BOOST_AUTO_TEST_CASE(clear_errors) {
  const std::int64_t n = 4;
  std::vector<float> b(4, 0.0f), x(4, 1.0f), out(4);
  using V = vector_view<const float>;
  std::vector<merge_input<V>> in{{host_view(x.data(), n)}};
  auto has = [](const std::string& m, const char* what) {
    BOOST_CHECK_MESSAGE(m.find(what) != std::string::npos, m);
  };
  has(error_of([&] { merge_by_name(exec::seq, "tie", {}, host_view(out.data(), n), host_view(b.data(), n), in); }), "unknown merge method 'tie'");
  has(error_of([&] { merge_by_name(exec::seq, "ties", {{"lamda", 1.0}}, host_view(out.data(), n), host_view(b.data(), n), in); }),
      "unknown parameter 'lamda'");
  has(error_of([&] { merge_by_name(exec::seq, "slerp", {}, host_view(out.data(), n), host_view(b.data(), n), in); }),
      "missing required parameter 't'");
  has(error_of([&] { merge_by_name(exec::seq, "ties", {{"normalize", std::string("yes")}}, host_view(out.data(), n), host_view(b.data(), n), in); }),
      "true or false");
  has(error_of([&] { merge_by_name(exec::seq, "ties", {{"sign_election", std::string("loud")}}, host_view(out.data(), n), host_view(b.data(), n), in); }),
      "must be one of");
  has(error_of([&] { merge_by_name(exec::seq, "karcher", {{"max_iter", 2.5}}, host_view(out.data(), n), no_base, in); }),
      "integer");
  has(error_of([&] { merge_by_name(exec::seq, "ties", {}, host_view(out.data(), n), no_base, in, {"w.x"}); }),
      "base model is required");
  has(error_of([&] { merge_by_name(exec::seq, "nuslerp", {}, host_view(out.data(), n), no_base, in, {"w.x"}); }),
      "input model(s)");
  merge_input<V> mi{host_view(x.data(), n)};
  has(error_of([&] { apply_model_params(*method_info("ties"), {{"density", 0.5}}, mi, 4); }), "model 4: missing required parameter 'weight'");
  has(error_of([&] { apply_model_params(*method_info("ties"), {{"weight", 1.0}, {"gamma", 0.5}}, mi, 2); }), "unknown parameter 'gamma'");
}

BOOST_AUTO_TEST_SUITE_END()
