#!/usr/bin/env bash
# The README's main job: install what is missing, build the fusekit tool, write the bundled demo
# checkpoints (a Llama-shaped bf16 base and three fine-tunes), merge them with a TIES config and print
# a report (examples/checkpoint_merge/run.sh does the last three steps).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/deps.sh
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/fusekit-ccache}
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root}  # cache hits across clones at other paths
exec bash examples/checkpoint_merge/run.sh "$@"
