// strided_view, memory spaces, as_view and the span adaptor.
#include <boost/test/unit_test.hpp>

#include <array>
#include <span>
#include <vector>

#include <fusekit/adapt/span.hpp>
#include <fusekit/exec/policy.hpp>
#include <fusekit/view/as_view.hpp>
#include <fusekit/view/strided_view.hpp>

using namespace fusekit;

static_assert(tensor_view<strided_view<float, 2>>);
static_assert(std::is_trivially_copyable_v<strided_view<bf16, 3, device_space>>);
static_assert(host_accessible_view<strided_view<float, 1, managed_space>>);
static_assert(device_accessible_view<strided_view<float, 1, managed_space>>);
static_assert(!host_accessible_view<strided_view<float, 1, device_space>>);
static_assert(viewable<std::vector<float>&> && viewable<std::span<const bf16>> && viewable<const std::array<fp16, 3>&>);
static_assert(!viewable<float*>, "raw pointers are never adapted implicitly");
static_assert(!viewable<std::vector<std::string>>);
static_assert(exec::runs_on<exec::parallel_policy, strided_view<float, 1>>);
static_assert(!exec::runs_on<exec::sequenced_policy, strided_view<float, 1, device_space>>);
static_assert(std::is_same_v<view_t<const std::vector<float>&>, strided_view<const float, 1>>);
static_assert(std::is_same_v<view_t<std::vector<bf16>&>, strided_view<bf16, 1>>);

BOOST_AUTO_TEST_SUITE(views)

BOOST_AUTO_TEST_CASE(row_major_indexing_and_strides) {
  std::vector<int> buf(12);
  for (int i = 0; i < 12; ++i)
    buf[i] = i;
  auto m = host_view(buf.data(), std::array<std::int64_t, 2>{3, 4});
  BOOST_CHECK_EQUAL(m.size(), 12);
  BOOST_CHECK(m.is_contiguous());
  BOOST_CHECK_EQUAL(m(2, 3), 11);
  BOOST_CHECK_EQUAL(m.row(1)[2], 6);
  // Transposed (column-major) view of the same memory: not contiguous.
  auto t = host_view(buf.data(), std::array<std::int64_t, 2>{4, 3}, std::array<std::int64_t, 2>{1, 4});
  BOOST_CHECK(!t.is_contiguous());
  BOOST_CHECK_EQUAL(t(3, 2), m(2, 3));
  for (std::int64_t i = 0; i < 12; ++i)
    BOOST_CHECK_EQUAL(t.at_linear(i), t(i / 3, i % 3));
  // Every other column.
  auto s = host_view(buf.data(), std::array<std::int64_t, 2>{3, 2}, std::array<std::int64_t, 2>{4, 2});
  BOOST_CHECK_EQUAL(s(2, 1), 10);
  // Extent-1 dimensions do not break contiguity.
  auto one = host_view(buf.data(), std::array<std::int64_t, 2>{1, 12}, std::array<std::int64_t, 2>{99, 1});
  BOOST_CHECK(one.is_contiguous());
}

BOOST_AUTO_TEST_CASE(span_adaptor_two_element_types) {
  std::vector<float> f{1, 2, 3};
  const std::vector<bf16> b{bf16(1.0f), bf16(2.0f)};
  auto vf = as_view(f);
  auto vb = as_view(b);
  static_assert(std::is_same_v<decltype(vb)::element_type, const bf16>);
  BOOST_CHECK_EQUAL(vf.size(), 3);
  BOOST_CHECK_EQUAL(vf[2], 3.0f);
  BOOST_CHECK_EQUAL(static_cast<float>(vb[1]), 2.0f);
  vf[0] = 5;
  BOOST_CHECK_EQUAL(f[0], 5.0f);
  // A span over every second element is adapted as a (non-contiguous) strided view by hand.
  auto every_other = host_view(f.data(), std::array<std::int64_t, 1>{2}, std::array<std::int64_t, 1>{2});
  BOOST_CHECK(!every_other.is_contiguous());
  BOOST_CHECK_EQUAL(every_other[1], 3.0f);
  // as_view is idempotent on views and const-converts.
  strided_view<const float, 1> c = as_view(vf);
  BOOST_CHECK_EQUAL(c[2], 3.0f);
}

BOOST_AUTO_TEST_SUITE_END()
