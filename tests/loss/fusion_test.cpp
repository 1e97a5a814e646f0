// Fusion (distillation) loss: fusechat-algorithms.md T3.3/T3.4, losses.md §6.8, finite differences
// w.r.t. logits, FuseChat vs FuseLLM masks, empty target rows, bf16 logits, normalizers.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include <fusekit/dist/sparse_target.hpp>
#include <fusekit/loss/fusion.hpp>
#include <fusekit/types/bf16.hpp>

namespace fk = fusekit;
using fk::dist::sparse_target;

namespace {
void close(double a, double b, double atol, double rtol = 0) {
  BOOST_TEST(std::abs(a - b) <= atol + rtol * std::abs(b), a << " vs " << b);
}
template <class T>
fk::logits_batch<T> batch(const std::vector<T>& z, const std::vector<std::int64_t>& y, std::int64_t V) {
  const auto N = static_cast<std::int64_t>(y.size());
  return {.logits = fk::host_view(z.data(), std::array<std::int64_t, 2>{N, V}), .labels = fk::host_view(y.data(), N)};
}
} // namespace

BOOST_AUTO_TEST_SUITE(fusion)

BOOST_AUTO_TEST_CASE(t3_3_one_position) {
  std::vector<double> z{1, 0, -1};
  std::vector<std::int64_t> y{0};
  sparse_target<float> tg(3);
  const std::int32_t ids[] = {0, 1, 2};
  const float ps[] = {0.7f, 0.2f, 0.1f};
  tg.push_row(ids, ps);
  std::vector<double> g(3);
  const auto r = fk::fusion_loss_and_grad(fk::exec::seq, fk::fusion_loss{.lm_weight = 0.9}, batch(z, y, 3), tg.view(),
                                          fk::host_view(g.data(), std::array<std::int64_t, 2>{1, 3}));
  close(r.lm_loss, 0.407606, 5e-7);
  close(r.distill_loss, 0.807606, 5e-7);
  close(r.loss, 0.447606, 5e-7);
  close(g[0], -0.304759, 5e-7);
  close(g[1], 0.224728, 5e-7);
  close(g[2], 0.080031, 5e-7);
  BOOST_TEST(r.gold_rows == 1);
  BOOST_TEST(r.distilled_rows == 1);
}

BOOST_AUTO_TEST_CASE(t3_4_two_positions) {
  std::vector<double> z{1, 0, -1, 0, 0, 0};
  std::vector<std::int64_t> y{0, 2};
  sparse_target<float> tg(3);
  const std::int32_t ids0[] = {0, 1, 2}, ids1[] = {2};
  const float ps0[] = {0.7f, 0.2f, 0.1f}, ps1[] = {1.0f};
  tg.push_row(ids0, ps0);
  tg.push_row(ids1, ps1);
  const auto r = fk::fusion_loss_and_grad(fk::exec::seq, fk::fusion_loss{}, batch(z, y, 3), tg.view());
  close(r.lm_loss, 0.753109, 5e-7);
  close(r.distill_loss, 0.953109, 5e-7);
  close(r.loss, 0.773109, 5e-7);
}

