// Runs the user-defined lab::median_merge through every host policy and through a registry extended with it,
// checks the results against a plain computation, and exits non-zero on any mismatch (it is a ctest test).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include <fusekit/merge.hpp>

#include "median_merge.hpp"

int main() {
  using namespace fusekit;
  constexpr std::int64_t rows = 301, cols = 257, n = rows * cols;
  const std::array<std::int64_t, 2> shape{rows, cols};
  std::vector<bf16> base(n);
  std::vector<std::vector<bf16>> models(5, std::vector<bf16>(n));
  for (std::int64_t e = 0; e < n; ++e) {
    base[e] = bf16(rng::uniform01(1, 0, e) - 0.5f);
    for (std::size_t m = 0; m < models.size(); ++m)
      models[m][e] = bf16(static_cast<float>(base[e]) + 0.1f * (rng::uniform01(2, m, e) - 0.5f));
  }
  std::vector<merge_input<matrix_view<const bf16>>> inputs;
  for (auto& m : models)
    inputs.push_back({host_view(static_cast<const bf16*>(m.data()), shape)});

  // expected: base + 0.5 * median of the five task vectors, computed plainly
  std::vector<float> want(n);
  for (std::int64_t e = 0; e < n; ++e) {
    float d[5];
    for (std::size_t m = 0; m < 5; ++m)
      d[m] = static_cast<float>(models[m][e]) - static_cast<float>(base[e]);
    std::sort(d, d + 5);
    want[e] = static_cast<float>(bf16(static_cast<float>(base[e]) + 0.5f * d[2]));
  }
  int failures = 0;
  auto check = [&](const char* what, const std::vector<bf16>& out) {
    std::int64_t bad = 0;
    for (std::int64_t e = 0; e < n; ++e)
      bad += static_cast<float>(out[e]) != want[e];
    std::printf("%-34s %s\n", what, bad == 0 ? "ok" : "MISMATCH");
    failures += bad != 0;
  };
  const lab::median_merge method{.scale = 0.5f};
  const merge_context ctx{"model.layers.0.mlp.up_proj.weight", 0};
  std::vector<bf16> out(n);
  auto ov = host_view(out.data(), shape);
  auto bv = host_view(static_cast<const bf16*>(base.data()), shape);

  merge(exec::seq, method, ov, bv, inputs, ctx);
  check("seq", out);
  merge(exec::par, method, ov, bv, inputs, ctx);
  check("par (default threads)", out);
  for (int t : {1, 2, 3}) {
    std::fill(out.begin(), out.end(), bf16(0.0f));
    merge(exec::parallel_policy{.threads = t}, method, ov, bv, inputs, ctx);
    char label[64];
    std::snprintf(label, sizeof label, "par (%d threads)", t);
    check(label, out);
  }
  // by name, next to the built-in methods
  using registry = merge_registry_with<lab::median_merge>;
  std::fill(out.begin(), out.end(), bf16(0.0f));
  registry::run(exec::par, "median", {{"scale", 0.5}}, ov, bv, std::span<const merge_input<matrix_view<const bf16>>>(inputs), ctx);
  check("registry \"median\"", out);
  std::printf("registry knows %zu methods (ties: %s)\n", registry::methods().size(),
              registry::find("ties") ? "yes" : "no");
  return failures == 0 ? 0 : 1;
}
