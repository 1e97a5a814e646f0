// libFuzzer target for the text formats the tools read (the safetensors header has its own target):
//   first byte % 4 == 0: a mergekit YAML config (parse_merge_config, then validate),
//                    1: a `fusekit prefs build` samples JSONL stream (read_prompts, then build),
//                    2: a Hugging Face tokenizer.json (load_hf_vocabulary, through a scratch file),
//                    3: a token-id JSONL corpus (read_token_ids_jsonl, through a scratch file).
// The rest of the input is the document. Any input must either be accepted or rejected with
// fusekit::error; another exception type escaping (a YAML or JSON library exception, std::out_of_range,
// ...), a crash, a hang, a leak or a sanitizer report is a bug. Accepted results are checked for the
// invariants the callers rely on. Built with clang -fsanitize=fuzzer,address,undefined
// (tests/io/CMakeLists.txt) and run by ctest for a bounded time (label fuzz) from tests/data/io/fuzz_text.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

#include <fusekit/io/merge_config.hpp>
#include <fusekit/prefs/build.hpp>
#include <fusekit/prefs/jsonl.hpp>
#include <fusekit/vocab/hf_tokenizer.hpp>
#include <fusekit/vocab/token_ids_jsonl.hpp>

namespace {

// One scratch directory per fuzzing process (the loaders take paths).
const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path d = [] {
    auto p = std::filesystem::temp_directory_path() / ("fusekit_fuzz_text_" + std::to_string(::getpid()));
    std::filesystem::create_directories(p);
    return p;
  }();
  return d;
}

std::filesystem::path write_scratch(const char* name, const std::string& text) {
  const auto p = scratch_dir() / name;
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(text.data(), static_cast<std::streamsize>(text.size()));
  return p;
}

void fuzz_config(const std::string& text) {
  const auto c = fusekit::io::parse_merge_config(text, "fuzz.yml");
  (void)fusekit::io::validate(c);
}

void fuzz_prefs(const std::string& text) {
  std::istringstream in(text);
  const auto prompts = fusekit::prefs::read_prompts(in, "fuzz.jsonl");
  const auto r = fusekit::prefs::build(prompts, fusekit::prefs::build_options{});
  if (r.sft.size() > prompts.size() || r.dpo.size() > prompts.size())
    std::abort(); // at most one record of each kind per prompt
}

void fuzz_tokenizer(const std::string& text) {
  const auto p = write_scratch("tokenizer.json", text);
  fusekit::vocab::hf_load_options opt;
  opt.ignore_config = true;
  const auto v = fusekit::vocab::load_hf_vocabulary(p, opt);
  if (v.size() > fusekit::vocab::max_token_id)
    std::abort();
  for (std::int64_t id = 0; id < std::min<std::int64_t>(v.size(), 4096); ++id)
    (void)v.bytes(id); // the ids of an accepted vocabulary have their bytes (the first ones: speed)
  if (v.size() > 0)
    (void)v.bytes(v.size() - 1);
}

void fuzz_token_ids(const std::string& text) {
  const auto p = write_scratch("ids.jsonl", text);
  const auto c = fusekit::vocab::read_token_ids_jsonl(p, 1000);
  if (c.texts.size() != c.text_ids.size())
    std::abort();
  for (const auto& t : c.texts)
    for (const auto id : t)
      if (id < 0 || id >= 1000)
        std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0)
    return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    switch (data[0] % 4) {
    case 0: fuzz_config(text); break;
    case 1: fuzz_prefs(text); break;
    case 2: fuzz_tokenizer(text); break;
    default: fuzz_token_ids(text); break;
    }
  } catch (const fusekit::error&) {
  }
  return 0;
}
