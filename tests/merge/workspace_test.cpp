// merge_workspace (merge_context::scratch): the resource's reuse rules, and merges that take their scratch
// from it give the same bits as merges that do not, while a second call of the same shape asks the system
// for no memory.
#include <boost/test/unit_test.hpp>

#include <array>
#include <cstdint>
#include <cstring>
#include <memory_resource>
#include <string>
#include <vector>

#include <fusekit/merge.hpp>

using namespace fusekit;

BOOST_AUTO_TEST_SUITE(merge_workspace_suite)

BOOST_AUTO_TEST_CASE(blocks_are_reused_by_size_and_alignment) {
  merge_workspace ws;
  std::pmr::memory_resource& mr = ws;
  void* a = mr.allocate(1000, 8);
  BOOST_TEST(reinterpret_cast<std::uintptr_t>(a) % 64 == 0u);
  BOOST_TEST(ws.system_allocations() == 1u);
  BOOST_TEST(ws.bytes_held() >= 1000u);
  std::memset(a, 0x5a, 1000);
  mr.deallocate(a, 1000, 8);
  BOOST_TEST(ws.bytes_held() >= 1000u); // kept idle, not freed

  void* b = mr.allocate(900, 16); // fits the idle block: the same memory, nothing new from the system
  BOOST_TEST(b == a);
  BOOST_TEST(ws.system_allocations() == 1u);
  void* c = mr.allocate(900, 16); // the idle list is empty now
  BOOST_TEST(c != b);
  BOOST_TEST(ws.system_allocations() == 2u);
  mr.deallocate(b, 900, 16);
  mr.deallocate(c, 900, 16);

  void* big = mr.allocate(5000, 8); // no idle block is large enough
  BOOST_TEST(big != a);
  BOOST_TEST(ws.system_allocations() == 3u);
  mr.deallocate(big, 5000, 8);

  void* pg = mr.allocate(100, 4096); // an alignment above 64 is honoured, by a block of its own
  BOOST_TEST(reinterpret_cast<std::uintptr_t>(pg) % 4096 == 0u);
  BOOST_TEST(ws.system_allocations() == 4u);
  mr.deallocate(pg, 100, 4096);
  void* pg2 = mr.allocate(100, 4096);
  BOOST_TEST(pg2 == pg);
  mr.deallocate(pg2, 100, 4096);

  {
    merge_workspace ws0; // (empty, so the reuse below can only be of that block)
    void* z = ws0.allocate(0, 8); // a zero-byte request still gives a distinct, valid block of one unit
    BOOST_TEST(z != nullptr);
    ws0.deallocate(z, 0, 8);
    void* one = ws0.allocate(64, 8); // which a later request of one unit reuses
    BOOST_TEST(one == z);
    BOOST_TEST(ws0.system_allocations() == 1u);
    ws0.deallocate(one, 64, 8);
  }

  BOOST_TEST(ws.bytes_held() > 0u);
  ws.release();
  BOOST_TEST(ws.bytes_held() == 0u);
  BOOST_TEST(mr.is_equal(ws));
  BOOST_TEST(!mr.is_equal(*std::pmr::new_delete_resource()));
}

BOOST_AUTO_TEST_CASE(a_block_in_use_survives_release) {
  merge_workspace ws;
  std::pmr::memory_resource& mr = ws;
  auto* p = static_cast<unsigned char*>(mr.allocate(256, 8));
  std::memset(p, 7, 256);
  ws.release(); // frees idle blocks only
  BOOST_TEST(p[255] == 7);
  BOOST_TEST(ws.bytes_held() >= 256u);
  mr.deallocate(p, 256, 8);
}

