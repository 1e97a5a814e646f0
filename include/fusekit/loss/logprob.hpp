/// @file
/// @brief Token and sequence log-probabilities from logits [N, V], their backward, and per-row top-k.
///
/// Row t of the logits predicts `labels[t]` (labels already shifted). A row counts ("is valid") when
/// its label differs from `ignore_index` (-100) and, if a mask view is given, `mask[t] != 0` — the
/// explicit mask form of TRL v1's completion mask. Sequences are consecutive row ranges given by
/// `seq_offsets` [B+1] (CSR style; rows outside every range are ignored; empty = one sequence).
///
/// Every row is read once with an online log-sum-exp (running max + rescaled sum, fp32 for
/// bf16/fp16/float logits, fp64 for double), never materializing a softmax. The backward writes
/// d(loss)/d(logits) = g·(onehot − softmax) for the valid rows (0 elsewhere), into any output view —
/// the logits' own memory included (in place).
///
///     fusekit::logits_batch<fusekit::bf16> b{.logits = z, .labels = y, .seq_offsets = off};
///     std::vector<double> lp(B); std::vector<float> lse(N);
///     fusekit::sequence_logprobs(fusekit::exec::par, b, {.sum = host_view(lp.data(), B)},
///                                {.lse = host_view(lse.data(), N)});
///     ... g[b] = dL/d lp[b] (e.g. from fusekit::preference_loss) ...
///     fusekit::sequence_logprobs_backward(fusekit::exec::par, b, host_view(g.data(), B), grad_view,
///                                         {.lse = host_view(lse.data(), N)});
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <fusekit/core/error.hpp>
#include <fusekit/exec/primitives.hpp>
#include <fusekit/loss/detail/row_kernels.hpp>
#include <fusekit/types/element.hpp>
#include <fusekit/view/strided_view.hpp>

