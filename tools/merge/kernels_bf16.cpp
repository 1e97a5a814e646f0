// merge_tensor instantiations for bf16 inputs.
#include "merge/kernels_impl.hpp"

namespace fusekit_tool {
template void merge_tensor<fusekit::bf16, fusekit::bf16>(const fusekit::exec::parallel_policy&, const fusekit::method_spec&,
                                   const fusekit::io::tensor_plan&, const std::vector<const fusekit::bf16*>&, const fusekit::bf16*, fusekit::bf16*,
                                   std::uint64_t, std::pmr::memory_resource*);
template void merge_tensor<fusekit::bf16, float>(const fusekit::exec::parallel_policy&, const fusekit::method_spec&,
                                      const fusekit::io::tensor_plan&, const std::vector<const fusekit::bf16*>&, const fusekit::bf16*, float*,
                                      std::uint64_t, std::pmr::memory_resource*);
} // namespace fusekit_tool
