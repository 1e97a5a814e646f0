// Preference-data construction: fusechat-algorithms.md T5.5, eligibility with correctness, tie and
// multi-source rules, WRPO quadruples, the deterministic split, JSONL parsing errors.
#include <boost/test/unit_test.hpp>

#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fusekit/prefs/build.hpp>
#include <fusekit/prefs/jsonl.hpp>

namespace pf = fusekit::prefs;

namespace {
pf::prompt_samples one_source(const std::string& id, const std::vector<double>& rewards, const std::string& src = "m") {
  pf::prompt_samples p{id, "prompt " + id, {}};
  for (std::size_t i = 0; i < rewards.size(); ++i)
    p.samples.push_back({src, src + "#" + std::to_string(i), rewards[i], std::nullopt});
  return p;
}
bool has(const std::string& msg, const std::string& part) { return msg.find(part) != std::string::npos; }
} // namespace

BOOST_AUTO_TEST_SUITE(prefs_build)

BOOST_AUTO_TEST_CASE(t5_5_pair_selection) {
  const pf::build_options opt{};
  auto a = pf::choose(one_source("a", {0.150, 0.182, 0.165, 0.140, 0.171}), opt);
  BOOST_TEST_REQUIRE(a.dpo.size() == 1u);
  BOOST_TEST(a.dpo[0].chosen_reward == 0.182);
  BOOST_TEST(a.dpo[0].rejected_reward == 0.140);
  BOOST_TEST(a.dpo[0].chosen == "m#1");
  BOOST_TEST(a.dpo[0].rejected == "m#3");
  BOOST_TEST(a.sft->reward == 0.182);
  auto b = pf::choose(one_source("b", {0.150, 0.155, 0.152, 0.151, 0.153}), opt);
  BOOST_TEST(b.dpo.empty());
  BOOST_TEST((*b.dpo_drop == pf::drop_reason::gap_below_min));
  auto c = pf::choose(one_source("c", {0.05, 0.20, 0.10, 0.12, 0.15}), opt);
  BOOST_TEST(c.dpo.empty());
  BOOST_TEST((*c.dpo_drop == pf::drop_reason::gap_above_max));
}

BOOST_AUTO_TEST_CASE(inclusive_bounds_and_ties) {
  const pf::build_options opt{.gap_min = 0.01, .gap_max = 0.1};
  // gap exactly 0.1 (0.25 − 0.15 = 0.09999999999999998 in binary) and exactly 0.01: kept
  BOOST_TEST(pf::choose(one_source("x", {0.25, 0.15}), opt).dpo.size() == 1u);
  BOOST_TEST(pf::choose(one_source("y", {0.52, 0.51}), opt).dpo.size() == 1u);
  BOOST_TEST(pf::choose(one_source("z", {0.6, 0.4999}), opt).dpo.empty());
  // ties: first sample wins for chosen and for rejected
  auto t = pf::choose(one_source("t", {0.3, 0.35, 0.35, 0.3}), opt);
  BOOST_TEST_REQUIRE(t.dpo.size() == 1u);
  BOOST_TEST(t.dpo[0].chosen == "m#1");
  BOOST_TEST(t.dpo[0].rejected == "m#0");
  BOOST_TEST(t.sft->response == "m#1");
  // a single sample cannot form a pair
  BOOST_TEST((*pf::choose(one_source("s", {0.3}), opt).dpo_drop == pf::drop_reason::no_pair));
  // all rewards equal with gap_min 0: a pair of two distinct samples with gap 0
  auto e = pf::choose(one_source("e", {0.3, 0.3}), pf::build_options{.gap_min = 0.0});
  BOOST_TEST_REQUIRE(e.dpo.size() == 1u);
  BOOST_TEST(e.dpo[0].chosen == "m#0");
  BOOST_TEST(e.dpo[0].rejected == "m#1");
  BOOST_CHECK_THROW((pf::build_options{.gap_min = 0.2, .gap_max = 0.1}.validate()), fusekit::error);
  BOOST_CHECK_THROW((pf::build_options{.sft_fraction = 1.5}.validate()), fusekit::error);
}

