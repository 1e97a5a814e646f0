/// @file
/// @brief `sce`: Select–Calculate–Erase (FuseChat, arXiv 2408.07990), upstream-mergekit and FuseChat-repository
/// variants.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

#include <fusekit/core/error.hpp>
#include <fusekit/exec/policy.hpp>
#include <fusekit/exec/select.hpp>
#include <fusekit/merge/detail/kernels.hpp>
#include <fusekit/merge/detail/topk.hpp>
#include <fusekit/merge/merge.hpp>

namespace fusekit {

/// Which published SCE the method reproduces (they differ only when select_topk < 1).
enum class sce_variant {
  mergekit, ///< upstream mergekit (PR #493): the top-τ variance mask is applied to the task vectors themselves
  fusechat  ///< FuseChat repository: the mask only feeds the weights; erase and merge use the full task vectors
};

/// SCE for one tensor, with task vectors Δ_j = x_j − b (j = 1..J):
///  1. Select (τ = select_topk < 1): var_e = population variance over j of Δ[j,e]; keep the
///     k = floor(τ·#(var ≠ 0)) elements of largest variance (exact top-k, lowest index wins ties); Δsel = mask⊙Δ.
///  2. Calculate: c_j = mean_e(Δsel[j,e]²), w_j = c_j/Σc (uniform 1/J if Σc < 1e-6).
///  3. Erase: Δuse = Δsel (mergekit) or Δ (fusechat); σ_e = sign(Σ_j Δuse[j,e]) (≥ 0 → +);
///     keep[j,e] = sign(Δuse[j,e]) = σ_e (zeros never kept).
///  4. out = b + Σ_j w_j·keep·Δuse / max(Σ_j w_j·keep, 1e-6).
/// mergekit defaults: select_topk = 1 (no selection), variant mergekit. No per-model parameters.
namespace detail {
#if FUSEKIT_CONVERT_X86 && defined(__AVX2__) && FUSEKIT_HAS_VECTOR_EXT
/// The most models sce_merge_all_bf16 takes (its L1 buffer of deltas); more take the blocked loop.
inline constexpr std::size_t sce_regs_max_models = 64;

/// SCE's erase + merge with every element selected (select_topk = 1) over elements [b, e) of contiguous
/// bf16 rows, in registers: per 16 elements (even/odd halves) S = Σ_j Δ_j, the elected sign, and the
/// disjoint weighted mean Σ w_j·Δ_j / max(Σ w_j, 1e-6) over the models that agree, with the 16 deltas of
/// each model parked in an L1 buffer between the two loops (4-5% faster than widening them again). The
/// same operations in the same order as the blocked loop of sce::apply (elected_sign, positive_mask,
/// masked), so the same bits. At most sce_regs_max_models models.
inline void sce_merge_all_bf16(bf16* out, const bf16* base, const bf16* const* x, const float* w, std::size_t J,
                               std::int64_t b, std::int64_t e, bool streaming) noexcept {
  typedef float v8 __attribute__((vector_size(32)));
  typedef std::int32_t i8 __attribute__((vector_size(32)));
  float dstore[32 * sce_regs_max_models]; // Δ of the 32 elements of every model, between the two loops (L1)
  float* const dbuf = dstore; // (captured by value below: GCC reloads captured references after each store)
  auto one = [&](std::int64_t q) {
    const float bv = static_cast<float>(base[q]);
    float S = 0.0f;
    for (std::size_t j = 0; j < J; ++j)
      S += static_cast<float>(x[j][q]) - bv;
    const float sg = elected_sign(S);
    float num = 0.0f, den = 0.0f;
    for (std::size_t j = 0; j < J; ++j) {
      const float d = static_cast<float>(x[j][q]) - bv;
      const std::uint32_t agree = positive_mask(d * sg);
      num += masked(w[j] * d, agree);
      den += masked(w[j], agree);
    }
    out[q] = bf16(from_bits, bf16::from_float(bv + num / std::max(den, 1e-6f)));
  };
  typedef float v8u __attribute__((vector_size(32), aligned(4))); // an unaligned, non-aliasing view of dbuf
  x32_elementwise(out, b, e, streaming, base, x, J, prefetch_distance(J + 1), one, [=](auto G_, std::int64_t q, __m256i* res) {
    constexpr int G = decltype(G_)::value; // groups of 16 elements, two independent sum chains per group
    v8 be[G], bo[G], Se[G], So[G];
    bf16_groups_load_split<G>(base + q, be, bo);
    for (int g = 0; g < G; ++g)
      Se[g] = So[g] = v8{};
    for (std::size_t j = 0; j < J; ++j) {
      for (int g = 0; g < G; ++g) {
        __m256 xe, xo;
        bf16x16_load_split(x[j] + q + 16 * g, xe, xo);
        const v8 d0 = (v8)xe - be[g], d1 = (v8)xo - bo[g];
        Se[g] = Se[g] + d0;
        So[g] = So[g] + d1;
        v8u* db = reinterpret_cast<v8u*>(dbuf + 16 * (G * j + g));
        db[0] = d0;
        db[1] = d1;
      }
    }
    v8 ge[G], go[G], ne[G], no[G], de[G], dn[G];
    for (int g = 0; g < G; ++g) {
      ge[g] = elected_sign_v8(Se[g]);
      go[g] = elected_sign_v8(So[g]);
      ne[g] = no[g] = de[g] = dn[g] = v8{};
    }
    for (std::size_t j = 0; j < J; ++j) {
      const float wj = w[j];
      const i8 wb = i8{} + std::bit_cast<std::int32_t>(wj);
      for (int g = 0; g < G; ++g) {
        const v8u* db = reinterpret_cast<const v8u*>(dbuf + 16 * (G * j + g));
        const v8 d0 = db[0], d1 = db[1];
        const v8 p0 = d0 * ge[g], p1 = d1 * go[g];
        const i8 a0 = (i8)p0 > 0, a1 = (i8)p1 > 0; // positive_mask: zeros never agree
        const v8 t0 = wj * d0, t1 = wj * d1;
        ne[g] = ne[g] + (v8)((i8)t0 & a0);
        no[g] = no[g] + (v8)((i8)t1 & a1);
        de[g] = de[g] + (v8)(wb & a0);
        dn[g] = dn[g] + (v8)(wb & a1);
      }
    }
    const __m256 floor = _mm256_set1_ps(1e-6f); // std::max(den, 1e-6f): NaN den kept
    for (int g = 0; g < G; ++g) {
      const v8 re = be[g] + ne[g] / (v8)_mm256_max_ps(floor, (__m256)de[g]);
      const v8 ro = bo[g] + no[g] / (v8)_mm256_max_ps(floor, (__m256)dn[g]);
      res[g] = bf16x16_narrow_split((__m256)re, (__m256)ro);
    }
  });
}
#endif
} // namespace detail

struct sce {
  static constexpr std::string_view name = "sce";
  double select_topk = 1.0;                  ///< τ, fraction of (non-zero-variance) elements selected
  sce_variant variant = sce_variant::mergekit; ///< which reference to reproduce when τ < 1

