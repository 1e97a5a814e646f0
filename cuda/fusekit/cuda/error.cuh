/// @file
/// @brief CUDA runtime errors as fusekit errors: fusekit::cuda_error and the boundary check.
#if !defined(__CUDACC__)
#error "fusekit/cuda/error.cuh needs a CUDA compiler (nvcc); host-only code includes <fusekit/fusekit.hpp>"
#endif
#pragma once

#include <string>
#include <string_view>

#include <cuda_runtime_api.h>

#include <fusekit/core/error.hpp>

namespace fusekit {

/// A failure reported by the CUDA runtime, converted at fusekit's boundary. Catch it as fusekit::error (its
/// code() is errc::unsupported when there is no usable device or driver, errc::invalid_argument for
/// cudaErrorInvalidValue, errc::internal otherwise) or as cuda_error to read the cudaError_t.
class cuda_error : public error {
public:
  /// `where` names the fusekit operation that made the failing call.
  cuda_error(cudaError_t status, std::string_view where)
      : error(category(status), message(status, where)), status_(status) {}
  /// The CUDA runtime status.
  [[nodiscard]] cudaError_t status() const noexcept { return status_; }

  /// The fusekit error code for a CUDA status.
  [[nodiscard]] static errc category(cudaError_t s) noexcept {
    switch (s) {
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorUnsupportedPtxVersion:
    case cudaErrorNotSupported: return errc::unsupported;
    case cudaErrorInvalidValue: return errc::invalid_argument;
    default: return errc::internal;
    }
  }

private:
  static std::string message(cudaError_t s, std::string_view where) {
    std::string m = "fusekit (CUDA): ";
    m += where;
    m += ": ";
    m += cudaGetErrorName(s);
    m += " (";
    m += cudaGetErrorString(s);
    m += ')';
    return m;
  }
  cudaError_t status_;
};

namespace detail {

/// Throws cuda_error when `status` is not cudaSuccess (host code only; device code never throws).
inline void cuda_check(cudaError_t status, std::string_view where) {
  if (status != cudaSuccess) [[unlikely]] {
    (void)cudaGetLastError(); // clear a non-sticky error so the next call does not report it again
    throw cuda_error(status, where);
  }
}

/// Checks the launch of the kernel just enqueued (configuration errors are reported here, execution errors at
/// the next synchronization).
inline void cuda_check_launch(std::string_view where) { cuda_check(cudaGetLastError(), where); }

} // namespace detail
} // namespace fusekit
