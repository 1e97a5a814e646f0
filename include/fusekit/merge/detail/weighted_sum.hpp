/// @file
/// @brief Internal: the blocked weighted-sum kernel behind linear and task_arithmetic.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include <fusekit/exec/primitives.hpp>
#include <fusekit/merge/detail/block_io.hpp>
#include <fusekit/types/convert.hpp>
#include <fusekit/merge/merge.hpp>

namespace fusekit::detail {

#if FUSEKIT_CONVERT_X86 && defined(__AVX2__) && FUSEKIT_HAS_VECTOR_EXT
/// weighted_sum over elements [b, e) of contiguous 16-bit rows (out, base or nullptr, K inputs; T is
/// bf16, or fp16 where F16C exists: has_x16_kernels<T>), with the sum kept in registers: each 16
/// elements are loaded as two float vectors from every input (x16_load: even/odd halves for bf16,
/// vcvtph2ps for fp16), summed in the same order and with the same expressions as the blocked loop of
/// weighted_sum, and narrowed in registers (x16_narrow). Without FP contraction the result has the same
/// bits as the blocked loop; with it, the few elements done one at a time may differ by one ulp (below).
/// Every input is prefetched 2 KiB ahead (K + 2 interleaved streams are more than the hardware
/// prefetchers follow); with `streaming` the output is written with non-temporal 32-byte stores.
template <class T, bool Sub>
void weighted_sum_x16(T* out, const T* base, const T* const* x, const float* c, std::size_t K, std::int64_t b,
                      std::int64_t e, bool streaming) noexcept {
  // Sub (deltas against a base) is a template parameter: the two forms compile as straight loops
  typedef float v8 __attribute__((vector_size(32)));
  constexpr std::int64_t ahead = 1024; // elements
  // one element: the unaligned head and the tail. The same expressions as the 16-wide body, but GCC may
  // contract them differently: with its Zen tuning it avoids scalar FMA chains (acc += c·d over k) while
  // it fuses the 8-lane ones, so under FP contraction these elements can round one ulp away from the
  // vectors and from the blocked loop; with -ffp-contract=off (the fusekit tool) all agree bit for bit
  auto one = [&](std::int64_t j) {
    float acc = 0.0f;
    if constexpr (Sub) {
      const float bs = static_cast<float>(base[j]);
      for (std::size_t k = 0; k < K; ++k)
        acc += c[k] * (static_cast<float>(x[k][j]) - bs);
      acc += bs;
    } else {
      for (std::size_t k = 0; k < K; ++k)
        acc += c[k] * static_cast<float>(x[k][j]);
    }
    out[j] = from_compute<T>(acc);
  };
  x16_elementwise(out, b, e, streaming, Sub ? base : nullptr, x, K, ahead, one, [&](std::int64_t j) {
    v8 ae{}, ao{};
    if constexpr (Sub) {
      __m256 be, bo;
      x16_load(base + j, be, bo);
      for (std::size_t k = 0; k < K; ++k) {
        __m256 xe, xo;
        x16_load(x[k] + j, xe, xo);
        const float ck = c[k];
        ae += ck * ((v8)xe - (v8)be);
        ao += ck * ((v8)xo - (v8)bo);
      }
      ae += (v8)be;
      ao += (v8)bo;
    } else {
      for (std::size_t k = 0; k < K; ++k) {
        __m256 xe, xo;
        x16_load(x[k] + j, xe, xo);
        const float ck = c[k];
        ae += ck * (v8)xe;
        ao += ck * (v8)xo;
      }
    }
    return x16_narrow<T>((__m256)ae, (__m256)ao);
  });
}
#endif

/// Writes, for every element i,
///   deltas == false:  out[i] = Σ_k coeff[k]·x_k[i]
///   deltas == true:   out[i] = base[i] + Σ_k coeff[k]·(x_k[i] − base[i])
/// in fp32, one pass over the inputs in blocks of merge_block elements (bandwidth-bound).
template <class P, class Out, class Base, class In>
void weighted_sum(const P& policy, const Out& out, const Base& base, std::span<const merge_input<In>> inputs,
                  std::span<const float> coeff, bool deltas) {
  constexpr bool has_base = !std::is_same_v<std::remove_cvref_t<Base>, no_base_t>;
  const std::int64_t n = out.size();
  const bool out_contig = out.is_contiguous();
  using OT = std::remove_cv_t<typename Out::element_type>;
  const bool streaming = n * static_cast<std::int64_t>(sizeof(OT)) >= streaming_store_min_bytes;
  bool base_contig = false;
  if constexpr (has_base)
    base_contig = base.is_contiguous();
  std::vector<char> in_contig(inputs.size());
  for (std::size_t k = 0; k < inputs.size(); ++k)
    in_contig[k] = inputs[k].tensor.is_contiguous();

#if FUSEKIT_CONVERT_X86 && defined(__AVX2__) && FUSEKIT_HAS_VECTOR_EXT
  // contiguous bf16 (or fp16) everywhere, the usual checkpoint case: the register kernel
  using IT = std::remove_cv_t<typename In::element_type>;
  if constexpr (std::is_same_v<OT, IT> && has_x16_kernels<OT>) {
    bool all = out_contig && std::all_of(in_contig.begin(), in_contig.end(), [](char v) { return v != 0; });
    const OT* bp = nullptr;
    if constexpr (has_base) {
      if constexpr (all_elements_are<OT, Base>)
        bp = base.data();
      else
        all = false;
      all = all && base_contig;
    }
    if (all) {
      std::vector<const OT*> xs(inputs.size());
      for (std::size_t k = 0; k < inputs.size(); ++k)
        xs[k] = inputs[k].tensor.data();
      exec::for_each_block(policy, n, merge_block, [&](std::int64_t b, std::int64_t e) {
        if (deltas && bp != nullptr)
          weighted_sum_x16<OT, true>(out.data(), bp, xs.data(), coeff.data(), xs.size(), b, e, streaming);
        else
          weighted_sum_x16<OT, false>(out.data(), nullptr, xs.data(), coeff.data(), xs.size(), b, e, streaming);
      });
      return;
    }
  }
#endif

  exec::for_each_block(policy, n, merge_block, [&](std::int64_t b, std::int64_t e) {
    alignas(64) float acc[merge_block];
    alignas(64) float tmp[merge_block];
    alignas(64) float bas[merge_block];
    const std::int64_t len = e - b;
    // the next block of every input (one block ahead of the hardware prefetchers, which lose the
    // K + 1 interleaved streams: without this the widening loads wait on DRAM)
    const std::int64_t nlen = std::min(merge_block, n - e);
    if constexpr (has_base) {
      if (deltas)
        prefetch_block(base, base_contig, e, nlen);
    }
    for (std::size_t k = 0; k < inputs.size(); ++k)
      prefetch_block(inputs[k].tensor, in_contig[k] != 0, e, nlen);
    if constexpr (has_base) {
      if (deltas)
        load_block(base, base_contig, b, len, bas);
    }
    FUSEKIT_PRAGMA_SIMD
    for (std::int64_t j = 0; j < len; ++j)
      acc[j] = 0.0f;
    for (std::size_t k = 0; k < inputs.size(); ++k) {
      const float c = coeff[k];
      load_block(inputs[k].tensor, in_contig[k] != 0, b, len, tmp);
      if (has_base && deltas) {
        FUSEKIT_PRAGMA_SIMD
        for (std::int64_t j = 0; j < len; ++j)
          acc[j] += c * (tmp[j] - bas[j]);
      } else {
        FUSEKIT_PRAGMA_SIMD
        for (std::int64_t j = 0; j < len; ++j)
          acc[j] += c * tmp[j];
      }
    }
    if (has_base && deltas) {
      FUSEKIT_PRAGMA_SIMD
      for (std::int64_t j = 0; j < len; ++j)
        acc[j] += bas[j];
    }
    store_block(out, out_contig, b, len, acc, streaming);
  });
}

} // namespace fusekit::detail
