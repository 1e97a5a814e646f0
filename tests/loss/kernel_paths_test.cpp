// The fast paths of the row kernels (include/fusekit/loss/detail/row_kernels.hpp): the one-pass
// exp-with-max blocks (block maxima rising by small steps and by a jump larger than one_pass_max_jump),
// −inf leading blocks, the non-temporal (streaming) gradient stores of large non-aliasing outputs (bitwise
// equal to the cached stores of the same rows), bf16/fp16 storage, and thread-count determinism of the
// fused cross-entropy. Built twice: default target and -march=native (AVX2 widths).
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <type_traits>
#include <vector>

#include <fusekit/loss/fusion.hpp>
#include <fusekit/loss/logprob.hpp>
#include <fusekit/types/bf16.hpp>
#include <fusekit/types/fp16.hpp>

namespace fk = fusekit;

namespace {

using M2 = std::array<std::int64_t, 2>;

// Rows with a rising maximum: row 0 small steps per block, row 1 a +200 jump in its last block, row 2
// −inf for the first two blocks, row 3 random, row 4 a +70 jump in the second block.
std::vector<double> tricky_rows(std::int64_t N, std::int64_t V, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  std::normal_distribution<double> d(0.0, 3.0);
  std::vector<double> z(static_cast<std::size_t>(N * V));
  for (std::int64_t t = 0; t < N; ++t)
    for (std::int64_t j = 0; j < V; ++j) {
      double x = d(g);
      const std::int64_t blk = j / 1024;
      switch (t % 5) {
      case 0: x += 5.0 * static_cast<double>(blk); break;
      case 1: x += (blk == (V - 1) / 1024 && blk > 0) ? 200.0 : 0.0; break;
      case 2: x = blk < std::min<std::int64_t>(2, (V - 1) / 1024) ? -std::numeric_limits<double>::infinity() : x; break;
      case 4: x += blk >= 1 ? 70.0 : 0.0; break;
      default: break;
      }
      z[static_cast<std::size_t>(t * V + j)] = x;
    }
  return z;
}

template <class T> std::vector<T> store_as(const std::vector<double>& z) {
  std::vector<T> o(z.size());
  for (std::size_t i = 0; i < z.size(); ++i)
    o[i] = fk::from_compute<T>(static_cast<float>(z[i]));
  return o;
}

// long-double lse of a stored row (the bar below is the one of logprob_test: gradient error < 1e-6, the
// fp32 rounding of an lse near 200 alone is 7.6e-6 relative)
template <class T> long double ref_lse(const T* z, std::int64_t V) {
  long double m = -std::numeric_limits<long double>::infinity();
  for (std::int64_t j = 0; j < V; ++j)
    m = std::max(m, static_cast<long double>(static_cast<float>(z[j])));
  long double s = 0;
  for (std::int64_t j = 0; j < V; ++j)
    s += std::exp(static_cast<long double>(static_cast<float>(z[j])) - m);
  return m + std::log(s);
}

template <class T> void rising_maxima() {
  for (std::int64_t V : {1025, 3001, 5000}) {
    const std::int64_t N = 10;
    const auto zs = store_as<T>(tricky_rows(N, V, 7 + static_cast<std::uint64_t>(V)));
    std::vector<std::int64_t> y(static_cast<std::size_t>(N));
    for (std::int64_t t = 0; t < N; ++t)
      y[static_cast<std::size_t>(t)] = V - 1 - (t * 37) % ((V - 1) % 1024 + 1); // last block: finite in every row
    fk::logits_batch<T> b{.logits = fk::host_view(static_cast<const T*>(zs.data()), M2{N, V}),
                          .labels = fk::host_view(static_cast<const std::int64_t*>(y.data()), N)};
    std::vector<float> lse(static_cast<std::size_t>(N)), lp(static_cast<std::size_t>(N));
    fk::token_logprobs(
        fk::exec::par, b,
        fk::token_logprob_outputs<float>{.logp = fk::host_view(lp.data(), N), .lse = fk::host_view(lse.data(), N)});
    std::vector<float> g(static_cast<std::size_t>(N * V));
    const auto ce = fk::cross_entropy_and_grad(fk::exec::par, b, fk::host_view(g.data(), M2{N, V}));
    double ce_ref = 0;
    for (std::int64_t t = 0; t < N; ++t) {
      const T* row = zs.data() + t * V;
      const long double L = ref_lse(row, V);
      const double zl = static_cast<float>(row[y[static_cast<std::size_t>(t)]]);
      BOOST_TEST(std::abs(lse[static_cast<std::size_t>(t)] - static_cast<double>(L)) <=
                     1e-5 + 1e-6 * std::abs(static_cast<double>(L)),
                 "V " << V << " row " << t << ": lse " << lse[static_cast<std::size_t>(t)] << " vs " << (double)L);
      BOOST_TEST(std::abs(lp[static_cast<std::size_t>(t)] - (zl - static_cast<double>(L))) <=
                 1e-5 + 1e-6 * std::abs(static_cast<double>(L)));
      ce_ref += static_cast<double>(L) - zl;
      double max_err = 0;
      for (std::int64_t j = 0; j < V; ++j) {
        const double p = static_cast<double>(std::exp(static_cast<long double>(static_cast<float>(row[j])) - L));
        const double want = (p - (j == y[static_cast<std::size_t>(t)] ? 1.0 : 0.0)) / static_cast<double>(N);
        max_err = std::max(max_err, std::abs(static_cast<double>(g[static_cast<std::size_t>(t * V + j)]) - want));
      }
      BOOST_TEST(max_err < 1e-6, "V " << V << " row " << t << ": gradient error " << max_err);
    }
    BOOST_TEST(std::abs(ce.loss - ce_ref / static_cast<double>(N)) <= 1e-5 * (1 + std::abs(ce.loss)));
  }
}

// Gradients through the streaming stores (output ≥ stream_min_bytes, not aliasing) equal, bit for bit,
// those of the same rows computed one row at a time (small outputs: cached stores).
template <class T, class O> void streaming_matches_cached() {
  const std::int64_t V = 33000; // not a multiple of the block, odd tail
  const std::int64_t N = fk::detail::stream_min_bytes / (V * static_cast<std::int64_t>(sizeof(O))) + 3;
  const auto zs = store_as<T>(tricky_rows(N, V, 99));
  std::vector<std::int64_t> y(static_cast<std::size_t>(N));
  for (std::int64_t t = 0; t < N; ++t)
    y[static_cast<std::size_t>(t)] = t % 3 == 2 ? -100 : V - 1 - t;
  std::vector<double> gt(static_cast<std::size_t>(N));
  for (std::int64_t t = 0; t < N; ++t)
    gt[static_cast<std::size_t>(t)] = 0.25 + 0.01 * static_cast<double>(t);
  fk::logits_batch<T> b{.logits = fk::host_view(static_cast<const T*>(zs.data()), M2{N, V}),
                        .labels = fk::host_view(static_cast<const std::int64_t*>(y.data()), N)};
  std::vector<O> big(static_cast<std::size_t>(N * V)), ce_big(static_cast<std::size_t>(N * V));
  fk::token_logprobs_backward(fk::exec::par, b, fk::vector_view<const double>(fk::host_view(gt.data(), N)),
                              fk::host_view(big.data(), M2{N, V}));
  const auto ce = fk::cross_entropy_and_grad(fk::exec::par, b, fk::host_view(ce_big.data(), M2{N, V}), 1.0);
  double ce_rows = 0;
  for (std::int64_t t = 0; t < N; ++t) {
    fk::logits_batch<T> b1{.logits = fk::host_view(zs.data() + t * V, M2{1, V}),
                           .labels = fk::host_view(static_cast<const std::int64_t*>(y.data()) + t, 1)};
    std::vector<O> one(static_cast<std::size_t>(V)), ce_one(static_cast<std::size_t>(V));
    fk::token_logprobs_backward(fk::exec::seq, b1, fk::vector_view<const double>(fk::host_view(gt.data() + t, 1)),
                                fk::host_view(one.data(), M2{1, V}));
    const auto c1 = fk::cross_entropy_and_grad(fk::exec::seq, b1, fk::host_view(ce_one.data(), M2{1, V}), 1.0);
    ce_rows += c1.loss;
    BOOST_TEST(std::memcmp(one.data(), big.data() + t * V, static_cast<std::size_t>(V) * sizeof(O)) == 0, "row " << t);
    BOOST_TEST(std::memcmp(ce_one.data(), ce_big.data() + t * V, static_cast<std::size_t>(V) * sizeof(O)) == 0,
               "row " << t);
  }
  BOOST_TEST(std::abs(ce.loss - ce_rows) <= 1e-9 * (1 + std::abs(ce_rows)));
}

} // namespace

