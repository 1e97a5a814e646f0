#!/usr/bin/env bash
# The README's main job: install what is missing, build, and merge the bundled checkpoints.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/deps.sh
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/fusekit-ccache}
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root}  # cache hits across clones at other paths
cmake -S . -B build-quickstart -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
      -DFUSEKIT_BUILD_TESTS=OFF -DFUSEKIT_BUILD_BENCHMARKS=OFF -DFUSEKIT_ENABLE_CUDA=OFF >/dev/null
cmake --build build-quickstart -j "$(nproc)" --target fusekit_example_merge_tensors
./build-quickstart/examples/quickstart/fusekit_example_merge_tensors
