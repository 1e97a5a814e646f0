/// @file
/// @brief Concepts describing tensor views and where they can be accessed.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include <fusekit/view/memory_space.hpp>
#include <fusekit/view/strided_view.hpp>

namespace fusekit {

/// Anything shaped like strided_view: trivially copyable, a memory space, rank, data, extents, strides.
template <class V>
concept tensor_view =
    std::is_trivially_copyable_v<V> && requires { typename V::space_type; } && memory_space<typename V::space_type> &&
    requires(const V& v, std::size_t i) {
      typename V::element_type;
      { V::rank() } -> std::convertible_to<std::size_t>;
      { v.data() } -> std::same_as<typename V::element_type*>;
      { v.extent(i) } -> std::convertible_to<std::int64_t>;
      { v.stride(i) } -> std::convertible_to<std::int64_t>;
    };

/// A view whose memory the host can dereference.
template <class V>
concept host_accessible_view = tensor_view<V> && accessible_from<typename V::space_type, host_space>;

/// A view whose memory CUDA device code can dereference.
template <class V>
concept device_accessible_view = tensor_view<V> && accessible_from<typename V::space_type, device_space>;

/// A view of elements of type T (ignoring const).
template <class V, class T>
concept view_of = tensor_view<V> && std::same_as<std::remove_const_t<typename V::element_type>, T>;

/// A view whose elements can be written.
template <class V>
concept writable_view = tensor_view<V> && !std::is_const_v<typename V::element_type>;

namespace detail {
template <class V> struct is_strided_view : std::false_type {};
template <class T, std::size_t R, class S> struct is_strided_view<strided_view<T, R, S>> : std::true_type {};
} // namespace detail

} // namespace fusekit