BOOST_AUTO_TEST_CASE(topk_kd_6_8) {
  // student z, teacher top-3 at (0,5,1) with q from teacher logits (4,3,1)/T, T = 2
  std::vector<double> z{3.0, 1.0, 0.5, -1.0, 0.0, 2.0};
  std::vector<std::int64_t> y{-100}; // pure distillation row: FuseLLM mask (attention mask 1)
  double t[] = {4.0, 3.0, 1.0}, q[3], s = 0;
  for (int i = 0; i < 3; ++i)
    s += std::exp(t[i] / 2);
  for (int i = 0; i < 3; ++i)
    q[i] = std::exp(t[i] / 2) / s;
  close(q[0], 0.5465493873, 1e-9);
  sparse_target<double> tg(6);
  const std::int32_t ids[] = {0, 5, 1};
  tg.push_row(ids, q);
  std::vector<std::uint8_t> attn{1};
  std::vector<double> g(6);
  const fk::fusion_options<std::uint8_t> fusellm{.distill_mask =
                                                     fk::host_view(static_cast<const std::uint8_t*>(attn.data()), 1)};
  auto r = fk::fusion_loss_and_grad(fk::exec::seq, fk::fusion_loss{.lm_weight = 0.0}, batch(z, y, 6), tg.view(),
                                    fk::host_view(g.data(), std::array<std::int64_t, 2>{1, 6}), fusellm);
  close(r.distill_loss, 1.078237509, 1e-9);
  BOOST_TEST(r.gold_rows == 0);
  const double e[] = {0.05826404574, -0.04009905505, 0.04964610982, 0.01107754443, 0.03011188774, -0.1090005327};
  for (int j = 0; j < 6; ++j)
    close(g[j], e[j], 1e-10);
  r = fk::fusion_loss_and_grad(fk::exec::seq, fk::fusion_loss{.lm_weight = 0.0, .kind = fk::distill_kind::kl},
                               batch(z, y, 6), tg.view(), fk::matrix_view<double>{}, fusellm);
  close(r.distill_loss, 0.1254299447, 1e-9);
  // student at tau = 2 with tau^2 scaling (Liger/axolotl): KL 0.2978313473, tau^2 KL 1.191325389,
  // gradient tau (p_tau - q)
  r = fk::fusion_loss_and_grad(
      fk::exec::seq, fk::fusion_loss{.lm_weight = 0.0, .kind = fk::distill_kind::kl, .temperature = 2.0},
      batch(z, y, 6), tg.view(), fk::host_view(g.data(), std::array<std::int64_t, 2>{1, 6}), fusellm);
  close(r.distill_loss, 1.191325389, 1e-9);
  const double et[] = {-0.3295594104, 0.03698712996, 0.2187576904, 0.1033338161, 0.1703686606, -0.1998878866};
  for (int j = 0; j < 6; ++j)
    close(g[j], et[j], 1e-9);
  r = fk::fusion_loss_and_grad(
      fk::exec::seq,
      fk::fusion_loss{.lm_weight = 0.0, .kind = fk::distill_kind::kl, .temperature = 2.0, .scale_by_t2 = false},
      batch(z, y, 6), tg.view(), fk::matrix_view<double>{}, fusellm);
  close(r.distill_loss, 0.2978313473, 1e-9);
  // FuseChat mask (label mask): the row's label is ignored, so it is not distilled either
  r = fk::fusion_loss_and_grad(fk::exec::seq, fk::fusion_loss{.lm_weight = 0.0}, batch(z, y, 6), tg.view());
  BOOST_TEST(r.distilled_rows == 0);
  BOOST_TEST(r.loss == 0.0);
}

