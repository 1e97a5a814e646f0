// A minimal trainer built on fusekit's losses: a linear-softmax "language model" logits = X·W over
// Eigen, trained with (1) DPO against a frozen reference copy and (2) the FuseLLM/FuseChat fusion loss
// toward sparse top-k teacher targets. Each step runs the library's forward and backward through views
// of Eigen memory, then one SGD step on W; the program checks that both losses go down and exits
// non-zero otherwise (it is registered as a CTest).
//
// The same calls work for a libtorch or CUDA trainer: wrap its logits buffer with fusekit::host_view
// (or the CUDA specializations' device views) and hand the per-sequence gradient back to autograd;
// see docs/losses.md, "Using the losses from a trainer".
#include <Eigen/Dense>

#include <cstdio>
#include <random>
#include <vector>

#include <fusekit/adapt/eigen.hpp>
#include <fusekit/dist/sparse_target.hpp>
#include <fusekit/loss/fusion.hpp>
#include <fusekit/loss/logprob.hpp>
#include <fusekit/loss/preference_batch.hpp>

namespace fk = fusekit;
using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

namespace {

constexpr int H = 16; // feature size
constexpr int V = 50; // vocabulary
constexpr int B = 4;  // preference pairs

struct sequences {
  RowMat x;                          // [N, H] features of every position (prompt + completion)
  std::vector<std::int64_t> labels;  // [N] next-token ids, -100 on prompt positions
  std::vector<std::int64_t> offsets; // [2B+1] sequence boundaries: chosen 0..B-1, rejected B..2B-1
};

sequences make_pairs(std::mt19937& rng) {
  std::normal_distribution<float> nd(0.f, 1.f);
  std::uniform_int_distribution<int> tok(0, V - 1), len(3, 7);
  sequences s;
  std::vector<int> lens;
  s.offsets.push_back(0);
  for (int q = 0; q < 2 * B; ++q) {
    lens.push_back(2 + len(rng)); // 2 prompt positions + completion
    s.offsets.push_back(s.offsets.back() + lens.back());
  }
  s.x.resize(s.offsets.back(), H);
  for (int i = 0; i < s.x.rows(); ++i)
    for (int h = 0; h < H; ++h)
      s.x(i, h) = nd(rng);
  for (int q = 0; q < 2 * B; ++q)
    for (int t = 0; t < lens[q]; ++t)
      s.labels.push_back(t < 2 ? -100 : tok(rng));
  return s;
}

/// Sums of log-probs per sequence for weights W; `lse` receives per-row log-sum-exp for the backward.
std::vector<double> seq_logps(const RowMat& logits, const sequences& s, std::vector<float>* lse) {
  const auto N = static_cast<std::int64_t>(logits.rows());
  fk::logits_batch<float> batch{.logits = fk::as_view(logits),
                                .labels = fk::host_view(static_cast<const std::int64_t*>(s.labels.data()), N),
                                .seq_offsets =
                                    fk::host_view(static_cast<const std::int64_t*>(s.offsets.data()), 2 * B + 1)};
  std::vector<double> lp(2 * B);
  fk::token_logprob_outputs<float> tok;
  if (lse) {
    lse->resize(static_cast<std::size_t>(N));
    tok.lse = fk::host_view(lse->data(), N);
  }
  fk::sequence_logprobs(fk::exec::par, batch,
                        fk::sequence_logprob_outputs<double>{.sum = fk::host_view(lp.data(), 2 * B)}, tok);
  return lp;
}

/// One DPO step; returns the loss before the update.
double dpo_step(RowMat& W, const sequences& s, const std::vector<double>& ref, float lr) {
  RowMat logits = s.x * W; // [N, V]
  std::vector<float> lse;
  const auto lp = seq_logps(logits, s, &lse);
  std::vector<double> gc(B), gr(B);
  const fk::preference_batch<double> in{.policy_chosen = fk::host_view(lp.data(), B),
                                        .policy_rejected = fk::host_view(lp.data() + B, B),
                                        .ref_chosen = fk::host_view(ref.data(), B),
                                        .ref_rejected = fk::host_view(ref.data() + B, B)};
  const auto m = fk::preference_loss(fk::exec::seq, fk::dpo{.beta = 0.5}, in,
                                     fk::preference_outputs<double>{.d_policy_chosen = fk::host_view(gc.data(), B),
                                                                    .d_policy_rejected = fk::host_view(gr.data(), B)});
  // d loss / d logits, written in place over the logits (they are not needed any more)
  std::vector<double> gseq(gc);
  gseq.insert(gseq.end(), gr.begin(), gr.end());
  const auto N = static_cast<std::int64_t>(logits.rows());
  fk::logits_batch<float> batch{.logits = fk::as_view(logits),
                                .labels = fk::host_view(static_cast<const std::int64_t*>(s.labels.data()), N),
                                .seq_offsets =
                                    fk::host_view(static_cast<const std::int64_t*>(s.offsets.data()), 2 * B + 1)};
  fk::sequence_logprobs_backward(
      fk::exec::par, batch, fk::vector_view<const double>(fk::host_view(gseq.data(), 2 * B)), fk::as_view(logits),
      fk::logprob_backward_options<float>{.lse = fk::host_view(static_cast<const float*>(lse.data()), N)});
  W -= lr * (s.x.transpose() * logits); // dW = Xᵀ · dZ
  return m.loss;
}

/// One fusion-loss step toward sparse teacher targets; returns the loss before the update.
double fusion_step(RowMat& W, const RowMat& x, const std::vector<std::int64_t>& labels,
                   const fk::dist::sparse_target<float>& target, float lr) {
  RowMat logits = x * W;
  const auto N = static_cast<std::int64_t>(logits.rows());
  fk::logits_batch<float> batch{.logits = fk::as_view(logits),
                                .labels = fk::host_view(static_cast<const std::int64_t*>(labels.data()), N)};
  // value and gradient in one pass per row, gradient in place
  const auto r = fk::fusion_loss_and_grad(fk::exec::par, fk::fusion_loss{.lm_weight = 0.9}, batch, target.view(),
                                          fk::as_view(logits));
  W -= lr * (x.transpose() * logits);
  return r.loss;
}

} // namespace