namespace {

// Base ~ values of a few magnitudes; models = base + small steps rounded to the storage type, so the deltas
// are quantized like real bf16 fine-tunes and the top-k brackets hold ties and candidates.
template <class T> struct model_set {
  std::int64_t rows, cols;
  std::vector<T> base;
  std::vector<std::vector<T>> tuned;
  model_set(std::int64_t r, std::int64_t c, int k) : rows(r), cols(c), base(static_cast<std::size_t>(r * c)) {
    std::uint64_t s = 0x243f6a8885a308d3ull;
    auto next = [&s] {
      s ^= s << 13;
      s ^= s >> 7;
      s ^= s << 17;
      return static_cast<float>(s >> 40) * (1.0f / 16777216.0f) - 0.5f;
    };
    for (auto& b : base)
      b = T(0.04f * next());
    for (int m = 0; m < k; ++m) {
      tuned.emplace_back(base.size());
      for (std::size_t i = 0; i < base.size(); ++i)
        tuned.back()[i] = T(static_cast<float>(base[i]) + 0.004f * next());
    }
  }
};

template <class T> bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

template <class T, class Policy, class Method>
void check_method(const Policy& pol, const Method& method, const std::string& label) {
  // 313 x 257 = 80441 elements: above the 65536 from which the top-k selection samples
  const model_set<T> m(313, 257, 4);
  using V = matrix_view<const T>;
  const std::array<std::int64_t, 2> shape{m.rows, m.cols};
  std::vector<merge_input<V>> in;
  for (std::size_t i = 0; i < m.tuned.size(); ++i)
    in.push_back({.tensor = host_view(static_cast<const T*>(m.tuned[i].data()), shape),
                  .weight = 0.3f + 0.1f * static_cast<float>(i), .density = 0.45, .gamma = 0.02, .epsilon = 0.1});
  const auto bv = host_view(static_cast<const T*>(m.base.data()), shape);
  const std::size_t n = m.base.size();
  std::vector<T> plain(n), first(n), second(n);
  merge(pol, method, host_view(plain.data(), shape), bv, in, merge_context{.tensor_name = "w", .seed = 9});

  merge_workspace ws;
  const merge_context with_ws{.tensor_name = "w", .seed = 9, .scratch = &ws};
  merge(pol, method, host_view(first.data(), shape), bv, in, with_ws);
  const std::size_t after_first = ws.system_allocations();
  const std::size_t held = ws.bytes_held();
  merge(pol, method, host_view(second.data(), shape), bv, in, with_ws);

  BOOST_TEST_CONTEXT(label) {
    BOOST_TEST(same_bits(plain, first));
    BOOST_TEST(same_bits(plain, second));
    BOOST_TEST(after_first > 0u);                             // this method's scratch came from the workspace
    BOOST_TEST(ws.system_allocations() == after_first);       // and the second call reused all of it
    BOOST_TEST(ws.bytes_held() == held);
  }
}

template <class T, class Policy> void check_all(const Policy& pol, const std::string& where) {
  check_method<T>(pol, ties{}, where + " ties");
  check_method<T>(pol, dare_ties{}, where + " dare_ties");
  check_method<T>(pol, dare_linear{}, where + " dare_linear");
  check_method<T>(pol, breadcrumbs_ties{}, where + " breadcrumbs_ties");
  check_method<T>(pol, della{}, where + " della");
  check_method<T>(pol, sce{.select_topk = 0.3}, where + " sce select_topk 0.3");
}

} // namespace

BOOST_AUTO_TEST_CASE(merges_with_a_workspace_give_the_same_bits_and_reuse_it) {
  check_all<bf16>(exec::par, "bf16 par");
  check_all<bf16>(exec::seq, "bf16 seq");
  check_all<float>(exec::par, "f32 par");
}

BOOST_AUTO_TEST_CASE(methods_without_large_scratch_leave_the_workspace_alone) {
  const model_set<bf16> m(64, 96, 3);
  using V = matrix_view<const bf16>;
  const std::array<std::int64_t, 2> shape{m.rows, m.cols};
  std::vector<merge_input<V>> in;
  for (const auto& t : m.tuned)
    in.push_back({.tensor = host_view(static_cast<const bf16*>(t.data()), shape), .weight = 0.5f});
  std::vector<bf16> a(m.base.size()), b(m.base.size());
  merge_workspace ws;
  const auto bv = host_view(static_cast<const bf16*>(m.base.data()), shape);
  merge(exec::par, task_arithmetic{}, host_view(a.data(), shape), bv, in, merge_context{.tensor_name = "w"});
  merge(exec::par, task_arithmetic{}, host_view(b.data(), shape), bv, in, merge_context{.tensor_name = "w", .scratch = &ws});
  BOOST_TEST(same_bits(a, b));
  BOOST_TEST(ws.system_allocations() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
