// safetensors reader/writer: round trips, every validation rule with a crafted bad file, sharded
// checkpoints and the writer's atomic finish.
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <sys/resource.h>

#include <fusekit/io/checkpoint.hpp>
#include <fusekit/io/safetensors.hpp>
#include <fusekit/io/safetensors_writer.hpp>

namespace fs = std::filesystem;
using namespace fusekit;
using namespace fusekit::io;

namespace {

fs::path scratch(const std::string& name) {
  fs::path p = fs::path(FUSEKIT_TEST_BINARY_DIR) / "io_scratch" / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

std::vector<std::byte> make_file(const std::string& header, std::size_t data_bytes, std::uint64_t len_override = 0) {
  std::vector<std::byte> f(8 + header.size() + data_bytes);
  const std::uint64_t n = len_override ? len_override : header.size();
  for (int k = 0; k < 8; ++k)
    f[k] = static_cast<std::byte>(n >> (8 * k));
  std::memcpy(f.data() + 8, header.data(), header.size());
  for (std::size_t i = 0; i < data_bytes; ++i)
    f[8 + header.size() + i] = static_cast<std::byte>(i * 7 + 1);
  return f;
}

// Expects parse_safetensors to throw parse_error with every `parts` substring in the message.
void expect_bad(const std::vector<std::byte>& f, std::initializer_list<std::string> parts) {
  try {
    (void)parse_safetensors(f, "bad.safetensors");
    BOOST_FAIL("expected a parse error");
  } catch (const fusekit::error& e) {
    BOOST_TEST(static_cast<int>(e.code()) == static_cast<int>(errc::parse_error));
    const std::string m = e.what();
    BOOST_TEST_INFO("message: " << m);
    BOOST_TEST(m.find("bad.safetensors") != std::string::npos);
    for (const auto& p : parts) {
      BOOST_TEST_INFO("missing '" << p << "' in: " << m);
      BOOST_TEST(m.find(p) != std::string::npos);
    }
  }
}

void write_bytes(const fs::path& p, const std::vector<std::byte>& b) {
  std::ofstream o(p, std::ios::binary);
  o.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

std::vector<std::byte> as_bytes(const std::vector<float>& v) {
  std::vector<std::byte> b(v.size() * 4);
  if (!b.empty()) // memcpy from an empty vector's null data() is undefined (UBSan)
    std::memcpy(b.data(), v.data(), b.size());
  return b;
}

} // namespace

BOOST_AUTO_TEST_SUITE(safetensors_parse)

BOOST_AUTO_TEST_CASE(valid_header_with_metadata_padding_and_scalars) {
  const std::string h = R"({"__metadata__":{"format":"pt"},"b":{"dtype":"BF16","shape":[2,3],"data_offsets":[8,20]},)"
                        R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"s":{"dtype":"I64","shape":[],"data_offsets":[20,28]},)"
                        R"("z":{"dtype":"F16","shape":[0,5],"data_offsets":[28,28]}}     )";
  const auto f = make_file(h, 28);
  const auto hdr = parse_safetensors(f, "ok.safetensors");
  BOOST_TEST(hdr.tensors.size() == 4u);
  BOOST_TEST(hdr.tensors[0].name == "a"); // file order = offset order
  BOOST_TEST(hdr.tensors[1].name == "b");
  BOOST_TEST(hdr.find("s")->numel() == 1);
  BOOST_TEST(hdr.find("z")->nbytes() == 0u);
  BOOST_TEST(hdr.metadata.at("format") == "pt");
  BOOST_TEST(hdr.data_offset() == 8 + h.size());
  BOOST_TEST(hdr.find("nope") == nullptr);
}

BOOST_AUTO_TEST_CASE(truncated_below_length_prefix) {
  std::vector<std::byte> f(5);
  expect_bad(f, {"truncated"});
}

BOOST_AUTO_TEST_CASE(header_length_past_eof) {
  const std::string h = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  expect_bad(make_file(h, 4, 1000), {"header length 1000", "past the end"});
}

BOOST_AUTO_TEST_CASE(header_length_over_limit) {
  expect_bad(make_file("{}", 0, 200'000'000), {"exceeds the limit"});
}

BOOST_AUTO_TEST_CASE(bad_json) {
  expect_bad(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]})", 4), {"not valid JSON"});
  expect_bad(make_file(R"([1,2,3])", 0), {"must be a JSON object"});
  expect_bad(make_file("{\"a\":\"\xff\xfe\"}", 0), {"not valid JSON"}); // invalid UTF-8
}

