// Quick start: merge a base tensor and three "fine-tuned" variants with linear and task arithmetic,
// on bf16 storage, with the sequential and the OpenMP policy, and print a short report.
// The tensors are made here deterministically (a Llama-like 4096x1024 projection) so the program
// needs no files.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include <fusekit/adapt/span.hpp>
#include <fusekit/merge/linear.hpp>
#include <fusekit/merge/task_arithmetic.hpp>
#include <fusekit/rng/philox.hpp>

int main() {
  using namespace fusekit;
  constexpr std::int64_t rows = 4096, cols = 1024, n = rows * cols;
  const auto shape = std::array<std::int64_t, 2>{rows, cols};

  // Base weights ~ U(-0.05, 0.05); each fine-tune adds a sparse delta on its own 10% of the entries.
  std::vector<bf16> base(n);
  for (std::int64_t i = 0; i < n; ++i)
    base[i] = bf16(0.1f * (rng::uniform01(1, 0, i) - 0.5f));
  std::vector<std::vector<bf16>> tuned(3, base);
  for (int m = 0; m < 3; ++m)
    for (std::int64_t i = 0; i < n; ++i)
      if (rng::bernoulli(2, m, i, 0.1f))
        tuned[m][i] = bf16(static_cast<float>(base[i]) + 0.02f * (rng::uniform01(3, m, i) - 0.5f));

  std::vector<merge_input<strided_view<const bf16, 2>>> inputs;
  const float weights[] = {0.5f, 0.3f, 0.2f};
  for (int m = 0; m < 3; ++m)
    inputs.push_back({.tensor = host_view(static_cast<const bf16*>(tuned[m].data()), shape), .weight = weights[m]});
  const auto base_view = host_view(static_cast<const bf16*>(base.data()), shape);

  std::vector<bf16> out(n);
  auto report = [&](const char* what, auto&& run) {
    const auto t0 = std::chrono::steady_clock::now();
    run();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double diff = 0, norm = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      const double d = static_cast<double>(static_cast<float>(out[i])) - static_cast<float>(base[i]);
      diff += d * d;
      norm += static_cast<double>(static_cast<float>(out[i])) * static_cast<float>(out[i]);
    }
    std::printf("  %-40s %8.2f ms  %6.2f GB/s   ||out|| = %.4f   ||out - base|| = %.6f\n", what, s * 1e3,
                static_cast<double>((inputs.size() + 2) * n * sizeof(bf16)) / s / 1e9, std::sqrt(norm),
                std::sqrt(diff));
  };

  std::printf("fusekit quick start: merging 3 bf16 fine-tunes of a %lldx%lld tensor (%d OpenMP threads available)\n",
              static_cast<long long>(rows), static_cast<long long>(cols), exec::par.concurrency());
  report("linear (weights .5/.3/.2), seq", [&] { merge(exec::seq, linear{}, host_view(out.data(), shape), no_base, inputs); });
  report("linear (weights .5/.3/.2), par", [&] { merge(exec::par, linear{}, host_view(out.data(), shape), no_base, inputs); });
  report("task_arithmetic (lambda 1), par",
         [&] { merge(exec::par, task_arithmetic{}, host_view(out.data(), shape), base_view, inputs); });
  report("task_arithmetic (lambda 2, normalize), par", [&] {
    merge(exec::par, task_arithmetic{.lambda = 2.0f, .normalize = true}, host_view(out.data(), shape), base_view, inputs);
  });

  // Sanity check a few elements against the formula, so the example fails loudly if something breaks.
  merge(exec::par, task_arithmetic{}, host_view(out.data(), shape), base_view, inputs);
  for (std::int64_t i : {std::int64_t{0}, n / 3, n - 1}) {
    float want = static_cast<float>(base[i]);
    for (int m = 0; m < 3; ++m)
      want += weights[m] * (static_cast<float>(tuned[m][i]) - static_cast<float>(base[i]));
    if (std::abs(static_cast<float>(out[i]) - want) > 1e-3f) {
      std::printf("MISMATCH at %lld\n", static_cast<long long>(i));
      return 1;
    }
  }
  std::printf("ok\n");
  return 0;
}
