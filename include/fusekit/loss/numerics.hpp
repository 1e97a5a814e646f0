/// @file
/// @brief Numerically stable scalar helpers for losses: sigmoid, log-sigmoid, softplus, log1mexp,
/// and a vectorizable exp for softmax inner loops.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include <fusekit/core/config.hpp>

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

/// e^x for x ≤ 0 in float, written with plain arithmetic so loops over it auto-vectorize
/// (Cody–Waite reduction x = n·ln2 + r, degree-6 polynomial for e^r, exponent by bit manipulation).
/// Max relative error ≈ 2 ulp on [−87, 0]; returns 0 below −87.3 (and for −inf); NaN gives NaN.
/// (The row kernels use the 8-lane version below; this scalar one serves tails and other compilers.) Used only for
/// softmax terms e^{z−max}, whose argument is never positive; fp32 accumulation makes the error
/// negligible against the tolerances of the tests (≤ 1e−6 relative on a full row sum).
FUSEKIT_HOST_DEVICE FUSEKIT_FORCEINLINE float exp_nonpos(float x) noexcept {
  constexpr float lo = -87.3f;
  const float keep = x < lo ? 0.0f : 1.0f; // 0 for x < lo and −inf; NaN keeps 1 and propagates
  const float xc = x < lo ? lo : x;
  constexpr float log2e = 1.44269504088896341f;
  constexpr float ln2_hi = 0.693359375f;
  constexpr float ln2_lo = -2.12194440e-4f;
  constexpr float magic = 12582912.0f; // 1.5·2^23: adding and subtracting it rounds to nearest
  const float nf = (xc * log2e + magic) - magic;
  float r = xc - nf * ln2_hi;
  r = r - nf * ln2_lo;
  // minimax polynomial for e^r on [-ln2/2, ln2/2] (Cephes expf coefficients)
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // exponent from the rounded value's low mantissa bits (no float→int conversion, which may trap)
  const std::int32_t n = std::bit_cast<std::int32_t>(xc * log2e + magic) - std::bit_cast<std::int32_t>(magic);
  const float scale = std::bit_cast<float>(static_cast<std::int32_t>(static_cast<std::uint32_t>(n + 127) << 23));
  return p * scale * keep;
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

/// exp_nonpos on a vector. Written with explicit vector selects because GCC does not if-convert the
/// scalar version under the default -ftrapping-math, so a plain loop over it stays scalar.
FUSEKIT_FORCEINLINE fvec exp_nonpos(fvec x) noexcept {
  const fvec lo = fvec{} - 87.3f;
  const ivec under = x < lo; // all-ones lanes where x < lo (and −inf); false for NaN, which propagates
  const fvec xc = under ? lo : x;
  const fvec magic = fvec{} + 12582912.0f;
  const fvec t = xc * 1.44269504088896341f + magic;
  const fvec nf = t - magic;
  fvec r = xc - nf * 0.693359375f;
  r = r - nf * -2.12194440e-4f;
  fvec p = fvec{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const ivec n = (ivec)t - (ivec)magic; // vector casts reinterpret the bits
  const ivec bits = (n + 127) << 23;
  const fvec y = p * (fvec)bits;
  return under ? fvec{} : y;
}
#endif

} // namespace detail
} // namespace fusekit
