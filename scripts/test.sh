#!/usr/bin/env bash
# Set-up, configure, build (-j2) and run the whole ctest suite.
# Exits non-zero on any failure. BUILD_DIR overrides the build directory.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" -j2
cd "$BUILD_DIR"
# Integration tests start servers and containers; two at a time fits the
# two cores without starving the registry fixtures.
ctest --output-on-failure -j2 --timeout 900 "$@"
