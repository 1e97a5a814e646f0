// libFuzzer target: the safetensors header parser and the strict JSON reader used for shard indexes.
// Any input must either parse into a header that satisfies every invariant, or throw fusekit::error;
// crashes, hangs, leaks and sanitizer reports are bugs. Built with clang -fsanitize=fuzzer,address,undefined
// (tests/io/CMakeLists.txt) and run by ctest for a bounded time (label fuzz).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>

#include <fusekit/io/safetensors.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  try {
    const auto h = fusekit::io::parse_safetensors(bytes, "fuzz.safetensors");
    // Invariants of an accepted file: tensors tile the data buffer exactly, every view is in bounds.
    std::uint64_t pos = 0;
    for (const auto& t : h.tensors) {
      if (t.begin != pos || t.end < t.begin || h.data_offset() + t.end > size)
        std::abort();
      pos = t.end;
      if (h.find(t.name) != &t)
        std::abort();
    }
    if (h.data_offset() + pos != size)
      std::abort();
  } catch (const fusekit::error&) {
  }
  try {
    (void)fusekit::io::detail::parse_json_strict(
        std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.index.json", "index");
  } catch (const fusekit::error&) {
  }
  return 0;
}
