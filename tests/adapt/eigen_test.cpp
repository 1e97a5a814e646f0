// Eigen adaptor: Matrix/Array/Map/Ref/Block in both storage orders, Eigen::bfloat16/half elements, and
// merges through as_view on Eigen objects (compared with a plain loop).
#include <boost/test/unit_test.hpp>

#include <array>
#include <bit>
#include <cstdint>
#include <random>
#include <vector>

#include <Eigen/Core>

#include <fusekit/adapt/eigen.hpp>
#include <fusekit/exec/policy.hpp>
#include <fusekit/merge/linear.hpp>
#include <fusekit/merge/task_arithmetic.hpp>

using namespace fusekit;

using MatR = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatC = Eigen::MatrixXf;

// ---- compile-time facts ----
static_assert(viewable<Eigen::MatrixXf&> && viewable<const Eigen::ArrayXXd&> && viewable<Eigen::VectorXf&>);
static_assert(std::is_same_v<view_t<Eigen::MatrixXf&>, strided_view<float, 2>>);
static_assert(std::is_same_v<view_t<const Eigen::MatrixXf&>, strided_view<const float, 2>>);
static_assert(std::is_same_v<view_t<Eigen::VectorXd&>, strided_view<double, 1>>);
static_assert(std::is_same_v<view_t<Eigen::RowVectorXf&>, strided_view<float, 1>>);
static_assert(std::is_same_v<view_t<Eigen::Map<const Eigen::VectorXf>>, strided_view<const float, 1>>);
static_assert(std::is_same_v<view_t<Eigen::Ref<const Eigen::MatrixXf>>, strided_view<const float, 2>>);
static_assert(std::is_same_v<view_t<Eigen::Matrix<Eigen::bfloat16, -1, -1>&>, strided_view<Eigen::bfloat16, 2>>);
static_assert(element<Eigen::bfloat16> && element<Eigen::half>);
static_assert(std::is_same_v<compute_t<Eigen::bfloat16>, float> && std::is_same_v<compute_t<const Eigen::half>, float>);
static_assert(std::is_same_v<view_t<Eigen::MatrixXf&>::space_type, host_space>);
static_assert(!viewable<Eigen::MatrixXf*>);

BOOST_AUTO_TEST_SUITE(eigen_adaptor)

template <class V, class M> void check_same_elements(const V& v, const M& m) {
  BOOST_REQUIRE_EQUAL(v.extent(0), m.rows());
  BOOST_REQUIRE_EQUAL(v.extent(1), m.cols());
  for (Eigen::Index i = 0; i < m.rows(); ++i)
    for (Eigen::Index j = 0; j < m.cols(); ++j)
      BOOST_CHECK_EQUAL(&v(i, j), &m.coeffRef(i, j));
}

BOOST_AUTO_TEST_CASE(matrix_both_storage_orders) {
  MatC c(3, 5);
  MatR r(3, 5);
  c.setRandom();
  r = c;
  auto vc = as_view(c);
  auto vr = as_view(r);
  BOOST_CHECK(vr.is_contiguous());
  BOOST_CHECK(!vc.is_contiguous()); // column-major: strides {1, rows}
  BOOST_CHECK_EQUAL(vc.stride(0), 1);
  BOOST_CHECK_EQUAL(vc.stride(1), 3);
  BOOST_CHECK_EQUAL(vr.stride(0), 5);
  BOOST_CHECK_EQUAL(vr.stride(1), 1);
  check_same_elements(vc, c);
  check_same_elements(vr, r);
  for (std::int64_t i = 0; i < 15; ++i)
    BOOST_CHECK_EQUAL(vc.at_linear(i), vr.at_linear(i)); // same (row, col) order whatever the storage
}

BOOST_AUTO_TEST_CASE(array_and_integers) {
  Eigen::ArrayXXi a(2, 3);
  a << 1, 2, 3, 4, 5, 6;
  auto v = as_view(a);
  static_assert(std::is_same_v<decltype(v), strided_view<int, 2>>);
  BOOST_CHECK_EQUAL(v(1, 2), 6);
  BOOST_CHECK_EQUAL(v(0, 1), 2);
}

