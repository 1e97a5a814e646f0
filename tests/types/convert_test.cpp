// widen_to_float / narrow_from_float (fusekit/types/convert.hpp) must give exactly the bits of the scalar
// conversions of fusekit::bf16 and fusekit::fp16: every one of the 65536 16-bit patterns widened, every
// widened value narrowed back, the rounding neighbourhood of every pattern (midpoints, ±1 ulp), special
// values, and a strided sweep over all float bit patterns. Every length 0..40 and misaligned starts cover
// the vector bodies and the scalar tails.
#include <boost/test/unit_test.hpp>

#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include <fusekit/types/convert.hpp>

namespace {

using fusekit::bf16;
using fusekit::fp16;

std::uint32_t fbits(float f) { return std::bit_cast<std::uint32_t>(f); }

template <class T> std::uint16_t scalar_narrow(float f) { return T::from_float(f); }

// Narrows `in` with the block helper at several offsets/lengths and compares with the scalar type.
template <class T> std::int64_t check_narrow(const std::vector<float>& in) {
  std::vector<T> out(in.size() + 3);
  std::int64_t bad = 0;
  for (std::size_t off : {std::size_t{0}, std::size_t{1}, std::size_t{3}}) {
    if (in.size() <= off)
      continue;
    const auto n = static_cast<std::int64_t>(in.size() - off);
    fusekit::narrow_from_float(in.data() + off, out.data() + off, n);
    for (std::size_t i = off; i < in.size(); ++i)
      if (out[i].bits != scalar_narrow<T>(in[i])) {
        if (++bad <= 5)
          BOOST_TEST_MESSAGE("narrow mismatch at float bits 0x" << std::hex << fbits(in[i]) << ": block 0x"
                                                                << out[i].bits << " scalar 0x"
                                                                << scalar_narrow<T>(in[i]));
      }
  }
  return bad;
}

template <class T> void all_patterns() {
  std::vector<T> h(65536);
  for (std::uint32_t i = 0; i < 65536; ++i)
    h[i] = T(fusekit::from_bits, static_cast<std::uint16_t>(i));
  std::vector<float> w(65536 + 5);
  fusekit::widen_to_float(h.data(), w.data(), 65536);
  std::int64_t bad_widen = 0;
  for (std::uint32_t i = 0; i < 65536; ++i)
    bad_widen += fbits(w[i]) != fbits(T::to_float(static_cast<std::uint16_t>(i))) ? 1 : 0;
  BOOST_TEST(bad_widen == 0);
  // misaligned widening
  fusekit::widen_to_float(h.data() + 1, w.data() + 3, 65535);
  for (std::uint32_t i = 1; i < 65536; ++i)
    bad_widen += fbits(w[i + 2]) != fbits(T::to_float(static_cast<std::uint16_t>(i))) ? 1 : 0;
  BOOST_TEST(bad_widen == 0);

  // narrowing: the exact values (round trip, NaNs quieted as the scalar type does), their float
  // neighbours, and the midpoints to the next pattern (ties) with their neighbours
  std::vector<float> in;
  in.reserve(65536 * 7);
  for (std::uint32_t i = 0; i < 65536; ++i) {
    const float v = T::to_float(static_cast<std::uint16_t>(i));
    const std::uint32_t b = fbits(v);
    in.push_back(v);
    in.push_back(std::bit_cast<float>(b + 1));
    in.push_back(std::bit_cast<float>(b - 1));
    const float next = T::to_float(static_cast<std::uint16_t>(i + 1)); // 0xffff wraps to 0: fine
    const double mid = (static_cast<double>(v) + static_cast<double>(next)) / 2;
    const float mf = static_cast<float>(mid);
    in.push_back(mf);
    in.push_back(std::bit_cast<float>(fbits(mf) + 1));
    in.push_back(std::bit_cast<float>(fbits(mf) - 1));
    in.push_back(-mf);
  }
  BOOST_TEST(check_narrow<T>(in) == 0);
  // round trip of every non-NaN pattern
  std::vector<T> back(65536);
  fusekit::narrow_from_float(w.data() + 3, back.data() + 1, 65535); // w[i + 2] holds pattern i
  std::int64_t bad_trip = 0;
  for (std::uint32_t i = 1; i < 65536; ++i)
    if (!(T::to_float(static_cast<std::uint16_t>(i)) != T::to_float(static_cast<std::uint16_t>(i)))) // not NaN
      bad_trip += back[i].bits != i ? 1 : 0;
  BOOST_TEST(bad_trip == 0);
}

template <class T> void float_sweep() {
  // every 97th float bit pattern (44 M values) in slices, plus special values
  std::vector<float> in;
  in.reserve(1 << 20);
  std::int64_t bad = 0;
  for (std::uint64_t b = 0; b <= 0xffffffffull; b += 97) {
    in.push_back(std::bit_cast<float>(static_cast<std::uint32_t>(b)));
    if (in.size() == (1u << 20)) {
      bad += check_narrow<T>(in);
      in.clear();
    }
  }
  for (float f : {0.0f, -0.0f, std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                  std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::signaling_NaN(),
                  std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::min(),
                  std::numeric_limits<float>::max(), 65504.0f, 65519.99f, 65520.0f, 65536.0f, 5.960464477539063e-8f,
                  2.98023223876953125e-8f, 2.9802326e-8f, 6.103515625e-05f, 6.1035156e-05f, 1.0f / 3.0f})
    in.push_back(f);
  bad += check_narrow<T>(in);
  BOOST_TEST(bad == 0);
}

} // namespace

