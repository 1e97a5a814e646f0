// Definition of merge_tensor (included by kernels_<type>.cpp only).
#pragma once

#include <array>
#include <span>

#include <fusekit/merge/registry.hpp>
#include <fusekit/view/strided_view.hpp>

#include "merge/kernels.hpp"

namespace fusekit_tool {

template <class In, class Out>
void merge_tensor(const fusekit::exec::parallel_policy& policy, const fusekit::method_spec& spec,
                  const fusekit::io::tensor_plan& tp, const std::vector<const In*>& inputs, const In* base, Out* out,
                  std::uint64_t seed, std::pmr::memory_resource* scratch) {
  using view = fusekit::strided_view<const In, 2>;
  auto make_view = [](const In* p, const fusekit::io::plan_input& pi) {
    return view{p, {pi.rows, pi.cols}, {pi.row_stride, 1}};
  };
  std::vector<fusekit::merge_input<view>> ins(inputs.size());
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    ins[k].tensor = make_view(inputs[k], tp.inputs[k]);
    fusekit::apply_model_params(spec, tp.inputs[k].params, ins[k], k);
  }
  const std::int64_t rows = tp.inputs.empty() ? 1 : tp.inputs[0].rows;
  const std::int64_t cols = tp.inputs.empty() ? 1 : tp.inputs[0].cols;
  auto o = fusekit::host_view(out, std::array<std::int64_t, 2>{rows, cols});
  const fusekit::merge_context ctx{.tensor_name = tp.name, .seed = seed, .scratch = scratch};
  const std::span<const fusekit::merge_input<view>> span(ins);
  if (base != nullptr)
    fusekit::merge_by_name(policy, spec.name, tp.globals, o, make_view(base, *tp.base), span, ctx);
  else
    fusekit::merge_by_name(policy, spec.name, tp.globals, o, fusekit::no_base, span, ctx);
}

} // namespace fusekit_tool
