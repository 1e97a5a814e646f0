// An Eigen expression without storage (a + b) cannot be viewed: the error says to call .eval().
#include <Eigen/Core>

#include <fusekit/adapt/eigen.hpp>

int main() {
  Eigen::MatrixXf a = Eigen::MatrixXf::Ones(2, 2), b = a;
#if defined(FUSEKIT_EXPECT_COMPILE_ERROR)
  auto v = fusekit::as_view(a + b);
#else
  auto v = fusekit::as_view((a + b).eval());
#endif
  return static_cast<int>(v.size()) - 4;
}
