// Real-data tests: four real Hugging Face tokenizers, a 322-text corpus and its golden tokenizations
// (tests/data/vocab/fusekit_vocab_data.tar.xz, extracted at configure time).
#include <boost/test/unit_test.hpp>

#include <fusekit/exec/policy.hpp>
#include <fusekit/vocab/alignment_matrix.hpp>
#include <fusekit/vocab/dtw.hpp>
#include <fusekit/vocab/edit_distance.hpp>
#include <fusekit/vocab/hf_tokenizer.hpp>
#include <fusekit/vocab/vocab_mapping.hpp>

#include <nlohmann/json.hpp>

#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace fusekit::vocab;

namespace {

const std::string data_dir = FUSEKIT_VOCAB_DATA_DIR;

const vocabulary& tok(const std::string& name) {
  static std::map<std::string, std::unique_ptr<vocabulary>> cache;
  auto& p = cache[name];
  if (!p) p = std::make_unique<vocabulary>(load_hf_vocabulary(data_dir + "/tokenizers/" + name + "/tokenizer.json"));
  return *p;
}

const std::vector<std::string>& corpus() {
  static const std::vector<std::string> texts = [] {
    std::vector<std::string> t;
    std::ifstream in(data_dir + "/corpus/corpus.jsonl");
    BOOST_TEST_REQUIRE(in.good());
    std::string line;
    while (std::getline(in, line)) t.push_back(nlohmann::json::parse(line).at("text").get<std::string>());
    return t;
  }();
  return texts;
}

const std::vector<std::vector<std::int32_t>>& golden(const std::string& name) {
  static std::map<std::string, std::vector<std::vector<std::int32_t>>> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second;
  std::vector<std::vector<std::int32_t>> ids;
  std::ifstream in(data_dir + "/corpus/tokenized/" + name + ".jsonl");
  BOOST_TEST_REQUIRE(in.good());
  std::string line;
  while (std::getline(in, line)) ids.push_back(nlohmann::json::parse(line).at("ids").get<std::vector<std::int32_t>>());
  return cache[name] = std::move(ids);
}

std::vector<std::u32string> decoded_strings(const vocabulary& v, const std::vector<std::int32_t>& ids) {
  std::vector<std::u32string> out;
  for (auto id : ids) out.push_back(utf8_decode(v.decode_token(id)));
  return out;
}

// Independent minimum-path cost: top-down recursion over all monotone paths, reference Levenshtein.
std::int64_t brute_force_dtw_cost(const std::vector<std::u32string>& src, const std::vector<std::u32string>& piv,
                                  const token_cost& cost) {
  const std::size_t M = src.size(), N = piv.size();
  std::vector<std::int64_t> memo(M * N, -1);
  auto ref_cost = [&](std::size_t j, std::size_t i) {
    const auto a = cost.prepare_source(src[j]);
    const auto b = cost.prepare_pivot(piv[i]);
    if (cost.rule == cost_rule::fusechat && (a.stripped.empty() || b.stripped.empty()))
      return static_cast<std::int64_t>(levenshtein_reference(a.fallback, b.fallback));
    return static_cast<std::int64_t>(levenshtein_reference(a.stripped, b.stripped));
  };
  std::function<std::int64_t(std::size_t, std::size_t)> best = [&](std::size_t j, std::size_t i) -> std::int64_t {
    auto& m = memo[j * N + i];
    if (m >= 0) return m;
    std::int64_t prev = 0;
    if (j > 0 || i > 0) {
      prev = std::numeric_limits<std::int64_t>::max();
      if (j > 0) prev = std::min(prev, best(j - 1, i));
      if (i > 0) prev = std::min(prev, best(j, i - 1));
      if (j > 0 && i > 0) prev = std::min(prev, best(j - 1, i - 1));
    }
    return m = prev + ref_cost(j, i);
  };
  return best(M - 1, N - 1);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(real_tokenizers)

BOOST_AUTO_TEST_CASE(load_all_four) {
  struct expect {
    const char* name;
    std::int64_t size;
    token_encoding enc;
    const char* marker;
    std::int32_t bos, eos, unk, pad;
    bool strip;
  };
  const expect cases[] = {
      {"llama3", 128256, token_encoding::byte_level, "Ġ", 128000, 128001, -1, -1, false},
      {"qwen3", 151669, token_encoding::byte_level, "Ġ", -1, 151645, -1, 151643, false},
      {"gemma3", 262145, token_encoding::sentencepiece, "▁", 2, 106, 3, 0, false},
      {"mistral-7b-v0.1", 32000, token_encoding::sentencepiece, "▁", 1, 2, 0, -1, true},
  };
  for (const auto& c : cases) {
    const auto& v = tok(c.name);
    BOOST_TEST_CONTEXT(c.name) {
      BOOST_TEST(v.size() == c.size);
      BOOST_TEST((v.encoding() == c.enc));
      BOOST_TEST(v.marker() == c.marker);
      BOOST_TEST(v.bos_id() == c.bos);
      BOOST_TEST(v.eos_id() == c.eos);
      BOOST_TEST(v.unk_id() == c.unk);
      BOOST_TEST(v.pad_id() == c.pad);
      BOOST_TEST(v.strip_leading_space() == c.strip);
      std::int64_t absent = 0;
      for (std::int64_t id = 0; id < v.size(); ++id) absent += !v.contains(id);
      BOOST_TEST(absent == 0);
    }
  }
  // byte-fallback tokens: 256 in each SentencePiece vocabulary, none in byte-level ones
  for (const char* n : {"gemma3", "mistral-7b-v0.1", "llama3"}) {
    std::int64_t bytes = 0;
    for (std::int64_t id = 0; id < tok(n).size(); ++id) bytes += tok(n).kind(id) == token_kind::byte_fallback;
    BOOST_TEST(bytes == (std::string(n) == "llama3" ? 0 : 256), n);
  }
  BOOST_TEST(tok("mistral-7b-v0.1").decode_token(tok("mistral-7b-v0.1").find("▁the")) == "the");  // legacy strip
  BOOST_TEST((tok("mistral-7b-v0.1").kind(1) == token_kind::special));
  BOOST_TEST(tok("mistral-7b-v0.1").decode_token(1) == "<s>");
  BOOST_TEST(tok("qwen3").decode_token(151643) == "<|endoftext|>");
  BOOST_TEST((tok("llama3").kind(128000) == token_kind::special));
  BOOST_TEST(tok("gemma3").decode_token(tok("gemma3").find("▁the")) == " the");
  BOOST_TEST(tok("llama3").decode_token(tok("llama3").find("Ġthe")) == " the");
}

BOOST_AUTO_TEST_CASE(golden_ids_decode_to_the_text) {
  const auto& texts = corpus();
  BOOST_TEST(texts.size() == 322u);
  for (const char* n : {"llama3", "qwen3", "gemma3", "mistral-7b-v0.1"}) {
    const auto& ids = golden(n);
    BOOST_TEST_REQUIRE(ids.size() == texts.size());
    std::size_t ok = 0;
    for (std::size_t t = 0; t < texts.size(); ++t) {
      for (auto id : ids[t]) BOOST_TEST_REQUIRE(tok(n).contains(id));
      if (tok(n).decode_bytes(ids[t]) == texts[t]) ++ok;
      else BOOST_ERROR(n << " text " << t << " does not decode back");
    }
    BOOST_TEST(ok == texts.size(), n);
  }
}

BOOST_AUTO_TEST_CASE(shared_string_counts) {
  // Facts stated in the data README: identical raw strings and identical decoded byte strings.
  auto shared_raw = [](const vocabulary& a, const vocabulary& b) {
    std::int64_t n = 0;
    for (std::int64_t id = 0; id < a.size(); ++id) n += b.find(a.raw(id)) >= 0;
    return n;
  };
  BOOST_TEST(shared_raw(tok("llama3"), tok("qwen3")) == 109566);
  BOOST_TEST(shared_raw(tok("llama3"), tok("gemma3")) == 25036);
  std::set<std::string> gem;
  for (std::int64_t id = 0; id < tok("gemma3").size(); ++id) gem.insert(tok("gemma3").bytes(id));
  std::int64_t shared_bytes = 0;
  for (std::int64_t id = 0; id < tok("llama3").size(); ++id) shared_bytes += gem.count(tok("llama3").bytes(id));
  BOOST_TEST_MESSAGE("llama3/gemma3 tokens with identical decoded bytes: " << shared_bytes);
  BOOST_TEST(shared_bytes == 86434);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(real_alignment)

BOOST_AUTO_TEST_CASE(dtw_invariants_over_the_corpus) {
  const std::pair<const char*, const char*> pairs[] = {
      {"llama3", "qwen3"}, {"llama3", "gemma3"}, {"mistral-7b-v0.1", "qwen3"}};
  for (auto [pn, sn] : pairs) {
    const auto& P = tok(pn);
    const auto& S = tok(sn);
    const token_cost cost{cost_rule::fusechat, utf8_decode(S.marker()), utf8_decode(P.marker())};
    std::size_t brute_checked = 0, texts = 0;
    for (std::size_t t = 0; t < corpus().size(); ++t) {
      const auto& pid = golden(pn)[t];
      const auto& sid = golden(sn)[t];
      if (pid.empty() || sid.empty()) continue;
      const auto u = decoded_strings(P, pid);
      const auto w = decoded_strings(S, sid);
      const auto a = dtw_align(w, u, cost);
      const auto M = static_cast<std::int32_t>(w.size()), N = static_cast<std::int32_t>(u.size());
      BOOST_TEST_CONTEXT(pn << " <- " << sn << " text " << t) {
        // monotone unit steps from (0,0) to (M-1,N-1)
        BOOST_TEST_REQUIRE((a.path.front() == std::pair<std::int32_t, std::int32_t>{0, 0}));
        BOOST_TEST_REQUIRE((a.path.back() == std::pair<std::int32_t, std::int32_t>{M - 1, N - 1}));
        std::int64_t path_cost = cost(w[0], u[0]);
        for (std::size_t k = 1; k < a.path.size(); ++k) {
          const int dj = a.path[k].first - a.path[k - 1].first, di = a.path[k].second - a.path[k - 1].second;
          BOOST_TEST_REQUIRE(((dj == 1 && di == 1) || (dj == 1 && di == 0) || (dj == 0 && di == 1)));
          path_cost += cost(w[static_cast<std::size_t>(a.path[k].first)], u[static_cast<std::size_t>(a.path[k].second)]);
        }
        BOOST_TEST_REQUIRE(path_cost == a.total_cost);
        // every pivot position aligned, ascending lists, every source position covered
        std::vector<int> covered(static_cast<std::size_t>(M), 0);
        for (std::int32_t i = 0; i < N; ++i) {
          const auto A = a[i];
          BOOST_TEST_REQUIRE(!A.empty());
          for (std::size_t k = 0; k < A.size(); ++k) {
            if (k > 0) BOOST_TEST_REQUIRE(A[k - 1] < A[k]);
            covered[static_cast<std::size_t>(A[k])] = 1;
          }
        }
        BOOST_TEST_REQUIRE(std::count(covered.begin(), covered.end(), 1) == M);
        // the other tie order finds a path of the same cost
        BOOST_TEST_REQUIRE(dtw_align(w, u, cost, {dtw_tie_order::fusellm}).total_cost == a.total_cost);
        if (M <= 60 && N <= 60) {
          BOOST_TEST_REQUIRE(brute_force_dtw_cost(w, u, cost) == a.total_cost);
          ++brute_checked;
        }
      }
      ++texts;
    }
    BOOST_TEST_MESSAGE(pn << " <- " << sn << ": " << texts << " texts aligned, " << brute_checked << " checked by brute force");
    BOOST_TEST(texts == corpus().size());
    BOOST_TEST(brute_checked >= 20u);
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(real_mappings)

BOOST_AUTO_TEST_CASE(em_and_mined_llama3_pivot_qwen3_source) {
  const auto& P = tok("llama3");
  const auto& S = tok("qwen3");
  const auto em = em_mapping(P, S);
  BOOST_TEST(em.mapped() == 109566);  // same marker: EM = identical raw strings
  for (std::int64_t v = 0; v < S.size(); ++v) {
    const auto p = em.pivot_of[static_cast<std::size_t>(v)];
    if (p >= 0) BOOST_TEST_REQUIRE(P.raw(p) == S.raw(v));  // identical strings map to themselves
    else BOOST_TEST_REQUIRE(P.find(S.raw(v)) < 0);
  }
  // MinED on a deterministic subset (every 97th id + the last ids): the full run is a benchmark
  mined_options o;
  for (std::int32_t v = 0; v < S.size(); v += 97) o.source_ids.push_back(v);
  for (std::int32_t v = static_cast<std::int32_t>(S.size()) - 30; v < S.size(); ++v) o.source_ids.push_back(v);
  const auto m = mined_mapping(fusekit::exec::par, P, S, o);
  std::int64_t non_exact = 0;
  for (std::int32_t v : o.source_ids) {
    const auto sv = static_cast<std::size_t>(v);
    BOOST_TEST_REQUIRE(m.pivot_of[sv] >= 0);
    BOOST_TEST_REQUIRE(P.contains(m.pivot_of[sv]));
    if (em.pivot_of[sv] >= 0) {  // EM ⊆ MinED
      BOOST_TEST_REQUIRE(m.pivot_of[sv] == em.pivot_of[sv]);
      BOOST_TEST_REQUIRE(m.distance[sv] == 0);
    } else {
      BOOST_TEST_REQUIRE(m.distance[sv] >= 1);
      ++non_exact;
    }
  }
  BOOST_TEST_MESSAGE("MinED subset: " << o.source_ids.size() << " ids, " << non_exact << " without exact match, "
                                      << m.evaluated_pairs << " distances evaluated");
  // brute force over the whole pivot vocabulary for the first 25 non-exact ids
  std::vector<std::u32string> pstr(static_cast<std::size_t>(P.size()));
  for (std::int64_t p = 0; p < P.size(); ++p) pstr[static_cast<std::size_t>(p)] = utf8_decode(P.raw(p));
  int checked = 0;
  for (std::int32_t v : o.source_ids) {
    if (em.pivot_of[static_cast<std::size_t>(v)] >= 0) continue;
    const auto a = utf8_decode(S.raw(v));
    std::int32_t best = -1, bd = 0;
    for (std::int64_t p = 0; p < P.size(); ++p) {
      const auto d = levenshtein(a, pstr[static_cast<std::size_t>(p)]);
      if (best < 0 || d < bd) {
        best = static_cast<std::int32_t>(p);
        bd = d;
      }
    }
    BOOST_TEST_REQUIRE(m.pivot_of[static_cast<std::size_t>(v)] == best);
    BOOST_TEST_REQUIRE(m.distance[static_cast<std::size_t>(v)] == bd);
    if (++checked == 25) break;
  }
  BOOST_TEST(checked == 25);
}

BOOST_AUTO_TEST_CASE(em_and_mined_across_markers_gemma3_pivot_mistral_source) {
  // Both SentencePiece: markers agree. Mistral -> Gemma EM keeps almost every token.
  const auto& P = tok("gemma3");
  const auto& S = tok("mistral-7b-v0.1");
  const auto em = em_mapping(P, S);
  BOOST_TEST_MESSAGE("EM mistral -> gemma3: " << em.mapped() << " of " << S.size());
  BOOST_TEST(em.mapped() > 30000);
  // llama3 (Ġ) -> gemma3 (▁): marker substitution makes "Ġthe" match "▁the"
  const auto& L = tok("llama3");
  const auto em2 = em_mapping(P, L);
  const auto the = L.find("Ġthe");
  BOOST_TEST(em2.pivot_of[static_cast<std::size_t>(the)] == P.find("▁the"));
  BOOST_TEST_MESSAGE("EM llama3 -> gemma3 (after Ġ->▁): " << em2.mapped() << " of " << L.size());
  mined_options o;
  for (std::int32_t v = 0; v < L.size(); v += 211) o.source_ids.push_back(v);
  const auto m = mined_mapping(fusekit::exec::par, P, L, o);
  for (std::int32_t v : o.source_ids)
    if (em2.pivot_of[static_cast<std::size_t>(v)] >= 0)
      BOOST_TEST_REQUIRE(m.pivot_of[static_cast<std::size_t>(v)] == em2.pivot_of[static_cast<std::size_t>(v)]);
    else
      BOOST_TEST_REQUIRE(m.distance[static_cast<std::size_t>(v)] >= 1);
}

BOOST_AUTO_TEST_CASE(ms_over_the_corpus) {
  const std::pair<const char*, const char*> pairs[] = {{"llama3", "qwen3"}, {"llama3", "gemma3"}, {"mistral-7b-v0.1", "qwen3"}};
  for (auto [pn, sn] : pairs) {
    const auto& P = tok(pn);
    const auto& S = tok(sn);
    const auto C = build_alignment_matrix(fusekit::exec::par, P, S, golden(pn), golden(sn));
    if (std::string(sn) == "qwen3" && std::string(pn) == "llama3") {  // independent of the policy
      const auto Cseq = build_alignment_matrix(fusekit::exec::seq, P, S, golden(pn), golden(sn));
      BOOST_TEST((C.col_index == Cseq.col_index));
      BOOST_TEST((C.counts == Cseq.counts));
    }
    std::set<std::int32_t> seen_src;
    std::uint64_t pivot_tokens = 0;
    for (const auto& t : golden(sn)) seen_src.insert(t.begin(), t.end());
    for (const auto& t : golden(pn)) pivot_tokens += t.size();
    // every pivot position contributes at least one count, at most |A(i)|
    BOOST_TEST(C.total() >= pivot_tokens);
    for (auto ms_rule_v : {ms_rule::frequency_first, ms_rule::fusechat_score}) {
      const auto m = ms_mapping(C, P, S, {.rule = ms_rule_v});
      std::int64_t from_counts = 0;
      for (std::int64_t v = 0; v < S.size(); ++v) {
        const auto p = m.pivot_of[static_cast<std::size_t>(v)];
        BOOST_TEST_REQUIRE(P.contains(p));  // total map: fallback is unk or eos
        const bool seen = seen_src.count(static_cast<std::int32_t>(v)) > 0;
        if (seen && v != S.bos_id() && v != S.eos_id()) {
          BOOST_TEST_REQUIRE(C(p, v) > 0u);  // chosen among co-aligned pivot tokens
          ++from_counts;
        }
        if (!seen && v != S.bos_id() && v != S.eos_id())
          BOOST_TEST_REQUIRE(p == (P.unk_id() >= 0 ? P.unk_id() : P.eos_id()));
      }
      if (S.eos_id() >= 0 && P.eos_id() >= 0) BOOST_TEST(m.pivot_of[static_cast<std::size_t>(S.eos_id())] == P.eos_id());
      BOOST_TEST(from_counts == static_cast<std::int64_t>(seen_src.size()) -
                                    (seen_src.count(S.eos_id()) ? 1 : 0) - (seen_src.count(S.bos_id()) ? 1 : 0));
      BOOST_TEST_MESSAGE("MS " << pn << " <- " << sn << (ms_rule_v == ms_rule::fusechat_score ? " (fusechat score)" : " (frequency first)")
                               << ": nnz " << C.nnz() << ", " << seen_src.size() << " source ids seen in the corpus ("
                               << 100.0 * static_cast<double>(seen_src.size()) / static_cast<double>(S.size()) << "% of the vocabulary)");
    }
    // the binary file round-trips the real matrix
    std::stringstream ss;
    write_count_matrix(ss, C);
    const auto R = read_count_matrix(ss, "mem");
    BOOST_TEST((R.row_offsets == C.row_offsets && R.col_index == C.col_index && R.counts == C.counts));
  }
}

BOOST_AUTO_TEST_CASE(ms_with_identical_tokenizations_is_identity) {
  // Aligning a tokenization with itself: C is diagonal and MS maps every seen id to itself.
  const auto& Q = tok("qwen3");
  const auto C = build_alignment_matrix(fusekit::exec::par, Q, Q, golden("qwen3"), golden("qwen3"));
  std::set<std::int32_t> seen;
  for (const auto& t : golden("qwen3")) seen.insert(t.begin(), t.end());
  for (std::int64_t p = 0; p < C.rows; ++p)
    for (auto k = C.row_offsets[static_cast<std::size_t>(p)]; k < C.row_offsets[static_cast<std::size_t>(p) + 1]; ++k)
      BOOST_TEST_REQUIRE(C.col_index[static_cast<std::size_t>(k)] == p);
  for (auto rule : {ms_rule::frequency_first, ms_rule::fusechat_score}) {
    const auto m = ms_mapping(C, Q, Q, {.rule = rule});
    for (auto v : seen) BOOST_TEST_REQUIRE(m.pivot_of[static_cast<std::size_t>(v)] == v);
  }
}

BOOST_AUTO_TEST_CASE(ms_rejects_bad_ids) {
  const auto& P = tok("llama3");
  const auto& S = tok("mistral-7b-v0.1");
  std::vector<std::vector<std::int32_t>> p{{1, 2}}, s{{1, 40000}};
  BOOST_CHECK_EXCEPTION((void)build_alignment_matrix(fusekit::exec::seq, P, S, p, s), fusekit::error,
                        [](const fusekit::error& e) {
                          return e.code() == fusekit::errc::out_of_range && std::string(e.what()).find("40000") != std::string::npos;
                        });
  std::vector<std::vector<std::int32_t>> one{{1}};
  BOOST_CHECK_EXCEPTION((void)build_alignment_matrix(fusekit::exec::seq, P, S, p, std::vector<std::vector<std::int32_t>>{}),
                        fusekit::error, [](const fusekit::error& e) { return e.code() == fusekit::errc::shape_mismatch; });
}

BOOST_AUTO_TEST_SUITE_END()
