// The vertical slice: linear and task_arithmetic against a plain float64 reference, for every storage
// type, odd sizes, 1-D/2-D, non-contiguous views, 1-8 inputs, seq and par (several thread counts).
#include <boost/test/unit_test.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/mpl/list.hpp>

#include <array>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include <fusekit/adapt/span.hpp>
#include <fusekit/merge/linear.hpp>
#include <fusekit/merge/task_arithmetic.hpp>
#include <fusekit/types/element.hpp>

using namespace fusekit;

namespace {

// Same bits, or both NaN: where several NaN operands meet (inf − inf in one model, NaN input in another),
// which payload and sign survive depends on the FMA form (132/213/231) the register allocator picked,
// so NaN outputs are compared as NaN.
template <class T> bool same_bits_or_both_nan(T a, T b) {
  return a.bits == b.bits || (std::isnan(static_cast<float>(a)) && std::isnan(static_cast<float>(b)));
}
// Neighbouring bf16 (or fp16) values of the same sign.
template <class T> bool one_ulp_apart(T a, T b) {
  return (a.bits >> 15) == (b.bits >> 15) && (a.bits == b.bits + 1 || b.bits == a.bits + 1);
}

// A 2-D tensor of T with a padded row pitch (pitch > cols makes it non-contiguous).
template <class T> struct tensor2 {
  std::int64_t rows, cols, pitch;
  std::vector<T> buf;
  tensor2(std::int64_t r, std::int64_t c, std::int64_t p) : rows(r), cols(c), pitch(p), buf(static_cast<std::size_t>(r * p)) {}
  auto view() { return host_view(buf.data(), std::array<std::int64_t, 2>{rows, cols}, std::array<std::int64_t, 2>{pitch, 1}); }
  auto cview() const {
    return host_view(buf.data(), std::array<std::int64_t, 2>{rows, cols}, std::array<std::int64_t, 2>{pitch, 1});
  }
  double get(std::int64_t i, std::int64_t j) const { return static_cast<double>(static_cast<float>(buf[i * pitch + j])); }
};

template <class T> tensor2<T> random_tensor(std::int64_t r, std::int64_t c, std::int64_t pitch, std::mt19937& rng) {
  tensor2<T> t(r, c, pitch);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto& v : t.buf)
    v = from_compute<T>(nd(rng));
  return t;
}

// Tolerance of the result of rounding an fp32 computation to T, relative to the output magnitude.
template <class T> double tol() {
  if constexpr (std::is_same_v<T, bf16>)
    return 1.0 / 128; // 8 significant bits
  else if constexpr (std::is_same_v<T, fp16>)
    return 1.0 / 1024;
  else
    return 1e-5;
}

template <class T, class Policy>
void run_case(const Policy& pol, std::int64_t rows, std::int64_t cols, std::int64_t pitch, int k, bool ta, bool normalize,
              unsigned seed) {
  std::mt19937 rng(seed);
  auto base = random_tensor<T>(rows, cols, pitch, rng);
  std::vector<tensor2<T>> models;
  for (int i = 0; i < k; ++i)
    models.push_back(random_tensor<T>(rows, cols, pitch, rng));
  std::uniform_real_distribution<float> wd(0.1f, 1.5f);
  std::vector<merge_input<strided_view<const T, 2>>> inputs;
  for (auto& m : models)
    inputs.push_back({.tensor = m.cview(), .weight = wd(rng)});
  tensor2<T> out(rows, cols, pitch + 3);
  const float lambda = ta ? 0.7f : 1.0f;
  if (ta)
    merge(pol, task_arithmetic{.lambda = lambda, .normalize = normalize}, out.view(), base.cview(), inputs,
          {.tensor_name = "t"});
  else
    merge(pol, linear{.normalize = normalize}, out.view(), no_base, inputs, {.tensor_name = "t"});

  double wsum = 0;
  for (auto& in : inputs)
    wsum += in.weight;
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j) {
      double ref = 0, mag = 1e-3;
      if (ta) {
        double acc = 0;
        for (int m = 0; m < k; ++m)
          acc += inputs[m].weight * (models[m].get(i, j) - base.get(i, j));
        ref = base.get(i, j) + lambda * acc / (normalize ? wsum : 1.0);
        mag += std::abs(base.get(i, j));
        for (int m = 0; m < k; ++m)
          mag += lambda * std::abs(inputs[m].weight) * (std::abs(models[m].get(i, j)) + std::abs(base.get(i, j))) /
                 (normalize ? wsum : 1.0);
      } else {
        for (int m = 0; m < k; ++m)
          ref += inputs[m].weight * models[m].get(i, j);
        if (normalize)
          ref /= wsum;
        for (int m = 0; m < k; ++m)
          mag += std::abs(inputs[m].weight * models[m].get(i, j)) / (normalize ? wsum : 1.0);
      }
      mag += std::abs(ref); // rounding the result to T costs up to half an ulp of |ref|
      const double got = out.get(i, j);
      BOOST_REQUIRE_MESSAGE(std::abs(got - ref) <= tol<T>() * mag,
                            "element (" << i << "," << j << "): got " << got << ", reference " << ref);
    }
  // Padding between rows is untouched.
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = cols; j < pitch + 3; ++j)
      BOOST_REQUIRE_EQUAL(static_cast<float>(out.buf[i * (pitch + 3) + j]), 0.0f);
}

