// xt::xarray has a run-time rank: as_view refuses it and points to as_rank<R>.
#include <xtensor/xarray.hpp>

#include <fusekit/adapt/xtensor.hpp>

int main() {
  xt::xarray<double> a = xt::ones<double>({2, 3});
#if defined(FUSEKIT_EXPECT_COMPILE_ERROR)
  auto v = fusekit::as_view(a);
#else
  auto v = fusekit::as_rank<2>(a);
#endif
  return static_cast<int>(v.size()) - 6;
}
