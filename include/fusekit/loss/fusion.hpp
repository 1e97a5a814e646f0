/// @file
/// @brief The FuseLLM / FuseChat fusion (distillation) loss λ·CE(gold) + (1−λ)·CE-or-KL(sparse target),
/// value and logits gradient in one streaming pass per row, without densifying the target.
///
/// Per row t (logits z_t, p_t = softmax(z_t), gold label y_t, sparse target q_t from
/// fusekit::dist::sparse_target_view):
///
///     L = λ/N_g · Σ_{t gold} (lse_t − z_{t,y})  +  (1−λ)/M · Σ_{t distilled} (Σq·lse_t − Σ_i q_i z_{t,i}  [− H(q_t)
///     for KL]) ∂L/∂z_t = c_t·p_t − λ/N_g·onehot(y_t) − (1−λ)/M·q_t,   c_t = λ/N_g·[gold] + (1−λ)/M·Σq·[distilled]
///
/// (for a normalized q this is p − λ·onehot − (1−λ)·q scaled per row). A row is *gold* when its label
/// counts (labels ≠ ignore_index and mask, as in logits_batch); it is *distilled* when its target row is
/// non-empty and — FuseChat (default, `distill_mask` empty) — its label counts, or — FuseLLM — the given
/// `distill_mask` (the attention mask) is non-zero. N_g and M default to the counts of gold and distilled
/// rows in this call; pass explicit normalizers when a batch is split over several calls.
/// Matches FuseAI `FuseLLM/src/utils/trainer.py` and `FuseChat/train/trainer.py` (loss type "hard",
/// distill_loss_type "ce" or "kl", student temperature 1), fusechat-algorithms.md §3.4. With a student
/// temperature τ ≠ 1 the distillation term uses softmax(z/τ) and is multiplied by τ² (Liger / axolotl;
/// `scale_by_t2 = false` drops the factor): its gradient is τ·(Σq·p_τ − q); the gold term keeps τ = 1.
/// For τ = 1 and a gradient output, a fused kernel computes one exp per logit (softmax terms parked in
/// the gradient row or a float scratch row and rescaled per block); τ ≠ 1 reads the row three times.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <fusekit/core/error.hpp>
#include <fusekit/dist/sparse_target.hpp>
#include <fusekit/exec/primitives.hpp>
#include <fusekit/loss/detail/row_kernels.hpp>
#include <fusekit/loss/logprob.hpp>
#include <fusekit/types/element.hpp>
#include <fusekit/view/strided_view.hpp>

namespace fusekit {

/// Distillation term of the fusion loss.
enum class distill_kind {
  ce, ///< cross-entropy −Σ q log p (FuseLLM/FuseChat released choice)
  kl, ///< Σ q (log q − log p) (0·log 0 = 0): same gradient, value lower by H(q)
};

/// The fusion loss as a value type (defaults: FuseLLM/FuseChat READMEs).
struct fusion_loss {
  static constexpr std::string_view name = "fusion";
  double lm_weight = 0.9;               ///< λ (`lm_loss_weight`)
  distill_kind kind = distill_kind::ce; ///< `distill_loss_type`
  double gold_normalizer = 0;           ///< N_g; 0 = number of gold rows in the call
  double distill_normalizer = 0;        ///< M; 0 = number of distilled rows in the call
  double temperature = 1.0;             ///< student temperature τ of the distillation term (FuseLLM: 1)
  bool scale_by_t2 = true;              ///< with τ ≠ 1, multiply the distillation term by τ² (Liger/axolotl)

