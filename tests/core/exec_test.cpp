// Policies and primitives: for_each_n, for_each_block, deterministic transform_reduce, segmented
// reductions, exact k-th selection and top-k with lowest-index tie order.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include <fusekit/exec/primitives.hpp>
#include <fusekit/exec/select.hpp>

using namespace fusekit;

BOOST_AUTO_TEST_SUITE(exec_primitives)

BOOST_AUTO_TEST_CASE(par_reports_fallback) {
#if FUSEKIT_HAS_OPENMP
  BOOST_CHECK(exec::parallel_policy::is_parallel);
#else
  BOOST_CHECK(!exec::parallel_policy::is_parallel);
#endif
  BOOST_CHECK_EQUAL(exec::seq.concurrency(), 1);
  BOOST_CHECK_GE(exec::par.concurrency(), 1);
}

BOOST_AUTO_TEST_CASE(for_each_covers_every_index_once) {
  for (std::int64_t n : {0, 1, 7, 4097, 100003}) {
    std::vector<int> hits(static_cast<std::size_t>(n));
    exec::for_each_n(exec::par, n, [&](std::int64_t i) { hits[static_cast<std::size_t>(i)] += 1; });
    BOOST_CHECK(std::all_of(hits.begin(), hits.end(), [](int h) { return h == 1; }));
    std::vector<int> bh(static_cast<std::size_t>(n));
    exec::for_each_block(exec::par, n, 1000, [&](std::int64_t b, std::int64_t e) {
      BOOST_REQUIRE(e - b <= 1000 && b < e);
      for (auto i = b; i < e; ++i)
        bh[static_cast<std::size_t>(i)] += 1;
    });
    BOOST_CHECK(bh == hits);
  }
}

BOOST_AUTO_TEST_CASE(transform_reduce_is_thread_count_independent) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> x(1'000'003);
  for (auto& v : x)
    v = u(rng) * 1e3f;
  auto sum = [&](const auto& pol) {
    return exec::transform_reduce(pol, static_cast<std::int64_t>(x.size()), 0.0f, std::plus<>{},
                                  [&](std::int64_t i) { return x[static_cast<std::size_t>(i)]; });
  };
  const float s1 = sum(exec::seq);
  BOOST_CHECK_EQUAL(s1, sum(exec::par));
  BOOST_CHECK_EQUAL(s1, sum(exec::parallel_policy{.threads = 2}));
  BOOST_CHECK_EQUAL(s1, sum(exec::parallel_policy{.threads = 3}));
  BOOST_CHECK_EQUAL(s1, sum(exec::parallel_policy{.threads = 7}));
  double ref = 0;
  for (float v : x)
    ref += v;
  BOOST_CHECK_SMALL(static_cast<double>(s1) - ref, 5.0); // fp32 accumulation of 1e6 terms of size 1e3
  BOOST_CHECK_EQUAL(exec::transform_reduce(exec::par, 0, 5, std::plus<>{}, [](std::int64_t) { return 1; }), 5);
}

BOOST_AUTO_TEST_CASE(segmented_reduce_rows) {
  std::vector<std::int64_t> off{0, 3, 3, 10};
  std::vector<long> out(3, -1);
  exec::segmented_transform_reduce(
      exec::par, 3, [&](std::int64_t s) { return std::pair{off[s], off[s + 1]}; }, 0L, std::plus<>{},
      [](std::int64_t, std::int64_t i) { return static_cast<long>(i); },
      [&](std::int64_t s, long v) { out[static_cast<std::size_t>(s)] = v; });
  BOOST_CHECK_EQUAL(out[0], 0 + 1 + 2);
  BOOST_CHECK_EQUAL(out[1], 0);
  BOOST_CHECK_EQUAL(out[2], 3 + 4 + 5 + 6 + 7 + 8 + 9);
}

BOOST_AUTO_TEST_CASE(select_kth_matches_sort) {
  std::mt19937 rng(11);
  for (std::int64_t n : {1, 2, 5, 1000, 70001}) {
    for (int trial = 0; trial < 3; ++trial) {
      std::vector<std::uint32_t> keys(static_cast<std::size_t>(n));
      for (auto& k : keys)
        k = trial == 0 ? static_cast<std::uint32_t>(rng()) : static_cast<std::uint32_t>(rng() % 7) << (trial * 8);
      std::vector<std::uint32_t> sorted = keys;
      std::sort(sorted.begin(), sorted.end(), std::greater<>{});
      for (std::int64_t k : {std::int64_t{1}, n / 3 + 1, n}) {
        const auto r = exec::select_kth_largest(exec::par, n, k, [&](std::int64_t i) { return keys[i]; });
        BOOST_REQUIRE_EQUAL(r.key, sorted[static_cast<std::size_t>(k - 1)]);
        BOOST_REQUIRE_EQUAL(r.greater, std::count_if(keys.begin(), keys.end(), [&](auto v) { return v > r.key; }));
        BOOST_REQUIRE_EQUAL(r.equal, std::count(keys.begin(), keys.end(), r.key));
      }
    }
  }
  BOOST_CHECK_THROW((void)exec::select_kth_largest(exec::seq, 3, 0, [](std::int64_t) { return 1u; }), fusekit::error);
}

BOOST_AUTO_TEST_CASE(top_k_keeps_exactly_k_lowest_index_ties) {
  std::mt19937 rng(5);
  const std::int64_t n = 50'001;
  std::vector<float> x(static_cast<std::size_t>(n));
  for (auto& v : x)
    v = static_cast<float>(static_cast<int>(rng() % 9) - 4); // heavy ties
  auto key = [&](std::int64_t i) { return exec::magnitude_key(x[static_cast<std::size_t>(i)]); };
  for (std::int64_t k : {std::int64_t{0}, std::int64_t{1}, std::int64_t{12345}, n - 1, n}) {
    std::vector<char> kept_seq, kept_par;
    for (int threads : {1, 2, 5}) {
      const exec::parallel_policy pol{threads};
      const auto sel = exec::make_top_k(pol, n, k, key);
      std::vector<char> kept(static_cast<std::size_t>(n));
      sel.for_each_chunk(pol, [&](std::int64_t b, std::int64_t e, std::int64_t ties) {
        for (auto i = b; i < e; ++i)
          kept[static_cast<std::size_t>(i)] = sel.keep(key(i), ties);
      });
      BOOST_REQUIRE_EQUAL(std::count(kept.begin(), kept.end(), 1), k);
      if (kept_seq.empty())
        kept_seq = kept;
      BOOST_REQUIRE(kept == kept_seq);
    }
    // Reference: stable sort by descending magnitude, keep the first k indices.
    std::vector<std::int64_t> idx(static_cast<std::size_t>(n));
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](auto a, auto b) { return std::abs(x[a]) > std::abs(x[b]); });
    std::vector<char> ref(static_cast<std::size_t>(n));
    for (std::int64_t j = 0; j < k; ++j)
      ref[static_cast<std::size_t>(idx[static_cast<std::size_t>(j)])] = 1;
    BOOST_REQUIRE(ref == kept_seq);
  }
}

BOOST_AUTO_TEST_CASE(float_order_key_orders_floats) {
  const float v[] = {-INFINITY, -3.5f, -1e-40f, -0.0f, 0.0f, 1e-40f, 2.0f, INFINITY};
  for (std::size_t i = 0; i + 1 < std::size(v); ++i)
    BOOST_CHECK_LT(exec::float_order_key(v[i]), exec::float_order_key(v[i + 1]));
}

BOOST_AUTO_TEST_SUITE_END()
