// Token / sequence log-probs from logits: spec vector §6.7, long-double references, finite differences
// end to end (DPO → sequence log-probs → logits), bf16/fp16 storage, strides, in-place backward,
// huge logits, masked and empty sequences, top-k.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include <fusekit/loss/logprob.hpp>
#include <fusekit/loss/preference_batch.hpp>
#include <fusekit/types/bf16.hpp>
#include <fusekit/types/fp16.hpp>

namespace fk = fusekit;

namespace {

void close(double a, double b, double atol, double rtol = 0) {
  BOOST_TEST(std::abs(a - b) <= atol + rtol * std::abs(b), a << " vs " << b);
}

// long-double reference of one row
struct ref_row {
  long double lse, ent, mean;
};
template <class T> ref_row reference(const T* z, std::int64_t V) {
  long double m = -std::numeric_limits<long double>::infinity();
  for (std::int64_t j = 0; j < V; ++j)
    m = std::max(m, static_cast<long double>(static_cast<double>(z[j])));
  long double s = 0, zs = 0, t = 0;
  for (std::int64_t j = 0; j < V; ++j) {
    const long double x = static_cast<double>(z[j]);
    s += std::exp(x - m);
    zs += x;
  }
  const long double lse = m + std::log(s);
  for (std::int64_t j = 0; j < V; ++j) {
    const long double x = static_cast<double>(z[j]);
    const long double p = std::exp(x - lse);
    t += p * (x - lse);
  }
  return {lse, -t, zs / V};
}

std::vector<double> random_logits(std::int64_t n, std::uint64_t seed, double scale = 3.0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> d(0.0, scale);
  std::vector<double> v(static_cast<std::size_t>(n));
  for (auto& x : v)
    x = d(rng);
  return v;
}

} // namespace

BOOST_AUTO_TEST_SUITE(logprob)

BOOST_AUTO_TEST_CASE(spec_vector_6_7) {
  std::vector<double> z{2.0, 0.5, -1.0, 0.0, 0.1, 0.2, 0.3, 0.4, 5.0, -5.0, 0.0, 1.0};
  std::vector<std::int64_t> y{0, -100, 3};
  fk::logits_batch<double> b{.logits =
                                 fk::host_view(static_cast<const double*>(z.data()), std::array<std::int64_t, 2>{3, 4}),
                             .labels = fk::host_view(static_cast<const std::int64_t*>(y.data()), 3)};
  std::vector<double> lp(3), lse(3), sum(1), mean(1), cnt(1);
  fk::sequence_logprobs(
      fk::exec::seq, b,
      fk::sequence_logprob_outputs<double>{.sum = fk::host_view(sum.data(), 1),
                                           .mean = fk::host_view(mean.data(), 1),
                                           .count = fk::host_view(cnt.data(), 1)},
      fk::token_logprob_outputs<double>{.logp = fk::host_view(lp.data(), 3), .lse = fk::host_view(lse.data(), 3)});
  close(lse[0], 2.342349582, 1e-9);
  close(lse[1], 1.642535529, 1e-9);
  close(lse[2], 5.024789179, 1e-9);
  close(lp[0], -0.3423495824, 1e-10);
  BOOST_TEST(lp[1] == 0.0);
  close(lp[2], -4.024789179, 1e-9);
  close(sum[0], -4.367138762, 1e-9);
  close(mean[0], -2.183569381, 1e-9);
  BOOST_TEST(cnt[0] == 2.0);
  // gradient of the sequence log-prob itself (g = 1): onehot − softmax
  std::vector<double> g{1.0}, grad(12, 7.0);
  fk::sequence_logprobs_backward(
      fk::exec::seq, b, fk::vector_view<const double>(fk::host_view(g.data(), 1)),
      fk::host_view(grad.data(), std::array<std::int64_t, 2>{3, 4}),
      fk::logprob_backward_options<double>{.lse = fk::host_view(static_cast<const double*>(lse.data()), 3)});
  const double e0[] = {0.2899000771, -0.1584447095, -0.03535379341, -0.09610157419};
  const double e2[] = {-0.9755155491, -4.428833741e-05, -0.006572972066, 0.9821328095};
  for (int j = 0; j < 4; ++j) {
    close(grad[j], e0[j], 1e-9);
    BOOST_TEST(grad[4 + j] == 0.0);
    close(grad[8 + j], e2[j], 1e-9, 1e-8);
  }
  // float storage and the same numbers within fp32 tolerance, through the recompute path (no lse)
  std::vector<float> zf(z.begin(), z.end()), gf(12);
  fk::logits_batch<float> bf{.logits =
                                 fk::host_view(static_cast<const float*>(zf.data()), std::array<std::int64_t, 2>{3, 4}),
                             .labels = fk::host_view(static_cast<const std::int64_t*>(y.data()), 3)};
  fk::sequence_logprobs_backward(fk::exec::par, bf, fk::vector_view<const double>(fk::host_view(g.data(), 1)),
                                 fk::host_view(gf.data(), std::array<std::int64_t, 2>{3, 4}));
  for (int j = 0; j < 4; ++j)
    close(gf[8 + j], e2[j], 1e-6, 1e-5);
}

