#!/usr/bin/env bash
# Installs the Debian 12 packages fiber needs to build, test and run. Idempotent: when all are
# present it does nothing. Runs as root (or through sudo when that exists).
#   scripts/setup.sh          build + test dependencies
#   scripts/setup.sh --fuzz   also clang and its libFuzzer runtime (FIBER_FUZZ=ON builds)
set -euo pipefail
packages=(
  ca-certificates cmake make g++ git pkg-config ccache
  libeigen3-dev libxsimd-dev xtl-dev doctest-dev libcli11-dev
  libopenblas-dev nlohmann-json3-dev libre2-dev
  libspng-dev libpng-dev libjpeg62-turbo-dev zlib1g-dev
)
if [[ "${1:-}" == "--fuzz" ]]; then packages+=(clang libclang-rt-14-dev); fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi
echo "setup: installing ${missing[*]}"
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup: run as root (missing: ${missing[*]})" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
