/// @file
/// @brief The generalized task-arithmetic (GTA) pipeline behind ties, dare_ties, dare_linear, breadcrumbs,
/// breadcrumbs_ties, della and della_linear (mergekit's GeneralizedTaskArithmeticMerge), with explicit
/// options for the points where mergekit, PEFT and the papers disagree.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
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

/// How each task vector is sparsified (mergekit `SparsificationMethod`).
enum class sparsification {
  none,               ///< keep everything (task_arithmetic)
  magnitude,          ///< TIES trim: exact top-k of |Δ| over the whole tensor, k = floor(density·n)
  random,             ///< DARE: keep each element with probability density (counter-based Bernoulli)
  magnitude_outliers, ///< Breadcrumbs: drop the floor(γ·n) largest and the smallest, keep floor(density·n)
  della_magprune,     ///< DELLA MagPrune: per-row keep probability linear in the magnitude rank
};

/// Sign consensus ("erase") rule.
enum class consensus_method {
  none, ///< plain (weighted) sum of the task vectors
  sum,  ///< TIES: elected sign = sign of the sum (ties → +), keep the agreeing entries (mergekit `sum`)
  count ///< elected sign = majority of the signs (ties → +) (mergekit `count`, registered by no method)
};

/// Which task vectors the sign election sums.
enum class sign_election {
  weighted,  ///< Σ_i w_i·Δ̃_i — mergekit (a model's weight changes which sign wins; issue #474)
  unweighted ///< Σ_i Δ̃_i — TIES paper Algorithm 1 and PEFT; weights enter only the merge
};

/// Divisor of the disjoint mean when `normalize` is on with a consensus rule.
enum class consensus_divisor {
  weight_sum, ///< Σ of the weights of the agreeing models, per element — mergekit
  count       ///< number of agreeing models, per element — PEFT `disjoint_merge`
};

/// How kept entries are rescaled when `rescale` is on.
enum class rescale_mode {
  l1_norm,        ///< match the L1 norm of the whole task vector: ‖Δ‖₁/‖m⊙Δ‖₁ — mergekit (PR #245)
  inverse_density ///< multiply by 1/density — DARE paper, PEFT `prune(..., rescale=True)`
};

/// The GTA pipeline for one tensor, as mergekit's GTATask:
///   Δ_i = x_i − b;  Δ̃_i = rescale(sparsify(Δ_i));  u_i = w_i·Δ̃_i;
///   with consensus: σ = sign(Σ_i e_i) (e = u or Δ̃ per `election`, ties → +), k_i = [sign(e_i) = σ] (zeros
///   never agree), M = Σ_i k_i·u_i, D = Σ_i k_i·w_i (or Σ_i k_i) per element, 0 → 1;
///   without: M = Σ_i u_i, D = Σ_i w_i (|D| < 1e-8 → 1);
///   M ← M/D if normalize;  out = b + λ·M.
/// A density ≥ 1 makes any sparsifier a no-op (and skips its rescale), as in mergekit. Computed in fp32;
/// per-tensor reductions (L1 norms) in fp64 in a fixed order, so results are identical for any thread count.
struct generalized_task_arithmetic {
  static constexpr std::string_view name = "generalized_task_arithmetic";
  sparsification sparsify = sparsification::none; ///< sparsifier applied to every task vector
  consensus_method consensus = consensus_method::none; ///< sign-consensus rule
  float lambda = 1.0f;                                 ///< scale of the merged task vector (mergekit `lambda`)
  bool normalize = false;                              ///< divide by D (mergekit `normalize`)
  bool rescale = false;                                ///< rescale kept entries (mergekit `rescale`)
  sign_election election = sign_election::weighted;    ///< input of the sign election
  consensus_divisor divisor = consensus_divisor::weight_sum; ///< disjoint-mean divisor
  rescale_mode rescale_by = rescale_mode::l1_norm;     ///< rescale rule
  std::string_view method_name = name;                 ///< name used in error messages