BOOST_AUTO_TEST_CASE(blocks_rows_cols_and_transpose) {
  MatC m(6, 7);
  m.setRandom();
  auto blk = m.block(1, 2, 4, 3);
  auto vb = as_view(blk);
  static_assert(std::is_same_v<decltype(vb), strided_view<float, 2>>); // a mutable block stays writable
  check_same_elements(vb, blk);
  BOOST_CHECK(!vb.is_contiguous());

  const MatC& cm = m;
  auto vcb = as_view(cm.block(0, 0, 2, 2));
  static_assert(std::is_same_v<decltype(vcb), strided_view<const float, 2>>);

  auto row = as_view(m.row(3)); // a row of a column-major matrix: rank 1, stride = rows
  static_assert(decltype(row)::rank() == 1);
  BOOST_CHECK_EQUAL(row.extent(0), 7);
  BOOST_CHECK_EQUAL(row.stride(0), 6);
  for (int j = 0; j < 7; ++j)
    BOOST_CHECK_EQUAL(&row[j], &m(3, j));
  auto col = as_view(m.col(4));
  BOOST_CHECK_EQUAL(col.stride(0), 1);
  BOOST_CHECK_EQUAL(&col[5], &m(5, 4));

  auto t = as_view(m.transpose());
  check_same_elements(t, m.transpose());
  BOOST_CHECK_EQUAL(t(2, 5), m(5, 2));
}

BOOST_AUTO_TEST_CASE(maps_with_strides_and_refs) {
  std::vector<double> buf(40);
  for (std::size_t i = 0; i < buf.size(); ++i)
    buf[i] = static_cast<double>(i);
  // Every other element of buf as a vector.
  Eigen::Map<Eigen::VectorXd, 0, Eigen::InnerStride<>> every2(buf.data(), 20, Eigen::InnerStride<>(2));
  auto v = as_view(every2);
  BOOST_CHECK_EQUAL(v.extent(0), 20);
  BOOST_CHECK_EQUAL(v.stride(0), 2);
  BOOST_CHECK_EQUAL(v[7], 14.0);
  // A 3x4 column-major matrix with outer stride 10 (padding).
  Eigen::Map<Eigen::MatrixXd, 0, Eigen::OuterStride<>> padded(buf.data(), 3, 4, Eigen::OuterStride<>(10));
  auto p = as_view(padded);
  BOOST_CHECK_EQUAL(p.stride(0), 1);
  BOOST_CHECK_EQUAL(p.stride(1), 10);
  BOOST_CHECK_EQUAL(p(2, 3), 32.0);
  // Both strides, row-major.
  using RM = Eigen::Matrix<double, -1, -1, Eigen::RowMajor>;
  Eigen::Map<const RM, 0, Eigen::Stride<-1, -1>> both(buf.data(), 3, 3, Eigen::Stride<-1, -1>(12, 3));
  auto b = as_view(both);
  static_assert(std::is_same_v<decltype(b), strided_view<const double, 2>>);
  BOOST_CHECK_EQUAL(b.stride(0), 12);
  BOOST_CHECK_EQUAL(b.stride(1), 3);
  BOOST_CHECK_EQUAL(b(2, 1), 27.0);
  // Ref with an inner stride binds to a block without a copy.
  Eigen::MatrixXd m = Eigen::MatrixXd::Random(5, 5);
  Eigen::Ref<Eigen::MatrixXd, 0, Eigen::OuterStride<>> r = m.block(1, 1, 3, 3);
  auto vr = as_view(r);
  BOOST_CHECK_EQUAL(&vr(0, 0), &m(1, 1));
  BOOST_CHECK_EQUAL(&vr(2, 1), &m(3, 2));
}

// Eigen::bfloat16 / Eigen::half: same bits as fusekit's types; Eigen's conversions agree with fusekit's.
template <class E, class F> void check_16bit_type_agrees() {
  using tr = element_traits<E>;
  static_assert(std::is_same_v<typename tr::fusekit_type, F>);
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const F f(from_bits, static_cast<std::uint16_t>(b));
    const E e = tr::from_fusekit(f);
    BOOST_REQUIRE_EQUAL(tr::to_fusekit(e).bits, f.bits);
    const float fe = static_cast<float>(e), ff = static_cast<float>(f);
    if (ff != ff)
      BOOST_REQUIRE(fe != fe);
    else
      BOOST_REQUIRE_EQUAL(std::bit_cast<std::uint32_t>(fe), std::bit_cast<std::uint32_t>(ff));
  }
  std::mt19937 gen(7);
  for (int i = 0; i < 200000; ++i) {
    const float x = std::bit_cast<float>(static_cast<std::uint32_t>(gen()));
    if (x != x)
      continue;
    BOOST_REQUIRE_EQUAL(tr::to_fusekit(from_compute<E>(x)).bits, F(x).bits);
  }
}
BOOST_AUTO_TEST_CASE(bfloat16_and_half_match_fusekit_bits) {
  check_16bit_type_agrees<Eigen::bfloat16, bf16>();
  check_16bit_type_agrees<Eigen::half, fp16>();
}

