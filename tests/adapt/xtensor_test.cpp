// xtensor adaptor: containers, adapt(), views and strided views (data() + data_offset(), element strides),
// as_rank<R> for xarray, merges through them, broadcast outputs rejected.
#include <boost/test/unit_test.hpp>

#include <array>
#include <cstdint>
#include <vector>

#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xfixed.hpp>
#include <xtensor/xrandom.hpp>
#include <xtensor/xstrided_view.hpp>
#include <xtensor/xtensor.hpp>
#include <xtensor/xview.hpp>

#include <fusekit/adapt/xtensor.hpp>
#include <fusekit/exec/policy.hpp>
#include <fusekit/merge/linear.hpp>
#include <fusekit/merge/task_arithmetic.hpp>

using namespace fusekit;

static_assert(std::is_same_v<view_t<xt::xtensor<float, 2>&>, strided_view<float, 2>>);
static_assert(std::is_same_v<view_t<const xt::xtensor<double, 3>&>, strided_view<const double, 3>>);
static_assert(std::is_same_v<view_t<xt::xtensor_fixed<float, xt::xshape<2, 3>>&>, strided_view<float, 2>>);
static_assert(std::is_same_v<view_t<xt::xtensor<bf16, 1>&>, strided_view<bf16, 1>>);
static_assert(std::is_same_v<view_t<xt::xtensor<float, 2, xt::layout_type::column_major>&>, strided_view<float, 2>>);

BOOST_AUTO_TEST_SUITE(xtensor_adaptor)

template <class V, class E> void check_same_elements_2d(const V& v, E& e) {
  BOOST_REQUIRE_EQUAL(v.extent(0), static_cast<std::int64_t>(e.shape()[0]));
  BOOST_REQUIRE_EQUAL(v.extent(1), static_cast<std::int64_t>(e.shape()[1]));
  for (std::size_t i = 0; i < e.shape()[0]; ++i)
    for (std::size_t j = 0; j < e.shape()[1]; ++j)
      BOOST_CHECK_EQUAL(&v(i, j), &e(i, j));
}

BOOST_AUTO_TEST_CASE(containers_both_layouts) {
  xt::xtensor<float, 2> r = xt::random::rand<float>({4, 6});
  xt::xtensor<float, 2, xt::layout_type::column_major> c = r;
  auto vr = as_view(r);
  auto vc = as_view(c);
  BOOST_CHECK(vr.is_contiguous());
  BOOST_CHECK(!vc.is_contiguous());
  BOOST_CHECK_EQUAL(vc.stride(0), 1);
  BOOST_CHECK_EQUAL(vc.stride(1), 4);
  check_same_elements_2d(vr, r);
  check_same_elements_2d(vc, c);
  for (std::int64_t i = 0; i < 24; ++i)
    BOOST_CHECK_EQUAL(vr.at_linear(i), vc.at_linear(i));

  xt::xtensor_fixed<double, xt::xshape<2, 3>> f = {{1, 2, 3}, {4, 5, 6}};
  auto vf = as_view(f);
  BOOST_CHECK_EQUAL(vf(1, 2), 6.0);
  BOOST_CHECK(vf.is_contiguous());
}

BOOST_AUTO_TEST_CASE(xarray_through_as_rank) {
  xt::xarray<double> a = xt::arange<double>(24.0);
  a.reshape({2, 3, 4});
  auto v = as_rank<3>(a);
  static_assert(std::is_same_v<decltype(v), strided_view<double, 3>>);
  BOOST_CHECK_EQUAL(v(1, 2, 3), 23.0);
  BOOST_CHECK_EQUAL(v.stride(0), 12);
  const xt::xarray<double>& ca = a;
  auto cv = as_rank<3>(ca);
  static_assert(std::is_same_v<decltype(cv), strided_view<const double, 3>>);
  BOOST_CHECK_EXCEPTION((void)as_rank<2>(a), error, [](const error& e) { return e.code() == errc::shape_mismatch; });
}

BOOST_AUTO_TEST_CASE(adapt_with_and_without_strides) {
  std::vector<float> buf(30);
  for (std::size_t i = 0; i < buf.size(); ++i)
    buf[i] = static_cast<float>(i);
  // Static rank from a std::array shape.
  auto t = xt::adapt(buf.data(), 12, xt::no_ownership(), std::array<std::size_t, 2>{3, 4});
  auto vt = as_view(t);
  static_assert(decltype(vt)::rank() == 2);
  BOOST_CHECK_EQUAL(vt(2, 3), 11.0f);
  // Explicit strides: every other column of a 3x10 buffer.
  // (xt::adapt wants the element count of the shape as size, whatever the strides.)
  auto s = xt::adapt(buf.data(), 15, xt::no_ownership(), std::array<std::size_t, 2>{3, 5},
                     std::array<std::ptrdiff_t, 2>{10, 2});
  auto vs = as_view(s);
  BOOST_CHECK(!vs.is_contiguous());
  BOOST_CHECK_EQUAL(vs(2, 4), 28.0f);
  check_same_elements_2d(vs, s);
}

