/// @file
/// @brief The one adaptation point: view_traits<X> + as_view(x) turn any adaptable container into a strided_view.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include <fusekit/view/concepts.hpp>
#include <fusekit/view/strided_view.hpp>

namespace fusekit {

/// Customization point. Specialize for a container type `X` (no cv/ref) to make it adaptable. A
/// specialization provides:
///   - `using space_type = ...;` and `static constexpr std::size_t rank = ...;`
///   - `static auto* data(auto& x)` - pointer to the first element (constness follows `x`)
///   - `static std::int64_t extent(const X& x, std::size_t d)` and `stride(const X& x, std::size_t d)` (elements)
/// Opt-in headers in <fusekit/adapt/...> provide the specializations for std::span, Eigen, xtensor, Thrust.
/// The primary template is left undefined: "not adaptable".
template <class X, class Enable = void> struct view_traits;

namespace detail {
template <class X>
concept has_view_traits = requires { view_traits<std::remove_cvref_t<X>>::rank; };
template <class X> struct dependent_false : std::false_type {};
} // namespace detail

/// Function object type of as_view.
struct as_view_fn {
  /// Returns `x` itself for a tensor view, otherwise the strided_view described by view_traits.
  template <class X> constexpr auto operator()(X&& x) const noexcept {
    using B = std::remove_cvref_t<X>;
    if constexpr (tensor_view<B>) {
      return B(x);
    } else if constexpr (detail::has_view_traits<X>) {
      using traits = view_traits<B>;
      constexpr std::size_t R = traits::rank;
      auto* p = traits::data(x);
      using T = std::remove_pointer_t<decltype(p)>;
      std::array<std::int64_t, R> e{}, s{};
      for (std::size_t d = 0; d < R; ++d) {
        e[d] = traits::extent(x, d);
        s[d] = traits::stride(x, d);
      }
      return strided_view<T, R, typename traits::space_type>{p, e, s};
    } else {
      static_assert(detail::dependent_false<X>::value,
                    "fusekit::as_view: this type is not adaptable. Include the matching <fusekit/adapt/...> header "
                    "(span, eigen, xtensor, thrust), specialize fusekit::view_traits for it, or wrap a raw pointer "
                    "explicitly with fusekit::host_view / fusekit::device_view.");
    }
  }
};

/// Turns an adaptable object (or a view) into a strided_view. Idempotent on views.
inline constexpr as_view_fn as_view{};

/// Types as_view accepts.
template <class X>
concept viewable = tensor_view<std::remove_cvref_t<X>> || detail::has_view_traits<X>;

/// The view type as_view produces for X.
template <viewable X> using view_t = decltype(as_view(std::declval<X>()));

} // namespace fusekit
