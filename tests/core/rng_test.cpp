// Counter-based generator: known-answer vectors, statistics, and independence from thread count.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include <fusekit/exec/primitives.hpp>
#include <fusekit/rng/philox.hpp>

using namespace fusekit;

BOOST_AUTO_TEST_SUITE(counter_based_rng)

// Known-answer vectors of Philox4x32-10 from Random123 (kat_vectors).
BOOST_AUTO_TEST_CASE(philox_known_answers) {
  auto a = rng::philox4x32_10({0, 0, 0, 0}, {0, 0});
  BOOST_CHECK_EQUAL(a[0], 0x6627e8d5u);
  BOOST_CHECK_EQUAL(a[1], 0xe169c58du);
  BOOST_CHECK_EQUAL(a[2], 0xbc57ac4cu);
  BOOST_CHECK_EQUAL(a[3], 0x9b00dbd8u);
  auto b = rng::philox4x32_10({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu});
  BOOST_CHECK_EQUAL(b[0], 0x408f276du);
  BOOST_CHECK_EQUAL(b[1], 0x41c83b0eu);
  BOOST_CHECK_EQUAL(b[2], 0xa20bc7c6u);
  BOOST_CHECK_EQUAL(b[3], 0x6d5451fdu);
  auto c = rng::philox4x32_10({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u});
  BOOST_CHECK_EQUAL(c[0], 0xd16cfe09u);
  BOOST_CHECK_EQUAL(c[1], 0x94fdccebu);
  BOOST_CHECK_EQUAL(c[2], 0x5001e420u);
  BOOST_CHECK_EQUAL(c[3], 0x24126ea1u);
}

BOOST_AUTO_TEST_CASE(uniform_statistics) {
  const std::int64_t n = 1 << 20;
  const std::uint64_t stream = rng::stream_id("model.layers.0.mlp.up_proj.weight");
  std::vector<std::int64_t> bins(64);
  double sum = 0, sum2 = 0, lag = 0, prev = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double u = rng::uniform01(42, stream, static_cast<std::uint64_t>(i));
    BOOST_REQUIRE(u >= 0.0 && u < 1.0);
    ++bins[static_cast<std::size_t>(u * 64)];
    sum += u;
    sum2 += u * u;
    lag += (u - 0.5) * (prev - 0.5);
    prev = u;
  }
  const double mean = sum / n, var = sum2 / n - mean * mean;
  BOOST_CHECK_SMALL(mean - 0.5, 3e-3);
  BOOST_CHECK_SMALL(var - 1.0 / 12, 2e-3);
  BOOST_CHECK_SMALL(lag / n / (1.0 / 12), 1e-2); // lag-1 autocorrelation
  double chi2 = 0;
  const double expect = static_cast<double>(n) / 64;
  for (auto b : bins)
    chi2 += (b - expect) * (b - expect) / expect;
  BOOST_CHECK_LT(chi2, 120.0); // 63 dof: P(chi2 > 120) < 1e-5
  // Bernoulli(0.3) frequency.
  std::int64_t ones = 0;
  for (std::int64_t i = 0; i < n; ++i)
    ones += rng::bernoulli(7, stream, static_cast<std::uint64_t>(i), 0.3f);
  BOOST_CHECK_SMALL(static_cast<double>(ones) / n - 0.3, 3e-3);
}

