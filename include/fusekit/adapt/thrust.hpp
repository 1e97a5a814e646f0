/// @file
/// @brief Adaptor (opt-in): Thrust vectors and pointers as rank-1 views, and fusekit::exec::thrust_policy,
/// an execution policy that runs fusekit's primitives through a Thrust execution policy.
///
/// The memory space follows the Thrust *system*, never the container's name: the CUDA system maps to
/// device_space, the host systems (CPP, OMP, TBB and `thrust::seq`) to host_space. Built with
/// `-DTHRUST_DEVICE_SYSTEM=THRUST_DEVICE_SYSTEM_OMP`, a `thrust::device_vector` lives in host memory, its
/// view is a host view and `thrust_policy{thrust::device}` runs on OpenMP threads: the whole Thrust code path
/// runs, and is tested, on a machine without a GPU.
///  - `thrust::host_vector<T>` and `thrust::device_vector<T>` -> `vector_view<T, space>` (contiguous).
///  - `thrust::universal_vector<T>` -> managed_space with the CUDA system, host_space otherwise.
///  - `thrust::device_ptr<T>` carries no size: `fusekit::thrust_view(p, n)` or `thrust_view(p, extents[, strides])`.
///
/// This header includes only Thrust; it compiles with g++/clang for any device system, and CUDA-system
/// algorithms are instantiated only when a CUDA compiler builds them.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <thrust/device_ptr.h>
#include <thrust/device_vector.h>
#include <thrust/execution_policy.h>
#include <thrust/for_each.h>
#include <thrust/functional.h>
#include <thrust/host_vector.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/iterator_traits.h>
#include <thrust/system/cpp/execution_policy.h>
#include <thrust/system/omp/detail/execution_policy.h> // the omp/tbb tags only: no OpenMP/TBB needed
#include <thrust/system/tbb/detail/execution_policy.h>
#include <thrust/transform_reduce.h>
#include <thrust/universal_vector.h>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include <fusekit/adapt/span.hpp>
#include <fusekit/core/config.hpp>
#include <fusekit/exec/policy.hpp>
#include <fusekit/exec/primitives.hpp>
#include <fusekit/types/element.hpp>
#include <fusekit/view/as_view.hpp>
#include <fusekit/view/memory_space.hpp>
#include <fusekit/view/strided_view.hpp>

