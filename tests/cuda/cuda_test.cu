// GPU tests of cuda_policy (primitives) and the CUDA paths of linear / task_arithmetic. Label `cuda`; the main
// skips them (exit 77) without a device. Every merge is compared with exec::seq on the host bit for bit.
#include <boost/test/unit_test.hpp>

#include <array>
#include <cstdint>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include <thrust/device_vector.h>
#include <thrust/equal.h>
#include <thrust/execution_policy.h>
#include <thrust/host_vector.h>
#include <thrust/universal_vector.h>

#include <fusekit/adapt/thrust.hpp>
#include <fusekit/cuda.cuh>
#include <fusekit/merge/linear.hpp>
#include <fusekit/merge/task_arithmetic.hpp>

using namespace fusekit;

static_assert(exec::execution_policy<exec::cuda_policy>);
static_assert(exec::runs_on<exec::cuda_policy, strided_view<float, 2, device_space>>);
static_assert(exec::runs_on<exec::cuda_policy, strided_view<bf16, 1, managed_space>>);
static_assert(!exec::runs_on<exec::cuda_policy, strided_view<float, 1, host_space>>);
// Thrust's CUDA system: device_vector views and thrust_policy{thrust::device} live in device memory.
static_assert(std::is_same_v<view_t<thrust::device_vector<float>&>, strided_view<float, 1, device_space>>);
static_assert(std::is_same_v<view_t<thrust::universal_vector<bf16>&>, strided_view<bf16, 1, managed_space>>);
static_assert(
    std::is_same_v<exec::thrust_policy<std::remove_cvref_t<decltype(thrust::device)>>::space_type, device_space>);
static_assert(exec::cuda_thrust_policy<exec::thrust_policy<std::remove_cvref_t<decltype(thrust::device)>>>);
static_assert(element<__nv_bfloat16> && element<__half> && std::is_same_v<compute_t<__nv_bfloat16>, float>);

namespace {

// Device buffer owning `n` elements of T.
template <class T> struct device_buffer {
  T* p = nullptr;
  std::size_t n = 0;
  explicit device_buffer(std::size_t count) : n(count) {
    detail::cuda_check(cudaMalloc(reinterpret_cast<void**>(&p), n * sizeof(T) + 1), "test cudaMalloc");
  }
  explicit device_buffer(const std::vector<T>& h) : device_buffer(h.size()) { upload(h); }
  ~device_buffer() { cudaFree(p); }
  device_buffer(const device_buffer&) = delete;
  device_buffer& operator=(const device_buffer&) = delete;
  void upload(const std::vector<T>& h) {
    detail::cuda_check(cudaMemcpy(p, h.data(), n * sizeof(T), cudaMemcpyHostToDevice), "test upload");
  }
  std::vector<T> download() const {
    std::vector<T> h(n);
    detail::cuda_check(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost), "test download");
    return h;
  }
};

template <class T> std::vector<T> random_vector(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d;
  std::vector<T> v(n);
  for (auto& x : v)
    x = from_compute<T>(d(gen));
  return v;
}

template <class T> bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

struct write_twice {
  std::int64_t* out;
  FUSEKIT_HOST_DEVICE void operator()(std::int64_t i) const { out[i] = 2 * i; }
};
struct mark_block {
  int* hits;
  FUSEKIT_HOST_DEVICE void operator()(std::int64_t b, std::int64_t e) const {
    for (std::int64_t i = b; i < e; ++i)
      hits[i] += 1;
  }
};
struct plus_i64 {
  FUSEKIT_HOST_DEVICE std::int64_t operator()(std::int64_t a, std::int64_t b) const { return a + b; }
};
struct plus_f {
  FUSEKIT_HOST_DEVICE float operator()(float a, float b) const { return a + b; }
};
struct identity_i64 {
  FUSEKIT_HOST_DEVICE std::int64_t operator()(std::int64_t i) const { return i; }
};
struct read_f {
  const float* x;
  FUSEKIT_HOST_DEVICE float operator()(std::int64_t i) const { return x[i]; }
};
struct row_bounds {
  std::int64_t cols;
  FUSEKIT_HOST_DEVICE std::pair<std::int64_t, std::int64_t> operator()(std::int64_t s) const {
    return {s * cols, (s + 1) * cols};
  }
};
struct read_2d {
  const float* x;
  FUSEKIT_HOST_DEVICE float operator()(std::int64_t, std::int64_t i) const { return x[i]; }
};
struct store_row {
  float* out;
  FUSEKIT_HOST_DEVICE void operator()(std::int64_t s, float v) const { out[s] = v; }
};

} // namespace

