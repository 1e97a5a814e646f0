/// @file
/// @brief strided_view: the canonical non-owning tensor view (pointer, extents, element strides, space).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include <fusekit/core/config.hpp>
#include <fusekit/view/memory_space.hpp>

namespace fusekit {

/// A non-owning, trivially copyable view of a rank-`Rank` tensor of `T` living in memory space `Space`.
/// Extents and strides are in elements (int64); strides may be any non-negative value (0 only for inputs).
/// Pass by value. Element access is host/device-callable; the caller must run where `Space` is
/// accessible (policies enforce that at compile time).
template <class T, std::size_t Rank, memory_space Space = host_space> struct strided_view {
  static_assert(Rank >= 1, "fusekit::strided_view: rank must be at least 1");
  using element_type = T;
  using value_type = std::remove_cv_t<T>;
  using space_type = Space;
  using index_type = std::int64_t;

  T* ptr_ = nullptr;
  std::array<index_type, Rank> extents_{};
  std::array<index_type, Rank> strides_{};

  /// Number of dimensions.
  FUSEKIT_HOST_DEVICE static constexpr std::size_t rank() noexcept { return Rank; }
  /// Pointer to element (0, ..., 0).
  FUSEKIT_HOST_DEVICE constexpr T* data() const noexcept { return ptr_; }
  /// Extent of dimension `d`.
  FUSEKIT_HOST_DEVICE constexpr index_type extent(std::size_t d) const noexcept { return extents_[d]; }
  /// Stride (in elements) of dimension `d`.
  FUSEKIT_HOST_DEVICE constexpr index_type stride(std::size_t d) const noexcept { return strides_[d]; }
  /// All extents.
  FUSEKIT_HOST_DEVICE constexpr const std::array<index_type, Rank>& extents() const noexcept { return extents_; }
  /// All strides.
  FUSEKIT_HOST_DEVICE constexpr const std::array<index_type, Rank>& strides() const noexcept { return strides_; }

  /// Number of elements (product of extents).
  FUSEKIT_HOST_DEVICE constexpr index_type size() const noexcept {
    index_type n = 1;
    for (std::size_t d = 0; d < Rank; ++d)
      n *= extents_[d];
    return n;
  }
  /// True when the view has no elements.
  FUSEKIT_HOST_DEVICE constexpr bool empty() const noexcept { return size() == 0; }

  /// True when the elements are dense in row-major (last index fastest) order.
  FUSEKIT_HOST_DEVICE constexpr bool is_contiguous() const noexcept {
    index_type expect = 1;
    for (std::size_t d = Rank; d-- > 0;) {
      if (extents_[d] != 1 && strides_[d] != expect)
        return false;
      expect *= extents_[d];
    }
    return true;
  }

  /// Element at multi-index (i0, ..., i{Rank-1}).
  template <class... Idx>
    requires(sizeof...(Idx) == Rank && (std::is_integral_v<Idx> && ...))
  FUSEKIT_HOST_DEVICE constexpr T& operator()(Idx... idx) const noexcept {
    const index_type ix[] = {static_cast<index_type>(idx)...};
    index_type off = 0;
    for (std::size_t d = 0; d < Rank; ++d)
      off += ix[d] * strides_[d];
    return ptr_[off];
  }

  /// Element `i` of a rank-1 view.
  FUSEKIT_HOST_DEVICE constexpr T& operator[](index_type i) const noexcept
    requires(Rank == 1)
  {
    return ptr_[i * strides_[0]];
  }

  /// Element at linear position `i` in row-major order (works for any strides).
  FUSEKIT_HOST_DEVICE constexpr T& at_linear(index_type i) const noexcept {
    index_type off = 0;
    for (std::size_t d = Rank; d-- > 0;) {
      const index_type e = extents_[d];
      off += (i % e) * strides_[d];
      i /= e;
    }
    return ptr_[off];
  }

  /// A view of the same memory with const elements.
  FUSEKIT_HOST_DEVICE constexpr strided_view<const T, Rank, Space> as_const() const noexcept {
    return {ptr_, extents_, strides_};
  }
  /// Implicit conversion to a view of const elements. (A template, so that for a view of const elements no
  /// never-callable conversion to its own type is declared: nvcc warns about that, #554-D.)
  template <class U = T>
    requires(!std::is_const_v<U>)
  FUSEKIT_HOST_DEVICE constexpr operator strided_view<const U, Rank, Space>() const noexcept {
    return {ptr_, extents_, strides_};
  }

  /// Row `i` of a rank-2 view, as a rank-1 view.
  FUSEKIT_HOST_DEVICE constexpr strided_view<T, 1, Space> row(index_type i) const noexcept
    requires(Rank == 2)
  {
    return {ptr_ + i * strides_[0], {extents_[1]}, {strides_[1]}};
  }
};

/// Rank-1 view.
template <class T, class Space = host_space> using vector_view = strided_view<T, 1, Space>;
/// Rank-2 view.
template <class T, class Space = host_space> using matrix_view = strided_view<T, 2, Space>;

namespace detail {
template <std::size_t R>
constexpr std::array<std::int64_t, R> row_major_strides(const std::array<std::int64_t, R>& e) noexcept {
  std::array<std::int64_t, R> s{};
  std::int64_t acc = 1;
  for (std::size_t d = R; d-- > 0;) {
    s[d] = acc;
    acc *= e[d];
  }
  return s;
}
} // namespace detail

/// Rank-1 contiguous view of `n` elements at host pointer `p`. A raw pointer's space is never guessed:
/// this names it explicitly.
template <class T> constexpr vector_view<T, host_space> host_view(T* p, std::int64_t n) noexcept {
  return {p, {n}, {1}};
}
/// Row-major contiguous view at host pointer `p` with the given extents.
template <class T, std::size_t R>
constexpr strided_view<T, R, host_space> host_view(T* p, const std::array<std::int64_t, R>& extents) noexcept {
  return {p, extents, detail::row_major_strides(extents)};
}
/// Strided view at host pointer `p` (strides in elements).
template <class T, std::size_t R>
constexpr strided_view<T, R, host_space> host_view(T* p, const std::array<std::int64_t, R>& extents,
                                                   const std::array<std::int64_t, R>& strides) noexcept {
  return {p, extents, strides};
}
/// Rank-1 contiguous view of `n` elements of device (CUDA global) memory.
template <class T> constexpr vector_view<T, device_space> device_view(T* p, std::int64_t n) noexcept {
  return {p, {n}, {1}};
}
/// Row-major contiguous view of device memory.
template <class T, std::size_t R>
constexpr strided_view<T, R, device_space> device_view(T* p, const std::array<std::int64_t, R>& extents) noexcept {
  return {p, extents, detail::row_major_strides(extents)};
}
/// Strided view of device memory.
template <class T, std::size_t R>
constexpr strided_view<T, R, device_space> device_view(T* p, const std::array<std::int64_t, R>& extents,
                                                       const std::array<std::int64_t, R>& strides) noexcept {
  return {p, extents, strides};
}
/// Rank-1 contiguous view of managed memory (reachable from host and device).
template <class T> constexpr vector_view<T, managed_space> managed_view(T* p, std::int64_t n) noexcept {
  return {p, {n}, {1}};
}

} // namespace fusekit
