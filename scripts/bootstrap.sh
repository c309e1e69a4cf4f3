#!/usr/bin/env bash
# Installs ringlb's build and test dependencies from Debian's apt (only those missing),
# then configures and builds into ${BUILD_DIR:-build}. Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake pkg-config clang libclang-rt-14-dev  # libFuzzer runtime: only a Recommends of clang
  liburing-dev libssl-dev openssl libxxhash-dev libspdlog-dev libfmt-dev libtomlplusplus-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 curl socat haproxy nginx-light sslscan linux-perf procps iproute2 util-linux
  libmimalloc-dev  # ringlb's allocator (RINGLB_ALLOCATOR, see CMakeLists.txt)
  libjemalloc2 libmimalloc2.0  # allocator rows of the TLS benchmark (LD_PRELOAD)
  python3-matplotlib  # PNG plots of bench/crypto/run.py (its ctest skips without it)
  prometheus  # for promtool: the tests check ringlb's /metrics with `promtool check metrics` (the daemon is never started)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing from apt: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap: need root to install packages (run as root, or install: ${missing[*]})" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Packaged daemons (haproxy, nginx, prometheus) are test peers or tools only: never let apt start them.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  rm -f /usr/sbin/policy-rc.d
fi

build_dir=${BUILD_DIR:-build}
build_type=${BUILD_TYPE:-Release}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type" ${CMAKE_EXTRA_ARGS:-} >/dev/null
cmake --build "$build_dir" -j"$(nproc)"