BOOST_AUTO_TEST_SUITE(loss_kernel_paths)

BOOST_AUTO_TEST_CASE(rising_block_maxima_f32) { rising_maxima<float>(); }
BOOST_AUTO_TEST_CASE(rising_block_maxima_bf16) { rising_maxima<fk::bf16>(); }
BOOST_AUTO_TEST_CASE(rising_block_maxima_fp16) { rising_maxima<fk::fp16>(); }

BOOST_AUTO_TEST_CASE(streaming_stores_f32) { streaming_matches_cached<float, float>(); }
BOOST_AUTO_TEST_CASE(streaming_stores_bf16) { streaming_matches_cached<fk::bf16, fk::bf16>(); }
BOOST_AUTO_TEST_CASE(streaming_stores_fp16_to_f32) { streaming_matches_cached<fk::fp16, float>(); }

BOOST_AUTO_TEST_CASE(fused_ce_in_place_is_deterministic_across_threads) {
  const std::int64_t N = 37, V = 4099;
  const auto z0 = store_as<fk::bf16>(tricky_rows(N, V, 5));
  std::vector<std::int64_t> y(static_cast<std::size_t>(N));
  for (std::int64_t t = 0; t < N; ++t)
    y[static_cast<std::size_t>(t)] = t % 7 == 0 ? -100 : V - 1 - t;
  std::vector<fk::bf16> a = z0, c = z0;
  auto run = [&](auto pol, std::vector<fk::bf16>& z) {
    fk::logits_batch<fk::bf16> b{.logits = fk::host_view(static_cast<const fk::bf16*>(z.data()), M2{N, V}),
                                 .labels = fk::host_view(static_cast<const std::int64_t*>(y.data()), N)};
    return fk::cross_entropy_and_grad(pol, b, fk::host_view(z.data(), M2{N, V}));
  };
  const auto ra = run(fk::exec::seq, a);
  const auto rc = run(fk::exec::par, c);
  BOOST_TEST(ra.loss == rc.loss);
  BOOST_TEST(std::memcmp(a.data(), c.data(), a.size() * sizeof(fk::bf16)) == 0);
}

