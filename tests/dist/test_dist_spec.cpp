// Spec vectors T2.1–T2.6 and T3.1–T3.2 (reference/fusechat-algorithms.md §2.6, §3.5), both
// compatibility modes where they differ, sparse-target invariants, and a real-data round trip.
#include <boost/test/unit_test.hpp>

#include <fusekit/dist/align_distribution.hpp>
#include <fusekit/dist/fusion.hpp>
#include <fusekit/dist/sparse_target.hpp>
#include <fusekit/exec/policy.hpp>
#include <fusekit/vocab/alignment_matrix.hpp>
#include <fusekit/vocab/hf_tokenizer.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

using namespace fusekit::dist;
using fusekit::vocab::token_encoding;
using fusekit::vocab::vocabulary;
namespace tt = boost::test_tools;

namespace {

struct t2_fixture {
  vocabulary pivot = [] {
    auto v = vocabulary::from_strings({"<unk>", "<s>", "</s>", "▁the", "▁cat", "s", "▁cats", "▁sat", "▁do", "g"},
                                      token_encoding::sentencepiece);
    v.set_strip_leading_space(true);  // decode([id]) of "▁the" is "the" (Llama-style)
    v.set_unk_id(0);
    v.set_bos_id(1);
    v.set_eos_id(2);
    return v;
  }();
  vocabulary source = [] {
    auto v = vocabulary::from_strings({"<|endoftext|>", "the", "Ġcats", "Ġcat", "s", "Ġsat", "Ġdog", "Ġthe"},
                                      token_encoding::byte_level);
    v.set_eos_id(0);
    return v;
  }();
  std::vector<std::int32_t> b2p{2, 3, 6, 4, 5, 7, 8, 3};
  std::vector<std::int32_t> x{1, 3, 6, 7};
  std::vector<std::int32_t> s{1, 2, 5};
  std::vector<std::int32_t> topk_ids{2, 3, 7, 5, 4, 6, 0, 7, 5};
  std::vector<float> topk_logits{4, 3, 1, 6, 2, 1, 3, 2, 2};

