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

/// The same bf16 base and k models twice: dense (contiguous rows: the register kernels) and in rows padded by
/// 5 elements (non-contiguous: the blocked loops). `base_value(id)` gives the base's element id (row-major
/// index), `model_value(id, j, b)` model j's element given the base value b. diff(method, input_of) merges
/// both layouts (the dense output starts one element off the 32-byte grid) with inputs described by
/// input_of(j, view) and counts the elements whose bits differ. NaN outputs compare as NaN: where several NaN
/// operands meet (inf − inf in one model, a NaN input in another), which payload and sign survive depends
/// on the FMA form (132/213/231) the register allocator picked.
struct bf16_twin_set {
  using V2 = strided_view<const bf16, 2>;
  std::int64_t rows, cols, pitch, n;
  std::vector<bf16> bp, bd;
  std::vector<std::vector<bf16>> xp, xd;

  template <class BaseValue, class ModelValue>
  bf16_twin_set(std::int64_t r, std::int64_t c, int k, BaseValue&& base_value, ModelValue&& model_value)
      : rows(r), cols(c), pitch(c + 5), n(r * c), bp(static_cast<std::size_t>(r * (c + 5))),
        bd(static_cast<std::size_t>(r * c)), xp(static_cast<std::size_t>(k), std::vector<bf16>(bp.size())),
        xd(static_cast<std::size_t>(k), std::vector<bf16>(bd.size())) {
    for (std::int64_t i = 0; i < rows; ++i)
      for (std::int64_t j = 0; j < cols; ++j) {
        const std::size_t ip = static_cast<std::size_t>(i * pitch + j), id = static_cast<std::size_t>(i * cols + j);
        const float b = base_value(id);
        bp[ip] = bd[id] = from_compute<bf16>(b);
        for (int m = 0; m < k; ++m)
          xp[static_cast<std::size_t>(m)][ip] = xd[static_cast<std::size_t>(m)][id] = from_compute<bf16>(model_value(id, m, b));
      }
  }

  template <class Method, class InputOf> std::int64_t diff(const Method& method, InputOf&& input_of) const {
    const std::array<std::int64_t, 2> shape{rows, cols}, padded{pitch, 1};
    std::vector<merge_input<V2>> in_p, in_d;
    for (std::size_t m = 0; m < xp.size(); ++m) {
      in_p.push_back(input_of(static_cast<int>(m), host_view(static_cast<const bf16*>(xp[m].data()), shape, padded)));
      in_d.push_back(input_of(static_cast<int>(m), host_view(static_cast<const bf16*>(xd[m].data()), shape)));
    }
    std::vector<bf16> od(static_cast<std::size_t>(n) + 1), op(bp.size());
    merge(exec::par, method, host_view(od.data() + 1, shape), host_view(static_cast<const bf16*>(bd.data()), shape), in_d,
          merge_context{"w", 3});
    merge(exec::par, method, host_view(op.data(), shape, padded), host_view(static_cast<const bf16*>(bp.data()), shape, padded),
          in_p, merge_context{"w", 3});
    std::int64_t d = 0;
    for (std::int64_t i = 0; i < rows; ++i)
      for (std::int64_t j = 0; j < cols; ++j) {
        const bf16 a = od[static_cast<std::size_t>(i * cols + j) + 1], p = op[static_cast<std::size_t>(i * pitch + j)];
        d += !(a.bits == p.bits || (std::isnan(static_cast<float>(a)) && std::isnan(static_cast<float>(p))));
      }
    return d;
  }
};

/// A small deterministic generator of floats in [-0.5, 0.5) (an LCG; the tests only need reproducible values).
struct lcg {
  std::uint32_t state;
  float operator()() noexcept {
    state = state * 1664525u + 1013904223u;
    return static_cast<float>(state >> 8) * (1.0f / 16777216.0f) - 0.5f;
  }
};

} // namespace harness