BOOST_AUTO_TEST_CASE(online_lse_against_long_double_odd_shapes) {
  // V not a multiple of the SIMD width nor of the 1024-element block; several rows; all stats
  for (std::int64_t V : {1, 7, 33, 1023, 1025, 3001}) {
    const std::int64_t N = 5;
    auto z = random_logits(N * V, 17 + static_cast<std::uint64_t>(V), 4.0);
    std::vector<std::int64_t> y(N);
    for (std::int64_t t = 0; t < N; ++t)
      y[t] = (t * 7919) % V;
    std::vector<double> lp(N), lse(N), ent(N), lm(N);
    std::vector<std::uint8_t> corr(N);
    fk::logits_batch<double> b{
        .logits = fk::host_view(static_cast<const double*>(z.data()), std::array<std::int64_t, 2>{N, V}),
        .labels = fk::host_view(static_cast<const std::int64_t*>(y.data()), N)};
    fk::token_logprobs(fk::exec::par, b,
                       fk::token_logprob_outputs<double>{.logp = fk::host_view(lp.data(), N),
                                                         .lse = fk::host_view(lse.data(), N),
                                                         .entropy = fk::host_view(ent.data(), N),
                                                         .logit_mean = fk::host_view(lm.data(), N),
                                                         .correct = fk::host_view(corr.data(), N)});
    // float storage with fp32 compute
    std::vector<float> zf(z.begin(), z.end());
    std::vector<float> lpf(N), entf(N);
    fk::logits_batch<float> bf{
        .logits = fk::host_view(static_cast<const float*>(zf.data()), std::array<std::int64_t, 2>{N, V}),
        .labels = fk::host_view(static_cast<const std::int64_t*>(y.data()), N)};
    fk::token_logprobs(fk::exec::seq, bf,
                       fk::token_logprob_outputs<float>{.logp = fk::host_view(lpf.data(), N),
                                                        .entropy = fk::host_view(entf.data(), N)});
    for (std::int64_t t = 0; t < N; ++t) {
      const auto r = reference(z.data() + t * V, V);
      close(lse[t], static_cast<double>(r.lse), 1e-12, 1e-13);
      close(lp[t], static_cast<double>(z[t * V + y[t]] - r.lse), 1e-12, 1e-12);
      close(ent[t], static_cast<double>(r.ent), 1e-11, 1e-11);
      close(lm[t], static_cast<double>(r.mean), 1e-12, 1e-12);
      const auto am = std::max_element(z.begin() + t * V, z.begin() + (t + 1) * V) - (z.begin() + t * V);
      BOOST_TEST(corr[t] == (am == y[t] ? 1 : 0));
      // fp32: Liger CE-kernel tolerance (atol 1e-8, rtol 1e-6) scaled to the size of lse
      close(lpf[t], static_cast<double>(z[t * V + y[t]] - r.lse), 1e-5, 1e-6);
      close(entf[t], static_cast<double>(r.ent), 1e-5, 1e-5);
    }
  }
}

