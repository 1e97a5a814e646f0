// mergekit YAML configs: schema errors name the key (and line), gradient / filter evaluation follows
// mergekit (config.py evaluate_setting), validation against the method registry.
#include <boost/test/unit_test.hpp>

#include <string>

#include <fusekit/io/merge_config.hpp>
#include <fusekit/io/merge_plan.hpp>

using namespace fusekit;
using namespace fusekit::io;

namespace {
void expect_error(const std::string& yaml, std::initializer_list<std::string> parts, bool validate_too = false) {
  try {
    const auto c = parse_merge_config(yaml, "cfg.yml");
    if (validate_too)
      (void)validate(c);
    BOOST_FAIL("expected an error for:\n" << yaml);
  } catch (const fusekit::error& e) {
    const std::string m = e.what();
    BOOST_TEST_INFO(m);
    BOOST_TEST(m.find("cfg.yml") != std::string::npos);
    for (const auto& p : parts) {
      BOOST_TEST_INFO("missing '" << p << "' in " << m);
      BOOST_TEST(m.find(p) != std::string::npos);
    }
  }
}
const char* ties_head = "merge_method: ties\nbase_model: b\n";
} // namespace

BOOST_AUTO_TEST_SUITE(merge_config)

BOOST_AUTO_TEST_CASE(gradient_interpolation_and_picks) {
  const auto c = parse_merge_config(std::string(ties_head) + R"(models:
  - model: m
    parameters:
      weight: [0.2, 0.5, 0.8]
      density: 0.4
parameters:
  normalize: [true, false]
)");
  const auto& w = c.models[0].parameters.at("weight");
  BOOST_TEST(w.evaluate("x", 0.0)->number == 0.2, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(w.evaluate("x", 0.25)->number == 0.35, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(w.evaluate("x", 0.5)->number == 0.5, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(w.evaluate("x", 1.0)->number == 0.8, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(c.models[0].parameters.at("density").evaluate("x", 0.7)->number == 0.4);
  const auto& n = c.parameters.at("normalize");
  BOOST_TEST(n.evaluate("x", 0.4)->boolean == true);  // floor(0.4 * 1) = 0
  BOOST_TEST(n.evaluate("x", 1.0)->boolean == false);
  BOOST_TEST(w.key == "models[0].parameters.weight");
}

BOOST_AUTO_TEST_CASE(filters_first_match_wins_and_fall_through) {
  const auto c = parse_merge_config(std::string(ties_head) + R"(models:
  - model: m
    parameters:
      weight:
        - filter: self_attn
          value: [0.0, 1.0]
        - filter: "*"
          value: 0.25
      density:
        - {filter: mlp, value: 0.3}
)");
  const auto& w = c.models[0].parameters.at("weight");
  BOOST_TEST(w.evaluate("model.layers.3.self_attn.q_proj.weight", 0.5)->number == 0.5);
  BOOST_TEST(w.evaluate("model.layers.3.mlp.up_proj.weight", 0.5)->number == 0.25);
  const auto& d = c.models[0].parameters.at("density");
  BOOST_TEST(d.evaluate("model.layers.0.mlp.up_proj.weight", 0)->number == 0.3);
  BOOST_TEST(!d.evaluate("model.norm.weight", 0).has_value()); // no match: the next level decides
}

BOOST_AUTO_TEST_CASE(schema_errors_name_the_key) {
  expect_error("merge_method: ties\nbase_model: b\nmodels:\n  - model: m\nfoo: 1\n", {"'foo': unknown key", "cfg.yml:5"});
  expect_error("base_model: b\nmodels:\n  - model: m\n", {"'merge_method': missing"});
  expect_error("merge_method: ties\nbase_model: b\n", {"exactly one of 'models' and 'slices'"});
  expect_error("merge_method: ties\nmodels:\n  - model: m\nslices:\n  - sources:\n      - {model: m, layer_range: [0, 1]}\n",
               {"exactly one of"});
  expect_error("merge_method: ties\nmodels:\n  - modle: m\n", {"'models[0].modle': unknown key"});
  expect_error("merge_method: ties\nmodels:\n  - model: m\n    parameters: {weight: [a, 1]}\n",
               {"'models[0].parameters.weight': must be a number, got 'a'"}, true);
  expect_error("merge_method: ties\nmodels:\n  - model: m\n    parameters: {weight: [[1], 1]}\n", {"'models[0].parameters.weight[0]'"});
  expect_error("merge_method: ties\nmodels:\n  - model: m\n    parameters:\n      weight:\n        - {filter: mlp}\n",
               {"'models[0].parameters.weight[0]': missing 'value'"});
  expect_error("merge_method: x\nslices:\n  - sources:\n      - {model: m, layer_range: [3, 1]}\n",
               {"'slices[0].sources[0].layer_range'"});
  expect_error("merge_method: x\nslices:\n  - sources:\n      - {model: m}\n", {"'slices[0].sources[0]': missing 'layer_range'"});
  expect_error("merge_method: ties\nmodels:\n  - model: m\ndtype: float8\n", {"'dtype': unknown dtype 'float8'"});
  expect_error("merge_method: ties\nmodels:\n  - model: m\nmodules: {}\n", {"'modules'", "not supported"});
  expect_error("merge_method: ties\nmodels: [ {model: m\n", {"invalid YAML"});
  expect_error("- a\n- b\n", {"must be a YAML mapping"});
  // found by the fuzz target tests/io/fuzz_text_parsers.cpp: a non-string mapping key used to escape as a
  // yaml-cpp exception, and a huge layer_range end was cast to int (undefined behaviour)
  expect_error("{{}: 1}\n", {"a mapping key must be a plain string, got a mapping"});
  expect_error("merge_method: ties\nmodels:\n  - model: m\n    parameters: {? [a]: 1}\n",
               {"'models[0].parameters'", "a mapping key must be a plain string, got a list"});
  expect_error("merge_method: x\nslices:\n  - sources:\n      - {model: m, layer_range: [0, 4e103]}\n",
               {"'slices[0].sources[0].layer_range'", "at most 2147483647"});
}

BOOST_AUTO_TEST_CASE(validation_against_the_registry) {
  expect_error("merge_method: tiez\nmodels:\n  - model: m\n", {"unknown method 'tiez'", "ties"}, true);
  expect_error(std::string(ties_head) + "models:\n  - model: m\n    parameters: {weight: 1, gamma: 0.1}\n",
               {"'models[0].parameters.gamma': unknown parameter"}, true);
  expect_error(std::string(ties_head) + "models:\n  - model: m\n    parameters: {weight: 1}\nparameters: {normalize: 3}\n",
               {"'parameters.normalize': must be true or false"}, true);
  expect_error(std::string(ties_head) + "models:\n  - model: m\n    parameters: {weight: 1}\nparameters: {sign_election: majority}\n",
               {"'parameters.sign_election': must be one of: weighted unweighted"}, true);
  expect_error("merge_method: slerp\nbase_model: b\nmodels:\n  - model: b\n  - model: m\n", {"'parameters.t': required"}, true);
  expect_error("merge_method: slerp\nbase_model: b\nmodels:\n  - model: m\n  - model: n\nparameters: {t: 0.5}\n",
               {"needs exactly 1 model(s) besides the base, got 2"}, true);
  expect_error("merge_method: linear\nbase_model: b\nmodels:\n  - model: m\n    parameters: {weight: 1}\n",
               {"uses the base model as an input", "weight"}, true);
  // Valid: weight given at the top level for every model, the base listed without parameters.
  const auto c = parse_merge_config(std::string(ties_head) + "models:\n  - model: b\n  - model: m\nparameters: {weight: 1, sign_election: unweighted}\n");
  BOOST_TEST(validate(c).name == "ties");
  BOOST_TEST(model_refs(c).size() == 2u);
}

BOOST_AUTO_TEST_CASE(layer_names) {
  auto l = fusekit::io::detail::parse_layer_name("model.layers.12.mlp.up_proj.weight");
  BOOST_REQUIRE(l);
  BOOST_TEST(l->prefix == "model.layers.");
  BOOST_TEST(l->index == 12);
  BOOST_TEST(l->suffix == "mlp.up_proj.weight");
  BOOST_TEST(fusekit::io::detail::parse_layer_name("transformer.h.3.attn.c_attn.weight")->index == 3);
  BOOST_TEST(!fusekit::io::detail::parse_layer_name("model.embed_tokens.weight"));
  BOOST_TEST(!fusekit::io::detail::parse_layer_name("model.norm.weight"));
  BOOST_TEST(fusekit::io::detail::tied_alternative("lm_head.weight") == "model.embed_tokens.weight");
}

BOOST_AUTO_TEST_SUITE_END()