BOOST_AUTO_TEST_SUITE_END()

namespace {

// The fused fusion-loss kernel writing a 16-bit gradient (scale and narrow in one sweep from the parked
// row, label and sparse positions redone) gives exactly the float gradient of the same call narrowed
// to the 16-bit type, including sparse ids that repeat or coincide with the label, blocks without any,
// separate and streaming (large, non-aliasing) outputs and the in-place gradient.
template <class T, class G = T> void narrow_fused_matches_float(std::int64_t N, std::int64_t V) {
  const auto zs = store_as<T>(tricky_rows(N, V, 2024 + static_cast<std::uint64_t>(N)));
  std::vector<std::int64_t> y(static_cast<std::size_t>(N));
  fk::dist::sparse_target<float> tg(V);
  std::mt19937_64 g(11);
  for (std::int64_t t = 0; t < N; ++t) {
    const std::int64_t lab = V - 1 - (t * 37) % ((V - 1) % 1024 + 1);
    y[static_cast<std::size_t>(t)] = t % 9 == 4 ? -100 : lab;
    if (t % 11 == 7) {
      tg.push_empty_row();
      continue;
    }
    // rows t % 5 == 2 start with −inf blocks: their ids stay in the last block (a −inf target logit is an error)
    const std::int64_t last = (V - 1) / 1024 * 1024;
    auto any_id = [&](std::int64_t lo) {
      const std::int64_t from = t % 5 == 2 ? last : lo;
      return static_cast<std::int32_t>(from + static_cast<std::int64_t>(g() % static_cast<std::uint64_t>(V - from)));
    };
    std::vector<std::int32_t> ids{static_cast<std::int32_t>(lab), any_id(0), static_cast<std::int32_t>(lab),
                                  any_id(V - 1000), static_cast<std::int32_t>(V - 1)};
    std::vector<float> ps{0.3f, 0.25f, 0.2f, 0.15f, 0.1f};
    tg.push_row(ids, ps);
  }
  fk::logits_batch<T> b{.logits = fk::host_view(static_cast<const T*>(zs.data()), M2{N, V}),
                        .labels = fk::host_view(static_cast<const std::int64_t*>(y.data()), N)};
  const fk::fusion_loss loss{.lm_weight = 0.7};
  std::vector<float> gf(static_cast<std::size_t>(N * V));
  std::vector<G> g16(static_cast<std::size_t>(N * V));
  const auto rf = fk::fusion_loss_and_grad(fk::exec::par, loss, b, tg.view(), fk::host_view(gf.data(), M2{N, V}));
  const auto r16 = fk::fusion_loss_and_grad(fk::exec::par, loss, b, tg.view(), fk::host_view(g16.data(), M2{N, V}));
  BOOST_TEST(rf.loss == r16.loss);
  std::int64_t mismatches = 0;
  for (std::size_t i = 0; i < gf.size(); ++i)
    if (std::bit_cast<std::uint16_t>(fk::from_compute<G>(gf[i])) != std::bit_cast<std::uint16_t>(g16[i]) &&
        ++mismatches <= 5)
      BOOST_TEST_MESSAGE("element " << i << ": " << gf[i] << " vs " << static_cast<float>(g16[i]));
  BOOST_TEST(mismatches == 0, "N " << N << " V " << V << ": " << mismatches << " elements differ");
  if constexpr (!std::is_same_v<T, G>)
    return; // no in-place form across storage types
  // in place: the gradient over the logits themselves equals the separate 16-bit output
  std::vector<T> zi = zs;
  fk::logits_batch<T> bi{.logits = fk::host_view(static_cast<const T*>(zi.data()), M2{N, V}),
                         .labels = fk::host_view(static_cast<const std::int64_t*>(y.data()), N)};
  const auto ri = fk::fusion_loss_and_grad(fk::exec::par, loss, bi, tg.view(), fk::host_view(zi.data(), M2{N, V}));
  BOOST_TEST(ri.loss == r16.loss);
  BOOST_TEST(std::memcmp(zi.data(), g16.data(), zi.size() * sizeof(T)) == 0);
}

} // namespace