BOOST_AUTO_TEST_CASE(finite_difference_end_to_end_dpo) {
  // Two pairs (4 sequences) of random length with masked prompt rows; logits double; the DPO loss
  // through sequence log-probs; d loss / d logits checked by central differences on a sample of entries.
  std::mt19937_64 rng(99);
  const std::int64_t V = 37;
  std::vector<std::int64_t> off{0, 5, 9, 16, 20}; // 4 sequences
  const std::int64_t N = off.back(), B = 4;
  auto z = random_logits(N * V, 5, 2.0);
  std::vector<std::int64_t> y(N);
  for (std::int64_t t = 0; t < N; ++t)
    y[t] = static_cast<std::int64_t>(rng() % V);
  y[0] = y[5] = y[9] = y[16] = -100; // first row of each sequence is a prompt token
  y[10] = -100;
  std::vector<std::uint8_t> mask(N, 1);
  mask[12] = 0; // explicit mask form too
  std::vector<double> ref{-40.0, -45.0, -38.0, -52.0};
  auto eval = [&](const std::vector<double>& logits, std::vector<double>* grad) {
    fk::logits_batch<double> b{
        .logits = fk::host_view(static_cast<const double*>(logits.data()), std::array<std::int64_t, 2>{N, V}),
        .labels = fk::host_view(static_cast<const std::int64_t*>(y.data()), N),
        .mask = fk::host_view(static_cast<const std::uint8_t*>(mask.data()), N),
        .seq_offsets = fk::host_view(static_cast<const std::int64_t*>(off.data()), B + 1)};
    std::vector<double> lp(B), cnt(B), lse(N);
    fk::sequence_logprobs(
        fk::exec::seq, b,
        fk::sequence_logprob_outputs<double>{.sum = fk::host_view(lp.data(), B), .count = fk::host_view(cnt.data(), B)},
        fk::token_logprob_outputs<double>{.lse = fk::host_view(lse.data(), N)});
    // pairs: (seq0 chosen, seq1 rejected), (seq2 chosen, seq3 rejected), ln_dpo needs counts
    std::vector<double> pc{lp[0], lp[2]}, pr{lp[1], lp[3]}, rc{ref[0], ref[2]}, rr{ref[1], ref[3]}, lc{cnt[0], cnt[2]},
        lr{cnt[1], cnt[3]}, gc(2), gr(2);
    fk::preference_batch<double> in{.policy_chosen = fk::host_view(pc.data(), 2),
                                    .policy_rejected = fk::host_view(pr.data(), 2),
                                    .ref_chosen = fk::host_view(rc.data(), 2),
                                    .ref_rejected = fk::host_view(rr.data(), 2),
                                    .len_chosen = fk::host_view(lc.data(), 2),
                                    .len_rejected = fk::host_view(lr.data(), 2)};
    const auto loss = fk::combine(fk::weighted_term{1.0, fk::ln_dpo{.beta = 2.0}}, fk::weighted_term{0.5, fk::sft{}});
    const auto m =
        fk::preference_loss(fk::exec::seq, loss, in,
                            fk::preference_outputs<double>{.d_policy_chosen = fk::host_view(gc.data(), 2),
                                                           .d_policy_rejected = fk::host_view(gr.data(), 2)});
    if (grad) {
      std::vector<double> gseq{gc[0], gr[0], gc[1], gr[1]};
      grad->assign(static_cast<std::size_t>(N * V), 0.0);
      fk::sequence_logprobs_backward(
          fk::exec::par, b, fk::vector_view<const double>(fk::host_view(gseq.data(), B)),
          fk::host_view(grad->data(), std::array<std::int64_t, 2>{N, V}),
          fk::logprob_backward_options<double>{.lse = fk::host_view(static_cast<const double*>(lse.data()), N)});
    }
    return m.loss;
  };
  std::vector<double> grad;
  eval(z, &grad);
  int checked = 0;
  for (std::int64_t idx = 0; idx < N * V; idx += 7) {
    auto zp = z, zm = z;
    const double h = 1e-5;
    zp[idx] += h;
    zm[idx] -= h;
    const double fd = (eval(zp, nullptr) - eval(zm, nullptr)) / (2 * h);
    close(grad[idx], fd, 1e-8, 1e-6);
    ++checked;
  }
  BOOST_TEST(checked > 100);
  // masked rows have exactly zero gradient
  for (std::int64_t t : {0, 5, 9, 10, 12, 16})
    for (std::int64_t j = 0; j < V; ++j)
      BOOST_TEST(grad[t * V + j] == 0.0);
}

