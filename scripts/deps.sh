#!/usr/bin/env bash
# Installs the Debian 12 packages fusekit's build, tests and tools need (only those missing).
set -euo pipefail
pkgs=(build-essential cmake ninja-build ccache python3
      libboost-test-dev libbenchmark-dev libeigen3-dev xtensor-dev libthrust-dev libcub-dev
      nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libfmt-dev
      clang libomp-dev libclang-rt-14-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "fusekit: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
