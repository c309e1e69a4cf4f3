#!/usr/bin/env bash
# Builds ringlb (installing apt dependencies if missing) and runs the whole test suite:
# unit tests, the bounded fuzz run, and integration tests with real processes on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j"$(nproc)" "$@"