BOOST_AUTO_TEST_CASE(bf16_fp16_against_float64_reference) {
  const std::int64_t N = 6, V = 2051;
  auto z = random_logits(N * V, 3, 3.0);
  std::vector<fk::bf16> zb(z.size());
  std::vector<fk::fp16> zh(z.size());
  std::vector<double> zq_b(z.size()), zq_h(z.size());
  for (std::size_t i = 0; i < z.size(); ++i) {
    zb[i] = fk::bf16(static_cast<float>(z[i]));
    zh[i] = fk::fp16(static_cast<float>(z[i]));
    zq_b[i] = static_cast<float>(zb[i]);
    zq_h[i] = static_cast<float>(zh[i]);
  }
  std::vector<std::int64_t> y(N);
  for (std::int64_t t = 0; t < N; ++t)
    y[t] = (t * 331) % V;
  y[2] = -100;
  std::vector<std::int64_t> off{0, 3, 6};
  auto run = [&](auto& zz, std::vector<double>& lp, std::vector<float>& grad) {
    using T = typename std::remove_reference_t<decltype(zz)>::value_type;
    fk::logits_batch<T> b{.logits = fk::host_view(static_cast<const T*>(zz.data()), std::array<std::int64_t, 2>{N, V}),
                          .labels = fk::host_view(static_cast<const std::int64_t*>(y.data()), N),
                          .seq_offsets = fk::host_view(static_cast<const std::int64_t*>(off.data()), 3)};
    lp.assign(2, 0);
    fk::sequence_logprobs(fk::exec::par, b, fk::sequence_logprob_outputs<double>{.sum = fk::host_view(lp.data(), 2)});
    std::vector<double> g{-0.5, 0.25};
    grad.assign(static_cast<std::size_t>(N * V), 0.f);
    fk::sequence_logprobs_backward(fk::exec::par, b, fk::vector_view<const double>(fk::host_view(g.data(), 2)),
                                   fk::host_view(grad.data(), std::array<std::int64_t, 2>{N, V}));
  };
  std::vector<double> lp64, lpb, lph, lpq_b, lpq_h;
  std::vector<float> g64, gb, gh, gq_b, gq_h;
  run(z, lp64, g64);
  run(zb, lpb, gb);
  run(zh, lph, gh);
  run(zq_b, lpq_b, gq_b); // the exact values the bf16 storage holds, in double
  run(zq_h, lpq_h, gq_h);
  for (int s = 0; s < 2; ++s) {
    // compute precision: bf16 storage computed in fp32 vs the same stored values in fp64
    close(lpb[s], lpq_b[s], 1e-4, 1e-6);
    close(lph[s], lpq_h[s], 1e-4, 1e-6);
    // storage rounding vs the unrounded fp64 logits: Liger bf16 FLCE "sum" tolerance (atol 5, rtol 50)
    // is far looser than what we see; hold bf16 to 5e-2 relative on the sequence sum, fp16 to 5e-3.
    close(lpb[s], lp64[s], 5e-2, 5e-2);
    close(lph[s], lp64[s], 5e-3, 5e-3);
  }
  double max_b = 0, max_h = 0;
  for (std::size_t i = 0; i < g64.size(); ++i) {
    max_b = std::max(max_b, std::abs(double(gb[i]) - gq_b[i]));
    max_h = std::max(max_h, std::abs(double(gh[i]) - gq_h[i]));
    // vs fp64 reference of unrounded logits: Liger CE kernel bf16 tolerance (atol 1e-8, rtol 5e-2) on |g|<=1
    BOOST_TEST(std::abs(double(gb[i]) - g64[i]) <= 5e-3 + 5e-2 * std::abs(g64[i]));
  }
  BOOST_TEST(max_b < 1e-6);
  BOOST_TEST(max_h < 1e-6);
}