// Reference: out(i,j) = Σ c_k x_k(i,j) (+ base for task arithmetic), in float.
template <class M> Eigen::MatrixXf to_float(const M& m) { return m.template cast<float>(); }

template <class T> void merge_two_element_types(float tol) {
  using M = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
  const Eigen::Index rows = 37, cols = 29; // odd sizes
  Eigen::MatrixXf fa = Eigen::MatrixXf::Random(rows, cols), fb = Eigen::MatrixXf::Random(rows, cols),
                  fbase = Eigen::MatrixXf::Random(rows, cols);
  const M a = fa.cast<T>(), b = fb.cast<T>(), base = fbase.cast<T>();
  M out(rows, cols);
  std::vector<merge_input<view_t<const M&>>> in{{.tensor = as_view(a), .weight = 0.3f},
                                                {.tensor = as_view(b), .weight = 0.9f}};
  merge(exec::par, linear{}, out, no_base, in);
  const Eigen::MatrixXf ref = (0.3f * to_float(a) + 0.9f * to_float(b)) / 1.2f;
  BOOST_CHECK_LE((to_float(out) - ref).cwiseAbs().maxCoeff(), tol);

  // Task arithmetic into a non-contiguous output: a block of a bigger row-major matrix.
  Eigen::Matrix<T, -1, -1, Eigen::RowMajor> big(rows + 4, cols + 6);
  big.setConstant(T(7.0f));
  auto out_blk = big.block(2, 3, rows, cols);
  merge(exec::seq, task_arithmetic{.lambda = 0.5f}, out_blk, base, in);
  const Eigen::MatrixXf ta =
      to_float(base) + 0.5f * (0.3f * (to_float(a) - to_float(base)) + 0.9f * (to_float(b) - to_float(base)));
  BOOST_CHECK_LE((to_float(out_blk) - ta).cwiseAbs().maxCoeff(), tol);
  BOOST_CHECK(to_float(big.topRows(2)).isConstant(7.0f)); // nothing outside the block was written
  BOOST_CHECK(to_float(big.leftCols(3)).isConstant(7.0f));
}
BOOST_AUTO_TEST_CASE(merge_float_through_eigen) { merge_two_element_types<float>(1e-6f); }
BOOST_AUTO_TEST_CASE(merge_bfloat16_through_eigen) { merge_two_element_types<Eigen::bfloat16>(2e-2f); }
BOOST_AUTO_TEST_CASE(merge_half_through_eigen) { merge_two_element_types<Eigen::half>(2e-3f); }

BOOST_AUTO_TEST_CASE(merge_matches_fusekit_types_bit_for_bit) {
  // The same merge on Eigen::bfloat16 storage and on fusekit::bf16 storage gives the same bits.
  const int n = 1001;
  Eigen::Matrix<Eigen::bfloat16, -1, 1> x(n), y(n), out(n);
  std::vector<bf16> fx(n), fy(n), fout(n);
  std::mt19937 gen(3);
  std::normal_distribution<float> d;
  for (int i = 0; i < n; ++i) {
    fx[i] = bf16(d(gen));
    fy[i] = bf16(d(gen));
    x[i] = element_traits<Eigen::bfloat16>::from_fusekit(fx[i]);
    y[i] = element_traits<Eigen::bfloat16>::from_fusekit(fy[i]);
  }
  std::array<merge_input<view_t<decltype(x)&>>, 2> in{
      {{.tensor = as_view(x), .weight = 2.f}, {.tensor = as_view(y), .weight = -0.5f}}};
  std::array<merge_input<vector_view<bf16>>, 2> fin{
      {{.tensor = host_view(fx.data(), n), .weight = 2.f}, {.tensor = host_view(fy.data(), n), .weight = -0.5f}}};
  merge(exec::seq, linear{.normalize = false}, out, no_base, in);
  merge(exec::seq, linear{.normalize = false}, host_view(fout.data(), n), no_base, fin);
  for (int i = 0; i < n; ++i)
    BOOST_CHECK_EQUAL(element_traits<Eigen::bfloat16>::to_fusekit(out[i]).bits, fout[i].bits);
}

BOOST_AUTO_TEST_CASE(shape_mismatch_is_a_runtime_error) {
  Eigen::MatrixXf a(3, 4), out(4, 3);
  a.setZero();
  std::vector<merge_input<view_t<Eigen::MatrixXf&>>> in{{.tensor = as_view(a)}};
  BOOST_CHECK_EXCEPTION(merge(exec::seq, linear{}, out, no_base, in), error,
                        [](const error& e) { return e.code() == errc::shape_mismatch; });
}

BOOST_AUTO_TEST_SUITE_END()