  /// Generic path (any host policy).
  template <class P, class Out, class Base, class In>
  void apply(const P& policy, const Out& out, const Base& base, std::span<const merge_input<In>> inputs,
             const merge_context& ctx) const;
};

namespace detail {

struct gta_model_plan {
  enum kind_t { keep_all, drop_all, top, band, random, della } kind = keep_all;
  double density = 1.0;
  float scale = 1.0f;          // rescale factor (1 when not rescaling)
  std::size_t req_a = 0;       // top: the keep request; band: the "drop the largest" request
  std::size_t req_b = 0;       // band: the keep request
  std::vector<std::uint64_t> bits; // random (when precomputed) and della: keep bits, one per element
};

/// Della MagPrune keep bits of one model (per row of the last dimension; 1-D = one row) and the L1 sums
/// (Σ|Δ|, Σ|m⊙Δ|). Ranks are 1..C by ascending |Δ|, ties by ascending column; p = (d−ε) + 2ε·(r−1)/(C−1)
/// (p = d when C = 1); keep when uniform01(seed, stream, e) < p.
template <class P, class Base, class In>
void della_bits(const P& policy, const view_io<Base>& base, const input_set<In>& in, std::size_t i,
                std::int64_t rows, std::int64_t cols, double d, double eps, const merge_context& ctx,
                std::vector<std::uint64_t>& bits, double& l1_all, double& l1_kept) {
  const std::int64_t n = rows * cols;
  bits.assign(static_cast<std::size_t>((n + 63) / 64), 0);
  std::vector<double> partial(static_cast<std::size_t>(rows) * 2, 0.0);
  const std::uint64_t stream = model_stream(ctx.tensor_name, i);
  // scratch per worker: x, b, u (floats) + two uint64 sort buffers (4 floats per element) + histogram
  const std::size_t hist_bins = 2048;
  const std::size_t sf = static_cast<std::size_t>(cols) * 7 + 3 * hist_bins + 16;
  for_each_block_scratch(policy, n, cols, sf, [&](std::int64_t row, std::int64_t b, std::int64_t e, float* s) {
    const std::int64_t C = e - b;
    float* x = s;
    float* bb = s + C;
    float* u = s + 2 * C; // C + 3 entries (the first counter block may start before b)
    // 8-byte aligned start for the uint64 buffers (a worker's scratch may start at any float offset)
    const auto ka_addr = (reinterpret_cast<std::uintptr_t>(s + 3 * C + 4) + 7u) & ~std::uintptr_t{7};
    auto* ka = reinterpret_cast<std::uint64_t*>(ka_addr);
    std::uint64_t* kb = ka + C;
    auto* hist = reinterpret_cast<std::uint32_t*>(kb + C);
    in.load(i, b, C, x);
    base.load(b, C, bb);
    for (std::int64_t j = 0; j < C; ++j) {
      x[j] -= bb[j];
      ka[j] = (static_cast<std::uint64_t>(exec::magnitude_key(x[j])) << 32) | static_cast<std::uint64_t>(j);
    }
    // LSD radix sort of the 31-bit key (3 digits of 11 bits, all histograms in one counting pass, digits
    // shared by the whole row skipped); stable, so equal keys stay in column order.
    std::fill(hist, hist + 3 * hist_bins, 0u);
    for (std::int64_t j = 0; j < C; ++j) {
      const auto k32 = static_cast<std::uint32_t>(ka[j] >> 32);
      ++hist[k32 & 2047u];
      ++hist[hist_bins + ((k32 >> 11) & 2047u)];
      ++hist[2 * hist_bins + (k32 >> 22)];
    }
    for (int pass = 0; pass < 3; ++pass) {
      const int shift = 32 + 11 * pass;
      std::uint32_t* hp = hist + static_cast<std::size_t>(pass) * hist_bins;
      if (hp[(ka[0] >> shift) & 2047u] == static_cast<std::uint32_t>(C))
        continue; // every key has this digit: the pass would not move anything
      std::uint32_t acc = 0;
      for (std::size_t h = 0; h < hist_bins; ++h) {
        const std::uint32_t c = hp[h];
        hp[h] = acc;
        acc += c;
      }
      for (std::int64_t j = 0; j < C; ++j)
        kb[hp[(ka[j] >> shift) & 2047u]++] = ka[j];
      std::swap(ka, kb);
    }
    // ka is sorted ascending; write each column's keep probability into bb (reused).
    const double lo = d - eps, span = 2.0 * eps;
    for (std::int64_t r = 0; r < C; ++r) {
      const auto col = static_cast<std::int64_t>(ka[r] & 0xffffffffu);
      const double rn = C > 1 ? static_cast<double>(r) / static_cast<double>(C - 1) : 0.5;
      bb[col] = static_cast<float>(lo + rn * span);
    }
    fill_uniform(ctx.seed, stream, static_cast<std::uint64_t>(b) & ~std::uint64_t{3}, C + (b & 3), u);
    const float* uu = u + (b & 3);
    double a = 0, k = 0;
    std::uint64_t word = 0;
    std::int64_t word_index = b / 64;
    for (std::int64_t j = 0; j < C; ++j) {
      const std::int64_t g = b + j;
      const bool keep = uu[j] < bb[j];
      a += std::abs(static_cast<double>(x[j]));
      if (keep) {
        k += std::abs(static_cast<double>(x[j]));
        word |= std::uint64_t{1} << (g & 63);
      }
      if ((g & 63) == 63 || j == C - 1) {
        if (word)
          std::atomic_ref<std::uint64_t>(bits[static_cast<std::size_t>(word_index)]).fetch_or(word, std::memory_order_relaxed);
        word = 0;
        ++word_index;
      }
    }
    partial[static_cast<std::size_t>(row) * 2] = a;
    partial[static_cast<std::size_t>(row) * 2 + 1] = k;
  });
  const auto tot = sum_blocks(partial, 2);
  l1_all = tot[0];
  l1_kept = tot[1];
}

/// Unpacks keep bits [b, b+len) (b a multiple of 64) into 0/1 floats.
inline void unpack_bits(const std::vector<std::uint64_t>& bits, std::int64_t b, std::int64_t len, float* keep) noexcept {
  const std::uint64_t* w = bits.data() + b / 64;
  for (std::int64_t j = 0; j < len; ++j)
    keep[j] = static_cast<float>((w[j >> 6] >> (j & 63)) & 1u);
}

/// Packs 0/1 floats into keep bits [b, b+len) (b a multiple of 64, blocks own whole words).
inline void pack_bits(std::vector<std::uint64_t>& bits, std::int64_t b, std::int64_t len, const float* keep) noexcept {
  std::uint64_t* w = bits.data() + b / 64;
  for (std::int64_t q = 0; q < (len + 63) / 64; ++q) {
    std::uint64_t word = 0;
    const std::int64_t m = std::min<std::int64_t>(64, len - q * 64);
    for (std::int64_t j = 0; j < m; ++j)
      word |= static_cast<std::uint64_t>(keep[q * 64 + j] != 0.0f) << j;
    w[q] = word;
  }
}

} // namespace detail