BOOST_AUTO_TEST_CASE(finite_differences_with_masks_and_empty_rows) {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> nd(0, 2);
  const std::int64_t N = 9, V = 29;
  std::vector<double> z(N * V);
  for (auto& x : z)
    x = nd(rng);
  std::vector<std::int64_t> y(N);
  for (auto& v : y)
    v = static_cast<std::int64_t>(rng() % V);
  y[2] = -100;
  y[7] = -100;
  sparse_target<float> tg(V);
  for (std::int64_t t = 0; t < N; ++t) {
    if (t == 4) {
      tg.push_empty_row(); // no target: weight 0 for the distillation term
      continue;
    }
    std::vector<std::int32_t> ids;
    std::vector<float> ps;
    double s = 0;
    for (int k = 0; k < 5; ++k) {
      ids.push_back(static_cast<std::int32_t>((t * 5 + k * 3) % V));
      ps.push_back(static_cast<float>(std::exp(nd(rng))));
      s += ps.back();
    }
    for (auto& p : ps)
      p = static_cast<float>(p / s);
    tg.push_row(ids, ps);
  }
  std::vector<std::uint8_t> attn(N, 1);
  attn[5] = 0;
  for (auto kind : {fk::distill_kind::ce, fk::distill_kind::kl}) {
    for (int fusellm = 0; fusellm < 2; ++fusellm) {
      const fk::fusion_loss loss{.lm_weight = 0.6, .kind = kind, .temperature = fusellm ? 1.7 : 1.0};
      fk::fusion_options<std::uint8_t> opt;
      if (fusellm)
        opt.distill_mask = fk::host_view(static_cast<const std::uint8_t*>(attn.data()), N);
      std::vector<double> g(N * V);
      const auto r = fk::fusion_loss_and_grad(fk::exec::par, loss, batch(z, y, V), tg.view(),
                                              fk::host_view(g.data(), std::array<std::int64_t, 2>{N, V}), opt);
      BOOST_TEST(r.gold_rows == 7);
      BOOST_TEST(r.distilled_rows == (fusellm ? 7 : 6)); // FuseLLM: all but the empty row 4 and attn[5]=0
      for (std::int64_t i = 0; i < N * V; ++i) {
        auto zp = z, zm = z;
        const double h = 1e-5;
        zp[i] += h;
        zm[i] -= h;
        const double fd =
            (fk::fusion_loss_and_grad(fk::exec::seq, loss, batch(zp, y, V), tg.view(), fk::matrix_view<double>{}, opt)
                 .loss -
             fk::fusion_loss_and_grad(fk::exec::seq, loss, batch(zm, y, V), tg.view(), fk::matrix_view<double>{}, opt)
                 .loss) /
            (2 * h);
        close(g[i], fd, 1e-9, 1e-6);
      }
      // reference value computed densely
      double lm = 0, kd = 0;
      int ng = 0, nd2 = 0;
      for (std::int64_t t = 0; t < N; ++t) {
        double m = -1e300, s = 0;
        for (std::int64_t j = 0; j < V; ++j)
          m = std::max(m, z[t * V + j]);
        for (std::int64_t j = 0; j < V; ++j)
          s += std::exp(z[t * V + j] - m);
        const double lse = m + std::log(s);
        if (y[t] != -100) {
          lm += lse - z[t * V + y[t]];
          ++ng;
        }
        const bool dist_row = t != 4 && (fusellm ? attn[t] != 0 : y[t] != -100);
        if (dist_row) {
          const double tau = loss.temperature; // student temperature with tau^2 scaling
          double st = 0;
          for (std::int64_t j = 0; j < V; ++j)
            st += std::exp((z[t * V + j] - m) / tau);
          const double lse_t = m / tau + std::log(st);
          for (auto k = tg.offsets[t]; k < tg.offsets[t + 1]; ++k) {
            const double q = tg.probs[k];
            kd += tau * tau *
                  (q * (lse_t - z[t * V + tg.ids[k]] / tau) + (kind == fk::distill_kind::kl ? q * std::log(q) : 0.0));
          }
          ++nd2;
        }
      }
      close(r.loss, 0.6 * lm / ng + 0.4 * kd / nd2, 1e-12, 1e-12);
    }
  }
}