BOOST_AUTO_TEST_CASE(entry_shape_errors) {
  expect_bad(make_file(R"({"w":[1,2]})", 0), {"tensor 'w'", "must be an object"});
  expect_bad(make_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1}})", 4),
             {"tensor 'w'", "unknown field 'extra'"});
  expect_bad(make_file(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", 4), {"tensor 'w'", "dtype"});
  expect_bad(make_file(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4), {"tensor 'w'", "non-negative"});
  expect_bad(make_file(R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", 4), {"tensor 'w'", "non-negative"});
  expect_bad(make_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4), {"tensor 'w'", "[begin, end]"});
  expect_bad(make_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", 4), {"tensor 'w'", "end before begin"});
  expect_bad(make_file(R"({"__metadata__":{"format":1}})", 0), {"__metadata__", "must be a string"});
  expect_bad(make_file(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,4]}})", 4),
             {"tensor 'w'", "too many elements"});
}

BOOST_AUTO_TEST_CASE(unknown_dtype) {
  expect_bad(make_file(R"({"w":{"dtype":"F17","shape":[1],"data_offsets":[0,4]}})", 4), {"tensor 'w'", "unknown dtype 'F17'"});
  expect_bad(make_file(R"({"w":{"dtype":"bf16","shape":[1],"data_offsets":[0,2]}})", 2), {"unknown dtype 'bf16'"});
}

BOOST_AUTO_TEST_CASE(wrong_byte_size) {
  expect_bad(make_file(R"({"w":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,24]}})", 24),
             {"tensor 'w'", "hold 24 bytes", "needs 12"});
  expect_bad(make_file(R"({"w":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}})", 2), {"whole number of bytes"});
}

BOOST_AUTO_TEST_CASE(overlap_and_gap) {
  expect_bad(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12),
             {"tensor 'b'", "overlap tensor 'a'"});
  expect_bad(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})", 12),
             {"tensor 'b'", "gap"});
  expect_bad(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8), {"tensor 'a'", "gap"});
}

BOOST_AUTO_TEST_CASE(offsets_past_eof_and_trailing_bytes) {
  expect_bad(make_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 10), {"tensor 'a'", "past the end"});
  expect_bad(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 9), {"5 trailing bytes", "'a'"});
  expect_bad(make_file(R"({})", 3), {"3 trailing bytes"});
}

