/// @file
/// @brief fusekit::exec::cuda_policy: runs fusekit's primitives as CUDA kernels on a stream.
///
/// Primitives (members, reached through the free functions of <fusekit/exec/primitives.hpp>):
///  - `for_each_n(n, f)`: a grid-stride kernel calling `f(i)`; asynchronous on the stream.
///  - `for_each_block(n, block, f)`: one device thread per block calls `f(begin, end)`; asynchronous.
///  - `transform_reduce(n, init, reduce, transform)`: deterministic two-level reduction (below); synchronizes.
///  - `segmented_transform_reduce(nseg, bounds, init, reduce, transform, out)`: one device thread per
///    segment, left to right (the host association exactly); asynchronous.
/// Functors run on the device: write them as trivially copyable structs with FUSEKIT_HOST_DEVICE call
/// operators (no extended lambdas needed, none required from consumers). fusekit's generic algorithms use
/// host lambdas and do not run on this policy; methods provide CUDA overloads instead (tag_invoke, see
/// <fusekit/cuda/merge/weighted_sum.cuh>).
///
/// Determinism of transform_reduce: [0, n) is cut into the same chunks as on the host (exec::reduction_chunk,
/// a function of n only). One block of 256 threads reduces a chunk: thread t folds elements t, t+256, ...
/// left to right, then cub::BlockReduce combines the 256 partial values in a fixed tree; the chunk results
/// are combined in order on the host, starting from `init`. The result therefore depends on n only: it is
/// identical from run to run and on every GPU, but it is associated differently from seq/par (which fold each
/// chunk left to right), so floating-point sums may differ from the host in the last bits.
#if !defined(__CUDACC__)
#error "fusekit/cuda/policy.cuh needs a CUDA compiler (nvcc); host-only code includes <fusekit/fusekit.hpp>"
#endif
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include <cub/block/block_reduce.cuh>
#include <cuda_runtime_api.h>

#include <fusekit/core/config.hpp>
#include <fusekit/cuda/error.cuh>
#include <fusekit/exec/policy.hpp>
#include <fusekit/exec/primitives.hpp>
#include <fusekit/view/memory_space.hpp>

namespace fusekit::detail {

/// Threads per block of fusekit's kernels.
inline constexpr int cuda_block_threads = 256;

/// Grid size for a grid-stride loop over n items (enough blocks to fill any current GPU, capped).
[[nodiscard]] inline unsigned cuda_grid_for(std::int64_t n) noexcept {
  const std::int64_t blocks = (n + cuda_block_threads - 1) / cuda_block_threads;
  return static_cast<unsigned>(std::clamp<std::int64_t>(blocks, 1, 65536));
}

template <class F> __global__ void cuda_for_each_n_kernel(std::int64_t n, F f) {
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step)
    f(i);
}

template <class F>
__global__ void cuda_for_each_block_kernel(std::int64_t n, std::int64_t block, std::int64_t nblocks, F f) {
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t b = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; b < nblocks; b += step) {
    const std::int64_t e = (b + 1) * block;
    f(b * block, e < n ? e : n);
  }
}

/// One block per chunk of `chunk` elements; writes the chunk's reduction to partial[blockIdx.x].
template <class T, class Reduce, class Transform>
__global__ void __launch_bounds__(cuda_block_threads)
    cuda_chunk_reduce_kernel(std::int64_t n, std::int64_t chunk, Reduce reduce, Transform transform, T* partial) {
  using block_reduce = cub::BlockReduce<T, cuda_block_threads>;
  __shared__ typename block_reduce::TempStorage tmp;
  const std::int64_t b = static_cast<std::int64_t>(blockIdx.x) * chunk;
  const std::int64_t e = b + chunk < n ? b + chunk : n;
  const std::int64_t len = e - b;
  const int t = static_cast<int>(threadIdx.x);
  T acc{};
  if (t < len) {
    acc = static_cast<T>(transform(b + t));
    for (std::int64_t i = b + t + cuda_block_threads; i < e; i += cuda_block_threads)
      acc = static_cast<T>(reduce(acc, static_cast<T>(transform(i))));
  }
  const int valid = len < cuda_block_threads ? static_cast<int>(len) : cuda_block_threads;
  const T r = block_reduce(tmp).Reduce(acc, reduce, valid);
  if (t == 0)
    partial[blockIdx.x] = r;
}

template <class T, class Bounds, class Reduce, class Transform, class Out>
__global__ void cuda_segmented_reduce_kernel(std::int64_t nseg, Bounds bounds, T init, Reduce reduce,
                                             Transform transform, Out out) {
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t s = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; s < nseg; s += step) {
    const auto be = bounds(s);
    T acc = init;
    for (std::int64_t i = be.first; i < be.second; ++i)
      acc = static_cast<T>(reduce(acc, static_cast<T>(transform(s, i))));
    out(s, acc);
  }
}

} // namespace fusekit::detail

