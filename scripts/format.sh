#!/usr/bin/env bash
# Applies (default) or checks (--check) .clang-format on fusekit sources.
#
#   scripts/format.sh                 format the default file set in place
#   scripts/format.sh --check         exit 1 and print a diff if any file of the default set is not formatted
#   scripts/format.sh [--check] PATH... restrict to these files or folders (C++/CUDA sources inside them)
#
# The default set is the files whose owners have adopted the format (adaptors, CUDA headers, header and
# consumer tests). Add a path to DEFAULT_PATHS once its owner has formatted it: never mass-reformat files
# someone else is editing. Needs clang-format 14 or newer (FUSEKIT_CLANG_FORMAT overrides the binary).
set -euo pipefail
cd "$(dirname "$0")/.."

DEFAULT_PATHS=(
  include/fusekit/fusekit.hpp
  include/fusekit/adapt/eigen.hpp
  include/fusekit/adapt/xtensor.hpp
  include/fusekit/adapt/thrust.hpp
  cuda
  tests/adapt
  tests/thrust
  tests/cuda
  tests/compile_fail
  tests/consumer
)

check=0
paths=()
for a in "$@"; do
  case "$a" in
    --check) check=1 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) paths+=("$a") ;;
  esac
done
[ ${#paths[@]} -eq 0 ] && paths=("${DEFAULT_PATHS[@]}")

cf="${FUSEKIT_CLANG_FORMAT:-}"
if [ -z "$cf" ]; then
  for c in clang-format clang-format-19 clang-format-18 clang-format-17 clang-format-16 clang-format-15 clang-format-14; do
    if command -v "$c" >/dev/null 2>&1; then cf="$c"; break; fi
  done
fi
[ -n "$cf" ] || { echo "format.sh: clang-format not found (apt-get install clang-format)" >&2; exit 2; }

files=()
for p in "${paths[@]}"; do
  [ -e "$p" ] || continue
  while IFS= read -r f; do files+=("$f"); done < <(find "$p" -type f \( -name '*.hpp' -o -name '*.cpp' -o -name '*.cuh' -o -name '*.cu' -o -name '*.h' \) | sort)
done
[ ${#files[@]} -eq 0 ] && { echo "format.sh: no files"; exit 0; }

if [ $check -eq 0 ]; then
  "$cf" -i --style=file "${files[@]}"
  echo "format.sh: formatted ${#files[@]} file(s) with $("$cf" --version | head -1)"
  exit 0
fi

bad=0
for f in "${files[@]}"; do
  if ! diff -u --label "$f" --label "$f (formatted)" "$f" <("$cf" --style=file "$f"); then
    bad=$((bad + 1))
  fi
done
if [ $bad -ne 0 ]; then
  echo "format.sh: $bad of ${#files[@]} file(s) need formatting; run scripts/format.sh ${paths[*]}" >&2
  exit 1
fi
echo "format.sh: ${#files[@]} file(s) formatted correctly"
