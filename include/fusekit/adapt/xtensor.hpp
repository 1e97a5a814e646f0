/// @file
/// @brief Adaptor (opt-in): xtensor containers and strided views as strided host views.
///
/// Adapted: anything with xtensor's data interface (`data()`, `data_offset()`, `shape()`, `strides()`):
/// `xt::xtensor<T, N>`, `xt::xtensor_fixed`, `xt::adapt(ptr, ...)` with a static rank, `xt::view(...)` with
/// strided slices and `xt::strided_view(...)` of those, in row- or column-major layout.
///  - The rank of the view is the static rank of the expression. `xt::xarray` (and anything else whose rank
///    is known only at run time) is adapted with `fusekit::as_rank<R>(x)`, which checks `x.dimension() == R`;
///    `as_view(xarray)` fails to compile with a sentence saying so.
///  - The view points at `data() + data_offset()` with xtensor's element strides. xtensor gives dimensions
///    of extent 1 a stride of 0; that is harmless. A stride of 0 on a longer dimension (a broadcast view made
///    with `xt::adapt(..., strides)`) is fine for inputs; fusekit::merge rejects it for outputs at run time.
///  - Lazy expressions (`a + b`, `xt::broadcast(...)`, views with `xt::keep`) have no data interface and are
///    rejected at compile time with a sentence telling you to call `xt::eval`.
///  - The memory space is host_space.
///
/// Needs xtensor 0.24 or newer on the include path (`find_package(xtensor)`, target `xtensor`).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include <xtensor/xarray.hpp>
#include <xtensor/xfixed.hpp>
#include <xtensor/xshape.hpp>
#include <xtensor/xtensor.hpp>
#include <xtensor/xutils.hpp>

#include <fusekit/adapt/span.hpp>
#include <fusekit/core/error.hpp>
#include <fusekit/types/element.hpp>
#include <fusekit/view/as_view.hpp>
#include <fusekit/view/memory_space.hpp>
#include <fusekit/view/strided_view.hpp>

namespace fusekit {

namespace detail {

/// An xtensor expression.
template <class X>
concept xt_expression = xt::is_xexpression<X>::value;

/// The static rank of an xtensor expression, or -1 when it is known only at run time.
template <class X>
inline constexpr int xt_static_rank = [] {
  if constexpr (requires { typename X::shape_type; })
    return static_cast<int>(xt::static_dimension<typename X::shape_type>::value);
  else
    return -1;
}();

/// Shared implementation of view_traits for xtensor expressions.
template <class X> struct xtensor_view_traits {
  using space_type = host_space;
  static constexpr bool direct = xt::has_data_interface<X>::value;
  static constexpr bool static_rank = xt_static_rank<X> > 0;
  static constexpr std::size_t rank = static_rank ? static_cast<std::size_t>(xt_static_rank<X>) : 1;

  template <class Y> static auto* data(Y& x) noexcept {
    static_assert(direct, "fusekit::as_view: this xtensor expression is lazy and has no data interface (e.g. a + b, "
                          "xt::broadcast(...), a view with xt::keep or xt::drop); evaluate it with xt::eval(e) or "
                          "assign it to an xt::xtensor/xt::xarray before passing it to fusekit.");
    static_assert(!direct || static_rank,
                  "fusekit::as_view: the rank of this xtensor expression (an xt::xarray or a view of one) is known "
                  "only at run time; adapt it with fusekit::as_rank<R>(x), which checks x.dimension() == R.");
    if constexpr (direct) {
      static_assert(element<std::remove_cv_t<std::remove_pointer_t<decltype(x.data())>>>,
                    "fusekit::as_view: the xtensor value type is not a fusekit element (float, double, integers, "
                    "fusekit::bf16, fusekit::fp16).");
      return x.data() + x.data_offset();
    } else {
      return static_cast<typename X::value_type*>(nullptr);
    }
  }
  static std::int64_t extent(const X& x, std::size_t d) noexcept {
    if constexpr (direct)
      return static_cast<std::int64_t>(x.shape()[d]);
    else
      return (void)x, (void)d, 0;
  }
  static std::int64_t stride(const X& x, std::size_t d) noexcept {
    if constexpr (direct)
      return static_cast<std::int64_t>(x.strides()[d]);
    else
      return (void)x, (void)d, 0;
  }
};

} // namespace detail

/// xtensor containers are contiguous ranges too: keep the std::span adaptor from flattening them to rank 1.
template <class X>
requires detail::xt_expression<X>
inline constexpr bool enable_range_view<X> = false;

/// view_traits for xtensor expressions: containers, adaptors, views, strided views; lazy expressions and
/// dynamic-rank ones are rejected by data() with a sentence.
template <class X>
struct view_traits<X, std::enable_if_t<detail::xt_expression<X>>> : detail::xtensor_view_traits<X> {};

/// Adapts an xtensor expression whose rank is known only at run time (`xt::xarray`, views of it) as a rank-R
/// strided host view. Also accepts static-rank expressions (their rank must be R).
/// @throws fusekit::error (errc::shape_mismatch) when `x.dimension() != R`.
template <std::size_t R, class X> auto as_rank(X&& x) {
  using B = std::remove_cvref_t<X>;
  static_assert(detail::xt_expression<B>, "fusekit::as_rank: expects an xtensor expression");
  static_assert(xt::has_data_interface<B>::value,
                "fusekit::as_rank: this xtensor expression is lazy and has no data interface; evaluate it with "
                "xt::eval(e) or assign it to an xt::xarray first.");
  static_assert(detail::xt_static_rank<B> < 0 || static_cast<std::size_t>(detail::xt_static_rank<B>) == R,
                "fusekit::as_rank: R differs from the static rank of this xtensor expression.");
  FUSEKIT_EXPECTS(x.dimension() == R, shape_mismatch,
                  "fusekit::as_rank<" + std::to_string(R) + ">: the xtensor expression has " +
                      std::to_string(x.dimension()) + " dimension(s)");
  auto* p = x.data() + x.data_offset();
  using T = std::remove_pointer_t<decltype(p)>;
  std::array<std::int64_t, R> e{}, s{};
  for (std::size_t d = 0; d < R; ++d) {
    e[d] = static_cast<std::int64_t>(x.shape()[d]);
    s[d] = static_cast<std::int64_t>(x.strides()[d]);
  }
  return strided_view<T, R, host_space>{p, e, s};
}

} // namespace fusekit
