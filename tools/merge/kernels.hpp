// Typed merge kernels of `fusekit merge`: one planned tensor, inputs viewed in place (rank 2: rows x
// row length, rows possibly cut for vocabularies), merged by name through fusekit's method registry.
// Instantiated per input element type in kernels_<type>.cpp so the 21 methods compile in parallel.
#pragma once

#include <cstdint>
#include <memory_resource>
#include <vector>

#include <fusekit/exec/policy.hpp>
#include <fusekit/io/merge_plan.hpp>
#include <fusekit/types/bf16.hpp>
#include <fusekit/types/fp16.hpp>

namespace fusekit_tool {

/// Merges planned tensor `tp`: `inputs[k]` points at the first element of tp.inputs[k]'s data (type In),
/// `base` at the base's (or nullptr), `out` receives rows x cols elements of Out, row-major. The method's large
/// scratch comes from `scratch` (the run's merge_workspace, so its pages are reused from tensor to tensor).
template <class In, class Out>
void merge_tensor(const fusekit::exec::parallel_policy& policy, const fusekit::method_spec& spec,
                  const fusekit::io::tensor_plan& tp, const std::vector<const In*>& inputs, const In* base, Out* out,
                  std::uint64_t seed, std::pmr::memory_resource* scratch);

#define FUSEKIT_TOOL_KERNELS(In)                                                                                   \
  extern template void merge_tensor<In, In>(const fusekit::exec::parallel_policy&, const fusekit::method_spec&,   \
                                            const fusekit::io::tensor_plan&, const std::vector<const In*>&,        \
                                            const In*, In*, std::uint64_t, std::pmr::memory_resource*);            \
  extern template void merge_tensor<In, float>(const fusekit::exec::parallel_policy&, const fusekit::method_spec&, \
                                               const fusekit::io::tensor_plan&, const std::vector<const In*>&,     \
                                               const In*, float*, std::uint64_t, std::pmr::memory_resource*);
FUSEKIT_TOOL_KERNELS(fusekit::bf16)
FUSEKIT_TOOL_KERNELS(fusekit::fp16)
#undef FUSEKIT_TOOL_KERNELS
extern template void merge_tensor<float, float>(const fusekit::exec::parallel_policy&, const fusekit::method_spec&,
                                                const fusekit::io::tensor_plan&, const std::vector<const float*>&,
                                                const float*, float*, std::uint64_t,
                                                std::pmr::memory_resource*);

} // namespace fusekit_tool
