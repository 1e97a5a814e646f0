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
/// With a fused multiply-add (FUSEKIT_EXP_FMA) the reduction is one FMA, r = fma(−n, ln2, x): the
/// product is exact inside the FMA, so the only error beyond the final rounding is n·(ln2_f − ln2)
/// ≈ n·1.9e−9; without one it is the two-step split (ln2_hi has 9 significant bits, n·ln2_hi is exact).
namespace expf_c {
inline constexpr float lo = -88.0f; ///< clamp: rounds to n = −127, i.e. a zero scale
inline constexpr float log2e = 1.44269504088896341f;
inline constexpr float magic = 12583039.0f; ///< 1.5·2^23 + 127
inline constexpr float ln2_hi = 0.693359375f;
inline constexpr float ln2_lo = -2.12194440e-4f;
inline constexpr float ln2 = 0x1.62e430p-1f; ///< ln 2 rounded to float (one-FMA reduction)
inline constexpr float c1 = 0x1.fffff6p-1f;
inline constexpr float c2 = 0x1.fffdc4p-2f;
inline constexpr float c3 = 0x1.555a6ep-3f;
inline constexpr float c4 = 0x1.573ad0p-5f;
inline constexpr float c5 = 0x1.0fa7d8p-7f;
} // namespace expf_c

/// Whether exp_nonpos reduces the argument with one fused multiply-add (x86 FMA, CUDA device code)
/// instead of two multiply-subtracts.
#if defined(__FMA__) || defined(__CUDA_ARCH__)
#define FUSEKIT_EXP_FMA 1
#else
#define FUSEKIT_EXP_FMA 0
#endif

/// e^x for x ≤ 0 in float (valid up to x ≈ +88), branch-free plain arithmetic (see expf_c): 11
/// operations with FMA (8 of them multiply/FMA), 12 without. Measured over every float in [−87, 0]
/// against double exp: max relative error 3.9e−7 with FMA (1.7e−7 for x in [−10, 0], where the
/// softmax terms that matter lie; the extra error grows as |n|·1.9e−9 with n = round(x·log2e)), and
/// 1.85e−7 without FMA; results below 2^−126·0.7 (x < −87.3) may be flushed to 0 and x < −87.7 or −inf
/// gives exactly 0; NaN gives NaN (the clamp keeps it). Used only for softmax terms e^{z−max}, whose
/// argument is never positive. (The row kernels use the vector versions below; this scalar one serves
/// tails and other compilers, with the same operations.)
FUSEKIT_HOST_DEVICE FUSEKIT_FORCEINLINE float exp_nonpos(float x) noexcept {
  using namespace expf_c;
  const float xc = x < lo ? lo : x; // NaN compares false and stays NaN
  const float t = xc * log2e + magic;
  const float nf = t - magic; // n, exactly
#if FUSEKIT_EXP_FMA
  const float r = ::fmaf(-nf, ln2, xc);
#else
  float r = xc - nf * ln2_hi;
  r = r - nf * ln2_lo;
#endif
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

/// max(expf_c::lo, x) lane by lane, NaN lanes keeping x (GCC does not turn the select into vmaxps).
FUSEKIT_FORCEINLINE fvec clamp_lo(fvec x) noexcept {
#if defined(__AVX__)
  return (fvec)_mm256_max_ps((__m256)(fvec{} + expf_c::lo), (__m256)x);
#elif defined(__SSE__)
  return (fvec)_mm_max_ps((__m128)(fvec{} + expf_c::lo), (__m128)x);
#else
  return x < expf_c::lo ? fvec{} + expf_c::lo : x;
#endif
}

/// r = x − n·ln2 lane by lane, as in the scalar exp_nonpos (one FMA where FUSEKIT_EXP_FMA).
FUSEKIT_FORCEINLINE fvec reduce_ln2(fvec x, fvec nf) noexcept {
  using namespace expf_c;
#if FUSEKIT_EXP_FMA && defined(__AVX__)
  return (fvec)_mm256_fnmadd_ps((__m256)nf, _mm256_set1_ps(ln2), (__m256)x);
#elif FUSEKIT_EXP_FMA && defined(__SSE__)
  return (fvec)_mm_fnmadd_ps((__m128)nf, _mm_set1_ps(ln2), (__m128)x);
#elif FUSEKIT_EXP_FMA
  fvec r;
  for (int k = 0; k < fvec_lanes; ++k)
    r[k] = ::fmaf(-nf[k], ln2, x[k]);
  return r;
#else
  const fvec r = x - nf * ln2_hi;
  return r - nf * ln2_lo;
#endif
}

/// exp_nonpos of K vectors at once, x[k] ← e^{x[k]}: the scalar exp_nonpos's operations lane by lane,
/// each step taken for all K before the next (the K dependency chains interleaved in the instruction stream).
template <int K> FUSEKIT_FORCEINLINE void exp_nonpos_k(fvec (&x)[K]) noexcept {
  using namespace expf_c;
  fvec t[K], r[K], p[K];
  for (int k = 0; k < K; ++k)
    x[k] = clamp_lo(x[k]);
  for (int k = 0; k < K; ++k)
    t[k] = x[k] * log2e + magic;
  for (int k = 0; k < K; ++k)
    r[k] = reduce_ln2(x[k], t[k] - magic);
  for (int k = 0; k < K; ++k)
    p[k] = c5 * r[k] + c4;
  for (int k = 0; k < K; ++k)
    p[k] = p[k] * r[k] + c3;
  for (int k = 0; k < K; ++k)
    p[k] = p[k] * r[k] + c2;
  for (int k = 0; k < K; ++k)
    p[k] = p[k] * r[k] + c1;
  for (int k = 0; k < K; ++k) {
    const fvec s = (fvec)((ivec)t[k] << 23);
    x[k] = (r[k] * s) * p[k] + s;
  }
}

/// exp_nonpos on a vector (same operations lane by lane): the one-vector case of exp_nonpos_k. Written
/// with vector extensions because GCC does not if-convert the scalar version's clamp under the default
/// -ftrapping-math, so a plain loop over it stays scalar.
FUSEKIT_FORCEINLINE fvec exp_nonpos(fvec x) noexcept {
  fvec v[1] = {x};
  exp_nonpos_k(v);
  return v[0];
}
#endif

} // namespace detail
} // namespace fusekit
