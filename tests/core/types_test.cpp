// bf16 / fp16: every one of the 65,536 bit patterns against a straightforward reference, and
// float -> 16-bit rounding at every midpoint between neighbouring representable values.
#include <boost/test/unit_test.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include <fusekit/types/element.hpp>

using fusekit::bf16;
using fusekit::fp16;

namespace {

// Reference decoders written from the format definitions with std::ldexp (no bit tricks).
double ref_bf16_value(std::uint16_t b) {
  const int sign = b >> 15, exp = (b >> 7) & 0xff, mant = b & 0x7f;
  double v;
  if (exp == 0xff)
    v = mant ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  else if (exp == 0)
    v = std::ldexp(mant, -126 - 7);
  else
    v = std::ldexp(128 + mant, exp - 127 - 7);
  return sign ? -v : v;
}
double ref_fp16_value(std::uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  double v;
  if (exp == 0x1f)
    v = mant ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  else if (exp == 0)
    v = std::ldexp(mant, -14 - 10);
  else
    v = std::ldexp(1024 + mant, exp - 15 - 10);
  return sign ? -v : v;
}

// Reference rounding: nearest of the two neighbours, ties to the even bit pattern; done in double.
template <class Decode>
std::uint16_t ref_round(double x, std::uint16_t lo_bits, std::uint16_t hi_bits, Decode decode) {
  const double lo = decode(lo_bits), hi = decode(hi_bits);
  const double dl = std::abs(x - lo), dh = std::abs(hi - x);
  if (dl < dh)
    return lo_bits;
  if (dh < dl)
    return hi_bits;
  return (lo_bits & 1) ? hi_bits : lo_bits;
}

template <class H, class Decode> void check_all_patterns(Decode decode, std::uint16_t inf_bits) {
  int nan_count = 0;
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const H h(fusekit::from_bits, static_cast<std::uint16_t>(b));
    const float f = static_cast<float>(h);
    const double ref = decode(static_cast<std::uint16_t>(b));
    if (std::isnan(ref)) {
      ++nan_count;
      BOOST_REQUIRE_MESSAGE(std::isnan(f), "pattern " << b << " must decode to NaN");
      const H back(f);
      BOOST_REQUIRE_MESSAGE(std::isnan(static_cast<float>(back)), "NaN pattern " << b << " must stay NaN");
      BOOST_REQUIRE_EQUAL(back.bits & 0x8000, b & 0x8000);
      continue;
    }
    BOOST_REQUIRE_MESSAGE(static_cast<double>(f) == ref && std::signbit(f) == std::signbit(ref),
                          "pattern " << b << " decodes to " << f << ", reference " << ref);
    // Round trip through float is the identity for every non-NaN pattern (incl. ±0, ±inf, denormals).
    BOOST_REQUIRE_EQUAL(H(f).bits, b);
  }
  BOOST_CHECK_GT(nan_count, 0);
  BOOST_CHECK_EQUAL(H(std::numeric_limits<float>::infinity()).bits, inf_bits);
}

// For every pair of adjacent non-negative finite patterns (a, a+1): the exact midpoint and the floats
// just below/above it round as the double-precision reference says.
template <class H, class Decode> void check_midpoints(Decode decode, std::uint16_t max_finite) {
  for (std::uint32_t a = 0; a < max_finite; ++a) {
    const double lo = decode(static_cast<std::uint16_t>(a)), hi = decode(static_cast<std::uint16_t>(a + 1));
    const float mid = static_cast<float>((lo + hi) / 2); // exact in float for both formats
    BOOST_REQUIRE_EQUAL(static_cast<double>(mid), (lo + hi) / 2);
    for (float x : {mid, std::nextafter(mid, -INFINITY), std::nextafter(mid, INFINITY)}) {
      const std::uint16_t want =
          ref_round(static_cast<double>(x), static_cast<std::uint16_t>(a), static_cast<std::uint16_t>(a + 1), decode);
      BOOST_REQUIRE_MESSAGE(H(x).bits == want, "float " << x << " rounds to " << H(x).bits << ", want " << want);
      BOOST_REQUIRE_EQUAL(H(-x).bits, want | 0x8000u);
    }
  }
}

} // namespace

BOOST_AUTO_TEST_SUITE(element_types)

BOOST_AUTO_TEST_CASE(bf16_every_pattern) { check_all_patterns<bf16>(ref_bf16_value, 0x7f80); }
BOOST_AUTO_TEST_CASE(fp16_every_pattern) { check_all_patterns<fp16>(ref_fp16_value, 0x7c00); }
BOOST_AUTO_TEST_CASE(bf16_midpoints) { check_midpoints<bf16>(ref_bf16_value, 0x7f7f); }
BOOST_AUTO_TEST_CASE(fp16_midpoints) { check_midpoints<fp16>(ref_fp16_value, 0x7bff); }

