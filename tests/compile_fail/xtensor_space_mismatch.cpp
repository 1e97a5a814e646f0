// xtensor views are host memory: a policy that runs in device memory must reject them at compile time.
#include <vector>

#include <xtensor/xtensor.hpp>

#include <fake_device_policy.hpp>
#include <fusekit/adapt/xtensor.hpp>
#include <fusekit/merge/task_arithmetic.hpp>

int main() {
  xt::xtensor<float, 2> base = xt::zeros<float>({3, 2}), a = xt::ones<float>({3, 2}), out = base;
  std::vector<fusekit::merge_input<fusekit::view_t<xt::xtensor<float, 2>&>>> in{{.tensor = fusekit::as_view(a)}};
#if defined(FUSEKIT_EXPECT_COMPILE_ERROR)
  fusekit::merge(fusekit_test::fake_device_policy{}, fusekit::task_arithmetic{}, out, base, in);
#else
  fusekit::merge(fusekit::exec::par, fusekit::task_arithmetic{}, out, base, in);
#endif
  return 0;
}
