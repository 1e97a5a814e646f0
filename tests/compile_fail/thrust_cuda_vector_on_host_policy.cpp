// With the CUDA device system (Thrust's default), a thrust::device_vector is device memory: merging it with a
// host policy (exec::par) must fail to compile. Only parsed (no nvcc needed).
#include <vector>

#include <thrust/device_vector.h>

#include <fusekit/adapt/thrust.hpp>
#include <fusekit/merge/linear.hpp>

static_assert(THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA);
static_assert(std::is_same_v<fusekit::view_t<thrust::device_vector<float>&>::space_type, fusekit::device_space>);
static_assert(std::is_same_v<fusekit::view_t<thrust::host_vector<float>&>::space_type, fusekit::host_space>);

void run(thrust::device_vector<float>& d, thrust::host_vector<float>& h, thrust::host_vector<float>& out) {
#if defined(FUSEKIT_EXPECT_COMPILE_ERROR)
  std::vector<fusekit::merge_input<fusekit::view_t<thrust::device_vector<float>&>>> in{{.tensor = fusekit::as_view(d)}};
#else
  (void)d;
  std::vector<fusekit::merge_input<fusekit::view_t<thrust::host_vector<float>&>>> in{{.tensor = fusekit::as_view(h)}};
#endif
  fusekit::merge(fusekit::exec::par, fusekit::linear{}, out, fusekit::no_base, in);
}

int main() {}