BOOST_AUTO_TEST_CASE(inplace_strided_and_bf16_output) {
  const std::int64_t N = 4, V = 1500, ld = 1600; // padded rows: non-contiguous view
  auto z = random_logits(N * ld, 8, 2.0);
  std::vector<std::int64_t> y{3, 1499, -100, 0};
  std::vector<double> g{0.7, -1.3, 2.0, 0.1};
  fk::logits_batch<double> b{.logits =
                                 fk::host_view(static_cast<const double*>(z.data()), std::array<std::int64_t, 2>{N, V},
                                               std::array<std::int64_t, 2>{ld, 1}),
                             .labels = fk::host_view(static_cast<const std::int64_t*>(y.data()), N)};
  std::vector<double> out(N * V);
  fk::token_logprobs_backward(fk::exec::seq, b, fk::vector_view<const double>(fk::host_view(g.data(), N)),
                              fk::host_view(out.data(), std::array<std::int64_t, 2>{N, V}));
  // in place over the padded buffer
  auto zi = z;
  fk::logits_batch<double> bi = b;
  bi.logits = fk::host_view(static_cast<const double*>(zi.data()), std::array<std::int64_t, 2>{N, V},
                            std::array<std::int64_t, 2>{ld, 1});
  fk::token_logprobs_backward(
      fk::exec::par, bi, fk::vector_view<const double>(fk::host_view(g.data(), N)),
      fk::host_view(zi.data(), std::array<std::int64_t, 2>{N, V}, std::array<std::int64_t, 2>{ld, 1}));
  for (std::int64_t t = 0; t < N; ++t) {
    for (std::int64_t j = 0; j < V; ++j)
      BOOST_TEST(zi[t * ld + j] == out[t * V + j]);
    for (std::int64_t j = V; j < ld; ++j) // padding untouched
      BOOST_TEST(zi[t * ld + j] == z[t * ld + j]);
    double rowsum = 0;
    for (std::int64_t j = 0; j < V; ++j)
      rowsum += out[t * V + j];
    close(rowsum, 0.0, 1e-12); // onehot − softmax sums to zero
  }
  // column-strided (transposed) view: logits stored [V, N]
  std::vector<double> zt(N * V);
  for (std::int64_t t = 0; t < N; ++t)
    for (std::int64_t j = 0; j < V; ++j)
      zt[j * N + t] = z[t * ld + j];
  fk::logits_batch<double> bt = b;
  bt.logits = fk::host_view(static_cast<const double*>(zt.data()), std::array<std::int64_t, 2>{N, V},
                            std::array<std::int64_t, 2>{1, N});
  std::vector<double> outt(N * V);
  fk::token_logprobs_backward(fk::exec::seq, bt, fk::vector_view<const double>(fk::host_view(g.data(), N)),
                              fk::host_view(outt.data(), std::array<std::int64_t, 2>{N, V}));
  for (std::size_t i = 0; i < out.size(); ++i)
    close(outt[i], out[i], 1e-15, 1e-12);
  // accumulate mode adds
  std::vector<double> acc = out;
  fk::token_logprobs_backward(fk::exec::seq, b, fk::vector_view<const double>(fk::host_view(g.data(), N)),
                              fk::host_view(acc.data(), std::array<std::int64_t, 2>{N, V}),
                              fk::logprob_backward_options<double>{.accumulate = true});
  for (std::size_t i = 0; i < out.size(); ++i)
    close(acc[i], 2 * out[i], 1e-15, 1e-12);
  // bf16 gradient output
  std::vector<fk::bf16> ob(N * V);
  fk::token_logprobs_backward(fk::exec::seq, b, fk::vector_view<const double>(fk::host_view(g.data(), N)),
                              fk::host_view(ob.data(), std::array<std::int64_t, 2>{N, V}));
  for (std::size_t i = 0; i < out.size(); ++i)
    BOOST_TEST(same_bits(ob[i], fk::bf16(static_cast<float>(out[i]))));
}

