#!/usr/bin/env bash
# Configures and builds fiber in build/ (Release, assertions on). Extra arguments go to cmake.
#   FIBER_BUILD_DIR=build-asan scripts/build.sh -DFIBER_SANITIZE=address,undefined
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${FIBER_BUILD_DIR:-build}
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
jobs=${FIBER_BUILD_JOBS:-$(nproc)}
cmake --build "$dir" -j "$jobs"
