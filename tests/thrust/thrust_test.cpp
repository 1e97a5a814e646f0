// Thrust adaptor and thrust_policy. Built with THRUST_DEVICE_SYSTEM=OMP by g++ (label thrust-omp): a
// thrust::device_vector then lives in host memory and the whole Thrust path runs on OpenMP threads.
// Results must be bit-identical to exec::seq (same per-element rules, same deterministic reduction).
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include <omp.h>

#include <thrust/device_vector.h>
#include <thrust/execution_policy.h>
#include <thrust/host_vector.h>
#include <thrust/universal_vector.h>

#include <fusekit/adapt/thrust.hpp>
#include <fusekit/exec/primitives.hpp>
#include <fusekit/exec/select.hpp>
#include <fusekit/merge/linear.hpp>
#include <fusekit/merge/task_arithmetic.hpp>

#if THRUST_DEVICE_SYSTEM != THRUST_DEVICE_SYSTEM_OMP
#error "tests/thrust/thrust_test.cpp is the CPU build of the Thrust tests: compile it with THRUST_DEVICE_SYSTEM=OMP"
#endif

using namespace fusekit;

using device_policy = exec::thrust_policy<std::remove_cvref_t<decltype(thrust::device)>>;
using host_policy = exec::thrust_policy<std::remove_cvref_t<decltype(thrust::host)>>;
using seq_policy = exec::thrust_policy<std::remove_cvref_t<decltype(thrust::seq)>>;

// The space follows the Thrust system: with the OMP device system everything is host memory.
static_assert(std::is_same_v<view_t<thrust::device_vector<float>&>, strided_view<float, 1, host_space>>);
static_assert(std::is_same_v<view_t<const thrust::device_vector<bf16>&>, strided_view<const bf16, 1, host_space>>);
static_assert(std::is_same_v<view_t<thrust::host_vector<fp16>&>, strided_view<fp16, 1, host_space>>);
static_assert(std::is_same_v<view_t<thrust::universal_vector<float>&>, strided_view<float, 1, host_space>>);
static_assert(std::is_same_v<device_policy::space_type, host_space> && device_policy::is_parallel);
static_assert(std::is_same_v<host_policy::space_type, host_space> && !host_policy::is_parallel);
static_assert(!seq_policy::is_parallel);
static_assert(exec::execution_policy<device_policy> && exec::runs_on<device_policy, strided_view<float, 2>>);
static_assert(!exec::runs_on<device_policy, strided_view<float, 1, device_space>>);
static_assert(std::is_same_v<decltype(thrust_view(thrust::device_ptr<float>{}, 3)), vector_view<float, host_space>>);

BOOST_AUTO_TEST_SUITE(thrust_omp)

BOOST_AUTO_TEST_CASE(policy_reports_openmp_threads) {
  const exec::thrust_policy pol{thrust::device};
  static_assert(std::is_same_v<decltype(pol), const device_policy>);
  BOOST_TEST_MESSAGE("thrust_policy{thrust::device} concurrency = " << pol.concurrency());
  BOOST_CHECK_EQUAL(pol.concurrency(), omp_get_max_threads());
  BOOST_CHECK_EQUAL(exec::thrust_policy{thrust::seq}.concurrency(), 1);
}

BOOST_AUTO_TEST_CASE(for_each_n_and_blocks_cover_every_index_once) {
  const exec::thrust_policy pol{thrust::device};
  const std::int64_t n = 100'003;
  std::vector<int> hits(n, 0);
  exec::for_each_n(pol, n, [&](std::int64_t i) { ++hits[static_cast<std::size_t>(i)]; });
  BOOST_CHECK(std::all_of(hits.begin(), hits.end(), [](int h) { return h == 1; }));
  std::vector<int> blocks(n, 0);
  exec::for_each_block(pol, n, 4096, [&](std::int64_t b, std::int64_t e) {
    BOOST_REQUIRE_LE(e - b, 4096);
    for (std::int64_t i = b; i < e; ++i)
      ++blocks[static_cast<std::size_t>(i)];
  });
  BOOST_CHECK(std::all_of(blocks.begin(), blocks.end(), [](int h) { return h == 1; }));
  exec::for_each_n(pol, 0, [&](std::int64_t) { BOOST_FAIL("called for n = 0"); });
}

