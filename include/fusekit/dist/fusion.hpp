#pragma once
/// @file
/// Fusion of teacher distributions (reference §2.5, §3.1–3.3).
///
/// * `topk_softmax` / `build_targets`: a sparse top-k list becomes a distribution, `softmax(logits / T)`
///   over the kept entries only (FuseLLM/FuseChat collator). A one-hot entry (single logit 1.0) becomes
///   probability 1 for any T. An empty aligned list falls back to the pivot's own row ("bad case").
/// * `per_step_ce` / `metric_ce`: per-position cross-entropy of the gold next token and its masked
///   sequence mean `Σ ce_t m_t / Σ m_t`; NaN when no position is unmasked (the sample is then dropped by
///   FuseChat's `filter_nan.py`).
/// * `fusion_rewards`: `r_k = exp(-CE_k)`; optionally bf16 as in the reference trainers
///   (`1/exp(CE)` with CE, exp and the quotient rounded to bf16), which makes close CE values tie.
/// * **MinCE** (`min_ce_select`): the teacher with the largest reward, **first maximum** on ties
///   (`torch.argmax`); teacher order = [pivot (if fused with it), source 0, source 1, ...].
/// * **AvgCE** (`avg_ce_weights`): `w = softmax_k(r_k)` — a softmax over the rewards themselves, the
///   released code's rule (`distill_weighted_as_gt`), then `P = Σ_k w_k P_k`.
/// * NaN CE: treated as `nan_ce` (default 1e5, FuseChat `fuse_multi.py`), i.e. reward ~0: such a teacher
///   is never chosen unless all are NaN (then the first wins).
///
/// Sparse outputs use `sparse_target` (sparse_target.hpp); dense outputs are row-major matrix views.

#include <fusekit/core/error.hpp>
#include <fusekit/dist/align_distribution.hpp>
#include <fusekit/dist/sparse_target.hpp>
#include <fusekit/types/bf16.hpp>
#include <fusekit/view/strided_view.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

