#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds (Release, assertions on) and runs ctest.
# The fiber command and two examples are built at -O2 here (FIBER_APP_OPT_FLAGS, cmake/FiberBuildFlags.cmake).
#   FIBER_BUILD_DIR=build-asan scripts/test.sh -DFIBER_SANITIZE=address,undefined
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
start=$(date +%s)
scripts/build.sh -DFIBER_BUILD_TESTS=ON -DFIBER_APP_OPT_FLAGS=-O2 "$@"
built=$(date +%s)
dir=${FIBER_BUILD_DIR:-build}
ctest --test-dir "$dir" -j "$(nproc)" --output-on-failure --timeout 600
echo "test.sh: build $((built - start)) s, tests $(( $(date +%s) - built )) s"