BOOST_AUTO_TEST_CASE(views_and_strided_views_use_data_offset) {
  xt::xtensor<float, 2> a = xt::random::rand<float>({7, 9});
  auto sub = xt::view(a, xt::range(1, 6), xt::range(2, 9, 3)); // 5 x 3, offset 11, strides {9, 3}
  auto vs = as_view(sub);
  static_assert(decltype(vs)::rank() == 2);
  BOOST_CHECK_EQUAL(vs.data(), &a(1, 2));
  BOOST_CHECK_EQUAL(vs.stride(0), 9);
  BOOST_CHECK_EQUAL(vs.stride(1), 3);
  check_same_elements_2d(vs, sub);

  auto row = xt::view(a, 4, xt::all()); // rank 1
  auto vrow = as_view(row);
  static_assert(decltype(vrow)::rank() == 1);
  BOOST_CHECK_EQUAL(&vrow[5], &a(4, 5));

  auto sv = xt::strided_view(a, {xt::range(0, 7, 2), xt::range(1, 5)}); // dynamic rank: as_rank
  auto vsv = as_rank<2>(sv);
  BOOST_CHECK_EQUAL(vsv.data(), &a(0, 1));
  check_same_elements_2d(vsv, sv);
}

template <class T> void merge_two_element_types(float tol) {
  const std::size_t r = 31, c = 17; // odd sizes
  xt::xtensor<float, 2> fa = xt::random::rand<float>({r, c}, -1, 1), fb = xt::random::rand<float>({r, c}, -1, 1),
                        fbase = xt::random::rand<float>({r, c}, -1, 1);
  const xt::xtensor<T, 2> a = xt::cast<T>(fa), b = xt::cast<T>(fb), base = xt::cast<T>(fbase);
  xt::xtensor<T, 2> out = xt::zeros<T>({r, c});
  std::vector<merge_input<view_t<const xt::xtensor<T, 2>&>>> in{{.tensor = as_view(a), .weight = 0.25f},
                                                                {.tensor = as_view(b), .weight = 1.0f}};
  merge(exec::par, linear{}, out, no_base, in);
  const xt::xtensor<float, 2> ra = xt::cast<float>(a), rb = xt::cast<float>(b), rbase = xt::cast<float>(base);
  xt::xtensor<float, 2> ref = (0.25f * ra + 1.0f * rb) / 1.25f;
  BOOST_CHECK_LE(xt::amax(xt::abs(xt::cast<float>(out) - ref))(), tol);

  // Output: a strided view into a bigger column-major tensor.
  xt::xtensor<T, 2, xt::layout_type::column_major> big = xt::zeros<T>({r * 2, c + 3});
  auto out_view = xt::view(big, xt::range(0, 2 * r, 2), xt::range(3, c + 3));
  merge(exec::seq, task_arithmetic{.lambda = 2.0f}, out_view, base, in);
  ref = rbase + 2.0f * (0.25f * (ra - rbase) + (rb - rbase));
  BOOST_CHECK_LE(xt::amax(xt::abs(xt::cast<float>(out_view) - ref))(), tol);
  BOOST_CHECK_EQUAL(xt::amax(xt::abs(xt::cast<float>(xt::view(big, xt::range(1, 2 * r, 2), xt::all()))))(), 0.0f);
}
BOOST_AUTO_TEST_CASE(merge_float) { merge_two_element_types<float>(1e-6f); }
BOOST_AUTO_TEST_CASE(merge_double) { merge_two_element_types<double>(1e-6f); }
BOOST_AUTO_TEST_CASE(merge_bf16) { merge_two_element_types<bf16>(4e-2f); }

BOOST_AUTO_TEST_CASE(broadcast_output_is_rejected_broadcast_input_is_fine) {
  std::vector<float> row{1, 2, 3, 4};
  // 3 x 4 broadcast of one row: stride 0 along dimension 0.
  auto bcast = xt::adapt(row.data(), 12, xt::no_ownership(), std::array<std::size_t, 2>{3, 4},
                         std::array<std::ptrdiff_t, 2>{0, 1});
  xt::xtensor<float, 2> x = xt::ones<float>({3, 4}), out = xt::zeros<float>({3, 4});
  std::vector<merge_input<strided_view<float, 2>>> in{{.tensor = as_view(bcast), .weight = 1.f},
                                                      {.tensor = as_view(x), .weight = 1.f}};
  merge(exec::seq, linear{}, out, no_base, in);
  BOOST_CHECK_EQUAL(out(2, 3), 2.5f);
  BOOST_CHECK_EXCEPTION(merge(exec::seq, linear{}, bcast, no_base, in), error, [](const error& e) {
    return e.code() == errc::invalid_argument && std::string(e.what()).find("broadcast") != std::string::npos;
  });
}

BOOST_AUTO_TEST_SUITE_END()