BOOST_AUTO_TEST_SUITE(cuda_primitives)

BOOST_AUTO_TEST_CASE(for_each_n_and_blocks) {
  const exec::cuda_policy pol{};
  const std::int64_t n = 1'000'003;
  device_buffer<std::int64_t> out(n);
  exec::for_each_n(pol, n, write_twice{out.p});
  device_buffer<int> hits(std::vector<int>(n, 0));
  exec::for_each_block(pol, n, 1000, mark_block{hits.p});
  pol.synchronize();
  const auto h = out.download();
  for (std::int64_t i = 0; i < n; i += 997)
    BOOST_REQUIRE_EQUAL(h[i], 2 * i);
  const auto hh = hits.download();
  BOOST_CHECK(std::all_of(hh.begin(), hh.end(), [](int x) { return x == 1; }));
  BOOST_CHECK_GE(pol.concurrency(), 1);
}

BOOST_AUTO_TEST_CASE(transform_reduce_exact_for_integers_deterministic_for_floats) {
  const exec::cuda_policy pol{};
  const std::int64_t n = 3'000'017;
  BOOST_CHECK_EQUAL(exec::transform_reduce(pol, n, std::int64_t{5}, plus_i64{}, identity_i64{}), 5 + n * (n - 1) / 2);
  const auto x = random_vector<float>(static_cast<std::size_t>(n), 9);
  device_buffer<float> dx(x);
  const float a = exec::transform_reduce(pol, n, 0.0f, plus_f{}, read_f{dx.p});
  const float b = exec::transform_reduce(pol, n, 0.0f, plus_f{}, read_f{dx.p});
  BOOST_CHECK_EQUAL(std::bit_cast<std::uint32_t>(a), std::bit_cast<std::uint32_t>(b));
  double ref = 0;
  for (float v : x)
    ref += v;
  BOOST_CHECK_SMALL(a - static_cast<float>(ref), 0.05f);
  BOOST_CHECK_EQUAL(exec::transform_reduce(pol, 0, 1.5f, plus_f{}, read_f{dx.p}), 1.5f);
}