namespace fusekit {

/// Logits with their (shifted) labels, optional mask and sequence boundaries.
template <class T, class L = std::int64_t, class M = std::uint8_t> struct logits_batch {
  matrix_view<const T> logits{};                 ///< [N, V], any strides
  vector_view<const L> labels{};                 ///< [N] target token ids
  vector_view<const M> mask{};                   ///< optional [N]; 0 = row does not count
  vector_view<const std::int64_t> seq_offsets{}; ///< optional [B+1], non-decreasing, within [0, N]
  std::int64_t ignore_index = -100;
  vector_view<const float> token_weight{}; ///< optional [N]: weight of each row in sequence sums and their
                                           ///< backward (LD-DPO, see ld_dpo_token_weights); empty = 1

  /// Number of rows.
  std::int64_t rows() const noexcept { return logits.extent(0); }
  /// Vocabulary size.
  std::int64_t vocab() const noexcept { return logits.extent(1); }
  /// Number of sequences (1 when no offsets are given).
  std::int64_t sequences() const noexcept { return seq_offsets.empty() ? 1 : seq_offsets.extent(0) - 1; }
  /// Row range of sequence `b`.
  std::int64_t seq_begin(std::int64_t b) const noexcept { return seq_offsets.empty() ? 0 : seq_offsets[b]; }
  std::int64_t seq_end(std::int64_t b) const noexcept { return seq_offsets.empty() ? rows() : seq_offsets[b + 1]; }
  /// Whether row `t` counts.
  bool valid(std::int64_t t) const noexcept {
    if (static_cast<std::int64_t>(labels[t]) == ignore_index)
      return false;
    return mask.empty() || mask[t] != M(0);
  }
};

/// Optional per-row outputs (each may be empty). Entropy, logit sum and top-k are computed only when
/// their view is given.
template <class F = float> struct token_logprob_outputs {
  vector_view<F> logp{};                ///< [N] log softmax(z_t)[label_t]; 0 on rows that do not count
  vector_view<F> lse{};                 ///< [N] log Σ_v e^{z_tv} (every row); reuse it in the backward
  vector_view<F> entropy{};             ///< [N] −Σ_v p_tv log p_tv (every row)
  vector_view<F> logit_mean{};          ///< [N] mean over v of z_tv (every row)
  vector_view<std::uint8_t> correct{};  ///< [N] 1 when the first argmax equals the label (valid rows)
  matrix_view<std::int64_t> topk_ids{}; ///< [N, K]: the row's K largest logits, descending, ties → lower id
  matrix_view<F> topk_logits{};         ///< [N, K]
};

/// Optional per-sequence outputs (each may be empty), accumulated in double over the valid rows.
template <class F = double> struct sequence_logprob_outputs {
  vector_view<F> sum{};            ///< [B] Σ log p over valid rows (TRL's summed sequence log-prob)
  vector_view<F> mean{};           ///< [B] sum / count (0 when count = 0)
  vector_view<F> count{};          ///< [B] number of valid rows (completion tokens)
  vector_view<F> entropy_mean{};   ///< [B] mean token entropy over valid rows (TRL `entropy`)
  vector_view<F> logit_mean{};     ///< [B] mean raw logit over valid rows × V (TRL `logits/*`)
  vector_view<F> token_accuracy{}; ///< [B] fraction of valid rows whose argmax is the label
};

/// Backward options.
template <class F = float> struct logprob_backward_options {
  vector_view<const F> lse{}; ///< [N] from the forward; empty = recomputed (one extra read per row)
  bool accumulate = false;    ///< add into the output instead of overwriting (rows that do not count are left alone)
};

namespace detail {

template <class T, class L, class M> void check_logits_batch(const logits_batch<T, L, M>& b, const char* fn) {
  const std::int64_t N = b.rows(), V = b.vocab();
  FUSEKIT_EXPECTS(V > 0 || N == 0, invalid_argument, std::string(fn) + ": logits have zero columns (V = 0)");
  FUSEKIT_EXPECTS(b.labels.extent(0) == N, shape_mismatch,
                  std::string(fn) + ": labels has " + std::to_string(b.labels.extent(0)) + " entries, logits " +
                      std::to_string(N) + " rows");
  FUSEKIT_EXPECTS(b.mask.empty() || b.mask.extent(0) == N, shape_mismatch,
                  std::string(fn) + ": mask has " + std::to_string(b.mask.extent(0)) + " entries, logits " +
                      std::to_string(N) + " rows");
  FUSEKIT_EXPECTS(b.token_weight.empty() || b.token_weight.extent(0) == N, shape_mismatch,
                  std::string(fn) + ": token_weight has " + std::to_string(b.token_weight.extent(0)) +
                      " entries, logits " + std::to_string(N) + " rows");
  if (!b.seq_offsets.empty()) {
    const std::int64_t B = b.seq_offsets.extent(0) - 1;
    FUSEKIT_EXPECTS(B >= 0, invalid_argument, std::string(fn) + ": seq_offsets needs B+1 entries");
    for (std::int64_t i = 0; i <= B; ++i) {
      const std::int64_t o = b.seq_offsets[i];
      FUSEKIT_EXPECTS(o >= 0 && o <= N && (i == 0 || o >= b.seq_offsets[i - 1]), invalid_argument,
                      std::string(fn) + ": seq_offsets[" + std::to_string(i) + "] = " + std::to_string(o) +
                          " is out of order or outside [0, " + std::to_string(N) + "]");
    }
  }
  for (std::int64_t t = 0; t < N; ++t) {
    if (!b.valid(t))
      continue;
    const std::int64_t y = static_cast<std::int64_t>(b.labels[t]);
    FUSEKIT_EXPECTS(y >= 0 && y < V, out_of_range,
                    std::string(fn) + ": labels[" + std::to_string(t) + "] = " + std::to_string(y) +
                        " is outside the vocabulary [0, " + std::to_string(V) + ") and is not ignore_index");
  }
}

template <class V> void check_rows(const V& v, std::int64_t n, const char* fn, const char* what) {
  if (!v.empty())
    FUSEKIT_EXPECTS(v.extent(0) == n, shape_mismatch,
                    std::string(fn) + ": " + what + " has " + std::to_string(v.extent(0)) + " entries, expected " +
                        std::to_string(n));
}

/// Rows per work item of for_each_row_chunk: about 256 K logits (one item per row at LLM vocabularies).
inline std::int64_t row_grain(std::int64_t V) noexcept {
  return std::clamp<std::int64_t>(V > 0 ? (std::int64_t{1} << 18) / V : 1024, 1, 1024);
}

/// Calls body(state, t0, t1) for consecutive row ranges covering [0, n), `state` made by make_state()
/// once per worker. On policies that report their concurrency (seq, par) the ranges are handed out
/// dynamically from an atomic counter, so a worker slowed down by other processes on the machine does
/// not hold back the others (OpenMP's static schedule would); other policies get their own
/// for_each_block split with a state per block. Each row's results depend only on that row, so they are
/// the same for any thread count and any assignment of rows to workers.
template <class Policy, class MakeState, class Body>
void for_each_row_chunk(const Policy& policy, std::int64_t n, std::int64_t grain, MakeState&& make_state,
                        Body&& body) {
  if (n <= 0)
    return;
  const std::int64_t chunks = (n + grain - 1) / grain;
  if constexpr (requires { policy.concurrency(); }) {
    const std::int64_t workers = std::min<std::int64_t>(policy.concurrency(), chunks);
    if (workers <= 1) {
      auto st = make_state();
      for (std::int64_t c = 0; c < chunks; ++c)
        body(st, c * grain, std::min(n, (c + 1) * grain));
      return;
    }
    std::atomic<std::int64_t> next{0};
    exec::for_each_n(policy, workers, [&](std::int64_t) {
      auto st = make_state();
      for (;;) {
        const std::int64_t c = next.fetch_add(1, std::memory_order_relaxed);
        if (c >= chunks)
          break;
        body(st, c * grain, std::min(n, (c + 1) * grain));
      }
    });
  } else {
    exec::for_each_block(policy, n, grain, [&](std::int64_t t0, std::int64_t t1) {
      auto st = make_state();
      body(st, t0, t1);
    });
  }
}

[[noreturn]] inline void throw_nonfinite_row(const char* fn, std::int64_t t) {
  throw_error(errc::invalid_argument, std::string(fn) + ": logits row " + std::to_string(t) +
                                          " is not finite (NaN/inf logits, or every logit −inf) on a row that counts");
}

} // namespace detail

/// Per-row forward: log-prob at the label, log-sum-exp, and the requested extras, one pass per row.
/// Throws fusekit::error on shape mismatches, labels outside [0, V) on rows that count, and rows that
/// count whose log-sum-exp or label logit is not finite (NaN never leaks silently).
template <class Policy, class T, class L, class M, class F>
void token_logprobs(const Policy& policy, const logits_batch<T, L, M>& b, const token_logprob_outputs<F>& out) {
  exec::check_runs_on<Policy, matrix_view<const T>>();
  constexpr const char* fn = "token_logprobs";
  detail::check_logits_batch(b, fn);
  const std::int64_t N = b.rows(), V = b.vocab();
  detail::check_rows(out.logp, N, fn, "logp");
  detail::check_rows(out.lse, N, fn, "lse");
  detail::check_rows(out.entropy, N, fn, "entropy");
  detail::check_rows(out.logit_mean, N, fn, "logit_mean");
  detail::check_rows(out.correct, N, fn, "correct");
  const bool want_topk = !out.topk_ids.empty() || !out.topk_logits.empty();
  std::int64_t K = 0;
  if (want_topk) {
    K = !out.topk_ids.empty() ? out.topk_ids.extent(1) : out.topk_logits.extent(1);
    FUSEKIT_EXPECTS(K >= 1 && K <= V, invalid_argument,
                    std::string(fn) + ": top-k width " + std::to_string(K) + " must be in [1, V]");
    detail::check_rows(out.topk_ids, N, fn, "topk_ids");
    detail::check_rows(out.topk_logits, N, fn, "topk_logits");
    FUSEKIT_EXPECTS(out.topk_ids.empty() || out.topk_ids.extent(1) == K, shape_mismatch,
                    std::string(fn) + ": topk_ids and topk_logits differ in width");
    FUSEKIT_EXPECTS(out.topk_logits.empty() || out.topk_logits.extent(1) == K, shape_mismatch,
                    std::string(fn) + ": topk_ids and topk_logits differ in width");
  }
  using C = compute_t<T>;
  const detail::row_wants w{
      .entropy = !out.entropy.empty(), .logit_sum = !out.logit_mean.empty(), .argmax = !out.correct.empty()};
  std::vector<std::uint8_t> bad(static_cast<std::size_t>(N), 0);
  auto row_fn = [&](std::int64_t t) {
    const bool ok = b.valid(t);
    const std::int64_t y = ok ? static_cast<std::int64_t>(b.labels[t]) : -1;
    const T* row = &b.logits(t, 0);
    constexpr std::int64_t kmax = 64;
    C tv_small[kmax];
    std::int64_t ti_small[kmax];
    std::vector<C> tv_big;
    std::vector<std::int64_t> ti_big;
    detail::topk_state<C> tk;
    if (want_topk) {
      if (K <= kmax) {
        tk.vals = tv_small;
        tk.ids = ti_small;
      } else {
        tv_big.resize(static_cast<std::size_t>(K));
        ti_big.resize(static_cast<std::size_t>(K));
        tk.vals = tv_big.data();
        tk.ids = ti_big.data();
      }
      tk.k = K;
    }
    const auto r = detail::row_forward_dispatch<C>(row, V, b.logits.stride(1), y, w, want_topk ? &tk : nullptr);
    if (ok && !(std::isfinite(r.lse) && std::isfinite(r.label_logit)))
      bad[static_cast<std::size_t>(t)] = 1;
    if (!out.logp.empty())
      out.logp[t] = ok ? static_cast<F>(r.label_logit - r.lse) : F(0);
    if (!out.lse.empty())
      out.lse[t] = static_cast<F>(r.lse);
    if (!out.entropy.empty())
      out.entropy[t] = static_cast<F>(r.entropy);
    if (!out.logit_mean.empty())
      out.logit_mean[t] = static_cast<F>(r.logit_sum / static_cast<C>(V));
    if (!out.correct.empty())
      out.correct[t] = (ok && r.argmax == y) ? 1 : 0;
    if (want_topk) {
      for (std::int64_t k = 0; k < K; ++k) {
        const bool have = k < tk.filled;
        if (!out.topk_ids.empty())
          out.topk_ids(t, k) = have ? tk.ids[k] : -1;
        if (!out.topk_logits.empty())
          out.topk_logits(t, k) = have ? static_cast<F>(tk.vals[k]) : -std::numeric_limits<F>::infinity();
      }
    }
  };
  detail::for_each_row_chunk(
      policy, N, detail::row_grain(V), [] { return 0; },
      [&](int, std::int64_t t0, std::int64_t t1) {
        for (std::int64_t t = t0; t < t1; ++t)
          row_fn(t);
      });
  for (std::int64_t t = 0; t < N; ++t)
    if (bad[static_cast<std::size_t>(t)])
      detail::throw_nonfinite_row(fn, t);
}

/// Per-sequence forward: sums (and means, counts, entropy/logit means, accuracy) of the token
/// log-probs over the valid rows of each sequence. `tokens` receives the per-row outputs if wanted
/// (its `lse` is what the backward reuses). A sequence with no valid row has sum 0, count 0, mean 0.
template <class Policy, class T, class L, class M, class F, class G = compute_t<T>>
void sequence_logprobs(const Policy& policy, const logits_batch<T, L, M>& b, const sequence_logprob_outputs<F>& out,
                       const token_logprob_outputs<G>& tokens = {}) {
  constexpr const char* fn = "sequence_logprobs";
  detail::check_logits_batch(b, fn);
  const std::int64_t N = b.rows(), B = b.sequences();
  detail::check_rows(out.sum, B, fn, "sum");
  detail::check_rows(out.mean, B, fn, "mean");
  detail::check_rows(out.count, B, fn, "count");
  detail::check_rows(out.entropy_mean, B, fn, "entropy_mean");
  detail::check_rows(out.logit_mean, B, fn, "logit_mean");
  detail::check_rows(out.token_accuracy, B, fn, "token_accuracy");
  // per-row storage we need but the caller did not ask for (same element type G)
  token_logprob_outputs<G> tok = tokens;
  std::vector<G> logp_buf, ent_buf, lm_buf;
  std::vector<std::uint8_t> corr_buf;
  if (tok.logp.empty()) {
    logp_buf.resize(static_cast<std::size_t>(N));
    tok.logp = host_view(logp_buf.data(), N);
  }
  if (!out.entropy_mean.empty() && tok.entropy.empty()) {
    ent_buf.resize(static_cast<std::size_t>(N));
    tok.entropy = host_view(ent_buf.data(), N);
  }
  if (!out.logit_mean.empty() && tok.logit_mean.empty()) {
    lm_buf.resize(static_cast<std::size_t>(N));
    tok.logit_mean = host_view(lm_buf.data(), N);
  }
  if (!out.token_accuracy.empty() && tok.correct.empty()) {
    corr_buf.resize(static_cast<std::size_t>(N));
    tok.correct = host_view(corr_buf.data(), N);
  }
  token_logprobs(policy, b, tok);
  auto logp = [&](std::int64_t t) -> double { return static_cast<double>(tok.logp[t]); };
  auto ent = [&](std::int64_t t) -> double { return static_cast<double>(tok.entropy[t]); };
  auto lmean = [&](std::int64_t t) -> double { return static_cast<double>(tok.logit_mean[t]); };
  exec::for_each_n(policy, B, [&](std::int64_t s) {
    double sum = 0, cnt = 0, es = 0, ls = 0, acc = 0;
    for (std::int64_t t = b.seq_begin(s); t < b.seq_end(s); ++t) {
      if (!b.valid(t))
        continue;
      cnt += 1;
      sum += b.token_weight.empty() ? logp(t) : static_cast<double>(b.token_weight[t]) * logp(t);
      if (!out.entropy_mean.empty())
        es += ent(t);
      if (!out.logit_mean.empty())
        ls += lmean(t);
      if (!out.token_accuracy.empty())
        acc += tok.correct[t] ? 1.0 : 0.0;
    }
    const double inv = cnt > 0 ? 1.0 / cnt : 0.0;
    if (!out.sum.empty())
      out.sum[s] = static_cast<F>(sum);
    if (!out.mean.empty())
      out.mean[s] = static_cast<F>(sum * inv);
    if (!out.count.empty())
      out.count[s] = static_cast<F>(cnt);
    if (!out.entropy_mean.empty())
      out.entropy_mean[s] = static_cast<F>(es * inv);
    if (!out.logit_mean.empty())
      out.logit_mean[s] = static_cast<F>(ls * inv);
    if (!out.token_accuracy.empty())
      out.token_accuracy[s] = static_cast<F>(acc * inv);
  });
}

/// Per-row backward: grad_t = g_t·(onehot(label_t) − softmax(z_t)) on valid rows, 0 (or untouched
/// when accumulating) elsewhere. `grad_token` [N] holds d(loss)/d(logp_t). `grad` [N, V] may be the
/// logits' own memory (in place) or any other view of any element type.
template <class Policy, class T, class L, class M, class O, class G, class F = float>
void token_logprobs_backward(const Policy& policy, const logits_batch<T, L, M>& b, vector_view<const G> grad_token,
                             matrix_view<O> grad, const logprob_backward_options<F>& opt = {}) {
  exec::check_runs_on<Policy, matrix_view<const T>, matrix_view<O>>();
  constexpr const char* fn = "token_logprobs_backward";
  detail::check_logits_batch(b, fn);
  const std::int64_t N = b.rows(), V = b.vocab();
  detail::check_rows(grad_token, N, fn, "grad_token");
  FUSEKIT_EXPECTS(grad.extent(0) == N && grad.extent(1) == V, shape_mismatch,
                  std::string(fn) + ": grad is [" + std::to_string(grad.extent(0)) + ", " +
                      std::to_string(grad.extent(1)) + "], logits [" + std::to_string(N) + ", " + std::to_string(V) +
                      "]");
  detail::check_rows(opt.lse, N, fn, "lse");
  using C = compute_t<T>;
  // a large gradient that does not alias the logits is written with non-temporal stores (no
  // read-for-ownership of its lines; it is not read back before the caller's next step)
  const bool streaming = N > 0 && !opt.accumulate && grad.stride(1) == 1 &&
                         static_cast<const void*>(&grad(0, 0)) != static_cast<const void*>(&b.logits(0, 0)) &&
                         N * V * static_cast<std::int64_t>(sizeof(O)) >= detail::stream_min_bytes;
  std::vector<std::uint8_t> bad(static_cast<std::size_t>(N), 0);
  auto row_fn = [&](std::int64_t t) {
    const T* row = &b.logits(t, 0);
    O* orow = &grad(t, 0);
    if (!b.valid(t)) {
      detail::row_zero(orow, grad.stride(1), V, opt.accumulate);
      return;
    }
    const std::int64_t y = static_cast<std::int64_t>(b.labels[t]);
    const C g = static_cast<C>(grad_token[t]);
    C lse;
    if (opt.lse.empty())
      lse = detail::row_forward_dispatch<C>(row, V, b.logits.stride(1), y, {},
                                            static_cast<detail::topk_state<C>*>(nullptr))
                .lse;
    else
      lse = static_cast<C>(opt.lse[t]);
    if (!std::isfinite(lse) || !std::isfinite(g)) {
      bad[static_cast<std::size_t>(t)] = 1;
      return;
    }
    detail::row_backward<C>(row, b.logits.stride(1), orow, grad.stride(1), V, lse, -g, y, -g,
                            static_cast<const std::int64_t*>(nullptr), static_cast<const float*>(nullptr), 0, C(0),
                            opt.accumulate, streaming);
  };
  detail::for_each_row_chunk(
      policy, N, detail::row_grain(V), [] { return 0; },
      [&](int, std::int64_t t0, std::int64_t t1) {
        for (std::int64_t t = t0; t < t1; ++t)
          row_fn(t);
      });
  for (std::int64_t t = 0; t < N; ++t)
    if (bad[static_cast<std::size_t>(t)])
      throw_error(errc::invalid_argument, std::string(fn) + ": row " + std::to_string(t) +
                                              " has a non-finite log-sum-exp or upstream gradient");
}

/// Per-sequence backward: `grad_seq` [B] holds d(loss)/d(sum of the sequence's log-probs) — for a
/// loss on the mean log-prob pass d/d(mean) divided by the count. Every valid row of sequence b gets
/// grad_seq[b]·(onehot − softmax); all other rows get 0 (or are left alone when accumulating).
template <class Policy, class T, class L, class M, class O, class G, class F = float>
void sequence_logprobs_backward(const Policy& policy, const logits_batch<T, L, M>& b, vector_view<const G> grad_seq,
                                matrix_view<O> grad, const logprob_backward_options<F>& opt = {}) {
  constexpr const char* fn = "sequence_logprobs_backward";
  detail::check_logits_batch(b, fn);
  const std::int64_t N = b.rows(), B = b.sequences();
  detail::check_rows(grad_seq, B, fn, "grad_seq");
  std::vector<double> per_row(static_cast<std::size_t>(N), 0.0);
  for (std::int64_t s = 0; s < B; ++s)
    for (std::int64_t t = b.seq_begin(s); t < b.seq_end(s); ++t)
      per_row[static_cast<std::size_t>(t)] =
          static_cast<double>(grad_seq[s]) * (b.token_weight.empty() ? 1.0 : static_cast<double>(b.token_weight[t]));
  // rows outside every sequence are treated as not counting
  std::vector<std::uint8_t> in_seq(static_cast<std::size_t>(N), 0);
  for (std::int64_t s = 0; s < B; ++s)
    for (std::int64_t t = b.seq_begin(s); t < b.seq_end(s); ++t)
      in_seq[static_cast<std::size_t>(t)] = 1;
  logits_batch<T, L, std::uint8_t> rb{
      .logits = b.logits, .labels = b.labels, .mask = {}, .seq_offsets = {}, .ignore_index = b.ignore_index};
  std::vector<std::uint8_t> m(static_cast<std::size_t>(N));
  for (std::int64_t t = 0; t < N; ++t)
    m[static_cast<std::size_t>(t)] = (in_seq[static_cast<std::size_t>(t)] && b.valid(t)) ? 1 : 0;
  rb.mask = host_view(static_cast<const std::uint8_t*>(m.data()), N);
  token_logprobs_backward(policy, rb, vector_view<const double>(host_view(per_row.data(), N)), grad, opt);
}

/// LD-DPO token weights (TRL `ld_alpha`, "length desensitization"): for each sequence s with partner
/// sequence `partner[s]` (its pair's other completion), the first min(count(s), count(partner)) counted
/// rows weigh 1 and later counted rows weigh `ld_alpha` ∈ [0, 1]; rows that do not count weigh 1.
/// Put the result in `logits_batch::token_weight` for the policy *and* the reference batch.
/// Example (losses.md §1.1): chosen per-token log-probs (−1,−2,−3,−4,−5), rejected length 3,
/// ld_alpha 0.5 → chosen sum (−1−2−3) + 0.5·(−4−5) = −10.5.
template <class T, class L, class M>
void ld_dpo_token_weights(const logits_batch<T, L, M>& b, vector_view<const std::int64_t> partner, double ld_alpha,
                          vector_view<float> weights) {
  constexpr const char* fn = "ld_dpo_token_weights";
  detail::check_logits_batch(b, fn);
  const std::int64_t N = b.rows(), B = b.sequences();
  FUSEKIT_EXPECTS(ld_alpha >= 0 && ld_alpha <= 1, invalid_argument,
                  std::string(fn) + ": ld_alpha must be in [0, 1], got " + std::to_string(ld_alpha));
  detail::check_rows(partner, B, fn, "partner");
  FUSEKIT_EXPECTS(weights.extent(0) == N, shape_mismatch,
                  std::string(fn) + ": weights has " + std::to_string(weights.extent(0)) + " entries, expected " +
                      std::to_string(N));
  std::vector<std::int64_t> count(static_cast<std::size_t>(B), 0);
  for (std::int64_t s = 0; s < B; ++s)
    for (std::int64_t t = b.seq_begin(s); t < b.seq_end(s); ++t)
      count[static_cast<std::size_t>(s)] += b.valid(t) ? 1 : 0;
  for (std::int64_t t = 0; t < N; ++t)
    weights[t] = 1.0f;
  for (std::int64_t s = 0; s < B; ++s) {
    const std::int64_t q = partner[s];
    FUSEKIT_EXPECTS(q >= 0 && q < B, out_of_range,
                    std::string(fn) + ": partner[" + std::to_string(s) + "] = " + std::to_string(q) +
                        " is not a sequence index");
    const std::int64_t shared = std::min(count[static_cast<std::size_t>(s)], count[static_cast<std::size_t>(q)]);
    std::int64_t k = 0;
    for (std::int64_t t = b.seq_begin(s); t < b.seq_end(s); ++t)
      if (b.valid(t) && ++k > shared)
        weights[t] = static_cast<float>(ld_alpha);
  }
}

} // namespace fusekit