BOOST_AUTO_TEST_CASE(huge_logits_masked_and_empty_sequences) {
  const std::int64_t V = 50;
  std::vector<float> z(4 * V, 0.f);
  z[0 * V + 3] = 1e4f;
  z[0 * V + 4] = -1e4f;
  for (std::int64_t j = 0; j < V; ++j)
    z[1 * V + j] = -1e4f + static_cast<float>(j);
  z[2 * V + 7] = 1e4f;
  z[3 * V + 0] = -std::numeric_limits<float>::infinity(); // −inf logits are legal (token banned)
  std::vector<std::int32_t> y{4, 49, -100, 1};
  std::vector<std::int64_t> off{0, 2, 3, 3, 4}; // sequence 1 all masked, sequence 2 empty
  fk::logits_batch<float, std::int32_t> b{
      .logits = fk::host_view(static_cast<const float*>(z.data()), std::array<std::int64_t, 2>{4, V}),
      .labels = fk::host_view(static_cast<const std::int32_t*>(y.data()), 4),
      .seq_offsets = fk::host_view(static_cast<const std::int64_t*>(off.data()), 5)};
  std::vector<double> sum(4), mean(4), cnt(4), ent(4);
  fk::sequence_logprobs(fk::exec::par, b,
                        fk::sequence_logprob_outputs<double>{.sum = fk::host_view(sum.data(), 4),
                                                             .mean = fk::host_view(mean.data(), 4),
                                                             .count = fk::host_view(cnt.data(), 4),
                                                             .entropy_mean = fk::host_view(ent.data(), 4)});
  for (int s = 0; s < 4; ++s) {
    BOOST_TEST(std::isfinite(sum[s]));
    BOOST_TEST(std::isfinite(mean[s]));
    BOOST_TEST(std::isfinite(ent[s]));
  }
  close(sum[0], -2e4 + std::log(1.0 - std::exp(-1.0)), 1e-2); // row 0: −1e4 − 1e4; row 1: log(1 − e^−1)
  BOOST_TEST(cnt[1] == 0.0);
  BOOST_TEST(sum[1] == 0.0);
  BOOST_TEST(mean[1] == 0.0);
  BOOST_TEST(cnt[2] == 0.0);
  close(sum[3], -std::log(static_cast<double>(V - 1)), 1e-5);
  std::vector<float> grad(4 * V, 1.f);
  std::vector<double> g{1.0, 1.0, 1.0, 1.0};
  fk::sequence_logprobs_backward(fk::exec::seq, b, fk::vector_view<const double>(fk::host_view(g.data(), 4)),
                                 fk::host_view(grad.data(), std::array<std::int64_t, 2>{4, V}));
  for (float x : grad)
    BOOST_TEST(std::isfinite(x));
  close(grad[0 * V + 3], -1.0, 1e-6); // softmax mass on the 1e4 logit
  close(grad[0 * V + 4], 1.0, 1e-6);
  BOOST_TEST(grad[3 * V + 0] == 0.0f);
  // NaN in a counted row is an error naming the row, not a silent NaN
  z[3 * V + 5] = std::numeric_limits<float>::quiet_NaN();
  std::vector<double> s4(4);
  BOOST_CHECK_EXCEPTION(
      fk::sequence_logprobs(fk::exec::seq, b, fk::sequence_logprob_outputs<double>{.sum = fk::host_view(s4.data(), 4)}),
      fk::error, [](const fk::error& e) { return std::string(e.what()).find("row 3") != std::string::npos; });
  // labels outside the vocabulary
  y[0] = 50;
  BOOST_CHECK_THROW(
      fk::sequence_logprobs(fk::exec::seq, b, fk::sequence_logprob_outputs<double>{.sum = fk::host_view(s4.data(), 4)}),
      fk::error);
}

