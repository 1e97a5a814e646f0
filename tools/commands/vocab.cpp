// `fusekit vocab map --pivot A/tokenizer.json --source B/tokenizer.json --method em|mined|ms -o mapping.json
//                    [--pivot-ids a.jsonl --source-ids b.jsonl] [--matrix counts.bin] [--ms-rule frequency|fusechat]
//                    [--unmapped unk-or-eos|minus-one] [--pivot-marker M] [--source-marker M] [--threads N]`
// `fusekit vocab stats --pivot A/tokenizer.json --source B/tokenizer.json [--pivot-ids a.jsonl --source-ids b.jsonl]`
//
// mapping.json is FuseChat's list: one entry per source id (length = largest source id + 1) holding the
// pivot id, -1 where EM finds no match (MinED and MS are total maps). `ms` also writes the sparse count
// matrix C[pivot, source] in the binary format of <fusekit/vocab/alignment_matrix.hpp> (default path:
// mapping.json with ".counts.bin" appended). Algorithms and options: docs/explicit-fusion.md.
#include <CLI/CLI.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include <fusekit/core/error.hpp>
#include <fusekit/exec/policy.hpp>
#include <fusekit/vocab/alignment_matrix.hpp>
#include <fusekit/vocab/hf_tokenizer.hpp>
#include <fusekit/vocab/token_ids_jsonl.hpp>
#include <fusekit/vocab/vocab_mapping.hpp>

