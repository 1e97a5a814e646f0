// A user-defined merge method, in the user's own header and namespace: fusekit is not edited.
//
// `lab::median_merge` replaces each element by base + scale·median_i(x_i − base) (or the median of the
// inputs when there is no base): a robust alternative to the mean of task vectors.
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>
#include <string_view>

#include <fusekit/merge/elementwise.hpp>
#include <fusekit/merge/registry.hpp>

namespace lab {

struct median_merge {
  // 1. A name (the `merge_method:` string a config would use) and parameters as members with defaults.
  static constexpr std::string_view name = "median";
  float scale = 1.0f;

  // 2. The generic path: a per-element rule handed to fusekit::merge_elementwise, which does the blocking,
  //    the fp32 conversion of bf16/fp16/fp32 storage, the shape checks and the policy (seq, par, ...).
  template <class P, class Out, class Base, class In>
  void apply(const P& policy, const Out& out, const Base& base, std::span<const fusekit::merge_input<In>> inputs,
             const fusekit::merge_context& ctx) const {
    const float s = scale;
    fusekit::merge_elementwise(policy, out, base, inputs, ctx, name, [s](const fusekit::element_values& v) {
      float d[64];
      const std::size_t n = std::min<std::size_t>(v.size(), 64);
      for (std::size_t i = 0; i < n; ++i)
        d[i] = v[i] - v.base; // v.base is 0 without a base model
      std::sort(d, d + n);
      const float med = n % 2 ? d[n / 2] : 0.5f * (d[n / 2 - 1] + d[n / 2]);
      return v.base + s * med;
    }, 1, 64);
  }
};

} // namespace lab

// 3. Optional: make it selectable by name (CLI / YAML) with its parameters validated like the built-ins.
template <> struct fusekit::method_traits<lab::median_merge> {
  static constexpr fusekit::param_spec globals[] = {
      {"scale", fusekit::param_kind::number, false, 1.0, {}, {}, false, "multiplies the median task vector"}};
  static constexpr fusekit::method_spec spec() {
    return {"median", fusekit::base_policy::optional, 1, 64, globals, {}, "example: examples/custom_merge_method"};
  }
  static lab::median_merge make(const fusekit::merge_params& p) {
    return lab::median_merge{.scale = static_cast<float>(std::get<double>(p.at("scale")))};
  }
};
