/// @file
/// @brief The safetensors element types (`"BF16"`, `"F32"`, ...), their sizes, and the torch names
/// used by `config.json` (`"bfloat16"`) and mergekit configs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>

#include <fusekit/types/bf16.hpp>
#include <fusekit/types/fp16.hpp>

namespace fusekit::io {

/// Every dtype of the safetensors format (huggingface/safetensors `Dtype`).
enum class dtype : std::uint8_t {
  boolean, u8, i8, i16, u16, i32, u32, i64, u64,
  f16, bf16, f32, f64, c64,
  f8_e5m2, f8_e4m3, f8_e8m0, f8_e4m3fnuz, f8_e5m2fnuz,
  f4, f6_e2m3, f6_e3m2,
};

namespace detail {
struct dtype_row {
  dtype type;
  std::string_view name;   // safetensors spelling
  unsigned bits;           // bits per element
};
inline constexpr dtype_row dtype_table[] = {
    {dtype::boolean, "BOOL", 8},  {dtype::u8, "U8", 8},          {dtype::i8, "I8", 8},
    {dtype::i16, "I16", 16},      {dtype::u16, "U16", 16},       {dtype::i32, "I32", 32},
    {dtype::u32, "U32", 32},      {dtype::i64, "I64", 64},       {dtype::u64, "U64", 64},
    {dtype::f16, "F16", 16},      {dtype::bf16, "BF16", 16},     {dtype::f32, "F32", 32},
    {dtype::f64, "F64", 64},      {dtype::c64, "C64", 64},       {dtype::f8_e5m2, "F8_E5M2", 8},
    {dtype::f8_e4m3, "F8_E4M3", 8}, {dtype::f8_e8m0, "F8_E8M0", 8}, {dtype::f8_e4m3fnuz, "F8_E4M3FNUZ", 8},
    {dtype::f8_e5m2fnuz, "F8_E5M2FNUZ", 8}, {dtype::f4, "F4", 4}, {dtype::f6_e2m3, "F6_E2M3", 6},
    {dtype::f6_e3m2, "F6_E3M2", 6},
};
} // namespace detail

/// The safetensors spelling of `t` ("BF16").
[[nodiscard]] constexpr std::string_view to_string(dtype t) noexcept {
  for (const auto& r : detail::dtype_table)
    if (r.type == t)
      return r.name;
  return "?";
}

/// Parses a safetensors dtype string (exact, case-sensitive as the format requires).
[[nodiscard]] constexpr std::optional<dtype> parse_dtype(std::string_view s) noexcept {
  for (const auto& r : detail::dtype_table)
    if (r.name == s)
      return r.type;
  return std::nullopt;
}

/// Bits per element (4 and 6 for the sub-byte MX formats).
[[nodiscard]] constexpr unsigned bit_size(dtype t) noexcept {
  for (const auto& r : detail::dtype_table)
    if (r.type == t)
      return r.bits;
  return 0;
}

/// Bytes per element, rounded up (1 for sub-byte formats).
[[nodiscard]] constexpr std::size_t element_size(dtype t) noexcept { return (bit_size(t) + 7) / 8; }

/// True for the 8-bit float formats, which need their scale tensors applied before any arithmetic.
[[nodiscard]] constexpr bool is_float8(dtype t) noexcept {
  return t == dtype::f8_e5m2 || t == dtype::f8_e4m3 || t == dtype::f8_e8m0 || t == dtype::f8_e4m3fnuz ||
         t == dtype::f8_e5m2fnuz;
}

/// True for the formats merges compute with: F16, BF16, F32, F64.
[[nodiscard]] constexpr bool is_mergeable_float(dtype t) noexcept {
  return t == dtype::f16 || t == dtype::bf16 || t == dtype::f32 || t == dtype::f64;
}

/// The torch / mergekit name ("bfloat16", "float16", "float32", "float64", "int64", ...).
[[nodiscard]] constexpr std::string_view torch_name(dtype t) noexcept {
  switch (t) {
  case dtype::boolean: return "bool";
  case dtype::u8: return "uint8";
  case dtype::i8: return "int8";
  case dtype::i16: return "int16";
  case dtype::u16: return "uint16";
  case dtype::i32: return "int32";
  case dtype::u32: return "uint32";
  case dtype::i64: return "int64";
  case dtype::u64: return "uint64";
  case dtype::f16: return "float16";
  case dtype::bf16: return "bfloat16";
  case dtype::f32: return "float32";
  case dtype::f64: return "float64";
  case dtype::c64: return "complex64";
  default: return to_string(t);
  }
}

/// Parses the dtype names mergekit accepts in `dtype:` / `out_dtype:` (float32, float16, bfloat16, plus
/// the common aliases fp32/fp16/bf16/float/half and float64).
[[nodiscard]] constexpr std::optional<dtype> parse_torch_dtype(std::string_view s) noexcept {
  if (s == "float32" || s == "fp32" || s == "float")
    return dtype::f32;
  if (s == "float16" || s == "fp16" || s == "half")
    return dtype::f16;
  if (s == "bfloat16" || s == "bf16")
    return dtype::bf16;
  if (s == "float64" || s == "fp64" || s == "double")
    return dtype::f64;
  return std::nullopt;
}

/// The dtype of a C++ storage type (float -> F32, fusekit::bf16 -> BF16, ...).
template <class T> inline constexpr dtype dtype_of = [] {
  using U = std::remove_cv_t<T>;
  if constexpr (std::is_same_v<U, float>) return dtype::f32;
  else if constexpr (std::is_same_v<U, double>) return dtype::f64;
  else if constexpr (std::is_same_v<U, fusekit::bf16>) return dtype::bf16;
  else if constexpr (std::is_same_v<U, fusekit::fp16>) return dtype::f16;
  else if constexpr (std::is_same_v<U, bool>) return dtype::boolean;
  else if constexpr (std::is_same_v<U, std::uint8_t>) return dtype::u8;
  else if constexpr (std::is_same_v<U, std::int8_t>) return dtype::i8;
  else if constexpr (std::is_same_v<U, std::int16_t>) return dtype::i16;
  else if constexpr (std::is_same_v<U, std::uint16_t>) return dtype::u16;
  else if constexpr (std::is_same_v<U, std::int32_t>) return dtype::i32;
  else if constexpr (std::is_same_v<U, std::uint32_t>) return dtype::u32;
  else if constexpr (std::is_same_v<U, std::int64_t>) return dtype::i64;
  else if constexpr (std::is_same_v<U, std::uint64_t>) return dtype::u64;
  else static_assert(sizeof(U) == 0, "fusekit::io::dtype_of: no safetensors dtype for this C++ type");
}();

} // namespace fusekit::io
