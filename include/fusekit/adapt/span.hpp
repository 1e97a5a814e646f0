/// @file
/// @brief Adaptor: std::span and contiguous ranges (std::vector, std::array) as rank-1 host views.
/// A span carries no memory space: it is taken as host memory. Wrap device memory with device_view.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <ranges>
#include <span>
#include <type_traits>

#include <fusekit/types/element.hpp>
#include <fusekit/view/as_view.hpp>
#include <fusekit/view/memory_space.hpp>

namespace fusekit {

/// Opt-out for contiguous ranges that have a richer adaptor (xtensor containers are contiguous ranges but
/// must keep their rank): specialize it to false, e.g. in a constrained partial specialization.
template <class X> inline constexpr bool enable_range_view = true;

namespace detail {
template <class X>
concept adaptable_contiguous_range =
    std::ranges::contiguous_range<X> && std::ranges::sized_range<X> &&
    element<std::remove_cv_t<std::ranges::range_value_t<X>>> && !tensor_view<X> && enable_range_view<X>;
} // namespace detail

/// view_traits for std::span, std::vector, std::array and other contiguous sized ranges of elements.
template <class X> struct view_traits<X, std::enable_if_t<detail::adaptable_contiguous_range<X>>> {
  using space_type = host_space;
  static constexpr std::size_t rank = 1;
  template <class Y> static auto* data(Y& x) noexcept { return std::ranges::data(x); }
  static std::int64_t extent(const X& x, std::size_t) noexcept { return static_cast<std::int64_t>(std::ranges::size(x)); }
  static std::int64_t stride(const X&, std::size_t) noexcept { return 1; }
};

} // namespace fusekit
