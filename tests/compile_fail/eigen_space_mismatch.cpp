// Eigen views are host memory: a policy that runs in device memory must reject them at compile time.
#include <vector>

#include <Eigen/Core>

#include <fake_device_policy.hpp>
#include <fusekit/adapt/eigen.hpp>
#include <fusekit/exec/policy.hpp>
#include <fusekit/merge/linear.hpp>

int main() {
  Eigen::MatrixXf a = Eigen::MatrixXf::Ones(3, 2), out(3, 2);
  std::vector<fusekit::merge_input<fusekit::view_t<Eigen::MatrixXf&>>> in{{.tensor = fusekit::as_view(a)}};
#if defined(FUSEKIT_EXPECT_COMPILE_ERROR)
  fusekit::merge(fusekit_test::fake_device_policy{}, fusekit::linear{}, out, fusekit::no_base, in);
#else
  fusekit::merge(fusekit::exec::seq, fusekit::linear{}, out, fusekit::no_base, in);
#endif
  return 0;
}
