// Geometric methods (slerp, nuslerp, multislerp, karcher, model_stock): float64 references written as the
// mergekit formulas read, element by element, on odd shapes, strided views, 2-8 inputs, every storage type.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <fusekit/merge/karcher.hpp>
#include <fusekit/merge/model_stock.hpp>
#include <fusekit/merge/multislerp.hpp>
#include <fusekit/merge/nuslerp.hpp>
#include <fusekit/merge/slerp.hpp>

#include "harness.hpp"
#include "reference.hpp"

using namespace fusekit;
using harness::tensor;
using ref::vec;

namespace {

double norm(const vec& a) { return std::sqrt(ref::dot(a, a)); }

vec slerp_ref(double t, const vec& a, const vec& b) {
  double na = norm(a), nb = norm(b);
  if (!(na > 1e-8))
    na = 1;
  if (!(nb > 1e-8))
    nb = 1;
  const double d = std::clamp(ref::dot(a, b) / (na * nb), -1.0, 1.0);
  double ca = 1 - t, cb = t;
  if (std::abs(d) <= 0.9995) {
    const double th = std::acos(d);
    ca = std::sin((1 - t) * th) / std::sin(th);
    cb = std::sin(t * th) / std::sin(th);
  }
  vec r(a.size());
  for (std::size_t i = 0; i < a.size(); ++i)
    r[i] = ca * a[i] + cb * b[i];
  return r;
}

vec nuslerp_vec(double t, const vec& v0, const vec& v1) {
  const double n0 = std::max(norm(v0), 1e-7), n1 = std::max(norm(v1), 1e-7);
  const double c = std::clamp(ref::dot(v0, v1) / (n0 * n1), -1.0, 1.0);
  vec r(v0.size());
  const bool colinear = 1 - c * c <= 1e-16;
  const double th = std::acos(c);
  for (std::size_t i = 0; i < v0.size(); ++i)
    r[i] = colinear ? (1 - t) * v0[i] + t * v1[i] : (std::sin((1 - t) * th) * v0[i] + std::sin(t * th) * v1[i]) / std::sin(th);
  return r;
}

vec multislerp_ref(const std::vector<vec>& v, std::vector<double> w) {
  const double ws = std::accumulate(w.begin(), w.end(), 0.0);
  for (auto& x : w)
    x /= ws;
  const std::size_t n = v[0].size(), N = v.size();
  std::vector<double> nrm(N);
  std::vector<vec> u(N, vec(n));
  vec mean(n, 0.0);
  for (std::size_t i = 0; i < N; ++i) {
    nrm[i] = norm(v[i]);
    for (std::size_t e = 0; e < n; ++e) {
      u[i][e] = v[i][e] / (nrm[i] + 1e-8);
      mean[e] += w[i] * u[i][e];
    }
  }
  const double mn = norm(mean);
  for (auto& x : mean)
    x /= mn;
  vec tg(n, 0.0);
  for (std::size_t i = 0; i < N; ++i) {
    const double d = ref::dot(u[i], mean);
    for (std::size_t e = 0; e < n; ++e)
      tg[e] += w[i] * (u[i][e] - d * mean[e]);
  }
  const double tn = norm(tg) + 1e-8;
  double avg = 0;
  for (std::size_t i = 0; i < N; ++i)
    avg += w[i] * nrm[i];
  vec r(n);
  for (std::size_t e = 0; e < n; ++e)
    r[e] = avg * (mean[e] * std::cos(tn) + tg[e] * std::sin(tn) / tn);
  return r;
}

vec karcher_ref(const std::vector<vec>& x, std::vector<double> a, int max_iter = 10, double tol = 1e-5) {
  const double as = std::accumulate(a.begin(), a.end(), 0.0);
  for (auto& v : a)
    v /= as;
  const std::size_t N = x.size(), n = x[0].size();
  std::vector<double> nr(N);
  std::vector<vec> u(N, vec(n, 0.0));
  std::vector<std::size_t> valid;
  for (std::size_t i = 0; i < N; ++i) {
    nr[i] = norm(x[i]);
    if (nr[i] > 0)
      for (std::size_t e = 0; e < n; ++e)
        u[i][e] = x[i][e] / nr[i];
    if (nr[i] > tol)
      valid.push_back(i);
  }
  double vs = 0;
  for (auto i : valid)
    vs += a[i];
  vec m(n, 0.0);
  for (auto i : valid)
    for (std::size_t e = 0; e < n; ++e)
      m[e] += a[i] / vs * u[i][e];
  const double mn = norm(m);
  if (mn < tol)
    m = u[valid[0]];
  else
    for (auto& v : m)
      v /= mn;
  for (int it = 0; it < max_iter; ++it) {
    vec T(n, 0.0);
    for (auto i : valid) {
      const double d = std::clamp(ref::dot(m, u[i]), -1.0, 1.0), th = std::acos(d);
      if (th < tol)
        continue;
      for (std::size_t e = 0; e < n; ++e)
        T[e] += a[i] / vs * th / std::sin(th) * (u[i][e] - d * m[e]);
    }
    const double tn = norm(T);
    if (tn < tol)
      break;
    for (std::size_t e = 0; e < n; ++e)
      m[e] = std::cos(tn) * m[e] + std::sin(tn) * T[e] / tn;
    const double un = norm(m);
    if (un > tol)
      for (auto& v : m)
        v /= un;
  }
  double scale = 0;
  for (std::size_t i = 0; i < N; ++i)
    scale += a[i] * nr[i];
  for (auto& v : m)
    v *= scale;
  return m;
}

// model stock on one vector group (offsets from b)
vec model_stock_ref(const vec& b, const std::vector<vec>& x) {
  const std::size_t N = x.size();
  std::vector<vec> d(N, vec(b.size()));
  for (std::size_t i = 0; i < N; ++i)
    for (std::size_t e = 0; e < b.size(); ++e)
      d[i][e] = x[i][e] - b[e];
  double cs = 0;
  int pairs = 0;
  for (std::size_t i = 0; i < N; ++i)
    for (std::size_t j = i + 1; j < N; ++j) {
      cs += std::clamp(ref::dot(d[i], d[j]) / std::max(norm(d[i]) * norm(d[j]), 1e-6), -1.0, 1.0);
      ++pairs;
    }
  const double c = cs / pairs, den = 1 + (static_cast<double>(N) - 1) * c;
  const double t = std::abs(den) < 1e-6 ? 0 : static_cast<double>(N) * c / den;
  vec r(b.size());
  for (std::size_t e = 0; e < b.size(); ++e) {
    double avg = 0;
    for (std::size_t i = 0; i < N; ++i)
      avg += x[i][e];
    r[e] = t * avg / static_cast<double>(N) + (1 - t) * b[e];
  }
  return r;
}

template <class T, std::size_t R> struct data {
  tensor<T, R> base, out;
  std::vector<tensor<T, R>> xs;
  std::vector<float> weights;
  data(std::array<std::int64_t, R> ext, std::size_t N, bool strided, std::uint32_t seed, float spread = 0.3f)
      : base(ext, strided), out(ext, strided) {
    std::int64_t n = 1;
    for (auto e : ext)
      n *= e;
    const auto bv = ref::random_values<T>(static_cast<std::size_t>(n), seed);
    base.set(bv);
    for (std::size_t i = 0; i < N; ++i) {
      xs.emplace_back(ext, strided);
      auto v = ref::random_values<T>(static_cast<std::size_t>(n), seed + 17 * static_cast<std::uint32_t>(i + 1), spread);
      for (std::size_t e = 0; e < v.size(); ++e)
        v[e] = static_cast<float>(T(bv[e] + v[e]));
      xs.back().set(v);
      weights.push_back(0.2f + 0.3f * static_cast<float>(i % 3));
    }
  }
  [[nodiscard]] auto inputs() const {
    std::vector<merge_input<strided_view<const T, R>>> in;
    for (std::size_t i = 0; i < xs.size(); ++i)
      in.push_back({xs[i].cview(), weights[i]});
    return in;
  }
  [[nodiscard]] vec x(std::size_t i) const { return ref::to_vec(xs[i].get()); }
  [[nodiscard]] vec b() const { return ref::to_vec(base.get()); }
  [[nodiscard]] std::vector<vec> deltas() const {
    std::vector<vec> d;
    const vec bb = b();
    for (std::size_t i = 0; i < xs.size(); ++i) {
      vec v = x(i);
      for (std::size_t e = 0; e < v.size(); ++e)
        v[e] -= bb[e];
      d.push_back(v);
    }
    return d;
  }
};

template <class T> double tol() { return harness::storage_eps<T>(); }
std::string tag(const char* m, std::size_t N, std::string_view t) {
  return std::string(m) + " N=" + std::to_string(N) + " " + std::string(t);
}

} // namespace