BOOST_AUTO_TEST_SUITE(loss_kernel_paths_narrow)
BOOST_AUTO_TEST_CASE(fused_bf16_gradient_equals_narrowed_float) { narrow_fused_matches_float<fk::bf16>(23, 3001); }
BOOST_AUTO_TEST_CASE(fused_fp16_gradient_equals_narrowed_float) { narrow_fused_matches_float<fk::fp16>(23, 3001); }
// bf16 logits (parked in the grouped even/odd layout on AVX2) into an fp16 gradient: ungrouped first
BOOST_AUTO_TEST_CASE(fused_bf16_logits_fp16_gradient_equals_narrowed_float) {
  narrow_fused_matches_float<fk::bf16, fk::fp16>(23, 3001);
}
// ≥ stream_min_bytes of 16-bit output: the streaming variant
BOOST_AUTO_TEST_CASE(fused_bf16_streaming_gradient_equals_narrowed_float) {
  narrow_fused_matches_float<fk::bf16>(fk::detail::stream_min_bytes / (2 * 5000) + 5, 5000);
}
BOOST_AUTO_TEST_SUITE_END()

// detail::exp_nonpos (scalar and vector lanes) against double exp over floats of [−87, 0] (every 997th bit
// pattern): the bound documented in loss/numerics.hpp, exact zeros below the clamp, NaN kept.
BOOST_AUTO_TEST_SUITE(loss_exp_nonpos)
BOOST_AUTO_TEST_CASE(relative_error_and_edges) {
  double worst = 0, worst_near = 0;
  std::int64_t lane_mismatch = 0;
  for (std::uint32_t bits = 0x80000000u;; bits += 997) {
    const float x = std::bit_cast<float>(bits);
    if (!(x >= -87.0f))
      break;
    const float e = fk::detail::exp_nonpos(x);
    const double want = std::exp(static_cast<double>(x));
    const double rel = std::abs(static_cast<double>(e) - want) / want;
    worst = std::max(worst, rel);
    if (x >= -10.0f)
      worst_near = std::max(worst_near, rel);
#if FUSEKIT_HAS_VECTOR_EXT
    const fk::detail::fvec v = fk::detail::exp_nonpos(fk::detail::fvec{} + x);
    lane_mismatch += std::bit_cast<std::uint32_t>(static_cast<float>(v[0])) != std::bit_cast<std::uint32_t>(e);
#endif
  }
  BOOST_TEST_MESSAGE("exp_nonpos max relative error " << worst << " ([-10, 0]: " << worst_near << ")");
  BOOST_TEST(worst < 4.5e-7);
  BOOST_TEST(worst_near < 2.2e-7);
  BOOST_TEST(lane_mismatch == 0);
  BOOST_TEST(fk::detail::exp_nonpos(0.0f) == 1.0f);
  BOOST_TEST(fk::detail::exp_nonpos(-88.0f) == 0.0f);
  BOOST_TEST(fk::detail::exp_nonpos(-1e30f) == 0.0f);
  BOOST_TEST(fk::detail::exp_nonpos(-std::numeric_limits<float>::infinity()) == 0.0f);
  BOOST_TEST(std::isnan(fk::detail::exp_nonpos(std::numeric_limits<float>::quiet_NaN())));
}
BOOST_AUTO_TEST_SUITE_END()
