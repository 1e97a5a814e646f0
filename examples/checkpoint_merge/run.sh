#!/usr/bin/env bash
# The README's main job: build the fusekit tool, write the bundled demo checkpoints (a Llama-shaped bf16
# base and three fine-tunes: one sharded, one with tied embeddings), merge them with TIES
# (examples/checkpoint_merge/ties.yml: per-layer gradient, a {filter, value} list) and print a report.
# Usage: bash examples/checkpoint_merge/run.sh [WORK_DIR]   (default: ./build-quickstart/checkpoint_merge)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${FUSEKIT_BUILD_DIR:-$root/build-quickstart}
work=${1:-$build/checkpoint_merge}
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/fusekit-ccache}
launcher=""
command -v ccache >/dev/null && launcher="-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"
if [ -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" >/dev/null   # keep the options of an existing build folder
else
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release $launcher -DFUSEKIT_BUILD_TESTS=OFF \
        -DFUSEKIT_BUILD_BENCHMARKS=OFF -DFUSEKIT_ENABLE_CUDA=OFF >/dev/null
fi
cmake --build "$build" -j "$(nproc)" --target fusekit_tool
fk=$build/bin/fusekit
mkdir -p "$work"
cd "$work"
echo "== 1. demo checkpoints ($work/demo)"
"$fk" demo-checkpoints demo --models base,math,code,chat --allow-overwrite
echo "== 2. plan (fusekit merge --dry-run), first tensors"
"$fk" merge "$root/examples/checkpoint_merge/ties.yml" merged --dry-run > plan.txt  # whole plan in plan.txt
head -12 plan.txt
echo "== 3. merge"
rm -rf merged
"$fk" merge "$root/examples/checkpoint_merge/ties.yml" merged
echo "== 4. report"
"$fk" inspect merged --base demo/base --models demo/math,demo/code,demo/chat
