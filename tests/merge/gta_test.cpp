// The task-vector family (ties, dare_ties, dare_linear, breadcrumbs, breadcrumbs_ties, della, della_linear):
// spec test vectors (fusechat-algorithms.md T4.5), float64 brute-force references over odd shapes, strided
// views, 2-8 inputs and bf16/fp16/fp32 storage, the disagreement options, thread-count independence of the
// random masks, and the defined edge cases / errors.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <array>
#include <limits>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <fusekit/merge.hpp>

#include "harness.hpp"
#include "reference.hpp"

using namespace fusekit;
using harness::tensor;

namespace {

// T4.5 shared task vectors (θ_0 = 0).
const std::vector<float> d1{0.5f, -0.2f, 0.1f, 0.0f}, d2{0.3f, 0.4f, -0.1f, 0.2f}, d3{-0.4f, 0.1f, 0.2f, 0.0f};

template <class M>
std::vector<float> run4(const M& m, float w, double density, std::uint64_t seed = 0, std::string_view name = "t") {
  std::vector<float> base(4, 0.0f), out(4);
  using V = vector_view<const float>;
  std::vector<merge_input<V>> in{{host_view(d1.data(), 4), w, density},
                                 {host_view(d2.data(), 4), w, density},
                                 {host_view(d3.data(), 4), w, density}};
  merge(exec::seq, m, host_view(out.data(), 4), host_view(base.data(), 4), in, {name, seed});
  return out;
}

void check_vec(const std::vector<float>& got, const std::vector<double>& want, double tol = 1e-6) {
  BOOST_REQUIRE_EQUAL(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    BOOST_CHECK_SMALL(static_cast<double>(got[i]) - want[i], tol);
}

// Which reference configuration a fusekit method corresponds to.
template <class M> ref::gta_cfg cfg_of(const M& m) {
  ref::gta_cfg c;
  if constexpr (std::is_same_v<M, ties>) {
    c.sp = ref::sparsify::magnitude;
    c.cons = ref::consensus::sum;
  } else if constexpr (std::is_same_v<M, dare_ties>) {
    c.sp = ref::sparsify::random;
    c.cons = ref::consensus::sum;
  } else if constexpr (std::is_same_v<M, dare_linear>) {
    c.sp = ref::sparsify::random;
  } else if constexpr (std::is_same_v<M, breadcrumbs>) {
    c.sp = ref::sparsify::outliers;
  } else if constexpr (std::is_same_v<M, breadcrumbs_ties>) {
    c.sp = ref::sparsify::outliers;
    c.cons = ref::consensus::sum;
  } else if constexpr (std::is_same_v<M, della>) {
    c.sp = ref::sparsify::della;
    c.cons = ref::consensus::sum;
  } else if constexpr (std::is_same_v<M, della_linear>) {
    c.sp = ref::sparsify::della;
  }
  c.lambda = m.lambda;
  c.normalize = m.normalize;
  c.rescale = m.rescale;
  c.weighted_election = m.election == sign_election::weighted;
  c.weight_divisor = m.divisor == consensus_divisor::weight_sum;
  c.l1 = m.rescale_by == rescale_mode::l1_norm;
  return c;
}

// Runs method m on random data of storage T and shape ext with N models and compares with the reference.
template <class T, std::size_t R, class M, class P>
void compare_with_reference(const P& policy, const M& m, std::array<std::int64_t, R> ext, std::size_t N, bool strided,
                            std::uint32_t seed, bool negative_weights = false) {
  std::int64_t n = 1;
  for (auto e : ext)
    n *= e;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> wd(0.1, 1.0), dd(0.25, 0.8);
  tensor<T, R> base(ext, strided), out(ext, strided);
  const auto bvals = ref::random_values<T>(static_cast<std::size_t>(n), seed, 1.0f);
  base.set(bvals);
  std::vector<tensor<T, R>> xs;
  std::vector<ref::model> ms(N);
  for (std::size_t i = 0; i < N; ++i) {
    xs.emplace_back(ext, strided);
    auto v = ref::random_values<T>(static_cast<std::size_t>(n), seed * 31 + static_cast<std::uint32_t>(i) + 1, 0.05f);
    for (std::size_t e = 0; e < v.size(); ++e)
      v[e] = static_cast<float>(T(bvals[e] + v[e]));
    xs.back().set(v);
    ms[i].x = xs.back().get();
    ms[i].weight = wd(rng) * (negative_weights && i == 1 ? -1.0 : 1.0);
    ms[i].density = dd(rng);
    ms[i].gamma = 0.05;
    ms[i].epsilon = 0.1;
  }
  std::vector<merge_input<strided_view<const T, R>>> in;
  for (std::size_t i = 0; i < N; ++i)
    in.push_back({xs[i].cview(), static_cast<float>(ms[i].weight), ms[i].density, ms[i].gamma, ms[i].epsilon});
  ref::gta_cfg c = cfg_of(m);
  c.tensor = "model.layers.3.mlp.up_proj.weight";
  c.seed = seed;
  c.cols = R == 2 ? ext[R - 1] : 0;
  merge(policy, m, out.view, base.cview(), in, {c.tensor, c.seed});
  const auto want = ref::gta(base.get(), ms, c);
  double scale = harness::max_abs(bvals);
  for (const auto& mm : ms)
    scale += std::abs(mm.weight) * 0.5 / std::min(mm.density, 1.0);
  const std::string what = std::string(M::name) + " n=" + std::to_string(n) + " N=" + std::to_string(N) +
                           (strided ? " strided" : "") + " " + std::string(element_traits<T>::name);
  harness::check_close(out.get(), want, harness::storage_eps<T>(), 2e-6 * scale, what);
}

template <class M> void sweep(const M& m) {
  std::uint32_t seed = 100;
  for (std::size_t N : {2u, 3u, 5u, 8u}) {
    compare_with_reference<float, 1>(exec::seq, m, {1001}, N, false, ++seed);
    compare_with_reference<float, 1>(exec::par, m, {7}, N, true, ++seed);
    compare_with_reference<float, 2>(exec::par, m, {37, 53}, N, N % 2 == 1, ++seed);
    compare_with_reference<bf16, 2>(exec::par, m, {19, 41}, N, true, ++seed);
    compare_with_reference<fp16, 1>(exec::seq, m, {517}, N, false, ++seed);
  }
  // large enough for the sampled top-k path, bf16 (many exactly equal magnitudes: exercises the tie order)
  compare_with_reference<bf16, 2>(exec::par, m, {301, 257}, 3, false, ++seed);
  compare_with_reference<float, 1>(exec::parallel_policy{.threads = 3}, m, {70001}, 4, false, ++seed);
}

} // namespace

BOOST_AUTO_TEST_SUITE(merge_gta)

BOOST_AUTO_TEST_CASE(spec_vector_t45_ties) {
  // fusechat-algorithms.md T4.5: density 0.5 (k = 2), weights 0.2, normalize -> [0.4, 0.4, 0.2, 0]
  check_vec(run4(ties{}, 0.2f, 0.5), {0.4, 0.4, 0.2, 0.0});
  // task arithmetic, weight 0.3 -> [0.12, 0.09, 0.06, 0.06]
  check_vec(run4(task_arithmetic{}, 0.3f, 1.0), {0.12, 0.09, 0.06, 0.06});
}

BOOST_AUTO_TEST_CASE(spec_vector_t45_dare_linear_with_the_spec_masks) {
  // T4.5 fixes the keep-masks [1,0,1,1], [0,1,1,0], [1,1,0,1] at p = 0.6 with 1/p rescale. Our masks are
  // counter-based: search the seed whose masks are exactly those, then check the spec's values.
  const std::vector<std::vector<int>> want = {{1, 0, 1, 1}, {0, 1, 1, 0}, {1, 1, 0, 1}};
  std::uint64_t found = 0;
  bool ok = false;
  for (std::uint64_t s = 0; s < 200000 && !ok; ++s) {
    ok = true;
    for (std::size_t i = 0; i < 3 && ok; ++i)
      for (std::uint64_t e = 0; e < 4 && ok; ++e)
        ok = rng::bernoulli(s, detail::model_stream("t45", i), e, 0.6f) == (want[i][e] == 1);
    found = s;
  }
  BOOST_REQUIRE(ok);
  const dare_linear norm{.normalize = true, .rescale_by = rescale_mode::inverse_density};
  check_vec(run4(norm, 0.2f, 0.6, found, "t45"), {0.055556, 0.277778, 0.0, 0.0}, 2e-6);
  const dare_linear plain{.normalize = false, .rescale_by = rescale_mode::inverse_density};
  check_vec(run4(plain, 0.2f, 0.6, found, "t45"), {0.033333, 0.166667, 0.0, 0.0}, 2e-6);
}

BOOST_AUTO_TEST_CASE(ties_vs_reference) { sweep(ties{}); }
BOOST_AUTO_TEST_CASE(dare_ties_vs_reference) { sweep(dare_ties{}); }
BOOST_AUTO_TEST_CASE(dare_linear_vs_reference) { sweep(dare_linear{}); }
BOOST_AUTO_TEST_CASE(breadcrumbs_vs_reference) { sweep(breadcrumbs{}); }
BOOST_AUTO_TEST_CASE(breadcrumbs_ties_vs_reference) { sweep(breadcrumbs_ties{}); }
BOOST_AUTO_TEST_CASE(della_vs_reference) { sweep(della{}); }
BOOST_AUTO_TEST_CASE(della_linear_vs_reference) { sweep(della_linear{}); }

// Long rows: bf16 deltas of a few magnitudes (tie groups of hundreds per row) leave more than 64 draws per
// row undecided by the histogram (exact ranks via the elements grouped by bin); float rows leave a few
// (exact ranks counted over the list of the flagged bins). Both must rank exactly as a sort.
BOOST_AUTO_TEST_CASE(della_long_rows_vs_reference) {
  compare_with_reference<bf16, 2>(exec::par, della{}, {2, 20000}, 2, false, 901);
  compare_with_reference<bf16, 2>(exec::seq, della_linear{}, {2, 5003}, 3, true, 902);
  compare_with_reference<float, 2>(exec::par, della{}, {4, 4099}, 3, false, 903);
}

BOOST_AUTO_TEST_CASE(disagreement_options_vs_reference) {
  // PEFT-style TIES: unweighted election, count divisor
  sweep(ties{.election = sign_election::unweighted, .divisor = consensus_divisor::count});
  // DARE with the paper's 1/density rescale, normalized
  sweep(dare_ties{.normalize = true, .rescale_by = rescale_mode::inverse_density});
  // lambda after normalization, rescale on a deterministic sparsifier
  sweep(ties{.lambda = 0.7f, .rescale = true});
  // negative weights without normalization (task-vector negation)
  compare_with_reference<float, 1>(exec::par, dare_linear{}, {4099}, 3, false, 7, true);
  compare_with_reference<float, 1>(exec::par, breadcrumbs_ties{}, {4099}, 3, false, 8, true);
}

BOOST_AUTO_TEST_CASE(heavy_ties_select_exactly_k_lowest_index_first) {
  // Deltas drawn from a handful of values (as quantized bf16 task vectors are): the threshold falls on a value
  // shared by thousands of elements, at the bracket's ends or inside it; exactly k survive, lowest index first.
  const std::int64_t n = 300007;
  std::vector<float> base(static_cast<std::size_t>(n), 0.0f);
  std::mt19937 rng(77);
  for (int levels : {3, 7, 40}) {
    std::uniform_int_distribution<int> lv(-levels, levels);
    std::vector<ref::model> ms(3);
    std::vector<merge_input<vector_view<const float>>> in;
    for (std::size_t i = 0; i < 3; ++i) {
      ms[i].x.resize(static_cast<std::size_t>(n));
      for (auto& v : ms[i].x) // multiples of 1/64 with weights k/4: every sum is exact in fp32, so the sign
        v = static_cast<float>(lv(rng)) / 64.0f; // elections cannot differ from the float64 reference
      ms[i].weight = 0.25 * static_cast<double>(i + 1);
      ms[i].density = 0.1 + 0.35 * static_cast<double>(i);
      ms[i].gamma = 0.03;
    }
    for (std::size_t i = 0; i < 3; ++i)
      in.push_back({host_view(static_cast<const float*>(ms[i].x.data()), n), static_cast<float>(ms[i].weight), ms[i].density, 0.03});
    for (int which = 0; which < 2; ++which) {
      std::vector<float> out(static_cast<std::size_t>(n));
      ref::gta_cfg c;
      c.cons = ref::consensus::sum;
      if (which == 0) {
        merge(exec::parallel_policy{.threads = 3}, ties{}, host_view(out.data(), n), host_view(base.data(), n), in, {"t"});
        c.sp = ref::sparsify::magnitude;
        c.normalize = true;
      } else {
        merge(exec::par, breadcrumbs_ties{}, host_view(out.data(), n), host_view(base.data(), n), in, {"t"});
        c.sp = ref::sparsify::outliers;
      }
      harness::check_close(out, ref::gta(base, ms, c), 1e-6, 1e-7,
                           std::string(which == 0 ? "ties" : "breadcrumbs_ties") + " levels=" + std::to_string(levels));
    }
  }
}

BOOST_AUTO_TEST_CASE(sparse_keys_tied_at_the_threshold_are_resolved_by_count) {
  // A mostly-zero task vector (99.5% exact zeros, the rest on four levels): the k-th largest key is zero or a
  // level shared by thousands of elements. The selection counts the keys above the threshold and keeps the
  // first k − above ties in index order from per-block tie counts: no list of tied elements or of their
  // indices is ever built (this used to take seconds and gigabytes on 65M-element tensors), and exactly k
  // survive, lowest index first, for any policy.
  const std::int64_t n = (std::int64_t{1} << 22) + 13;
  std::vector<std::uint32_t> key(static_cast<std::size_t>(n), 0u);
  std::mt19937 rng(5);
  std::int64_t nnz = 0;
  for (auto& k : key)
    if (rng() % 200 == 0) {
      k = exec::magnitude_key(static_cast<float>(1 + rng() % 4) / 64.0f);
      ++nnz;
    }
  const std::int64_t blk = 2048;
  auto block_keys = [&](std::int64_t b, std::int64_t len, float*, std::uint32_t* keys, std::int64_t) {
    std::copy(key.begin() + b, key.begin() + b + len, keys);
  };
  auto key_at = [&](std::size_t, std::int64_t e) { return key[static_cast<std::size_t>(e)]; };
  // k inside the top level, between levels, just above nnz (ties at zero), far above nnz
  for (const std::int64_t k : {nnz / 9, nnz / 2, nnz + 1000, n - 12345}) {
    // expected: the k-th largest key, how many are greater, and the tie quota
    std::vector<std::uint32_t> sorted = key;
    std::nth_element(sorted.begin(), sorted.begin() + (k - 1), sorted.end(), std::greater<>());
    const std::uint32_t thr = sorted[static_cast<std::size_t>(k - 1)];
    const auto greater = std::count_if(key.begin(), key.end(), [&](std::uint32_t x) { return x > thr; });
    const std::vector<detail::topk_request> reqs{{0, k, -1.0}};
    auto check = [&](const auto& pol, const char* what) {
      const auto sel = detail::select_top_k(pol, n, 1, std::span<const detail::topk_request>(reqs), blk, 16,
                                            block_keys, key_at);
      BOOST_REQUIRE_EQUAL(sel.size(), 1u);
      BOOST_CHECK_EQUAL(sel[0].threshold, thr);
      std::vector<float> keep(static_cast<std::size_t>(blk));
      std::int64_t kept = 0, ties_seen = 0, wrong = 0;
      for (std::int64_t bi = 0; bi * blk < n; ++bi) {
        const std::int64_t b = bi * blk, len = std::min(blk, n - b);
        sel[0].mark(bi, key.data() + b, len, keep.data());
        for (std::int64_t j = 0; j < len; ++j) {
          const std::uint32_t x = key[static_cast<std::size_t>(b + j)];
          const bool want = x > thr || (x == thr && ties_seen++ < k - greater);
          wrong += (keep[static_cast<std::size_t>(j)] != 0.0f) != want ? 1 : 0;
          kept += keep[static_cast<std::size_t>(j)] != 0.0f ? 1 : 0;
        }
      }
      BOOST_CHECK_MESSAGE(kept == k && wrong == 0, what << " k=" << k << ": kept " << kept << ", " << wrong << " wrong");
    };
    check(exec::seq, "seq");
    check(exec::parallel_policy{.threads = 3}, "par3");
  }
}

BOOST_AUTO_TEST_CASE(keep_bits_equal_the_bernoulli_definition) {
  // DARE's keep bits (AVX2 Philox bytes, 256 draws per 16 blocks, and the refinement lanes, in the native
  // build) against rng::bernoulli one element at a time: offsets that are multiples of 16 (vector path) and
  // of 4 only (portable path), partial last words (bits past len must be zero), densities at the ends of
  // [0, 1], just above a multiple of 2^-24, on a byte boundary (no refinement keeps) and half-way through a
  // byte (half the refinements keep).
  const std::uint64_t seed = 0x1234abcd9876ull;
  const std::uint64_t stream = detail::model_stream("model.layers.3.mlp.down_proj.weight", 2);
  std::int64_t ones = 0, checked = 0;
  std::int64_t refined_kept = 0;
  for (const float p : {0.0f, 1e-7f, 0.3f, 0.5f, 0.5f + 1.0f / 16777216.0f, 100.0f / 256.0f, 100.5f / 256.0f, 0.9999999f, 1.0f})
    for (const std::uint64_t first : {std::uint64_t{0}, std::uint64_t{4}, std::uint64_t{16}, std::uint64_t{64}, std::uint64_t{4096 + 48}, std::uint64_t{4096 + 60}})
      for (const std::int64_t len : {std::int64_t{0}, std::int64_t{1}, std::int64_t{63}, std::int64_t{64}, std::int64_t{65}, std::int64_t{200}, std::int64_t{256}, std::int64_t{300}, std::int64_t{2048}, std::int64_t{5000}}) {
        std::vector<std::uint64_t> words(static_cast<std::size_t>((len + 63) / 64) + 1, ~std::uint64_t{0});
        detail::fill_keep_bits(seed, stream, first, len, p, words.data());
        std::int64_t wrong = 0;
        for (std::int64_t j = 0; j < (len + 63) / 64 * 64; ++j) {
          const bool got = ((words[static_cast<std::size_t>(j / 64)] >> (j % 64)) & 1u) != 0;
          const std::uint64_t e = first + static_cast<std::uint64_t>(j);
          const bool want = j < len && rng::bernoulli(seed, stream, e, p);
          wrong += got != want ? 1 : 0;
          ones += got ? 1 : 0;
          refined_kept += got && j < len && rng::random_byte(seed, stream, e) == (rng::u24_threshold(p) >> 16) ? 1 : 0;
        }
        BOOST_CHECK_MESSAGE(wrong == 0, "p=" << p << " first=" << first << " len=" << len << ": " << wrong << " bits differ");
        BOOST_CHECK_EQUAL(words.back(), ~std::uint64_t{0}); // nothing written past the last word
        checked += len;
      }
  BOOST_TEST_MESSAGE("keep bits: " << checked << " draws checked, " << ones << " kept, " << refined_kept
                                    << " kept by a refinement");
  BOOST_CHECK_GT(ones, 1000);
  BOOST_CHECK_GT(refined_kept, 20); // the refinement path decided some kept bits
}

BOOST_AUTO_TEST_CASE(fused_keep_bits_and_l1_sums_equal_the_two_steps) {
#if FUSEKIT_CONVERT_X86 && defined(__AVX2__) && FUSEKIT_HAS_VECTOR_EXT
  // DARE's L1 statistics draw the keep bits and sum |Δ| and kept |Δ| in one sweep (keep_bits_l1_bf16): the
  // same bits as fill_keep_bits and the same sums as delta_abs_kept_sums_bf16 up to summation order, for
  // vector and fallback offsets, partial groups and words, densities with many and with no refinement keeps.
  const std::uint64_t seed = 77, stream = detail::model_stream("model.layers.9.mlp.down_proj.weight", 1);
  std::mt19937 g(5);
  std::normal_distribution<float> nd(0.0f, 0.02f);
  std::vector<bf16> b(6000), x(6000);
  for (std::size_t j = 0; j < b.size(); ++j) {
    b[j] = bf16(nd(g));
    x[j] = bf16(static_cast<float>(b[j]) + 0.1f * nd(g));
  }
  // the same terms keep·|Δ| for non-finite deltas too: a dropped inf gives NaN in both forms (a masked sum
  // would give a finite kept sum, hence an infinite rescale factor)
  auto same = [](double u, double v) {
    if (std::isnan(u) || std::isnan(v) || std::isinf(u) || std::isinf(v))
      return (std::isnan(u) && std::isnan(v)) || u == v;
    return std::abs(u - v) <= 1e-6 * std::max(std::abs(u), std::abs(v));
  };
  int cases = 0;
  for (const int bad : {0, 1, 2}) { // finite; one inf delta; one inf and one NaN delta
    if (bad >= 1)
      x[1234] = bf16(std::numeric_limits<float>::infinity());
    if (bad == 2)
      x[77] = bf16(std::numeric_limits<float>::quiet_NaN());
  for (const float p : {0.0f, 0.3f, 100.5f / 256.0f, 0.5f, 1.0f})
    for (const std::uint64_t first : {std::uint64_t{0}, std::uint64_t{16}, std::uint64_t{4}, std::uint64_t{2048}})
      for (const std::int64_t len : {std::int64_t{1}, std::int64_t{15}, std::int64_t{64}, std::int64_t{200}, std::int64_t{2048}, std::int64_t{5000}}) {
        const std::size_t nw = static_cast<std::size_t>((len + 63) / 64);
        std::vector<std::uint64_t> w1(nw + 1, 7), w2(nw + 1, 7);
        double a1 = 0, k1 = 0, a2 = 0, k2 = 0;
        detail::keep_bits_l1_bf16(seed, stream, first, len, p, b.data(), x.data(), w1.data(), a1, k1);
        detail::fill_keep_bits(seed, stream, first, len, p, w2.data());
        detail::delta_abs_kept_sums_bf16(b.data(), x.data(), len, w2.data(), a2, k2);
        BOOST_CHECK_MESSAGE(w1 == w2, "bits differ: p=" << p << " first=" << first << " len=" << len);
        BOOST_CHECK_MESSAGE(same(a1, a2) && same(k1, k2), "sums differ: p=" << p << " first=" << first << " len="
                                                                          << len << " bad=" << bad << ": " << a1 << " "
                                                                          << a2 << ", " << k1 << " " << k2);
        if (bad == 0 && k2 == 0)
          BOOST_CHECK_EQUAL(k1, 0.0);
        ++cases;
      }
  }
  BOOST_TEST_MESSAGE("fused keep bits + L1 sums: " << cases << " cases");
#else
  BOOST_TEST_MESSAGE("no AVX2 register kernels in this build: nothing to compare");
  BOOST_CHECK(true);
#endif
}

BOOST_AUTO_TEST_CASE(uniform_fills_equal_the_generator) {
  // fill_u24 (DELLA's draws) and fill_uniform against rng::random_u32 / rng::uniform01 one element at a
  // time: lengths around the 64-word (16-block) and 32-word (8-block) register steps and the scalar tail.
  const std::uint64_t seed = 0x0badc0ffee15ull;
  const std::uint64_t stream = detail::model_stream("model.layers.0.self_attn.q_proj.weight", 5);
  for (const std::uint64_t first : {std::uint64_t{0}, std::uint64_t{4}, std::uint64_t{1u << 20}})
    for (const std::int64_t len : {0, 1, 4, 31, 32, 33, 63, 64, 95, 96, 100, 127, 128, 161, 4099}) {
      std::vector<std::uint32_t> m(static_cast<std::size_t>(len) + 4, 0xdeadbeefu);
      std::vector<float> u(static_cast<std::size_t>(len) + 4, -1.0f);
      detail::fill_u24(seed, stream, first, len, m.data());
      detail::fill_uniform(seed, stream, first, len, u.data());
      std::int64_t wrong = 0;
      for (std::int64_t j = 0; j < len; ++j) {
        const std::uint64_t e = first + static_cast<std::uint64_t>(j);
        wrong += m[static_cast<std::size_t>(j)] != (rng::random_u32(seed, stream, e) >> 8) ? 1 : 0;
        wrong += u[static_cast<std::size_t>(j)] != rng::uniform01(seed, stream, e) ? 1 : 0;
      }
      BOOST_CHECK_MESSAGE(wrong == 0, "first=" << first << " len=" << len << ": " << wrong << " values differ");
      BOOST_CHECK_EQUAL(m[static_cast<std::size_t>(len)], 0xdeadbeefu); // nothing written past len
      BOOST_CHECK_EQUAL(u[static_cast<std::size_t>(len)], -1.0f);
    }
}

BOOST_AUTO_TEST_CASE(bracket_scan_equals_its_definition) {
  // The selection's one-pass count + candidate scan (AVX2 in the native build) against the plain definition:
  // keys with the top bit set (the vector compares flip it), heavy atoms at the bracket ends and the mid,
  // brackets of width 0, 1 and 2, l = 0, h = UINT32_MAX, and every length 0..300 (groups of 8 and tails).
  struct cand {
    std::uint32_t key, block;
  };
  std::mt19937 rng(21);
  const std::uint32_t atoms[] = {0u, 5u, 6u, 7u, 9u, 0x7fffffffu, 0x80000000u, 0x80000001u, 0xfffffffeu, 0xffffffffu};
  std::int64_t checked = 0, candidates = 0;
  for (int trial = 0; trial < 400; ++trial) {
    const auto len = static_cast<std::int64_t>(rng() % 301);
    std::vector<std::uint32_t> kk(static_cast<std::size_t>(len));
    for (auto& k : kk)
      k = rng() % 3 == 0 ? atoms[rng() % 10] : (rng() % 2 ? rng() : rng() % 16);
    std::uint32_t l = atoms[rng() % 10], h = atoms[rng() % 10];
    if (trial % 5 == 0) { // a narrow bracket
      l = rng() % 12;
      h = l + rng() % 3;
    }
    if (l > h)
      std::swap(l, h);
    const std::uint32_t m = trial % 3 == 0 ? atoms[rng() % 10] : l + (h - l) / 2;
    const bool has_mid = l < m && m < h && trial % 4 != 1;
    detail::bracket_counts got;
    std::vector<cand> out(static_cast<std::size_t>(len) + 1);
    const std::size_t nc = detail::bracket_scan(kk.data(), len, l, h, m, has_mid, out.data(), 77u, got);
    std::int32_t a = 0, eh = 0, el = 0, em = 0;
    std::vector<std::uint32_t> want;
    for (const std::uint32_t k : kk) {
      a += k > h;
      eh += k == h;
      el += k == l;
      em += has_mid && k == m;
      if (k > l && k < h && !(has_mid && k == m))
        want.push_back(k);
    }
    BOOST_CHECK_EQUAL(got.above, a);
    BOOST_CHECK_EQUAL(got.eq_hi, eh);
    BOOST_CHECK_EQUAL(got.eq_lo, el);
    BOOST_CHECK_EQUAL(got.eq_mid, em);
    BOOST_REQUIRE_EQUAL(nc, want.size());
    for (std::size_t q = 0; q < nc; ++q) {
      BOOST_CHECK_EQUAL(out[q].key, want[q]);
      BOOST_CHECK_EQUAL(out[q].block, 77u);
    }
    ++checked;
    candidates += static_cast<std::int64_t>(nc);
  }
  BOOST_TEST_MESSAGE("bracket_scan: " << checked << " scans, " << candidates << " candidates");
  BOOST_CHECK_GT(candidates, 1000);
}

BOOST_AUTO_TEST_CASE(sparse_task_vectors_vs_reference) {
  // TIES / breadcrumbs / SCE on mostly-zero bf16-like task vectors: densities below and above the nonzero share
  const std::int64_t n = 300007;
  std::vector<float> base(static_cast<std::size_t>(n), 0.0f);
  std::mt19937 rng(11);
  std::vector<ref::model> ms(3);
  for (std::size_t i = 0; i < 3; ++i) {
    ms[i].x.assign(static_cast<std::size_t>(n), 0.0f);
    for (auto& v : ms[i].x)
      if (rng() % 100 < 2) // 2% nonzero, multiples of 1/64 (exact fp32 sums)
        v = static_cast<float>(static_cast<int>(rng() % 9) - 4) / 64.0f;
    ms[i].weight = 0.25 * static_cast<double>(i + 1);
    ms[i].density = i == 0 ? 0.005 : (i == 1 ? 0.02 : 0.6);
    ms[i].gamma = 0.001;
  }
  std::vector<merge_input<vector_view<const float>>> in;
  for (std::size_t i = 0; i < 3; ++i)
    in.push_back({host_view(static_cast<const float*>(ms[i].x.data()), n), static_cast<float>(ms[i].weight), ms[i].density,
                  ms[i].gamma});
  std::vector<float> out(static_cast<std::size_t>(n));
  ref::gta_cfg c;
  c.cons = ref::consensus::sum;
  c.sp = ref::sparsify::magnitude;
  c.normalize = true;
  merge(exec::par, ties{}, host_view(out.data(), n), host_view(base.data(), n), in, {"t"});
  harness::check_close(out, ref::gta(base, ms, c), 1e-6, 1e-7, "ties sparse");
  c.sp = ref::sparsify::outliers;
  c.normalize = false;
  merge(exec::par, breadcrumbs_ties{}, host_view(out.data(), n), host_view(base.data(), n), in, {"t"});
  harness::check_close(out, ref::gta(base, ms, c), 1e-6, 1e-7, "breadcrumbs_ties sparse");
}

BOOST_AUTO_TEST_CASE(election_and_divisor_options_differ_as_documented) {
  // one element, two models: deltas +1 (w 0.1) and -0.5 (w 1): weighted election picks -, unweighted picks +
  std::vector<float> base{0.0f}, a{1.0f}, b{-0.5f}, out(1);
  using V = vector_view<const float>;
  std::vector<merge_input<V>> in{{host_view(a.data(), 1), 0.1f}, {host_view(b.data(), 1), 1.0f}};
  merge(exec::seq, ties{}, host_view(out.data(), 1), host_view(base.data(), 1), in);
  BOOST_CHECK_CLOSE(out[0], -0.5f, 1e-4); // Σw·Δ = -0.4 < 0: keeps model 1, divides by its weight
  merge(exec::seq, ties{.election = sign_election::unweighted}, host_view(out.data(), 1), host_view(base.data(), 1), in);
  BOOST_CHECK_CLOSE(out[0], 1.0f, 1e-4); // ΣΔ = 0.5 >= 0: keeps model 0 (0.1·1 / 0.1)
  merge(exec::seq, ties{.election = sign_election::unweighted, .divisor = consensus_divisor::count},
        host_view(out.data(), 1), host_view(base.data(), 1), in);
  BOOST_CHECK_CLOSE(out[0], 0.1f, 1e-4); // 0.1·1 / count 1
}

BOOST_AUTO_TEST_CASE(random_masks_are_thread_count_independent) {
  const std::int64_t n = 200003;
  auto b = ref::random_values<float>(static_cast<std::size_t>(n), 1);
  std::vector<std::vector<float>> xs;
  for (std::uint32_t i = 0; i < 4; ++i) {
    auto x = ref::random_values<float>(static_cast<std::size_t>(n), 10 + i, 0.1f);
    for (std::size_t e = 0; e < x.size(); ++e)
      x[e] += b[e];
    xs.push_back(std::move(x));
  }
  using V = vector_view<const float>;
  std::vector<merge_input<V>> in;
  for (auto& x : xs)
    in.push_back({host_view(x.data(), n), 0.3f, 0.4, 0.01, 0.15});
  auto run = [&](const auto& pol, const auto& m, std::uint64_t seed) {
    std::vector<float> out(static_cast<std::size_t>(n));
    merge(pol, m, host_view(out.data(), n), host_view(b.data(), n), in, {"model.layers.0.self_attn.q_proj.weight", seed});
    return out;
  };
  auto all_same = [&](const auto& m, bool random) {
    const auto r = run(exec::seq, m, 5);
    for (int t : {1, 2, 3, 7})
      BOOST_CHECK(run(exec::parallel_policy{.threads = t}, m, 5) == r);
    if (random)
      BOOST_CHECK(run(exec::par, m, 6) != r); // another seed, another mask
  };
  all_same(dare_ties{}, true);
  all_same(dare_linear{}, true);
  all_same(della{}, true);
  all_same(della_linear{}, true);
  all_same(ties{}, false);
  all_same(breadcrumbs_ties{}, false);
}

BOOST_AUTO_TEST_CASE(dare_keeps_density_fraction_and_is_unbiased) {
  // With the 1/density rescale, E[DARE-linear] = task arithmetic; the kept fraction is ~density.
  const std::int64_t n = 400000;
  std::vector<float> b(static_cast<std::size_t>(n), 0.0f), x(static_cast<std::size_t>(n), 1.0f), out(static_cast<std::size_t>(n));
  using V = vector_view<const float>;
  std::vector<merge_input<V>> in{{host_view(x.data(), n), 1.0f, 0.3}};
  merge(exec::par, dare_linear{.rescale_by = rescale_mode::inverse_density}, host_view(out.data(), n),
        host_view(b.data(), n), in, {"w", 9});
  double kept = 0, mean = 0;
  for (float v : out) {
    kept += v != 0.0f;
    mean += v;
  }
  kept /= static_cast<double>(n);
  mean /= static_cast<double>(n);
  BOOST_CHECK_SMALL(kept - 0.3, 4 * std::sqrt(0.3 * 0.7 / static_cast<double>(n)));
  BOOST_CHECK_SMALL(mean - 1.0, 4 * std::sqrt(0.7 / 0.3 / static_cast<double>(n)));
  // mergekit's L1 rescale preserves the L1 norm exactly (up to rounding)
  merge(exec::par, dare_linear{}, host_view(out.data(), n), host_view(b.data(), n), in, {"w", 9});
  double l1 = 0;
  for (float v : out)
    l1 += std::abs(v);
  BOOST_CHECK_CLOSE(l1, static_cast<double>(n), 1e-3);
}

BOOST_AUTO_TEST_CASE(edge_cases_are_defined) {
  using V = vector_view<const float>;
  std::vector<float> base{1.0f, 2.0f, 3.0f}, x{2.0f, 2.0f, 5.0f}, out(3);
  // empty input list: the base
  std::vector<merge_input<V>> none;
  merge(exec::seq, ties{}, host_view(out.data(), 3), host_view(base.data(), 3), none);
  BOOST_CHECK(out == base);
  // gamma = 0: breadcrumbs keeps the largest entries (mergekit would zero the whole task vector)
  std::vector<merge_input<V>> one{{host_view(x.data(), 3), 1.0f, 2.0 / 3.0, 0.0}};
  merge(exec::seq, breadcrumbs{}, host_view(out.data(), 3), host_view(base.data(), 3), one);
  BOOST_CHECK_EQUAL(out[0], 2.0f); // delta 1 kept (rank 2 of 2 kept)
  BOOST_CHECK_EQUAL(out[2], 5.0f); // delta 2 kept
  // density 0 drops the model explicitly
  one[0].density = 0.0;
  merge(exec::seq, ties{}, host_view(out.data(), 3), host_view(base.data(), 3), one);
  BOOST_CHECK(out == base);
  // Σw = 0 without consensus: the divisor becomes 1 (mergekit), not a division by zero
  std::vector<float> y{0.0f, 2.0f, 1.0f};
  std::vector<merge_input<V>> two{{host_view(x.data(), 3), 1.0f}, {host_view(y.data(), 3), -1.0f}};
  merge(exec::seq, dare_linear{.normalize = true}, host_view(out.data(), 3), host_view(base.data(), 3), two);
  BOOST_CHECK_CLOSE(out[0], 1.0f + (1.0f - (-1.0f)), 1e-4);
  for (float v : out)
    BOOST_CHECK(std::isfinite(v));
}

BOOST_AUTO_TEST_CASE(errors_name_tensor_and_model) {
  using V = vector_view<const float>;
  std::vector<float> base(10, 0.0f), x(10, 1.0f), z(9, 1.0f), out(10);
  auto msg = [](auto&& f) {
    try {
      f();
    } catch (const fusekit::error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  std::vector<merge_input<V>> bad_shape{{host_view(x.data(), 10), 1.0f, 0.5}, {host_view(z.data(), 9), 1.0f, 0.5}};
  const auto m1 = msg([&] { merge(exec::seq, ties{}, host_view(out.data(), 10), host_view(base.data(), 10), bad_shape, {"w.q"}); });
  BOOST_CHECK_MESSAGE(m1.find("model 1") != std::string::npos && m1.find("w.q") != std::string::npos, m1);
  std::vector<merge_input<V>> k0{{host_view(x.data(), 10), 1.0f, 0.05}}; // floor(0.05*10) = 0
  const auto m2 = msg([&] { merge(exec::seq, ties{}, host_view(out.data(), 10), host_view(base.data(), 10), k0, {"w.k"}); });
  BOOST_CHECK_MESSAGE(m2.find("model 0") != std::string::npos && m2.find("floor") != std::string::npos, m2);
  std::vector<merge_input<V>> eps{{host_view(x.data(), 10), 1.0f, 0.5, 0.01, 0.6}};
  const auto m3 = msg([&] { merge(exec::seq, della{}, host_view(out.data(), 10), host_view(base.data(), 10), eps, {"w.e"}); });
  BOOST_CHECK_MESSAGE(m3.find("epsilon") != std::string::npos, m3);
  std::vector<merge_input<V>> dens{{host_view(x.data(), 10), 1.0f, 1.5}};
  const auto m4 = msg([&] { merge(exec::seq, dare_ties{}, host_view(out.data(), 10), host_view(base.data(), 10), dens, {"w.d"}); });
  BOOST_CHECK_MESSAGE(m4.find("density") != std::string::npos, m4);
  std::vector<merge_input<V>> nanw{{host_view(x.data(), 10), NAN, 0.5}};
  const auto m5 = msg([&] { merge(exec::seq, ties{}, host_view(out.data(), 10), host_view(base.data(), 10), nanw, {"w.n"}); });
  BOOST_CHECK_MESSAGE(m5.find("weight") != std::string::npos, m5);
}

// Contiguous bf16 base, inputs and output take the register kernel of the final pass (AVX2 builds:
// detail::gta_final_bf16, for the blocks whose keep masks are key ranges or bit masks); the same values in
// padded (non-contiguous) rows take the blocked loop. This target is built without FP contraction, so the
// bits must match: every GTA method, the three consensus rules, normalize on and off, the disagreement
// options, quantized deltas (heavy ties, so some blocks have a tie quota and take the blocked loop),
// Δ = 0 entries, NaN / inf inputs, varied weights, 1-5 models, an output off the 32-byte grid, and outputs
// large enough for streaming stores. The dense run also takes the register forms of the selection keys
// (delta_keys_bf16) and of DARE's L1 statistics (delta_abs_kept_sums_bf16): a different rescale factor
// would show as differing outputs of dare_ties / dare_linear.
BOOST_AUTO_TEST_CASE(bf16_register_final_pass_equals_blocked_loop) {
  for (const auto [rows, cols] : {std::array<std::int64_t, 2>{5, 37}, {3, 4099}, {1100, 4099}})
    for (int k : {1, 2, 5, 17}) {
      if (k == 17 && rows > 5) // over 16 models the kernel parks its values in the caller's scratch
        continue;
      harness::lcg rnd{static_cast<std::uint32_t>(rows * 131 + k)};
      const harness::bf16_twin_set set(
          rows, cols, k, [&](std::size_t) { return 0.5f + 0.25f * rnd(); }, // one binade: quantized deltas, heavy ties
          [&](std::size_t id, int j, float b) {
            float v = b + 0.02f * rnd();
            if ((id + static_cast<std::size_t>(j)) % 7 == 0)
              v = b; // Δ = 0
            if (rows == 3 && (id + static_cast<std::size_t>(j)) % 997 == 5)
              v = (id % 2 == 0) ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
            return v;
          });
      auto input_of = [](int j, harness::bf16_twin_set::V2 v) {
        return merge_input<harness::bf16_twin_set::V2>{.tensor = v, .weight = 0.3f + 0.25f * static_cast<float>(j),
                                                      .density = std::min(0.85, 0.3 + 0.1 * j), .gamma = 0.05,
                                                      .epsilon = 0.1};
      };
      auto check = [&](auto method, const char* what) {
        const std::int64_t diff = set.diff(method, input_of);
        BOOST_TEST(diff == 0, what << " " << rows << "x" << cols << ", " << k << " models: " << diff << " differ");
      };
      check(ties{}, "ties");
      check(ties{.lambda = 0.8f, .normalize = false}, "ties, no normalize");
      check(ties{.rescale = true, .election = sign_election::unweighted, .divisor = consensus_divisor::count},
            "ties, rescaled, unweighted election, count divisor");
      check(dare_ties{}, "dare_ties");
      check(dare_ties{.rescale = false}, "dare_ties, no rescale (masks drawn per block)");
      check(dare_linear{}, "dare_linear");
      check(dare_linear{.normalize = true, .rescale_by = rescale_mode::inverse_density}, "dare_linear, 1/density");
      check(breadcrumbs{}, "breadcrumbs");
      check(breadcrumbs_ties{}, "breadcrumbs_ties");
      if (rows != 3) { // DELLA: NaN / inf deltas have no magnitude rank (tested elsewhere)
        check(della{}, "della");
        check(della_linear{}, "della_linear");
      }
      generalized_task_arithmetic g;
      g.sparsify = sparsification::magnitude;
      g.consensus = consensus_method::count;
      g.normalize = true;
      check(g, "magnitude + count consensus");
    }
}

// Merging in place (the output is the base tensor) gives the out-of-place result: the register kernels
// write every element once from its own inputs, and take their head and tail element by element (not as
// overlapping vector groups, which would re-read overwritten base values) when the output overlaps an
// input. Sizes with and without streaming stores, an output on and off the 32-byte grid.
BOOST_AUTO_TEST_CASE(merging_in_place_into_the_base_equals_out_of_place) {
  using V2 = strided_view<const bf16, 2>;
  for (const auto [rows, cols] : {std::array<std::int64_t, 2>{5, 37}, {1100, 4099}})
    for (const std::size_t off : {std::size_t{0}, std::size_t{3}}) {
      const std::int64_t n = rows * cols;
      const std::array<std::int64_t, 2> shape{rows, cols};
      harness::lcg rnd{static_cast<std::uint32_t>(n + off)};
      std::vector<bf16> base_store(static_cast<std::size_t>(n) + 8);
      bf16* base = base_store.data() + off;
      for (std::int64_t e = 0; e < n; ++e)
        base[e] = bf16(0.02f * rnd());
      std::vector<std::vector<bf16>> xs(3, std::vector<bf16>(static_cast<std::size_t>(n)));
      for (auto& x : xs)
        for (std::int64_t e = 0; e < n; ++e)
          x[static_cast<std::size_t>(e)] = bf16(static_cast<float>(base[e]) + 0.002f * rnd());
      std::vector<merge_input<V2>> in;
      for (std::size_t j = 0; j < xs.size(); ++j)
        in.push_back({.tensor = host_view(static_cast<const bf16*>(xs[j].data()), shape),
                      .weight = 0.2f + 0.3f * static_cast<float>(j), .density = 0.4});
      auto check = [&](auto method, const char* what) {
        std::vector<bf16> want(static_cast<std::size_t>(n));
        merge(exec::par, method, host_view(want.data(), shape), host_view(static_cast<const bf16*>(base), shape), in,
              merge_context{"model.layers.0.mlp.up_proj.weight", 7});
        std::vector<bf16> buf_store(base_store); // the base, then the result, at the same alignment
        bf16* buf = buf_store.data() + off;
        merge(exec::par, method, host_view(buf, shape), host_view(static_cast<const bf16*>(buf), shape), in,
              merge_context{"model.layers.0.mlp.up_proj.weight", 7});
        std::int64_t wrong = 0;
        for (std::int64_t e = 0; e < n; ++e)
          wrong += buf[e].bits != want[static_cast<std::size_t>(e)].bits ? 1 : 0;
        BOOST_TEST(wrong == 0, what << " " << rows << "x" << cols << " offset " << off << ": " << wrong << " differ");
      };
      check(ties{}, "ties");
      check(dare_ties{}, "dare_ties");
      check(sce{}, "sce");
      check(task_arithmetic{}, "task_arithmetic");
    }
}

BOOST_AUTO_TEST_SUITE_END()
