#!/usr/bin/env bash
# Builds and runs the whole fusekit test suite: installs missing packages, builds every test, example,
# tool and benchmark (benchmarks run as smoke tests), runs ctest, then the ASan+UBSan configuration.
# Usage: scripts/test.sh            (from anywhere; build trees go to ./build-test and ./build-asan)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/deps.sh
jobs=${FUSEKIT_JOBS:-$(nproc)}
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/fusekit-ccache}
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root}  # cache hits across clones at other paths
export CTEST_OUTPUT_ON_FAILURE=1

echo "== fusekit: release build and full test suite"
cmake -S . -B build-test -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
      -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache >/dev/null
cmake --build build-test -j "$jobs"
(cd build-test && ctest -j "$jobs" --timeout 900)

if [ "${FUSEKIT_SKIP_SANITIZERS:-0}" != 1 ]; then
  echo "== fusekit: ASan+UBSan build and tests (labels cpu)"
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS="-O1" -DFUSEKIT_SANITIZE=ON \
        -DFUSEKIT_BUILD_BENCHMARKS=OFF -DFUSEKIT_BUILD_EXAMPLES=OFF -DFUSEKIT_HEADER_TESTS=OFF \
        -DFUSEKIT_ENABLE_CUDA=OFF -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
  cmake --build build-asan -j "$jobs"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest -j "$jobs" -L cpu --timeout 1800)
fi
