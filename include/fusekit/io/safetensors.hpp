/// @file
/// @brief safetensors reading: a strict header parser (usable on any byte buffer, e.g. by a fuzzer) and
/// safetensors_file, a memory-mapped file exposing each tensor as a view without copying.
///
/// Layout (huggingface/safetensors): 8-byte little-endian header length N, N bytes of UTF-8 JSON
/// (`{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}`), then
/// the data buffer; offsets are relative to the buffer start (file offset 8 + N).
/// Validation (every rule is an error naming the file and, where there is one, the tensor):
///  - the file holds at least the 8-byte length; N <= 100,000,000; 8 + N <= file size;
///  - the header is valid UTF-8 JSON (trailing spaces allowed), an object, with no duplicate keys;
///  - `__metadata__`, if present, maps strings to strings;
///  - every tensor entry has exactly `dtype` (a known name), `shape` (non-negative integers) and
///    `data_offsets` (two integers, begin <= end);
///  - `end - begin` equals numel x element bits / 8 (a whole number of bytes);
///  - sorted by offset, the tensors tile the data buffer from 0 with no gap and no overlap, and the
///    last end equals the buffer length (no trailing bytes, no truncation).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include <fusekit/core/error.hpp>
#include <fusekit/io/dtype.hpp>
#include <fusekit/io/mapped_file.hpp>
#include <fusekit/view/strided_view.hpp>

namespace fusekit::io {

/// Largest header the reference implementation accepts.
inline constexpr std::uint64_t max_header_bytes = 100'000'000;

/// One tensor of a safetensors header.
struct tensor_info {
  std::string name;                 ///< tensor name ("model.layers.0.mlp.up_proj.weight")
  dtype type = dtype::f32;          ///< element type
  std::vector<std::int64_t> shape;  ///< extents; empty = scalar
  std::uint64_t begin = 0;          ///< first byte, relative to the data buffer
  std::uint64_t end = 0;            ///< one past the last byte, relative to the data buffer

  /// Number of elements (1 for a scalar).
  [[nodiscard]] std::int64_t numel() const noexcept {
    std::int64_t n = 1;
    for (auto e : shape)
      n *= e;
    return n;
  }
  /// Size of the data in bytes.
  [[nodiscard]] std::uint64_t nbytes() const noexcept { return end - begin; }
};

/// "[2, 3]" for messages.
inline std::string shape_to_string(std::span<const std::int64_t> shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i)
      s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

/// A parsed and validated safetensors header.
struct safetensors_header {
  std::uint64_t header_length = 0;                 ///< N, the JSON length in bytes
  std::vector<tensor_info> tensors;                ///< sorted by data offset (the file order)
  std::map<std::string, std::string> metadata;     ///< `__metadata__`
  std::unordered_map<std::string, std::size_t> index; ///< name -> position in `tensors`

