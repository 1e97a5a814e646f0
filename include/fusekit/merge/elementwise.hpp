/// @file
/// @brief Helper for element-wise merge methods: write the per-element rule, get a blocked, policy-generic
/// merge (seq, par, any host policy) with fp32 compute for every storage type.
///
/// A custom method only needs a `static constexpr std::string_view name`, its parameters as members and an
/// `apply` that forwards to fusekit::merge_elementwise with a rule:
/// @code
/// struct median_merge {
///   static constexpr std::string_view name = "median";
///   template <class P, class Out, class Base, class In>
///   void apply(const P& p, const Out& out, const Base& base, std::span<const fusekit::merge_input<In>> in,
///              const fusekit::merge_context& ctx) const {
///     fusekit::merge_elementwise(p, out, base, in, ctx, name, [](const fusekit::element_values& v) { ... });
///   }
/// };
/// @endcode
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>

#include <fusekit/exec/policy.hpp>
#include <fusekit/merge/detail/kernels.hpp>
#include <fusekit/merge/merge.hpp>

namespace fusekit {

/// What an element-wise rule sees for one element: the N input values (fp32), their per-model weights, and
/// the base value (0 and has_base = false without a base).
struct element_values {
  const float* values = nullptr;  ///< x_0..x_{N-1} at this element
  const float* weights = nullptr; ///< merge_input::weight of each model
  std::size_t count = 0;          ///< N
  float base = 0.0f;              ///< base value at this element
  bool has_base = false;          ///< whether a base model was given
  std::int64_t index = 0;         ///< row-major linear index of the element (for counter-based randomness)
  /// x_i at this element.
  [[nodiscard]] float operator[](std::size_t i) const noexcept { return values[i]; }
  /// Number of inputs.
  [[nodiscard]] std::size_t size() const noexcept { return count; }
};

/// Merges one tensor with a per-element rule `float rule(const element_values&)`, which must be safe to call
/// concurrently. Checks shapes (naming `method` and the tensor), then visits the elements in blocks.
/// `min_inputs`/`max_inputs` bound the number of inputs; `base_required` demands a base.
template <class P, class Out, class Base, class In, class Rule>
void merge_elementwise(const P& policy, const Out& out, const Base& base, std::span<const merge_input<In>> inputs,
                       const merge_context& ctx, std::string_view method, Rule&& rule, std::size_t min_inputs = 1,
                       std::size_t max_inputs = static_cast<std::size_t>(-1), bool base_required = false) {
  constexpr bool has_base = !std::is_same_v<Base, no_base_t>;
  if constexpr (has_base)
    exec::check_runs_on<P, Out, Base, In>();
  else
    exec::check_runs_on<P, Out, In>();
  detail::check_merge_args(method, out, base, inputs, ctx, base_required, min_inputs, max_inputs);
  const std::size_t N = inputs.size();
  const std::int64_t n = out.size();
  const detail::input_set<In> in(inputs);
  const detail::view_io<Out> o_io(out);
  std::vector<float> weights(N);
  for (std::size_t i = 0; i < N; ++i)
    weights[i] = inputs[i].weight;
  const std::int64_t blk = detail::multi_block_size(N);
  const std::size_t sf = static_cast<std::size_t>(blk) * (2 * N + 2);
  detail::for_each_block_scratch(policy, n, blk, sf, [&](std::int64_t, std::int64_t b, std::int64_t e, float* s) {
    const std::int64_t len = e - b;
    float* bb = s;
    float* res = s + blk;
    float* x = s + 2 * blk;                              // N rows of blk
    float* col = x + N * static_cast<std::size_t>(blk); // element-major copy
    if constexpr (has_base)
      detail::view_io<Base>(base).load(b, len, bb);
    for (std::size_t i = 0; i < N; ++i)
      in.load(i, b, len, x + i * static_cast<std::size_t>(blk));
    for (std::int64_t j = 0; j < len; ++j)
      for (std::size_t i = 0; i < N; ++i)
        col[static_cast<std::size_t>(j) * N + i] = x[i * static_cast<std::size_t>(blk) + static_cast<std::size_t>(j)];
    for (std::int64_t j = 0; j < len; ++j) {
      element_values v;
      v.values = col + static_cast<std::size_t>(j) * N;
      v.weights = weights.data();
      v.count = N;
      v.base = has_base ? bb[j] : 0.0f;
      v.has_base = has_base;
      v.index = b + j;
      res[j] = static_cast<float>(rule(static_cast<const element_values&>(v)));
    }
    o_io.store(b, len, res);
  });
}

} // namespace fusekit