BOOST_AUTO_TEST_SUITE(convert)

BOOST_AUTO_TEST_CASE(bf16_all_patterns) { all_patterns<bf16>(); }
BOOST_AUTO_TEST_CASE(fp16_all_patterns) { all_patterns<fp16>(); }
BOOST_AUTO_TEST_CASE(bf16_float_sweep) { float_sweep<bf16>(); }
BOOST_AUTO_TEST_CASE(fp16_float_sweep) { float_sweep<fp16>(); }

BOOST_AUTO_TEST_CASE(every_length_and_float_identity) {
  std::vector<float> src(48), f(48);
  for (int i = 0; i < 48; ++i)
    src[static_cast<std::size_t>(i)] = static_cast<float>(i) * 0.37f - 7.1f;
  for (std::int64_t n = 0; n <= 40; ++n) {
    std::vector<bf16> b(48, bf16(fusekit::from_bits, 0x7777));
    std::vector<fp16> h(48, fp16(fusekit::from_bits, 0x7777));
    fusekit::narrow_from_float(src.data(), b.data(), n);
    fusekit::narrow_from_float(src.data(), h.data(), n);
    for (std::int64_t i = 0; i < 48; ++i) {
      const auto k = static_cast<std::size_t>(i);
      BOOST_TEST(b[k].bits == (i < n ? bf16::from_float(src[k]) : std::uint16_t{0x7777}));
      BOOST_TEST(h[k].bits == (i < n ? fp16::from_float(src[k]) : std::uint16_t{0x7777}));
    }
    std::vector<float> wb(48, -1.0f), wh(48, -1.0f);
    fusekit::widen_to_float(b.data(), wb.data(), n);
    fusekit::widen_to_float(h.data(), wh.data(), n);
    for (std::int64_t i = 0; i < 48; ++i) {
      const auto k = static_cast<std::size_t>(i);
      BOOST_TEST(fbits(wb[k]) == fbits(i < n ? static_cast<float>(b[k]) : -1.0f));
      BOOST_TEST(fbits(wh[k]) == fbits(i < n ? static_cast<float>(h[k]) : -1.0f));
    }
    fusekit::widen_to_float(src.data(), f.data(), n);
    fusekit::narrow_from_float(src.data(), f.data() + 0, 0);
    BOOST_TEST(std::memcmp(src.data(), f.data(), static_cast<std::size_t>(n) * sizeof(float)) == 0);
  }
}

BOOST_AUTO_TEST_SUITE_END()