BOOST_AUTO_TEST_CASE(topk_representation) {
  const std::int64_t N = 3, V = 2500, K = 10;
  auto z = random_logits(N * V, 21, 2.0);
  z[1 * V + 100] = z[1 * V + 2000] = 50.0; // a tie: lower id first
  std::vector<fk::bf16> zb(z.size());
  for (std::size_t i = 0; i < z.size(); ++i)
    zb[i] = fk::bf16(static_cast<float>(z[i]));
  std::vector<std::int64_t> y(N, -100); // top-k is emitted for every row, masked or not
  std::vector<std::int64_t> ids(N * K);
  std::vector<float> vals(N * K);
  fk::logits_batch<fk::bf16> b{
      .logits = fk::host_view(static_cast<const fk::bf16*>(zb.data()), std::array<std::int64_t, 2>{N, V}),
      .labels = fk::host_view(static_cast<const std::int64_t*>(y.data()), N)};
  fk::token_logprobs(
      fk::exec::par, b,
      fk::token_logprob_outputs<float>{.topk_ids = fk::host_view(ids.data(), std::array<std::int64_t, 2>{N, K}),
                                       .topk_logits = fk::host_view(vals.data(), std::array<std::int64_t, 2>{N, K})});
  for (std::int64_t t = 0; t < N; ++t) {
    std::vector<std::int64_t> order(V);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto c) {
      return static_cast<float>(zb[t * V + a]) > static_cast<float>(zb[t * V + c]);
    });
    for (std::int64_t k = 0; k < K; ++k) {
      BOOST_TEST(ids[t * K + k] == order[k]);
      BOOST_TEST(vals[t * K + k] == static_cast<float>(zb[t * V + order[k]]));
    }
  }
  BOOST_TEST(ids[1 * K + 0] == 100);
  BOOST_TEST(ids[1 * K + 1] == 2000);
}

BOOST_AUTO_TEST_CASE(ld_dpo_weights_spec_example_and_gradient) {
  // losses.md §1.1: chosen per-token log-probs (-1,-2,-3,-4,-5), rejected completion of 3 tokens,
  // ld_alpha 0.5 -> chosen sum -10.5. Rows of V = 2 with logits (0, log(e^a - 1)) and label 0 have
  // log-prob exactly -a. One prompt row (masked) in front of each sequence.
  const std::int64_t V = 2;
  const double chosen[] = {1, 2, 3, 4, 5}, rejected[] = {0.5, 0.25, 2.0};
  std::vector<double> z;
  std::vector<std::int64_t> y;
  auto add = [&](double a) {
    z.push_back(0.0);
    z.push_back(std::log(std::expm1(a)));
    y.push_back(0);
  };
  auto prompt = [&]() {
    z.push_back(0.3);
    z.push_back(-0.2);
    y.push_back(-100);
  };
  prompt();
  for (double a : chosen)
    add(a);
  prompt();
  for (double a : rejected)
    add(a);
  const std::int64_t N = static_cast<std::int64_t>(y.size());
  std::vector<std::int64_t> off{0, 6, N}, partner{1, 0};
  std::vector<float> w(N);
  fk::logits_batch<double> b{.logits =
                                 fk::host_view(static_cast<const double*>(z.data()), std::array<std::int64_t, 2>{N, V}),
                             .labels = fk::host_view(static_cast<const std::int64_t*>(y.data()), N),
                             .seq_offsets = fk::host_view(static_cast<const std::int64_t*>(off.data()), 3)};
  fk::ld_dpo_token_weights(b, fk::vector_view<const std::int64_t>(fk::host_view(partner.data(), 2)), 0.5,
                           fk::host_view(w.data(), N));
  b.token_weight = fk::host_view(static_cast<const float*>(w.data()), N);
  std::vector<double> sum(2), cnt(2);
  fk::sequence_logprobs(
      fk::exec::seq, b,
      fk::sequence_logprob_outputs<double>{.sum = fk::host_view(sum.data(), 2), .count = fk::host_view(cnt.data(), 2)});
  close(sum[0], -10.5, 1e-12);
  close(sum[1], -2.75, 1e-12); // rejected is the shorter one: all its tokens count fully
  BOOST_TEST(cnt[0] == 5.0);
  // the backward carries the weights: finite differences of g·(weighted sum) w.r.t. the logits
  std::vector<double> g{0.7, -1.1}, grad(N * V);
  fk::sequence_logprobs_backward(fk::exec::seq, b, fk::vector_view<const double>(fk::host_view(g.data(), 2)),
                                 fk::host_view(grad.data(), std::array<std::int64_t, 2>{N, V}));
  for (std::int64_t i = 0; i < N * V; ++i) {
    auto f = [&](double dz) {
      auto zz = z;
      zz[i] += dz;
      auto bb = b;
      bb.logits = fk::host_view(static_cast<const double*>(zz.data()), std::array<std::int64_t, 2>{N, V});
      std::vector<double> s2(2);
      fk::sequence_logprobs(fk::exec::seq, bb,
                            fk::sequence_logprob_outputs<double>{.sum = fk::host_view(s2.data(), 2)});
      return g[0] * s2[0] + g[1] * s2[1];
    };
    close(grad[i], (f(1e-6) - f(-1e-6)) / 2e-6, 1e-8, 1e-6);
  }
  BOOST_CHECK_THROW(fk::ld_dpo_token_weights(b, fk::vector_view<const std::int64_t>(fk::host_view(partner.data(), 2)),
                                             1.5, fk::host_view(w.data(), N)),
                    fk::error);
}

