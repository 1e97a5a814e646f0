#!/usr/bin/env bash
# golden_merge.sh FUSEKIT COMPARE CONFIG GOLDEN OUT_DIR [extra merge args]
# Runs `fusekit merge CONFIG OUT_DIR` (cwd holds demo/) and compares the result element-wise with the
# NumPy golden file (tests/tools/golden/make_numpy_golden.py).
set -euo pipefail
fk=$1; cmp=$2; cfg=$3; golden=$4; out=$5; shift 5
rm -rf "$out"
"$fk" merge "$cfg" "$out" --quiet "$@"
"$cmp" "$out" "$golden" 1e-5 1e-7