BOOST_AUTO_TEST_CASE(same_source_and_winner_rules) {
  pf::prompt_samples p{"p", "q", {}};
  // source A: gap 0.05 (chosen 0.30); source B: gap 0.02 (chosen 0.40); source C: gap 0.5 (out of band)
  // cross-source best/worst (0.9 vs 0.2) must never be paired
  p.samples = {{"A", "a1", 0.30, {}}, {"B", "b1", 0.40, {}}, {"C", "c1", 0.90, {}}, {"A", "a2", 0.25, {}},
               {"B", "b2", 0.38, {}}, {"C", "c2", 0.40, {}}, {"A", "a3", 0.27, {}}, {"D", "d1", 0.20, {}}};
  auto c = pf::choose(p, {});
  BOOST_TEST_REQUIRE(c.dpo.size() == 1u);
  BOOST_TEST(c.dpo[0].source == "B"); // highest chosen reward among qualifying sources
  BOOST_TEST(c.dpo[0].chosen == "b1");
  BOOST_TEST(c.dpo[0].rejected == "b2");
  BOOST_TEST(c.sft->response == "c1"); // SFT: best over all sources
  auto all = pf::choose(p, pf::build_options{.all_pairs = true});
  BOOST_TEST_REQUIRE(all.dpo.size() == 2u);
  BOOST_TEST(all.dpo[1].source == "A");
  BOOST_TEST(all.dpo[1].rejected == "a2");
  // equal chosen rewards: larger gap wins, then first-seen source
  pf::prompt_samples q{
      "q", "q", {{"X", "x1", 0.5, {}}, {"Y", "y1", 0.5, {}}, {"X", "x2", 0.48, {}}, {"Y", "y2", 0.45, {}}}};
  BOOST_TEST(pf::choose(q, {}).dpo[0].source == "Y");
  q.samples[3].reward = 0.48;
  BOOST_TEST(pf::choose(q, {}).dpo[0].source == "X");
}

BOOST_AUTO_TEST_CASE(correctness_rules) {
  pf::prompt_samples p{"m", "2+2?", {}};
  p.samples = {{"A", "5", 0.9, false},
               {"A", "4", 0.5, true},
               {"A", "four", 0.47, true},
               {"A", "3", 0.45, false},
               {"B", "4!", 0.6, true}};
  auto c = pf::choose(p, {});
  BOOST_TEST(c.sft->response == "4!"); // highest-reward *correct* sample
  BOOST_TEST_REQUIRE(c.dpo.size() == 1u);
  BOOST_TEST(c.dpo[0].chosen == "4");   // correct with highest reward of source A
  BOOST_TEST(c.dpo[0].rejected == "3"); // incorrect with lowest reward (a correct one may not be rejected)
  // all incorrect: no SFT target, no pair
  pf::prompt_samples bad{"n", "?", {{"A", "x", 0.5, false}, {"A", "y", 0.45, false}}};
  auto d = pf::choose(bad, {});
  BOOST_TEST(!d.sft);
  BOOST_TEST((*d.sft_drop == pf::drop_reason::no_eligible_chosen));
  BOOST_TEST((*d.dpo_drop == pf::drop_reason::no_eligible_chosen));
  // all correct: SFT yes, no rejectable sample
  pf::prompt_samples good{"g", "?", {{"A", "x", 0.5, true}, {"A", "y", 0.45, true}}};
  auto g = pf::choose(good, {});
  BOOST_TEST(g.sft.has_value());
  BOOST_TEST((*g.dpo_drop == pf::drop_reason::no_pair));
}