BOOST_AUTO_TEST_SUITE(merge_geometric)

BOOST_AUTO_TEST_CASE(slerp_vs_reference) {
  for (double t : {0.0, 0.3, 0.5, 1.0}) {
    data<float, 2> d({33, 21}, 1, true, 11);
    merge(exec::par, slerp{.t = t}, d.out.view, d.base.cview(), d.inputs(), {"s"});
    harness::check_close(d.out.get(), slerp_ref(t, d.b(), d.x(0)), 1e-5, 1e-6, "slerp f32");
    data<bf16, 1> e({1001}, 1, false, 12);
    merge(exec::seq, slerp{.t = t}, e.out.view, e.base.cview(), e.inputs(), {"s"});
    harness::check_close(e.out.get(), slerp_ref(t, e.b(), e.x(0)), tol<bf16>(), 1e-6, "slerp bf16");
  }
  // near-parallel inputs take the linear branch
  data<float, 1> p({257}, 1, false, 13, 1e-4f);
  merge(exec::seq, slerp{.t = 0.25}, p.out.view, p.base.cview(), p.inputs(), {"s"});
  harness::check_close(p.out.get(), slerp_ref(0.25, p.b(), p.x(0)), 1e-6, 1e-7, "slerp linear branch");
  // t = 0 returns the base exactly
  merge(exec::seq, slerp{.t = 0.0}, p.out.view, p.base.cview(), p.inputs(), {"s"});
  BOOST_CHECK(p.out.get() == p.base.get());
}