BOOST_AUTO_TEST_CASE(transform_reduce_is_bit_identical_to_seq) {
  const std::int64_t n = 1'234'567;
  std::vector<float> x(n);
  std::mt19937 gen(11);
  std::normal_distribution<float> d;
  for (auto& v : x)
    v = d(gen);
  auto t = [&](std::int64_t i) { return x[static_cast<std::size_t>(i)]; };
  auto plus = [](float a, float b) { return a + b; };
  const float ref = exec::transform_reduce(exec::seq, n, 0.0f, plus, t);
  const float got = exec::transform_reduce(exec::thrust_policy{thrust::device}, n, 0.0f, plus, t);
  const float got1 = exec::transform_reduce(exec::thrust_policy{thrust::seq}, n, 0.0f, plus, t);
  BOOST_CHECK_EQUAL(std::bit_cast<std::uint32_t>(got), std::bit_cast<std::uint32_t>(ref));
  BOOST_CHECK_EQUAL(std::bit_cast<std::uint32_t>(got1), std::bit_cast<std::uint32_t>(ref));
  // Integer reduction through the same path.
  const std::int64_t isum = exec::transform_reduce(
      exec::thrust_policy{thrust::device}, n, std::int64_t{0}, [](std::int64_t a, std::int64_t b) { return a + b; },
      [](std::int64_t i) { return i; });
  BOOST_CHECK_EQUAL(isum, n * (n - 1) / 2);
}

BOOST_AUTO_TEST_CASE(select_kth_through_thrust_policy) {
  const std::int64_t n = 50'001;
  std::vector<float> x(n);
  std::mt19937 gen(5);
  std::uniform_real_distribution<float> d(-1, 1);
  for (auto& v : x)
    v = d(gen);
  auto key = [&](std::int64_t i) { return exec::float_order_key(x[static_cast<std::size_t>(i)]); };
  const auto a = exec::select_kth_largest(exec::thrust_policy{thrust::device}, n, 777, key);
  const auto b = exec::select_kth_largest(exec::seq, n, 777, key);
  BOOST_CHECK_EQUAL(a.key, b.key);
  BOOST_CHECK_EQUAL(a.greater, b.greater);
}

BOOST_AUTO_TEST_CASE(vector_adaptors) {
  thrust::device_vector<float> dv(5, 2.0f);
  thrust::host_vector<double> hv(4, 1.5);
  thrust::universal_vector<int> uv(3, 7);
  auto a = as_view(dv);
  auto b = as_view(hv);
  auto c = as_view(uv);
  BOOST_CHECK_EQUAL(a.size(), 5);
  BOOST_CHECK_EQUAL(a.data(), thrust::raw_pointer_cast(dv.data()));
  BOOST_CHECK(a.is_contiguous());
  BOOST_CHECK_EQUAL(b[3], 1.5);
  BOOST_CHECK_EQUAL(c[2], 7);
  auto m = thrust_view(dv.data(), std::array<std::int64_t, 2>{2, 2}, std::array<std::int64_t, 2>{1, 2});
  BOOST_CHECK(!m.is_contiguous());
  BOOST_CHECK_EQUAL(&m(1, 1), thrust::raw_pointer_cast(dv.data()) + 3);
}

template <class T> thrust::device_vector<T> random_device_vector(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d;
  thrust::host_vector<T> h(n);
  for (auto& v : h)
    v = from_compute<T>(d(gen));
  return h; // host -> device copy through Thrust
}

template <class T> bool same_bits(const thrust::device_vector<T>& a, const thrust::device_vector<T>& b) {
  const thrust::host_vector<T> ha = a, hb = b;
  return std::memcmp(ha.data(), hb.data(), ha.size() * sizeof(T)) == 0;
}

