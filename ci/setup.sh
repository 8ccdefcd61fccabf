#!/usr/bin/env bash
# Installs the Debian packages Squall builds and tests with. Idempotent: when every
# package is already installed it does nothing (and does not touch the network).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  clang libclang-rt-14-dev
  libgtest-dev libgmock-dev libbenchmark-dev libuv1-dev
  libfmt-dev libre2-dev zlib1g-dev libssl-dev libcli11-dev libxxhash-dev openssl ca-certificates
  python3 python3-venv python3-pip python3-pytest python3-tornado python3-aiohttp python3-matplotlib python3-locust
  curl wrk nginx-light h2o nodejs
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
