// A stand-in for a device policy (cuda_policy needs nvcc): runs "in" device_space and does nothing.
#pragma once

#include <cstdint>

#include <fusekit/view/memory_space.hpp>

namespace fusekit_test {
struct fake_device_policy {
  using space_type = fusekit::device_space;
  static constexpr bool is_parallel = true;
  [[nodiscard]] int concurrency() const noexcept { return 1; }
  template <class F> void for_each_n(std::int64_t, F&&) const {}
  template <class F> void for_each_block(std::int64_t, std::int64_t, F&&) const {}
};
} // namespace fusekit_test