BOOST_AUTO_TEST_CASE(nuslerp_vs_reference) {
  for (bool with_base : {false, true})
    for (int mode = 0; mode < 3; ++mode) { // flatten, rows, columns
      data<float, 2> d({9, 14}, 2, mode == 1, 20 + static_cast<std::uint32_t>(mode));
      const nuslerp m{.flatten = mode == 0, .row_wise = mode == 2};
      if (with_base)
        merge(exec::par, m, d.out.view, d.base.cview(), d.inputs(), {"n"});
      else
        merge(exec::par, m, d.out.view, no_base, d.inputs(), {"n"});
      const double t = d.weights[1] / (static_cast<double>(d.weights[0]) + d.weights[1]);
      const vec b = d.b();
      std::vector<vec> v = with_base ? d.deltas() : std::vector<vec>{d.x(0), d.x(1)};
      vec want(b.size());
      auto put = [&](const std::vector<std::size_t>& idx) {
        vec a(idx.size()), c(idx.size());
        for (std::size_t k = 0; k < idx.size(); ++k) {
          a[k] = v[0][idx[k]];
          c[k] = v[1][idx[k]];
        }
        const vec r = nuslerp_vec(t, a, c);
        for (std::size_t k = 0; k < idx.size(); ++k)
          want[idx[k]] = r[k] + (with_base ? b[idx[k]] : 0.0);
      };
      if (mode == 0) {
        std::vector<std::size_t> all(b.size());
        std::iota(all.begin(), all.end(), 0);
        put(all);
      } else {
        for (std::size_t g = 0; g < (mode == 1 ? 9u : 14u); ++g) {
          std::vector<std::size_t> idx;
          for (std::size_t k = 0; k < (mode == 1 ? 14u : 9u); ++k)
            idx.push_back(mode == 1 ? g * 14 + k : k * 14 + g);
          put(idx);
        }
      }
      harness::check_close(d.out.get(), want, 1e-5, 1e-6, "nuslerp mode " + std::to_string(mode));
    }
}

BOOST_AUTO_TEST_CASE(multislerp_vs_reference) {
  for (std::size_t N : {2u, 3u, 5u, 8u}) {
    data<float, 1> d({999}, N, N % 2 == 0, 40 + static_cast<std::uint32_t>(N));
    merge(exec::par, multislerp{}, d.out.view, d.base.cview(), d.inputs(), {"m"});
    const auto dv = d.deltas();
    vec want = multislerp_ref(dv, {d.weights.begin(), d.weights.end()});
    const vec b = d.b();
    for (std::size_t e = 0; e < want.size(); ++e)
      want[e] += b[e];
    harness::check_close(d.out.get(), want, 1e-5, 1e-6, tag("multislerp", N, "f32"));
    data<bf16, 2> q({17, 19}, N, true, 60 + static_cast<std::uint32_t>(N));
    merge(exec::par, multislerp{}, q.out.view, no_base, q.inputs(), {"m"});
    std::vector<vec> xs;
    for (std::size_t i = 0; i < N; ++i)
      xs.push_back(q.x(i));
    harness::check_close(q.out.get(), multislerp_ref(xs, {q.weights.begin(), q.weights.end()}), tol<bf16>(), 1e-6,
                         tag("multislerp", N, "bf16 no base"));
  }
  // single input: returned unchanged
  data<float, 1> one({5}, 1, false, 3);
  merge(exec::seq, multislerp{}, one.out.view, one.base.cview(), one.inputs());
  BOOST_CHECK(one.out.get() == one.xs[0].get());
  // antipodal with balancing weights: linear for two, error for three
  std::vector<float> a{1, 0}, na{-1, 0}, c{0, 1}, out(2);
  using V = vector_view<const float>;
  std::vector<merge_input<V>> two{{host_view(a.data(), 2), 1.0f}, {host_view(na.data(), 2), 1.0f}};
  merge(exec::seq, multislerp{}, host_view(out.data(), 2), no_base, two);
  BOOST_CHECK_SMALL(out[0], 1e-7f);
  std::vector<merge_input<V>> three{{host_view(a.data(), 2), 1.0f}, {host_view(na.data(), 2), 1.0f}, {host_view(c.data(), 2), 0.0f}};
  BOOST_CHECK_THROW(merge(exec::seq, multislerp{}, host_view(out.data(), 2), no_base, three), fusekit::error);
}