  fusekit::matrix_view<const std::int32_t> ids() const { return fusekit::host_view(topk_ids.data(), std::array<std::int64_t, 2>{3, 3}); }
  fusekit::matrix_view<const float> logits() const { return fusekit::host_view(topk_logits.data(), std::array<std::int64_t, 2>{3, 3}); }
  aligned_topk run(const distribution_alignment_options& o) const {
    return align_distribution(pivot, source, x, s, ids(), logits(), b2p, o);
  }
};

using row = std::pair<std::vector<std::int32_t>, std::vector<float>>;
std::vector<row> rows_of(const aligned_topk& a) {
  std::vector<row> out;
  for (std::int64_t r = 0; r < a.rows(); ++r) {
    auto i = a.row_ids(r);
    auto l = a.row_logits(r);
    out.emplace_back(std::vector<std::int32_t>(i.begin(), i.end()), std::vector<float>(l.begin(), l.end()));
  }
  return out;
}
void check_rows(const aligned_topk& a, const std::vector<row>& expected) {
  const auto got = rows_of(a);
  BOOST_TEST_REQUIRE(got.size() == expected.size());
  for (std::size_t r = 0; r < got.size(); ++r) {
    BOOST_TEST_CONTEXT("position " << r) {
      BOOST_TEST(got[r].first == expected[r].first, tt::per_element());
      BOOST_TEST(got[r].second == expected[r].second, tt::per_element());
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(distribution_alignment_spec)

BOOST_FIXTURE_TEST_CASE(t2_1_dtw, t2_fixture) {
  BOOST_TEST(pivot.decode_token(1) == "<s>");
  BOOST_TEST(pivot.decode_token(3) == "the");
  BOOST_TEST(source.decode_token(2) == " cats");
  std::vector<std::string> u, w;
  for (auto id : x) u.push_back(pivot.decode_token(id));
  for (auto id : s) w.push_back(source.decode_token(id));
  const fusekit::vocab::token_cost cost{fusekit::vocab::cost_rule::fusechat, U"Ġ", U"▁"};
  const auto a = fusekit::vocab::dtw_align(w, u, cost);
  BOOST_TEST((a.to_lists() == std::vector<std::vector<std::int32_t>>{{0}, {0}, {1}, {2}}));
}

BOOST_FIXTURE_TEST_CASE(t2_2_default_mode, t2_fixture) {
  check_rows(run({}), {{{3}, {1.0f}}, {{6, 4, 3}, {4, 3, 1}}, {{7, 5, 8}, {6, 2, 1}}, {{2, 3, 7}, {3, 2, 2}}});
}

BOOST_FIXTURE_TEST_CASE(t2_3_hard_mode, t2_fixture) {
  distribution_alignment_options o;
  o.mode = alignment_mode::hard;
  check_rows(run(o), {{{3}, {1.0f}}, {{6, 4, 3}, {4, 3, 1}}, {{7}, {1.0f}}, {{7}, {1.0f}}});
  // FuseLLM's off-by-one one-hot (current token) as a compatibility flag
  o.onehot = onehot_target::current_token;
  check_rows(run(o), {{{1}, {1.0f}}, {{6, 4, 3}, {4, 3, 1}}, {{6}, {1.0f}}, {{7}, {1.0f}}});
  // hard mode needs no mapping table
  const auto a = align_distribution(pivot, source, x, s, ids(), logits(), std::span<const std::int32_t>{}, {.mode = alignment_mode::hard});
  BOOST_TEST(a.rows() == 4);
}

BOOST_FIXTURE_TEST_CASE(fusellm_settings_raw_strings, t2_fixture) {
  // FuseLLM (§2.4): raw strings ("<s>", "▁the", ... vs "the", "Ġcats", ...), cost without fallback, FuseLLM
  // tie order, one-hot of the current token. DTW (checked by hand): A = [[0],[0],[1],[2]].
  // pos1 "▁the" != "the" (raw strings differ) -> one-hot x[1]=3; pos2 "▁cats" == subst("Ġcats") -> MAP(1)
  // hard: Ġsat->7, s->5, Ġdog skipped; pos3 -> MAP(2): <|endoftext|> skipped, Ġthe->3, Ġsat->7.
  check_rows(run(fusellm_alignment_options()), {{{1}, {1.0f}}, {{3}, {1.0f}}, {{7, 5}, {6, 2}}, {{3, 7}, {2, 2}}});
}

BOOST_FIXTURE_TEST_CASE(soft_mode_fixed_and_reference_indexing, t2_fixture) {
  distribution_alignment_options o;
  o.mode = alignment_mode::soft;
  // fixed rule: x_i == b2p[s_j]: pos2 (6 == b2p[2]) and pos3 (7 == b2p[5]) match
  check_rows(run(o), {{{3}, {1.0f}}, {{6, 4, 3}, {4, 3, 1}}, {{7, 5, 8}, {6, 2, 1}}, {{2, 3, 7}, {3, 2, 2}}});
}

BOOST_FIXTURE_TEST_CASE(soft_mode_reference_bug, t2_fixture) {
  distribution_alignment_options o;
  o.mode = alignment_mode::soft;
  o.soft = soft_index::by_position;
  // reference: vocab_P[u_i] == b2p[j]; "cats"/"sat" are not vocabulary keys -> no id match -> one-hot
  check_rows(run(o), {{{3}, {1.0f}}, {{6, 4, 3}, {4, 3, 1}}, {{7}, {1.0f}}, {{7}, {1.0f}}});
}

BOOST_AUTO_TEST_CASE(soft_position_bug_can_also_match_wrongly) {
  // Pivot decoded string "the" is a key; mapping indexed by position j=0 holds 3 -> the reference
  // matches although the source token's own entry (b2p[s_0] = b2p[1] = 9) says otherwise.
  auto piv = vocabulary::from_strings({"<unk>", "x", "y", "the", "z", "w", "q", "r", "o", "p"}, token_encoding::plain);
  auto src = vocabulary::from_strings({"a", "b"}, token_encoding::plain);
  const std::vector<std::int32_t> b2p{3, 9};
  const std::vector<std::int32_t> x{3}, s{1}, tk{0, 1};
  const std::vector<float> tl{2, 1};
  const auto I = fusekit::host_view(tk.data(), std::array<std::int64_t, 2>{1, 2});
  const auto L = fusekit::host_view(tl.data(), std::array<std::int64_t, 2>{1, 2});
  distribution_alignment_options o{.mode = alignment_mode::soft, .soft = soft_index::by_position};
  const auto ref = align_distribution(piv, src, x, s, I, L, b2p, o);
  BOOST_TEST(ref.row_size(0) == 2);  // MAP: b2p[0]=3, b2p[1]=9
  o.soft = soft_index::by_token_id;
  const auto fixed = align_distribution(piv, src, x, s, I, L, b2p, o);
  BOOST_TEST(fixed.row_size(0) == 1);  // one-hot
  BOOST_TEST(fixed.row_ids(0)[0] == 3);
}

BOOST_AUTO_TEST_CASE(t2_5_multi_token_suffix_rule) {
  auto piv = vocabulary::from_strings({"<unk>", "▁the", "▁cats"}, token_encoding::sentencepiece);
  piv.set_strip_leading_space(true);
  const auto src = vocabulary::from_strings({"Ġthe", "Ġcat", "s", "Ġdog"}, token_encoding::byte_level);
  const std::vector<std::int32_t> x{1, 2}, s{0, 1, 2}, b2p{1, 2, 2, 0};
  // source top-2 per position
  const std::vector<std::int32_t> tk{1, 3, 2, 0, 0, 3};
  const std::vector<float> tl{5, 1, 4, 2, 3, 1};
  const auto I = fusekit::host_view(tk.data(), std::array<std::int64_t, 2>{3, 2});
  const auto L = fusekit::host_view(tl.data(), std::array<std::int64_t, 2>{3, 2});
  std::vector<std::string> u{"the", "cats"}, w{" the", " cat", "s"};
  const fusekit::vocab::token_cost cost{fusekit::vocab::cost_rule::fusechat, U"Ġ", U"▁"};
  BOOST_TEST((fusekit::vocab::dtw_align(w, u, cost).to_lists() == std::vector<std::vector<std::int32_t>>{{0}, {1, 2}}));
  const auto a = align_distribution(piv, src, x, s, I, L, b2p);
  // pos0: " the" ends with "the" -> MAP(0): Ġcat -> ▁cat absent -> b2p[1]=2; Ġdog -> b2p[3]=0
  // pos1: "cats".endswith("s") selects source position 2 -> MAP(2): Ġthe -> ▁the=1, Ġdog -> 0
  check_rows(a, {{{2, 0}, {5, 1}}, {{1, 0}, {3, 1}}});
  // without the alignment-matrix rule, and in hard mode: one-hot of the next token (last repeats)
  check_rows(align_distribution(piv, src, x, s, I, L, b2p, {.multi_token_rule = false}), {{{2, 0}, {5, 1}}, {{2}, {1}}});
  check_rows(align_distribution(piv, src, x, s, I, L, b2p, {.mode = alignment_mode::hard}), {{{2}, {1}}, {{2}, {1}}});
}

BOOST_FIXTURE_TEST_CASE(bad_inputs, t2_fixture) {
  const std::vector<std::int32_t> short_map{2, 3};
  BOOST_CHECK_EXCEPTION((void)align_distribution(pivot, source, x, s, ids(), logits(), short_map), fusekit::error,
                        [](const fusekit::error& e) { return std::string(e.what()).find("mapping has 2 entries") != std::string::npos; });
  const std::vector<std::int32_t> bad_x{1, 3, 99};
  BOOST_CHECK_EXCEPTION((void)align_distribution(pivot, source, bad_x, s, ids(), logits(), b2p), fusekit::error,
                        [](const fusekit::error& e) { return e.code() == fusekit::errc::out_of_range; });
  std::vector<std::int32_t> bad_map = b2p;
  bad_map[6] = 99;  // used at pivot position 2 (Ġdog has no exact match)
  BOOST_CHECK_EXCEPTION((void)align_distribution(pivot, source, x, s, ids(), logits(), bad_map), fusekit::error,
                        [](const fusekit::error& e) { return std::string(e.what()).find("b2p[6] = 99") != std::string::npos; });
  const std::vector<std::int32_t> s2{1, 2};
  BOOST_CHECK_EXCEPTION((void)align_distribution(pivot, source, x, s2, ids(), logits(), b2p), fusekit::error,
                        [](const fusekit::error& e) { return e.code() == fusekit::errc::shape_mismatch; });
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(collator_and_fusion_spec)

BOOST_AUTO_TEST_CASE(t2_4_topk_softmax) {
  auto sm = [](std::vector<float> l, float T) {
    std::vector<float> p(l.size());
    topk_softmax(l, T, p);
    return p;
  };
  const auto a = sm({3, 2, 2}, 1);
  BOOST_TEST(a[0] == 0.576117f, tt::tolerance(1e-5f));
  BOOST_TEST(a[1] == 0.211942f, tt::tolerance(1e-5f));
  BOOST_TEST(a[2] == 0.211942f, tt::tolerance(1e-5f));
  const auto b = sm({5, 3, 1}, 1);
  BOOST_TEST(b[0] == 0.866813f, tt::tolerance(1e-5f));
  BOOST_TEST(b[1] == 0.117310f, tt::tolerance(1e-5f));
  BOOST_TEST(b[2] == 0.015876f, tt::tolerance(1e-4f));
  const auto c = sm({2, 1, 0}, 1);
  BOOST_TEST(c[0] == 0.665241f, tt::tolerance(1e-5f));
  BOOST_TEST(c[1] == 0.244728f, tt::tolerance(1e-5f));
  BOOST_TEST(c[2] == 0.090031f, tt::tolerance(1e-4f));
  const auto d = sm({2, 1, 0}, 0.5f);
  BOOST_TEST(d[0] == 0.866813f, tt::tolerance(1e-5f));
  BOOST_TEST(d[2] == 0.015876f, tt::tolerance(1e-4f));
  BOOST_TEST(sm({1.0f}, 0.3f)[0] == 1.0f);  // one-hot stays 1 for any T
  BOOST_CHECK_THROW(sm({1.0f}, 0.0f), fusekit::error);
}

BOOST_AUTO_TEST_CASE(t2_4_empty_row_falls_back_to_pivot) {
  aligned_topk src, piv;
  src.ids = {2, 3, 7};
  src.logits = {3, 2, 2};
  src.offsets = {0, 3, 3};  // row 1 empty
  piv.ids = {4, 5, 9, 1};
  piv.logits = {1, 0, 2, 1};
  piv.offsets = {0, 2, 4};
  const auto t = build_targets(src, 10, {}, &piv);
  BOOST_TEST(t.rows() == 2);
  fusekit::dist::validate(t.view());
  BOOST_TEST((std::vector<std::int32_t>(t.row_ids(1).begin(), t.row_ids(1).end()) == std::vector<std::int32_t>{9, 1}));
  BOOST_TEST(t.row_probs(1)[0] == 0.731059f, tt::tolerance(1e-5f));
  const auto no_fallback = build_targets(src, 10, {.empty_falls_back_to_pivot = false}, &piv);
  BOOST_TEST(no_fallback.row_ids(1).empty());
  // dense rows
  std::vector<float> dense(2 * 10, -1.0f);
  to_dense(t.view(), fusekit::host_view(dense.data(), std::array<std::int64_t, 2>{2, 10}));
  BOOST_TEST(dense[2] == 0.576117f, tt::tolerance(1e-5f));
  BOOST_TEST(dense[0] == 0.0f);
  BOOST_TEST(dense[10 + 9] == 0.731059f, tt::tolerance(1e-5f));
}

BOOST_AUTO_TEST_CASE(t2_6_metric_ce) {
  const std::vector<std::int64_t> labels{-100, -100, -100, 11, 12, 13};
  const std::vector<double> ce{0, 0, 1.2, 0.4, 2.0};
  BOOST_TEST(metric_ce(ce, labels) == 1.2, tt::tolerance(1e-12));
  const std::vector<std::int64_t> none(6, -100);
  BOOST_TEST(std::isnan(metric_ce(ce, none)));
  const std::vector<float> mask{0, 1, 1, 0, 0};  // explicit attention-style mask (FuseLLM)
  BOOST_TEST(metric_ce(ce, mask) == 0.6, tt::tolerance(1e-12));
  BOOST_CHECK_THROW(metric_ce(ce, std::span<const std::int64_t>(labels).first(4)), fusekit::error);
}

BOOST_AUTO_TEST_CASE(per_step_ce_from_logits) {
  // T3.3: z = [1,0,-1], gold 0 -> 0.407606; second position z = [0,0,0] gold 2 -> log 3
  const std::vector<float> z{1, 0, -1, 0, 0, 0, 5, 5, 5};
  const std::vector<std::int64_t> labels{7, 0, 2};
  const auto ce = per_step_ce(fusekit::matrix_view<const float>(fusekit::host_view(z.data(), std::array<std::int64_t, 2>{3, 3})), labels);
  BOOST_TEST(ce.size() == 2u);
  BOOST_TEST(ce[0] == 0.407606, tt::tolerance(1e-5));
  BOOST_TEST(ce[1] == std::log(3.0), tt::tolerance(1e-12));
  const std::vector<std::int64_t> ignored{7, -100, 2};
  BOOST_TEST(per_step_ce(fusekit::matrix_view<const float>(fusekit::host_view(z.data(), std::array<std::int64_t, 2>{3, 3})), ignored)[0] == 0.0);
}

BOOST_AUTO_TEST_CASE(t3_1_min_ce) {
  const std::vector<double> ce{1.2, 0.9};
  const auto r = fusion_rewards(ce);
  BOOST_TEST(r[0] == 0.301194f, tt::tolerance(1e-5f));
  BOOST_TEST(r[1] == 0.406570f, tt::tolerance(1e-5f));
  BOOST_TEST(min_ce_select(ce) == 1);
  // bf16 parity: 1.2 and 1.201 both round to 1.203125 -> equal rewards -> first (pivot) wins
  const fusion_options bf{.precision = reward_precision::bf16};
  const std::vector<double> tie{1.201, 1.2};
  BOOST_TEST(min_ce_select(tie, bf) == 0);
  BOOST_TEST(min_ce_select(tie) == 1);  // fp32 distinguishes them: the lower CE (source) wins
  const std::vector<double> close{1.2, 1.199};
  const auto rb = fusion_rewards(close, bf);
  BOOST_TEST(rb[0] == 0.30078125f);
  BOOST_TEST(rb[1] == 0.302734375f);
  BOOST_TEST(min_ce_select(close, bf) == 1);
  // exact ties: first maximum; NaN -> 1e5 (never chosen unless all NaN)
  const std::vector<double> eq{0.5, 0.5, 0.5};
  BOOST_TEST(min_ce_select(eq) == 0);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  BOOST_TEST(min_ce_select(std::vector<double>{nan, 3.0}) == 1);
  BOOST_TEST(min_ce_select(std::vector<double>{nan, nan}) == 0);
}

BOOST_AUTO_TEST_CASE(t3_2_avg_ce) {
  const std::vector<double> ce{1.2, 0.9};
  const auto w = avg_ce_weights(ce);
  BOOST_TEST(w[0] == 0.473680, tt::tolerance(1e-5));
  BOOST_TEST(w[1] == 0.526320, tt::tolerance(1e-5));
  // dense
  const std::vector<float> p0{0.7f, 0.2f, 0.1f}, p1{0.0f, 0.5f, 0.5f};
  std::vector<float> out(3);
  const fusekit::matrix_view<const float> views[] = {fusekit::host_view(p0.data(), std::array<std::int64_t, 2>{1, 3}),
                                                     fusekit::host_view(p1.data(), std::array<std::int64_t, 2>{1, 3})};
  fuse_dense<float, float>(views, w, fusekit::host_view(out.data(), std::array<std::int64_t, 2>{1, 3}));
  BOOST_TEST(out[0] == 0.331576f, tt::tolerance(1e-5f));
  BOOST_TEST(out[1] == 0.357896f, tt::tolerance(1e-5f));
  BOOST_TEST(out[2] == 0.310528f, tt::tolerance(1e-5f));
  // sparse: same result without densifying
  sparse_target<float> t0(3), t1(3);
  const std::vector<std::int32_t> i0{0, 1, 2}, i1{1, 2};
  const std::vector<float> q0{0.7f, 0.2f, 0.1f}, q1{0.5f, 0.5f};
  t0.push_row(i0, q0);
  t1.push_row(i1, q1);
  const sparse_target<float> teachers[] = {t0, t1};
  const auto f = avg_ce_fuse(teachers, ce);
  fusekit::dist::validate(f.view());
  BOOST_TEST(f.row_ids(0).size() == 3u);
  BOOST_TEST(f.row_probs(0)[0] == 0.331576f, tt::tolerance(1e-5f));
  BOOST_TEST(f.row_probs(0)[1] == 0.357896f, tt::tolerance(1e-5f));
  BOOST_TEST(f.row_probs(0)[2] == 0.310528f, tt::tolerance(1e-5f));
  // MinCE sparse picks teacher 1 wholesale; dense MinCE weights are one-hot
  const auto mc = min_ce_fuse(teachers, ce);
  BOOST_TEST((std::vector<std::int32_t>(mc.row_ids(0).begin(), mc.row_ids(0).end()) == i1));
  BOOST_TEST((fusion_weights_min_ce(ce) == std::vector<double>{0.0, 1.0}));
  // three teachers
  const auto w3 = avg_ce_weights(std::vector<double>{1.0, 2.0, 0.5});
  BOOST_TEST(w3[0] == 0.326579, tt::tolerance(1e-5));
  BOOST_TEST(w3[1] == 0.258818, tt::tolerance(1e-5));
  BOOST_TEST(w3[2] == 0.414603, tt::tolerance(1e-5));
}

BOOST_AUTO_TEST_CASE(sparse_target_invariants) {
  sparse_target<float> t(5);
  const std::vector<std::int32_t> ids{1, 1};
  const std::vector<float> p{0.5f, 0.5f};
  t.push_row(ids, p);
  BOOST_CHECK_EXCEPTION(fusekit::dist::validate(t.view()), fusekit::error,
                        [](const fusekit::error& e) { return std::string(e.what()).find("twice") != std::string::npos; });
  sparse_target<float> u(5);
  const std::vector<std::int32_t> ids2{1, 7};
  u.push_row(ids2, p);
  BOOST_CHECK_EXCEPTION(fusekit::dist::validate(u.view()), fusekit::error,
                        [](const fusekit::error& e) { return e.code() == fusekit::errc::out_of_range; });
  sparse_target<float> w(5);
  const std::vector<std::int32_t> ids3{1, 2};
  const std::vector<float> p3{0.5f, 0.2f};
  w.push_row(ids3, p3);
  BOOST_CHECK_THROW(fusekit::dist::validate(w.view()), fusekit::error);
  fusekit::dist::validate(w.view(), -1.0);  // sum check disabled
  w.push_empty_row();
  BOOST_TEST(w.rows() == 2);
  BOOST_TEST(w.view().row_begin(1) == w.view().row_end(1));
  BOOST_CHECK_THROW(w.push_row(ids3, std::span<const float>(p3).first(1)), fusekit::error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(real_data_pipeline)

namespace {
std::vector<std::vector<std::int32_t>> golden(const std::string& name) {
  std::vector<std::vector<std::int32_t>> ids;
  std::ifstream in(std::string(FUSEKIT_VOCAB_DATA_DIR) + "/corpus/tokenized/" + name + ".jsonl");
  BOOST_TEST_REQUIRE(in.good());
  std::string line;
  while (std::getline(in, line)) ids.push_back(nlohmann::json::parse(line).at("ids").get<std::vector<std::int32_t>>());
  return ids;
}
}  // namespace

BOOST_AUTO_TEST_CASE(same_tokenizer_alignment_is_identity_and_targets_are_valid) {
  const auto dir = std::string(FUSEKIT_VOCAB_DATA_DIR) + "/tokenizers/";
  const auto P = fusekit::vocab::load_hf_vocabulary(dir + "llama3/tokenizer.json");
  const auto S = fusekit::vocab::load_hf_vocabulary(dir + "qwen3/tokenizer.json");
  const auto pg = golden("llama3"), sg = golden("qwen3");
  const auto C = fusekit::vocab::build_alignment_matrix(fusekit::exec::par, P, S, pg, sg);
  const auto b2p = fusekit::vocab::ms_mapping(C, P, S).pivot_of;
  std::size_t checked = 0, onehot = 0, mapped = 0, rows = 0;
  for (std::size_t t = 0; t < pg.size(); t += 7) {
    // synthetic source top-3: the gold next source token and two fixed ids, descending logits
    const auto& s = sg[t];
    std::vector<std::int32_t> tk;
    std::vector<float> tl;
    for (std::size_t j = 0; j < s.size(); ++j) {
      tk.insert(tk.end(), {s[std::min(j + 1, s.size() - 1)], 13, 220});
      tl.insert(tl.end(), {5.0f, 2.0f, 1.0f});
    }
    const auto M = static_cast<std::int64_t>(s.size());
    const auto I = fusekit::host_view(tk.data(), std::array<std::int64_t, 2>{M, 3});
    const auto L = fusekit::host_view(tl.data(), std::array<std::int64_t, 2>{M, 3});
    // same tokenizer on both sides: every position maps 1-1 onto itself
    const auto self = align_distribution(S, S, s, s, I, L, std::span<const std::int32_t>{}, {.mode = alignment_mode::hard});
    for (std::int64_t i = 0; i < M; ++i) {
      const auto* row = &tk[static_cast<std::size_t>(3 * i)];
      const std::int64_t distinct = 1 + (row[1] != row[0]) + (row[2] != row[0] && row[2] != row[1]);
      BOOST_TEST_REQUIRE(self.row_size(i) == distinct);  // first occurrence of a pivot id wins
      BOOST_TEST_REQUIRE(self.row_ids(i)[0] == tk[static_cast<std::size_t>(3 * i)]);
    }
    // llama3 pivot <- qwen3 source, default mode with the MS table
    const auto a = align_distribution(P, S, pg[t], s, I, L, b2p);
    BOOST_TEST_REQUIRE(a.rows() == static_cast<std::int64_t>(pg[t].size()));
    for (std::int64_t i = 0; i < a.rows(); ++i) {
      BOOST_TEST_REQUIRE(a.row_size(i) <= 3);
      if (a.row_size(i) == 1 && a.row_logits(i)[0] == 1.0f) ++onehot;
      else if (a.row_size(i) > 0) ++mapped;
    }
    rows += static_cast<std::size_t>(a.rows());
    const auto target = build_targets(a, P.size());
    fusekit::dist::validate(target.view());
    ++checked;
  }
  BOOST_TEST_MESSAGE("llama3 <- qwen3 default mode: " << rows << " pivot positions, " << mapped << " mapped, " << onehot << " one-hot");
  BOOST_TEST(checked >= 40u);
  BOOST_TEST(mapped > onehot);  // the two byte-level vocabularies agree on most positions
}

BOOST_AUTO_TEST_SUITE_END()
