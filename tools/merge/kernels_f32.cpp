// merge_tensor instantiation for f32 inputs (also used for mixed-dtype inputs, converted to f32).
#include "merge/kernels_impl.hpp"

namespace fusekit_tool {
template void merge_tensor<float, float>(const fusekit::exec::parallel_policy&, const fusekit::method_spec&,
                                         const fusekit::io::tensor_plan&, const std::vector<const float*>&, const float*,
                                         float*, std::uint64_t, std::pmr::memory_resource*);
} // namespace fusekit_tool