BOOST_AUTO_TEST_CASE(segmented_reduce_rows_match_host_order) {
  const exec::cuda_policy pol{};
  const std::int64_t rows = 513, cols = 77;
  const auto x = random_vector<float>(static_cast<std::size_t>(rows * cols), 4);
  device_buffer<float> dx(x), dout(static_cast<std::size_t>(rows));
  exec::segmented_transform_reduce(pol, rows, row_bounds{cols}, 0.0f, plus_f{}, read_2d{dx.p}, store_row{dout.p});
  const auto got = dout.download();
  for (std::int64_t r = 0; r < rows; ++r) {
    float acc = 0.0f;
    for (std::int64_t c = 0; c < cols; ++c)
      acc += x[static_cast<std::size_t>(r * cols + c)];
    BOOST_REQUIRE_EQUAL(std::bit_cast<std::uint32_t>(got[static_cast<std::size_t>(r)]),
                        std::bit_cast<std::uint32_t>(acc));
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(cuda_merge)

// linear and task_arithmetic on device views equal exec::seq on host copies, bit for bit.
template <class T> void merges_match_host(std::int64_t rows, std::int64_t cols, bool strided_out) {
  const std::size_t n = static_cast<std::size_t>(rows * cols);
  const auto hb = random_vector<T>(n, 1);
  std::vector<std::vector<T>> hx;
  for (unsigned k = 0; k < 3; ++k)
    hx.push_back(random_vector<T>(n, 20 + k));
  device_buffer<T> db(hb), d0(hx[0]), d1(hx[1]), d2(hx[2]);
  const std::array<std::int64_t, 2> ext{rows, cols};
  // Strided output: the transposed layout inside a padded buffer.
  const std::array<std::int64_t, 2> ostr =
      strided_out ? std::array<std::int64_t, 2>{1, rows + 3} : std::array<std::int64_t, 2>{cols, 1};
  const std::size_t out_elems = strided_out ? static_cast<std::size_t>((rows + 3) * cols) : n;
  std::vector<T> sentinel(out_elems, from_compute<T>(-7.0f));
  device_buffer<T> dout(sentinel);
  const float w[] = {0.5f, 1.25f, -0.3f};
  const T* dptr[] = {d0.p, d1.p, d2.p};
  const T* hptr[] = {hx[0].data(), hx[1].data(), hx[2].data()};
  std::vector<merge_input<strided_view<const T, 2, device_space>>> din;
  std::vector<merge_input<strided_view<const T, 2, host_space>>> hin;
  for (int k = 0; k < 3; ++k) {
    din.push_back({.tensor = device_view(dptr[k], ext), .weight = w[k]});
    hin.push_back({.tensor = host_view(hptr[k], ext), .weight = w[k]});
  }
  std::vector<T> href = sentinel;
  const exec::cuda_policy pol{};

  merge(pol, linear{}, device_view(dout.p, ext, ostr), no_base, din, {.tensor_name = "w"});
  merge(exec::seq, linear{}, host_view(href.data(), ext, ostr), no_base, hin);
  pol.synchronize();
  BOOST_CHECK(same_bits(dout.download(), href));

  const task_arithmetic ta{.lambda = 0.7f, .normalize = true};
  merge(pol, ta, device_view(dout.p, ext, ostr), device_view(static_cast<const T*>(db.p), ext), din);
  merge(exec::seq, ta, host_view(href.data(), ext, ostr), host_view(hb.data(), ext), hin);
  pol.synchronize();
  BOOST_CHECK(same_bits(dout.download(), href));
}
BOOST_AUTO_TEST_CASE(float_contiguous) { merges_match_host<float>(129, 1031, false); }
BOOST_AUTO_TEST_CASE(float_strided) { merges_match_host<float>(37, 53, true); }
BOOST_AUTO_TEST_CASE(bf16_contiguous) { merges_match_host<bf16>(257, 515, false); }
BOOST_AUTO_TEST_CASE(bf16_strided) { merges_match_host<bf16>(37, 53, true); }
BOOST_AUTO_TEST_CASE(fp16_contiguous) { merges_match_host<fp16>(3, 100'003, false); }
BOOST_AUTO_TEST_CASE(fp16_strided) { merges_match_host<fp16>(41, 29, true); }

BOOST_AUTO_TEST_CASE(cuda_bfloat16_storage_equals_fusekit_bf16) {
  const std::size_t n = 10'001;
  const auto a = random_vector<bf16>(n, 2), b = random_vector<bf16>(n, 3);
  std::vector<__nv_bfloat16> na(n), nb(n);
  for (std::size_t i = 0; i < n; ++i) {
    na[i] = element_traits<__nv_bfloat16>::from_fusekit(a[i]);
    nb[i] = element_traits<__nv_bfloat16>::from_fusekit(b[i]);
  }
  device_buffer<__nv_bfloat16> da(na), db(nb), dout(n);
  std::array<merge_input<vector_view<const __nv_bfloat16, device_space>>, 2> in{
      {{.tensor = device_view(static_cast<const __nv_bfloat16*>(da.p), static_cast<std::int64_t>(n)), .weight = 3.f},
       {.tensor = device_view(static_cast<const __nv_bfloat16*>(db.p), static_cast<std::int64_t>(n)), .weight = 1.f}}};
  const exec::cuda_policy pol{};
  merge(pol, linear{}, device_view(dout.p, static_cast<std::int64_t>(n)), no_base, in);
  std::vector<bf16> ref(n);
  std::array<merge_input<vector_view<const bf16>>, 2> hin{
      {{.tensor = host_view(a.data(), static_cast<std::int64_t>(n)), .weight = 3.f},
       {.tensor = host_view(b.data(), static_cast<std::int64_t>(n)), .weight = 1.f}}};
  merge(exec::seq, linear{}, host_view(ref.data(), static_cast<std::int64_t>(n)), no_base, hin);
  const auto got = dout.download();
  for (std::size_t i = 0; i < n; ++i)
    BOOST_REQUIRE_EQUAL(element_traits<__nv_bfloat16>::to_fusekit(got[i]).bits, ref[i].bits);
}

BOOST_AUTO_TEST_CASE(thrust_cuda_system_routes_to_the_cuda_kernels) {
  const std::size_t n = 70'001;
  const auto h0 = random_vector<float>(n, 5), h1 = random_vector<float>(n, 6), hb = random_vector<float>(n, 7);
  thrust::device_vector<float> x0(h0.begin(), h0.end()), x1(h1.begin(), h1.end()), b(hb.begin(), hb.end());
  thrust::device_vector<float> out(n), ref(n);
  std::vector<merge_input<view_t<const thrust::device_vector<float>&>>> in{
      {.tensor = as_view(std::as_const(x0)), .weight = 0.25f}, {.tensor = as_view(std::as_const(x1)), .weight = 2.f}};
  cudaStream_t s = nullptr;
  detail::cuda_check(cudaStreamCreate(&s), "test stream");
  merge(exec::thrust_policy{thrust::cuda::par.on(s)}, task_arithmetic{}, out, std::as_const(b), in);
  merge(exec::cuda_policy{.stream = s}, task_arithmetic{}, ref, std::as_const(b), in);
  BOOST_CHECK(exec::to_cuda_policy(exec::thrust_policy{thrust::cuda::par.on(s)}).stream == s);
  detail::cuda_check(cudaStreamSynchronize(s), "test sync");
  BOOST_CHECK(thrust::equal(out.begin(), out.end(), ref.begin()));
  merge(exec::thrust_policy{thrust::device}, linear{}, out, no_base, in);
  // The primitives of a CUDA thrust_policy take device functors.
  const exec::thrust_policy pol{thrust::device};
  BOOST_CHECK_EQUAL(exec::transform_reduce(pol, 1000, std::int64_t{0}, plus_i64{}, identity_i64{}), 499500);
  const thrust::host_vector<float> hout = out;
  BOOST_CHECK_CLOSE(hout[17], (0.25f * h0[17] + 2.f * h1[17]) / 2.25f, 1e-4);
  cudaStreamDestroy(s);
}

BOOST_AUTO_TEST_CASE(errors_are_fusekit_errors) {
  device_buffer<float> a(12), out(10);
  std::vector<merge_input<vector_view<float, device_space>>> in{{.tensor = device_view(a.p, 12)}};
  BOOST_CHECK_EXCEPTION(
      merge(exec::cuda_policy{}, linear{}, device_view(out.p, 10), no_base, in, {.tensor_name = "layer.0"}), error,
      [](const error& e) {
        return e.code() == errc::shape_mismatch && std::string(e.what()).find("layer.0") != std::string::npos;
      });
  BOOST_CHECK_EXCEPTION(detail::cuda_check(cudaErrorInvalidValue, "test"), cuda_error, [](const cuda_error& e) {
    return e.code() == errc::invalid_argument && e.status() == cudaErrorInvalidValue &&
           std::string(e.what()).find("cudaErrorInvalidValue") != std::string::npos;
  });
}

BOOST_AUTO_TEST_SUITE_END()