template <class T> void run_all_shapes() {
  unsigned seed = 1;
  for (auto [rows, cols] : std::vector<std::pair<std::int64_t, std::int64_t>>{{1, 1}, {3, 7}, {17, 129}, {5, 4099}}) {
    for (std::int64_t pad : {0, 5}) {
      for (int k : {1, 2, 3, 8}) {
        for (bool ta : {false, true}) {
          for (bool norm : {false, true}) {
            run_case<T>(exec::seq, rows, cols, cols + pad, k, ta, norm, ++seed);
            run_case<T>(exec::par, rows, cols, cols + pad, k, ta, norm, seed);
          }
        }
      }
    }
  }
}

} // namespace

BOOST_AUTO_TEST_SUITE(merge_slice)

BOOST_AUTO_TEST_CASE(float_shapes) { run_all_shapes<float>(); }
BOOST_AUTO_TEST_CASE(bf16_shapes) { run_all_shapes<bf16>(); }
BOOST_AUTO_TEST_CASE(fp16_shapes) { run_all_shapes<fp16>(); }
BOOST_AUTO_TEST_CASE(double_shapes) { run_all_shapes<double>(); }

BOOST_AUTO_TEST_CASE(mixed_storage_and_1d_strided) {
  // bf16 inputs, fp32 output, every other element of a 1-D buffer.
  const std::int64_t n = 10'001;
  std::vector<bf16> a(2 * n), b(2 * n), base(n);
  for (std::int64_t i = 0; i < 2 * n; ++i) {
    a[i] = bf16(static_cast<float>(i % 97) * 0.25f);
    b[i] = bf16(static_cast<float>(i % 13) - 6.0f);
  }
  for (std::int64_t i = 0; i < n; ++i)
    base[i] = bf16(1.0f);
  std::vector<float> out(n);
  auto strided = [&](std::vector<bf16>& v) {
    return host_view(static_cast<const bf16*>(v.data()), std::array<std::int64_t, 1>{n}, std::array<std::int64_t, 1>{2});
  };
  const std::vector<merge_input<strided_view<const bf16, 1>>> in{{.tensor = strided(a), .weight = 0.5f},
                                                                 {.tensor = strided(b), .weight = 2.0f}};
  merge(exec::par, task_arithmetic{}, out, as_view(base).as_const(), in);
  for (std::int64_t i = 0; i < n; ++i) {
    const double da = static_cast<float>(a[2 * i]) - 1.0, db = static_cast<float>(b[2 * i]) - 1.0;
    BOOST_REQUIRE_CLOSE_FRACTION(out[i] + 1e-30, 1.0 + 0.5 * da + 2.0 * db + 1e-30, 1e-6);
  }
}

