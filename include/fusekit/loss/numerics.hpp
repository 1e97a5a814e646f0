/// @file
/// @brief Numerically stable scalar helpers for losses: sigmoid, log-sigmoid, softplus, log1mexp,
/// and a vectorizable exp for softmax inner loops.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include <fusekit/core/config.hpp>

#if FUSEKIT_HAS_VECTOR_EXT && (defined(__SSE__) || defined(__AVX__))
#include <immintrin.h>
#endif

namespace fusekit {

/// Logistic sigmoid σ(x), evaluated without overflow: 1/(1+e^{-x}) for x ≥ 0, e^x/(1+e^x) otherwise.
template <class R> FUSEKIT_HOST_DEVICE inline R sigmoid(R x) noexcept {
  using std::exp;
  if (x >= R(0))
    return R(1) / (R(1) + exp(-x));
  const R e = exp(x);
  return e / (R(1) + e);
}

/// log σ(x) = min(x,0) − log1p(e^{−|x|}). Exact for large |x|: logσ(−800) = −800, logσ(100) ≈ −3.7e−44.
template <class R> FUSEKIT_HOST_DEVICE inline R log_sigmoid(R x) noexcept {
  using std::exp;
  using std::fabs;
  using std::log1p;
  return (x < R(0) ? x : R(0)) - log1p(exp(-fabs(x)));
}

/// softplus(x) = log(1 + e^x) = max(x,0) + log1p(e^{−|x|}) (= −logσ(−x)).
template <class R> FUSEKIT_HOST_DEVICE inline R softplus(R x) noexcept {
  using std::exp;
  using std::fabs;
  using std::log1p;
  return (x > R(0) ? x : R(0)) + log1p(exp(-fabs(x)));
}

/// log(1 − e^x) for x ≤ 0, branching at −ln 2 (Mächler): log1p(−e^x) below, log(−expm1(x)) above.
/// Returns −inf at x = 0 and NaN for x > 0 (the argument is a log-probability).
template <class R> FUSEKIT_HOST_DEVICE inline R log1mexp(R x) noexcept {
  using std::exp;
  using std::expm1;
  using std::log;
  using std::log1p;
  constexpr R minus_ln2 = R(-0.693147180559945309417232121458176568);
  return x < minus_ln2 ? log1p(-exp(x)) : log(-expm1(x));
}

namespace detail {

/// Constants of exp_nonpos: Cody–Waite reduction x = n·ln2 + r, |r| ≤ ln2/2, and a degree-5 polynomial
/// e^r ≈ 1 + r·P(r) (minimax for the relative error on [−ln2/2, ln2/2], |error| ≤ 9.2e−8; the same form
/// as XNNPACK's rr2_p5). The exponent 2^n is built from the bits of the rounding sum t = x·log2e + M
/// with M = 1.5·2^23 + 127: t's low mantissa bits hold n + 127, so `bits(t) << 23` is 2^n — for
/// n = −127 that is +0.0, which is how arguments below −87.7 (and −inf, clamped to −88) give exactly 0.
namespace expf_c {
inline constexpr float lo = -88.0f; ///< clamp: rounds to n = −127, i.e. a zero scale
inline constexpr float log2e = 1.44269504088896341f;
inline constexpr float magic = 12583039.0f; ///< 1.5·2^23 + 127
inline constexpr float ln2_hi = 0.693359375f;
inline constexpr float ln2_lo = -2.12194440e-4f;
inline constexpr float c1 = 0x1.fffff6p-1f;
inline constexpr float c2 = 0x1.fffdc4p-2f;
inline constexpr float c3 = 0x1.555a6ep-3f;
inline constexpr float c4 = 0x1.573ad0p-5f;
inline constexpr float c5 = 0x1.0fa7d8p-7f;
} // namespace expf_c

/// e^x for x ≤ 0 in float (valid up to x ≈ +88), branch-free plain arithmetic (see expf_c): 12
/// operations, 9 of them multiply/FMA. Measured max relative error 1.63e−7 (≈ 1.4 ulp of 1.0) over
/// every float in [−87, 0] against double exp with FMA contraction (AVX2 builds), 1.85e−7 without; results
/// below 2^−126·0.7 (x < −87.3) may be flushed to 0 and x < −87.7 or −inf gives exactly 0; NaN gives
/// NaN (the clamp keeps it). Used only for softmax terms e^{z−max}, whose argument is never positive.
/// (The row kernels use the vector version below; this scalar one serves tails and other compilers.)
FUSEKIT_HOST_DEVICE FUSEKIT_FORCEINLINE float exp_nonpos(float x) noexcept {
  using namespace expf_c;
  const float xc = x < lo ? lo : x; // NaN compares false and stays NaN
  const float t = xc * log2e + magic;
  const float nf = t - magic; // n, exactly
  float r = xc - nf * ln2_hi;
  r = r - nf * ln2_lo;
  float p = c5 * r + c4;
  p = p * r + c3;
  p = p * r + c2;
  p = p * r + c1;
  const float s = std::bit_cast<float>(std::bit_cast<std::uint32_t>(t) << 23); // 2^n (0 for n = −127)
  return (r * s) * p + s;
}

#if FUSEKIT_HAS_VECTOR_EXT
#if defined(__AVX__)
inline constexpr int fvec_lanes = 8; ///< lanes of fvec: 8 with AVX, else 4 (SSE/NEON width, no ABI change)
#else
inline constexpr int fvec_lanes = 4;
#endif
/// `fvec_lanes` floats as a GCC/Clang vector-extension value.
typedef float fvec __attribute__((vector_size(4 * fvec_lanes)));
/// Same width, int32 lanes (comparison masks, exponent bits).
typedef std::int32_t ivec __attribute__((vector_size(4 * fvec_lanes)));

/// exp_nonpos on a vector (same operations lane by lane). Written with vector extensions because GCC
/// does not if-convert the scalar version's clamp under the default -ftrapping-math, so a plain loop
/// over it stays scalar.
FUSEKIT_FORCEINLINE fvec exp_nonpos(fvec x) noexcept {
  using namespace expf_c;
  // max(lo, x) with NaN lanes keeping x; GCC does not turn the select into vmaxps by itself
#if defined(__AVX__)
  const fvec xc = (fvec)_mm256_max_ps((__m256)(fvec{} + lo), (__m256)x);
#elif defined(__SSE__) && !defined(__AVX__)
  const fvec xc = (fvec)_mm_max_ps((__m128)(fvec{} + lo), (__m128)x);
#else
  const fvec xc = x < lo ? fvec{} + lo : x;
#endif
  const fvec t = xc * log2e + magic;
  const fvec nf = t - magic;
  fvec r = xc - nf * ln2_hi;
  r = r - nf * ln2_lo;
  fvec p = c5 * r + c4;
  p = p * r + c3;
  p = p * r + c2;
  p = p * r + c1;
  const fvec s = (fvec)((ivec)t << 23); // vector casts reinterpret the bits
  return (r * s) * p + s;
}
#endif

} // namespace detail
} // namespace fusekit