BOOST_AUTO_TEST_CASE(bernoulli_is_a_24_bit_uniform_below_the_threshold) {
  // bernoulli_u24 against its definition written out: m = (random_byte << 16) | (refinement word >> 16),
  // keep = m < T, for thresholds on a byte boundary, inside a byte, and the ends; random_byte against the
  // bytes of random_u32; and the frequencies: exactly T·2^-24 in expectation, including the refinement share.
  const std::uint64_t seed = 0x5eed, stream = rng::stream_id("model.layers.7.mlp.gate_proj.weight");
  for (std::uint64_t e = 0; e < 4096; ++e)
    BOOST_REQUIRE_EQUAL(rng::random_byte(seed, stream, e), (rng::random_u32(seed, stream, e / 4) >> (8 * (e % 4))) & 0xFFu);
  BOOST_CHECK_EQUAL(rng::u24_threshold(0.0f), 0u);
  BOOST_CHECK_EQUAL(rng::u24_threshold(-1.0f), 0u);
  BOOST_CHECK_EQUAL(rng::u24_threshold(std::numeric_limits<float>::quiet_NaN()), 0u);
  BOOST_CHECK_EQUAL(rng::u24_threshold(1.0f), 1u << 24);
  BOOST_CHECK_EQUAL(rng::u24_threshold(0.5f), 1u << 23);
  BOOST_CHECK_EQUAL(rng::u24_threshold(0.5f + 1.0f / 16777216.0f), (1u << 23) + 1);
  BOOST_CHECK_EQUAL(rng::u24_threshold(1e-7f), 2u); // 1e-7 · 2^24 = 1.68 -> 2
  const std::int64_t n = 1 << 20;
  for (const std::uint32_t T : {0u, 1u, 100u << 16, (100u << 16) + 0x8000u, (200u << 16) + 1u, (1u << 24) - 1, 1u << 24}) {
    std::int64_t ones = 0, refined = 0, refined_ones = 0, wrong = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      const auto e = static_cast<std::uint64_t>(i);
      const std::uint32_t b = rng::random_byte(seed, stream, e);
      const std::uint32_t m = (b << 16) | (rng::random_u32(seed, stream, rng::refine_index + e) >> 16);
      const bool got = rng::bernoulli_u24(seed, stream, e, T);
      wrong += got != (m < T) ? 1 : 0;
      ones += got ? 1 : 0;
      if (b == (T >> 16)) {
        ++refined;
        refined_ones += got ? 1 : 0;
      }
    }
    BOOST_CHECK_EQUAL(wrong, 0);
    const double p = static_cast<double>(T) / 16777216.0, sd = std::sqrt(p * (1 - p) / n);
    BOOST_CHECK_MESSAGE(std::abs(static_cast<double>(ones) / n - p) <= 5 * sd + 1e-12,
                        "T=" << T << ": frequency " << static_cast<double>(ones) / n << " vs " << p);
    if (T == (100u << 16) + 0x8000u) { // half the refinements keep
      BOOST_CHECK_GT(refined, 3000);
      BOOST_CHECK_SMALL(static_cast<double>(refined_ones) / static_cast<double>(refined) - 0.5, 0.05);
    }
  }
  BOOST_CHECK(rng::bernoulli(seed, stream, 3, 1.0f));
  BOOST_CHECK(!rng::bernoulli(seed, stream, 3, 0.0f));
}

BOOST_AUTO_TEST_CASE(streams_and_seeds_differ_and_threads_do_not_matter) {
  BOOST_CHECK_NE(rng::stream_id("a.weight"), rng::stream_id("b.weight"));
  BOOST_CHECK_NE(rng::random_u32(1, 5, 9), rng::random_u32(2, 5, 9));
  BOOST_CHECK_NE(rng::random_u32(1, 5, 9), rng::random_u32(1, 6, 9));
  const std::int64_t n = 100'003;
  auto draw = [&](const auto& pol) {
    std::vector<float> v(static_cast<std::size_t>(n));
    exec::for_each_n(pol, n, [&](std::int64_t i) { v[static_cast<std::size_t>(i)] = rng::uniform01(99, 3, static_cast<std::uint64_t>(i)); });
    return v;
  };
  const auto a = draw(exec::seq);
  BOOST_CHECK(a == draw(exec::parallel_policy{.threads = 2}));
  BOOST_CHECK(a == draw(exec::parallel_policy{.threads = 5}));
  // Processing order does not matter either: reverse order gives the same values.
  std::vector<float> rev(static_cast<std::size_t>(n));
  for (std::int64_t i = n; i-- > 0;)
    rev[static_cast<std::size_t>(i)] = rng::uniform01(99, 3, static_cast<std::uint64_t>(i));
  BOOST_CHECK(a == rev);
}

BOOST_AUTO_TEST_SUITE_END()
