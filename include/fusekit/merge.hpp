/// @file
/// @brief Umbrella header: every weight-merging method, the element-wise helper and the name-based registry.
#pragma once

#include <fusekit/merge/arcee_fusion.hpp>
#include <fusekit/merge/breadcrumbs.hpp>
#include <fusekit/merge/dare.hpp>
#include <fusekit/merge/della.hpp>
#include <fusekit/merge/elementwise.hpp>
#include <fusekit/merge/gta.hpp>
#include <fusekit/merge/karcher.hpp>
#include <fusekit/merge/linear.hpp>
#include <fusekit/merge/merge.hpp>
#include <fusekit/merge/model_stock.hpp>
#include <fusekit/merge/multislerp.hpp>
#include <fusekit/merge/nearswap.hpp>
#include <fusekit/merge/nuslerp.hpp>
#include <fusekit/merge/passthrough.hpp>
#include <fusekit/merge/ram.hpp>
#include <fusekit/merge/registry.hpp>
#include <fusekit/merge/sce.hpp>
#include <fusekit/merge/slerp.hpp>
#include <fusekit/merge/task_arithmetic.hpp>
#include <fusekit/merge/ties.hpp>
#include <fusekit/merge/varm.hpp>
#include <fusekit/merge/workspace.hpp>
