// Spec vectors T1.1–T1.8 (reference/fusechat-algorithms.md §1.5), randomized edit-distance checks,
// vocabulary and loader behaviour, count-matrix file format.
#include <boost/test/unit_test.hpp>

#include <fusekit/exec/policy.hpp>
#include <fusekit/vocab/alignment_matrix.hpp>
#include <fusekit/vocab/dtw.hpp>
#include <fusekit/vocab/edit_distance.hpp>
#include <fusekit/vocab/hf_tokenizer.hpp>
#include <fusekit/vocab/token_ids_jsonl.hpp>
#include <fusekit/vocab/token_cost.hpp>
#include <fusekit/vocab/utf8.hpp>
#include <fusekit/vocab/vocab_mapping.hpp>
#include <fusekit/vocab/vocabulary.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

using namespace fusekit::vocab;
using fusekit::errc;
using lists = std::vector<std::vector<std::int32_t>>;

namespace {

template <class F>
void expect_error(F&& f, errc code, const std::string& needle) {
  try {
    f();
    BOOST_ERROR("expected fusekit::error containing '" << needle << "'");
  } catch (const fusekit::error& e) {
    BOOST_TEST((e.code() == code), "error code " << to_string(e.code()) << " for: " << e.what());
    BOOST_TEST(std::string(e.what()).find(needle) != std::string::npos, "message '" << e.what() << "' lacks '" << needle << "'");
  }
}

std::vector<std::u32string> u32(std::initializer_list<const char*> s) {
  std::vector<std::u32string> out;
  for (auto* x : s) out.push_back(utf8_decode(x));
  return out;
}

// DTW with the cumulative matrix returned, for the D checks of T1.3–T1.5.
token_alignment dtw_with_d(const std::vector<std::u32string>& src, const std::vector<std::u32string>& piv,
                           const token_cost& cost, dtw_tie_order order, std::vector<std::int64_t>& D) {
  return dtw_align(
      static_cast<std::int64_t>(src.size()), static_cast<std::int64_t>(piv.size()),
      [&](std::int64_t j, std::int64_t i) { return cost(src[static_cast<std::size_t>(j)], piv[static_cast<std::size_t>(i)]); },
      dtw_options{order}, &D);
}

std::filesystem::path temp_file(const std::string& name, const std::string& content) {
  const auto dir = std::filesystem::temp_directory_path() / ("fusekit_vocab_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto p = dir / name;
  std::ofstream(p, std::ios::binary) << content;
  return p;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(edit_distance)

BOOST_AUTO_TEST_CASE(t1_1_levenshtein_on_code_points) {
  BOOST_TEST(levenshtein_utf8("kitten", "sitting") == 3);
  BOOST_TEST(levenshtein_utf8("Hel", "Hello") == 2);
  BOOST_TEST(levenshtein_utf8("▁the", "the") == 1);  // one code point, not 3 bytes
  BOOST_TEST(levenshtein_utf8("", "") == 0);
  BOOST_TEST(levenshtein_reference(utf8_decode("▁the"), utf8_decode("the")) == 1);
  BOOST_TEST(levenshtein_reference(std::u32string_view(U"kitten"), std::u32string_view(U"sitting")) == 3);
}

BOOST_AUTO_TEST_CASE(utf8_decoding) {
  BOOST_TEST((utf8_decode("a▁Ġ中😀") == std::u32string(U"a\u2581\u0120\u4e2d\U0001F600")));
  BOOST_TEST(utf8_encode(utf8_decode("a▁Ġ中😀")) == "a▁Ġ中😀");
  // ill-formed: lone continuation, truncated 3-byte sequence, overlong, surrogate
  BOOST_TEST((utf8_decode("\x80") == std::u32string(U"\uFFFD")));
  BOOST_TEST((utf8_decode("\xe4\xb8") == std::u32string(U"\uFFFD")));  // one maximal subpart
  BOOST_TEST((utf8_decode("\xe4\xb8x") == std::u32string(U"\uFFFDx")));
  BOOST_TEST((utf8_decode("\xc0\xaf") == std::u32string(U"\uFFFD\uFFFD")));
  BOOST_TEST((utf8_decode("\xed\xa0\x80") == std::u32string(U"\uFFFD\uFFFD\uFFFD")));
  BOOST_TEST(utf8_is_valid("中文"));
  BOOST_TEST(!utf8_is_valid("\xe4\xb8"));
}

BOOST_AUTO_TEST_CASE(fast_equals_reference_on_random_utf8) {
  std::mt19937 rng(12345);
  // ASCII, markers, Latin-1, CJK, emoji (4-byte), combining mark
  const std::vector<char32_t> alphabet = {U'a', U'b', U'c', U' ', U'\u2581', U'\u0120', U'\u00e9', U'\u4e2d',
                                          U'\u6587', U'\u5b57', U'\U0001F600', U'\U0001F680', U'\u0301'};
  int checked = 0;
  for (int it = 0; it < 20000; ++it) {
    const int maxlen = (it % 50 == 0) ? 300 : (it % 7 == 0 ? 80 : 16);  // single-word and blocked paths
    const int sigma = 1 + static_cast<int>(rng() % alphabet.size());
    std::uniform_int_distribution<int> len(0, maxlen);
    std::u32string a, b;
    for (int k = len(rng); k > 0; --k) a += alphabet[rng() % static_cast<unsigned>(sigma)];
    for (int k = len(rng); k > 0; --k) b += alphabet[rng() % static_cast<unsigned>(sigma)];
    const auto ref = levenshtein_reference(a, b);
    BOOST_TEST_REQUIRE(levenshtein(a, b) == ref);
    BOOST_TEST_REQUIRE(levenshtein(b, a) == ref);
    BOOST_TEST_REQUIRE(levenshtein_utf8(utf8_encode(a), utf8_encode(b)) == ref);
    ++checked;
  }
  BOOST_TEST(checked == 20000);
}

BOOST_AUTO_TEST_CASE(myers_pattern_dense_alphabet) {
  std::mt19937 rng(7);
  std::vector<std::uint64_t> table(40, 0);
  for (int it = 0; it < 3000; ++it) {
    std::vector<std::uint32_t> a(rng() % (it % 10 == 0 ? 150 : 20)), b(rng() % 30);
    for (auto& c : a) c = rng() % 40;
    for (auto& c : b) c = rng() % 40;
    const myers_pattern pat(a, table);
    std::u32string ua(a.begin(), a.end()), ub(b.begin(), b.end());
    BOOST_TEST_REQUIRE(pat.distance(b) == levenshtein_reference(ua, ub));
  }
  BOOST_TEST(std::all_of(table.begin(), table.end(), [](std::uint64_t x) { return x == 0; }));  // cleared again
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(token_alignment_spec)

BOOST_AUTO_TEST_CASE(t1_2_fusechat_cost_fallback) {
  const token_cost c{cost_rule::fusechat, U"Ġ", U"▁"};
  BOOST_TEST(c.utf8("Ġ", "▁") == 0);
  BOOST_TEST(c.utf8("Ġ", "▁a") == 1);
  BOOST_TEST(c.utf8("Ġa", "▁") == 1);
  BOOST_TEST(c.utf8(" cats", "cats") == 1);  // a real space is not a marker
  // FuseLLM cost has no fallback: both stripped to "" -> 0, "" vs "a" -> 1
  const token_cost f{cost_rule::fusellm, U"Ġ", U"▁"};
  BOOST_TEST(f.utf8("Ġa", "▁") == 1);
  BOOST_TEST(f.utf8("Ġ", "▁abc") == 3);
  BOOST_TEST(c.utf8("Ġ", "▁abc") == 3);
  BOOST_TEST(f.utf8("Ġthe", "▁the") == 0);
}

BOOST_AUTO_TEST_CASE(t1_3_dtw_fusechat_cost) {
  const token_cost c{cost_rule::fusechat, U"Ġ", U"▁"};
  for (auto order : {dtw_tie_order::fusechat, dtw_tie_order::fusellm}) {
    std::vector<std::int64_t> D;
    const auto a = dtw_with_d(u32({"Hel", "lo", "Ġworld"}), u32({"▁Hello", "▁world"}), c, order, D);
    BOOST_TEST((D == std::vector<std::int64_t>{2, 6, 5, 6, 9, 5}));
    BOOST_TEST(a.total_cost == 5);
    BOOST_TEST((a.to_lists() == lists{{0, 1}, {2}}));
  }
  // the string overload gives the same
  const std::vector<std::string> src{"Hel", "lo", "Ġworld"}, piv{"▁Hello", "▁world"};
  BOOST_TEST((dtw_align(src, piv, c).to_lists() == lists{{0, 1}, {2}}));
}

BOOST_AUTO_TEST_CASE(t1_4_dtw) {
  const token_cost c{cost_rule::fusechat, U"Ġ", U"▁"};
  std::vector<std::int64_t> D;
  const auto a = dtw_with_d(u32({"The", "Ġcat", "Ġsat"}), u32({"▁The", "▁c", "at", "▁sat"}), c, dtw_tie_order::fusechat, D);
  BOOST_TEST((D == std::vector<std::int64_t>{0, 3, 6, 9, 3, 2, 3, 4, 6, 5, 3, 3}));
  BOOST_TEST(a.total_cost == 3);
  BOOST_TEST((a.to_lists() == lists{{0}, {1}, {1}, {2}}));
}

BOOST_AUTO_TEST_CASE(t1_5_tie_orders) {
  const token_cost c{cost_rule::plain, U"", U""};
  std::vector<std::int64_t> D;
  const auto src = u32({"a", "b", "a"}), piv = u32({"b", "a", "b"});
  const auto chat = dtw_with_d(src, piv, c, dtw_tie_order::fusechat, D);
  BOOST_TEST((D == std::vector<std::int64_t>{1, 1, 2, 1, 2, 1, 2, 1, 2}));
  BOOST_TEST(chat.total_cost == 2);
  BOOST_TEST((chat.to_lists() == lists{{0, 1}, {2}, {2}}));
  const auto llm = dtw_with_d(src, piv, c, dtw_tie_order::fusellm, D);
  BOOST_TEST((llm.to_lists() == lists{{0}, {0}, {1, 2}}));
}

BOOST_AUTO_TEST_CASE(string_dtw_equals_reference_cost_dtw) {
  // The string overload computes its cost table with dense-alphabet and 4-lane Myers kernels; the
  // generic overload here calls the reference DP per cell. Paths and totals must be identical.
  std::mt19937 rng(2024);
  const std::vector<std::string> pool = {"Ġ", "▁", "Ġthe", "▁the", "the", " cats", "cats", "s", "中文", "😀x",
                                         "ĠĠĠ", "a", "ab", "ba", "Ġab", "", std::string(70, 'q'), "▁" + std::string(66, 'q')};
  for (cost_rule rule : {cost_rule::fusechat, cost_rule::fusellm, cost_rule::plain})
    for (auto order : {dtw_tie_order::fusechat, dtw_tie_order::fusellm})
      for (int it = 0; it < 40; ++it) {
        std::vector<std::string> src(1 + rng() % 25), piv(1 + rng() % 25);
        for (auto& t : src) t = pool[rng() % pool.size()];
        for (auto& t : piv) t = pool[rng() % pool.size()];
        const token_cost cost{rule, U"Ġ", U"▁"};
        const auto fast = dtw_align(src, piv, cost, {order});
        const auto ref = dtw_align(
            static_cast<std::int64_t>(src.size()), static_cast<std::int64_t>(piv.size()),
            [&](std::int64_t j, std::int64_t i) {
              const auto a = cost.prepare_source(utf8_decode(src[static_cast<std::size_t>(j)]));
              const auto b = cost.prepare_pivot(utf8_decode(piv[static_cast<std::size_t>(i)]));
              if (rule == cost_rule::fusechat && (a.stripped.empty() || b.stripped.empty()))
                return levenshtein_reference(a.fallback, b.fallback);
              return levenshtein_reference(a.stripped, b.stripped);
            },
            dtw_options{order});
        BOOST_TEST_REQUIRE(fast.total_cost == ref.total_cost);
        BOOST_TEST_REQUIRE((fast.path == ref.path));
        BOOST_TEST_REQUIRE((fast.to_lists() == ref.to_lists()));
      }
}

BOOST_AUTO_TEST_CASE(dtw_rejects_empty) {
  const token_cost c{};
  const std::vector<std::string> empty, one{"a"};
  expect_error([&] { (void)dtw_align(empty, one, c); }, errc::invalid_argument, "non-empty");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(mapping_spec)

namespace {
vocabulary t16_pivot() {
  auto v = vocabulary::from_strings({"<unk>", "<s>", "</s>", "▁the", "▁cat", "s", "▁cats", "▁a", "▁b"},
                                    token_encoding::sentencepiece);
  v.set_unk_id(0);
  v.set_bos_id(1);
  v.set_eos_id(2);
  return v;
}
vocabulary t16_source() {
  auto v = vocabulary::from_strings({"<|endoftext|>", "Ġthe", "Ġcats", "Ġcat", "s", "Ġab"}, token_encoding::byte_level);
  v.set_eos_id(0);
  return v;
}
count_matrix t16_counts() {
  const std::vector<std::tuple<std::int32_t, std::int32_t, std::uint32_t>> t = {
      {3, 1, 10}, {6, 2, 3}, {4, 2, 2}, {5, 2, 2}, {4, 3, 5}, {5, 4, 1}, {7, 5, 1}, {8, 5, 5}};
  return count_matrix::from_triplets(9, 6, t);
}
}  // namespace

BOOST_AUTO_TEST_CASE(t1_6_ms_fusechat_score) {
  const auto m = ms_mapping(t16_counts(), t16_pivot(), t16_source(), {.rule = ms_rule::fusechat_score});
  BOOST_TEST((m.pivot_of == std::vector<std::int32_t>{2, 3, 6, 4, 5, 7}));
  // without the EOS override, source 0 (no candidates) goes to unk
  const auto no = ms_mapping(t16_counts(), t16_pivot(), t16_source(),
                             {.rule = ms_rule::fusechat_score, .special_overrides = false});
  BOOST_TEST(no.pivot_of[0] == 0);
  // no unk in the pivot -> eos; minus_one policy -> -1
  auto piv = t16_pivot();
  piv.set_unk_id(-1);
  BOOST_TEST(ms_mapping(t16_counts(), piv, t16_source(), {.special_overrides = false}).pivot_of[0] == 2);
  BOOST_TEST(ms_mapping(t16_counts(), piv, t16_source(), {.unmapped = unmapped_policy::minus_one, .special_overrides = false})
                 .pivot_of[0] == -1);
}

BOOST_AUTO_TEST_CASE(t1_6_ms_frequency_first) {
  // default rule: counts decide -> Ġcats -> ▁cats (3 > 2), Ġab -> ▁b (5 > 1)
  const auto m = ms_mapping(t16_counts(), t16_pivot(), t16_source());
  BOOST_TEST((m.pivot_of == std::vector<std::int32_t>{2, 3, 6, 4, 5, 8}));
  BOOST_TEST(m.distance[2] == 0);
  BOOST_TEST(m.distance[5] == 1);
  BOOST_TEST(m.distance[0] == -1);  // override
}

BOOST_AUTO_TEST_CASE(ms_bos_then_eos_override_order) {
  auto src = t16_source();
  src.set_bos_id(0);  // bos == eos == 0: eos wins
  const auto m = ms_mapping(t16_counts(), t16_pivot(), src);
  BOOST_TEST(m.pivot_of[0] == 2);
  auto src2 = t16_source();
  src2.set_eos_id(-1);
  src2.set_bos_id(0);
  BOOST_TEST(ms_mapping(t16_counts(), t16_pivot(), src2).pivot_of[0] == 1);
}

BOOST_AUTO_TEST_CASE(t1_7_set_semantics) {
  const token_cost c{cost_rule::plain, U"", U""};
  // A = [[0],[1,2]] for pivot ids [3,6], source ids [1,4,4]
  token_alignment a;
  a.source_size = 3;
  a.pivot_size = 2;
  a.offsets = {0, 1, 3};
  a.source_positions = {0, 1, 2};
  std::vector<std::uint64_t> keys;
  const std::vector<std::int32_t> piv{3, 6}, src{1, 4, 4};
  add_alignment_counts(keys, piv, src, a);
  const auto C = count_matrix::from_keys(9, 6, keys);
  BOOST_TEST(C(3, 1) == 1u);
  BOOST_TEST(C(6, 4) == 1u);  // not 2
  BOOST_TEST(C.nnz() == 2);
  BOOST_TEST(C.total() == 2u);
}

BOOST_AUTO_TEST_CASE(t1_8_fusellm_mined) {
  const auto piv = vocabulary::from_strings({"<unk>", "▁the", "▁cat", "s", "▁dog"}, token_encoding::sentencepiece);
  const auto src = vocabulary::from_strings({"Ġcats", "Ġdo", "Ġthe", "Ġ"}, token_encoding::byte_level);
  for (int threads : {1, 2}) {
    const auto m = mined_mapping(fusekit::exec::parallel_policy{threads}, piv, src);
    BOOST_TEST((m.pivot_of == std::vector<std::int32_t>{2, 4, 1, 3}));
    BOOST_TEST((m.distance == std::vector<std::int32_t>{1, 1, 0, 1}));
  }
  const auto e = em_mapping(piv, src);
  BOOST_TEST((e.pivot_of == std::vector<std::int32_t>{-1, -1, 1, -1}));
  const auto tie = vocabulary::from_strings({"ab", "ba", "ac"}, token_encoding::plain);
  const auto q = vocabulary::from_strings({"aa", "bb"}, token_encoding::plain);
  const auto mt = mined_mapping(fusekit::exec::seq, tie, q);
  BOOST_TEST((mt.pivot_of == std::vector<std::int32_t>{0, 0}));  // "aa": ab=1, ac=1 -> 0; "bb": ab=1, ba=1 -> 0
}

BOOST_AUTO_TEST_CASE(mined_equals_brute_force_random) {
  std::mt19937 rng(99);
  const std::vector<std::string> sym = {"a", "b", "c", "▁", "中", "😀"};
  auto rand_str = [&](int maxlen) {
    std::string s;
    for (int k = static_cast<int>(rng() % static_cast<unsigned>(maxlen)) + 1; k > 0; --k) s += sym[rng() % sym.size()];
    return s;
  };
  std::vector<std::string> p, s;
  for (int k = 0; k < 400; ++k) p.push_back(rand_str(k % 37 == 0 ? 70 : 7));
  for (int k = 0; k < 300; ++k) s.push_back(rand_str(k % 41 == 0 ? 80 : 8));
  const auto piv = vocabulary::from_strings(p, token_encoding::plain);
  const auto src = vocabulary::from_strings(s, token_encoding::plain);
  const auto m = mined_mapping(fusekit::exec::par, piv, src);
  for (std::size_t v = 0; v < s.size(); ++v) {
    std::int32_t best = -1, bd = 0;
    for (std::size_t q = 0; q < p.size(); ++q) {
      const auto d = levenshtein_reference(utf8_decode(s[v]), utf8_decode(p[q]));
      if (best < 0 || d < bd) {
        best = static_cast<std::int32_t>(q);
        bd = d;
      }
    }
    // exact match = smallest id with the same string = first minimum at distance 0
    BOOST_TEST_REQUIRE(m.pivot_of[v] == best);
    BOOST_TEST_REQUIRE(m.distance[v] == bd);
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(vocabulary_basics)

BOOST_AUTO_TEST_CASE(byte_level_and_sentencepiece_decoding) {
  const auto bl = vocabulary::from_strings({"Ġthe", "Ċ", "ä¸Ń", "<|endoftext|>", "\xc3\xa4\xc2\xb8"}, token_encoding::byte_level);
  BOOST_TEST(bl.marker() == "Ġ");
  BOOST_TEST(bl.bytes(0) == " the");
  BOOST_TEST(bl.bytes(1) == "\n");
  BOOST_TEST(bl.bytes(2) == "中");                // 3 bytes through the GPT-2 byte map
  BOOST_TEST(bl.decode_token(4) == "\xef\xbf\xbd");  // incomplete fragment "\xe4\xb8" -> one U+FFFD
  const auto sp = vocabulary::from_strings({"▁the", "<0x0A>", "<0xE4>", "cat"}, token_encoding::sentencepiece);
  BOOST_TEST(sp.bytes(0) == " the");
  BOOST_TEST(sp.bytes(1) == "\n");
  BOOST_TEST((sp.kind(1) == token_kind::byte_fallback));
  BOOST_TEST(sp.decode_token(2) == "\xef\xbf\xbd");
  const std::vector<std::int32_t> ids{0, 3};
  BOOST_TEST(sp.decode_bytes(ids) == " thecat");
  auto legacy = sp;
  legacy.set_strip_leading_space(true);
  BOOST_TEST(legacy.decode_bytes(ids) == "thecat");
  BOOST_TEST(legacy.decode_token(0) == "the");
  expect_error([&] { (void)sp.raw(4); }, errc::out_of_range, "token id 4");
}

BOOST_AUTO_TEST_CASE(clean_up_tokenization_spaces) {
  BOOST_TEST(clean_up_tokenization("a . b , c n't 's") == "a. b, cn't's");
  auto v = vocabulary::from_strings({"Ġ."}, token_encoding::byte_level);
  BOOST_TEST(v.decode_token(0) == " .");
  v.set_clean_up_spaces(true);
  BOOST_TEST(v.decode_token(0) == ".");
}

BOOST_AUTO_TEST_CASE(hf_loader_minimal_and_errors) {
  const std::string tok = R"({"model": {"type": "BPE", "byte_fallback": true, "unk_token": "<unk>",
      "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "▁a": 3, "<0x0A>": 4}, "merges": ["▁ a"]},
    "added_tokens": [{"id": 1, "content": "<s>", "special": true}, {"id": 5, "content": "<extra>", "special": true}],
    "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                 {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}})";
  const auto p = temp_file("tokenizer.json", tok);
  temp_file("tokenizer_config.json", R"({"bos_token": "<s>", "eos_token": {"content": "</s>"}, "pad_token": null,
    "clean_up_tokenization_spaces": false})");
  const auto v = load_hf_vocabulary(p);
  BOOST_TEST(v.size() == 6);
  BOOST_TEST((v.encoding() == token_encoding::sentencepiece));
  BOOST_TEST(v.marker() == "▁");
  BOOST_TEST(v.strip_leading_space());
  BOOST_TEST(v.bos_id() == 1);
  BOOST_TEST(v.eos_id() == 2);
  BOOST_TEST(v.unk_id() == 0);
  BOOST_TEST(v.pad_id() == -1);
  BOOST_TEST((v.kind(4) == token_kind::byte_fallback));
  BOOST_TEST((v.kind(5) == token_kind::special));
  BOOST_TEST((v.kind(1) == token_kind::special));  // in the model vocabulary and flagged special
  BOOST_TEST((v.kind(2) == token_kind::normal));   // "</s>" is not listed in added_tokens here
  BOOST_TEST(v.decode_token(3) == "a");
  // overrides
  const auto o = load_hf_vocabulary(p, {.ignore_config = true, .marker = std::string("#")});
  BOOST_TEST(o.marker() == "#");
  BOOST_TEST(o.bos_id() == -1);

  expect_error([&] { (void)load_hf_vocabulary(temp_file("bad.json", "{\"model\": {")); }, errc::parse_error, "bad.json");
  expect_error([&] { (void)load_hf_vocabulary(temp_file("novocab.json", R"({"model": {"type": "BPE"}})"), {.ignore_config = true}); },
               errc::parse_error, "model.vocab");
  expect_error([&] { (void)load_hf_vocabulary(temp_file("strid.json", R"({"model": {"vocab": {"a": "x"}}})"), {.ignore_config = true}); },
               errc::parse_error, "not an integer id");
  expect_error([&] { (void)load_hf_vocabulary(temp_file("dup.json", R"({"model": {"vocab": {"a": 0, "b": 0}}})"), {.ignore_config = true}); },
               errc::parse_error, "used by both");
  expect_error([&] { (void)load_hf_vocabulary(temp_file("neg.json", R"({"model": {"vocab": {"a": -3}}})"), {.ignore_config = true}); },
               errc::parse_error, "out of range");
  // one huge id would size every dense table (found by tests/io/fuzz_text_parsers.cpp: 20M-entry vocabulary)
  expect_error([&] { (void)load_hf_vocabulary(temp_file("huge.json", R"({"model": {"vocab": {"a": 0, "b": 1999999999}}})"), {.ignore_config = true}); },
               errc::parse_error, "id 1999999999 out of range [0, 16777216)");
  expect_error([&] { (void)load_hf_vocabulary(temp_file("huge_added.json", R"({"model": {"vocab": {"a": 0}}, "added_tokens": [{"id": 16777216, "content": "b"}]})"), {.ignore_config = true}); },
               errc::parse_error, "added_tokens[0]");
  expect_error([&] { (void)load_hf_vocabulary("/nonexistent/tokenizer.json"); }, errc::io_error, "/nonexistent/tokenizer.json");
  expect_error([&] { (void)load_hf_vocabulary(temp_file("special.json", R"({"model": {"vocab": {"a": 0}}, "added_tokens": [{"id": 1, "content": "b", "special": "yes"}]})"), {.ignore_config = true}); },
               errc::parse_error, "special.json");
  const auto badcfg = temp_file("cfg_bad.json", R"({"eos_token": "<nope>"})");
  expect_error([&] { (void)load_hf_vocabulary(p, {.config_path = badcfg}); }, errc::parse_error, "eos_token");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(count_matrix_file)

BOOST_AUTO_TEST_CASE(round_trip_and_corruption) {
  const std::vector<std::tuple<std::int32_t, std::int32_t, std::uint32_t>> t = {{0, 2, 3}, {0, 5, 1}, {4, 0, 7}, {4, 2, 2}};
  const auto c = count_matrix::from_triplets(6, 7, t);
  std::stringstream ss;
  write_count_matrix(ss, c);
  const std::string bytes = ss.str();
  BOOST_TEST(bytes.size() == 40u + 8u * 7u + 4u * 4u + 4u * 4u);
  BOOST_TEST(bytes.substr(0, 8) == "FKALNCSR");
  std::stringstream in(bytes);
  const auto r = read_count_matrix(in, "mem");
  BOOST_TEST((r.row_offsets == c.row_offsets));
  BOOST_TEST((r.col_index == c.col_index));
  BOOST_TEST((r.counts == c.counts));
  BOOST_TEST(r(4, 0) == 7u);
  BOOST_TEST(r(3, 3) == 0u);

  std::string bad = bytes;
  bad[0] = 'X';
  std::stringstream b1(bad);
  expect_error([&] { (void)read_count_matrix(b1, "x.bin"); }, errc::parse_error, "bad magic");
  std::stringstream b2(bytes.substr(0, bytes.size() - 3));
  expect_error([&] { (void)read_count_matrix(b2, "x.bin"); }, errc::parse_error, "truncated");
  std::string unsorted = bytes;  // swap the two column ids of row 0
  std::swap(unsorted[40 + 56 + 0], unsorted[40 + 56 + 4]);
  std::stringstream b3(unsorted);
  expect_error([&] { (void)read_count_matrix(b3, "x.bin"); }, errc::parse_error, "ascending");
  expect_error([&] { (void)read_count_matrix(std::filesystem::path("/nonexistent.bin")); }, errc::io_error, "nonexistent");
}

BOOST_AUTO_TEST_CASE(mutated_files_fail_cleanly) {
  // Every mutation of a valid file either parses or throws fusekit::error — never anything else.
  const std::vector<std::tuple<std::int32_t, std::int32_t, std::uint32_t>> t = {{0, 2, 3}, {0, 5, 1}, {4, 0, 7}, {4, 2, 2}};
  std::stringstream ss;
  write_count_matrix(ss, count_matrix::from_triplets(6, 7, t));
  const std::string good = ss.str();
  std::mt19937 rng(77);
  int rejected = 0, accepted = 0;
  for (int it = 0; it < 3000; ++it) {
    std::string bad = good;
    for (int k = 1 + static_cast<int>(rng() % 3); k > 0; --k) bad[rng() % bad.size()] = static_cast<char>(rng() % 256);
    if (it % 5 == 0) bad.resize(rng() % bad.size());
    std::stringstream in(bad);
    try {
      const auto c = read_count_matrix(in, "fuzz");
      for (std::int64_t p = 0; p < c.rows; ++p)  // an accepted matrix is internally consistent
        for (auto k = c.row_offsets[static_cast<std::size_t>(p)]; k < c.row_offsets[static_cast<std::size_t>(p) + 1]; ++k)
          BOOST_TEST_REQUIRE(c(p, c.col_index[static_cast<std::size_t>(k)]) > 0u);
      ++accepted;
    } catch (const fusekit::error&) {
      ++rejected;
    }
  }
  BOOST_TEST(rejected > 1000);
  BOOST_TEST(accepted + rejected == 3000);

  const std::string line = "{\"id\": 3, \"ids\": [1, 2, 30]}\n";
  int jsonl_rejected = 0;
  for (int it = 0; it < 500; ++it) {
    std::string bad = line;
    bad[rng() % (bad.size() - 1)] = "{}[],:\"x9- "[rng() % 12];
    const auto path = temp_file("fuzz.jsonl", bad);
    try {
      const auto c = read_token_ids_jsonl(path, 31);
      for (const auto& text : c.texts)
        for (auto id : text) BOOST_TEST_REQUIRE((id >= 0 && id < 31));
    } catch (const fusekit::error& e) {
      ++jsonl_rejected;
      BOOST_TEST_REQUIRE(std::string(e.what()).find("fuzz.jsonl") != std::string::npos);
    }
  }
  BOOST_TEST(jsonl_rejected > 100);
}

BOOST_AUTO_TEST_CASE(mutated_tokenizer_json_fails_cleanly) {
  const std::string tok = R"({"model": {"type": "BPE", "byte_fallback": true, "unk_token": "<unk>",
      "vocab": {"<unk>": 0, "<s>": 1, "▁a": 2, "<0x0A>": 3}},
    "added_tokens": [{"id": 1, "content": "<s>", "special": true}, {"id": 4, "content": "<x>", "special": false}],
    "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                 {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}})";
  std::mt19937 rng(31);
  int ok = 0, rejected = 0;
  for (int it = 0; it < 600; ++it) {
    std::string bad = tok;
    for (int k = 1 + static_cast<int>(rng() % 2); k > 0; --k) bad[rng() % bad.size()] = "{}[],:\"0-9aet "[rng() % 15];
    const auto p = temp_file("fuzz_tokenizer.json", bad);
    try {
      const auto v = load_hf_vocabulary(p, {.ignore_config = true});
      for (std::int64_t id = 0; id < v.size(); ++id)
        if (v.contains(id)) (void)v.decode_token(id);
      ++ok;
    } catch (const fusekit::error& e) {
      ++rejected;
      BOOST_TEST_REQUIRE(std::string(e.what()).find("fuzz_tokenizer.json") != std::string::npos, e.what());
    }
  }
  BOOST_TEST(ok + rejected == 600);
  BOOST_TEST(rejected > 100);
}

BOOST_AUTO_TEST_SUITE_END()
