// merge_tensor instantiations for fp16 inputs.
#include "merge/kernels_impl.hpp"

namespace fusekit_tool {
template void merge_tensor<fusekit::fp16, fusekit::fp16>(const fusekit::exec::parallel_policy&, const fusekit::method_spec&,
                                   const fusekit::io::tensor_plan&, const std::vector<const fusekit::fp16*>&, const fusekit::fp16*, fusekit::fp16*,
                                   std::uint64_t, std::pmr::memory_resource*);
template void merge_tensor<fusekit::fp16, float>(const fusekit::exec::parallel_policy&, const fusekit::method_spec&,
                                      const fusekit::io::tensor_plan&, const std::vector<const fusekit::fp16*>&, const fusekit::fp16*, float*,
                                      std::uint64_t, std::pmr::memory_resource*);
} // namespace fusekit_tool