template <class P, class Out, class Base, class In>
void generalized_task_arithmetic::apply(const P& policy, const Out& out, const Base& base,
                                        std::span<const merge_input<In>> inputs, const merge_context& ctx) const {
  static_assert(!std::is_same_v<Base, no_base_t>,
                "fusekit: task-vector merge methods need a base model (pass its view as `base`).");
  exec::check_runs_on<P, Out, Base, In>();
  using namespace detail;
  const std::string_view mname = method_name;
  check_merge_args(mname, out, base, inputs, ctx, true, 0);
  const std::size_t N = inputs.size();
  const std::int64_t n = out.size();
  if (N == 0 || n == 0) { // no task vectors: the base is the result (mergekit returns the base)
    copy_tensor(policy, out, base);
    return;
  }
  FUSEKIT_EXPECTS(std::isfinite(lambda), invalid_argument, merge_where(mname, ctx) + ": lambda must be finite");
  for (std::size_t i = 0; i < N; ++i) {
    FUSEKIT_EXPECTS(std::isfinite(inputs[i].weight), invalid_argument,
                    merge_where(mname, ctx) + ": " + model_label(i) + " weight is not finite");
    if (sparsify != sparsification::none)
      check_range(inputs[i].density, 0.0, 1.0, "density", mname, ctx, i);
    if (sparsify == sparsification::magnitude_outliers)
      check_range(inputs[i].gamma, 0.0, 1.0, "gamma", mname, ctx, i);
  }

  const view_io<Base> b_io(base);
  const view_io<Out> o_io(out);
  const input_set<In> in(inputs);
  const std::int64_t blk = multi_block_size(N);
  const std::int64_t nblocks = block_count(n, blk);

  // ---- per-model plans ---------------------------------------------------------------------------------
  std::vector<gta_model_plan> plan(N);
  std::vector<topk_request> reqs;
  for (std::size_t i = 0; i < N; ++i) {
    auto& p = plan[i];
    const double d = inputs[i].density;
    p.density = d;
    if (sparsify == sparsification::none || d >= 1.0)
      continue;
    if (d <= 0.0) { // an explicit density of 0 drops the model's task vector for this tensor
      p.kind = gta_model_plan::drop_all;
      continue;
    }
    const auto keep = static_cast<std::int64_t>(std::floor(d * static_cast<double>(n)));
    switch (sparsify) {
    case sparsification::magnitude:
      FUSEKIT_EXPECTS(keep > 0, invalid_argument,
                      merge_where(mname, ctx) + ": " + model_label(i) + " density " + std::to_string(d) +
                          " keeps floor(density*n) = 0 of n = " + std::to_string(n) +
                          " elements (raise the density, or set it to 0 to drop this model explicitly)");
      p.kind = gta_model_plan::top;
      p.req_a = reqs.size();
      reqs.push_back({i, keep, -1.0});
      break;
    case sparsification::magnitude_outliers: {
      FUSEKIT_EXPECTS(keep > 0, invalid_argument,
                      merge_where(mname, ctx) + ": " + model_label(i) + " density " + std::to_string(d) +
                          " keeps floor(density*n) = 0 of n = " + std::to_string(n) + " elements");
      auto top = static_cast<std::int64_t>(std::floor(inputs[i].gamma * static_cast<double>(n)));
      std::int64_t bottom = n - keep - top;
      if (bottom < 0) {
        top += bottom;
        bottom = 0;
      }
      p.kind = gta_model_plan::band;
      p.req_a = reqs.size();
      reqs.push_back({i, top, -1.0});
      p.req_b = reqs.size();
      reqs.push_back({i, n - bottom, -1.0});
      break;
    }
    case sparsification::random: p.kind = gta_model_plan::random; break;
    case sparsification::della_magprune: {
      const double eps = inputs[i].epsilon;
      FUSEKIT_EXPECTS(std::isfinite(eps) && eps >= 0 && d - eps > 0 && d + eps < 1, invalid_argument,
                      merge_where(mname, ctx) + ": " + model_label(i) + " needs 0 < density - epsilon and density + "
                          "epsilon < 1, got density " + std::to_string(d) + ", epsilon " + std::to_string(eps));
      FUSEKIT_EXPECTS(Out::rank() <= 2, unsupported,
                      merge_where(mname, ctx) + ": della ranks magnitudes per row; tensors of rank " +
                          std::to_string(Out::rank()) + " are not supported (1-D and 2-D only)");
      p.kind = gta_model_plan::della;
      break;
    }
    case sparsification::none: break;
    }
  }

  // ---- exact top-k selections (magnitude, magnitude_outliers) ---------------------------------------------
  std::vector<block_topk> sel;
  if (!reqs.empty()) {
    std::vector<char> needs(N, 0);
    for (const auto& r : reqs)
      needs[r.stream] = 1;
    auto block_keys = [&](std::int64_t b, std::int64_t len, float* s, std::uint32_t* keys, std::int64_t kstride) {
      float* bb = s;
      float* x = s + blk;
      b_io.load(b, len, bb);
      for (std::size_t i = 0; i < N; ++i) {
        if (!needs[i])
          continue;
        in.load(i, b, len, x);
        std::uint32_t* kk = keys + i * static_cast<std::size_t>(kstride);
        FUSEKIT_PRAGMA_SIMD
        for (std::int64_t j = 0; j < len; ++j)
          kk[j] = exec::magnitude_key(x[j] - bb[j]);
      }
    };
    auto key_at = [&](std::size_t i, std::int64_t e) { return exec::magnitude_key(in.at(i, e) - b_io.at(e)); };
    sel = select_top_k(policy, n, N, std::span<const topk_request>(reqs), blk, static_cast<std::size_t>(2 * blk),
                       block_keys, key_at);
  }

  // ---- della bits (+ L1 sums), random bits + L1 sums, magnitude L1 sums ---------------------------------
  const bool l1 = rescale && rescale_by == rescale_mode::l1_norm;
  std::vector<double> l1_all(N, 0.0), l1_kept(N, 0.0);
  std::vector<char> have_l1(N, 0);
  for (std::size_t i = 0; i < N; ++i) {
    if (plan[i].kind != gta_model_plan::della)
      continue;
    const std::int64_t cols = Out::rank() == 1 ? n : out.extent(Out::rank() - 1);
    della_bits(policy, b_io, in, i, cols > 0 ? n / cols : 0, cols, plan[i].density, inputs[i].epsilon, ctx,
               plan[i].bits, l1_all[i], l1_kept[i]);
    have_l1[i] = 1;
  }
  bool stats_pass = false;
  for (std::size_t i = 0; i < N; ++i) {
    const auto k = plan[i].kind;
    if (k == gta_model_plan::random && l1) {
      plan[i].bits.assign(static_cast<std::size_t>((n + 63) / 64), 0);
      stats_pass = true;
    }
    if (l1 && (k == gta_model_plan::top || k == gta_model_plan::band))
      stats_pass = true;
  }
  // Computes keep[0..len) of model i for block bi (elements [b, b+len)), given d (= x − b) and key scratch.
  auto mark = [&](std::size_t i, std::int64_t bi, std::int64_t b, std::int64_t len, const float* d,
                  std::uint32_t* keys, float* keep, float* tmp) {
    const auto& p = plan[i];
    switch (p.kind) {
    case gta_model_plan::keep_all: std::fill(keep, keep + len, 1.0f); break;
    case gta_model_plan::drop_all: std::fill(keep, keep + len, 0.0f); break;
    case gta_model_plan::top:
    case gta_model_plan::band:
      FUSEKIT_PRAGMA_SIMD
      for (std::int64_t j = 0; j < len; ++j)
        keys[j] = exec::magnitude_key(d[j]);
      if (p.kind == gta_model_plan::top) {
        sel[p.req_a].mark(bi, keys, len, keep);
      } else {
        sel[p.req_b].mark(bi, keys, len, keep);
        sel[p.req_a].mark(bi, keys, len, tmp);
        FUSEKIT_PRAGMA_SIMD
        for (std::int64_t j = 0; j < len; ++j)
          keep[j] *= 1.0f - tmp[j];
      }
      break;
    case gta_model_plan::random:
      if (!p.bits.empty()) {
        unpack_bits(p.bits, b, len, keep);
      } else {
        fill_uniform(ctx.seed, model_stream(ctx.tensor_name, i), static_cast<std::uint64_t>(b), len, tmp);
        const auto pd = static_cast<float>(p.density);
        FUSEKIT_PRAGMA_SIMD
        for (std::int64_t j = 0; j < len; ++j)
          keep[j] = less_nonneg(tmp[j], pd);
      }
      break;
    case gta_model_plan::della: unpack_bits(p.bits, b, len, keep); break;
    }
  };
  if (stats_pass) {
    std::vector<double> partial(static_cast<std::size_t>(nblocks) * N * 2, 0.0);
    const std::size_t sf = static_cast<std::size_t>(blk) * 6;
    for_each_block_scratch(policy, n, blk, sf, [&](std::int64_t bi, std::int64_t b, std::int64_t e, float* s) {
      const std::int64_t len = e - b;
      float* bb = s;
      float* x = s + blk;
      float* keep = s + 2 * blk;
      float* tmp = s + 3 * blk;
      auto* keys = reinterpret_cast<std::uint32_t*>(s + 4 * blk);
      b_io.load(b, len, bb);
      for (std::size_t i = 0; i < N; ++i) {
        const auto k = plan[i].kind;
        if (!(k == gta_model_plan::top || k == gta_model_plan::band || k == gta_model_plan::random))
          continue;
        in.load(i, b, len, x);
        for (std::int64_t j = 0; j < len; ++j)
          x[j] -= bb[j];
        if (k == gta_model_plan::random) {
          fill_uniform(ctx.seed, model_stream(ctx.tensor_name, i), static_cast<std::uint64_t>(b), len, tmp);
          const auto pd = static_cast<float>(plan[i].density);
          FUSEKIT_PRAGMA_SIMD
          for (std::int64_t j = 0; j < len; ++j)
            keep[j] = less_nonneg(tmp[j], pd);
          pack_bits(plan[i].bits, b, len, keep);
        } else {
          mark(i, bi, b, len, x, keys, keep, tmp);
        }
        partial[(static_cast<std::size_t>(bi) * N + i) * 2] = lane_sum(len, [&](std::int64_t j) { return std::abs(x[j]); });
        partial[(static_cast<std::size_t>(bi) * N + i) * 2 + 1] =
            lane_sum(len, [&](std::int64_t j) { return keep[j] * std::abs(x[j]); });
      }
    });
    const auto tot = sum_blocks(partial, N * 2);
    for (std::size_t i = 0; i < N; ++i) {
      const auto k = plan[i].kind;
      if (k == gta_model_plan::top || k == gta_model_plan::band || k == gta_model_plan::random) {
        l1_all[i] = tot[i * 2];
        l1_kept[i] = tot[i * 2 + 1];
        have_l1[i] = 1;
      }
    }
  }
  if (rescale) {
    for (std::size_t i = 0; i < N; ++i) {
      auto& p = plan[i];
      if (p.kind == gta_model_plan::keep_all || p.kind == gta_model_plan::drop_all)
        continue;
      if (rescale_by == rescale_mode::inverse_density) {
        p.scale = static_cast<float>(1.0 / p.density);
      } else if (have_l1[i] && l1_all[i] >= 1e-7 && l1_kept[i] >= 1e-7) { // mergekit: skip when either < 1e-7
        p.scale = static_cast<float>(l1_all[i] / l1_kept[i]);
      }
    }
  }

  // ---- final pass: sparsify, weight, elect, disjoint mean, normalize, lambda ------------------------------
  double wsum = 0;
  for (const auto& x : inputs)
    wsum += x.weight;
  const float scalar_div = (normalize && consensus == consensus_method::none)
                               ? static_cast<float>(std::abs(wsum) < 1e-8 ? 1.0 : wsum)
                               : 1.0f;
  const bool weighted_election = election == sign_election::weighted;
  const bool count_div = divisor == consensus_divisor::count;
  const float lam = lambda;
  const std::size_t sf = static_cast<std::size_t>(blk) * (N + 8);
  for_each_block_scratch(policy, n, blk, sf, [&](std::int64_t bi, std::int64_t b, std::int64_t e, float* s) {
    const std::int64_t len = e - b;
    float* bb = s;
    float* x = s + blk;
    float* keep = s + 2 * blk;
    float* tmp = s + 3 * blk;
    float* S = s + 4 * blk;
    float* M = s + 5 * blk;
    float* D = s + 6 * blk;
    auto* keys = reinterpret_cast<std::uint32_t*>(s + 7 * blk);
    float* T = s + 8 * blk; // N rows of sparsified, rescaled deltas
    b_io.load(b, len, bb);
    std::fill(S, S + len, 0.0f);
    std::fill(M, M + len, 0.0f);
    std::fill(D, D + len, 0.0f);
    for (std::size_t i = 0; i < N; ++i) {
      float* t = T + i * static_cast<std::size_t>(blk);
      in.load(i, b, len, x);
      FUSEKIT_PRAGMA_SIMD
      for (std::int64_t j = 0; j < len; ++j)
        x[j] -= bb[j];
      const float sc = plan[i].scale, w = inputs[i].weight;
      if (plan[i].kind == gta_model_plan::keep_all) {
        FUSEKIT_PRAGMA_SIMD
        for (std::int64_t j = 0; j < len; ++j)
          t[j] = x[j] * sc;
      } else {
        mark(i, bi, b, len, x, keys, keep, tmp);
        FUSEKIT_PRAGMA_SIMD
        for (std::int64_t j = 0; j < len; ++j)
          t[j] = keep[j] * x[j] * sc;
      }
      if (consensus == consensus_method::none) {
        FUSEKIT_PRAGMA_SIMD
        for (std::int64_t j = 0; j < len; ++j)
          M[j] += w * t[j];
      } else if (consensus == consensus_method::sum) {
        const float ew = weighted_election ? w : 1.0f;
        FUSEKIT_PRAGMA_SIMD
        for (std::int64_t j = 0; j < len; ++j)
          S[j] += ew * t[j];
      } else {
        const float ew = weighted_election ? w : 1.0f;
        FUSEKIT_PRAGMA_SIMD
        for (std::int64_t j = 0; j < len; ++j) {
          const float v = ew * t[j];
          S[j] += (v > 0.0f ? 1.0f : 0.0f) - (v < 0.0f ? 1.0f : 0.0f);
        }
      }
    }
    if (consensus != consensus_method::none) {
      // elected sign as ±1 (ties → +); an entry agrees when e·σ > 0 (exact zeros never agree)
      FUSEKIT_PRAGMA_SIMD
      for (std::int64_t j = 0; j < len; ++j)
        S[j] = elected_sign(S[j]);
      for (std::size_t i = 0; i < N; ++i) {
        const float* t = T + i * static_cast<std::size_t>(blk);
        const float w = inputs[i].weight;
        const float ew = weighted_election ? w : 1.0f;
        const float dw = count_div ? 1.0f : w;
        FUSEKIT_PRAGMA_SIMD
        for (std::int64_t j = 0; j < len; ++j) {
          const std::uint32_t agree = positive_mask(ew * t[j] * S[j]);
          M[j] += masked(w * t[j], agree);
          D[j] += masked(dw, agree);
        }
      }
      if (normalize) {
        FUSEKIT_PRAGMA_SIMD
        for (std::int64_t j = 0; j < len; ++j)
          M[j] = M[j] / (D[j] == 0.0f ? 1.0f : D[j]);
      }
    } else if (normalize) {
      FUSEKIT_PRAGMA_SIMD
      for (std::int64_t j = 0; j < len; ++j)
        M[j] = M[j] / scalar_div;
    }
    FUSEKIT_PRAGMA_SIMD
    for (std::int64_t j = 0; j < len; ++j)
      M[j] = bb[j] + lam * M[j];
    o_io.store(b, len, M);
  });
}

} // namespace fusekit

namespace fusekit::detail {
/// Runs the GTA pipeline for a method value `m` with members lambda, normalize, rescale, election, divisor,
/// rescale_by (the mergekit-named GTA methods all have them).
template <class M, class P, class Out, class Base, class In>
void run_gta(const M& m, sparsification sp, consensus_method cm, const P& policy, const Out& out, const Base& base,
             std::span<const merge_input<In>> inputs, const merge_context& ctx) {
  generalized_task_arithmetic g;
  g.sparsify = sp;
  g.consensus = cm;
  g.lambda = m.lambda;
  g.normalize = m.normalize;
  g.rescale = m.rescale;
  g.election = m.election;
  g.divisor = m.divisor;
  g.rescale_by = m.rescale_by;
  g.method_name = M::name;
  g.apply(policy, out, base, inputs, ctx);
}
} // namespace fusekit::detail
