/// @file
/// @brief scratch_array: an uninitialized array of trivial elements from a merge's scratch resource
/// (merge_context::scratch, or operator new when none is given).
#pragma once

#include <cstddef>
#include <memory_resource>
#include <type_traits>
#include <utility>

#include <fusekit/merge/merge.hpp>

namespace fusekit::detail {

/// The resource a merge call takes its large scratch from.
[[nodiscard]] inline std::pmr::memory_resource* scratch_resource(const merge_context& ctx) noexcept {
  return ctx.scratch != nullptr ? ctx.scratch : std::pmr::new_delete_resource();
}

/// `n` uninitialized elements of trivial type T from `mr`, given back on destruction. Move-only.
template <class T> class scratch_array {
  static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>);
  static constexpr std::size_t align = alignof(T) < 64 ? 64 : alignof(T); // a cache line at least

public:
  scratch_array() = default;
  scratch_array(std::pmr::memory_resource* mr, std::size_t n)
      : mr_(mr), p_(n > 0 ? static_cast<T*>(mr->allocate(n * sizeof(T), align)) : nullptr), n_(n) {}
  scratch_array(scratch_array&& o) noexcept
      : mr_(std::exchange(o.mr_, nullptr)), p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  scratch_array& operator=(scratch_array&& o) noexcept {
    if (this != &o) {
      reset();
      mr_ = std::exchange(o.mr_, nullptr);
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  scratch_array(const scratch_array&) = delete;
  scratch_array& operator=(const scratch_array&) = delete;
  ~scratch_array() { reset(); }

  [[nodiscard]] T* get() const noexcept { return p_; }

private:
  void reset() noexcept {
    if (p_ != nullptr)
      mr_->deallocate(p_, n_ * sizeof(T), align);
    p_ = nullptr;
    n_ = 0;
  }
  std::pmr::memory_resource* mr_ = nullptr;
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

} // namespace fusekit::detail
