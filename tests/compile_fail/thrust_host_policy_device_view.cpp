// A thrust_policy of a host system (here thrust::host) runs in host memory: device views are rejected.
#include <array>
#include <vector>

#include <thrust/execution_policy.h>

#include <fusekit/adapt/thrust.hpp>
#include <fusekit/merge/linear.hpp>

int main() {
  std::array<float, 4> a{1, 2, 3, 4}, out{};
#if defined(FUSEKIT_EXPECT_COMPILE_ERROR)
  auto view = [](float* p) { return fusekit::device_view(p, 4); };
#else
  auto view = [](float* p) { return fusekit::host_view(p, 4); };
#endif
  std::vector<fusekit::merge_input<decltype(view(a.data()))>> in{{.tensor = view(a.data())}};
  fusekit::merge(fusekit::exec::thrust_policy{thrust::host}, fusekit::linear{}, view(out.data()), fusekit::no_base, in);
  return 0;
}