  /// File offset of the data buffer (8 + N).
  [[nodiscard]] std::uint64_t data_offset() const noexcept { return 8 + header_length; }
  /// The tensor called `name`, or nullptr.
  [[nodiscard]] const tensor_info* find(std::string_view name) const {
    auto it = index.find(std::string(name));
    return it == index.end() ? nullptr : &tensors[it->second];
  }
};

namespace detail {

[[noreturn]] inline void header_error(std::string_view file, std::string_view tensor, const std::string& what) {
  std::string msg(file);
  msg += ": ";
  if (!tensor.empty()) {
    msg += "tensor '";
    msg += tensor;
    msg += "': ";
  }
  msg += what;
  throw_error(errc::parse_error, std::move(msg));
}

inline std::uint64_t read_le64(const std::byte* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | static_cast<std::uint8_t>(p[i]);
  return v;
}

/// Parses JSON rejecting duplicate keys in any object (nlohmann keeps the last one silently).
inline nlohmann::json parse_json_strict(std::string_view text, std::string_view file, std::string_view what) {
  std::vector<std::vector<std::string>> keys; // keys seen per open object (small objects: linear scan)
  std::string duplicate;
  nlohmann::json::parser_callback_t cb = [&](int, nlohmann::json::parse_event_t ev, nlohmann::json& j) {
    using E = nlohmann::json::parse_event_t;
    if (ev == E::object_start) {
      keys.emplace_back();
    } else if (ev == E::object_end) {
      if (!keys.empty())
        keys.pop_back();
    } else if (ev == E::key && !keys.empty() && duplicate.empty()) {
      const std::string& k = j.get_ref<const std::string&>();
      auto& seen = keys.back();
      if (keys.size() == 1) {
        // Top level: may hold many thousands of tensors; keep it sorted for O(log n) look-ups.
        auto it = std::lower_bound(seen.begin(), seen.end(), k);
        if (it != seen.end() && *it == k)
          duplicate = k;
        else
          seen.insert(it, k);
      } else {
        if (std::find(seen.begin(), seen.end(), k) != seen.end())
          duplicate = k;
        else
          seen.push_back(k);
      }
    }
    return true;
  };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const nlohmann::json::exception& e) {
    header_error(file, {}, std::string(what) + " is not valid JSON: " + e.what());
  }
  if (!duplicate.empty())
    header_error(file, {}, std::string(what) + " has the key '" + duplicate + "' more than once");
  return j;
}

inline std::uint64_t json_u64(const nlohmann::json& v, std::string_view file, std::string_view tensor,
                              std::string_view field) {
  if (v.is_number_unsigned())
    return v.get<std::uint64_t>();
  if (v.is_number_integer() && v.get<std::int64_t>() >= 0)
    return static_cast<std::uint64_t>(v.get<std::int64_t>());
  header_error(file, tensor, std::string(field) + " must hold non-negative integers, got " + v.dump());
}

} // namespace detail