BOOST_AUTO_TEST_CASE(duplicate_names) {
  expect_bad(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
             {"'a' more than once"});
  expect_bad(make_file(R"({"a":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}})", 4), {"'dtype' more than once"});
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(safetensors_files)

BOOST_AUTO_TEST_CASE(writer_round_trip_single_file) {
  const auto dir = scratch("rt_single");
  std::vector<float> w(12);
  for (int i = 0; i < 12; ++i)
    w[i] = 0.5f * static_cast<float>(i) - 2.0f;
  std::vector<bf16> hb(5);
  for (int i = 0; i < 5; ++i)
    hb[i] = bf16(static_cast<float>(i) * 0.25f);
  std::vector<std::int64_t> ids = {7, -3};
  {
    safetensors_writer wr(dir, {{"h", dtype::bf16, {5}}, {"w", dtype::f32, {3, 4}}, {"ids", dtype::i64, {2}}});
    BOOST_TEST(wr.shards().size() == 1u);
    // Not there before finish: only a hidden temporary.
    BOOST_TEST(!fs::exists(dir / "model.safetensors"));
    wr.write("ids", std::as_bytes(std::span(ids)));
    wr.write("w", as_bytes(w));
    wr.write("h", std::as_bytes(std::span(hb)));
    const auto files = wr.finish();
    BOOST_TEST(files.size() == 1u);
  }
  BOOST_TEST(fs::exists(dir / "model.safetensors"));
  BOOST_TEST(!fs::exists(dir / "model.safetensors.index.json"));
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir))
    ++entries;
  BOOST_TEST(entries == 1u); // no temporaries left

  safetensors_file f(dir / "model.safetensors");
  BOOST_TEST((f.header().data_offset() % 8) == 0u);
  // Laid out by descending element size: i64, f32, bf16; each aligned to its element size.
  BOOST_TEST(f.tensors()[0].name == "ids");
  BOOST_TEST(f.tensors()[1].name == "w");
  BOOST_TEST(f.tensors()[2].name == "h");
  for (const auto& t : f.tensors())
    BOOST_TEST(((f.header().data_offset() + t.begin) % element_size(t.type)) == 0u);
  BOOST_TEST(f.header().metadata.at("format") == "pt");
  auto v = f.view<float, 2>("w");
  BOOST_TEST(v.extent(0) == 3);
  BOOST_TEST(v.extent(1) == 4);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c)
      BOOST_TEST(v(r, c) == w[r * 4 + c]);
  auto hv = f.view<bf16, 1>("h");
  for (int i = 0; i < 5; ++i)
    BOOST_TEST(static_cast<float>(hv[i]) == static_cast<float>(hb[i]));
  {
    const auto ids_view = f.view<std::int64_t, 1>("ids");
    BOOST_TEST(ids_view[1] == -3);
  }
  BOOST_CHECK_THROW((void)(f.view<bf16, 2>("w")), fusekit::error);  // wrong dtype
  BOOST_CHECK_THROW((void)(f.view<float, 1>("w")), fusekit::error); // wrong rank
  BOOST_CHECK_THROW((void)f.at("missing"), fusekit::error);
}

BOOST_AUTO_TEST_CASE(writer_shards_index_and_checkpoint_reader) {
  const auto dir = scratch("rt_sharded");
  std::vector<planned_tensor> plan;
  std::vector<std::vector<float>> data;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1, 1);
  for (int i = 0; i < 7; ++i) {
    plan.push_back({"layer." + std::to_string(i) + ".weight", dtype::f32, {4, 8}}); // 128 bytes each
    data.emplace_back(32);
    for (auto& x : data.back())
      x = u(rng);
  }
  writer_options opt;
  opt.max_shard_bytes = 300; // two tensors per shard -> 4 shards
  {
    safetensors_writer wr(dir, plan, opt);
    BOOST_TEST(wr.shards().size() == 4u);
    BOOST_TEST(wr.shards()[0].file_name == "model-00001-of-00004.safetensors");
    for (int i = 6; i >= 0; --i) // any order
      wr.write(plan[i].name, as_bytes(data[i]));
    wr.finish();
  }
  BOOST_TEST(fs::exists(dir / "model.safetensors.index.json"));
  BOOST_TEST(!fs::exists(dir / "model.safetensors"));
  std::ifstream in(dir / "model.safetensors.index.json");
  const auto idx = nlohmann::json::parse(in);
  BOOST_TEST(idx["metadata"]["total_size"].get<std::uint64_t>() == 7u * 128u);
  BOOST_TEST(idx["weight_map"]["layer.6.weight"].get<std::string>() == "model-00004-of-00004.safetensors");

  for (const fs::path& p : {dir, dir / "model.safetensors.index.json"}) {
    auto ck = checkpoint::open(p);
    BOOST_TEST(ck.sharded());
    BOOST_TEST(ck.shards().size() == 4u);
    BOOST_TEST(ck.tensors().size() == 7u);
    BOOST_TEST(ck.total_bytes() == 7u * 128u);
    for (int i = 0; i < 7; ++i) {
      BOOST_TEST(ck.tensors()[i].info->name == plan[i].name); // file order follows shards
      auto r = ck.find(plan[i].name);
      BOOST_REQUIRE(r);
      BOOST_TEST(std::memcmp(r.bytes().data(), data[i].data(), 128) == 0);
    }
    BOOST_TEST(!ck.find("nope"));
  }
  // A single shard file opens on its own.
  auto one = checkpoint::open(dir / "model-00002-of-00004.safetensors");
  BOOST_TEST(!one.sharded());
  BOOST_TEST(one.tensors().size() == 2u);
}

