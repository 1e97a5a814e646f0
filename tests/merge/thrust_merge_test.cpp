// The multi-pass merge methods (top-k selections, random and DELLA masks, SCE, VaRM) through
// exec::thrust_policy{thrust::device} with THRUST_DEVICE_SYSTEM=OMP (label thrust-omp): device_vectors live in
// host memory and the Thrust path runs on OpenMP threads. Results must be bit-identical to exec::seq (the
// blocked loops, per-block reductions and counter-based masks do not depend on the policy or thread count).
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <thrust/device_vector.h>
#include <thrust/execution_policy.h>
#include <thrust/host_vector.h>

#include <fusekit/adapt/thrust.hpp>
#include <fusekit/merge.hpp>

#if THRUST_DEVICE_SYSTEM != THRUST_DEVICE_SYSTEM_OMP
#error "tests/merge/thrust_merge_test.cpp is a CPU build: compile it with THRUST_DEVICE_SYSTEM=OMP"
#endif

using namespace fusekit;

namespace {

template <class T> thrust::device_vector<T> random_device_vector(std::size_t n, unsigned seed, float scale, const thrust::host_vector<T>* add = nullptr) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.0f, scale);
  thrust::host_vector<T> h(n);
  for (std::size_t i = 0; i < n; ++i)
    h[i] = from_compute<T>(d(gen) + (add ? to_compute((*add)[i]) : 0.0f));
  return h;
}

template <class T> bool same_bits(const thrust::device_vector<T>& a, const thrust::device_vector<T>& b) {
  const thrust::host_vector<T> ha = a, hb = b;
  return std::memcmp(ha.data(), hb.data(), ha.size() * sizeof(T)) == 0;
}

template <class T> void methods_match_seq() {
  const std::int64_t rows = 301, cols = 257; // odd sizes, large enough for the sampled top-k path
  const auto n = static_cast<std::size_t>(rows * cols);
  const std::array<std::int64_t, 2> ext{rows, cols};
  const auto base = random_device_vector<T>(n, 1, 0.02f);
  const thrust::host_vector<T> hb = base;
  std::vector<thrust::device_vector<T>> models;
  for (unsigned k = 0; k < 4; ++k)
    models.push_back(random_device_vector<T>(n, 10 + k, 0.002f, &hb));
  using V = strided_view<const T, 2>;
  std::vector<merge_input<V>> in;
  for (unsigned k = 0; k < 4; ++k)
    in.push_back({.tensor = thrust_view(thrust::device_ptr<const T>(models[k].data()), ext),
                  .weight = 0.2f + 0.1f * static_cast<float>(k), .density = 0.3 + 0.1 * k, .gamma = 0.01, .epsilon = 0.1});
  const auto bv = thrust_view(thrust::device_ptr<const T>(base.data()), ext);
  thrust::device_vector<T> out(n), ref(n);
  const auto ov = thrust_view(out.data(), ext), rv = thrust_view(ref.data(), ext);
  const merge_context ctx{"model.layers.3.mlp.down_proj.weight", 1234};
  auto check = [&](const auto& method, const std::string& what) {
    thrust::fill(out.begin(), out.end(), T(0.0f));
    merge(exec::thrust_policy{thrust::device}, method, ov, bv, in, ctx);
    merge(exec::seq, method, rv, bv, in, ctx);
    BOOST_CHECK_MESSAGE(same_bits(out, ref), what << ": thrust_policy differs from seq");
  };
  check(ties{}, "ties");
  check(breadcrumbs_ties{}, "breadcrumbs_ties");
  check(dare_ties{}, "dare_ties");
  check(dare_linear{.rescale_by = rescale_mode::inverse_density}, "dare_linear 1/d");
  check(della{}, "della");
  check(della_linear{}, "della_linear");
  check(sce{}, "sce");
  check(sce{.select_topk = 0.1}, "sce select_topk 0.1");
  check(sce{.select_topk = 0.3, .variant = sce_variant::fusechat}, "sce fusechat");
  check(varm{}, "varm");
  check(varm{.granularity = varm_granularity::per_element}, "varm per_element");
}

} // namespace

BOOST_AUTO_TEST_SUITE(merge_thrust_omp)
BOOST_AUTO_TEST_CASE(multi_pass_methods_bf16) { methods_match_seq<bf16>(); }
BOOST_AUTO_TEST_CASE(multi_pass_methods_float) { methods_match_seq<float>(); }
BOOST_AUTO_TEST_SUITE_END()
