#pragma once
/// @file
/// Distribution alignment: moves a source model's per-position top-k (ids, logits) onto the pivot's
/// positions and vocabulary (FuseChat `transform_step_logits`, reference §2.3; FuseLLM §2.4).
///
/// Inputs for one sample: pivot ids `x[0..N-1]`, source ids `s[0..M-1]`, the source top-k
/// `ids[M, K]` / `logits[M, K]` (descending logits per row), and a source -> pivot id table `b2p`
/// (MS or MinED; -1 entries are skipped). The sequences are DTW-aligned (dtw.hpp) over their token
/// strings — decoded single-token strings `u_i`, `w_j` (FuseChat) or raw strings (FuseLLM) — giving `A(i)`.
///
/// `MAP(j)` turns source row j into an ordered list of (pivot id, logit), first occurrence of a pivot id
/// winning; with `t = subst(raw_S(v))`:
/// `hard`: `vocab_P[t]` or skip; `soft`: `b2p[v]`; `default_rule`: `vocab_P[t]` if present else `b2p[v]`.
///
/// Per pivot position i (ws = w_j with the source marker replaced by the pivot marker):
/// * `|A(i)| = 1`, `j = A(i)[0]`:
///   `hard`: MAP(j) if `u_i == ws`; `soft`: MAP(j) if `u_i == ws` or the ids agree (below);
///   `default_rule`: MAP(j) if `ws` ends with `u_i` or `u_i` ends with `ws` ("1-1 or n-1: learn the last
///   token"); otherwise ONEHOT_i.
/// * `|A(i)| > 1`: ONEHOT_i, except `default_rule` with `multi_token_rule`: the first j in A(i) whose
///   marker-stripped string is a suffix of the stripped `u_i` or vice versa gives MAP(j); failing that, the
///   greedy prefix cover of the reference decides between MAP(last covered j), an empty list and ONEHOT_i.
///   (Analysis: when no single j passes the suffix test, the cover test can never succeed either, so this
///   branch always yields ONEHOT_i; it is kept verbatim.)
/// * ONEHOT_i = `[(id of the next gold token x[i+1], 1.0)]` (the last position repeats `x[N-1]`); with
///   `onehot_target::current_token` it is `x[i]` — FuseLLM's off-by-one, for parity only.
///
/// The soft-mode id test: the reference compares `vocab_P[u_i] == b2p[j]`, indexing the mapping with the
/// **position** j (bug) and looking the decoded string up as a vocabulary key. fusekit's default compares
/// `x_i == b2p[s_j]` (the intended token-id rule); `soft_index::by_position` reproduces the reference
/// (a decoded string that is not a vocabulary key counts as no match instead of raising). The other known
/// FuseChat bug, the scalar `argmin` in its MinED table builder, lives in vocab_mapping.hpp (fixed there).
///
/// Output: ragged per-pivot-position lists (`aligned_topk`, CSR) of 0..K (id, logit) pairs. Empty lists
/// mean "no information"; fusion.hpp replaces them by the pivot's own distribution.