BOOST_AUTO_TEST_CASE(fp16_and_bf16_widening_is_exact_for_every_bit_pattern) {
  // the row kernels widen 16-bit storage with their own branch-free code: compare with fusekit's types
  int bad = 0;
  for (unsigned h = 0; h < 65536; ++h) {
    const float a = fk::detail::fp16_bits_to_float(static_cast<std::uint16_t>(h));
    const float b = fk::fp16::to_float(static_cast<std::uint16_t>(h));
    bad += std::bit_cast<std::uint32_t>(a) != std::bit_cast<std::uint32_t>(b) ? 1 : 0;
  }
  BOOST_TEST(bad == 0);
  std::vector<fk::bf16> vb(65536);
  std::vector<fk::fp16> vh(65536);
  for (unsigned h = 0; h < 65536; ++h) {
    vb[h] = fk::bf16(fk::from_bits, static_cast<std::uint16_t>(h));
    vh[h] = fk::fp16(fk::from_bits, static_cast<std::uint16_t>(h));
  }
  std::vector<float> ob(65536), oh(65536);
  fk::detail::load_block(vb.data(), 1, ob.data(), 65536);
  fk::detail::load_block(vh.data(), 1, oh.data(), 65536);
  int bad2 = 0;
  for (unsigned h = 0; h < 65536; ++h) {
    bad2 += std::bit_cast<std::uint32_t>(ob[h]) != std::bit_cast<std::uint32_t>(static_cast<float>(vb[h])) ? 1 : 0;
    bad2 += std::bit_cast<std::uint32_t>(oh[h]) != std::bit_cast<std::uint32_t>(static_cast<float>(vh[h])) ? 1 : 0;
  }
  BOOST_TEST(bad2 == 0);
  // and the narrowing store of gradients to bf16 rounds exactly like fusekit::bf16(float), NaN included
  std::vector<float> f;
  for (std::uint32_t hi = 0; hi < 65536; ++hi)
    for (std::uint32_t lo : {0u, 1u, 0x7fffu, 0x8000u, 0x8001u, 0xffffu})
      f.push_back(std::bit_cast<float>((hi << 16) | lo));
  std::vector<fk::bf16> st(f.size());
  fk::detail::store_block(st.data(), 1, f.data(), static_cast<std::int64_t>(f.size()), false);
  int bad3 = 0;
  for (std::size_t i = 0; i < f.size(); ++i)
    bad3 += st[i].bits != fk::bf16(f[i]).bits ? 1 : 0;
  BOOST_TEST(bad3 == 0);
}

BOOST_AUTO_TEST_SUITE_END()