  /// Generic path (any host policy).
  template <class P, class Out, class Base, class In>
  void apply(const P& policy, const Out& out, const Base& base, std::span<const merge_input<In>> inputs,
             const merge_context& ctx) const {
    static_assert(!std::is_same_v<Base, no_base_t>, "fusekit::sce needs a base model (pass its view as `base`).");
    exec::check_runs_on<P, Out, Base, In>();
    using namespace detail;
    check_merge_args(name, out, base, inputs, ctx, true, 0);
    FUSEKIT_EXPECTS(std::isfinite(select_topk) && select_topk >= 0.0 && select_topk <= 1.0, invalid_argument,
                    merge_where(name, ctx) + ": select_topk = " + std::to_string(select_topk) + " is outside [0, 1]");
    const std::size_t J = inputs.size();
    const std::int64_t n = out.size();
    if (J == 0 || n == 0) {
      copy_tensor(policy, out, base);
      return;
    }
    const view_io<Base> b_io(base);
    const view_io<Out> o_io(out);
    const input_set<In> in(inputs);
    const std::int64_t blk = multi_block_size(J + 1);
    const std::int64_t nblocks = block_count(n, blk);
    const bool select = select_topk < 1.0;
    const auto invJ = 1.0f / static_cast<float>(J);

    // Variance of the task vectors at [b, b+len) into var; d holds the J deltas (rows of blk).
    auto variance = [&](std::int64_t b, std::int64_t len, float* bb, float* d, float* var, float* acc) {
      b_io.load(b, len, bb);
      std::fill(var, var + len, 0.0f);
      for (std::size_t j = 0; j < J; ++j) {
        float* dj = d + j * static_cast<std::size_t>(blk);
        in.load(j, b, len, dj);
        FUSEKIT_PRAGMA_SIMD
        for (std::int64_t e = 0; e < len; ++e) {
          dj[e] -= bb[e];
          var[e] += dj[e];
        }
      }
      float* mean = var;
      FUSEKIT_PRAGMA_SIMD
      for (std::int64_t e = 0; e < len; ++e)
        mean[e] *= invJ;
      // var[e] = Σ_j (d − mean)² / J (the same summation order for every element: j ascending).
      std::fill(acc, acc + len, 0.0f);
      for (std::size_t j = 0; j < J; ++j) {
        const float* dj = d + j * static_cast<std::size_t>(blk);
        FUSEKIT_PRAGMA_SIMD
        for (std::int64_t e = 0; e < len; ++e) {
          const float c = dj[e] - mean[e];
          acc[e] += c * c;
        }
      }
      FUSEKIT_PRAGMA_SIMD
      for (std::int64_t e = 0; e < len; ++e)
        var[e] = acc[e] * invJ;
    };

    // ---- select -------------------------------------------------------------------------------------
    block_topk sel;
    sel.n = n;
    sel.block = blk;
    sel.k = n; // everything when not selecting
    if (select) {
      const topk_request req{0, 0, select_topk};
      const std::size_t sf = static_cast<std::size_t>(blk) * (J + 3);
      auto block_keys = [&](std::int64_t b, std::int64_t len, float* s, std::uint32_t* keys, std::int64_t) {
        float* var = s + blk;
        variance(b, len, s, s + 3 * blk, var, s + 2 * blk);
        FUSEKIT_PRAGMA_SIMD
        for (std::int64_t e = 0; e < len; ++e)
          keys[e] = exec::magnitude_key(var[e]);
      };
      auto key_at = [&](std::size_t, std::int64_t e) {
        const float bv = b_io.at(e);
        float mean = 0.0f;
        for (std::size_t j = 0; j < J; ++j)
          mean += in.at(j, e) - bv;
        mean *= invJ;
        float acc = 0.0f;
        for (std::size_t j = 0; j < J; ++j) {
          const float c = (in.at(j, e) - bv) - mean;
          acc += c * c;
        }
        return exec::magnitude_key(acc * invJ);
      };
      if (select_topk <= 0.0) {
        sel.k = 0;
      } else {
        sel = std::move(select_top_k(policy, n, 1, std::span<const topk_request>(&req, 1), blk, sf, block_keys,
                                     key_at, scratch_resource(ctx))[0]);
      }
    }

    // Loads the J task vectors of a block into d (rows of blk) and the selection mask into keep (the callers
    // apply it, fused with their first use of the deltas).
    auto load_deltas = [&](std::int64_t bi, std::int64_t b, std::int64_t len, float* bb, float* d, float* keep,
                           float* var, std::uint32_t* keys, float* tmp) {
      if (select && sel.k > 0 && sel.k < n) {
        variance(b, len, bb, d, var, tmp);
        FUSEKIT_PRAGMA_SIMD
        for (std::int64_t e = 0; e < len; ++e)
          keys[e] = exec::magnitude_key(var[e]);
        sel.mark(bi, keys, len, keep);
      } else {
        b_io.load(b, len, bb);
        for (std::size_t j = 0; j < J; ++j) {
          float* dj = d + j * static_cast<std::size_t>(blk);
          in.load(j, b, len, dj);
          FUSEKIT_PRAGMA_SIMD
          for (std::int64_t e = 0; e < len; ++e)
            dj[e] -= bb[e];
        }
        std::fill(keep, keep + len, sel.k > 0 ? 1.0f : 0.0f);
      }
    };

    // Every element selected: the mask is all ones and 1·Δ = Δ, so the mask products can be skipped.
    const bool keep_all = !select || sel.k >= n;

    // contiguous bf16 base, inputs and output: both passes below in registers (select_topk = 1)
    [[maybe_unused]] bool bf16_regs = false;
    [[maybe_unused]] std::vector<const bf16*> xs;
#if FUSEKIT_CONVERT_X86 && defined(__AVX2__) && FUSEKIT_HAS_VECTOR_EXT
    if constexpr (all_bf16<Base, In, Out>) {
      bf16_regs = keep_all && J <= detail::sce_regs_max_models && b_io.contiguous && o_io.contiguous && in.all_contiguous();
      if (bf16_regs)
        for (std::size_t j = 0; j < J; ++j)
          xs.push_back(inputs[j].tensor.data());
    }
#endif

    // ---- calculate: c_j = mean(Δsel²) ---------------------------------------------------------------------
    const std::size_t sf = static_cast<std::size_t>(blk) * (J + 6);
    std::vector<double> partial(static_cast<std::size_t>(nblocks) * J, 0.0);
#if FUSEKIT_CONVERT_X86 && defined(__AVX2__) && FUSEKIT_HAS_VECTOR_EXT
    if constexpr (all_bf16<Base, In, Out>) {
      if (bf16_regs)
        exec::for_each_block(policy, n, blk, [&](std::int64_t b, std::int64_t e) {
          const std::int64_t next = std::min(blk, n - e); // the next block of every stream
          b_io.prefetch(e, next);
          for (std::size_t j = 0; j < J; ++j)
            in.prefetch(j, e, next);
          for (std::size_t j = 0; j < J; ++j)
            partial[static_cast<std::size_t>(b / blk) * J + j] =
                delta_lane_sum_bf16(base.data() + b, xs[j] + b, e - b, delta_stat::square);
        });
    }
#endif
    if (!bf16_regs)
      for_each_block_scratch(policy, n, blk, sf, [&](std::int64_t bi, std::int64_t b, std::int64_t e, float* s) {
      const std::int64_t len = e - b;
      if (keep_all) {
        // every element selected (select_topk 1): the delta feeds the sum of squares directly, one model at a
        // time, without storing it (the same values and lane order as Δsel = 1·Δ below)
        float* bb = s;
        float* x = s + blk;
        b_io.load(b, len, bb);
        for (std::size_t j = 0; j < J; ++j) {
          in.load(j, b, len, x);
          partial[static_cast<std::size_t>(bi) * J + j] = lane_sum(len, [&](std::int64_t q) {
            const float dq = x[q] - bb[q];
            return dq * dq;
          });
        }
        return;
      }
      float* d = s + 6 * blk;
      float* keep = s + blk;
      load_deltas(bi, b, len, s, d, keep, s + 2 * blk, reinterpret_cast<std::uint32_t*>(s + 3 * blk), s + 4 * blk);
      for (std::size_t j = 0; j < J; ++j) {
        const float* dj = d + j * static_cast<std::size_t>(blk);
        partial[static_cast<std::size_t>(bi) * J + j] = lane_sum(len, [&](std::int64_t q) {
          const float t = dj[q] * keep[q]; // Δsel
          return t * t;
        });
      }
    });
    const auto c = sum_blocks(partial, J);
    double csum = 0;
    for (double v : c)
      csum += v / static_cast<double>(n);
    std::vector<float> w(J);
    for (std::size_t j = 0; j < J; ++j)
      w[j] = std::abs(csum) < 1e-6 ? invJ : static_cast<float>(c[j] / static_cast<double>(n) / csum);

    // ---- erase + merge --------------------------------------------------------------------------------
    const bool masked_merge = variant == sce_variant::mergekit;
    // Elected sign, disjoint weighted mean and store of elements [b, b+len), given their base values bb and
    // the J task vectors Δuse (row j at d + j·dstride) with their sum in S.
    auto erase_merge = [&](std::int64_t b, std::int64_t len, const float* bb, const float* d, std::size_t dstride,
                           float* S, float* num, float* den) {
      std::fill(num, num + len, 0.0f);
      std::fill(den, den + len, 0.0f);
      FUSEKIT_PRAGMA_SIMD
      for (std::int64_t q = 0; q < len; ++q)
        S[q] = elected_sign(S[q]); // ties → +
      for (std::size_t j = 0; j < J; ++j) {
        const float* dj = d + j * dstride;
        const float wj = w[j];
        FUSEKIT_PRAGMA_SIMD
        for (std::int64_t q = 0; q < len; ++q) {
          const std::uint32_t agree = positive_mask(dj[q] * S[q]); // zeros never agree
          num[q] += masked(wj * dj[q], agree);
          den[q] += masked(wj, agree);
        }
      }
      FUSEKIT_PRAGMA_SIMD
      for (std::int64_t q = 0; q < len; ++q)
        num[q] = bb[q] + num[q] / std::max(den[q], 1e-6f);
      o_io.store(b, len, num);
    };
#if FUSEKIT_CONVERT_X86 && defined(__AVX2__) && FUSEKIT_HAS_VECTOR_EXT
    if constexpr (all_bf16<Base, In, Out>) {
      if (bf16_regs) {
        exec::for_each_block(policy, n, blk, [&](std::int64_t b, std::int64_t e) {
          sce_merge_all_bf16(out.data(), base.data(), xs.data(), w.data(), J, b, e, o_io.streaming);
        });
        return;
      }
    }
#endif
    for_each_block_scratch(policy, n, blk, sf, [&](std::int64_t bi, std::int64_t b, std::int64_t e, float* s) {
      const std::int64_t len = e - b;
      float* bb = s;
      float* S = s + 4 * blk;
      float* den = s + 5 * blk;
      float* d = s + 6 * blk;
      float* num = s + 2 * blk; // var scratch (free once the deltas are loaded)
      if (keep_all) {
        // The mask is all ones: element-wise from here on, so the block is merged in sub-blocks whose J deltas
        // stay in L1 (one loop per model: delta and its running sum).
        const std::int64_t sub = std::min<std::int64_t>(512, blk); // the scratch holds J rows of blk
        for (std::int64_t o = 0; o < len; o += sub) {
          const std::int64_t m = std::min(sub, len - o);
          b_io.load(b + o, m, bb);
          std::fill(S, S + m, 0.0f);
          for (std::size_t j = 0; j < J; ++j) {
            float* dj = d + j * static_cast<std::size_t>(sub);
            in.load(j, b + o, m, dj);
            FUSEKIT_PRAGMA_SIMD
            for (std::int64_t q = 0; q < m; ++q) {
              dj[q] -= bb[q];
              S[q] += dj[q];
            }
          }
          erase_merge(b + o, m, bb, d, static_cast<std::size_t>(sub), S, num, den);
        }
        return;
      }
      float* keep = s + blk;
      load_deltas(bi, b, len, bb, d, keep, num, reinterpret_cast<std::uint32_t*>(s + 3 * blk), S);
      std::fill(S, S + len, 0.0f);
      for (std::size_t j = 0; j < J; ++j) {
        float* dj = d + j * static_cast<std::size_t>(blk);
        if (masked_merge) {
          FUSEKIT_PRAGMA_SIMD
          for (std::int64_t q = 0; q < len; ++q) {
            dj[q] *= keep[q];
            S[q] += dj[q];
          }
        } else {
          FUSEKIT_PRAGMA_SIMD
          for (std::int64_t q = 0; q < len; ++q)
            S[q] += dj[q];
        }
      }
      erase_merge(b, len, bb, d, static_cast<std::size_t>(blk), S, num, den);
    });
  }
};

} // namespace fusekit