#include <fusekit/core/error.hpp>
#include <fusekit/view/strided_view.hpp>
#include <fusekit/vocab/alignment_matrix.hpp>
#include <fusekit/vocab/dtw.hpp>
#include <fusekit/vocab/token_cost.hpp>
#include <fusekit/vocab/vocabulary.hpp>

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace fusekit::dist {

/// Which vocabulary rule `MAP` uses (FuseChat `--align_type`).
enum class alignment_mode {
  hard,          ///< EM: exact string match only
  soft,          ///< MinED table `b2p`
  default_rule,  ///< exact match, else the table (FuseChat `default`, used with the MS table)
};

/// Target of a position whose alignment fails.
enum class onehot_target {
  next_token,     ///< x[i+1] (FuseChat; correct for next-token prediction)
  current_token,  ///< x[i] (FuseLLM's off-by-one; compatibility only)
};

/// How the soft-mode match test indexes the mapping.
enum class soft_index {
  by_token_id,  ///< `x_i == b2p[s_j]` (fixed, default)
  by_position,  ///< `vocab_P[u_i] == b2p[j]` (FuseChat's released code)
};

/// Options of `align_distribution`.
struct distribution_alignment_options {
  alignment_mode mode = alignment_mode::default_rule;
  /// FuseChat's `--use_token_alignment_matrix`: enables the n-to-1 rule of the default mode.
  bool multi_token_rule = true;
  onehot_target onehot = onehot_target::next_token;
  soft_index soft = soft_index::by_token_id;
  /// Token strings used for the DTW and the match tests.
  vocab::token_string_form form = vocab::token_string_form::decoded;
  vocab::cost_rule cost = vocab::cost_rule::fusechat;
  vocab::dtw_options dtw{};
};

/// FuseLLM's settings: raw strings, cost without fallback, FuseLLM tie order, current-token one-hot.
inline distribution_alignment_options fusellm_alignment_options(alignment_mode mode = alignment_mode::hard) {
  distribution_alignment_options o;
  o.mode = mode;
  o.multi_token_rule = false;
  o.onehot = onehot_target::current_token;
  o.form = vocab::token_string_form::raw;
  o.cost = vocab::cost_rule::fusellm;
  o.dtw.tie_order = vocab::dtw_tie_order::fusellm;
  return o;
}

/// Ragged per-pivot-position (pivot id, logit) lists, CSR.
struct aligned_topk {
  std::vector<std::int64_t> offsets{0};
  std::vector<std::int32_t> ids;
  std::vector<float> logits;

  std::int64_t rows() const noexcept { return static_cast<std::int64_t>(offsets.size()) - 1; }
  std::span<const std::int32_t> row_ids(std::int64_t r) const {
    return std::span<const std::int32_t>(ids).subspan(static_cast<std::size_t>(offsets[static_cast<std::size_t>(r)]),
                                                      static_cast<std::size_t>(row_size(r)));
  }
  std::span<const float> row_logits(std::int64_t r) const {
    return std::span<const float>(logits).subspan(static_cast<std::size_t>(offsets[static_cast<std::size_t>(r)]),
                                                  static_cast<std::size_t>(row_size(r)));
  }
  std::int64_t row_size(std::int64_t r) const {
    return offsets[static_cast<std::size_t>(r) + 1] - offsets[static_cast<std::size_t>(r)];
  }
  /// Builds rows from a dense top-k block (same vocabulary, no alignment: FuseChat `replace_model.py`).
  static aligned_topk from_topk(matrix_view<const std::int32_t> ids, matrix_view<const float> logits) {
    aligned_topk out;
    for (std::int64_t r = 0; r < ids.extent(0); ++r) {
      for (std::int64_t k = 0; k < ids.extent(1); ++k) {
        out.ids.push_back(ids(r, k));
        out.logits.push_back(logits(r, k));
      }
      out.offsets.push_back(static_cast<std::int64_t>(out.ids.size()));
    }
    return out;
  }
};

namespace detail {
inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
inline std::string replace_copy(std::string s, const std::string& from, const std::string& to) {
  vocab::detail::replace_all(s, from, to);
  return s;
}
inline std::string token_string(const vocab::vocabulary& v, std::int32_t id, vocab::token_string_form form) {
  return form == vocab::token_string_form::decoded ? v.decode_token(id) : v.raw(id);
}
}  // namespace detail

/// Aligns one sample with a precomputed token alignment `a` (source rows x pivot columns).
inline aligned_topk align_distribution(const vocab::vocabulary& pivot, const vocab::vocabulary& source,
                                       std::span<const std::int32_t> pivot_ids,
                                       std::span<const std::int32_t> source_ids,
                                       matrix_view<const std::int32_t> topk_ids, matrix_view<const float> topk_logits,
                                       std::span<const std::int32_t> b2p, const vocab::token_alignment& a,
                                       const distribution_alignment_options& options = {}) {
  const auto N = static_cast<std::int64_t>(pivot_ids.size()), M = static_cast<std::int64_t>(source_ids.size());
  FUSEKIT_EXPECTS(N > 0 && M > 0, invalid_argument, "align_distribution: empty pivot or source sequence");
  FUSEKIT_EXPECTS(topk_ids.extent(0) == M && topk_logits.extent(0) == M && topk_ids.extent(1) == topk_logits.extent(1),
                  shape_mismatch,
                  "align_distribution: top-k ids are " + std::to_string(topk_ids.extent(0)) + " x " +
                      std::to_string(topk_ids.extent(1)) + ", logits " + std::to_string(topk_logits.extent(0)) + " x " +
                      std::to_string(topk_logits.extent(1)) + ", for " + std::to_string(M) + " source positions");
  FUSEKIT_EXPECTS(a.pivot_size == N && a.source_size == M, shape_mismatch,
                  "align_distribution: the token alignment is " + std::to_string(a.source_size) + " x " +
                      std::to_string(a.pivot_size) + ", the sequences " + std::to_string(M) + " x " + std::to_string(N));
  if (options.mode != alignment_mode::hard)
    FUSEKIT_EXPECTS(static_cast<std::int64_t>(b2p.size()) == source.size(), shape_mismatch,
                    "align_distribution: the mapping has " + std::to_string(b2p.size()) +
                        " entries but the source vocabulary has " + std::to_string(source.size()) + " ids");
  for (auto id : pivot_ids)
    FUSEKIT_EXPECTS(pivot.contains(id), out_of_range, "align_distribution: pivot id " + std::to_string(id) + " is not a token");
  for (auto id : source_ids)
    FUSEKIT_EXPECTS(source.contains(id), out_of_range, "align_distribution: source id " + std::to_string(id) + " is not a token");
  const std::int64_t K = topk_ids.extent(1);
  for (std::int64_t j = 0; j < M; ++j)
    for (std::int64_t k = 0; k < K; ++k)
      FUSEKIT_EXPECTS(source.contains(topk_ids(j, k)), out_of_range,
                      "align_distribution: top-k id " + std::to_string(topk_ids(j, k)) + " at source position " +
                          std::to_string(j) + " is not a source token");
  // mapping entries are checked when used (a whole-table scan per sample would cost O(V_S))
  auto mapped = [&](std::size_t v) {
    const std::int32_t p = b2p[v];
    FUSEKIT_EXPECTS(p == -1 || pivot.contains(p), out_of_range,
                    "align_distribution: mapping entry b2p[" + std::to_string(v) + "] = " + std::to_string(p) +
                        " is not a pivot token");
    return p;
  };

  const std::string& sm = source.marker();
  const std::string& pm = pivot.marker();
  std::vector<std::string> u(static_cast<std::size_t>(N)), w(static_cast<std::size_t>(M));
  for (std::int64_t i = 0; i < N; ++i) u[static_cast<std::size_t>(i)] = detail::token_string(pivot, pivot_ids[static_cast<std::size_t>(i)], options.form);
  for (std::int64_t j = 0; j < M; ++j) w[static_cast<std::size_t>(j)] = detail::token_string(source, source_ids[static_cast<std::size_t>(j)], options.form);

  aligned_topk out;
  std::vector<std::int32_t> seen;
  auto map_row = [&](std::int64_t j) {
    seen.clear();
    for (std::int64_t k = 0; k < K; ++k) {
      const std::int32_t v = topk_ids(j, k);
      std::int32_t q = -1;
      if (options.mode != alignment_mode::soft) q = pivot.find(vocab::substituted_raw(source, v, pivot));
      if (options.mode == alignment_mode::soft || (options.mode == alignment_mode::default_rule && q < 0))
        q = mapped(static_cast<std::size_t>(v));
      if (q < 0 || std::find(seen.begin(), seen.end(), q) != seen.end()) continue;
      seen.push_back(q);
      out.ids.push_back(q);
      out.logits.push_back(topk_logits(j, k));
    }
  };
  auto onehot = [&](std::int64_t i) {
    std::int32_t id;
    if (options.onehot == onehot_target::current_token) id = pivot_ids[static_cast<std::size_t>(i)];
    else id = pivot_ids[static_cast<std::size_t>(std::min(i + 1, N - 1))];
    out.ids.push_back(pivot.find(pivot.raw(id)));  // vocab_P[label]: the first id with that string
    out.logits.push_back(1.0f);
  };

  for (std::int64_t i = 0; i < N; ++i) {
    const auto A = a[i];
    const std::string& ui = u[static_cast<std::size_t>(i)];
    if (A.size() == 1) {
      const std::int64_t j = A[0];
      const std::string ws = detail::replace_copy(w[static_cast<std::size_t>(j)], sm, pm);
      bool match = false;
      switch (options.mode) {
      case alignment_mode::hard: match = ui == ws; break;
      case alignment_mode::soft:
        if (ui == ws) match = true;
        else if (options.soft == soft_index::by_token_id)
          match = pivot_ids[static_cast<std::size_t>(i)] == mapped(static_cast<std::size_t>(source_ids[static_cast<std::size_t>(j)]));
        else {
          const std::int32_t key = pivot.find(ui);
          match = key >= 0 && static_cast<std::size_t>(j) < b2p.size() && key == mapped(static_cast<std::size_t>(j));
        }
        break;
      case alignment_mode::default_rule: match = detail::ends_with(ws, ui) || detail::ends_with(ui, ws); break;
      }
      if (match) map_row(j);
      else onehot(i);
    } else if (options.mode != alignment_mode::default_rule || !options.multi_token_rule) {
      onehot(i);
    } else {
      const std::string ub = detail::replace_copy(ui, pm, "");
      std::vector<std::string> wb;
      for (auto j : A) wb.push_back(detail::replace_copy(w[static_cast<std::size_t>(j)], sm, ""));
      std::int64_t chosen = -1;
      for (std::size_t k = 0; k < A.size(); ++k)
        if (detail::ends_with(ub, wb[k]) || detail::ends_with(wb[k], ub)) {
          chosen = A[k];
          break;
        }
      if (chosen >= 0) {
        map_row(chosen);
      } else {
        // greedy prefix cover of ub by the wb_j in order
        std::string rest = ub, concat;
        std::vector<std::int64_t> G;
        for (std::size_t k = 0; k < A.size(); ++k) {
          concat += wb[k];
          if (rest.compare(0, wb[k].size(), wb[k]) == 0 && rest.size() >= wb[k].size()) {
            rest.erase(0, wb[k].size());
            G.push_back(A[k]);
          }
        }
        if (!rest.empty()) G.clear();
        if (!G.empty() || detail::ends_with(concat, ub) || detail::ends_with(ub, concat)) {
          std::string covered;
          for (auto j : G) covered += detail::replace_copy(w[static_cast<std::size_t>(j)], sm, "");
          if (!G.empty() && ub == covered) map_row(G.back());
          // else: empty list (the reference crashes when G is empty here; unreachable, see file comment)
        } else {
          onehot(i);
        }
      }
    }
    out.offsets.push_back(static_cast<std::int64_t>(out.ids.size()));
  }
  return out;
}

/// Aligns one sample: DTW over the token strings (options.form / cost / tie order), then the rules above.
inline aligned_topk align_distribution(const vocab::vocabulary& pivot, const vocab::vocabulary& source,
                                       std::span<const std::int32_t> pivot_ids,
                                       std::span<const std::int32_t> source_ids,
                                       matrix_view<const std::int32_t> topk_ids, matrix_view<const float> topk_logits,
                                       std::span<const std::int32_t> b2p,
                                       const distribution_alignment_options& options = {}) {
  FUSEKIT_EXPECTS(!pivot_ids.empty() && !source_ids.empty(), invalid_argument,
                  "align_distribution: empty pivot or source sequence");
  std::vector<std::string> u, w;
  for (auto id : pivot_ids) {
    FUSEKIT_EXPECTS(pivot.contains(id), out_of_range, "align_distribution: pivot id " + std::to_string(id) + " is not a token");
    u.push_back(detail::token_string(pivot, id, options.form));
  }
  for (auto id : source_ids) {
    FUSEKIT_EXPECTS(source.contains(id), out_of_range, "align_distribution: source id " + std::to_string(id) + " is not a token");
    w.push_back(detail::token_string(source, id, options.form));
  }
  const vocab::token_cost cost{options.cost, vocab::utf8_decode(source.marker()), vocab::utf8_decode(pivot.marker())};
  const auto a = vocab::dtw_align(w, u, cost, options.dtw);
  return align_distribution(pivot, source, pivot_ids, source_ids, topk_ids, topk_logits, b2p, a, options);
}

}  // namespace fusekit::dist