BOOST_AUTO_TEST_CASE(index_validation) {
  const auto dir = scratch("bad_index");
  {
    safetensors_writer wr(dir, {{"a", dtype::f32, {1}}, {"b", dtype::f32, {1}}, {"c", dtype::f32, {1}}},
                          writer_options{.max_shard_bytes = 8});
    float x = 1;
    for (const char* n : {"a", "b", "c"})
      wr.write(n, std::as_bytes(std::span(&x, 1)));
    wr.finish();
  }
  auto expect_index_error = [&](const std::string& json, const std::string& part) {
    std::ofstream(dir / "model.safetensors.index.json") << json;
    try {
      (void)checkpoint::open(dir);
      BOOST_FAIL("expected an error for " << json);
    } catch (const fusekit::error& e) {
      BOOST_TEST_INFO(e.what());
      BOOST_TEST(std::string(e.what()).find(part) != std::string::npos);
    }
  };
  expect_index_error(R"({"metadata":{}})", "weight_map");
  expect_index_error(R"({"weight_map":{"a":"model-00001-of-00002.safetensors","c":"model-00002-of-00002.safetensors"}})",
                     "'b' is not listed");
  expect_index_error(R"({"weight_map":{"a":"model-00002-of-00002.safetensors","c":"model-00002-of-00002.safetensors"}})",
                     "does not contain it");
  expect_index_error(R"({"weight_map":{"a":"../x.safetensors"}})", "not a plain file name");
  expect_index_error(R"({"weight_map":{"a":"model-00001-of-00002.safetensors","b":"missing.safetensors"}})",
                     "missing.safetensors");
  expect_index_error(R"({"weight_map":{"a":"model-00001-of-00002.safetensors","a":"x"}})", "more than once");
  expect_index_error(R"({"weight_map":)", "not valid JSON");
  // Missing folder / empty folder.
  BOOST_CHECK_THROW((void)checkpoint::open(dir / "nothing_here"), fusekit::error);
  const auto empty = scratch("empty_model");
  try {
    (void)checkpoint::open(empty);
    BOOST_FAIL("expected an error");
  } catch (const fusekit::error& e) {
    BOOST_TEST(std::string(e.what()).find("model.safetensors") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(truncated_file_on_disk_names_file_and_tensor) {
  const auto dir = scratch("trunc");
  {
    safetensors_writer wr(dir, {{"a", dtype::f32, {4}}, {"b", dtype::f32, {4}}});
    std::vector<float> x(4, 1.0f);
    wr.write("a", as_bytes(x));
    wr.write("b", as_bytes(x));
    wr.finish();
  }
  const auto p = dir / "model.safetensors";
  fs::resize_file(p, fs::file_size(p) - 3);
  try {
    safetensors_file f(p);
    BOOST_FAIL("expected an error");
  } catch (const fusekit::error& e) {
    const std::string m = e.what();
    BOOST_TEST(m.find(p.string()) != std::string::npos);
    BOOST_TEST(m.find("tensor 'b'") != std::string::npos);
  }
  // Header length pointing past EOF, written to disk.
  write_bytes(dir / "short.safetensors", make_file("{}", 0, 64));
  BOOST_CHECK_THROW(safetensors_file(dir / "short.safetensors"), fusekit::error);
}

BOOST_AUTO_TEST_CASE(writer_rejects_misuse_and_cleans_up) {
  const auto dir = scratch("misuse");
  {
    safetensors_writer wr(dir, {{"a", dtype::f32, {2}}});
    std::vector<float> x(3);
    BOOST_CHECK_THROW(wr.write("a", as_bytes(x)), fusekit::error); // wrong size
    BOOST_CHECK_THROW(wr.write("zz", as_bytes(x)), fusekit::error); // not planned
    BOOST_CHECK_THROW(wr.finish(), fusekit::error);                 // "a" never written
  }
  BOOST_TEST(fs::is_empty(dir)); // temporaries removed
  BOOST_CHECK_THROW(safetensors_writer(dir, {{"a", dtype::f32, {2}}, {"a", dtype::f32, {2}}}), fusekit::error);
}

BOOST_AUTO_TEST_CASE(injected_disk_full_leaves_no_model) {
  const auto dir = scratch("diskfull");
  std::vector<float> x(64, 2.0f);
  {
    writer_options opt;
    opt.fail_after_bytes = 300;
    opt.max_shard_bytes = 256;
    safetensors_writer wr(dir, {{"a", dtype::f32, {64}}, {"b", dtype::f32, {64}}}, opt);
    wr.stage_file("config.json", "{}");
    wr.write("a", as_bytes(x));
    try {
      wr.write("b", as_bytes(x));
      BOOST_FAIL("expected a simulated write failure");
    } catch (const fusekit::error& e) {
      BOOST_TEST(static_cast<int>(e.code()) == static_cast<int>(errc::io_error));
      BOOST_TEST(std::string(e.what()).find("No space left") != std::string::npos);
      BOOST_TEST(std::string(e.what()).find("'b'") != std::string::npos);
    }
  }
  BOOST_TEST(fs::is_empty(dir));
}

BOOST_AUTO_TEST_CASE(open_tensor_commit_round_trip_mapped_and_buffered) {
  // Same data through the three paths: mapped windows (space reserved), heap windows (no reservation),
  // and write(); sharded so that tensors land at unaligned offsets in several files.
  std::vector<planned_tensor> plan;
  std::vector<std::vector<float>> data;
  for (int i = 0; i < 7; ++i) {
    plan.push_back({"t" + std::to_string(i), dtype::f32, {3 + i, 5}});
    std::vector<float> v(static_cast<std::size_t>((3 + i) * 5));
    for (std::size_t k = 0; k < v.size(); ++k)
      v[k] = static_cast<float>(i * 1000 + static_cast<int>(k)) * 0.25f;
    data.push_back(std::move(v));
  }
  plan.push_back({"empty", dtype::bf16, {0, 4}});
  data.emplace_back();
  // modes: 0 mapped windows (preallocated), 1 no preallocation, 2 write(), 3 the staging buffer (default),
  // with a second window held open while the next is filled (it gets a heap buffer of its own)
  for (int mode = 0; mode < 4; ++mode) {
    const auto dir = scratch("window" + std::to_string(mode));
    writer_options opt;
    opt.max_shard_bytes = 300;
    opt.preallocate = mode != 1;
    opt.window = mode == 0 ? output_window::map : output_window::staging;
    {
      safetensors_writer wr(dir, plan, opt);
      for (std::size_t i = plan.size(); i-- > 0;) { // reverse order: random access within the files
        if (mode == 2) {
          wr.write(i, as_bytes(data[i]));
          continue;
        }
        tensor_out t = wr.open_tensor(i);
        BOOST_TEST(t.index() == i);
        BOOST_TEST(t.bytes().size() == plan[i].nbytes());
        if (mode == 0 && !t.bytes().empty())
          BOOST_TEST(t.mapped()); // the scratch folder's file system supports fallocate
        if (mode == 1 || mode == 3)
          BOOST_TEST(!t.mapped());
        if (!data[i].empty())
          std::memcpy(t.bytes().data(), data[i].data(), t.bytes().size());
        if (mode == 3 && i >= 1 && !data[i - 1].empty()) { // two windows at once: distinct buffers
          tensor_out u = wr.open_tensor(i - 1);
          BOOST_TEST((u.bytes().data() != t.bytes().data()));
          std::memcpy(u.bytes().data(), data[i - 1].data(), u.bytes().size());
          wr.commit(std::move(t));
          wr.commit(std::move(u));
          --i;
          continue;
        }
        wr.commit(std::move(t));
      }
      BOOST_TEST(wr.bytes_written() == wr.total_bytes());
      wr.finish();
    }
    const checkpoint ck = checkpoint::open(dir);
    for (std::size_t i = 0; i + 1 < plan.size(); ++i) {
      BOOST_REQUIRE(ck.contains(plan[i].name));
      const auto ref = ck.find(plan[i].name);
      std::vector<float> got(data[i].size());
      std::memcpy(got.data(), ref.bytes().data(), got.size() * sizeof(float));
      BOOST_TEST(got == data[i], boost::test_tools::per_element());
    }
  }
}

BOOST_AUTO_TEST_CASE(open_tensor_misuse_and_uncommitted_windows) {
  const auto dir = scratch("window_misuse");
  {
    safetensors_writer wr(dir, {{"a", dtype::f32, {4}}, {"b", dtype::f32, {4}}});
    {
      tensor_out t = wr.open_tensor(0); // dropped without commit: "a" stays unwritten
      std::memset(t.bytes().data(), 0, t.bytes().size());
    }
    BOOST_CHECK_THROW((void)wr.open_tensor(2), fusekit::error);
    tensor_out b = wr.open_tensor(1);
    wr.commit(std::move(b));
    BOOST_CHECK_THROW((void)wr.open_tensor(1), fusekit::error); // written already
    try {
      wr.finish();
      BOOST_FAIL("finish must report the uncommitted tensor");
    } catch (const fusekit::error& e) {
      BOOST_TEST(std::string(e.what()).find("'a'") != std::string::npos);
    }
  }
  BOOST_TEST(fs::is_empty(dir));
}

BOOST_AUTO_TEST_CASE(file_size_limit_fails_before_any_tensor) {
  // A real failure, not an injected one: RLIMIT_FSIZE makes posix_fallocate fail with EFBIG, as a full
  // disk makes it fail with ENOSPC. SIGXFSZ is ignored so the error comes back as errno.
  const auto dir = scratch("fsize");
  rlimit old{};
  BOOST_REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
  auto* old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = old;
  small.rlim_cur = 64 * 1024;
  BOOST_REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
  std::string what;
  try {
    safetensors_writer wr(dir, {{"big", dtype::f32, {1024, 1024}}});
  } catch (const fusekit::error& e) {
    what = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  BOOST_TEST(what.find("cannot reserve 4194" ) != std::string::npos, what);
  BOOST_TEST(what.find(".fusekit-partial") != std::string::npos, what); // names the file
  BOOST_TEST(fs::is_empty(dir));
}

BOOST_AUTO_TEST_CASE(replace_existing_removes_stale_shards) {
  const auto dir = scratch("replace");
  std::vector<float> x(4, 1.0f);
  {
    safetensors_writer wr(dir, {{"a", dtype::f32, {4}}, {"b", dtype::f32, {4}}}, writer_options{.max_shard_bytes = 16});
    wr.write("a", as_bytes(x));
    wr.write("b", as_bytes(x));
    wr.finish();
  }
  BOOST_TEST(fs::exists(dir / "model-00002-of-00002.safetensors"));
  {
    writer_options opt;
    opt.replace_existing = true;
    safetensors_writer wr(dir, {{"a", dtype::f32, {4}}}, opt);
    wr.write("a", as_bytes(x));
    wr.finish();
  }
  BOOST_TEST(fs::exists(dir / "model.safetensors"));
  BOOST_TEST(!fs::exists(dir / "model-00002-of-00002.safetensors"));
  BOOST_TEST(!fs::exists(dir / "model.safetensors.index.json"));
  BOOST_TEST(checkpoint::open(dir).tensors().size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