int main() {
  std::mt19937 rng(42);
  std::normal_distribution<float> nd(0.f, 0.1f);
  RowMat W0(H, V);
  for (int h = 0; h < H; ++h)
    for (int v = 0; v < V; ++v)
      W0(h, v) = nd(rng);

  // ---- DPO -------------------------------------------------------------------------------------
  const sequences pairs = make_pairs(rng);
  const RowMat ref_logits = pairs.x * W0;
  const auto ref = seq_logps(ref_logits, pairs, nullptr); // frozen reference (policy at step 0)
  RowMat W = W0;
  std::vector<double> dpo_losses;
  for (int step = 0; step < 20; ++step)
    dpo_losses.push_back(dpo_step(W, pairs, ref, 0.05f));
  std::printf("DPO loss: step 0 %.6f (log 2 = 0.693147), step 19 %.6f\n", dpo_losses.front(), dpo_losses.back());

  // ---- fusion loss -----------------------------------------------------------------------------
  const int N = 40;
  RowMat x(N, H);
  for (int i = 0; i < N; ++i)
    for (int h = 0; h < H; ++h)
      x(i, h) = nd(rng) * 10.f;
  std::vector<std::int64_t> labels(N);
  fk::dist::sparse_target<float> target(V);
  std::uniform_int_distribution<int> tok(0, V - 1);
  for (int i = 0; i < N; ++i) {
    labels[i] = i % 9 == 0 ? -100 : tok(rng);
    const std::int32_t ids[] = {static_cast<std::int32_t>(labels[i] < 0 ? 0 : labels[i]),
                                static_cast<std::int32_t>(tok(rng)), static_cast<std::int32_t>(tok(rng))};
    const float ps[] = {0.6f, 0.3f, 0.1f};
    if (ids[1] == ids[0] || ids[2] == ids[0] || ids[2] == ids[1])
      target.push_row(std::span<const std::int32_t>(ids, 1), std::span<const float>(ps, 1)); // keep ids unique
    else
      target.push_row(ids, ps);
  }
  RowMat Wf = W0;
  std::vector<double> fusion_losses;
  for (int step = 0; step < 20; ++step)
    fusion_losses.push_back(fusion_step(Wf, x, labels, target, 0.02f));
  std::printf("fusion loss: step 0 %.6f, step 19 %.6f\n", fusion_losses.front(), fusion_losses.back());

  const bool ok = dpo_losses.back() < dpo_losses.front() - 1e-3 &&
                  fusion_losses.back() < fusion_losses.front() - 1e-3 &&
                  std::abs(dpo_losses.front() - 0.6931471805599453) < 1e-6;
  std::printf("%s\n", ok ? "OK: both losses decreased" : "FAILED: a loss did not decrease");
  return ok ? 0 : 1;
}