namespace fusekit {

namespace detail {

// Every host system (cpp, omp, tbb) and thrust::seq derive from the sequential system's policy.
template <class D> std::true_type thrust_is_host_system(const thrust::system::detail::sequential::execution_policy<D>&);
std::false_type thrust_is_host_system(...);
// The parallel host systems.
template <class D> std::true_type thrust_is_omp_system(const thrust::system::omp::detail::execution_policy<D>&);
std::false_type thrust_is_omp_system(...);
template <class D> std::true_type thrust_is_tbb_system(const thrust::system::tbb::detail::execution_policy<D>&);
std::false_type thrust_is_tbb_system(...);

template <class S>
inline constexpr bool thrust_host_system_v = decltype(thrust_is_host_system(std::declval<S>()))::value;
template <class S> inline constexpr bool thrust_omp_system_v = decltype(thrust_is_omp_system(std::declval<S>()))::value;
template <class S> inline constexpr bool thrust_tbb_system_v = decltype(thrust_is_tbb_system(std::declval<S>()))::value;

} // namespace detail

/// The fusekit memory space of a Thrust system tag or execution policy `S`: host_space for the host systems
/// (CPP, OMP, TBB, `thrust::seq`), device_space otherwise (CUDA). Specialize for a custom Thrust system.
template <class S> struct thrust_system_space {
  using type = std::conditional_t<detail::thrust_host_system_v<S>, host_space, device_space>;
};
/// Shorthand for thrust_system_space<S>::type.
template <class S> using thrust_system_space_t = typename thrust_system_space<std::remove_cvref_t<S>>::type;

/// The memory space of the memory a Thrust iterator or pointer type `It` points to.
template <class It> using thrust_iterator_space_t = thrust_system_space_t<thrust::iterator_system_t<It>>;

namespace detail {

template <class V> struct thrust_vector_view_traits {
  using space_type = thrust_iterator_space_t<typename V::iterator>;
  static constexpr std::size_t rank = 1;
  template <class Y> static auto* data(Y& v) noexcept {
    static_assert(element<typename V::value_type>, "fusekit::as_view: the Thrust vector's value type is not a fusekit "
                                                   "element (float, double, integers, fusekit::bf16, fusekit::fp16).");
    return thrust::raw_pointer_cast(v.data());
  }
  static std::int64_t extent(const V& v, std::size_t) noexcept { return static_cast<std::int64_t>(v.size()); }
  static std::int64_t stride(const V&, std::size_t) noexcept { return 1; }
};

} // namespace detail

// Thrust's vectors are not (or not always) contiguous ranges; make sure the std::span adaptor never takes them.
template <class T, class A> inline constexpr bool enable_range_view<thrust::host_vector<T, A>> = false;
template <class T, class A> inline constexpr bool enable_range_view<thrust::device_vector<T, A>> = false;
template <class T, class A> inline constexpr bool enable_range_view<thrust::universal_vector<T, A>> = false;

/// view_traits for thrust::host_vector: a contiguous rank-1 view in the host system's space.
template <class T, class A>
struct view_traits<thrust::host_vector<T, A>, void> : detail::thrust_vector_view_traits<thrust::host_vector<T, A>> {};
/// view_traits for thrust::device_vector: a contiguous rank-1 view, device_space for the CUDA system and
/// host_space for the CPU device systems (OMP, TBB, CPP).
template <class T, class A>
struct view_traits<thrust::device_vector<T, A>, void> : detail::thrust_vector_view_traits<thrust::device_vector<T, A>> {
};
/// view_traits for thrust::universal_vector: managed_space for the CUDA system, host_space otherwise.
template <class T, class A>
struct view_traits<thrust::universal_vector<T, A>, void>
    : detail::thrust_vector_view_traits<thrust::universal_vector<T, A>> {
  using space_type = std::conditional_t<
      std::is_same_v<thrust_iterator_space_t<typename thrust::universal_vector<T, A>::iterator>, device_space>,
      managed_space, host_space>;
};

/// Rank-1 contiguous view of `n` elements at a thrust::device_ptr (space from the device system).
template <class T> constexpr auto thrust_view(thrust::device_ptr<T> p, std::int64_t n) noexcept {
  return vector_view<T, thrust_iterator_space_t<thrust::device_ptr<T>>>{thrust::raw_pointer_cast(p), {n}, {1}};
}
/// Row-major view with the given extents at a thrust::device_ptr.
template <class T, std::size_t R>
constexpr auto thrust_view(thrust::device_ptr<T> p, const std::array<std::int64_t, R>& extents) noexcept {
  return strided_view<T, R, thrust_iterator_space_t<thrust::device_ptr<T>>>{thrust::raw_pointer_cast(p), extents,
                                                                            detail::row_major_strides(extents)};
}
/// Strided view (strides in elements) at a thrust::device_ptr.
template <class T, std::size_t R>
constexpr auto thrust_view(thrust::device_ptr<T> p, const std::array<std::int64_t, R>& extents,
                           const std::array<std::int64_t, R>& strides) noexcept {
  return strided_view<T, R, thrust_iterator_space_t<thrust::device_ptr<T>>>{thrust::raw_pointer_cast(p), extents,
                                                                            strides};
}

namespace detail {

// Functor adaptors handed to Thrust. With a CUDA system, F must be callable on the device (a functor with
// FUSEKIT_HOST_DEVICE members, not a host lambda); with a host system any callable works.
template <class F> struct thrust_index_fn {
  F f;
#if defined(__CUDACC__)
#pragma nv_exec_check_disable
#endif
  FUSEKIT_HOST_DEVICE void operator()(std::int64_t i) { f(i); }
};
template <class F> struct thrust_block_fn {
  F f;
  std::int64_t n, block;
#if defined(__CUDACC__)
#pragma nv_exec_check_disable
#endif
  FUSEKIT_HOST_DEVICE void operator()(std::int64_t b) {
    const std::int64_t e = (b + 1) * block;
    f(b * block, e < n ? e : n);
  }
};
template <class T, class F> struct thrust_transform_fn {
  F f;
#if defined(__CUDACC__)
#pragma nv_exec_check_disable
#endif
  FUSEKIT_HOST_DEVICE T operator()(std::int64_t i) const { return static_cast<T>(f(i)); }
};
template <class T, class R> struct thrust_reduce_fn {
  R r;
#if defined(__CUDACC__)
#pragma nv_exec_check_disable
#endif
  FUSEKIT_HOST_DEVICE T operator()(const T& a, const T& b) const { return static_cast<T>(r(a, b)); }
};

} // namespace detail

} // namespace fusekit