BOOST_AUTO_TEST_CASE(wrpo_quadruples) {
  pf::prompt_samples p{"w", "x", {}};
  p.samples = {{"src1", "s1", 0.7, {}}, {"src2", "s2", 0.8, {}}, {"tgt", "t1", 0.4, {}},
               {"tgt", "t2", 0.55, {}}, {"tgt", "t3", 0.30, {}}, {"src1", "s3", 0.65, {}}};
  const pf::build_options opt{.target_source = std::string("tgt")};
  auto c = pf::choose(p, opt);
  BOOST_TEST_REQUIRE(c.wrpo.has_value());
  BOOST_TEST(c.wrpo->source_chosen == "s2");
  BOOST_TEST(c.wrpo->source_chosen_source == "src2");
  BOOST_TEST(c.wrpo->target_chosen == "t2");
  BOOST_TEST(c.wrpo->rejected == "t3");
  BOOST_TEST(c.sft->response == "s2"); // target samples never become SFT targets
  BOOST_TEST_REQUIRE(c.dpo.size() == 1u);
  BOOST_TEST(c.dpo[0].source == "src1"); // the target is not a DPO source
  // target with one sample: no quadruple
  pf::prompt_samples q = p;
  q.samples.erase(q.samples.begin() + 2, q.samples.begin() + 5);
  q.samples.push_back({"tgt", "only", 0.5, {}});
  BOOST_TEST((*pf::choose(q, opt).wrpo_drop == pf::drop_reason::no_target_pair));
}