BOOST_AUTO_TEST_CASE(task_arithmetic_spec_semantics) {
  // merging.md §1.2: normalize divides by Σw (|Σw| < 1e-8 → 1), lambda applies after normalisation,
  // no inputs returns the base.
  const std::vector<float> base{1, 2, 3}, x1{2, 2, 5}, x2{0, 4, 3};
  std::vector<float> out(3);
  using V = strided_view<const float, 1>;
  std::vector<merge_input<V>> in{{.tensor = as_view(x1), .weight = 1.0f}, {.tensor = as_view(x2), .weight = 3.0f}};
  merge(exec::seq, task_arithmetic{.lambda = 0.5f, .normalize = true}, out, as_view(base), in);
  // deltas: (1,0,2) and (-1,2,0); weighted sum (1-3, 6, 2) = (-2, 6, 2); /4 → (-.5, 1.5, .5); *.5
  BOOST_CHECK_CLOSE(out[0], 1 - 0.25f, 1e-5);
  BOOST_CHECK_CLOSE(out[1], 2 + 0.75f, 1e-5);
  BOOST_CHECK_CLOSE(out[2], 3 + 0.25f, 1e-5);
  in[1].weight = -1.0f; // Σw = 0 → divisor 1 (mergekit)
  merge(exec::seq, task_arithmetic{.normalize = true}, out, as_view(base), in);
  BOOST_CHECK_CLOSE(out[0], 1 + 1 + 1, 1e-5);
  merge(exec::seq, task_arithmetic{}, out, as_view(base), std::span<const merge_input<V>>{});
  BOOST_CHECK(out == base);
}