namespace fusekit::dist {

/// softmax(logits / T) of one sparse row, computed in double, written to `probs`.
inline void topk_softmax(std::span<const float> logits, float temperature, std::span<float> probs) {
  FUSEKIT_EXPECTS(temperature > 0 && std::isfinite(temperature), invalid_argument,
                  "topk_softmax: temperature must be positive and finite, got " + std::to_string(temperature));
  FUSEKIT_EXPECTS(logits.size() == probs.size(), shape_mismatch, "topk_softmax: logits and probs differ in length");
  if (logits.empty()) return;
  double mx = -std::numeric_limits<double>::infinity();
  for (float l : logits) mx = std::max(mx, static_cast<double>(l) / temperature);
  double sum = 0;
  for (std::size_t k = 0; k < logits.size(); ++k) sum += std::exp(static_cast<double>(logits[k]) / temperature - mx);
  for (std::size_t k = 0; k < logits.size(); ++k)
    probs[k] = static_cast<float>(std::exp(static_cast<double>(logits[k]) / temperature - mx) / sum);
}

/// Options of `build_targets`.
struct target_options {
  float temperature = 1.0f;
  /// Replace an empty aligned row by the pivot's row (reference behaviour). If false it stays empty.
  bool empty_falls_back_to_pivot = true;
};

/// Sparse target of one sequence from aligned (or own) top-k rows: row i = softmax(logits_i / T);
/// empty rows take `fallback`'s row i when given (the pivot's own top-k).
inline sparse_target<float> build_targets(const aligned_topk& rows, std::int64_t vocab_size,
                                          const target_options& options = {}, const aligned_topk* fallback = nullptr) {
  if (fallback)
    FUSEKIT_EXPECTS(fallback->rows() == rows.rows(), shape_mismatch,
                    "build_targets: " + std::to_string(rows.rows()) + " aligned rows but " +
                        std::to_string(fallback->rows()) + " pivot rows");
  sparse_target<float> t(vocab_size);
  std::vector<float> probs;
  for (std::int64_t r = 0; r < rows.rows(); ++r) {
    const aligned_topk* src = &rows;
    if (rows.row_size(r) == 0 && fallback && options.empty_falls_back_to_pivot) src = fallback;
    const auto ids = src->row_ids(r);
    const auto logits = src->row_logits(r);
    for (auto id : ids)
      FUSEKIT_EXPECTS(id >= 0 && id < vocab_size, out_of_range,
                      "build_targets: id " + std::to_string(id) + " in row " + std::to_string(r) + " outside [0, " +
                          std::to_string(vocab_size) + ")");
    probs.resize(ids.size());
    topk_softmax(logits, options.temperature, probs);
    t.push_row(ids, probs);
  }
  return t;
}

/// Per-position CE `ce_t = -log softmax(Z_t)[y_{t+1}]` for t in [0, L-1); 0 where `labels[t+1] == ignore`.
/// `logits` is `[L, V]`, `labels` has L entries. Computed in double.
template <class T>
std::vector<double> per_step_ce(matrix_view<const T> logits, std::span<const std::int64_t> labels,
                                std::int64_t ignore_index = -100) {
  const std::int64_t L = logits.extent(0), V = logits.extent(1);
  FUSEKIT_EXPECTS(static_cast<std::int64_t>(labels.size()) == L, shape_mismatch,
                  "per_step_ce: " + std::to_string(labels.size()) + " labels for " + std::to_string(L) + " positions");
  std::vector<double> ce(static_cast<std::size_t>(std::max<std::int64_t>(L - 1, 0)), 0.0);
  for (std::int64_t t = 0; t + 1 < L; ++t) {
    const std::int64_t y = labels[static_cast<std::size_t>(t + 1)];
    if (y == ignore_index) continue;
    FUSEKIT_EXPECTS(y >= 0 && y < V, out_of_range,
                    "per_step_ce: label " + std::to_string(y) + " at position " + std::to_string(t + 1) +
                        " outside [0, " + std::to_string(V) + ")");
    double mx = -std::numeric_limits<double>::infinity();
    for (std::int64_t v = 0; v < V; ++v) mx = std::max(mx, static_cast<double>(static_cast<float>(logits(t, v))));
    double s = 0;
    for (std::int64_t v = 0; v < V; ++v) s += std::exp(static_cast<double>(static_cast<float>(logits(t, v))) - mx);
    ce[static_cast<std::size_t>(t)] = -(static_cast<double>(static_cast<float>(logits(t, y))) - mx - std::log(s));
  }
  return ce;
}

/// `Σ ce_t m_t / Σ m_t` with an explicit mask of the same length; NaN if Σ m = 0.
inline double metric_ce(std::span<const double> ce, std::span<const float> mask) {
  FUSEKIT_EXPECTS(ce.size() == mask.size(), shape_mismatch,
                  "metric_ce: " + std::to_string(ce.size()) + " CE values but " + std::to_string(mask.size()) + " mask values");
  double num = 0, den = 0;
  for (std::size_t t = 0; t < ce.size(); ++t) {
    num += ce[t] * mask[t];
    den += mask[t];
  }
  return den == 0 ? std::numeric_limits<double>::quiet_NaN() : num / den;
}

/// `metric_ce` with the mask `m_t = [labels[t+1] != ignore]` (FuseChat `--mask_instruction`);
/// `ce` has L-1 entries for L labels.
inline double metric_ce(std::span<const double> ce, std::span<const std::int64_t> labels, std::int64_t ignore_index = -100) {
  FUSEKIT_EXPECTS(ce.size() + 1 == labels.size(), shape_mismatch,
                  "metric_ce: " + std::to_string(ce.size()) + " CE values need " + std::to_string(ce.size() + 1) +
                      " labels, got " + std::to_string(labels.size()));
  std::vector<float> mask(ce.size());
  for (std::size_t t = 0; t < ce.size(); ++t) mask[t] = labels[t + 1] != ignore_index ? 1.0f : 0.0f;
  return metric_ce(ce, mask);
}

/// Precision of the reward computation.
enum class reward_precision {
  fp32,  ///< r = exp(-CE) in float
  bf16,  ///< r = 1/exp(CE) with every step rounded to bf16 (reference trainers)
};

/// Options of the fusion rules.
struct fusion_options {
  reward_precision precision = reward_precision::fp32;
  /// CE value substituted for NaN (FuseChat `fuse_multi.py` uses 1e5).
  double nan_ce = 1e5;
};

/// Rewards `r_k = exp(-CE_k)` of the teachers.
inline std::vector<float> fusion_rewards(std::span<const double> ce, const fusion_options& options = {}) {
  std::vector<float> r(ce.size());
  for (std::size_t k = 0; k < ce.size(); ++k) {
    const double c = std::isnan(ce[k]) ? options.nan_ce : ce[k];
    if (options.precision == reward_precision::bf16) {
      const bf16 cb(static_cast<float>(c));
      const bf16 e(std::exp(static_cast<float>(cb)));
      r[k] = static_cast<float>(bf16(1.0f / static_cast<float>(e)));
    } else {
      r[k] = static_cast<float>(std::exp(-c));
    }
  }
  return r;
}

/// MinCE: index of the teacher with the largest reward (first maximum).
inline std::int64_t min_ce_select(std::span<const double> ce, const fusion_options& options = {}) {
  FUSEKIT_EXPECTS(!ce.empty(), invalid_argument, "min_ce_select: no teachers");
  const auto r = fusion_rewards(ce, options);
  std::int64_t best = 0;
  for (std::size_t k = 1; k < r.size(); ++k)
    if (r[k] > r[static_cast<std::size_t>(best)]) best = static_cast<std::int64_t>(k);
  return best;
}

/// AvgCE weights `softmax_k(r_k)` (computed in double from the rewards).
inline std::vector<double> avg_ce_weights(std::span<const double> ce, const fusion_options& options = {}) {
  FUSEKIT_EXPECTS(!ce.empty(), invalid_argument, "avg_ce_weights: no teachers");
  const auto r = fusion_rewards(ce, options);
  double mx = -std::numeric_limits<double>::infinity();
  for (float x : r) mx = std::max(mx, static_cast<double>(x));
  std::vector<double> w(r.size());
  double s = 0;
  for (std::size_t k = 0; k < r.size(); ++k) s += (w[k] = std::exp(static_cast<double>(r[k]) - mx));
  for (auto& x : w) x /= s;
  return w;
}

/// MinCE over sparse teacher targets of one sequence: a copy of the chosen teacher's rows.
inline sparse_target<float> min_ce_fuse(std::span<const sparse_target<float>> teachers, std::span<const double> ce,
                                        const fusion_options& options = {}) {
  FUSEKIT_EXPECTS(teachers.size() == ce.size(), shape_mismatch,
                  "min_ce_fuse: " + std::to_string(teachers.size()) + " teachers but " + std::to_string(ce.size()) + " CE values");
  return teachers[static_cast<std::size_t>(min_ce_select(ce, options))];
}

/// AvgCE over sparse teacher targets of one sequence: row-wise `Σ_k w_k P_k` as a sparse row (ids in
/// ascending order). All teachers must have the same rows and vocabulary.
inline sparse_target<float> avg_ce_fuse(std::span<const sparse_target<float>> teachers, std::span<const double> ce,
                                        const fusion_options& options = {}) {
  FUSEKIT_EXPECTS(!teachers.empty() && teachers.size() == ce.size(), shape_mismatch,
                  "avg_ce_fuse: " + std::to_string(teachers.size()) + " teachers but " + std::to_string(ce.size()) + " CE values");
  for (const auto& t : teachers)
    FUSEKIT_EXPECTS(t.rows() == teachers[0].rows() && t.vocab_size == teachers[0].vocab_size, shape_mismatch,
                    "avg_ce_fuse: teachers differ in rows or vocabulary size");
  const auto w = avg_ce_weights(ce, options);
  sparse_target<float> out(teachers[0].vocab_size);
  std::vector<std::pair<std::int32_t, double>> acc;
  std::vector<std::int32_t> ids;
  std::vector<float> probs;
  for (std::int64_t r = 0; r < teachers[0].rows(); ++r) {
    acc.clear();
    for (std::size_t k = 0; k < teachers.size(); ++k) {
      const auto ri = teachers[k].row_ids(r);
      const auto rp = teachers[k].row_probs(r);
      for (std::size_t e = 0; e < ri.size(); ++e) acc.emplace_back(ri[e], w[k] * static_cast<double>(rp[e]));
    }
    std::sort(acc.begin(), acc.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    ids.clear();
    probs.clear();
    for (std::size_t e = 0; e < acc.size(); ++e) {
      if (!ids.empty() && ids.back() == acc[e].first) {
        probs.back() = static_cast<float>(static_cast<double>(probs.back()) + acc[e].second);
      } else {
        ids.push_back(acc[e].first);
        probs.push_back(static_cast<float>(acc[e].second));
      }
    }
    out.push_row(ids, probs);
  }
  return out;
}

/// Dense fusion: `out = Σ_k weights[k] · teachers[k]` (all `[rows × V]`). With MinCE, pass a one-hot
/// weight vector (`fusion_weights_min_ce`).
template <class T, class U>
void fuse_dense(std::span<const matrix_view<const T>> teachers, std::span<const double> weights, matrix_view<U> out) {
  FUSEKIT_EXPECTS(teachers.size() == weights.size() && !teachers.empty(), shape_mismatch,
                  "fuse_dense: " + std::to_string(teachers.size()) + " teachers but " + std::to_string(weights.size()) + " weights");
  for (const auto& t : teachers)
    FUSEKIT_EXPECTS(t.extent(0) == out.extent(0) && t.extent(1) == out.extent(1), shape_mismatch,
                    "fuse_dense: teacher is " + std::to_string(t.extent(0)) + " x " + std::to_string(t.extent(1)) +
                        ", output " + std::to_string(out.extent(0)) + " x " + std::to_string(out.extent(1)));
  for (std::int64_t r = 0; r < out.extent(0); ++r)
    for (std::int64_t v = 0; v < out.extent(1); ++v) {
      double s = 0;
      for (std::size_t k = 0; k < teachers.size(); ++k)
        if (weights[k] != 0) s += weights[k] * static_cast<double>(static_cast<float>(teachers[k](r, v)));
      out(r, v) = static_cast<U>(static_cast<float>(s));
    }
}

/// One-hot MinCE weights (1 for the selected teacher).
inline std::vector<double> fusion_weights_min_ce(std::span<const double> ce, const fusion_options& options = {}) {
  std::vector<double> w(ce.size(), 0.0);
  w[static_cast<std::size_t>(min_ce_select(ce, options))] = 1.0;
  return w;
}

}  // namespace fusekit::dist
