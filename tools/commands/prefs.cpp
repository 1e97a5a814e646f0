// `fusekit prefs build SAMPLES.jsonl -o DIR [--gap-min 0.01] [--gap-max 0.1] [--sft-fraction 0.4]
//                      [--seed N] [--target-source NAME] [--all-pairs] [--split-before-filter]`
// Builds DIR/sft.jsonl, DIR/dpo.jsonl, DIR/wrpo.jsonl (with --target-source) and DIR/summary.json from
// per-prompt samples; rules in docs/preference-data.md and <fusekit/prefs/build.hpp>.
#include <CLI/CLI.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include <fusekit/core/error.hpp>
#include <fusekit/prefs/build.hpp>
#include <fusekit/prefs/jsonl.hpp>

namespace fusekit_tool {

namespace {

struct prefs_build_args {
  std::string input;
  std::string out_dir;
  fusekit::prefs::build_options opt;
  std::string target_source;
};

template <class R> void write_file(const std::filesystem::path& p, const std::vector<R>& records) {
  std::ofstream f(p);
  FUSEKIT_EXPECTS(f.good(), io_error, "cannot write " + p.string());
  fusekit::prefs::write_jsonl(f, records);
  f.flush();
  FUSEKIT_EXPECTS(f.good(), io_error, "write failed: " + p.string());
}

int run_prefs_build(prefs_build_args& a) {
  if (!a.target_source.empty())
    a.opt.target_source = a.target_source;
  a.opt.validate();
  const auto prompts = fusekit::prefs::read_prompts_file(a.input);
  const auto r = fusekit::prefs::build(prompts, a.opt);
  std::filesystem::create_directories(a.out_dir);
  const std::filesystem::path dir(a.out_dir);
  write_file(dir / "sft.jsonl", r.sft);
  write_file(dir / "dpo.jsonl", r.dpo);
  if (a.opt.target_source)
    write_file(dir / "wrpo.jsonl", r.wrpo);
  auto summary = fusekit::prefs::to_json(r.summary);
  summary["options"] = {
      {"gap_min", a.opt.gap_min},
      {"gap_max", a.opt.gap_max},
      {"sft_fraction", a.opt.sft_fraction},
      {"seed", a.opt.seed},
      {"target_source", a.opt.target_source ? nlohmann::json(*a.opt.target_source) : nlohmann::json()},
      {"all_pairs", a.opt.all_pairs},
      {"split_before_filter", a.opt.split_before_filter}};
  {
    std::ofstream f(dir / "summary.json");
    FUSEKIT_EXPECTS(f.good(), io_error, "cannot write " + (dir / "summary.json").string());
    f << summary.dump(2) << '\n';
  }
  const auto& s = r.summary;
  std::cout << "prompts " << s.prompts << ": SFT side " << s.sft_side << ", DPO side " << s.dpo_side << "\n"
            << "written: sft " << s.sft_records << ", dpo " << s.dpo_records;
  if (a.opt.target_source)
    std::cout << ", wrpo " << s.wrpo_records;
  std::cout << "\ndropped prompts " << s.dropped;
  for (std::size_t i = 0; i < s.reasons.size(); ++i)
    if (s.reasons[i] > 0)
      std::cout << ", " << fusekit::prefs::drop_reason_names[i] << " " << s.reasons[i];
  std::cout << "\n";
  return 0;
}

} // namespace

/// Registers `fusekit prefs build`.
void register_prefs(CLI::App& app) {
  auto* prefs = app.add_subcommand("prefs", "preference-data construction (FuseChat-3.0 / WRPO)");
  prefs->require_subcommand(1);
  auto args = std::make_shared<prefs_build_args>();
  auto* b = prefs->add_subcommand("build", "build SFT records, DPO pairs and WRPO quadruples from scored samples");
  b->add_option("samples", args->input,
                "input JSONL: {prompt_id, prompt, samples:[{source, response, reward, correct?}]}")
      ->required()
      ->check(CLI::ExistingFile);
  b->add_option("-o,--output", args->out_dir, "output directory (created if missing)")->required();
  b->add_option("--gap-min", args->opt.gap_min, "inclusive lower bound of the chosen-rejected reward gap")
      ->capture_default_str();
  b->add_option("--gap-max", args->opt.gap_max, "inclusive upper bound of the reward gap")->capture_default_str();
  b->add_option("--sft-fraction", args->opt.sft_fraction, "share of prompts used for SFT (rest: DPO/WRPO)")
      ->capture_default_str();
  b->add_option("--seed", args->opt.seed, "seed of the deterministic prompt split")->capture_default_str();
  b->add_option("--target-source", args->target_source,
                "samples whose source equals NAME are the target model's (WRPO y_wt / y_l); writes wrpo.jsonl");
  b->add_flag("--all-pairs", args->opt.all_pairs, "emit one DPO pair per qualifying source instead of the best one");
  b->add_flag("--split-before-filter", args->opt.split_before_filter,
              "split all prompts first, then drop per side (default: split the prompts that yield both records)");
  b->callback([args]() {
    const int rc = run_prefs_build(*args);
    if (rc != 0)
      throw CLI::RuntimeError(rc);
  });
}

} // namespace fusekit_tool
