// An xtensor expression without a data interface (a + b) cannot be viewed: the error says to call xt::eval.
#include <xtensor/xtensor.hpp>

#include <fusekit/adapt/xtensor.hpp>

int main() {
  xt::xtensor<float, 2> a = xt::ones<float>({2, 2}), b = a;
#if defined(FUSEKIT_EXPECT_COMPILE_ERROR)
  auto v = fusekit::as_view(a + b);
#else
  xt::xtensor<float, 2> c = a + b;
  auto v = fusekit::as_view(c);
#endif
  return static_cast<int>(v.size()) - 4;
}