  void validate() const {
    FUSEKIT_EXPECTS(lm_weight >= 0 && lm_weight <= 1, invalid_argument,
                    "fusion_loss: lm_weight must be in [0, 1], got " + std::to_string(lm_weight));
    FUSEKIT_EXPECTS(gold_normalizer >= 0 && std::isfinite(gold_normalizer), invalid_argument,
                    "fusion_loss: gold_normalizer must be >= 0 (0 = count)");
    FUSEKIT_EXPECTS(distill_normalizer >= 0 && std::isfinite(distill_normalizer), invalid_argument,
                    "fusion_loss: distill_normalizer must be >= 0 (0 = count)");
    FUSEKIT_EXPECTS(temperature > 0 && std::isfinite(temperature), invalid_argument,
                    "fusion_loss: temperature must be positive, got " + std::to_string(temperature));
  }
};

/// What fusion_loss_and_grad returns.
struct fusion_loss_result {
  double loss = 0;                 ///< λ·lm_loss + (1−λ)·distill_loss
  double lm_loss = 0;              ///< mean gold CE (L_CLM)
  double distill_loss = 0;         ///< mean distillation CE or KL (L_fuse)
  std::int64_t gold_rows = 0;      ///< rows whose gold label counts
  std::int64_t distilled_rows = 0; ///< rows with a target that count for the distillation term
};

/// Options of fusion_loss_and_grad.
template <class K = std::uint8_t> struct fusion_options {
  vector_view<const K> distill_mask{}; ///< [N] FuseLLM attention mask; empty = FuseChat (label mask)
  bool accumulate = false;             ///< add the gradient into `grad` instead of overwriting
};

/// Computes the fusion loss and, when `grad` is non-empty, writes d(loss)/d(logits) into it ([N, V],
/// any element type, may be the logits' memory). `target` must have N rows and vocab_size V, or no
/// rows at all (then only the gold term exists: plain token-mean cross-entropy, single pass).
/// Throws fusekit::error on shape mismatches, ids outside [0, V), non-finite rows that count.
/// A call with no gold rows and no distilled rows returns 0 loss and a zero gradient.
template <class Policy, class T, class L, class M, class P, class Idx, class O = float, class K = std::uint8_t>
fusion_loss_result fusion_loss_and_grad(const Policy& policy, const fusion_loss& loss, const logits_batch<T, L, M>& b,
                                        const dist::sparse_target_view<P, Idx, host_space>& target,
                                        matrix_view<O> grad = {}, const fusion_options<K>& opt = {}) {
  exec::check_runs_on<Policy, matrix_view<const T>, matrix_view<O>>();
  constexpr const char* fn = "fusion_loss_and_grad";
  loss.validate();
  detail::check_logits_batch(b, fn);
  const std::int64_t N = b.rows(), V = b.vocab();
  const bool has_target = target.rows() > 0;
  if (has_target) {
    FUSEKIT_EXPECTS(target.rows() == N, shape_mismatch,
                    std::string(fn) + ": target has " + std::to_string(target.rows()) + " rows, logits " +
                        std::to_string(N));
    FUSEKIT_EXPECTS(target.vocab_size == V, shape_mismatch,
                    std::string(fn) + ": target vocab_size " + std::to_string(target.vocab_size) + " != logits width " +
                        std::to_string(V));
    FUSEKIT_EXPECTS(target.ids.extent(0) == target.probs.extent(0) && target.offsets[N] <= target.ids.extent(0),
                    shape_mismatch, std::string(fn) + ": target offsets/ids/probs disagree");
    FUSEKIT_EXPECTS(target.ids.extent(0) == 0 || (target.ids.stride(0) == 1 && target.probs.stride(0) == 1),
                    unsupported, std::string(fn) + ": target ids/probs must be contiguous");
    for (std::int64_t k = 0; k < target.offsets[N]; ++k) {
      const auto id = static_cast<std::int64_t>(target.ids[k]);
      FUSEKIT_EXPECTS(id >= 0 && id < V, out_of_range,
                      std::string(fn) + ": target id " + std::to_string(id) + " (entry " + std::to_string(k) +
                          ") outside [0, " + std::to_string(V) + ")");
    }
  }
  detail::check_rows(opt.distill_mask, N, fn, "distill_mask");
  if (!grad.empty())
    FUSEKIT_EXPECTS(grad.extent(0) == N && grad.extent(1) == V, shape_mismatch,
                    std::string(fn) + ": grad is [" + std::to_string(grad.extent(0)) + ", " +
                        std::to_string(grad.extent(1)) + "], logits [" + std::to_string(N) + ", " + std::to_string(V) +
                        "]");

  auto distilled = [&](std::int64_t t) {
    if (!has_target || target.offsets[t + 1] <= target.offsets[t])
      return false;
    return opt.distill_mask.empty() ? b.valid(t) : opt.distill_mask[t] != K(0);
  };
  fusion_loss_result res;
  for (std::int64_t t = 0; t < N; ++t) {
    res.gold_rows += b.valid(t) ? 1 : 0;
    res.distilled_rows += distilled(t) ? 1 : 0;
  }
  const double lam = loss.lm_weight;
  const double ng = loss.gold_normalizer > 0 ? loss.gold_normalizer : static_cast<double>(res.gold_rows);
  const double nm = loss.distill_normalizer > 0 ? loss.distill_normalizer : static_cast<double>(res.distilled_rows);
  const double wg = ng > 0 ? lam / ng : 0.0;         // weight of a gold row
  const double wd = nm > 0 ? (1.0 - lam) / nm : 0.0; // weight of a distilled row

  using C = compute_t<T>;
  std::vector<double> row_gold(static_cast<std::size_t>(N), 0.0), row_dist(static_cast<std::size_t>(N), 0.0);
  std::vector<std::uint8_t> bad(static_cast<std::size_t>(N), 0);
  // one-exp-per-element kernel: compute type float, no accumulation, rows up to fused_max_blocks blocks;
  // a float contiguous gradient row is its own parking space, otherwise a per-chunk float scratch row
  constexpr bool fused_type = std::is_same_v<C, float>;
  const bool tempered = loss.temperature != 1.0;
  const double tau = loss.temperature;
  const double dscale = tempered && loss.scale_by_t2 ? tau * tau : 1.0; // factor on the distillation term
  const bool use_fused =
      fused_type && !tempered && !grad.empty() && !opt.accumulate && V <= detail::fused_max_blocks * detail::row_block;
  // a gradient that does not alias the logits is written with non-temporal stores when it is large
  // (after parking in a scratch row): no read-for-ownership of the output lines
  const bool grad_aliases = !grad.empty() && N > 0 &&
                            static_cast<const void*>(&grad(0, 0)) == static_cast<const void*>(&b.logits(0, 0));
  const bool streaming = !grad.empty() && !grad_aliases && !opt.accumulate && grad.stride(1) == 1 &&
                         N * V * static_cast<std::int64_t>(sizeof(O)) >= detail::stream_min_bytes;
  const bool park_in_grad =
      use_fused && std::is_same_v<std::remove_cv_t<O>, float> && grad.stride(1) == 1 && !streaming;
  // rows handed out dynamically; one float scratch row per worker when the fused kernel parks there
  auto make_scratch = [&] { return std::vector<float>(use_fused && !park_in_grad ? static_cast<std::size_t>(V) : 0); };
  detail::for_each_row_chunk(policy, N, detail::row_grain(V), make_scratch, [&](std::vector<float>& scratch,
                                                                                 std::int64_t t0, std::int64_t t1) {
    for (std::int64_t t = t0; t < t1; ++t) {
      const bool g = b.valid(t), d = distilled(t);
      O* orow = grad.empty() ? nullptr : &grad(t, 0);
      if (!g && !d) {
        if (orow)
          detail::row_zero(orow, grad.stride(1), V, opt.accumulate);
        continue;
      }
      const T* row = &b.logits(t, 0);
      const std::int64_t sv = b.logits.stride(1);
      const std::int64_t y = g ? static_cast<std::int64_t>(b.labels[t]) : -1;
      // the sparse gather first: the fused kernel below may overwrite the row (in place)
      double qsum = 0, qz = 0, qlogq = 0;
      std::int64_t k0 = 0, k1 = 0;
      if (d) {
        k0 = target.offsets[t];
        k1 = target.offsets[t + 1];
        for (std::int64_t k = k0; k < k1; ++k) {
          const double q = static_cast<double>(target.probs[k]);
          const double z = static_cast<double>(to_compute(row[static_cast<std::int64_t>(target.ids[k]) * sv]));
          qsum += q;
          qz += q * z;
          if (q > 0)
            qlogq += q * std::log(q);
        }
      }
      const C c = static_cast<C>((g ? wg : 0.0) + (d ? wd * qsum : 0.0));
      const Idx* ids = d ? &target.ids[k0] : nullptr;
      const P* ps = d ? &target.probs[k0] : nullptr;
      const std::int64_t nsp = d ? (k1 - k0) : 0;
      detail::row_stats<C> r;
      bool done = false;
      if constexpr (fused_type) {
        if (use_fused) {
          float* park = scratch.data();
          if constexpr (std::is_same_v<std::remove_cv_t<O>, float>)
            if (park_in_grad)
              park = orow;
          r = detail::row_loss_grad_fused(row, sv, orow, grad.stride(1), park, V, y, c, static_cast<C>(wg), ids, ps,
                                          nsp, static_cast<C>(wd), streaming);
          done = true;
        }
      }
      if (!done)
        r = detail::row_forward_dispatch<C>(row, V, sv, y, {}, static_cast<detail::topk_state<C>*>(nullptr));
      const double lse = static_cast<double>(r.lse);
      // student temperature: the distillation term uses softmax(z/τ), scaled by τ² (or not)
      const double lse_t =
          tempered && d ? static_cast<double>(detail::row_lse_scaled<C>(row, V, sv, static_cast<C>(1.0 / tau))) : lse;
      if (!std::isfinite(lse) || !std::isfinite(lse_t) || (g && !std::isfinite(static_cast<double>(r.label_logit))) ||
          !std::isfinite(qz)) {
        bad[static_cast<std::size_t>(t)] = 1;
        continue;
      }
      if (g)
        row_gold[static_cast<std::size_t>(t)] = lse - static_cast<double>(r.label_logit);
      if (d)
        row_dist[static_cast<std::size_t>(t)] =
            dscale * (qsum * lse_t - qz / tau + (loss.kind == distill_kind::kl ? qlogq : 0.0));
      if (orow && !done) {
        if (tempered) {
          // ∂/∂z of dscale·CE(q, softmax(z/τ)) = (dscale/τ)·(Σq·p_τ − q)
          const double ds = dscale / tau;
          detail::row_backward_two<C>(row, sv, orow, grad.stride(1), V, static_cast<C>(r.lse),
                                      static_cast<C>(g ? wg : 0.0), static_cast<C>(1.0 / tau), static_cast<C>(lse_t),
                                      static_cast<C>(d ? wd * ds * qsum : 0.0), y, static_cast<C>(wg), ids, ps, nsp,
                                      static_cast<C>(wd * ds), opt.accumulate);
        } else {
          detail::row_backward<C>(row, sv, orow, grad.stride(1), V, static_cast<C>(r.lse), c, y, static_cast<C>(wg),
                                  ids, ps, nsp, static_cast<C>(wd), opt.accumulate, streaming);
        }
      }
    }
  });
  for (std::int64_t t = 0; t < N; ++t)
    if (bad[static_cast<std::size_t>(t)])
      throw_error(errc::invalid_argument,
                  std::string(fn) + ": logits row " + std::to_string(t) +
                      " is not finite (NaN/inf logits, or every logit −inf) on a row that counts");
  double sg = 0, sd = 0;
  for (std::int64_t t = 0; t < N; ++t) { // in order: deterministic for any policy
    sg += row_gold[static_cast<std::size_t>(t)];
    sd += row_dist[static_cast<std::size_t>(t)];
  }
  res.lm_loss = ng > 0 ? sg / ng : 0.0;
  res.distill_loss = nm > 0 ? sd / nm : 0.0;
  res.loss = lam * res.lm_loss + (1.0 - lam) * res.distill_loss;
  return res;
}

/// Token-mean cross-entropy with its logits gradient in one pass (fusion loss with λ = 1 and no target).
template <class Policy, class T, class L, class M, class O = float>
fusion_loss_result cross_entropy_and_grad(const Policy& policy, const logits_batch<T, L, M>& b,
                                          matrix_view<O> grad = {}, double normalizer = 0, bool accumulate = false) {
  return fusion_loss_and_grad(policy, fusion_loss{.lm_weight = 1.0, .gold_normalizer = normalizer}, b,
                              dist::sparse_target_view<float, std::int32_t, host_space>{}, grad,
                              fusion_options<std::uint8_t>{.accumulate = accumulate});
}

} // namespace fusekit
