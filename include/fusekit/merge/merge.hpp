/// @file
/// @brief The merge customization point, its argument types, and the shared argument checks.
///
/// `fusekit::merge(policy, method, out, base, inputs, ctx)` merges one tensor:
///  - `method` is a value type with `static constexpr std::string_view name` and its parameters as
///    data members (`fusekit::ties{.lambda = 1.0f}`);
///  - `out` is a writable view, `base` a view of the base model's tensor (or fusekit::no_base),
///    `inputs` a span of merge_input (a view plus that model's per-model parameters);
///  - `ctx` names the tensor (for messages and as the random stream id) and carries the seed.
/// Dispatch: an overload of `tag_invoke(fusekit::merge_t, method, policy, out, base, inputs, ctx)` found
/// by ADL wins (user or backend overrides, e.g. the CUDA paths); otherwise the method's member
/// `apply(policy, out, base, inputs, ctx)` runs (the generic path, written on fusekit::exec primitives).
#pragma once

#include <cstdint>
#include <memory_resource>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <fusekit/core/error.hpp>
#include <fusekit/exec/policy.hpp>
#include <fusekit/view/as_view.hpp>
#include <fusekit/view/concepts.hpp>

namespace fusekit {

/// One model's tensor and its per-model ("tensor") parameters, as mergekit's `models[i].parameters`.
/// Methods read the fields they define and ignore the rest.
template <class View> struct merge_input {
  View tensor{};          ///< the model's tensor (same shape as the output)
  float weight = 1.0f;    ///< mergekit `weight`
  double density = 1.0;   ///< mergekit `density` (fraction kept by sparsifiers); double so k = floor(d·n) matches mergekit
  double gamma = 0.01;    ///< mergekit `gamma` (breadcrumbs: fraction of largest magnitudes dropped)
  double epsilon = 0.15;  ///< mergekit `epsilon` (della: keep-probability spread)
  float scale = 1.0f;     ///< mergekit `scale` (passthrough)
};

/// Per-tensor context of a merge call.
struct merge_context {
  std::string_view tensor_name = {}; ///< used in error messages and as the random stream id
  std::uint64_t seed = 0;            ///< seed of the counter-based generator (DARE/DELLA masks)
  /// Where the methods' large per-call scratch comes from (DARE/DELLA keep bits, top-k candidates); nullptr:
  /// operator new. Pass a fusekit::merge_workspace (merge/workspace.hpp) kept across the calls of a job so
  /// that those blocks are reused instead of faulted in afresh every call. Must be thread-safe when the
  /// policy runs several workers. Never changes a result.
  std::pmr::memory_resource* scratch = nullptr;
};

/// Tag passed as `base` when a method runs without a base model.
struct no_base_t {
  explicit constexpr no_base_t() = default;
};
/// The "no base model" value.
inline constexpr no_base_t no_base{};

/// The function object type of fusekit::merge; also the tag type of its tag_invoke customization.
struct merge_t {
  template <class Policy, class Method, class Out, class Base, class In>
  void operator()(const Policy& policy, const Method& method, Out&& out, Base&& base,
                  std::span<const merge_input<In>> inputs, const merge_context& ctx = {}) const {
    auto o = as_view(out);
    auto b = [&] {
      if constexpr (std::is_same_v<std::remove_cvref_t<Base>, no_base_t>)
        return no_base;
      else
        return as_view(base);
    }();
    if constexpr (requires { tag_invoke(*this, method, policy, o, b, inputs, ctx); }) {
      tag_invoke(*this, method, policy, o, b, inputs, ctx);
    } else if constexpr (requires { method.apply(policy, o, b, inputs, ctx); }) {
      method.apply(policy, o, b, inputs, ctx);
    } else {
      static_assert(sizeof(Method) == 0,
                    "fusekit::merge: this method has no generic `apply(policy, out, base, inputs, ctx)` member and "
                    "no tag_invoke(fusekit::merge_t, ...) overload for these argument types (check the policy's "
                    "memory space and the view types).");
    }
  }
  /// Convenience: inputs given as any contiguous range of merge_input.
  template <class Policy, class Method, class Out, class Base, class Range>
    requires requires(const Range& r) { std::span(r); }
  void operator()(const Policy& policy, const Method& method, Out&& out, Base&& base, const Range& inputs,
                  const merge_context& ctx = {}) const {
    // Always a dynamic-extent span: a fixed-extent one (from std::array) would select this overload again.
    using input_type = typename decltype(std::span(inputs))::element_type;
    (*this)(policy, method, std::forward<Out>(out), std::forward<Base>(base),
            std::span<input_type>(std::data(inputs), std::size(inputs)), ctx);
  }
};

/// Merges one tensor. See the file comment.
inline constexpr merge_t merge{};

/// A merge method type: names itself (the mergekit `merge_method:` string).
template <class M>
concept merge_method = requires {
  { M::name } -> std::convertible_to<std::string_view>;
};

namespace detail {

/// "<method> on tensor '<name>'" for messages.
inline std::string merge_where(std::string_view method, const merge_context& ctx) {
  std::string s(method);
  if (!ctx.tensor_name.empty()) {
    s += " on tensor '";
    s += ctx.tensor_name;
    s += '\'';
  }
  return s;
}

template <class A, class B> bool same_shape(const A& a, const B& b) noexcept {
  if constexpr (A::rank() != B::rank()) {
    return false;
  } else {
    for (std::size_t d = 0; d < A::rank(); ++d)
      if (a.extent(d) != b.extent(d))
        return false;
    return true;
  }
}

template <class V> std::string shape_string(const V& v) {
  std::string s = "[";
  for (std::size_t d = 0; d < V::rank(); ++d) {
    if (d)
      s += ", ";
    s += std::to_string(v.extent(d));
  }
  return s + "]";
}

/// Shape and count checks shared by the methods; every failure names method, tensor and model index.
template <class Out, class Base, class In>
void check_merge_args(std::string_view method, const Out& out, const Base& base,
                      std::span<const merge_input<In>> inputs, const merge_context& ctx, bool base_required,
                      std::size_t min_inputs, std::size_t max_inputs = static_cast<std::size_t>(-1)) {
  const std::string where = merge_where(method, ctx);
  for (std::size_t d = 0; d < Out::rank(); ++d)
    FUSEKIT_EXPECTS(out.stride(d) != 0 || out.extent(d) <= 1, invalid_argument,
                    where + ": the output has stride 0 in dimension " + std::to_string(d) +
                        " (a broadcast view); it cannot be written");
  constexpr bool has_base = !std::is_same_v<std::remove_cvref_t<Base>, no_base_t>;
  if constexpr (!has_base) {
    FUSEKIT_EXPECTS(!base_required, invalid_argument, where + ": a base model is required");
  } else {
    FUSEKIT_EXPECTS(!base_required || base.data() != nullptr || base.size() == 0, invalid_argument,
                    where + ": a base model is required");
    FUSEKIT_EXPECTS(same_shape(base, out), shape_mismatch,
                    where + ": base shape " + shape_string(base) + " differs from output shape " + shape_string(out));
  }
  FUSEKIT_EXPECTS(inputs.size() >= min_inputs, invalid_argument,
                  where + ": needs at least " + std::to_string(min_inputs) + " input model(s), got " +
                      std::to_string(inputs.size()));
  FUSEKIT_EXPECTS(inputs.size() <= max_inputs, invalid_argument,
                  where + ": accepts at most " + std::to_string(max_inputs) + " input model(s), got " +
                      std::to_string(inputs.size()));
  for (std::size_t i = 0; i < inputs.size(); ++i)
    FUSEKIT_EXPECTS(same_shape(inputs[i].tensor, out), shape_mismatch,
                    where + ": model " + std::to_string(i) + " has shape " + shape_string(inputs[i].tensor) +
                        ", output has " + shape_string(out));
}

} // namespace detail
} // namespace fusekit
