// Element-wise methods (nearswap, ram, ramplus_tl, passthrough), arcee_fusion, and the merge_elementwise
// helper for custom methods: float64 references on odd shapes, strided views and every storage type.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <fusekit/merge/arcee_fusion.hpp>
#include <fusekit/merge/elementwise.hpp>
#include <fusekit/merge/nearswap.hpp>
#include <fusekit/merge/passthrough.hpp>
#include <fusekit/merge/ram.hpp>

#include "harness.hpp"
#include "reference.hpp"

using namespace fusekit;
using harness::tensor;
using ref::vec;

namespace {

template <class T, std::size_t R> struct data {
  tensor<T, R> base, out;
  std::vector<tensor<T, R>> xs;
  // sparse task vectors: about half of each model's deltas are exactly zero (RAM needs untouched elements)
  data(std::array<std::int64_t, R> ext, std::size_t N, bool strided, std::uint32_t seed) : base(ext, strided), out(ext, strided) {
    std::int64_t n = 1;
    for (auto e : ext)
      n *= e;
    const auto bv = ref::random_values<T>(static_cast<std::size_t>(n), seed);
    base.set(bv);
    for (std::size_t i = 0; i < N; ++i) {
      xs.emplace_back(ext, strided);
      auto v = ref::random_values<T>(static_cast<std::size_t>(n), seed + 5 * static_cast<std::uint32_t>(i + 1), 0.1f);
      for (std::size_t e = 0; e < v.size(); ++e)
        v[e] = ((e * 7 + i * 3) % 5 < 2) ? bv[e] : static_cast<float>(T(bv[e] + v[e]));
      xs.back().set(v);
    }
  }
  [[nodiscard]] auto inputs() const {
    std::vector<merge_input<strided_view<const T, R>>> in;
    for (std::size_t i = 0; i < xs.size(); ++i)
      in.push_back({xs[i].cview(), 1.0f, 1.0, 0.01, 0.15, 0.5f + static_cast<float>(i)});
    return in;
  }
};

template <class T, std::size_t R> vec ram_ref(const data<T, R>& d, double eps, double r, double alpha, bool plus) {
  const auto b = d.base.get();
  const std::size_t N = d.xs.size(), n = b.size();
  std::vector<std::vector<float>> x;
  for (const auto& t : d.xs)
    x.push_back(t.get());
  auto touched = [&](std::size_t i, std::size_t e) { return std::abs(x[i][e] - b[e]) > static_cast<float>(eps); };
  std::vector<int> c(n, 0);
  for (std::size_t e = 0; e < n; ++e)
    for (std::size_t i = 0; i < N; ++i)
      c[e] += touched(i, e);
  std::vector<double> lam(N, 1.0);
  if (plus)
    for (std::size_t i = 0; i < N; ++i) {
      double sh = 0, un = 0;
      for (std::size_t e = 0; e < n; ++e) {
        sh += touched(i, e) && c[e] > 1;
        un += touched(i, e) && c[e] == 1;
      }
      lam[i] = 1 + r * std::clamp(sh / std::max(un, eps), 0.0, alpha);
    }
  vec out(n);
  for (std::size_t e = 0; e < n; ++e) {
    double acc = 0;
    for (std::size_t i = 0; i < N; ++i)
      if (touched(i, e))
        acc += (c[e] == 1 ? lam[i] : 1.0 / c[e]) * (static_cast<double>(x[i][e]) - b[e]);
    out[e] = b[e] + acc;
  }
  return out;
}

// Per-element median of the inputs: a custom method written with the helper.
struct median_of_inputs {
  static constexpr std::string_view name = "median";
  template <class P, class Out, class Base, class In>
  void apply(const P& p, const Out& out, const Base& base, std::span<const merge_input<In>> in, const merge_context& ctx) const {
    merge_elementwise(p, out, base, in, ctx, name, [](const element_values& v) {
      float buf[16];
      std::copy(v.values, v.values + v.size(), buf);
      std::sort(buf, buf + v.size());
      const std::size_t h = v.size() / 2;
      return v.size() % 2 ? buf[h] : 0.5f * (buf[h - 1] + buf[h]);
    });
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(merge_elementwise_methods)

BOOST_AUTO_TEST_CASE(nearswap_vs_reference) {
  for (double t : {0.0, 0.01, 0.05, 10.0}) {
    data<float, 2> d({17, 9}, 1, true, 3);
    merge(exec::par, nearswap{.t = t}, d.out.view, d.base.cview(), d.inputs(), {"ns"});
    const auto b = d.base.get(), x = d.xs[0].get();
    vec want(b.size());
    for (std::size_t e = 0; e < b.size(); ++e) {
      const double w = std::clamp(t / std::max(std::abs(static_cast<double>(b[e]) - x[e]), 1e-6), 0.0, 1.0);
      want[e] = w * x[e] + (1 - w) * b[e];
    }
    harness::check_close(d.out.get(), want, 1e-6, 1e-6, "nearswap t=" + std::to_string(t));
  }
  data<bf16, 1> two({5}, 2, false, 1);
  BOOST_CHECK_THROW(merge(exec::seq, nearswap{}, two.out.view, two.base.cview(), two.inputs()), fusekit::error);
}

BOOST_AUTO_TEST_CASE(ram_and_ramplus_vs_reference) {
  for (std::size_t N : {2u, 3u, 5u, 8u}) {
    data<float, 1> d({1003}, N, N % 2 == 0, 10 + static_cast<std::uint32_t>(N));
    merge(exec::par, ram{}, d.out.view, d.base.cview(), d.inputs(), {"r"});
    harness::check_close(d.out.get(), ram_ref(d, 1e-5, 0, 0, false), 1e-6, 1e-6, "ram N=" + std::to_string(N));
    merge(exec::par, ramplus_tl{}, d.out.view, d.base.cview(), d.inputs(), {"r"});
    harness::check_close(d.out.get(), ram_ref(d, 1e-5, 0.1, 0.2, true), 1e-6, 1e-6, "ramplus_tl N=" + std::to_string(N));
    data<bf16, 2> q({13, 7}, N, true, 30 + static_cast<std::uint32_t>(N));
    merge(exec::seq, ramplus_tl{.r = 0.5, .alpha = 1.0}, q.out.view, q.base.cview(), q.inputs(), {"r"});
    harness::check_close(q.out.get(), ram_ref(q, 1e-5, 0.5, 1.0, true), harness::storage_eps<bf16>(), 1e-6,
                         "ramplus_tl bf16 N=" + std::to_string(N));
  }
}

BOOST_AUTO_TEST_CASE(passthrough_scales_the_single_input) {
  data<fp16, 2> d({3, 5}, 1, true, 2);
  merge(exec::par, passthrough{}, d.out.view, no_base, d.inputs());
  const auto x = d.xs[0].get();
  vec want(x.begin(), x.end());
  for (auto& v : want)
    v *= 0.5;
  harness::check_close(d.out.get(), want, harness::storage_eps<fp16>(), 0, "passthrough scale 0.5");
  data<fp16, 2> two({3, 5}, 2, false, 2);
  BOOST_CHECK_THROW(merge(exec::seq, passthrough{}, two.out.view, no_base, two.inputs()), fusekit::error);
}

BOOST_AUTO_TEST_CASE(arcee_fusion_vs_reference) {
  for (int shape = 0; shape < 3; ++shape) {
    const std::array<std::int64_t, 2> ext = shape == 0 ? std::array<std::int64_t, 2>{31, 40}
                                          : shape == 1 ? std::array<std::int64_t, 2>{1, 257}
                                                       : std::array<std::int64_t, 2>{64, 3};
    data<float, 2> d(ext, 1, shape == 2, 50 + static_cast<std::uint32_t>(shape));
    merge(exec::par, arcee_fusion{}, d.out.view, d.base.cview(), d.inputs(), {"af"});
    const auto b = d.base.get(), x = d.xs[0].get();
    const std::size_t rows = static_cast<std::size_t>(ext[0]), C = static_cast<std::size_t>(ext[1]);
    std::vector<double> imp(b.size());
    for (std::size_t r = 0; r < rows; ++r) {
      double mx = -1e300, mb = -1e300, sx = 0, sb = 0, kl = 0;
      for (std::size_t c = 0; c < C; ++c) {
        mx = std::max(mx, static_cast<double>(x[r * C + c]));
        mb = std::max(mb, static_cast<double>(b[r * C + c]));
      }
      for (std::size_t c = 0; c < C; ++c) {
        sx += std::exp(x[r * C + c] - mx);
        sb += std::exp(b[r * C + c] - mb);
      }
      for (std::size_t c = 0; c < C; ++c) {
        const double p = std::exp(x[r * C + c] - mx) / sx + 1e-8, q = std::exp(b[r * C + c] - mb) / sb + 1e-8;
        kl += p * std::log(p / q);
      }
      for (std::size_t c = 0; c < C; ++c)
        imp[r * C + c] = std::abs(static_cast<double>(x[r * C + c]) - b[r * C + c]) * kl;
    }
    std::vector<double> s = imp;
    std::sort(s.begin(), s.end());
    auto q = [&](double f) { return s[static_cast<std::size_t>(f * static_cast<double>(s.size() - 1))]; };
    const double thr = q(0.5) + 1.5 * (q(0.75) - q(0.25));
    // elements whose importance is within rounding of the threshold may go either way
    vec want(b.size());
    std::size_t borderline = 0, mismatched = 0;
    const auto got = d.out.get();
    for (std::size_t e = 0; e < b.size(); ++e) {
      want[e] = imp[e] >= thr ? x[e] : b[e];
      if (std::abs(imp[e] - thr) <= 1e-6 * std::abs(thr))
        ++borderline;
      else if (std::abs(got[e] - want[e]) > 1e-6)
        ++mismatched;
    }
    BOOST_CHECK_EQUAL(mismatched, 0u);
    BOOST_CHECK_LE(borderline, 2u);
    // some elements taken from each model (a mask that is neither empty nor full)
    std::size_t taken = 0;
    for (std::size_t e = 0; e < b.size(); ++e)
      taken += got[e] != b[e];
    BOOST_CHECK(taken > 0 && taken < b.size());
  }
}

BOOST_AUTO_TEST_CASE(custom_elementwise_method_runs_on_every_policy) {
  data<bf16, 2> d({7, 11}, 5, true, 77);
  std::vector<std::vector<float>> xs;
  for (auto& x : d.xs)
    xs.push_back(x.get());
  vec want(xs[0].size());
  for (std::size_t e = 0; e < want.size(); ++e) {
    std::vector<float> v;
    for (auto& x : xs)
      v.push_back(x[e]);
    std::sort(v.begin(), v.end());
    want[e] = v[2];
  }
  for (int t : {0, 1, 3}) {
    merge(exec::parallel_policy{.threads = t}, median_of_inputs{}, d.out.view, no_base, d.inputs());
    harness::check_close(d.out.get(), want, 0, 0, "median threads=" + std::to_string(t));
  }
  merge(exec::seq, median_of_inputs{}, d.out.view, d.base.cview(), d.inputs());
  harness::check_close(d.out.get(), want, 0, 0, "median seq");
}

BOOST_AUTO_TEST_SUITE_END()