BOOST_AUTO_TEST_CASE(bf16_logits_and_cross_entropy) {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> nd(0, 3);
  const std::int64_t N = 16, V = 3001;
  std::vector<double> z(N * V);
  for (auto& x : z)
    x = nd(rng);
  std::vector<fk::bf16> zb(z.size());
  std::vector<double> zq(z.size());
  for (std::size_t i = 0; i < z.size(); ++i) {
    zb[i] = fk::bf16(static_cast<float>(z[i]));
    zq[i] = static_cast<float>(zb[i]);
  }
  std::vector<std::int64_t> y(N);
  for (auto& v : y)
    v = static_cast<std::int64_t>(rng() % V);
  sparse_target<float> tg(V);
  for (std::int64_t t = 0; t < N; ++t) {
    const std::int32_t ids[] = {static_cast<std::int32_t>(t), static_cast<std::int32_t>(V - 1 - t)};
    const float ps[] = {0.75f, 0.25f};
    tg.push_row(ids, ps);
  }
  std::vector<fk::bf16> gb(N * V);
  std::vector<double> gq(N * V);
  const auto rb = fk::fusion_loss_and_grad(fk::exec::par, fk::fusion_loss{}, batch(zb, y, V), tg.view(),
                                           fk::host_view(gb.data(), std::array<std::int64_t, 2>{N, V}));
  const auto rq = fk::fusion_loss_and_grad(fk::exec::seq, fk::fusion_loss{}, batch(zq, y, V), tg.view(),
                                           fk::host_view(gq.data(), std::array<std::int64_t, 2>{N, V}));
  // Liger FLCE bf16 "mean" tolerance: atol 5e-3, rtol 5e-2 (we are far inside it)
  close(rb.loss, rq.loss, 5e-3, 5e-2);
  close(rb.loss, rq.loss, 1e-5, 1e-6); // fp32 compute of the same stored values
  for (std::size_t i = 0; i < gq.size(); ++i)
    BOOST_TEST(std::abs(static_cast<float>(gb[i]) - gq[i]) <= 1e-8 + 8e-3 * std::abs(gq[i]));
  // bf16 in place (the logits buffer becomes the gradient) equals the separate-buffer result bit for bit
  auto zi = zb;
  const auto ri = fk::fusion_loss_and_grad(
      fk::exec::par, fk::fusion_loss{},
      fk::logits_batch<fk::bf16>{
          .logits = fk::host_view(static_cast<const fk::bf16*>(zi.data()), std::array<std::int64_t, 2>{N, V}),
          .labels = fk::host_view(static_cast<const std::int64_t*>(y.data()), N)},
      tg.view(), fk::host_view(zi.data(), std::array<std::int64_t, 2>{N, V}));
  BOOST_TEST(ri.loss == rb.loss);
  int diff = 0;
  for (std::size_t i = 0; i < zi.size(); ++i)
    diff += same_bits(zi[i], gb[i]) ? 0 : 1;
  BOOST_TEST(diff == 0);
  // cross_entropy_and_grad == fusion loss with lm_weight 1
  std::vector<double> g1(N * V), g2(N * V);
  const auto ce = fk::cross_entropy_and_grad(fk::exec::seq, batch(zq, y, V),
                                             fk::host_view(g1.data(), std::array<std::int64_t, 2>{N, V}));
  const auto f1 = fk::fusion_loss_and_grad(fk::exec::seq, fk::fusion_loss{.lm_weight = 1.0}, batch(zq, y, V), tg.view(),
                                           fk::host_view(g2.data(), std::array<std::int64_t, 2>{N, V}));
  close(ce.loss, f1.loss, 1e-15, 1e-14);
  for (std::size_t i = 0; i < g1.size(); ++i)
    close(g1[i], g2[i], 1e-15, 1e-13);
  // explicit normalizer: loss scales accordingly
  const auto ce2 = fk::cross_entropy_and_grad(fk::exec::seq, batch(zq, y, V), fk::matrix_view<double>{}, 4.0 * N);
  close(ce2.loss, ce.loss / 4, 1e-15, 1e-13);
}

