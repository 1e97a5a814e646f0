// Test harness: holds tensors of a storage type T in contiguous or strided (non-contiguous) layouts, runs a
// merge method through fusekit::merge, and compares with float64 references.
#pragma once

#include <boost/test/unit_test.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <fusekit/merge/merge.hpp>
#include <fusekit/types/bf16.hpp>
#include <fusekit/types/fp16.hpp>
#include <fusekit/view/strided_view.hpp>

namespace harness {

using namespace fusekit;

/// A rank-R tensor of T. Layouts: contiguous row-major, or "strided": rank 1 every other element, rank 2
/// column-major with padded columns (non-contiguous both ways).
template <class T, std::size_t R> struct tensor {
  std::vector<T> buf;
  strided_view<T, R> view;

  tensor(std::array<std::int64_t, R> ext, bool strided) {
    std::int64_t n = 1;
    for (auto e : ext)
      n *= e;
    std::array<std::int64_t, R> st{};
    if (!strided) {
      std::int64_t acc = 1;
      for (std::size_t d = R; d-- > 0;) {
        st[d] = acc;
        acc *= ext[d];
      }
      buf.assign(static_cast<std::size_t>(std::max<std::int64_t>(n, 1)), T(0.0f));
    } else if constexpr (R == 1) {
      st[0] = 2;
      buf.assign(static_cast<std::size_t>(std::max<std::int64_t>(2 * n, 1)), T(0.0f));
    } else {
      static_assert(R == 2);
      const std::int64_t ld = ext[0] + 3; // column-major, padded
      st = {1, ld};
      buf.assign(static_cast<std::size_t>(std::max<std::int64_t>(ld * ext[1], 1)), T(0.0f));
    }
    view = {buf.data(), ext, st};
  }
  /// Writes values (row-major linear order), rounded to T.
  void set(const std::vector<float>& v) {
    for (std::size_t i = 0; i < v.size(); ++i)
      view.at_linear(static_cast<std::int64_t>(i)) = T(v[i]);
  }
  /// Reads values (row-major linear order) as floats.
  [[nodiscard]] std::vector<float> get() const {
    std::vector<float> v(static_cast<std::size_t>(view.size()));
    for (std::size_t i = 0; i < v.size(); ++i)
      v[i] = static_cast<float>(view.at_linear(static_cast<std::int64_t>(i)));
    return v;
  }
  [[nodiscard]] strided_view<const T, R> cview() const { return view; }
};

/// Relative tolerance of one rounding to T.
template <class T> constexpr double storage_eps() {
  if constexpr (std::is_same_v<T, bf16>)
    return 1.0 / 256;
  else if constexpr (std::is_same_v<T, fp16>)
    return 1.0 / 2048;
  else
    return 1e-7;
}

/// Checks |got - want| <= atol + rtol·|want| element-wise with the first failures reported.
inline void check_close(const std::vector<float>& got, const std::vector<double>& want, double rtol, double atol,
                        const std::string& what) {
  BOOST_REQUIRE_EQUAL(got.size(), want.size());
  int bad = 0;
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double err = std::abs(static_cast<double>(got[i]) - want[i]);
    const double tol = atol + rtol * std::abs(want[i]);
    worst = std::max(worst, err / std::max(tol, 1e-300));
    if (!(err <= tol)) {
      if (bad < 5)
        BOOST_ERROR(what << ": element " << i << " got " << got[i] << " want " << want[i] << " (err " << err
                         << ", tol " << tol << ")");
      ++bad;
    }
  }
  BOOST_TEST_MESSAGE(what << ": worst error/tolerance = " << worst);
  BOOST_CHECK_MESSAGE(bad == 0, what << ": " << bad << " of " << got.size() << " elements out of tolerance");
}

/// Scale of the values involved (for absolute tolerances of cancelling sums).
inline double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v)
    m = std::max(m, static_cast<double>(std::abs(x)));
  return m;
}

} // namespace harness
