/// @file
/// @brief Umbrella header: everything host-side in fusekit. Never includes CUDA (that is <fusekit/cuda.cuh>)
/// nor the opt-in adaptors for third-party containers (<fusekit/adapt/eigen.hpp>, xtensor.hpp, thrust.hpp).
///
/// The checkpoint and data-file readers need nlohmann_json (and the merge-config parser yaml-cpp); they are
/// included when those headers are on the include path. Link `nlohmann_json::nlohmann_json` / `yaml-cpp` when
/// you use them. tests/headers checks that every public header is reachable from here.
#pragma once

// core: configuration, errors, element types, views, policies and primitives, random numbers
#include <fusekit/adapt/span.hpp>
#include <fusekit/core/config.hpp>
#include <fusekit/core/error.hpp>
#include <fusekit/exec/policy.hpp>
#include <fusekit/exec/primitives.hpp>
#include <fusekit/exec/select.hpp>
#include <fusekit/rng/philox.hpp>
#include <fusekit/types/bf16.hpp>
#include <fusekit/types/element.hpp>
#include <fusekit/types/fp16.hpp>
#include <fusekit/view/as_view.hpp>
#include <fusekit/view/concepts.hpp>
#include <fusekit/view/memory_space.hpp>
#include <fusekit/view/strided_view.hpp>

// weight merging (every method, the element-wise helper, the registry)
#include <fusekit/merge.hpp>

// vocabulary and token alignment
#include <fusekit/vocab/alignment_matrix.hpp>
#include <fusekit/vocab/dtw.hpp>
#include <fusekit/vocab/edit_distance.hpp>
#include <fusekit/vocab/token_cost.hpp>
#include <fusekit/vocab/utf8.hpp>
#include <fusekit/vocab/vocab_mapping.hpp>
#include <fusekit/vocab/vocabulary.hpp>

// distribution alignment and fusion
#include <fusekit/dist/align_distribution.hpp>
#include <fusekit/dist/fusion.hpp>
#include <fusekit/dist/sparse_target.hpp>

// training losses and preference data
#include <fusekit/loss/fusion.hpp>
#include <fusekit/loss/logprob.hpp>
#include <fusekit/loss/numerics.hpp>
#include <fusekit/loss/preference.hpp>
#include <fusekit/loss/preference_batch.hpp>
#include <fusekit/prefs/build.hpp>

// checkpoint I/O and dtypes
#include <fusekit/io/dtype.hpp>
#include <fusekit/io/mapped_file.hpp>

#if __has_include(<nlohmann/json.hpp>)
#include <fusekit/io/checkpoint.hpp>
#include <fusekit/io/safetensors.hpp>
#include <fusekit/io/safetensors_writer.hpp>
#include <fusekit/prefs/jsonl.hpp>
#include <fusekit/vocab/hf_tokenizer.hpp>
#include <fusekit/vocab/token_ids_jsonl.hpp>
#endif

#if __has_include(<nlohmann/json.hpp>) && __has_include(<yaml-cpp/yaml.h>)
#include <fusekit/io/merge_config.hpp>
#include <fusekit/io/merge_plan.hpp>
#endif