// linear and task_arithmetic through thrust_policy{thrust::device} on device_vectors equal exec::seq, bit for bit.
template <class T> void merges_match_seq() {
  const std::size_t n = 300'001; // odd, several blocks
  auto base = random_device_vector<T>(n, 1);
  std::vector<thrust::device_vector<T>> models;
  for (unsigned k = 0; k < 3; ++k)
    models.push_back(random_device_vector<T>(n, 10 + k));
  std::vector<merge_input<view_t<const thrust::device_vector<T>&>>> in;
  const float w[] = {0.5f, 1.25f, -0.3f};
  for (unsigned k = 0; k < 3; ++k)
    in.push_back({.tensor = as_view(std::as_const(models[k])), .weight = w[k]});

  thrust::device_vector<T> out(n), ref(n);
  merge(exec::thrust_policy{thrust::device}, linear{}, out, no_base, in);
  merge(exec::seq, linear{}, ref, no_base, in);
  BOOST_CHECK(same_bits(out, ref));
  merge(exec::thrust_policy{thrust::device}, task_arithmetic{.lambda = 0.7f}, out, std::as_const(base), in);
  merge(exec::seq, task_arithmetic{.lambda = 0.7f}, ref, std::as_const(base), in);
  BOOST_CHECK(same_bits(out, ref));
  // Spot-check the value against the formula in float.
  const thrust::host_vector<T> h = out, hb = base;
  const thrust::host_vector<T> h0 = models[0], h1 = models[1], h2 = models[2];
  for (std::size_t i = 0; i < n; i += 9973) {
    const float b = to_compute(hb[i]);
    const float expect =
        b + 0.7f * (0.5f * (to_compute(h0[i]) - b) + 1.25f * (to_compute(h1[i]) - b) - 0.3f * (to_compute(h2[i]) - b));
    BOOST_CHECK_SMALL(to_compute(h[i]) - expect, sizeof(T) == 2 ? 0.05f : 1e-5f);
  }
}
BOOST_AUTO_TEST_CASE(merges_float) { merges_match_seq<float>(); }
BOOST_AUTO_TEST_CASE(merges_bf16) { merges_match_seq<bf16>(); }
BOOST_AUTO_TEST_CASE(merges_fp16) { merges_match_seq<fp16>(); }

BOOST_AUTO_TEST_CASE(merge_into_non_contiguous_view_of_device_vector) {
  const std::int64_t rows = 33, cols = 21;
  auto a = random_device_vector<float>(rows * cols, 3), b = random_device_vector<float>(rows * cols, 4);
  // The output is the transpose layout inside a padded buffer: strides {1, rows + 2}.
  thrust::device_vector<float> buf((rows + 2) * cols, -99.0f), ref_buf = buf;
  const std::array<std::int64_t, 2> ext{rows, cols}, str{1, rows + 2};
  auto out = thrust_view(buf.data(), ext, str);
  auto ref = thrust_view(ref_buf.data(), ext, str);
  std::array<merge_input<strided_view<const float, 2>>, 2> in{
      {{.tensor = thrust_view(thrust::device_ptr<const float>(a.data()), ext), .weight = 1.0f},
       {.tensor = thrust_view(thrust::device_ptr<const float>(b.data()), ext), .weight = 3.0f}}};
  merge(exec::thrust_policy{thrust::device}, linear{}, out, no_base, in);
  merge(exec::seq, linear{}, ref, no_base, in);
  BOOST_CHECK(same_bits(buf, ref_buf));
  const thrust::host_vector<float> h = buf, ha = a, hb = b;
  BOOST_CHECK_EQUAL(h[static_cast<std::size_t>(rows)], -99.0f); // padding untouched
  BOOST_CHECK_CLOSE(
      h[static_cast<std::size_t>(1 + 2 * (rows + 2))],
      (ha[static_cast<std::size_t>(1 * cols + 2)] + 3.0f * hb[static_cast<std::size_t>(1 * cols + 2)]) / 4.0f, 1e-4);
}

BOOST_AUTO_TEST_SUITE_END()
