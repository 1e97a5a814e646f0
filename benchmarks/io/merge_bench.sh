#!/usr/bin/env bash
# merge_bench.sh [FUSEKIT] [WORK_DIR] [THREADS]
# End-to-end `fusekit merge` benchmark on a multi-GB bf16 checkpoint set: 3 models of TinyLlama-1.1B's
# shape, 2.2 GB each (base and two dense fine-tunes, one in shards), TIES over all tensors. Measures wall time and peak RSS
# (/usr/bin/time -v) of the merge and, as the physical bound, reading the same input files from the page
# cache (`cat > /dev/null`, after a warm-up read). Deletes the multi-GB files at the end.
# Defaults: FUSEKIT=build-test/bin/fusekit, WORK_DIR=/tmp/fusekit-merge-bench, THREADS=2.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
fk=${1:-$root/build-test/bin/fusekit}
work=${2:-/tmp/fusekit-merge-bench}
threads=${3:-2}
[ -x "$fk" ] || { echo "merge_bench: $fk not found (build the fusekit_tool target)"; exit 1; }
rm -rf "$work"; mkdir -p "$work"; cd "$work"
trap 'rm -rf "$work/demo" "$work/out" "$work/out_mk"' EXIT   # the multi-GB files never outlive the run

echo "== generating 3 x ~2 GB bf16 checkpoints"
/usr/bin/time -f "generate: %e s" "$fk" demo-checkpoints demo --preset bench --dense --models base,math,code >/dev/null
cat > ties.yml <<'YML'
merge_method: ties
base_model: demo/base
models:
  - model: demo/math
    parameters: {weight: 0.5, density: 0.4}
  - model: demo/code
    parameters: {weight: 0.5, density: 0.4}
parameters: {normalize: true}
YML
in_bytes=$(find demo -name '*.safetensors' -printf '%s\n' | awk '{s+=$1} END {printf "%.0f", s}')
sync
echo "== page-cache read bound (cat > /dev/null, warm)"
cat demo/*/*.safetensors >/dev/null
t0=$(date +%s.%N); cat demo/*/*.safetensors >/dev/null; t1=$(date +%s.%N)
read_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
for m in task_arithmetic; do
  sed "s/merge_method: ties/merge_method: $m/" ties.yml >$m.yml
  /usr/bin/time -f "$m -j$threads: %e s wall, %U+%S s CPU (%P), %M KB peak RSS" "$fk" merge $m.yml out --threads "$threads" --quiet >/dev/null
  rm -rf out
done
echo "== fusekit merge (TIES, --threads $threads)"
/usr/bin/time -v "$fk" merge ties.yml out --threads "$threads" --quiet 2>time.txt >merge.txt || { cat time.txt; exit 1; }
cat merge.txt
wall=$(grep 'Elapsed (wall clock)' time.txt | awk '{print $NF}' | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
rss_kb=$(grep 'Maximum resident set size' time.txt | awk '{print $NF}')
out_bytes=$(find out -name '*.safetensors' -printf '%s\n' | awk '{s+=$1} END {printf "%.0f", s}')
cpu=$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {printf "%.1f", u+s}' time.txt)
pct=$(grep 'Percent of CPU' time.txt | awk '{print $NF}')
load=$(cut -d' ' -f1 /proc/loadavg)
awk -v in_b="$in_bytes" -v out_b="$out_bytes" -v rd="$read_s" -v wall="$wall" -v rss="$rss_kb" -v t="$threads" \
    -v cpu="$cpu" -v pct="$pct" -v load="$load" 'BEGIN {
  printf "\n| input | output | cat > /dev/null (page cache) | fusekit merge ties -j%d | wall / cat | CPU (user+sys) | peak RSS | RSS / input | load avg |\n", t
  printf "|---|---|---|---|---|---|---|---|---|\n"
  printf "| %.2f GB | %.2f GB | %.2f s (%.2f GB/s) | %.1f s (%.2f GB/s in) | %.1fx | %.1f s (%s) | %.0f MB | %.1f%% | %s |\n",
    in_b/1e9, out_b/1e9, rd, in_b/1e9/rd, wall, in_b/1e9/wall, wall/rd, cpu, pct, rss/1024, 100*rss*1024/in_b, load }'
# mergekit on the same configs: MERGEKIT=/path/to/mergekit-yaml, or whatever `mergekit-yaml` is on the PATH.
mk=${MERGEKIT:-$(command -v mergekit-yaml || true)}
if [ -n "$mk" ] && [ -x "$mk" ]; then
  mk_ver=$("$(dirname "$mk")/python" -c "from importlib.metadata import version; print(version('mergekit'), version('torch'))" 2>/dev/null || echo "?")
  echo "== mergekit-yaml ($mk_ver) on the same configs (CPU, torch threads = $threads)"
  for m in task_arithmetic ties; do
    cfgf=ties.yml; [ $m = ties ] || cfgf=$m.yml
    rm -rf out_mk
    OMP_NUM_THREADS=$threads /usr/bin/time -f "mergekit $m: %e s wall, %U+%S s CPU (%P), %M KB peak RSS" \
      "$mk" "$cfgf" out_mk --no-cuda --quiet --no-write-model-card >/dev/null 2>mk_$m.txt || { tail -5 mk_$m.txt; exit 1; }
    tail -1 mk_$m.txt
  done
  rm -rf out_mk
else
  echo "(mergekit not installed: pip install mergekit, then MERGEKIT=.../mergekit-yaml to compare)"
fi