BOOST_AUTO_TEST_CASE(deterministic_split) {
  std::vector<pf::prompt_samples> v;
  for (int i = 0; i < 1000; ++i)
    v.push_back(one_source(std::string("id") + std::to_string(i), {0.30, 0.25, 0.28}));
  v.push_back(one_source("bad", {0.30, 0.10})); // gap 0.2: dropped before the split
  v.push_back(pf::prompt_samples{"empty", "e", {}});
  const pf::build_options opt{.sft_fraction = 0.4, .seed = 7};
  const auto r = pf::build(v, opt);
  BOOST_TEST(r.summary.prompts == 1002);
  BOOST_TEST(r.summary.sft_records == 400);
  BOOST_TEST(r.summary.dpo_records == 600);
  BOOST_TEST(r.summary.dropped == 2);
  BOOST_TEST(r.summary.reasons[static_cast<int>(pf::drop_reason::gap_above_max)] == 1);
  BOOST_TEST(r.summary.reasons[static_cast<int>(pf::drop_reason::no_samples)] == 1);
  // same seed, shuffled input: the same prompts on each side
  auto w = v;
  std::reverse(w.begin(), w.end());
  const auto r2 = pf::build(w, opt);
  std::set<std::string> s1, s2;
  for (const auto& x : r.sft)
    s1.insert(x.prompt_id);
  for (const auto& x : r2.sft)
    s2.insert(x.prompt_id);
  BOOST_TEST((s1 == s2));
  // another seed: a different split of the same size
  const auto r3 = pf::build(v, pf::build_options{.sft_fraction = 0.4, .seed = 8});
  std::set<std::string> s3;
  for (const auto& x : r3.sft)
    s3.insert(x.prompt_id);
  BOOST_TEST(s3.size() == 400u);
  BOOST_TEST((s3 != s1));
  // FuseChat UltraFeedback count: 51098 · 0.4 → 20439 SFT, 30659 DPO
  std::vector<pf::prompt_samples> uf;
  for (int i = 0; i < 51098; ++i)
    uf.push_back(one_source(std::string("u") + std::to_string(i), {0.3, 0.28}));
  const auto ru = pf::build(uf, pf::build_options{});
  BOOST_TEST(ru.summary.sft_records == 20439);
  BOOST_TEST(ru.summary.dpo_records == 30659);
  // split before filter: the bad prompt takes a place on one side and is dropped there
  const auto rb = pf::build(v, pf::build_options{.sft_fraction = 0.4, .seed = 7, .split_before_filter = true});
  BOOST_TEST(rb.summary.sft_side + rb.summary.dpo_side == 1002);
  BOOST_TEST(rb.summary.sft_side == 401);
  // duplicate ids are an error
  v.push_back(one_source("id3", {0.3, 0.29}));
  BOOST_CHECK_EXCEPTION(pf::build(v, opt), fusekit::error,
                        [](const fusekit::error& e) { return has(e.what(), "\"id3\" appears twice"); });
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(prefs_jsonl)

BOOST_AUTO_TEST_CASE(parse_and_errors) {
  std::istringstream in(
      "{\"prompt_id\": 12, \"prompt\": \"hi\", \"samples\": [{\"source\": \"a\", \"response\": \"r\", \"reward\": "
      "0.5}, "
      "{\"source\": \"a\", \"response\": \"s\", \"reward\": 1, \"correct\": false, \"extra\": 3}]}\n\n"
      "{\"prompt_id\": \"p2\", \"prompt\": \"yo\", \"samples\": []}\n");
  const auto v = pf::read_prompts(in, "s.jsonl");
  BOOST_TEST_REQUIRE(v.size() == 2u);
  BOOST_TEST(v[0].prompt_id == "12");
  BOOST_TEST(v[0].samples[1].reward == 1.0);
  BOOST_TEST(v[0].samples[1].correct.value() == false);
  BOOST_TEST(!v[0].samples[0].correct.has_value());
  auto expect = [](const std::string& line, const std::string& msg) {
    std::istringstream s("\n" + line + "\n");
    BOOST_CHECK_EXCEPTION(pf::read_prompts(s, "s.jsonl"), fusekit::error, [&](const fusekit::error& e) {
      BOOST_TEST_MESSAGE(e.what());
      return e.code() == fusekit::errc::parse_error && has(e.what(), msg);
    });
  };
  expect("{\"prompt\": \"x\", \"samples\": []}", "s.jsonl:2: prompt_id: missing");
  expect("{\"prompt_id\": \"a\", \"prompt\": 3, \"samples\": []}", "s.jsonl:2: prompt: expected a string");
  expect("{\"prompt_id\": \"a\", \"prompt\": \"x\", \"samples\": {}}", "s.jsonl:2: samples: expected an array");
  expect("{\"prompt_id\": \"a\", \"prompt\": \"x\", \"samples\": [{\"source\": \"m\", \"response\": \"r\", \"reward\": "
         "\"high\"}]}",
         "s.jsonl:2: samples[0].reward: expected a finite number, got \"high\"");
  expect(
      "{\"prompt_id\": \"a\", \"prompt\": \"x\", \"samples\": [{\"source\": \"m\", \"response\": \"r\", \"reward\": 1, "
      "\"correct\": \"yes\"}]}",
      "samples[0].correct: expected true or false");
  expect("{\"prompt_id\": \"a\", \"prompt\": \"x\", \"samples\": [{\"response\": \"r\", \"reward\": 1}]}",
         "samples[0].source: missing");
  expect("{\"prompt_id\": \"a\", \"prompt\": \"x\"", "s.jsonl:2: invalid JSON");
  expect("[1, 2]", "s.jsonl:2: <line>: expected a JSON object");
  // a number beyond double makes the JSON library throw out_of_range, not parse_error (found by the fuzz
  // target tests/io/fuzz_text_parsers.cpp: it used to escape as a foreign exception)
  expect("{\"prompt_id\": \"a\", \"prompt\": \"x\", \"samples\": [{\"source\": \"m\", \"response\": \"r\", \"reward\": "
         "1e999}]}",
         "s.jsonl:2: invalid JSON");
}

BOOST_AUTO_TEST_CASE(write_records) {
  pf::build_result r;
  r.sft.push_back({"p", "q", "resp", "m", 0.5});
  r.dpo.push_back({"p", "q", "c", "r", "m", 0.3, 0.25});
  r.wrpo.push_back({"p", "q", "ws", "src", 0.9, "wt", "l", 0.6, 0.2});
  std::ostringstream a, b, c;
  pf::write_jsonl(a, r.sft);
  pf::write_jsonl(b, r.dpo);
  pf::write_jsonl(c, r.wrpo);
  const auto js = nlohmann::json::parse(a.str());
  BOOST_TEST(js["response"] == "resp");
  BOOST_TEST(js["reward"] == 0.5);
  const auto jd = nlohmann::json::parse(b.str());
  BOOST_TEST(jd["chosen"] == "c");
  BOOST_TEST(jd["rejected_reward"] == 0.25);
  BOOST_TEST(jd["source"] == "m");
  const auto jw = nlohmann::json::parse(c.str());
  BOOST_TEST(jw["chosen"][0] == "ws");
  BOOST_TEST(jw["chosen"][1] == "wt");
  BOOST_TEST(jw["rejected"][0] == "l");
  const auto sj = pf::to_json(r.summary);
  BOOST_TEST(sj["dropped_by_reason"].contains("gap_below_min"));
}

BOOST_AUTO_TEST_SUITE_END()
