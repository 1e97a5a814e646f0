/// @file
/// @brief Adaptor (opt-in): Eigen dense objects with storage as strided host views, and Eigen's 16-bit
/// float types as fusekit elements.
///
/// Adapted: `Eigen::Matrix`, `Eigen::Array`, `Eigen::Map` (with any `Stride`), `Eigen::Ref`, direct-access
/// `Eigen::Block` (`m.block(...)`, `m.row(i)`, `m.col(j)`, `m.topRows(k)`, ...) and `Transpose` of those.
///  - Compile-time vectors (`VectorXf`, `RowVectorXd`, `m.row(i)`, `Map<VectorXf, 0, InnerStride<>>`) become
///    rank-1 views; everything else a rank-2 view indexed `(row, col)`, whatever the storage order: a
///    column-major matrix gets strides `{1, outerStride}`, a row-major one `{outerStride, 1}`.
///  - Lazy expressions (`a + b`, `a * b`, `a.cwiseAbs()`, ...) have no storage and are rejected at compile
///    time with a sentence telling you to call `.eval()`.
///  - The memory space is always host_space (Eigen cannot tell device memory apart; wrap a device
///    pointer with fusekit::device_view).
///  - `Eigen::bfloat16` and `Eigen::half` are elements (computed in float). They have the bit layout of
///    fusekit::bf16 / fusekit::fp16; element_traits maps them by std::bit_cast, and Eigen's own float
///    conversions agree with fusekit's bit for bit except for NaN payloads (Eigen returns the canonical NaN).
///
/// Needs Eigen 3.4 or newer on the include path (`find_package(Eigen3)`, target `Eigen3::Eigen`).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include <Eigen/Core>

#include <fusekit/adapt/span.hpp>
#include <fusekit/types/bf16.hpp>
#include <fusekit/types/element.hpp>
#include <fusekit/types/fp16.hpp>
#include <fusekit/view/as_view.hpp>
#include <fusekit/view/memory_space.hpp>

namespace fusekit {

/// Eigen::bfloat16 as an element: stored as is, computed in float; `to_fusekit`/`from_fusekit` reinterpret
/// the bits as fusekit::bf16.
template <> struct element_traits<Eigen::bfloat16> {
  static constexpr bool is_specialized = true;
  using compute_type = float;
  /// The fusekit type with the same bit layout.
  using fusekit_type = bf16;
  static constexpr std::string_view name = "bf16";
  /// Same bits as fusekit::bf16.
  static bf16 to_fusekit(Eigen::bfloat16 x) noexcept { return std::bit_cast<bf16>(x); }
  /// Same bits as Eigen::bfloat16.
  static Eigen::bfloat16 from_fusekit(bf16 x) noexcept { return std::bit_cast<Eigen::bfloat16>(x); }
};

/// Eigen::half as an element: stored as is, computed in float; `to_fusekit`/`from_fusekit` reinterpret the
/// bits as fusekit::fp16.
template <> struct element_traits<Eigen::half> {
  static constexpr bool is_specialized = true;
  using compute_type = float;
  /// The fusekit type with the same bit layout.
  using fusekit_type = fp16;
  static constexpr std::string_view name = "f16";
  /// Same bits as fusekit::fp16.
  static fp16 to_fusekit(Eigen::half x) noexcept { return std::bit_cast<fp16>(x); }
  /// Same bits as Eigen::half.
  static Eigen::half from_fusekit(fp16 x) noexcept { return std::bit_cast<Eigen::half>(x); }
};

static_assert(sizeof(Eigen::bfloat16) == sizeof(bf16) && std::is_trivially_copyable_v<Eigen::bfloat16>,
              "fusekit/adapt/eigen.hpp: Eigen::bfloat16 no longer has the layout of fusekit::bf16");
static_assert(sizeof(Eigen::half) == sizeof(fp16) && std::is_trivially_copyable_v<Eigen::half>,
              "fusekit/adapt/eigen.hpp: Eigen::half no longer has the layout of fusekit::fp16");

namespace detail {

/// Any Eigen dense object or expression (plain objects, maps, refs, blocks and lazy expressions).
template <class X>
concept eigen_dense = requires {
  typename X::Scalar;
}
&&std::is_base_of_v<Eigen::DenseBase<X>, X>;

/// The Eigen object has storage fusekit can point at (Eigen's DirectAccessBit).
template <class X> inline constexpr bool eigen_direct_access = (int(X::Flags) & int(Eigen::DirectAccessBit)) != 0;

} // namespace detail

/// Eigen vectors may be contiguous ranges: keep the std::span adaptor away from them, this one knows strides.
template <class X>
requires detail::eigen_dense<X>
inline constexpr bool enable_range_view<X> = false;

/// view_traits for Eigen dense objects (see the file comment).
template <class X> struct view_traits<X, std::enable_if_t<detail::eigen_dense<X>>> {
  using space_type = host_space;
  static constexpr bool direct = detail::eigen_direct_access<X>;
  static constexpr std::size_t rank = X::IsVectorAtCompileTime ? 1 : 2;

  /// Pointer to coefficient (0, 0); const when `x` or its expression is read-only.
  template <class Y> static auto* data(Y& x) noexcept {
    static_assert(direct, "fusekit::as_view: this Eigen expression is lazy and has no storage of its own (e.g. a + b, "
                          "a * b, a.cwiseAbs(), a.array() * 2); call .eval() on it, or assign it to an Eigen::Matrix "
                          "or Eigen::Array, before passing it to fusekit.");
    static_assert(element<typename X::Scalar>,
                  "fusekit::as_view: the Eigen scalar type is not a fusekit element (float, double, integers, "
                  "Eigen::bfloat16, Eigen::half, fusekit::bf16, fusekit::fp16).");
    if constexpr (direct)
      return x.data();
    else
      return static_cast<typename X::Scalar*>(nullptr);
  }
  /// Rank 1: size(); rank 2: rows() then cols().
  static std::int64_t extent(const X& x, std::size_t d) noexcept {
    if constexpr (rank == 1)
      return static_cast<std::int64_t>(x.size());
    else
      return static_cast<std::int64_t>(d == 0 ? x.rows() : x.cols());
  }
  /// Element strides from Eigen's innerStride()/outerStride() and storage order.
  static std::int64_t stride(const X& x, std::size_t d) noexcept {
    if constexpr (!direct) {
      (void)x;
      (void)d;
      return 0;
    } else if constexpr (rank == 1) {
      (void)d;
      return static_cast<std::int64_t>(x.innerStride());
    } else {
      const bool along_inner = X::IsRowMajor ? d == 1 : d == 0;
      return static_cast<std::int64_t>(along_inner ? x.innerStride() : x.outerStride());
    }
  }
};

} // namespace fusekit