BOOST_AUTO_TEST_CASE(float_fused_path_matches_float64_incl_in_place) {
  // float logits with a float gradient take the one-exp-per-element kernel; check it against the
  // double path on the same values, separate buffer and in place, strided logits too (generic path)
  std::mt19937_64 rng(11);
  std::normal_distribution<double> nd(0, 4);
  const std::int64_t N = 7, V = 2500;
  std::vector<float> zf(N * V);
  for (auto& x : zf)
    x = static_cast<float>(nd(rng));
  zf[3 * V + 17] = 1e4f; // huge logit in a later block than the row's first max
  std::vector<double> zd(zf.begin(), zf.end());
  std::vector<std::int64_t> y{5, -100, 2499, 17, 1024, 1023, 0};
  sparse_target<float> tg(V);
  for (std::int64_t t = 0; t < N; ++t) {
    const std::int32_t ids[] = {static_cast<std::int32_t>((t * 997) % V), static_cast<std::int32_t>((t * 131 + 7) % V),
                                2048};
    const float ps[] = {0.5f, 0.3f, 0.2f};
    if (t == 2)
      tg.push_empty_row();
    else
      tg.push_row(ids, ps);
  }
  const fk::fusion_loss loss{.lm_weight = 0.7, .kind = fk::distill_kind::kl};
  std::vector<double> gd(N * V);
  const auto rd = fk::fusion_loss_and_grad(fk::exec::seq, loss, batch(zd, y, V), tg.view(),
                                           fk::host_view(gd.data(), std::array<std::int64_t, 2>{N, V}));
  std::vector<float> gf(N * V);
  const auto rf = fk::fusion_loss_and_grad(fk::exec::par, loss, batch(zf, y, V), tg.view(),
                                           fk::host_view(gf.data(), std::array<std::int64_t, 2>{N, V}));
  close(rf.loss, rd.loss, 1e-5, 1e-6);
  for (std::size_t i = 0; i < gd.size(); ++i)
    BOOST_TEST(std::abs(gf[i] - gd[i]) <= 1e-8 + 1e-5 * std::abs(gd[i]),
               "grad[" << i << "] " << gf[i] << " vs " << gd[i]);
  auto zi = zf; // in place
  const auto ri = fk::fusion_loss_and_grad(
      fk::exec::seq, loss,
      fk::logits_batch<float>{
          .logits = fk::host_view(static_cast<const float*>(zi.data()), std::array<std::int64_t, 2>{N, V}),
          .labels = fk::host_view(static_cast<const std::int64_t*>(y.data()), N)},
      tg.view(), fk::host_view(zi.data(), std::array<std::int64_t, 2>{N, V}));
  BOOST_TEST(ri.loss == rf.loss);
  for (std::size_t i = 0; i < gf.size(); ++i)
    BOOST_TEST(zi[i] == gf[i]);
  // accumulate uses the two-pass path: adding into a copy of the gradient doubles it
  auto acc = gf;
  fk::fusion_loss_and_grad(fk::exec::seq, loss, batch(zf, y, V), tg.view(),
                           fk::host_view(acc.data(), std::array<std::int64_t, 2>{N, V}),
                           fk::fusion_options<std::uint8_t>{.accumulate = true});
  for (std::size_t i = 0; i < gf.size(); ++i)
    BOOST_TEST(std::abs(acc[i] - 2 * gf[i]) <= 1e-7 + 1e-5 * std::abs(gf[i]));
}

BOOST_AUTO_TEST_CASE(errors) {
  std::vector<double> z(6, 0.0);
  std::vector<std::int64_t> y{0, 1};
  sparse_target<float> tg(3);
  const std::int32_t ids[] = {3};
  const float ps[] = {1.f};
  tg.push_row(ids, ps);
  tg.push_empty_row();
  BOOST_CHECK_THROW(fk::fusion_loss_and_grad(fk::exec::seq, fk::fusion_loss{}, batch(z, y, 3), tg.view()), fk::error);
  sparse_target<float> short_tg(3);
  short_tg.push_empty_row();
  BOOST_CHECK_THROW(fk::fusion_loss_and_grad(fk::exec::seq, fk::fusion_loss{}, batch(z, y, 3), short_tg.view()),
                    fk::error);
  BOOST_CHECK_THROW(fk::fusion_loss_and_grad(fk::exec::seq, fk::fusion_loss{.lm_weight = 1.5}, batch(z, y, 3),
                                             fk::dist::sparse_target_view<float>{}),
                    fk::error);
  // all rows masked: zero loss, zero gradient, no NaN
  std::vector<std::int64_t> ym{-100, -100};
  std::vector<double> g(6, 5.0);
  const auto r = fk::cross_entropy_and_grad(fk::exec::seq, batch(z, ym, 3),
                                            fk::host_view(g.data(), std::array<std::int64_t, 2>{2, 3}));
  BOOST_TEST(r.loss == 0.0);
  for (double x : g)
    BOOST_TEST(x == 0.0);
}

BOOST_AUTO_TEST_SUITE_END()
