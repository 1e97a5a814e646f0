/// @file
/// @brief fusekit::error, its codes, and the argument-checking macros.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace fusekit {

/// Category of a runtime failure; every fusekit::error carries one.
enum class errc {
  invalid_argument, ///< a parameter is outside its domain (density, weights, ...)
  shape_mismatch,   ///< tensors that must agree in shape do not
  out_of_range,     ///< an index or id outside its container
  parse_error,      ///< malformed file content (JSON, YAML, safetensors header, ...)
  io_error,         ///< the operating system refused a read or a write
  unsupported,      ///< valid input that this build or method cannot handle (dtype, backend, ...)
  internal,         ///< a broken invariant inside fusekit (a bug)
};

/// Human-readable name of an error code ("shape_mismatch", ...).
[[nodiscard]] constexpr std::string_view to_string(errc code) noexcept {
  switch (code) {
  case errc::invalid_argument: return "invalid_argument";
  case errc::shape_mismatch: return "shape_mismatch";
  case errc::out_of_range: return "out_of_range";
  case errc::parse_error: return "parse_error";
  case errc::io_error: return "io_error";
  case errc::unsupported: return "unsupported";
  case errc::internal: return "internal";
  }
  return "unknown";
}

/// The one exception type fusekit throws. `what()` names the offending argument, tensor, file or field.
class error : public std::runtime_error {
public:
  error(errc code, const std::string& message) : std::runtime_error(message), code_(code) {}
  /// The failure category.
  [[nodiscard]] errc code() const noexcept { return code_; }

private:
  errc code_;
};

/// Throws fusekit::error(code, message). Kept out of line of the hot path by [[noreturn]] + cold.
[[noreturn]] [[gnu::cold]] inline void throw_error(errc code, std::string message) {
  throw error(code, message);
}

} // namespace fusekit

/// Checks a runtime precondition: if `cond` is false, throws fusekit::error(fusekit::errc::code, message).
/// `message` (std::string or const char*) is evaluated only when the check fails.
#define FUSEKIT_EXPECTS(cond, code, message)                                                       \
  do {                                                                                             \
    if (!(cond)) [[unlikely]]                                                                      \
      ::fusekit::throw_error(::fusekit::errc::code, std::string(message));                         \
  } while (false)
