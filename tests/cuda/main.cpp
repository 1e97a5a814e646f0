// Boost.Test main of the GPU tests: exits with 77 (CTest SKIP_RETURN_CODE) when no CUDA device is usable,
// so a machine without a GPU reports the tests as skipped, not failed.
#define BOOST_TEST_MODULE cuda
#define BOOST_TEST_NO_MAIN
#include <boost/test/unit_test.hpp>

#include <cstdio>

#include <cuda_runtime_api.h>

int main(int argc, char* argv[]) {
  int count = 0;
  const cudaError_t st = cudaGetDeviceCount(&count);
  if (st != cudaSuccess || count == 0) {
    std::printf("fusekit: no usable CUDA device (%s); the GPU tests are skipped\n",
                st != cudaSuccess ? cudaGetErrorName(st) : "0 devices");
    return 77;
  }
  return boost::unit_test::unit_test_main(&init_unit_test, argc, argv);
}
