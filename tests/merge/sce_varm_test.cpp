// SCE (both variants) and VaRM: spec test vectors T4.1-T4.4, float64 brute-force references on odd shapes,
// strided views, 2-8 inputs and all storage types, the sampled top-k path, groups for VaRM granularities.
#include <boost/test/unit_test.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <fusekit/merge/sce.hpp>
#include <fusekit/merge/varm.hpp>

#include "harness.hpp"
#include "reference.hpp"

using namespace fusekit;
using harness::tensor;

namespace {

const std::vector<float> d1{0.5f, -0.2f, 0.1f, 0.0f}, d2{0.3f, 0.4f, -0.1f, 0.2f}, d3{-0.4f, 0.1f, 0.2f, 0.0f};

template <class M> std::vector<float> run_spec(const M& m, const std::vector<std::vector<float>>& xs, std::vector<float> base) {
  const auto n = static_cast<std::int64_t>(base.size());
  std::vector<float> out(base.size());
  using V = vector_view<const float>;
  std::vector<merge_input<V>> in;
  for (const auto& x : xs)
    in.push_back({host_view(x.data(), n)});
  merge(exec::par, m, host_view(out.data(), n), host_view(base.data(), n), in, {"spec"});
  return out;
}

void check_vec(const std::vector<float>& got, const std::vector<double>& want, double tol = 2e-6) {
  BOOST_REQUIRE_EQUAL(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    BOOST_CHECK_SMALL(static_cast<double>(got[i]) - want[i], tol);
}

// Random data: base ~ N(0,1), models = base + N(0, 0.05) (in storage type T).
template <class T, std::size_t R> struct dataset {
  tensor<T, R> base;
  std::vector<tensor<T, R>> xs;
  std::vector<ref::model> ms;
  dataset(std::array<std::int64_t, R> ext, std::size_t N, bool strided, std::uint32_t seed) : base(ext, strided) {
    std::int64_t n = 1;
    for (auto e : ext)
      n *= e;
    const auto bv = ref::random_values<T>(static_cast<std::size_t>(n), seed);
    base.set(bv);
    for (std::size_t i = 0; i < N; ++i) {
      xs.emplace_back(ext, strided);
      auto v = ref::random_values<T>(static_cast<std::size_t>(n), seed * 7 + static_cast<std::uint32_t>(i) + 1,
                                     0.02f * static_cast<float>(i + 1));
      for (std::size_t e = 0; e < v.size(); ++e)
        v[e] = static_cast<float>(T(bv[e] + v[e]));
      xs.back().set(v);
      ref::model m;
      m.x = xs.back().get();
      ms.push_back(m);
    }
  }
  [[nodiscard]] std::vector<merge_input<strided_view<const T, R>>> inputs() const {
    std::vector<merge_input<strided_view<const T, R>>> in;
    for (const auto& x : xs)
      in.push_back({x.cview()});
    return in;
  }
};

template <class T, std::size_t R, class P>
void sce_case(const P& pol, std::array<std::int64_t, R> ext, std::size_t N, bool strided, double q, sce_variant v,
              std::uint32_t seed) {
  dataset<T, R> d(ext, N, strided, seed);
  tensor<T, R> out(ext, strided);
  merge(pol, sce{.select_topk = q, .variant = v}, out.view, d.base.cview(), d.inputs(), {"sce.t"});
  const auto want = ref::sce(d.base.get(), d.ms, q, v == sce_variant::mergekit);
  harness::check_close(out.get(), want, harness::storage_eps<T>(), 1e-5,
                       "sce q=" + std::to_string(q) + (v == sce_variant::mergekit ? " mergekit" : " fusechat") +
                           " N=" + std::to_string(N) + " " + std::string(element_traits<T>::name));
}

// VaRM reference (per matrix or per element), float64.
std::vector<double> varm_ref(const std::vector<float>& b, const std::vector<ref::model>& ms, varm_statistic st,
                             bool per_element) {
  const std::size_t n = b.size(), J = ms.size();
  auto f = [&](double d) { return st == varm_statistic::square ? d * d : st == varm_statistic::abs ? std::abs(d) : d; };
  std::vector<double> out(n);
  if (per_element) {
    for (std::size_t e = 0; e < n; ++e) {
      double g = 0, acc = 0;
      for (std::size_t j = 0; j < J; ++j) {
        const double d = ms[j].x[e] - b[e];
        g += f(d);
        acc += f(d) * d;
      }
      out[e] = b[e] + acc / std::max(g, 1e-13);
    }
    return out;
  }
  std::vector<double> s(J, 0.0);
  bool zero = false;
  double tot = 0;
  for (std::size_t j = 0; j < J; ++j) {
    for (std::size_t e = 0; e < n; ++e)
      s[j] += f(static_cast<double>(ms[j].x[e] - b[e]));
    s[j] /= static_cast<double>(n);
    if (st == varm_statistic::mean)
      s[j] = std::abs(s[j]);
    zero = zero || s[j] == 0;
    tot += s[j];
  }
  for (std::size_t e = 0; e < n; ++e) {
    double acc = 0;
    for (std::size_t j = 0; j < J; ++j)
      acc += (zero ? 1.0 / static_cast<double>(J) : s[j] / tot) * (ms[j].x[e] - b[e]);
    out[e] = b[e] + acc;
  }
  return out;
}

template <class T, std::size_t R>
void varm_case(std::array<std::int64_t, R> ext, std::size_t N, bool strided, varm_statistic st, bool per_element,
               std::uint32_t seed) {
  dataset<T, R> d(ext, N, strided, seed);
  tensor<T, R> out(ext, strided);
  merge(exec::par, varm{.statistic = st, .granularity = per_element ? varm_granularity::per_element : varm_granularity::per_matrix},
        out.view, d.base.cview(), d.inputs(), {"varm.t"});
  harness::check_close(out.get(), varm_ref(d.base.get(), d.ms, st, per_element), harness::storage_eps<T>(), 1e-5,
                       "varm N=" + std::to_string(N) + " " + std::string(element_traits<T>::name));
}

} // namespace

BOOST_AUTO_TEST_SUITE(merge_sce_varm)

BOOST_AUTO_TEST_CASE(spec_vectors_t41_varm) {
  check_vec(run_spec(varm{}, {{0.1f, -0.1f, 0.0f, 0.2f}, {0.3f, 0.0f, 0.0f, 0.0f}}, {0, 0, 0, 0}), {0.22, -0.04, 0, 0.08});
  check_vec(run_spec(varm{}, {{1.2f, 2.0f}, {0.9f, 2.3f}}, {1, 2}), {0.985714, 2.214286});
  // zero guard: θ_1 == θ_0 -> equal weights
  check_vec(run_spec(varm{}, {{1.0f, 2.0f}, {0.9f, 2.3f}}, {1, 2}), {0.95, 2.15});
}

BOOST_AUTO_TEST_CASE(spec_vectors_t42_t44_sce) {
  const std::vector<float> zero(4, 0.0f);
  for (auto v : {sce_variant::mergekit, sce_variant::fusechat})
    check_vec(run_spec(sce{.variant = v}, {d1, d2, d3}, zero), {0.4, 0.276471, 0.141176, 0.2});
  check_vec(run_spec(sce{.select_topk = 0.5, .variant = sce_variant::fusechat}, {d1, d2, d3}, zero),
            {0.407407, 0.278571, 0.136957, 0.2});
  check_vec(run_spec(sce{.select_topk = 0.5}, {d1, d2, d3}, zero), {0.407407, 0.278571, 0, 0});
  check_vec(run_spec(sce{.select_topk = 0.1, .variant = sce_variant::fusechat}, {d1, d2, d3}, zero), {0.4, 0.25, 0.15, 0.2});
  check_vec(run_spec(sce{.select_topk = 0.1}, {d1, d2, d3}, zero), {0, 0, 0, 0});
}

BOOST_AUTO_TEST_CASE(sce_vs_reference) {
  std::uint32_t seed = 500;
  for (std::size_t N : {2u, 3u, 5u, 8u})
    for (double q : {1.0, 0.3, 0.1})
      for (auto v : {sce_variant::mergekit, sce_variant::fusechat}) {
        sce_case<float, 1>(exec::seq, {1001}, N, false, q, v, ++seed);
        sce_case<float, 2>(exec::par, {23, 47}, N, true, q, v, ++seed);
        sce_case<bf16, 2>(exec::par, {31, 17}, N, false, q, v, ++seed);
        sce_case<fp16, 1>(exec::par, {333}, N, true, q, v, ++seed);
      }
  // sampled top-k path (n >= 65536), with threads
  sce_case<float, 2>(exec::parallel_policy{.threads = 3}, {257, 301}, 4, false, 0.1, sce_variant::mergekit, ++seed);
  sce_case<bf16, 1>(exec::par, {100003}, 3, false, 0.25, sce_variant::fusechat, ++seed);
}

BOOST_AUTO_TEST_CASE(sce_thread_count_independent_and_edge_cases) {
  dataset<float, 1> d({150001}, 3, false, 9);
  auto run = [&](const auto& pol) {
    tensor<float, 1> out({150001}, false);
    merge(pol, sce{.select_topk = 0.2}, out.view, d.base.cview(), d.inputs(), {"x"});
    return out.get();
  };
  const auto r = run(exec::seq);
  for (int t : {2, 3, 5})
    BOOST_CHECK(run(exec::parallel_policy{.threads = t}) == r);
  // no targets: the base; select_topk outside [0, 1]: an error naming the tensor
  std::vector<merge_input<vector_view<const float>>> none;
  tensor<float, 1> out({150001}, false);
  merge(exec::seq, sce{}, out.view, d.base.cview(), none, {"x"});
  BOOST_CHECK(out.get() == d.base.get());
  try {
    merge(exec::seq, sce{.select_topk = 1.5}, out.view, d.base.cview(), d.inputs(), {"lm_head.weight"});
    BOOST_ERROR("expected an error");
  } catch (const fusekit::error& e) {
    BOOST_CHECK(std::string(e.what()).find("lm_head.weight") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(varm_vs_reference) {
  std::uint32_t seed = 900;
  for (std::size_t N : {2u, 3u, 5u, 8u})
    for (auto st : {varm_statistic::square, varm_statistic::abs, varm_statistic::mean})
      for (bool pe : {false, true}) {
        if (pe && st == varm_statistic::mean)
          continue; // signed per-element weights are ill-conditioned (denominator may vanish)
        varm_case<float, 1>({1001}, N, false, st, pe, ++seed);
        varm_case<bf16, 2>({13, 29}, N, true, st, pe, ++seed);
        varm_case<fp16, 2>({7, 5}, N, false, st, pe, ++seed);
      }
}

BOOST_AUTO_TEST_CASE(varm_groups) {
  BOOST_CHECK_EQUAL(*varm_group_key("model.layers.7.mlp.up_proj.weight", varm_group::layer), "model.layers.7");
  BOOST_CHECK_EQUAL(*varm_group_key("model.layers.7.mlp.up_proj.weight", varm_group::module), "model.layers.7.mlp");
  BOOST_CHECK_EQUAL(*varm_group_key("model.layers.12.input_layernorm.weight", varm_group::module),
                    "model.layers.12.input_layernorm");
  BOOST_CHECK(!varm_group_key("model.embed_tokens.weight", varm_group::layer));
  BOOST_CHECK_EQUAL(*varm_group_key("lm_head.weight", varm_group::module), "lm_head.weight");
  BOOST_CHECK_EQUAL(*varm_group_key("lm_head.weight", varm_group::model), "");
  BOOST_CHECK(!varm_group_key("model.sublayers.3.x", varm_group::layer));

  // Two tensors of one layer: the layer's scores pool their statistics.
  std::vector<float> b1{0, 0}, b2{0, 0, 0, 0};
  std::vector<float> x11{1, 1}, x12{0, 0}, x21{0, 0, 0, 0}, x22{2, 2, 2, 2};
  using V = vector_view<const float>;
  std::vector<merge_input<V>> in1{{host_view(x11.data(), 2)}, {host_view(x12.data(), 2)}};
  std::vector<merge_input<V>> in2{{host_view(x21.data(), 4)}, {host_view(x22.data(), 4)}};
  varm_accumulator acc(varm_group::layer);
  acc.add("model.layers.0.a", varm_statistics(exec::seq, host_view(b1.data(), 2), in1));
  acc.add("model.layers.0.b", varm_statistics(exec::seq, host_view(b2.data(), 4), in2));
  const auto s = acc.scores("model.layers.0.a");
  BOOST_REQUIRE_EQUAL(s.size(), 2u);
  BOOST_CHECK_CLOSE(s[0], 2.0 / 6.0, 1e-9);  // Σ Δ² = 2 over 6 elements
  BOOST_CHECK_CLOSE(s[1], 16.0 / 6.0, 1e-9); // Σ Δ² = 16 over 6 elements
  std::vector<float> out(2);
  merge(exec::seq, varm{.group_scores = s}, host_view(out.data(), 2), host_view(b1.data(), 2), in1);
  BOOST_CHECK_CLOSE(out[0], 1.0f / 9.0f, 1e-4); // W = [1/9, 8/9]
  BOOST_CHECK(acc.scores("model.norm.weight").empty()); // outside the layers: equal weights
}

// Contiguous bf16 base, inputs and output take the register kernels (AVX2 builds: SCE's statistics and
// erase + merge with select_topk = 1, VaRM's statistics, the weighted sum); the same values in padded
// (non-contiguous) rows take the blocked loops. Same bits required, NaN / inf inputs, ties (Δ = 0 and
// equal deltas), 1-5 models, an output off the 32-byte grid and outputs large enough for streaming stores.
BOOST_AUTO_TEST_CASE(bf16_register_kernels_equal_blocked_loops) {
  for (const auto [rows, cols] : {std::array<std::int64_t, 2>{5, 37}, {3, 4099}, {1100, 4099}})
    for (int k : {1, 2, 5}) {
      harness::lcg rnd{static_cast<std::uint32_t>(rows * 131 + k)};
      const harness::bf16_twin_set set(
          rows, cols, k, [&](std::size_t) { return 0.02f * rnd(); },
          [&](std::size_t id, int j, float b) {
            const auto jj = static_cast<std::size_t>(j);
            float v = b + 0.004f * rnd();
            if ((id + jj) % 7 == 0)
              v = b; // Δ = 0: never agrees
            if ((id * 3 + jj) % 11 == 0)
              v = b - 0.002f; // equal deltas across models
            if (rows == 3 && (id + jj) % 997 == 5)
              v = (id % 2 == 0) ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
            return v;
          });
      auto input_of = [](int, harness::bf16_twin_set::V2 v) {
        return merge_input<harness::bf16_twin_set::V2>{.tensor = v, .weight = 1.0f};
      };
      auto check = [&](auto method, const char* what) {
        const std::int64_t diff = set.diff(method, input_of);
        BOOST_TEST(diff == 0, what << " " << rows << "x" << cols << ", " << k << " models: " << diff << " differ");
      };
      check(sce{}, "sce");
      check(sce{.variant = sce_variant::fusechat}, "sce fusechat");
      for (auto s : {varm_statistic::square, varm_statistic::abs, varm_statistic::mean}) {
        if (rows == 3)
          break; // NaN / inf inputs: VaRM rejects their scores (tested elsewhere)
        varm m;
        m.statistic = s;
        check(m, "varm");
      }
    }
}

BOOST_AUTO_TEST_SUITE_END()