/// Parses and validates the header of a safetensors file whose complete contents are `file`.
/// `file_label` names the file in error messages. Throws fusekit::error(parse_error) on any violation.
inline safetensors_header parse_safetensors(std::span<const std::byte> file, std::string_view file_label) {
  using detail::header_error;
  safetensors_header h;
  const std::uint64_t size = file.size();
  if (size < 8)
    header_error(file_label, {}, "truncated: " + std::to_string(size) +
                                     " bytes, a safetensors file starts with an 8-byte header length");
  const std::uint64_t n = detail::read_le64(file.data());
  if (n > max_header_bytes)
    header_error(file_label, {}, "header length " + std::to_string(n) + " exceeds the limit of " +
                                     std::to_string(max_header_bytes) + " bytes (not a safetensors file?)");
  if (n > size - 8)
    header_error(file_label, {}, "header length " + std::to_string(n) + " runs past the end of the file (" +
                                     std::to_string(size) + " bytes): truncated or not a safetensors file");
  if (n < 2)
    header_error(file_label, {}, "header length " + std::to_string(n) + " is too short for a JSON object");
  h.header_length = n;
  const std::string_view text(reinterpret_cast<const char*>(file.data() + 8), static_cast<std::size_t>(n));
  const nlohmann::json j = detail::parse_json_strict(text, file_label, "header");
  if (!j.is_object())
    header_error(file_label, {}, "header must be a JSON object, got " + std::string(j.type_name()));

  h.tensors.reserve(j.size());
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object())
        header_error(file_label, {}, "__metadata__ must be an object of strings, got " + std::string(v.type_name()));
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          header_error(file_label, {}, "__metadata__ value for '" + m.key() + "' must be a string, got " +
                                           m.value().dump());
        h.metadata.emplace(m.key(), m.value().get<std::string>());
      }
      continue;
    }
    if (!v.is_object())
      header_error(file_label, name, "entry must be an object {dtype, shape, data_offsets}, got " + v.dump());
    for (auto f = v.begin(); f != v.end(); ++f)
      if (f.key() != "dtype" && f.key() != "shape" && f.key() != "data_offsets")
        header_error(file_label, name, "unknown field '" + f.key() + "' (expected dtype, shape, data_offsets)");
    tensor_info t;
    t.name = name;
    // dtype
    auto d = v.find("dtype");
    if (d == v.end() || !d->is_string())
      header_error(file_label, name, "missing or non-string 'dtype'");
    const auto parsed = parse_dtype(d->get_ref<const std::string&>());
    if (!parsed)
      header_error(file_label, name, "unknown dtype '" + d->get<std::string>() + "'");
    t.type = *parsed;
    // shape
    auto s = v.find("shape");
    if (s == v.end() || !s->is_array())
      header_error(file_label, name, "missing or non-array 'shape'");
    std::uint64_t numel = 1;
    bool overflow = false;
    for (const auto& e : *s) {
      const std::uint64_t x = detail::json_u64(e, file_label, name, "shape");
      if (x > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        header_error(file_label, name, "shape extent " + std::to_string(x) + " is too large");
      t.shape.push_back(static_cast<std::int64_t>(x));
      if (x != 0 && numel > std::numeric_limits<std::uint64_t>::max() / 8 / x)
        overflow = true;
      numel *= x;
    }
    // data_offsets
    auto o = v.find("data_offsets");
    if (o == v.end() || !o->is_array() || o->size() != 2)
      header_error(file_label, name, "'data_offsets' must be an array [begin, end]");
    t.begin = detail::json_u64((*o)[0], file_label, name, "data_offsets");
    t.end = detail::json_u64((*o)[1], file_label, name, "data_offsets");
    if (t.end < t.begin)
      header_error(file_label, name, "data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                                         "] end before begin");
    const bool has_zero = std::find(t.shape.begin(), t.shape.end(), 0) != t.shape.end();
    if (overflow && !has_zero)
      header_error(file_label, name, "shape " + shape_to_string(t.shape) + " has too many elements");
    if (has_zero)
      numel = 0;
    const std::uint64_t bits = numel * bit_size(t.type);
    if (bits % 8 != 0)
      header_error(file_label, name, "shape " + shape_to_string(t.shape) + " of " + std::string(to_string(t.type)) +
                                         " is not a whole number of bytes");
    if (t.end - t.begin != bits / 8)
      header_error(file_label, name, "data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                                         "] hold " + std::to_string(t.end - t.begin) + " bytes, but shape " +
                                         shape_to_string(t.shape) + " of " + std::string(to_string(t.type)) +
                                         " needs " + std::to_string(bits / 8));
    h.tensors.push_back(std::move(t));
  }

  std::stable_sort(h.tensors.begin(), h.tensors.end(), [](const tensor_info& a, const tensor_info& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const std::uint64_t buffer = size - 8 - n;
  std::uint64_t pos = 0;
  const tensor_info* prev = nullptr;
  for (const auto& t : h.tensors) {
    if (t.begin > pos)
      header_error(file_label, t.name,
                   "gap in the data buffer: bytes [" + std::to_string(pos) + ", " + std::to_string(t.begin) +
                       ") belong to no tensor" + (prev ? " (after tensor '" + prev->name + "')" : std::string()));
    if (t.begin < pos)
      header_error(file_label, t.name,
                   "data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                       "] overlap tensor '" + prev->name + "' (which ends at " + std::to_string(pos) + ")");
    if (t.end > buffer)
      header_error(file_label, t.name,
                   "data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                       "] run past the end of the file (data buffer holds " + std::to_string(buffer) +
                       " bytes): truncated file?");
    pos = t.end;
    prev = &t;
  }
  if (pos != buffer)
    header_error(file_label, {}, std::to_string(buffer - pos) + " trailing bytes after the last tensor" +
                                     (prev ? " ('" + prev->name + "', ending at " + std::to_string(pos) + ")"
                                           : std::string(" (the header lists no tensor)")));
  h.index.reserve(h.tensors.size());
  for (std::size_t i = 0; i < h.tensors.size(); ++i)
    h.index.emplace(h.tensors[i].name, i);
  return h;
}

/// A memory-mapped, validated safetensors file. Tensors are exposed as byte spans or typed views
/// into the mapping (no copy). Move-only.
class safetensors_file {
public:
  safetensors_file() = default;

  /// Maps and validates `path`.
  explicit safetensors_file(const std::filesystem::path& path) : map_(path) {
    header_ = parse_safetensors(map_.bytes(), path.string());
  }

  /// The file's path.
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return map_.path(); }
  /// The validated header.
  [[nodiscard]] const safetensors_header& header() const noexcept { return header_; }
  /// The tensors in file (offset) order.
  [[nodiscard]] const std::vector<tensor_info>& tensors() const noexcept { return header_.tensors; }
  /// The tensor called `name`, or nullptr.
  [[nodiscard]] const tensor_info* find(std::string_view name) const { return header_.find(name); }
  /// The tensor called `name`; throws out_of_range naming the file if absent.
  [[nodiscard]] const tensor_info& at(std::string_view name) const {
    const tensor_info* t = find(name);
    if (t == nullptr)
      throw_error(errc::out_of_range, path().string() + ": no tensor '" + std::string(name) + "'");
    return *t;
  }

  /// The raw little-endian bytes of `t` (which must come from this file's header).
  [[nodiscard]] std::span<const std::byte> bytes(const tensor_info& t) const noexcept {
    return map_.bytes().subspan(static_cast<std::size_t>(header_.data_offset() + t.begin),
                                static_cast<std::size_t>(t.nbytes()));
  }

  /// A rank-R row-major view of tensor `name` with element type T, pointing into the mapping.
  /// Throws if the dtype differs from T, the rank differs from R (a scalar is viewed as rank 1, [1]),
  /// or the data is not aligned for T (files from writers that do not pad their header).
  template <class T, std::size_t R> [[nodiscard]] strided_view<const T, R> view(std::string_view name) const {
    const tensor_info& t = at(name);
    if (t.type != dtype_of<T>)
      throw_error(errc::invalid_argument, path().string() + ": tensor '" + t.name + "' is " +
                                              std::string(to_string(t.type)) + ", requested " +
                                              std::string(to_string(dtype_of<T>)));
    std::array<std::int64_t, R> ext{};
    if (t.shape.empty() && R == 1) {
      ext[0] = 1;
    } else {
      if (t.shape.size() != R)
        throw_error(errc::shape_mismatch, path().string() + ": tensor '" + t.name + "' has rank " +
                                              std::to_string(t.shape.size()) + " (shape " + shape_to_string(t.shape) +
                                              "), requested rank " + std::to_string(R));
      std::copy(t.shape.begin(), t.shape.end(), ext.begin());
    }
    const std::byte* p = bytes(t).data();
    if (reinterpret_cast<std::uintptr_t>(p) % alignof(T) != 0)
      throw_error(errc::unsupported, path().string() + ": tensor '" + t.name + "' is not aligned to " +
                                         std::to_string(alignof(T)) + " bytes in the file; copy its bytes() instead");
    return host_view(reinterpret_cast<const T*>(p), ext);
  }

  /// Hints the kernel to read tensor `t` ahead.
  void prefetch(const tensor_info& t) const noexcept { map_.prefetch(header_.data_offset() + t.begin, t.nbytes()); }
  /// Drops tensor `t`'s pages from the resident set (they stay in the page cache).
  void release(const tensor_info& t) const noexcept { map_.release(header_.data_offset() + t.begin, t.nbytes()); }

private:
  mapped_file map_;
  safetensors_header header_;
};

} // namespace fusekit::io
