/// @file
/// @brief Memory spaces (host, device, managed) as types, and which space can be reached from where.
#pragma once

#include <concepts>

namespace fusekit {

/// CPU-dereferenceable memory.
struct host_space {};
/// CUDA global memory; not dereferenceable on the host.
struct device_space {};
/// Memory reachable from both (cudaMallocManaged, mapped pinned memory).
struct managed_space {};

/// Opt-in: a type is a memory space when this is true (specialize for your own spaces).
template <class S> inline constexpr bool enable_memory_space = false;
template <> inline constexpr bool enable_memory_space<host_space> = true;
template <> inline constexpr bool enable_memory_space<device_space> = true;
template <> inline constexpr bool enable_memory_space<managed_space> = true;

/// A memory-space tag type.
template <class S>
concept memory_space = enable_memory_space<S>;

/// Memory in space `S` can be dereferenced by code running in space `Where` (host or device).
template <class S, class Where>
concept accessible_from = memory_space<S> && memory_space<Where> &&
                          (std::same_as<S, Where> || std::same_as<S, managed_space>);

} // namespace fusekit
