// Downstream program: includes the umbrella header, merges two tensors with par (OpenMP), checks the result.
#include <cstdio>
#include <vector>

#include <fusekit/fusekit.hpp>

int main() {
  static_assert(fusekit::exec::parallel_policy::is_parallel, "fusekit::openmp must turn OpenMP on");
  const std::vector<float> a{1, 2, 3, 4, 5}, b{3, 2, 1, 0, -1};
  std::vector<fusekit::bf16> out(a.size());
  const std::vector<fusekit::merge_input<fusekit::vector_view<const float>>> in{
      {.tensor = fusekit::as_view(a), .weight = 1.0f}, {.tensor = fusekit::as_view(b), .weight = 3.0f}};
  fusekit::merge(fusekit::exec::par, fusekit::linear{}, out, fusekit::no_base, in);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const float expect = (a[i] + 3.0f * b[i]) / 4.0f;
    if (static_cast<float>(out[i]) != expect) {
      std::printf("consumer: out[%zu] = %g, expected %g\n", i, static_cast<double>(out[i]),
                  static_cast<double>(expect));
      return 1;
    }
  }
  std::printf("consumer: linear merge of 2 tensors OK on %d OpenMP thread(s)\n", fusekit::exec::par.concurrency());
  return 0;
}