namespace fusekit::exec {

/// An execution policy that runs fusekit's primitives through a Thrust execution policy `P`
/// (`thrust::device`, `thrust::host`, `thrust::omp::par`, `thrust::cuda::par.on(stream)`, ...).
///
/// `space_type` follows the Thrust system of `P` (see thrust_system_space), so a device_vector built for the
/// OMP system and `thrust_policy{thrust::device}` are both host, while with the CUDA system both are device
/// and host views are rejected at compile time.
///  - `for_each_n`: `thrust::for_each` over a counting_iterator.
///  - `for_each_block`: for_each_n over the blocks.
///  - `transform_reduce`: host systems use fusekit's deterministic chunked reduction (bit-identical to seq and
///    par for any thread count); the CUDA system uses `thrust::transform_reduce` (CUB), deterministic from run to
///    run on one GPU but associated differently from the host systems.
///  - `concurrency()`: OpenMP threads for the OMP system, hardware threads for TBB, 1 otherwise (the CUDA
///    system's parallelism is inside Thrust).
/// With the CUDA system the functors must be callable on the device (FUSEKIT_HOST_DEVICE functors); fusekit's
/// generic algorithms use host lambdas, so run merges on the GPU with fusekit::exec::cuda_policy
/// (<fusekit/cuda.cuh> also routes linear/task_arithmetic with a CUDA thrust_policy there).
template <class P> struct thrust_policy {
  /// host_space for host Thrust systems, device_space for CUDA.
  using space_type = thrust_system_space_t<P>;
  /// True for a host (CPU) Thrust system.
  static constexpr bool is_host_system = std::is_same_v<space_type, host_space>;
  /// False for the sequential systems (CPP, thrust::seq).
  static constexpr bool is_parallel = !is_host_system || fusekit::detail::thrust_omp_system_v<std::remove_cvref_t<P>> ||
                                      fusekit::detail::thrust_tbb_system_v<std::remove_cvref_t<P>>;

  /// The wrapped Thrust execution policy.
  P policy{};

  /// Number of workers a host loop is split over.
  [[nodiscard]] int concurrency() const noexcept {
    if constexpr (fusekit::detail::thrust_omp_system_v<std::remove_cvref_t<P>>) {
#if defined(_OPENMP)
      return omp_get_max_threads();
#else
      return 1;
#endif
    } else if constexpr (fusekit::detail::thrust_tbb_system_v<std::remove_cvref_t<P>>) {
      return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    } else {
      return 1;
    }
  }

  /// Calls f(i) for every i in [0, n) via thrust::for_each.
  template <class F> void for_each_n(std::int64_t n, F&& f) const {
    if (n <= 0)
      return;
    thrust::for_each(policy, thrust::counting_iterator<std::int64_t>(0), thrust::counting_iterator<std::int64_t>(n),
                     fusekit::detail::thrust_index_fn<std::decay_t<F>>{f});
  }

  /// Calls f(begin, end) for consecutive blocks of at most `block` indices.
  template <class F> void for_each_block(std::int64_t n, std::int64_t block, F&& f) const {
    if (n <= 0)
      return;
    if (block <= 0)
      block = n;
    const std::int64_t nblocks = (n + block - 1) / block;
    thrust::for_each(policy, thrust::counting_iterator<std::int64_t>(0),
                     thrust::counting_iterator<std::int64_t>(nblocks),
                     fusekit::detail::thrust_block_fn<std::decay_t<F>>{f, n, block});
  }

  /// `init ⊕ t(0) ⊕ ... ⊕ t(n-1)`; see the class comment for the association.
  template <class T, class Reduce, class Transform>
  [[nodiscard]] T transform_reduce(std::int64_t n, T init, Reduce reduce, Transform transform) const {
    if (n <= 0)
      return init;
    if constexpr (is_host_system) {
      return fusekit::exec::detail::chunked_transform_reduce(*this, n, std::move(init), reduce, transform);
    } else {
      return thrust::transform_reduce(policy, thrust::counting_iterator<std::int64_t>(0),
                                      thrust::counting_iterator<std::int64_t>(n),
                                      fusekit::detail::thrust_transform_fn<T, Transform>{transform}, init,
                                      fusekit::detail::thrust_reduce_fn<T, Reduce>{reduce});
    }
  }
};

/// `thrust_policy{thrust::device}` deduces the wrapped policy type.
template <class P> thrust_policy(P) -> thrust_policy<P>;

} // namespace fusekit::exec