BOOST_AUTO_TEST_CASE(overflow_and_underflow) {
  // fp16: 65504 is the largest finite; 65519.99 rounds down, 65520 (midpoint to 2^16) rounds to inf.
  BOOST_CHECK_EQUAL(fp16(65504.0f).bits, 0x7bffu);
  BOOST_CHECK_EQUAL(fp16(65519.0f).bits, 0x7bffu);
  BOOST_CHECK_EQUAL(fp16(65520.0f).bits, 0x7c00u);
  BOOST_CHECK_EQUAL(fp16(1e10f).bits, 0x7c00u);
  BOOST_CHECK_EQUAL(fp16(-1e10f).bits, 0xfc00u);
  BOOST_CHECK_EQUAL(fp16(std::ldexp(1.0f, -25)).bits, 0x0000u);                   // tie to even (0)
  BOOST_CHECK_EQUAL(fp16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)).bits, 1u); // just above: smallest denormal
  BOOST_CHECK_EQUAL(fp16(std::ldexp(1.0f, -24)).bits, 1u);
  BOOST_CHECK_EQUAL(fp16(1e-30f).bits, 0u);
  BOOST_CHECK_EQUAL(fp16(-0.0f).bits, 0x8000u);
  // bf16: the largest float rounds to inf, denormal floats are kept/rounded exactly.
  BOOST_CHECK_EQUAL(bf16(std::numeric_limits<float>::max()).bits, 0x7f80u);
  BOOST_CHECK_EQUAL(bf16(std::numeric_limits<float>::denorm_min()).bits, 0u);
  BOOST_CHECK_EQUAL(bf16(std::bit_cast<float>(0x00018000u)).bits, 2u); // tie → even
  BOOST_CHECK_EQUAL(bf16(std::bit_cast<float>(0x00008000u)).bits, 0u); // tie → even (0)
  BOOST_CHECK_EQUAL(bf16(std::bit_cast<float>(0x00008001u)).bits, 1u);
}

BOOST_AUTO_TEST_CASE(random_floats_round_like_reference) {
  std::mt19937 rng(7);
  for (int i = 0; i < 200000; ++i) {
    const float x = std::bit_cast<float>(static_cast<std::uint32_t>(rng()));
    if (std::isnan(x)) {
      BOOST_REQUIRE(std::isnan(static_cast<float>(bf16(x))));
      BOOST_REQUIRE(std::isnan(static_cast<float>(fp16(x))));
      continue;
    }
    // bf16: truncate then maybe step up.
    const std::uint16_t t = static_cast<std::uint16_t>(std::bit_cast<std::uint32_t>(x) >> 16);
    const std::uint16_t lo = t, hi = static_cast<std::uint16_t>(t + 1);
    if ((t & 0x7fff) < 0x7f7f) { // both neighbours finite
      const std::uint16_t want = ref_round(std::abs(static_cast<double>(x)), lo & 0x7fff, hi & 0x7fff, ref_bf16_value);
      BOOST_REQUIRE_EQUAL(bf16(x).bits & 0x7fff, want);
    }
  }
}

BOOST_AUTO_TEST_CASE(constexpr_and_compute_type) {
  static_assert(bf16(1.0f).bits == 0x3f80);
  static_assert(fp16(1.0f).bits == 0x3c00);
  static_assert(static_cast<float>(fp16(fusekit::from_bits, 0x3555)) > 0.333f);
  static_assert(std::is_same_v<fusekit::compute_t<bf16>, float>);
  static_assert(std::is_same_v<fusekit::compute_t<fp16>, float>);
  static_assert(std::is_same_v<fusekit::compute_t<double>, double>);
  static_assert(std::is_same_v<fusekit::compute_t<const float>, float>);
  static_assert(noexcept(bf16(1.0f)) && noexcept(static_cast<float>(fp16{})));
  static_assert(fusekit::element<bf16> && fusekit::element<int> && !fusekit::element<float*>);
  BOOST_CHECK_EQUAL(fusekit::from_compute<bf16>(1.00390625f).bits, 0x3f80); // tie 1 + 2^-8 → even
  BOOST_CHECK_EQUAL(fusekit::to_compute(fp16(2.5f)), 2.5f);
}

BOOST_AUTO_TEST_SUITE_END()