BOOST_AUTO_TEST_CASE(linear_spec_semantics_and_errors) {
  const std::vector<float> x1{1, 1}, x2{3, 5};
  std::vector<float> out(2);
  using V = strided_view<const float, 1>;
  std::vector<merge_input<V>> in{{.tensor = as_view(x1), .weight = 0.1f}, {.tensor = as_view(x2), .weight = 0.3f}};
  merge(exec::seq, linear{}, out, no_base, in);
  BOOST_CHECK_CLOSE(out[0], 2.5f, 1e-4);
  BOOST_CHECK_CLOSE(out[1], 4.0f, 1e-4);
  merge(exec::seq, linear{.normalize = false}, out, no_base, in);
  BOOST_CHECK_CLOSE(out[1], 0.1f + 1.5f, 1e-4);
  // Σw = 0 with normalize: a clear error naming the tensor, not a division by zero.
  in[1].weight = -0.1f;
  try {
    merge(exec::seq, linear{}, out, no_base, in, {.tensor_name = "model.embed_tokens.weight"});
    BOOST_FAIL("expected an error");
  } catch (const fusekit::error& e) {
    BOOST_CHECK(e.code() == errc::invalid_argument);
    BOOST_CHECK(std::string(e.what()).find("model.embed_tokens.weight") != std::string::npos);
  }
  // No inputs, mismatched shapes.
  BOOST_CHECK_THROW(merge(exec::seq, linear{}, out, no_base, std::span<const merge_input<V>>{}), fusekit::error);
  const std::vector<float> wrong{1, 2, 3};
  in[1] = {.tensor = as_view(wrong), .weight = 1.0f};
  try {
    merge(exec::par, linear{}, out, no_base, in, {.tensor_name = "lm_head.weight"});
    BOOST_FAIL("expected an error");
  } catch (const fusekit::error& e) {
    BOOST_CHECK(e.code() == errc::shape_mismatch);
    BOOST_CHECK(std::string(e.what()).find("model 1 has shape [3]") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(results_identical_across_thread_counts) {
  std::mt19937 rng(9);
  auto base = random_tensor<bf16>(33, 3001, 3001, rng);
  std::vector<tensor2<bf16>> ms;
  for (int i = 0; i < 4; ++i)
    ms.push_back(random_tensor<bf16>(33, 3001, 3001, rng));
  std::vector<merge_input<strided_view<const bf16, 2>>> in;
  for (auto& m : ms)
    in.push_back({.tensor = m.cview(), .weight = 0.3f});
  tensor2<bf16> o1(33, 3001, 3001), o2(33, 3001, 3001);
  merge(exec::seq, task_arithmetic{.lambda = 0.9f}, o1.view(), base.cview(), in);
  merge(exec::parallel_policy{.threads = 3}, task_arithmetic{.lambda = 0.9f}, o2.view(), base.cview(), in);
  BOOST_CHECK(std::equal(o1.buf.begin(), o1.buf.end(), o2.buf.begin(), [](bf16 a, bf16 b) { return a.bits == b.bits; }));
}

BOOST_AUTO_TEST_CASE(large_outputs_use_streaming_stores_correctly) {
  // Outputs of >= 8 MiB take the non-temporal (and, with -march=native, AVX2/F16C) store path.
  const std::int64_t n = (9 << 20) / 2 + 13; // odd length, > 8 MiB of bf16
  auto check = [&](auto tag) {
    using T = decltype(tag);
    std::vector<T> base(n), x(n), out(n + 1);
    for (std::int64_t i = 0; i < n; ++i) {
      base[i] = from_compute<T>(static_cast<float>(i % 251) * 0.01f - 1.0f);
      x[i] = from_compute<T>(static_cast<float>(i % 17) * 0.3f);
    }
    x[12345] = from_compute<T>(std::numeric_limits<float>::quiet_NaN());
    x[777] = from_compute<T>(std::numeric_limits<float>::infinity());
    const std::vector<merge_input<strided_view<const T, 1>>> in{{.tensor = host_view(static_cast<const T*>(x.data()), n), .weight = 0.75f}};
    // Output view starting at an odd address offset (element 1) to exercise the unaligned head.
    merge(exec::par, task_arithmetic{}, host_view(out.data() + 1, n), host_view(static_cast<const T*>(base.data()), n), in);
    for (std::int64_t i = 0; i < n; ++i) {
      const float b = static_cast<float>(base[i]), xv = static_cast<float>(x[i]);
      const float want = static_cast<float>(from_compute<T>(b + 0.75f * (xv - b)));
      const float got = static_cast<float>(out[i + 1]);
      if (std::isinf(want)) {
        BOOST_REQUIRE_EQUAL(got, want);
      } else if (std::isnan(want)) {
        BOOST_REQUIRE_MESSAGE(std::isnan(got), "element " << i << " must be NaN");
      } else {
        BOOST_REQUIRE_MESSAGE(std::abs(got - want) <= std::abs(want) * (1.0f / 128) + 1e-6f,
                              "element " << i << ": got " << got << " want " << want);
      }
    }
    BOOST_CHECK_EQUAL(static_cast<float>(out[0]), 0.0f);
  };
  check(bf16{});
  check(fp16{});
  check(float{});
}

// Contiguous T (or fp16) everywhere takes the register kernel (detail::weighted_sum_x16 with AVX2,
// and F16C for fp16); the same values in padded (non-contiguous) rows take the blocked loop. Both must
// give the same bits, for task_arithmetic (with and without normalize) and linear, quiet and signaling
// NaN / inf / overflowing inputs, 1–5 models, an output that starts off the 32-byte grid, and outputs
// large enough for the streaming stores.
using x16_types = boost::mpl::list<bf16, fp16>;
BOOST_AUTO_TEST_CASE_TEMPLATE(x16_register_kernel_equals_blocked_loop, T, x16_types) {
  // a signaling NaN (vcvtph2ps quiets it while widening; arithmetic would quiet it anyway)
  const T snan(from_bits, std::is_same_v<T, bf16> ? std::uint16_t{0x7f81} : std::uint16_t{0x7d01});
  const float big = std::is_same_v<T, bf16> ? 3e38f : 6e4f;
  for (const auto [rows, cols] : {std::array<std::int64_t, 2>{7, 33}, {3, 4099}, {1200, 4099}})
    for (int k : {1, 2, 5}) {
      std::mt19937 rng(static_cast<unsigned>(rows * 31 + k));
      auto padded = [&] {
        auto t = random_tensor<T>(rows, cols, cols + 3, rng);
        for (std::size_t i = 0; i < t.buf.size(); i += 997)
          t.buf[i] = i % 4 == 3 ? snan
                                : from_compute<T>(i % 4 == 0   ? std::numeric_limits<float>::quiet_NaN()
                                                  : i % 4 == 1 ? std::numeric_limits<float>::infinity()
                                                               : big);
        return t;
      };
      auto dense = [&](const tensor2<T>& t) {
        tensor2<T> d(rows, cols, cols);
        for (std::int64_t r = 0; r < rows; ++r)
          for (std::int64_t c = 0; c < cols; ++c)
            d.buf[static_cast<std::size_t>(r * cols + c)] = t.buf[static_cast<std::size_t>(r * t.pitch + c)];
        return d;
      };
      const auto base_p = padded();
      const auto base_d = dense(base_p);
      std::vector<tensor2<T>> mp, md;
      for (int i = 0; i < k; ++i) {
        mp.push_back(padded());
        md.push_back(dense(mp.back()));
      }
      std::vector<merge_input<strided_view<const T, 2>>> in_p, in_d;
      for (int i = 0; i < k; ++i) {
        in_p.push_back({.tensor = mp[i].cview(), .weight = 0.3f + 0.2f * static_cast<float>(i)});
        in_d.push_back({.tensor = md[i].cview(), .weight = 0.3f + 0.2f * static_cast<float>(i)});
      }
      const std::array<std::int64_t, 2> shape{rows, cols};
      std::vector<T> out_d(static_cast<std::size_t>(rows * cols) + 1); // the view starts at element 1
      tensor2<T> out_p(rows, cols, cols + 3);
      const auto od = host_view(out_d.data() + 1, shape);
      for (int m = 0; m < 3; ++m) {
        if (m == 0) {
          merge(exec::par, task_arithmetic{}, od, base_d.cview(), in_d);
          merge(exec::par, task_arithmetic{}, out_p.view(), base_p.cview(), in_p);
        } else if (m == 1) {
          merge(exec::seq, task_arithmetic{.lambda = 0.7f, .normalize = true}, od, base_d.cview(), in_d);
          merge(exec::seq, task_arithmetic{.lambda = 0.7f, .normalize = true}, out_p.view(), base_p.cview(), in_p);
        } else {
          merge(exec::par, linear{}, od, no_base, in_d);
          merge(exec::par, linear{}, out_p.view(), no_base, in_p);
        }
        std::int64_t diff = 0, far = 0;
        for (std::int64_t r = 0; r < rows; ++r)
          for (std::int64_t c = 0; c < cols; ++c) {
            const T a = out_d[static_cast<std::size_t>(r * cols + c) + 1];
            const T p = out_p.buf[static_cast<std::size_t>(r * out_p.pitch + c)];
            if (same_bits_or_both_nan(a, p))
              continue;
            ++diff;
            // a contracted and an uncontracted sum differ by at most one float rounding per product
            // c_k·(x_k − b) (|c_k| ≤ 2.5 here); after cancellation that can exceed one ulp of the result
            double mag = std::fabs(static_cast<double>(base_d.buf[static_cast<std::size_t>(r * cols + c)]));
            for (int i = 0; i < k; ++i)
              mag += std::fabs(static_cast<double>(md[i].buf[static_cast<std::size_t>(r * cols + c)]));
            const double gap = std::fabs(static_cast<double>(a) - static_cast<double>(p));
            if (!one_ulp_apart(a, p) && !(gap <= 2.5 * 2.0 * mag * 0x1p-24 * (k + 1))) {
              ++far;
              BOOST_TEST_MESSAGE("element " << r << "," << c << ": register " << static_cast<float>(a)
                                            << " blocked " << static_cast<float>(p));
            }
          }
        // identical without FP contraction; with it, only the elements done one at a time (the unaligned
        // head and tail of each block) may round differently (see detail::weighted_sum_x16): by one ulp,
        // or by the product roundings a contraction saves, which cancellation can make larger
#if defined(FUSEKIT_TEST_EXACT_X16)
        BOOST_TEST(diff == 0, rows << "x" << cols << ", " << k << " models, method " << m << ": " << diff << " differ (no FP contraction)");
#endif
        BOOST_TEST(far == 0, rows << "x" << cols << ", " << k << " models, method " << m << ": " << far << " differ by more than contraction explains");
        BOOST_TEST(diff * 200 <= rows * cols, rows << "x" << cols << ", " << k << " models, method " << m << ": " << diff << " differ");
      }
    }
}

BOOST_AUTO_TEST_SUITE_END()