namespace fusekit::exec {

/// Runs fusekit's primitives and CUDA algorithm overloads on a CUDA stream (see the file comment).
/// `cuda_policy{}` uses the legacy default stream; `cuda_policy{.stream = s}` a stream of yours. Work is
/// enqueued asynchronously unless a call says otherwise; call synchronize() (or synchronize the stream)
/// before reading results on the host.
struct cuda_policy {
  using space_type = device_space;
  /// Always true: kernels run many threads.
  static constexpr bool is_parallel = true;

  /// The stream work is enqueued on (nullptr: the default stream).
  cudaStream_t stream = nullptr;

  /// The current device's number of streaming multiprocessors (1 when it cannot be queried).
  [[nodiscard]] int concurrency() const noexcept {
    int dev = 0, sms = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) {
      (void)cudaGetLastError();
      return 1;
    }
    return std::max(1, sms);
  }

  /// Blocks the host until the stream's work is done.
  /// @throws fusekit::cuda_error if the stream (or an earlier kernel on it) failed.
  void synchronize() const { fusekit::detail::cuda_check(cudaStreamSynchronize(stream), "cuda_policy::synchronize"); }

  /// Calls f(i) on the device for every i in [0, n). Asynchronous.
  template <class F> void for_each_n(std::int64_t n, F f) const {
    if (n <= 0)
      return;
    fusekit::detail::cuda_for_each_n_kernel<<<fusekit::detail::cuda_grid_for(n), fusekit::detail::cuda_block_threads, 0, stream>>>(n, f);
    fusekit::detail::cuda_check_launch("cuda_policy::for_each_n");
  }

  /// Calls f(begin, end) on the device for consecutive blocks of at most `block` indices. Asynchronous.
  template <class F> void for_each_block(std::int64_t n, std::int64_t block, F f) const {
    if (n <= 0)
      return;
    if (block <= 0)
      block = n;
    const std::int64_t nblocks = (n + block - 1) / block;
    fusekit::detail::cuda_for_each_block_kernel<<<fusekit::detail::cuda_grid_for(nblocks), fusekit::detail::cuda_block_threads, 0, stream>>>(
        n, block, nblocks, f);
    fusekit::detail::cuda_check_launch("cuda_policy::for_each_block");
  }

  /// Deterministic `init ⊕ t(0) ⊕ ... ⊕ t(n-1)` (see the file comment). `reduce` must be callable on host and
  /// device (it combines the chunk results on the host); T must be trivially copyable. Synchronizes the stream.
  template <class T, class Reduce, class Transform>
  [[nodiscard]] T transform_reduce(std::int64_t n, T init, Reduce reduce, Transform transform) const {
    static_assert(std::is_trivially_copyable_v<T> && std::is_default_constructible_v<T>,
                  "fusekit::exec::cuda_policy::transform_reduce: the result type must be trivially copyable and "
                  "default constructible (it lives in device memory)");
    if (n <= 0)
      return init;
    const std::int64_t chunk = reduction_chunk(n);
    const std::int64_t nchunks = (n + chunk - 1) / chunk;
    T* d_partial = nullptr;
    fusekit::detail::cuda_check(
        cudaMallocAsync(reinterpret_cast<void**>(&d_partial), static_cast<std::size_t>(nchunks) * sizeof(T), stream),
        "cuda_policy::transform_reduce (workspace)");
    std::vector<T> partial(static_cast<std::size_t>(nchunks));
    fusekit::detail::cuda_chunk_reduce_kernel<T><<<static_cast<unsigned>(nchunks), fusekit::detail::cuda_block_threads, 0, stream>>>(
        n, chunk, reduce, transform, d_partial);
    cudaError_t st = cudaGetLastError();
    if (st == cudaSuccess)
      st = cudaMemcpyAsync(partial.data(), d_partial, partial.size() * sizeof(T), cudaMemcpyDeviceToHost, stream);
    const cudaError_t st_free = cudaFreeAsync(d_partial, stream);
    if (st == cudaSuccess)
      st = st_free;
    if (st == cudaSuccess)
      st = cudaStreamSynchronize(stream);
    fusekit::detail::cuda_check(st, "cuda_policy::transform_reduce");
    T acc = std::move(init);
    for (auto& p : partial)
      acc = static_cast<T>(reduce(std::move(acc), std::move(p)));
    return acc;
  }

  /// For every segment s in [0, nseg): `out(s, init ⊕ t(s, b) ⊕ ... ⊕ t(s, e-1))` with (b, e) = bounds(s) (a
  /// pair-like with .first/.second), one device thread per segment, left to right. Asynchronous.
  template <class T, class Bounds, class Reduce, class Transform, class Out>
  void segmented_transform_reduce(std::int64_t nseg, Bounds bounds, T init, Reduce reduce, Transform transform,
                                  Out out) const {
    if (nseg <= 0)
      return;
    fusekit::detail::cuda_segmented_reduce_kernel<<<fusekit::detail::cuda_grid_for(nseg), fusekit::detail::cuda_block_threads, 0, stream>>>(
        nseg, bounds, init, reduce, transform, out);
    fusekit::detail::cuda_check_launch("cuda_policy::segmented_transform_reduce");
  }
};

} // namespace fusekit::exec
