// The per-pair preference losses are FUSEKIT_HOST_DEVICE value types: evaluate them in a CUDA kernel
// and compare with the host evaluation (label cuda; exits 77 = skipped when no device is present).
#include <cmath>
#include <cstdio>
#include <vector>

#include <cuda_runtime.h>

#include <fusekit/loss/preference.hpp>

namespace fk = fusekit;

namespace {

constexpr int n_losses = 6;

template <class R> __host__ __device__ void eval_all(const fk::pair_logps<R>& p, R* out) {
  out[0] = fk::dpo{.beta = 0.1}(p).loss;
  out[1] = fk::ln_dpo{.beta = 10}(p).d_chosen;
  out[2] = fk::simpo{.beta = 2.0, .gamma = 1.0}(p).loss;
  out[3] = fk::orpo{}(p).loss;
  out[4] = fk::wrpo{.beta = 0.01, .alpha = 0.1}(p).d_source_chosen;
  out[5] = fk::discopop{}(p).loss;
}

__global__ void kernel(const fk::pair_logps<double>* in, double* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n)
    eval_all(in[i], out + i * n_losses);
}

} // namespace

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("no CUDA device: skipped\n");
    return 77;
  }
  std::vector<fk::pair_logps<double>> pairs(3);
  pairs[0] = {-12.5, -15.0, -13.0, -14.0, 5, 4, -300, -350};
  pairs[1] = {-80.0, -60.0, -70.0, -75.0, 40, 20, -120, -130};
  pairs[2] = {-200.0, -150.0, -190.0, -160.0, 100, 50, -30, -33};
  const int n = static_cast<int>(pairs.size());
  fk::pair_logps<double>* d_in = nullptr;
  double* d_out = nullptr;
  if (cudaMalloc(&d_in, n * sizeof(pairs[0])) != cudaSuccess ||
      cudaMalloc(&d_out, n * n_losses * sizeof(double)) != cudaSuccess)
    return 1;
  cudaMemcpy(d_in, pairs.data(), n * sizeof(pairs[0]), cudaMemcpyHostToDevice);
  kernel<<<1, 32>>>(d_in, d_out, n);
  std::vector<double> dev(n * n_losses);
  if (cudaMemcpy(dev.data(), d_out, dev.size() * sizeof(double), cudaMemcpyDeviceToHost) != cudaSuccess)
    return 1;
  cudaFree(d_in);
  cudaFree(d_out);
  int bad = 0;
  for (int i = 0; i < n; ++i) {
    double host[n_losses];
    eval_all(pairs[i], host);
    for (int k = 0; k < n_losses; ++k)
      if (!(std::abs(host[k] - dev[i * n_losses + k]) <= 1e-12 + 1e-12 * std::abs(host[k]))) {
        std::printf("pair %d loss %d: host %.17g device %.17g\n", i, k, host[k], dev[i * n_losses + k]);
        ++bad;
      }
  }
  std::printf("%s\n", bad ? "FAILED" : "device pair losses match the host");
  return bad ? 1 : 0;
}
