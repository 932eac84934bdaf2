#!/usr/bin/env bash
# The main job, from nothing: installs what is missing, builds, runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh -DFIBER_BUILD_TESTS=OFF
build/examples/train_tiny/train_tiny