namespace fusekit_tool {

namespace {

namespace fv = fusekit::vocab;

struct vocab_args {
  std::string pivot, source, method = "mined", output, pivot_ids, source_ids, matrix;
  std::string ms_rule = "frequency", unmapped = "unk-or-eos";
  std::string pivot_marker, source_marker;
  int threads = 0;
};

fv::vocabulary load(const std::string& path, const std::string& marker) {
  fv::hf_load_options o;
  if (!marker.empty()) o.marker = marker;
  return fv::load_hf_vocabulary(path, o);
}

std::string pct(std::int64_t a, std::int64_t b) {
  std::ostringstream ss;
  ss << std::fixed << std::setprecision(2) << (b > 0 ? 100.0 * static_cast<double>(a) / static_cast<double>(b) : 0.0) << "%";
  return ss.str();
}

void describe(const char* role, const std::string& path, const fv::vocabulary& v) {
  std::cout << role << ": " << path << "\n  ids " << v.size() << ", encoding " << fv::to_string(v.encoding())
            << ", marker '" << v.marker() << "', bos " << v.bos_id() << ", eos " << v.eos_id() << ", unk "
            << v.unk_id() << ", pad " << v.pad_id() << "\n";
}

int run_map(const vocab_args& a) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto P = load(a.pivot, a.pivot_marker);
  const auto S = load(a.source, a.source_marker);
  const fusekit::exec::parallel_policy par{a.threads};
  fv::vocab_mapping m;
  if (a.method == "em") {
    FUSEKIT_EXPECTS(a.pivot_ids.empty() && a.source_ids.empty(), invalid_argument,
                    "--pivot-ids/--source-ids are only used by --method ms");
    m = fv::em_mapping(P, S);
  } else if (a.method == "mined") {
    FUSEKIT_EXPECTS(a.pivot_ids.empty() && a.source_ids.empty(), invalid_argument,
                    "--pivot-ids/--source-ids are only used by --method ms");
    m = fv::mined_mapping(par, P, S);
  } else {  // ms
    FUSEKIT_EXPECTS(!a.pivot_ids.empty() && !a.source_ids.empty(), invalid_argument,
                    "--method ms needs --pivot-ids and --source-ids (paired tokenizations of one corpus)");
    const auto pc = fv::read_token_ids_jsonl(a.pivot_ids, P.size());
    const auto sc = fv::read_token_ids_jsonl(a.source_ids, S.size());
    fv::check_paired(pc, sc);
    const auto C = fv::build_alignment_matrix(par, P, S, pc.texts, sc.texts);
    const std::string matrix = a.matrix.empty() ? a.output + ".counts.bin" : a.matrix;
    fv::write_count_matrix(matrix, C);
    std::cout << "count matrix: " << matrix << " (" << C.rows << " x " << C.cols << ", nnz " << C.nnz() << ", total "
              << C.total() << ", " << pc.texts.size() << " texts)\n";
    fv::ms_options o;
    o.rule = a.ms_rule == "fusechat" ? fv::ms_rule::fusechat_score : fv::ms_rule::frequency_first;
    o.unmapped = a.unmapped == "minus-one" ? fv::unmapped_policy::minus_one : fv::unmapped_policy::unk_or_eos;
    m = fv::ms_mapping(C, P, S, o);
  }
  {
    std::ofstream f(a.output);
    FUSEKIT_EXPECTS(f.good(), io_error, "cannot open '" + a.output + "' for writing");
    f << nlohmann::json(m.pivot_of).dump() << '\n';
    f.flush();
    FUSEKIT_EXPECTS(f.good(), io_error, "cannot write '" + a.output + "'");
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  describe("pivot", a.pivot, P);
  describe("source", a.source, S);
  std::cout << "method " << a.method << ": " << a.output << " (" << m.size() << " entries), mapped " << m.mapped()
            << " (" << pct(m.mapped(), S.size()) << "), exact string matches " << m.exact() << " ("
            << pct(m.exact(), S.size()) << ")";
  if (a.method == "mined") std::cout << ", distances evaluated " << m.evaluated_pairs;
  std::cout << ", " << std::fixed << std::setprecision(2) << secs << " s\n";
  return 0;
}

int run_stats(const vocab_args& a) {
  const auto P = load(a.pivot, a.pivot_marker);
  const auto S = load(a.source, a.source_marker);
  describe("pivot", a.pivot, P);
  describe("source", a.source, S);
  std::int64_t identical = 0, special = 0, byte_tokens = 0;
  for (std::int64_t v = 0; v < S.size(); ++v) {
    if (!S.contains(v)) continue;
    identical += P.find(S.raw(v)) >= 0;
    special += S.kind(v) == fv::token_kind::special;
    byte_tokens += S.kind(v) == fv::token_kind::byte_fallback;
  }
  const auto em = fv::em_mapping(P, S);
  std::set<std::string> pivot_bytes;
  for (std::int64_t p = 0; p < P.size(); ++p)
    if (P.contains(p)) pivot_bytes.insert(P.bytes(p));
  std::int64_t same_bytes = 0;
  for (std::int64_t v = 0; v < S.size(); ++v)
    if (S.contains(v)) same_bytes += pivot_bytes.count(S.bytes(v)) > 0;
  std::cout << "source tokens " << S.size() << " (special " << special << ", byte-fallback " << byte_tokens << ")\n"
            << "identical raw strings        " << identical << " (" << pct(identical, S.size()) << " of source, "
            << pct(identical, P.size()) << " of pivot)\n"
            << "EM after marker substitution " << em.mapped() << " (" << pct(em.mapped(), S.size()) << " of source)\n"
            << "identical decoded bytes      " << same_bytes << " (" << pct(same_bytes, S.size()) << " of source)\n";
  if (!a.pivot_ids.empty() || !a.source_ids.empty()) {
    FUSEKIT_EXPECTS(!a.pivot_ids.empty() && !a.source_ids.empty(), invalid_argument,
                    "corpus statistics need both --pivot-ids and --source-ids");
    const auto pc = fv::read_token_ids_jsonl(a.pivot_ids, P.size());
    const auto sc = fv::read_token_ids_jsonl(a.source_ids, S.size());
    fv::check_paired(pc, sc);
    std::int64_t ptok = 0, stok = 0, stok_em = 0;
    std::set<std::int32_t> sdistinct, pdistinct;
    for (const auto& t : pc.texts) {
      ptok += static_cast<std::int64_t>(t.size());
      pdistinct.insert(t.begin(), t.end());
    }
    for (const auto& t : sc.texts) {
      stok += static_cast<std::int64_t>(t.size());
      sdistinct.insert(t.begin(), t.end());
      for (auto id : t) stok_em += em.pivot_of[static_cast<std::size_t>(id)] >= 0;
    }
    std::cout << "corpus: " << pc.texts.size() << " texts, pivot tokens " << ptok << " (" << pdistinct.size()
              << " distinct), source tokens " << stok << " (" << sdistinct.size() << " distinct, "
              << pct(static_cast<std::int64_t>(sdistinct.size()), S.size()) << " of the vocabulary)\n"
              << "source tokens with an EM pivot token: " << stok_em << " (" << pct(stok_em, stok) << ")\n"
              << "tokens per text ratio source/pivot: " << std::setprecision(4)
              << (ptok > 0 ? static_cast<double>(stok) / static_cast<double>(ptok) : 0.0) << "\n";
  }
  return 0;
}

void add_common(CLI::App* c, vocab_args& a) {
  c->add_option("--pivot", a.pivot, "pivot tokenizer.json (tokenizer_config.json beside it is read too)")
      ->required()
      ->check(CLI::ExistingFile);
  c->add_option("--source", a.source, "source tokenizer.json")->required()->check(CLI::ExistingFile);
  c->add_option("--pivot-ids", a.pivot_ids, "pivot tokenization of a corpus: JSONL, one {\"id\", \"ids\"} per text")
      ->check(CLI::ExistingFile);
  c->add_option("--source-ids", a.source_ids, "source tokenization of the same corpus, same order")
      ->check(CLI::ExistingFile);
  c->add_option("--pivot-marker", a.pivot_marker, "override the pivot word-boundary marker (default: from the file)");
  c->add_option("--source-marker", a.source_marker, "override the source word-boundary marker");
}

}  // namespace

/// Registers `fusekit vocab map` and `fusekit vocab stats`.
void register_vocab(CLI::App& app) {
  auto* vocab = app.add_subcommand("vocab", "vocabulary mappings between tokenizers (FuseLLM / FuseChat)");
  vocab->require_subcommand(1);
  auto args = std::make_shared<vocab_args>();

  auto* map = vocab->add_subcommand("map", "build a source -> pivot token-id mapping (EM, MinED or MS)");
  add_common(map, *args);
  map->add_option("--method", args->method, "em (exact match), mined (min edit distance), ms (mapping statistics)")
      ->check(CLI::IsMember({"em", "mined", "ms"}))
      ->capture_default_str();
  map->add_option("-o,--output", args->output, "mapping.json: list indexed by source id")->required();
  map->add_option("--matrix", args->matrix, "ms: where to write the count matrix (default: OUTPUT.counts.bin)");
  map->add_option("--ms-rule", args->ms_rule, "ms: frequency (default) or fusechat (released score rule)")
      ->check(CLI::IsMember({"frequency", "fusechat"}))
      ->capture_default_str();
  map->add_option("--unmapped", args->unmapped, "ms: ids never aligned become unk-or-eos (FuseChat) or minus-one")
      ->check(CLI::IsMember({"unk-or-eos", "minus-one"}))
      ->capture_default_str();
  map->add_option("--threads", args->threads, "worker threads for mined/ms (0 = all)")->capture_default_str();
  map->callback([args]() {
    const int rc = run_map(*args);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });

  auto* stats = vocab->add_subcommand("stats", "overlap and coverage figures of two tokenizers");
  add_common(stats, *args);
  stats->callback([args]() {
    const int rc = run_stats(*args);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace fusekit_tool
