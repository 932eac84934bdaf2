#!/usr/bin/env bash
# The main job, from nothing: installs what is missing, builds the demo, runs it. The demo
# (examples/train_coarse) pre-trains a tiny FIBER from scratch with ITC + ITM + MLM on a generated
# shapes world and reports held-out retrieval. Extra arguments go to it (e.g. --seed 1 --json).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
dir=${FIBER_BUILD_DIR:-build}
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DFIBER_BUILD_TESTS=OFF >/dev/null
cmake --build "$dir" --target train_coarse -j "${FIBER_BUILD_JOBS:-$(nproc)}"
"$dir"/examples/train_coarse/train_coarse "$@"