BOOST_AUTO_TEST_CASE(karcher_vs_reference_and_honours_weights) {
  for (std::size_t N : {2u, 3u, 5u, 8u}) {
    data<float, 2> d({15, 11}, N, N == 3, 70 + static_cast<std::uint32_t>(N), 0.8f);
    std::vector<vec> xs;
    for (std::size_t i = 0; i < N; ++i)
      xs.push_back(d.x(i));
    // weights honoured
    merge(exec::par, karcher{}, d.out.view, no_base, d.inputs(), {"k"});
    harness::check_close(d.out.get(), karcher_ref(xs, {d.weights.begin(), d.weights.end()}), 1e-5, 1e-6, tag("karcher", N, "f32"));
    // all weights equal: mergekit's uniform 1/N
    auto in = d.inputs();
    for (auto& x : in)
      x.weight = 1.0f;
    merge(exec::par, karcher{}, d.out.view, no_base, in, {"k"});
    harness::check_close(d.out.get(), karcher_ref(xs, std::vector<double>(N, 1.0)), 1e-5, 1e-6, tag("karcher uniform", N, "f32"));
    data<fp16, 1> h({301}, N, false, 80 + static_cast<std::uint32_t>(N), 0.8f);
    merge(exec::seq, karcher{.max_iter = 3}, h.out.view, no_base, h.inputs());
    std::vector<vec> hs;
    for (std::size_t i = 0; i < N; ++i)
      hs.push_back(h.x(i));
    harness::check_close(h.out.get(), karcher_ref(hs, {h.weights.begin(), h.weights.end()}, 3), tol<fp16>(), 1e-5,
                         tag("karcher", N, "f16"));
  }
  // a weight of zero removes the model's direction
  std::vector<float> a{1, 0}, c{0, 2}, out(2);
  using V = vector_view<const float>;
  std::vector<merge_input<V>> in{{host_view(a.data(), 2), 1.0f}, {host_view(c.data(), 2), 0.0f}};
  merge(exec::seq, karcher{}, host_view(out.data(), 2), no_base, in);
  BOOST_CHECK_CLOSE(out[0], 1.0f, 1e-3);
  BOOST_CHECK_SMALL(out[1], 1e-5f);
}

BOOST_AUTO_TEST_CASE(model_stock_vs_reference) {
  for (std::size_t N : {2u, 3u, 5u, 8u}) {
    data<float, 2> d({12, 10}, N, N % 2 == 1, 90 + static_cast<std::uint32_t>(N));
    merge(exec::par, model_stock{}, d.out.view, d.base.cview(), d.inputs(), {"ms"});
    std::vector<vec> xs;
    for (std::size_t i = 0; i < N; ++i)
      xs.push_back(d.x(i));
    harness::check_close(d.out.get(), model_stock_ref(d.b(), xs), 1e-5, 1e-6, tag("model_stock", N, "f32"));
    // filter-wise: one ratio per row
    merge(exec::par, model_stock{.filter_wise = true}, d.out.view, d.base.cview(), d.inputs(), {"ms"});
    const vec b = d.b();
    vec want(b.size());
    for (std::size_t r = 0; r < 12; ++r) {
      vec br(b.begin() + static_cast<std::ptrdiff_t>(r * 10), b.begin() + static_cast<std::ptrdiff_t>(r * 10 + 10));
      std::vector<vec> xr;
      for (auto& x : xs)
        xr.emplace_back(x.begin() + static_cast<std::ptrdiff_t>(r * 10), x.begin() + static_cast<std::ptrdiff_t>(r * 10 + 10));
      const vec rr = model_stock_ref(br, xr);
      std::copy(rr.begin(), rr.end(), want.begin() + static_cast<std::ptrdiff_t>(r * 10));
    }
    harness::check_close(d.out.get(), want, 1e-5, 1e-6, tag("model_stock filter_wise", N, "f32"));
  }
  data<float, 1> one({10}, 1, false, 1);
  BOOST_CHECK_THROW(merge(exec::seq, model_stock{}, one.out.view, one.base.cview(), one.inputs()), fusekit::error);
}

BOOST_AUTO_TEST_SUITE_END()
